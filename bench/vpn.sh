#!/usr/bin/env bash
# vpn.sh measures iperf3 throughput through edge-vpn's embedded wireguard-go
# against a pair of Debian wireguard-go daemons, side by side in one run
# (target in docs/targets.md: WireGuard userspace >= 1.0x the iperf3 throughput of a
# Debian wireguard-go pair).
#
# Two configurations, each in its own pair of throwaway network namespaces
# (edge-bench-vpn-<random>-{edge,pair}-{a,b}, deleted on exit; nothing runs
# in or touches the host's own namespace). A and B are joined by a veth pair
# (10.97.0.1/24 in A, 10.97.0.2/24 in B); the tunnel is 10.96.0.1 in A and
# 10.96.0.2 in B, MTU 1420 on both ends (both implementations' default):
#   edge  A: edge-vpn, built by vpn.sh from this tree, with one userspace
#            interface (embedded wireguard-go, listen port 51820) and B as a
#            static peer; its key is made by edge-vpn, read with wg show;
#         B: Debian wireguard-go, configured with wg set, dialing A.
#   pair  A: Debian wireguard-go, configured with wg set (own key, listen
#            port 51820, peer B, address 10.96.0.1/24);
#         B: as above.
# Interfaces are named wgb<E|P><A|B><random>: /var/run/wireguard/<name>.sock
# is one directory for every namespace and every concurrent run.
#
# A ping over each tunnel (retried for 10 s: the first handshake may need a
# retry) comes first. Then an iperf3 server in A listens on 10.96.0.1 and
# the client in B runs `iperf3 -c 10.96.0.1 -t DURATION -J`, forward (B->A:
# A decrypts) and with -R (A->B: A encrypts); the figure is
# end.sum_received.bits_per_second. Both tunnels stay up for the whole run
# and the measurements interleave: each of RUNS rounds measures both
# configurations in both directions, the configurations' order alternating
# between rounds, so the shared machine's drift hits both alike. The tables
# report medians, the CPU each side's WireGuard process used during the
# transfers (% of one core) and how busy each core was in all (the iperf3
# ends and the kernel's packet work share the cores; a core near 100% busy
# is the side that set the pace).
#
# Pinning: side A (the implementation under test: edge-vpn, or wireguard-go
# in A, and the iperf3 server) runs on CPU 0, side B (Debian wireguard-go in
# B and the iperf3 client) on CPU 1, with taskset -c, the same in both
# configurations, so only the A-side implementation differs.
#
# Environment:
#   RUNS=3       iperf3 runs per configuration and direction
#   DURATION=5   seconds per iperf3 run (SECONDS=, which bash keeps as its
#                own clock, is read from the environment vpn.sh started with
#                as another name for it)
#   OUT=DIR      keep the configs, logs and iperf3 JSON in DIR (default: a
#                temporary directory, deleted on exit)
#   SKIP_DEPS=1  do not run scripts/deps.sh
#
# Exit status: 0 when both configurations came up and every iperf3 run
# finished, whether or not edge met the target (a measurement, not a test);
# 1 when a side failed to come up or a transfer failed; 2 on bad arguments.
set -euo pipefail
cd "$(dirname "$0")/.."

# bash counts SECONDS up from the value it starts with, so the value the
# caller gave is taken from the initial environment, once.
env_seconds=$(tr '\0' '\n' <"/proc/$$/environ" | sed -n 's/^SECONDS=//p' | head -1)
RUNS=${RUNS:-3}
DURATION=${DURATION:-${env_seconds:-5}}
[[ $RUNS =~ ^[1-9][0-9]*$ && $DURATION =~ ^[1-9][0-9]*$ ]] ||
	{ echo "vpn.sh: RUNS and DURATION (SECONDS) must be positive integers" >&2; exit 2; }
[ "$(id -u)" -eq 0 ] || { echo "vpn.sh: needs root (network namespaces, TUN devices)" >&2; exit 1; }
if [ -z "${SKIP_DEPS:-}" ]; then
	scripts/deps.sh wireguard-go wireguard-tools iperf3 jq iproute2 iputils-ping util-linux >&2
fi
for tool in ip ss wg wireguard-go iperf3 jq ping taskset go; do
	command -v "$tool" >/dev/null || { echo "vpn.sh: $tool not found" >&2; exit 1; }
done
[ "$(nproc)" -ge 2 ] || echo "vpn.sh: warning: $(nproc) CPU; sides A and B share it" >&2

keep=${OUT:+1}
OUT=${OUT:-$(mktemp -d /tmp/edge-bench-vpn.XXXXXX)}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
wgdir=/var/run/wireguard

# A random tag no namespace or WireGuard socket uses yet.
while :; do
	tag=$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')
	taken=
	for f in /run/netns/edge-bench-vpn-"$tag"-* "$wgdir"/wgb??"$tag".sock; do
		[ ! -e "$f" ] || taken=1
	done
	[ -n "$taken" ] || break
done

# --- processes, namespaces and sockets: all ours, all removed on exit --------
namespaces=()
ifaces=()
# shellcheck source=bench/lib/procs.sh
. "${BASH_SOURCE%/*}/lib/procs.sh"
cleanup() {
	local pid ns ifc
	for pid in "${pids[@]}"; do stop_pid "$pid"; done
	for ns in "${namespaces[@]}"; do ip netns del "$ns" 2>/dev/null || true; done
	for ifc in "${ifaces[@]}"; do rm -f "$wgdir/$ifc.sock"; done
	if [ -n "$keep" ]; then rm -rf "$OUT/run"; else rm -rf "$OUT"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start NS CPU LOG CMD... starts CMD in namespace NS pinned to CPU; ip netns
# exec and taskset exec in place, so $started is CMD's own PID.
start() {
	local ns=$1 cpu=$2 log=$3
	shift 3
	ip netns exec "$ns" taskset -c "$cpu" "$@" >"$log" 2>&1 &
	started=$!
	pids+=("$started")
}

# fail MSG [LOG...] prints the logs and MSG, and exits 1.
fail() {
	local msg=$1 f
	shift
	for f in "$@"; do
		[ -f "$f" ] || continue
		echo "--- $f" >&2
		tail -n 30 "$f" >&2
	done
	if [ -n "$keep" ]; then echo "vpn.sh: $msg (logs in $OUT)" >&2; else echo "vpn.sh: $msg (OUT=DIR keeps the logs)" >&2; fi
	exit 1
}

# wait_sock PID IFACE LOG waits up to 10 s for the UAPI socket of IFACE.
wait_sock() {
	local i
	for i in $(seq 100); do
		kill -0 "$1" 2>/dev/null || fail "the daemon for $2 exited" "$3"
		[ ! -S "$wgdir/$2.sock" ] || return 0
		sleep 0.1
	done
	fail "no $wgdir/$2.sock after 10 s" "$3"
}

genkey() { (umask 077 && wg genkey >"$1"); }

# netns_pair CONF makes the namespaces of CONF with their veth pair and sets
# nsA[CONF] and nsB[CONF].
declare -A nsA nsB ifA ifB implA wgB cpu_pid
netns_pair() {
	local a=edge-bench-vpn-$tag-$1-a b=edge-bench-vpn-$tag-$1-b
	nsA[$1]=$a
	nsB[$1]=$b
	ip netns add "$a"
	namespaces+=("$a")
	ip netns add "$b"
	namespaces+=("$b")
	ip -n "$a" link add veth-a type veth peer name veth-b netns "$b"
	ip -n "$a" addr add 10.97.0.1/24 dev veth-a
	ip -n "$b" addr add 10.97.0.2/24 dev veth-b
	for ns in "$a" "$b"; do
		ip -n "$ns" link set lo up
	done
	ip -n "$a" link set veth-a up
	ip -n "$b" link set veth-b up
}

# side_b CONF APUB starts Debian wireguard-go in B and points it at A.
side_b() {
	local conf=$1 apub=$2 b=${nsB[$1]} ifc=${ifB[$1]}
	start "$b" 1 "$OUT/$conf-b-wireguard-go.log" wireguard-go -f "$ifc"
	wgB[$conf]=$started
	wait_sock "$started" "$ifc" "$OUT/$conf-b-wireguard-go.log"
	ip netns exec "$b" wg set "$ifc" private-key "$OUT/$conf-b.key" \
		peer "$apub" endpoint 10.97.0.1:51820 allowed-ips 10.96.0.1/32
	ip -n "$b" addr add 10.96.0.2/24 dev "$ifc"
	ip -n "$b" link set "$ifc" up
}

# tunnel_up CONF pings A from B over the tunnel (10 s) and starts the
# iperf3 server in A.
tunnel_up() {
	local conf=$1 i ok=
	for i in $(seq 10); do
		if ip netns exec "${nsB[$conf]}" ping -c1 -W1 10.96.0.1 >/dev/null 2>&1; then
			ok=1
			break
		fi
	done
	if [ -z "$ok" ]; then
		ip netns exec "${nsA[$conf]}" wg show "${ifA[$conf]}" >"$OUT/$conf-a-wg-show.txt" 2>&1 || true
		ip netns exec "${nsB[$conf]}" wg show "${ifB[$conf]}" >"$OUT/$conf-b-wg-show.txt" 2>&1 || true
		fail "$conf: no ping from B to 10.96.0.1 over the tunnel within 10 s" \
			"$OUT/$conf"-a-*.log "$OUT/$conf-b-wireguard-go.log" "$OUT/$conf-a-wg-show.txt" "$OUT/$conf-b-wg-show.txt"
	fi
	start "${nsA[$conf]}" 0 "$OUT/$conf-iperf3-server.log" iperf3 -s -B 10.96.0.1
	local pid=$started
	for i in $(seq 100); do
		kill -0 "$pid" 2>/dev/null || fail "$conf: iperf3 -s exited" "$OUT/$conf-iperf3-server.log"
		[ -z "$(ip netns exec "${nsA[$conf]}" ss -Hltn 'sport = :5201')" ] || return 0
		sleep 0.1
	done
	fail "$conf: iperf3 -s not listening after 10 s" "$OUT/$conf-iperf3-server.log"
}

# --- builds and versions ------------------------------------------------------
# The tree edge-vpn comes from, taken now: the tree may change during a run.
rev=$(git rev-parse --short HEAD 2>/dev/null || echo "?")
[ -z "$(git status --porcelain -- vpn cmd/edge-vpn internal go.mod go.sum 2>/dev/null)" ] || rev="$rev + uncommitted changes"
go build -o "$OUT/edge-vpn" ./cmd/edge-vpn
wgmod=$(go list -m -f '{{.Version}}' golang.zx2c4.com/wireguard 2>/dev/null || echo "?")
wgdeb=$(wireguard-go --version 2>/dev/null | awk '/^wireguard-go/ {print $2; exit}')
load_start=$(cut -d' ' -f1-3 /proc/loadavg)

# --- edge: edge-vpn in A, Debian wireguard-go in B ----------------------------
ifA[edge]=wgbEA$tag
ifB[edge]=wgbEB$tag
ifaces+=("${ifA[edge]}" "${ifB[edge]}")
netns_pair edge
genkey "$OUT/edge-b.key"
bpub=$(wg pubkey <"$OUT/edge-b.key")
mkdir -p "$OUT/run" "$OUT/state"
cat >"$OUT/edge-vpn.yaml" <<-YAML
	version: 1
	site:
	  networks:
	    vpn: [10.96.0.0/24]
	admin: {socket_dir: $OUT/run}
	state_dir: $OUT/state
	vpn:
	  metrics: {listen: "off"}
	  wireguard:
	    - interface: ${ifA[edge]}
	      pool: [vpn]
	      endpoint: "10.97.0.1:51820"
	      listen_port: 51820
	      userspace: true
	      peers:
	        - {name: bench, public_key: $bpub, addresses: [10.96.0.2]}
YAML
log=$OUT/edge-a-edge-vpn.log
start "${nsA[edge]}" 0 "$log" "$OUT/edge-vpn" -config "$OUT/edge-vpn.yaml"
implA[edge]=$started
for _ in $(seq 200); do
	kill -0 "${implA[edge]}" 2>/dev/null || fail "edge-vpn exited before it was ready" "$log"
	grep -qs 'msg=ready' "$log" && break
	sleep 0.1
done
grep -qs 'msg=ready' "$log" || fail "edge-vpn not ready after 20 s" "$log"
apub=$(ip netns exec "${nsA[edge]}" wg show "${ifA[edge]}" public-key) ||
	fail "wg show ${ifA[edge]} public-key failed in A" "$log"
side_b edge "$apub"
tunnel_up edge

# --- pair: Debian wireguard-go in A and in B ----------------------------------
ifA[pair]=wgbPA$tag
ifB[pair]=wgbPB$tag
ifaces+=("${ifA[pair]}" "${ifB[pair]}")
netns_pair pair
genkey "$OUT/pair-a.key"
genkey "$OUT/pair-b.key"
apub=$(wg pubkey <"$OUT/pair-a.key")
bpub=$(wg pubkey <"$OUT/pair-b.key")
log=$OUT/pair-a-wireguard-go.log
start "${nsA[pair]}" 0 "$log" wireguard-go -f "${ifA[pair]}"
implA[pair]=$started
wait_sock "$started" "${ifA[pair]}" "$log"
ip netns exec "${nsA[pair]}" wg set "${ifA[pair]}" private-key "$OUT/pair-a.key" listen-port 51820 \
	peer "$bpub" allowed-ips 10.96.0.2/32
ip -n "${nsA[pair]}" addr add 10.96.0.1/24 dev "${ifA[pair]}"
ip -n "${nsA[pair]}" link set "${ifA[pair]}" up
side_b pair "$apub"
tunnel_up pair

# --- measurements -------------------------------------------------------------
median() { sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
proc_ticks() { sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | awk '{print $12 + $13}'; }
hz=$(getconf CLK_TCK)
declare -A mbit cpuA cpuB busy0 busy1
# busy_pct BEFORE AFTER prints how busy CPU 0 and CPU 1 were between two
# snapshots of their /proc/stat lines, in % (every process, not just ours).
busy_pct() {
	awk -v a="$1" -v b="$2" 'BEGIN {
		n = split(a, la, "\n"); split(b, lb, "\n")
		for (i = 1; i <= n; i++) {
			split(la[i], x, " "); split(lb[i], y, " ")
			t = 0; for (j = 2; j <= 9; j++) t += y[j] - x[j]
			idle = y[5] - x[5] + y[6] - x[6]
			printf "%s%.0f", (i > 1 ? " " : ""), (t > 0 ? 100 * (t - idle) / t : 0)
		}
		print ""
	}'
}
describe_dir() { if [ "$1" = fwd ]; then echo "B->A (A decrypts)"; else echo "A->B, -R (A encrypts)"; fi; }

# measure CONF DIR RUN runs one iperf3 transfer and appends its Mbit/s and
# the CPU % of both WireGuard processes.
measure() {
	local conf=$1 dir=$2 run=$3 json=$OUT/$1-$2-$3.json
	local -a rflag=()
	[ "$dir" = fwd ] || rflag=(-R)
	local a0 b0 a1 b1 t0 t1 bps s0 s1 c0 c1
	s0=$(grep -E '^cpu[01] ' /proc/stat)
	a0=$(proc_ticks "${implA[$conf]}")
	b0=$(proc_ticks "${wgB[$conf]}")
	t0=$(date +%s.%N)
	ip netns exec "${nsB[$conf]}" taskset -c 1 iperf3 -c 10.96.0.1 -t "$DURATION" -J "${rflag[@]}" >"$json" 2>&1 ||
		fail "$conf $dir run $run: iperf3 failed: $(jq -r '.error // empty' "$json" 2>/dev/null)" "$json" "$OUT/$conf-iperf3-server.log"
	t1=$(date +%s.%N)
	a1=$(proc_ticks "${implA[$conf]}")
	b1=$(proc_ticks "${wgB[$conf]}")
	s1=$(grep -E '^cpu[01] ' /proc/stat)
	read -r c0 c1 <<<"$(busy_pct "$s0" "$s1")"
	busy0[$conf-$dir]+="$c0 "
	busy1[$conf-$dir]+="$c1 "
	bps=$(jq -r '.end.sum_received.bits_per_second // empty' "$json")
	[ -n "$bps" ] || fail "$conf $dir run $run: no end.sum_received in iperf3's JSON" "$json"
	local mb
	mb=$(awk -v b="$bps" 'BEGIN {printf "%.0f", b / 1e6}')
	mbit[$conf-$dir]+="$mb "
	cpuA[$conf-$dir]+="$(awk -v a="$a0" -v b="$a1" -v t0="$t0" -v t1="$t1" -v hz="$hz" 'BEGIN {printf "%.0f", (b - a) / hz / (t1 - t0) * 100}') "
	cpuB[$conf-$dir]+="$(awk -v a="$b0" -v b="$b1" -v t0="$t0" -v t1="$t1" -v hz="$hz" 'BEGIN {printf "%.0f", (b - a) / hz / (t1 - t0) * 100}') "
	printf '  run %s %-4s %-22s %5s Mbit/s  CPU 0 %s%% busy, CPU 1 %s%%\n' "$run" "$conf" "$(describe_dir "$dir")" "$mb" "$c0" "$c1" >&2
}

for run in $(seq "$RUNS"); do
	order="edge pair"
	[ $((run % 2)) -eq 1 ] || order="pair edge"
	for dir in fwd rev; do
		for conf in $order; do
			measure "$conf" "$dir" "$run"
			sleep 1
		done
	done
done
load_end=$(cut -d' ' -f1-3 /proc/loadavg)

med() { tr ' ' '\n' <<<"$1" | grep . | median; }
declare -A label=([edge]="edge-vpn (embedded wireguard-go)" [pair]="Debian wireguard-go")
echo "vpn.sh: iperf3 through WireGuard, $RUNS x ${DURATION}s per configuration and direction, side A on CPU 0, side B on CPU 1; edge-vpn at $rev (golang.zx2c4.com/wireguard $wgmod); Debian wireguard-go ${wgdeb:-?}; $(iperf3 --version | head -1)"
echo "load average: $load_start at the start, $load_end at the end"
echo
echo "| A side | direction | Mbit/s per run | median Mbit/s | CPU % A side | CPU % B wireguard-go | CPU 0 / CPU 1 busy % |"
echo "|---|---|---|---|---|---|---|"
for conf in edge pair; do
	for dir in fwd rev; do
		k=$conf-$dir
		echo "| ${label[$conf]} | $(describe_dir "$dir") | ${mbit[$k]% } | $(med "${mbit[$k]}") | $(med "${cpuA[$k]}") | $(med "${cpuB[$k]}") | $(med "${busy0[$k]}") / $(med "${busy1[$k]}") |"
	done
done
echo
echo "| target | edge Mbit/s | wireguard-go pair Mbit/s | ratio | verdict |"
echo "|---|---|---|---|---|"
for dir in fwd rev; do
	e=$(med "${mbit[edge-$dir]}")
	p=$(med "${mbit[pair-$dir]}")
	ratio=$(awk -v e="$e" -v p="$p" 'BEGIN {printf "%.2f", (p > 0 ? e / p : 0)}')
	verdict=$(awk -v r="$ratio" 'BEGIN {print (r >= 1.0 ? "PASS" : "BELOW TARGET")}')
	echo "| WireGuard userspace >= 1.0x wireguard-go pair, $(describe_dir "$dir") | $e | $p | ${ratio}x | $verdict |"
done
