#!/usr/bin/env bash
# The pipeline users replace three tools with: registry run push,scan,sign
# against crane push + trivy image --platform (each platform) + cosign sign
# --recursive, a fresh registry every run, the DB already cached, key signing
# without a transparency log; alternating, 5 runs each; prints median wall
# times and the ratio as markdown. Usage: test/bench/pipeline.sh [-runs N]
#   REGISTRY_BIN  the registry binary (default bin/registry, built if missing)
#   CRANE_CLI     crane (default: built from the go-containerregistry in go.mod)
#   TRIVY_CLI     a trivy binary of the Trivy version this module links;
#                 without it one is built in a throwaway module (long)
#   COSIGN_CLI    a cosign v2.6.5 binary; without it one is built in a
#                 throwaway module
set -euo pipefail
cd "$(dirname "$0")/../.."
export GOEXPERIMENT=jsonv2 CGO_ENABLED=0

bin=${REGISTRY_BIN:-bin/registry}
if [ ! -x "$bin" ]; then
  make build
  bin=bin/registry
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

crane=${CRANE_CLI:-}
if [ -z "$crane" ]; then
  go build -trimpath -o "$tmp/crane" github.com/google/go-containerregistry/cmd/crane
  crane=$tmp/crane
fi

trivy=${TRIVY_CLI:-}
if [ -z "$trivy" ]; then
  version=$(go list -m -f '{{.Version}}' github.com/aquasecurity/trivy)
  echo "building the trivy CLI $version with go install (this takes long)" >&2
  GOBIN=$tmp go install -trimpath -ldflags "-s -w -X github.com/aquasecurity/trivy/pkg/version/app.ver=${version#v}" \
    "github.com/aquasecurity/trivy/cmd/trivy@$version"
  trivy=$tmp/trivy
fi

cosign=${COSIGN_CLI:-}
if [ -z "$cosign" ]; then
  echo "building the cosign CLI v2.6.5 in a throwaway module" >&2
  (
    mkdir -p "$tmp/cosign" && cd "$tmp/cosign"
    export GOEXPERIMENT= GOFLAGS=-mod=mod
    go mod init cosignbench >/dev/null 2>&1
    go get github.com/sigstore/cosign/v2/cmd/cosign@v2.6.5 >get.log 2>&1 || { cat get.log >&2; exit 1; }
    go build -trimpath -ldflags "-s -w" -o "$tmp/cosign-cli" github.com/sigstore/cosign/v2/cmd/cosign
  )
  cosign=$tmp/cosign-cli
fi

echo "## pipeline"
go run ./test/bench/pipelinebench -registry "$bin" -crane "$crane" -trivy "$trivy" -cosign "$cosign" "$@"
