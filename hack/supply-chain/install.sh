#!/usr/bin/env bash
# Installs a cargo subcommand from crates.io, once, into
#   ${FHIR_OP_CACHE:-$HOME/.cache/fhir-app-operator}/cargo-tools/<crate>-<version>/bin/
# and prints the binary's path on stdout (last line). `cargo install --locked` builds it from source.
#   hack/supply-chain/install.sh cargo-deny      (the versions are pinned here; hack/fuzz.sh uses it
#   for cargo-fuzz too)
set -euo pipefail
crate=$1
case "$crate" in
cargo-deny) version=0.20.2 ;;
cargo-cyclonedx) version=0.5.9 ;;
cargo-fuzz) version=0.13.2 ;;
*) echo "hack/supply-chain/install.sh: no pinned version for $crate" >&2; exit 1 ;;
esac
CACHE=${FHIR_OP_CACHE:-$HOME/.cache/fhir-app-operator}
root="$CACHE/cargo-tools/$crate-$version"
if [ -x "$root/bin/$crate" ]; then echo "$root/bin/$crate"; exit 0; fi
mkdir -p "$CACHE/cargo-tools"
tmp=$(mktemp -d "$CACHE/cargo-tools/.build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
start=$(date +%s)
echo "hack/supply-chain/install.sh: building $crate $version from crates.io into $root" >&2
CARGO_TARGET_DIR="$tmp/target" cargo install --locked --quiet --root "$tmp/root" "$crate@$version" >&2
rm -rf "$root" && mv "$tmp/root" "$root"
echo "hack/supply-chain/install.sh: built in $(( $(date +%s) - start )) s" >&2
echo "$root/bin/$crate"
