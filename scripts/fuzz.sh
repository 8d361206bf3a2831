#!/usr/bin/env bash
# fuzz.sh runs every native fuzz target of the module for a while each.
# Usage: scripts/fuzz.sh [DURATION]   (default 10s; docs/testing.md)
# FUZZMINIMIZE bounds the minimization of each new input (default 2s): Go's
# default of 60s lets a target whose runs take milliseconds (a config
# compiled twice) spend a short run minimizing one input instead of fuzzing.
# A target fails the run when it finds an input (written under
# testdata/fuzz) or fails otherwise; see golang/go#75804 below for the one
# report that is not a finding.
set -euo pipefail
fuzztime=${1:-10s}
minimize=${FUZZMINIMIZE:-2s}
cd "$(dirname "$0")/.."
found=0
count_files() {
	if [ -d "$1" ]; then find "$1" -type f | wc -l; else echo 0; fi
}
while IFS=: read -r file _ line; do
	name=$(sed -E 's/^func (Fuzz[A-Za-z0-9_]*)\(.*/\1/' <<<"$line")
	pkg=./$(dirname "$file")
	echo "fuzz: $pkg $name for $fuzztime"
	corpus=$pkg/testdata/fuzz/$name
	before=$(count_files "$corpus")
	if ! out=$(go test -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime" -fuzzminimizetime "$minimize" "$pkg" 2>&1); then
		echo "$out"
		after=$(count_files "$corpus")
		# Go 1.26's fuzzing coordinator can report its own -fuzztime deadline
		# as a failure (golang/go#75804, fixed in Go 1.27): a bare "context
		# deadline exceeded", no failing input written. That is no finding
		# once the corpus replays clean; anything else fails the run.
		if [ "$after" = "$before" ] && grep -Eq '^[[:space:]]+context deadline exceeded$' <<<"$out" &&
			! grep -q 'Failing input written' <<<"$out" &&
			go test -run "^${name}\$" "$pkg" >/dev/null; then
			echo "fuzz: $name: the coordinator's own deadline (golang/go#75804), no failing input, corpus replays clean"
		else
			exit 1
		fi
	else
		echo "$out" | tail -n 2
	fi
	found=$((found + 1))
done < <(grep -rn --include='*_test.go' -E '^func Fuzz[A-Za-z0-9_]*\(' . | grep -v '^./bin/')
if [ "$found" -eq 0 ]; then
	echo "fuzz: no fuzz targets found" >&2
	exit 1
fi
echo "fuzz: $found targets passed"
