#!/usr/bin/env bash
# firewall.sh times loading a large blocklist into the kernel, edge's way
# against nft's, side by side in one run (target in docs/targets.md: edge's apply
# of a 100k-prefix blocklist takes <= 0.5x the time of `nft -f` of the
# same set).
#
# In a throwaway network namespace (edge-bench-fw-<random>, deleted on
# exit; nothing touches the host's own ruleset):
#   - netfilter/nft/internal/benchapply writes the ruleset (two interval
#     sets of N random, non-overlapping /24 + /32 prefixes in 10.0.0.0/8
#     and /48 + /128 in 2001:db8::/32, and the rules using them) as the
#     nft -f file edge-firewall -render would write (RenderScript);
#   - nft -f loads that file RUNS times, each time into an empty namespace
#     (the table is deleted untimed before each run); only the nft process
#     is timed;
#   - benchapply applies the same ruleset through package nft RUNS times,
#     the same way: delete (untimed), then nft.Apply, which includes
#     checking the ruleset, encoding it, the netlink transaction and
#     reading every set's element count back.
# Both sides run pinned to CPU 0 (taskset); the tables report medians.
#
# Environment:
#   N=100000   prefixes in the blocklist
#   RUNS=5     timed loads per side
#   OUT=DIR    output directory (default: a new /tmp/edge-bench-fw.*)
#   SKIP_DEPS=1  do not run scripts/deps.sh
#
# Exit status: 0 when both sides ran, whether or not edge met the target
# (a measurement, not a test); 1 when a load failed; 2 on bad arguments.
set -euo pipefail
cd "$(dirname "$0")/.."

N=${N:-100000}
RUNS=${RUNS:-5}
[[ $N =~ ^[1-9][0-9]*$ && $RUNS =~ ^[1-9][0-9]*$ ]] ||
	{ echo "firewall.sh: N and RUNS must be positive integers" >&2; exit 2; }
[ "$(id -u)" -eq 0 ] || { echo "firewall.sh: needs root (network namespaces, nftables)" >&2; exit 1; }
if [ -z "${SKIP_DEPS:-}" ]; then
	scripts/deps.sh nftables iproute2 util-linux >&2
fi
for tool in nft ip taskset go; do
	command -v "$tool" >/dev/null || { echo "firewall.sh: $tool not found" >&2; exit 1; }
done

OUT=${OUT:-$(mktemp -d /tmp/edge-bench-fw.XXXXXX)}
mkdir -p "$OUT"
ns=edge-bench-fw-$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')
cleanup() { ip netns del "$ns" 2>/dev/null || true; }
trap cleanup EXIT
trap 'exit 130' INT TERM
ip netns add "$ns"

go build -o "$OUT/benchapply" ./netfilter/nft/internal/benchapply
file=$OUT/blocklist.nft
"$OUT/benchapply" -n "$N" -write "$file"
rev=$(git rev-parse --short HEAD 2>/dev/null || echo "?")
[ -z "$(git status --porcelain -- firewall netfilter 2>/dev/null)" ] || rev="$rev + uncommitted changes"

median() { sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }

# --- nft -f -------------------------------------------------------------------
nft_ms=()
for i in $(seq "$RUNS"); do
	ip netns exec "$ns" nft delete table inet edge 2>/dev/null || true
	us=$(ip netns exec "$ns" taskset -c 0 sh -c \
		's=$(date +%s%N); nft -f "$1" || exit 1; e=$(date +%s%N); echo $(((e - s) / 1000))' _ "$file") ||
		{ echo "firewall.sh: nft -f $file failed" >&2; exit 1; }
	nft_ms+=("$(awk -v us="$us" 'BEGIN {printf "%.1f", us / 1000}')")
done
ip netns exec "$ns" nft delete table inet edge 2>/dev/null || true

# --- edge (package nft) ---------------------------------------------------------
taskset -c 0 "$OUT/benchapply" -n "$N" -netns "/run/netns/$ns" -runs "$RUNS" >"$OUT/benchapply.log" ||
	{ cat "$OUT/benchapply.log" >&2; echo "firewall.sh: benchapply failed" >&2; exit 1; }
mapfile -t edge_ms < <(awk '/^apply / {sub(/ms$/, "", $3); print $3}' "$OUT/benchapply.log")

nft_med=$(printf '%s\n' "${nft_ms[@]}" | median)
edge_med=$(printf '%s\n' "${edge_ms[@]}" | median)
ratio=$(awk -v e="$edge_med" -v n="$nft_med" 'BEGIN {printf "%.2f", e / n}')
verdict=$(awk -v r="$ratio" 'BEGIN {print (r <= 0.5 ? "PASS" : "FAIL")}')

echo "firewall.sh: $N-prefix blocklist, $RUNS loads per side, pinned to CPU 0; edge at $rev; $(nft --version)"
echo
echo "| loader | load times ms | median ms |"
echo "|---|---|---|"
echo "| nft -f (RenderScript's file) | ${nft_ms[*]} | $nft_med |"
echo "| edge nft.Apply (check, encode, commit, count read-back) | ${edge_ms[*]} | $edge_med |"
echo
echo "| target | edge ms | nft -f ms | ratio | verdict |"
echo "|---|---|---|---|---|"
echo "| 100k-prefix blocklist apply <= 0.5x nft -f | $edge_med | $nft_med | ${ratio}x | $verdict |"
