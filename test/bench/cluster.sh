#!/usr/bin/env bash
# Cluster scanning: `registry scan --kubeconfig` of 50 workloads sharing 10
# images (a stand-in API server, an in-process registry) against the trivy
# CLI of the Trivy version this module links — `trivy k8s` when it can run
# against the stand-in, else one `trivy image` per image — and checks that
# each image is scanned once. Usage: test/bench/cluster.sh [-runs N]
#   REGISTRY_BIN  the registry binary (default bin/registry, built if missing)
#   TRIVY_CLI     a trivy binary of that version (built with go install when unset)
set -euo pipefail
cd "$(dirname "$0")/../.."
. test/bench/peer.sh

echo "## cluster"
go run ./test/bench/clusterbench -registry "$bin" -trivy "$trivy" "$@"
