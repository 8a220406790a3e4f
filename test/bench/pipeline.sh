#!/usr/bin/env bash
# The pipeline users replace three tools with: registry run push,scan,sign
# against crane push + trivy image --platform (each platform) + cosign sign
# --recursive, a fresh registry every run, the DB already cached, key signing
# without a transparency log; alternating, 5 runs each; prints median wall
# times, CPU times and the ratio as markdown. Usage: test/bench/pipeline.sh [-runs N]
#   REGISTRY_BIN  the registry binary (default bin/registry, built if missing)
#   CRANE_CLI     crane (default: built from the go-containerregistry in go.mod)
#   TRIVY_CLI     a trivy binary of the Trivy version this module links;
#                 without it one is built in a throwaway module (long)
#   COSIGN_CLI    a cosign v2.6.5 binary; without it one is built in a
#                 throwaway module
set -euo pipefail
cd "$(dirname "$0")/../.."
export GOEXPERIMENT=jsonv2 CGO_ENABLED=0
peers_tmp=$(mktemp -d)
trap 'rm -rf "$peers_tmp"' EXIT
. test/bench/peers.sh

bin=$(registry_bin)
crane=$(crane_cli)
trivy=$(trivy_cli)
cosign=$(cosign_cli)

echo "## pipeline"
go run ./test/bench/pipelinebench -registry "$bin" -crane "$crane" -trivy "$trivy" -cosign "$cosign" "$@"
