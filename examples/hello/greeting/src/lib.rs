//! Builds the line `hello` prints, naming the architecture it was compiled for.

pub fn greeting(arch: &str) -> String {
    format!("Hello from rustfarm on {}!", arch)
}

#[cfg(test)]
mod tests {
    use super::greeting;

    #[test]
    fn names_the_architecture() {
        assert_eq!(greeting("mips"), "Hello from rustfarm on mips!");
    }
}
