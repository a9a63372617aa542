#!/usr/bin/env bash
# Builds the operator image without a registry: the static binary on this machine, then the
# Dockerfile's final stage with buildah, which takes a local directory in place of the Dockerfile's
# `build` stage (--build-context build=DIR), so no base image is pulled. Prints the image size.
#
# Env: IMAGE (default ghcr.io/fhir-app-operator/fhir-app-operator, the chart's default; tagged with
# the binary's version), GIT_COMMIT (default HEAD), SOURCE_DATE_EPOCH (default: the last commit's
# time; the image's timestamps, so the same binary gives the same image ID), CARGO_TARGET_DIR
# (default target/image, away from the debug builds). buildah's own STORAGE_DRIVER applies
# (STORAGE_DRIVER=vfs where overlay mounts are not allowed).
set -euo pipefail
cd "$(dirname "$0")/../.."
for tool in buildah cargo rustup readelf musl-gcc; do
  command -v "$tool" >/dev/null || { echo "hack/image/build.sh: $tool is required (apt-get install buildah musl-tools)" >&2; exit 1; }
done

triple="$(uname -m)-unknown-linux-musl"
target_dir=${CARGO_TARGET_DIR:-$PWD/target/image}
rustup target list --installed | grep -qx "$triple" || rustup target add "$triple"
# Same as the Dockerfile's build stage: ring's C code compiled against musl; this checkout and the
# cargo home kept out of the binary; no SOURCE_DATE_EPOCH (the output does not depend on it, but cc
# would rebuild ring, and everything after it, whenever it changes).
env -u SOURCE_DATE_EPOCH TARGET_CC=musl-gcc RUSTFLAGS="--remap-path-prefix=$PWD=/src --remap-path-prefix=${CARGO_HOME:-$HOME/.cargo}=/cargo" \
  CARGO_TARGET_DIR="$target_dir" nice -n 10 \
  cargo build --locked --release --target "$triple" -p fhir-app-operator --bin fhir-app-operator

# The SBOM of what goes into the image: the binary's crates for this target (CycloneDX JSON).
sbom=$(CARGO_TARGET_DIR="$target_dir" SBOM_TARGET="$triple" bash hack/image/sbom.sh)

# The build context stands in for the `build` stage: out/ holds what that stage produces.
ctx=$target_dir/image-context
rm -rf "$ctx" && mkdir -p "$ctx/out"
bin=$ctx/out/fhir-app-operator
cp "$target_dir/$triple/release/fhir-app-operator" "$bin"
cp /etc/ssl/certs/ca-certificates.crt "$ctx/out/"
# scratch has no dynamic loader: a binary that asks for one (PT_INTERP) would not start there.
if readelf -l "$bin" | grep -q INTERP; then
  echo "hack/image/build.sh: $bin is dynamically linked" >&2
  exit 1
fi
version=$("$bin" --version | awk '{print $2}')
commit=${GIT_COMMIT:-$(git rev-parse HEAD 2>/dev/null || echo unknown)}
epoch=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 0)}
image=${IMAGE:-ghcr.io/fhir-app-operator/fhir-app-operator}:$version

buildah build --quiet --timestamp "$epoch" --build-context "build=$ctx" \
  --build-arg "VERSION=$version" --build-arg "GIT_COMMIT=$commit" \
  --build-arg "CREATED=$(date -u -d "@$epoch" +%Y-%m-%dT%H:%M:%SZ)" \
  -t "$image" . >/dev/null
# Sizes from the manifests: the layer as stored, and gzip-compressed as a registry would serve it.
layers() { python3 -c 'import json,sys; print(sum(l["size"] for l in json.load(sys.stdin)["layers"]))'; }
size=$(buildah inspect --type image --format '{{.Manifest}}' "$image" | layers)
oci=$ctx/oci && rm -rf "$oci"
buildah push --quiet --compression-format gzip "$image" "oci:$oci" >/dev/null
blob=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["manifests"][0]["digest"].split(":")[1])' "$oci/index.json")
gz=$(layers <"$oci/blobs/sha256/$blob")
mb() { awk -v b="$1" 'BEGIN{printf "%.1f MB", b/1e6}'; }
echo "SBOM: $sbom"
echo "$image  id $(buildah images --format '{{.ID}}' "$image")  $size bytes ($(mb "$size")), gzip $gz bytes ($(mb "$gz"))"
