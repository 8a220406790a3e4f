#!/usr/bin/env bash
# Configuration scanning: `registry scan --config .` against `trivy config .`
# (the trivy CLI of the Trivy version this module links) on a generated
# repository of 200 mixed configuration files, alternating, 5 runs each;
# prints median ratios as markdown. Usage: test/bench/config.sh [-runs N] [-files N]
#   REGISTRY_BIN  the registry binary (default bin/registry, built if missing)
#   TRIVY_CLI     a trivy binary of that version (built with go install when unset)
set -euo pipefail
cd "$(dirname "$0")/../.."
. test/bench/peer.sh

echo "## config"
go run ./test/bench/configbench -registry "$bin" -trivy "$trivy" "$@"
