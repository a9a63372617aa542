# Sourced by hack/*/build.sh: go_tool NAME VERSION PACKAGE@VERSION [go install flags...]
# installs one binary from the Go module proxy, once, into
#   ${FHIR_OP_CACHE:-$HOME/.cache/fhir-app-operator}/NAME/VERSION/NAME
# and prints its path on stdout (last line); does nothing but print it when it is already there.
go_tool() {
  local name=$1 version=$2 pkg=$3
  shift 3
  local cache=${FHIR_OP_CACHE:-$HOME/.cache/fhir-app-operator}
  local out="$cache/$name/$version"
  if [ -x "$out/$name" ]; then echo "$out/$name"; return 0; fi
  command -v go >/dev/null || { echo "$0: Go is required to build $name" >&2; return 1; }
  mkdir -p "$cache/$name"
  local tmp start
  tmp=$(mktemp -d "$cache/$name/.build.XXXXXX")
  start=$(date +%s)
  echo "$0: building $name $version ($pkg) into $out" >&2
  if ! CGO_ENABLED=0 GOBIN="$tmp" go install -trimpath "$@" "$pkg" >&2; then
    rm -rf "$tmp"
    return 1
  fi
  mkdir -p "$out"
  mv "$tmp/$name" "$out/$name.tmp" && mv "$out/$name.tmp" "$out/$name"
  rm -rf "$tmp"
  echo "$0: built in $(( $(date +%s) - start )) s" >&2
  echo "$out/$name"
}
