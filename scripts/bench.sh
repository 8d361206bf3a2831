#!/usr/bin/env bash
# bench.sh runs the Go benchmarks pinned to CPU 0, then every script in
# bench/. Figures are only compared within one run (see bench/README.md).
set -euo pipefail
cd "$(dirname "$0")/.."
echo "== Go benchmarks (taskset -c 0, count 3)"
taskset -c 0 go test -run '^$' -bench . -benchmem -count 3 ./... | grep -E '^(Benchmark|ok|FAIL|goos|goarch|cpu|pkg)'
for script in bench/*.sh; do
	echo
	echo "== $script"
	"$script"
done
