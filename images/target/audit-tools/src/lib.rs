// Nothing: the package exists to pin the tools its Cargo.toml names.
