#!/usr/bin/env bash
# Scan the same image with the same vulnerability DB with this tool and with
# the trivy CLI of the Trivy version this module links, alternating, 5 runs
# each; prints median ratios as markdown. Usage: test/bench/scan.sh [-runs N]
#   REGISTRY_BIN  the registry binary (default bin/registry, built if missing)
#   TRIVY_CLI     a trivy binary of that version; without it one is built with
#                 go install (its command's dependencies are not in this
#                 module's go.sum), which takes a long time
set -euo pipefail
cd "$(dirname "$0")/../.."
. test/bench/peer.sh

echo "## scan"
go run ./test/bench/scanbench -registry "$bin" -trivy "$trivy" "$@"
