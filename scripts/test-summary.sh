#!/usr/bin/env bash
# test-summary.sh passes `go test -v` output through and ends with one
# line "N passed, N failed, N skipped" counting top-level tests; it fails
# when a test failed or none ran at all.
set -uo pipefail
pass=0 fail=0 skip=0
while IFS= read -r line; do
	printf '%s\n' "$line"
	case "$line" in
	"--- PASS: "*) pass=$((pass + 1)) ;;
	"--- FAIL: "*) fail=$((fail + 1)) ;;
	"--- SKIP: "*) skip=$((skip + 1)) ;;
	esac
done
echo "integration: $pass passed, $fail failed, $skip skipped"
if [ "$fail" -gt 0 ] || [ $((pass + skip)) -eq 0 ]; then
	exit 1
fi
