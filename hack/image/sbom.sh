#!/usr/bin/env bash
# Writes the SBOM of the image's one program: the crates linked into the fhir-app-operator binary for
# the image's target (musl), without build-time dependencies, as CycloneDX 1.5 JSON, to
#   ${CARGO_TARGET_DIR:-target/image}/fhir-app-operator.cdx.json    (path printed on stdout)
# `make image` runs it; cargo-cyclonedx is built once from crates.io (hack/supply-chain/install.sh).
set -euo pipefail
cd "$(dirname "$0")/../.."
target_dir=${CARGO_TARGET_DIR:-$PWD/target/image}
triple=${SBOM_TARGET:-$(uname -m)-unknown-linux-musl}
cyclonedx=$(bash hack/supply-chain/install.sh cargo-cyclonedx | tail -n1)
mkdir -p "$target_dir"
"$cyclonedx" cyclonedx --manifest-path operator/Cargo.toml --format json --spec-version 1.5 \
  --target "$triple" --no-build-deps --override-filename fhir-app-operator.cdx -q
mv operator/fhir-app-operator.cdx.json "$target_dir/fhir-app-operator.cdx.json"
# cargo-cyclonedx writes one for every workspace member beside its Cargo.toml; only the operator's is wanted.
for manifest in */Cargo.toml; do rm -f "$(dirname "$manifest")/fhir-app-operator.cdx.json"; done
python3 - "$target_dir/fhir-app-operator.cdx.json" >&2 <<'PY'
import json, sys
bom = json.load(open(sys.argv[1]))
comps = bom.get("components", [])
print(f"hack/image/sbom.sh: {bom['metadata']['component']['name']} {bom['metadata']['component'].get('version')}: {len(comps)} components, CycloneDX {bom['specVersion']}")
PY
echo "$target_dir/fhir-app-operator.cdx.json"
