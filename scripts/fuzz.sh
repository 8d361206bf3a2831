#!/usr/bin/env bash
# fuzz.sh runs every native fuzz target of the module for a while each.
# Usage: scripts/fuzz.sh [DURATION]   (default 10s; docs/testing.md)
# FUZZMINIMIZE bounds the minimization of each new input (default 2s): Go's
# default of 60s lets a target whose runs take milliseconds (a config
# compiled twice) spend a short run minimizing one input instead of fuzzing.
set -euo pipefail
fuzztime=${1:-10s}
minimize=${FUZZMINIMIZE:-2s}
cd "$(dirname "$0")/.."
found=0
while IFS=: read -r file _ line; do
	name=$(sed -E 's/^func (Fuzz[A-Za-z0-9_]*)\(.*/\1/' <<<"$line")
	pkg=./$(dirname "$file")
	echo "fuzz: $pkg $name for $fuzztime"
	go test -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime" -fuzzminimizetime "$minimize" "$pkg"
	found=$((found + 1))
done < <(grep -rn --include='*_test.go' -E '^func Fuzz[A-Za-z0-9_]*\(' . | grep -v '^./bin/')
if [ "$found" -eq 0 ]; then
	echo "fuzz: no fuzz targets found" >&2
	exit 1
fi
echo "fuzz: $found targets passed"
