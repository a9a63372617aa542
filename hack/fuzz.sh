#!/usr/bin/env bash
# Runs the cargo-fuzz targets in operator/fuzz (Graph response parsing; spec → Graph request builders)
# for a short time each and exits non-zero on a crash (the reproducer is left in
# operator/fuzz/artifacts/<target>/; replay with `cargo +nightly fuzz run <target> <file>`).
#
#   hack/fuzz.sh [seconds-per-target]     default 30 (FUZZ_SECONDS); FUZZ_TARGETS="graph_responses"
#   FUZZ_SANITIZER=address hack/fuzz.sh   default none: safe Rust, the point is panics; ASan is slower
#
# cargo-fuzz needs nightly compiler flags: the nightly toolchain is used when installed, otherwise
# stable with RUSTC_BOOTSTRAP=1. The same target bodies also run without libFuzzer, on stable, as a
# seeded property test: cargo test --manifest-path operator/fuzz/Cargo.toml
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-${FUZZ_SECONDS:-30}}"
targets="${FUZZ_TARGETS:-graph_responses spec_builders}"
sanitizer="${FUZZ_SANITIZER:-none}"

# cargo-fuzz pinned and cached by version outside the repo, like the supply-chain tools.
fuzz_bin=$(bash hack/supply-chain/install.sh cargo-fuzz | tail -1)
export PATH="$(dirname "$fuzz_bin"):$PATH"
# The instrumented build of the dependencies is cached outside the repo too (a fresh clone otherwise
# rebuilds all of them, minutes on 2 cores); cargo keys the artifacts by toolchain and flags.
export CARGO_TARGET_DIR="${FHIR_OP_CACHE:-$HOME/.cache/fhir-app-operator}/fuzz-target"
# FUZZ_TOOLCHAIN=stable forces the fallback (what a machine without nightly does).
if [ "${FUZZ_TOOLCHAIN:-}" != stable ] && rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  tc=(+nightly)
else
  tc=()
  export RUSTC_BOOTSTRAP=1
fi

cd operator/fuzz
cargo "${tc[@]}" fuzz build --sanitizer "$sanitizer" --debug-assertions
for t in $targets; do
  # New inputs go to a scratch directory; the committed seed corpus stays as it is.
  scratch=$(mktemp -d)
  echo "== fuzzing $t for ${secs}s"
  cargo "${tc[@]}" fuzz run --sanitizer "$sanitizer" --debug-assertions "$t" "$scratch" "corpus/$t" -- \
    -max_total_time="$secs" -max_len=65536 -rss_limit_mb=2048 -print_final_stats=1
  rm -rf "$scratch"
done
echo "fuzz: no crash in $targets (${secs}s each)"
