# fhir-app-operator image: a static (musl, rustls/ring, no OpenSSL) binary and the CA bundle on
# scratch, running as a numeric non-root user.
#
#   docker build -t fhir-app-operator:0.1.0 --build-arg VERSION=0.1.0 \
#     --build-arg GIT_COMMIT="$(git rev-parse HEAD)" \
#     --build-arg SOURCE_DATE_EPOCH="$(git log -1 --format=%ct)" .
#
# VERSION and GIT_COMMIT become OCI labels, CREATED (SOURCE_DATE_EPOCH in RFC 3339) the created label;
# BuildKit takes SOURCE_DATE_EPOCH for the image timestamps itself (buildah: --timestamp).
#
# Without a registry, `make image` (hack/image/build.sh) builds the binary on the host and then this
# file's final stage with buildah, handing it a local directory as the `build` stage
# (`--build-context build=DIR`, DIR/out/ holding what this stage would produce).

ARG RUST_VERSION=1.95

FROM docker.io/library/rust:${RUST_VERSION}-trixie AS build
WORKDIR /src
# musl-gcc compiles ring's C and assembly for the musl target. The Debian snapshot behind the
# pinned Rust image fixes its version.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends musl-tools \
    && rm -rf /var/lib/apt/lists/* \
    && rustup target add "$(uname -m)-unknown-linux-musl"
COPY . .
# The remapped path keeps the build machine's cargo home out of the binary (panic locations), as
# hack/image/build.sh does.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    triple="$(uname -m)-unknown-linux-musl" \
    && TARGET_CC=musl-gcc RUSTFLAGS="--remap-path-prefix=/usr/local/cargo=/cargo" \
       cargo build --locked --release --target "$triple" -p fhir-app-operator --bin fhir-app-operator \
    && mkdir -p /out \
    && cp "target/$triple/release/fhir-app-operator" /etc/ssl/certs/ca-certificates.crt /out/

FROM scratch
ARG VERSION=dev
ARG GIT_COMMIT=unknown
# RFC 3339 form of SOURCE_DATE_EPOCH (scratch has no shell to convert it).
ARG CREATED=1970-01-01T00:00:00Z
LABEL org.opencontainers.image.title="fhir-app-operator" \
      org.opencontainers.image.description="Registers FHIR server and client applications in Microsoft Entra ID and writes their credentials to Kubernetes Secrets" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${GIT_COMMIT}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.source="https://github.com/fhir-app-operator/fhir-app-operator" \
      org.opencontainers.image.url="https://github.com/fhir-app-operator/fhir-app-operator" \
      org.opencontainers.image.licenses="Apache-2.0"
# Graph and the Entra token endpoint are verified against the system roots (rustls-native-certs
# reads this path).
COPY --from=build /out/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /out/fhir-app-operator /fhir-app-operator
# Numeric, so Kubernetes' runAsNonRoot can check it without an /etc/passwd; matches the Helm chart.
USER 65532:65532
ENTRYPOINT ["/fhir-app-operator"]
