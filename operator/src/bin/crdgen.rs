//! Writes the CRDs generated from the Rust types to `crds/` (or prints them with `--stdout`).
//!
//! `cargo run -p fhir-app-operator --bin crdgen` regenerates `crds/`;
//! `cargo run -p fhir-app-operator --bin crdgen -- --check` exits 1 when `crds/` is stale.

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../crds");
    let files = fhir_app_operator::api::crd_files();
    if args.iter().any(|a| a == "--stdout") {
        for (_, yaml) in &files {
            print!("---\n{yaml}");
        }
        return;
    }
    let check = args.iter().any(|a| a == "--check");
    let mut stale = false;
    for (name, yaml) in &files {
        let path = dir.join(name);
        let have = std::fs::read_to_string(&path).unwrap_or_default();
        if have == *yaml {
            continue;
        }
        if check {
            eprintln!("crds/{name} is stale: run `cargo run -p fhir-app-operator --bin crdgen`");
            stale = true;
        } else {
            std::fs::create_dir_all(&dir).expect("create crds/");
            std::fs::write(&path, yaml).expect("write CRD");
            eprintln!("wrote crds/{name}");
        }
    }
    if stale {
        std::process::exit(1);
    }
}
