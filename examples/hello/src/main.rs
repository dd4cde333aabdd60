fn main() {
    println!("{}", greeting::greeting(std::env::consts::ARCH));
}

#[cfg(test)]
mod tests {
    #[test]
    fn greets_this_architecture() {
        let line = greeting::greeting(std::env::consts::ARCH);
        assert!(line.contains(std::env::consts::ARCH));
    }
}
