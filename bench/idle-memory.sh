#!/usr/bin/env bash
# idle-memory.sh starts each daemon in bin/ on a throwaway config, waits
# until it is ready and has settled, and prints its resident memory against
# the target in docs/targets.md (<= 30 MiB RSS per idle daemon).
set -euo pipefail
cd "$(dirname "$0")/.."
target_kib=$((30 * 1024))
work=$(mktemp -d /tmp/edge-bench-mem.XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

# The daemons that exist so far, each with the section it needs.
declare -A sections=(
	[edge-testd]='testd: {listen: "127.0.0.1:0", metrics: {listen: "127.0.0.1:0"}}'
)
fail=0
for daemon in "${!sections[@]}"; do
	[ -x "bin/$daemon" ] || { echo "idle-memory: bin/$daemon missing; run make build" >&2; exit 1; }
	name=${daemon#edge-}
	cat >"$work/$name.yaml" <<-YAML
	version: 1
	admin: {socket_dir: $work/run}
	state_dir: $work/state
	${sections[$daemon]}
	YAML
	"bin/$daemon" -config "$work/$name.yaml" 2>"$work/$name.log" &
	pid=$!
	pids+=("$pid")
	for _ in $(seq 100); do
		grep -q 'msg=ready' "$work/$name.log" && break
		sleep 0.05
	done
	grep -q 'msg=ready' "$work/$name.log" || { cat "$work/$name.log" >&2; exit 1; }
	sleep 2
	rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status")
	verdict=ok
	[ "$rss" -le "$target_kib" ] || { verdict=OVER; fail=1; }
	printf '%-12s idle RSS %6.1f MiB   target <= 30 MiB   %s\n' "$daemon" "$(awk -v k="$rss" 'BEGIN {print k/1024}')" "$verdict"
done
exit "$fail"
