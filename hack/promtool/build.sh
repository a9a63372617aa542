#!/usr/bin/env bash
# Builds promtool from the Go module proxy into
#   ${FHIR_OP_CACHE:-$HOME/.cache/fhir-app-operator}/promtool/<module version>/promtool
# and does nothing when it is already there. Prints the binary's path on stdout (last line).
# Binaries are never committed. Prometheus v3.X.Y is the Go module version v0.3XX.Y
# (`go list -m -versions github.com/prometheus/prometheus`); -tags remove_all_sd leaves out the
# service-discovery plugins (AWS, Azure, GCE, ...) that `promtool check rules` / `test rules` never use.
set -euo pipefail
. "$(dirname "$0")/../lib/go-tool.sh"
PROMETHEUS_MODULE_VERSION=${PROMETHEUS_MODULE_VERSION:-v0.316.0}
minor=${PROMETHEUS_MODULE_VERSION#v0.3}
version="3.${minor%%.*}.${PROMETHEUS_MODULE_VERSION##*.}"
go_tool promtool "$PROMETHEUS_MODULE_VERSION" \
  "github.com/prometheus/prometheus/cmd/promtool@$PROMETHEUS_MODULE_VERSION" \
  -tags remove_all_sd -ldflags "-s -w -X github.com/prometheus/common/version.Version=$version"
