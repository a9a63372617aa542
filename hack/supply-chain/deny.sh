#!/usr/bin/env bash
# cargo deny on the workspace with the committed deny.toml: licences, duplicate versions (bans) and
# sources. cargo-deny itself is built once from crates.io (hack/supply-chain/install.sh, cached).
# Advisories are left out: cargo-deny reads the RustSec advisory database from its git repository,
# which this project's machines cannot reach (package registries only), and no registry package
# carries it. Where that repository is reachable: DENY_CHECKS="advisories licenses bans sources".
set -euo pipefail
cd "$(dirname "$0")/../.."
deny=$(bash hack/supply-chain/install.sh cargo-deny | tail -n1)
# shellcheck disable=SC2086
"$deny" --locked check ${DENY_CHECKS:-licenses bans sources}
