fn main() {
    println!("entra-emulator: not yet implemented");
}
