#!/usr/bin/env bash
# Benchmarks against peer tools, in the same run. Usage: test/bench/run.sh [push|scan|config|cluster|sign|clean|pipeline|all] [driver flags, e.g. -runs 9]
# Figures go to stdout as markdown; docs/benchmarks.md records them.
set -euo pipefail
cd "$(dirname "$0")/../.."
export GOEXPERIMENT=jsonv2 CGO_ENABLED=0
what=${1:-all}
mkdir -p bin
[ -x bin/registry ] || make build

peer_crane() {
  # crane from the go-containerregistry version this module uses.
  [ -x bin/crane ] || go build -trimpath -o bin/crane github.com/google/go-containerregistry/cmd/crane
}

bench_push() {
  peer_crane
  if ! command -v skopeo >/dev/null; then
    echo "installing skopeo (Debian package) for the comparison" >&2
    (apt-get install -y skopeo >/dev/null 2>&1 || sudo apt-get install -y skopeo >/dev/null 2>&1) || echo "skopeo unavailable: comparing with crane only" >&2
  fi
  echo "## push"
  go run ./test/bench/pushbench -registry bin/registry -crane bin/crane
}

case "$what" in
  push) bench_push ;;
  all)
    bench_push
    for extra in scan config cluster sign clean pipeline; do
      [ -x "test/bench/$extra.sh" ] && "test/bench/$extra.sh"
    done
    ;;
  *)
    if [ -x "test/bench/$what.sh" ]; then "test/bench/$what.sh" "${@:2}"; else echo "unknown benchmark $what" >&2; exit 2; fi
    ;;
esac
