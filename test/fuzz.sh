#!/usr/bin/env bash
# Runs every Fuzz* target of the module for a fixed time each (docs/fuzzing.md).
# Usage: test/fuzz.sh [FUZZTIME]   (default 3s; any -fuzztime value, e.g. 1m or 5000x)
#
# Targets are found with `go test -list '^Fuzz'` in every package that declares
# one. A target fails when fuzzing finds an input that fails it (Go writes it to
# testdata/fuzz/<target>/). Go before 1.27 can also report a bare "context
# deadline exceeded" when -fuzztime ends while a worker is mid-call
# (go.dev/issue/75804): with no failing input written, that is not a finding.
set -uo pipefail
cd "$(dirname "$0")/.."
export GOEXPERIMENT=jsonv2 CGO_ENABLED=0
fuzztime=${1:-3s}
failed=0
for dir in $(grep -rl --include='*_test.go' '^func Fuzz' . | xargs -n1 dirname | sort -u); do
	for target in $(go test -list '^Fuzz' "$dir" | grep '^Fuzz'); do
		corpus="$dir/testdata/fuzz/$target"
		before=$(ls "$corpus" 2>/dev/null | sort)
		echo "fuzz $dir $target ($fuzztime)"
		out=$(go test -run '^$' -fuzz "^$target\$" -fuzztime "$fuzztime" -fuzzminimizetime 1s "$dir" 2>&1)
		status=$?
		after=$(ls "$corpus" 2>/dev/null | sort)
		if [ $status -eq 0 ]; then
			continue
		fi
		if [ "$before" = "$after" ] && grep -q 'context deadline exceeded' <<<"$out" && ! grep -q 'Failing input' <<<"$out"; then
			echo "  $target: the fuzzing deadline race of Go's coordinator (no failing input): not a finding"
			continue
		fi
		echo "$out"
		failed=1
	done
done
exit $failed
