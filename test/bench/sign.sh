#!/usr/bin/env bash
# Sign and verify a two-platform index with a key (transparency log off) with
# this tool and with the cosign CLI, alternating, 5 runs each; prints median
# ratios as markdown. Usage: test/bench/sign.sh [-runs N]
#   REGISTRY_BIN  the registry binary (default bin/registry, built if missing)
#   COSIGN_CLI    a cosign v2.6.5 binary; without it one is built in a
#                 throwaway module (its command's dependencies are not in this
#                 module's go.sum)
set -euo pipefail
cd "$(dirname "$0")/../.."
export GOEXPERIMENT=jsonv2 CGO_ENABLED=0

bin=${REGISTRY_BIN:-bin/registry}
if [ ! -x "$bin" ]; then
  make build
  bin=bin/registry
fi

cosign=${COSIGN_CLI:-}
if [ -z "$cosign" ]; then
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  echo "building the cosign CLI v2.6.5 in a throwaway module" >&2
  (
    cd "$tmp"
    export GOEXPERIMENT= GOFLAGS=-mod=mod
    go mod init cosignbench >/dev/null 2>&1
    go get github.com/sigstore/cosign/v2/cmd/cosign@v2.6.5 >get.log 2>&1 || { cat get.log >&2; exit 1; }
    go build -trimpath -ldflags "-s -w" -o cosign github.com/sigstore/cosign/v2/cmd/cosign
  )
  cosign=$tmp/cosign
fi

echo "## sign"
go run ./test/bench/signbench -registry "$bin" -cosign "$cosign" "$@"
