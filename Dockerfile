# The Action's image: the one static program, the Docker CLI with its buildx
# plugin (a build with `context` runs through the runner's Docker socket),
# CA certificates and a writable /tmp. The runner supplies HOME, the
# workspace and the file-command paths (/github/home, /github/workspace,
# /github/file_commands) and runs the container as root, which the mounted
# Docker socket needs. Every base is pinned by digest; Dependabot moves them.

# The program is cross-compiled on the build machine: a multi-platform image
# needs no emulation, the last stage only copies files.
FROM --platform=$BUILDPLATFORM golang:1.26.8-bookworm@sha256:a688600ca24f8a4d3ca77f95b0dd40704a9fc787c826660eb7ba0b641b8b175d AS build
# Trivy imports encoding/json/v2.
ENV GOEXPERIMENT=jsonv2 CGO_ENABLED=0
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG VERSION=dev
ARG TARGETOS
ARG TARGETARCH
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    LDFLAGS="-s -w -X github.com/registry-actions/registry/internal/version.Version=${VERSION} -X github.com/aquasecurity/trivy/pkg/version/app.ver=$(go list -m -f '{{slice .Version 1}}' github.com/aquasecurity/trivy)" \
 && GOOS=$TARGETOS GOARCH=$TARGETARCH go build -trimpath -ldflags "$LDFLAGS" -o /out/registry .

# Static binaries of the official images, for the target platform.
FROM docker:29.7.2-cli@sha256:3f4743208d2338c934d7b8bcfbe1bb54c0b2355c510ad5e0f31c0c4a54bd704e AS docker-cli
FROM docker/buildx-bin:0.37.2@sha256:f3acee6a2e18c8528ea096762e21e4c793c5a8001380f28801701b2112ae932a AS buildx

# distroless/static: CA certificates, /tmp (1777), /etc/passwd and tzdata
# and nothing else: no shell, no package manager, no libc to patch.
FROM gcr.io/distroless/static-debian13:latest@sha256:58133991db06659feaabe0f4e97a35cebf15ef4ea08f8a4c6d2ee5f75e4aa6a0
COPY --from=docker-cli /usr/local/bin/docker /usr/local/bin/docker
COPY --from=buildx /buildx /usr/libexec/docker/cli-plugins/docker-buildx
COPY --from=build /out/registry /registry
ENTRYPOINT ["/registry"]
