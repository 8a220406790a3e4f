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
peers_tmp=$(mktemp -d)
trap 'rm -rf "$peers_tmp"' EXIT
. test/bench/peers.sh

bin=$(registry_bin)
cosign=$(cosign_cli)

echo "## sign"
go run ./test/bench/signbench -registry "$bin" -cosign "$cosign" "$@"
