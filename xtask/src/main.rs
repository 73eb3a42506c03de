fn main() { println!("xtask: work in progress"); }
