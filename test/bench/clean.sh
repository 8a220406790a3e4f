#!/usr/bin/env bash
# Clean benchmark: the lifecycle engine on one core (a 10-rule policy over
# 100,000 images with multi-arch indexes and signatures) and the API economy
# of listing and deleting on ECR, GHCR and plain OCI registries, counted by
# the local ECR and GitHub API servers and a counting registry.
# There is no peer tool to run locally (AWS evaluates policies server-side),
# so the figures are absolute: the engine against its 1 s budget, request
# counts against their formulas.
# Usage: test/bench/clean.sh [count]   (count: benchmark repetitions, default 5)
set -euo pipefail
cd "$(dirname "$0")/../.."
export GOEXPERIMENT=jsonv2 CGO_ENABLED=0
count=${1:-5}

echo "## clean"
echo
echo "Lifecycle evaluation, 10 rules × 100,000 images (160,000 manifests), one core, $count runs:"
echo
bench=$(go test -run '^$' -bench '^BenchmarkEvaluate$' -benchtime 3x -count "$count" -cpu 1 ./internal/lifecycle/)
echo "$bench" | awk '
  BEGIN { n = 0 }
  /^BenchmarkEvaluate/ {
    for (i = 2; i <= NF; i++) {
      if ($(i+1) == "ns/op") wall[n] = $i / 1e9
      if ($(i+1) == "cpu-ns/op") cpu[n] = $i / 1e9
    }
    n++
  }
  function median(a, k,   i, j, t) {
    for (i = 0; i < k; i++) for (j = i + 1; j < k; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
    return (k % 2) ? a[int(k/2)] : (a[k/2-1] + a[k/2]) / 2
  }
  END {
    if (n == 0) { print "benchmark produced no result" > "/dev/stderr"; exit 1 }
    printf "| Measure | Median | Min | Max | Budget |\n| --- | --- | --- | --- | --- |\n"
    mw = median(wall, n); lo = wall[0]; hi = wall[n-1]
    printf "| wall time per evaluation | %.2f s | %.2f s | %.2f s | 1 s |\n", mw, lo, hi
    mc = median(cpu, n); lo = cpu[0]; hi = cpu[n-1]
    printf "| CPU time per evaluation | %.2f s | %.2f s | %.2f s | 1 s |\n", mc, lo, hi
  }'
echo
echo "API economy (requests counted by the servers; want = the formula's value):"
echo
echo "| Registry | Work | Formula | Want | Measured |"
echo "| --- | --- | --- | --- | --- |"
go test -count=1 -run '^TestAPIEconomy$' -v ./internal/inventory/ | sed -n 's/.*ECONOMY \(|.*\)$/\1/p'
echo
echo "Load while measuring: $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || uptime) on $(nproc) cores."
