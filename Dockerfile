# syntax=docker/dockerfile:1
# The Action's image: the one static binary and CA certificates.

FROM golang:1.26-bookworm AS build
# Trivy imports encoding/json/v2.
ENV GOEXPERIMENT=jsonv2 CGO_ENABLED=0
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG VERSION=dev
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    LDFLAGS="-s -w -X github.com/registry-actions/registry/internal/version.Version=${VERSION} -X github.com/aquasecurity/trivy/pkg/version/app.ver=$(go list -m -f '{{slice .Version 1}}' github.com/aquasecurity/trivy)" \
 && go build -trimpath -ldflags "$LDFLAGS" -o /out/registry . \
 && mkdir -m 1777 /out/tmp

FROM scratch
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
# Scans and copies spool to a temporary directory.
COPY --from=build /out/tmp /tmp
COPY --from=build /out/registry /registry
ENV TMPDIR=/tmp
ENTRYPOINT ["/registry"]
