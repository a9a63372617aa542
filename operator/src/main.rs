fn main() {
    println!("fhir-app-operator: not yet implemented");
}
