#!/usr/bin/env bash
# dns.sh measures edge-dns against Knot, PowerDNS, Unbound and dnsmasq with
# dnsperf, side by side in one run, the way the peer baseline in
# docs/targets.md was measured: every server listens
# on 127.0.0.1 on its own port, pinned to CPU 0 with one worker thread;
# dnsperf is pinned to CPU 1; after WARMUP seconds of load, DURATION seconds
# are measured with `dnsperf -s 127.0.0.1 -p PORT -d QFILE -l DURATION -q 100`.
# One answer is checked with dig before and after every row.
#
#   scenario   question                              servers
#   auth       host1..100.example.test A             edge-dns knot pdns unbound
#   geo        www.geo.example.test A (loopback=US)  edge-dns knot pdns
#   geo-ecs    the same, ECS 198.51.100.0/24 (=DE)   edge-dns knot pdns
#   split      www.split.example.test A, 127/8 in    edge-dns unbound knot pdns
#   fwd-cache  host1..100.fwd.test A, cache hits     edge-dns unbound dnsmasq
#
# Configs are the templates in bench/dns/; see bench/RESULTS.md for figures.
#
# Environment:
#   SCENARIOS="auth geo geo-ecs split fwd-cache"   which scenarios to run
#   RUNS=1          repeat every row; the tables report medians
#   DURATION=10     measured seconds per row
#   WARMUP=2        seconds of load before each measurement
#   DNSPERF_ARGS=   extra dnsperf flags, the same for every row ("-c 4")
#   BASE_PORT=25300 first port tried; busy ports are skipped
#   EDGE_DNS=PATH   edge-dns binary (default: bin/edge-dns when newer than
#                   every Go file, else built into the output directory)
#   OUT=DIR         output directory (default: a new /tmp/edge-bench-dns.*)
#   SKIP_DEPS=1     do not run scripts/deps.sh
#
# The machine is shared, so before each measurement dns.sh waits (at most
# QUIET_WAIT=60 seconds) until neither CPU is more than QUIET_BUSY=25% busy,
# and it measures a row again (at most RETRIES=2 times) when neither the
# server nor dnsperf got MIN_CPU=70% of its core: other processes had them.
#
# Exit status: 0 when every row ran and answered right, whether or not
# edge-dns met its targets (a measurement, not a test); 1 when a server did
# not start or answered wrongly.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
tmpl=$root/bench/dns

SCENARIOS=${SCENARIOS:-auth geo geo-ecs split fwd-cache}
RUNS=${RUNS:-1}
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
DNSPERF_ARGS=${DNSPERF_ARGS:-}
BASE_PORT=${BASE_PORT:-25300}
QUIET_BUSY=${QUIET_BUSY:-25}
QUIET_WAIT=${QUIET_WAIT:-60}
RETRIES=${RETRIES:-2}
MIN_CPU=${MIN_CPU:-70}

for s in $SCENARIOS; do
	case $s in
	auth | geo | geo-ecs | split | fwd-cache) ;;
	*) echo "dns.sh: unknown scenario $s (use auth geo geo-ecs split fwd-cache)" >&2; exit 2 ;;
	esac
done
[[ $RUNS =~ ^[1-9][0-9]*$ && $DURATION =~ ^[1-9][0-9]*$ ]] ||
	{ echo "dns.sh: RUNS and DURATION must be positive integers" >&2; exit 2; }
for v in WARMUP QUIET_BUSY QUIET_WAIT RETRIES MIN_CPU; do
	[[ ${!v} =~ ^[0-9]+$ ]] || { echo "dns.sh: $v must be a whole number" >&2; exit 2; }
done

# --- dependencies -----------------------------------------------------------
if [ -z "${SKIP_DEPS:-}" ]; then
	scripts/deps.sh dnsperf knot knot-module-geoip knot-dnsutils pdns-server pdns-backend-geoip \
		pdns-backend-bind unbound dnsmasq bind9-dnsutils iproute2 util-linux >&2
fi
for tool in dnsperf knotd knotc pdns_server unbound dnsmasq dig ss taskset; do
	command -v "$tool" >/dev/null || { echo "dns.sh: $tool not found" >&2; exit 1; }
done
[ "$(nproc)" -ge 2 ] || echo "dns.sh: warning: $(nproc) CPU; server and dnsperf share it" >&2

OUT=${OUT:-$(mktemp -d /tmp/edge-bench-dns.XXXXXX)}
mkdir -p "$OUT/zones" "$OUT/rows" "$OUT/raw"
results=$OUT/results.tsv
: >"$results"

# --- processes: every one we start is stopped by PID ------------------------
# shellcheck source=bench/lib/procs.sh
. "${BASH_SOURCE%/*}/lib/procs.sh"
cleanup() {
	local pid
	for pid in "${pids[@]}"; do stop_pid "$pid"; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start CPU LOG CMD... starts CMD pinned to CPU; the PID is in $started.
start() {
	local cpu=$1 log=$2
	shift 2
	taskset -c "$cpu" "$@" >"$log" 2>&1 &
	started=$!
	pids+=("$started")
}

# --- ports ------------------------------------------------------------------
next_port=$BASE_PORT
# alloc_port VAR sets VAR to the next port no socket listens on (tcp or udp).
alloc_port() {
	while [ -n "$(ss -Hlntu "( sport = :$next_port )" 2>/dev/null)" ]; do
		next_port=$((next_port + 1))
	done
	printf -v "$1" '%s' "$next_port"
	next_port=$((next_port + 1))
}
declare -A port
for s in edge-dns knot pdns unbound dnsmasq; do alloc_port "port[$s]"; done
alloc_port upstream_port
alloc_port metrics_port

# --- edge-dns and the shared data -----------------------------------------
log() { printf '%s\n' "$*" >&2; }
# The tree edge-dns comes from, taken now: the lead may commit during a run.
edge_rev=$(git rev-parse --short HEAD 2>/dev/null || echo "?")
[ -z "$(git status --porcelain -- dns cmd/edge-dns internal lb go.mod go.sum 2>/dev/null)" ] || edge_rev="$edge_rev + uncommitted changes"
if [ -n "${EDGE_DNS:-}" ]; then
	edge=$EDGE_DNS
	edge_src="$EDGE_DNS (EDGE_DNS)"
elif [ -x bin/edge-dns ] && [ -z "$(find . -name '*.go' -newer bin/edge-dns -print -quit)" ] &&
	[ ! go.mod -nt bin/edge-dns ]; then
	edge=$root/bin/edge-dns
	edge_src="bin/edge-dns of $(date -u -r bin/edge-dns '+%H:%M UTC'), no Go file newer"
else
	log "dns.sh: building edge-dns"
	go build -o "$OUT/edge-dns" ./cmd/edge-dns
	edge=$OUT/edge-dns
	edge_src="built by dns.sh"
fi
go run ./dns/geoip/geoiptest/mkmmdb -type country -o "$OUT/country.mmdb" "$tmpl/countries.txt"

soa() { printf '$ORIGIN %s.\n$TTL %s\n@ SOA ns1 hostmaster 1 3600 900 604800 300\n@ NS ns1\nns1 A 192.0.2.53\n' "$1" "$2"; }
{
	soa example.test 300
	for i in $(seq 100); do echo "host$i A 10.10.0.$i"; done
} >"$OUT/zones/example.test.zone"
for i in $(seq 100); do echo "local-data: \"host$i.example.test. 300 IN A 10.10.0.$i\""; done >"$OUT/zones/example.test.unbound"
{ soa geo.example.test 300; echo "www A 192.0.2.10"; } >"$OUT/zones/geo.example.test.zone"
{ soa split.example.test 300; echo "www A 192.0.2.20"; } >"$OUT/zones/split.example.test.zone"
{
	soa fwd.test 3600
	for i in $(seq 100); do echo "host$i A 10.20.0.$i"; done
} >"$OUT/zones/fwd.test.zone"
for i in $(seq 100); do echo "host$i.example.test A"; done >"$OUT/auth.queries"
echo "www.geo.example.test A" >"$OUT/geo.queries"
echo "www.split.example.test A" >"$OUT/split.queries"
for i in $(seq 100); do echo "host$i.fwd.test A"; done >"$OUT/fwd.queries"

# --- per-scenario facts -----------------------------------------------------
declare -A servers=(
	[auth]="edge-dns knot pdns unbound"
	[geo]="edge-dns knot pdns"
	[geo-ecs]="edge-dns knot pdns"
	[split]="edge-dns unbound knot pdns"
	[fwd-cache]="edge-dns unbound dnsmasq"
)
declare -A qfile=([auth]=auth [geo]=geo [geo-ecs]=geo [split]=split [fwd-cache]=fwd)
declare -A check_name=(
	[auth]=host42.example.test [geo]=www.geo.example.test [geo-ecs]=www.geo.example.test
	[split]=www.split.example.test [fwd-cache]=host42.fwd.test
)
declare -A check_want=(
	[auth]=10.10.0.42 [geo]=192.0.2.11 [geo-ecs]=192.0.2.12 [split]=10.0.0.10 [fwd-cache]=10.20.0.42
)
declare -A describe=(
	[auth]="host1..host100.example.test A from a zone (Unbound: local-data); answer checked: host42 = 10.10.0.42"
	[geo]="www.geo.example.test A chosen by the client's country; loopback is US (192.0.2.11), DE would be 192.0.2.12"
	[geo-ecs]="www.geo.example.test A with ECS 198.51.100.0/24 (dnsperf -E 8:00011800c63364); the answer must be DE's 192.0.2.12"
	[split]="www.split.example.test A; clients in 127.0.0.0/8 are inside and get 10.0.0.10 (outside: 192.0.2.20)"
	[fwd-cache]="host1..host100.fwd.test A, answered from the forwarder's cache (upstream: Knot on CPU 1, TTL 1h, cache filled first)"
)
ecs_dnsperf=(-E 8:00011800c63364)
ecs_dig=(+subnet=198.51.100.0/24)

# render TEMPLATE fills in a template from bench/dns for $server in $dir.
render() {
	sed -e "s|@WORK@|$OUT|g" -e "s|@RUN@|$dir|g" -e "s|@PORT@|${port[$server]}|g" \
		-e "s|@UPORT@|$upstream_port|g" -e "s|@MPORT@|$metrics_port|g" "$tmpl/$1"
}

# setup writes the config of $server for $scenario into $dir and sets cmd.
# It returns 1 (with $why) when edge-dns rejects a config it may reject.
setup() {
	local t=${scenario/geo-ecs/geo}
	case $server in
	edge-dns)
		render "edge-$t.yaml" >"$dir/edge.yaml"
		local rc=0
		"$edge" -check -config "$dir/edge.yaml" >"$dir/check.txt" 2>&1 || rc=$?
		if [ "$rc" -ne 0 ]; then
			why="config rejected: $(grep -v '^$' "$dir/check.txt" | head -3 | tr '\n' ' ')"
			[ -s "$dir/check.txt" ] || why="edge-dns -check exited $rc without a message"
			return 1
		fi
		cmd=(env GOMAXPROCS=1 "$edge" -config "$dir/edge.yaml")
		;;
	knot)
		mkdir -p "$dir/db"
		render "knot-$t.conf" >"$dir/knot.conf"
		[ ! -f "$tmpl/knot-$t.yaml" ] || render "knot-$t.yaml" >"$dir/knot-$t.yaml"
		cmd=(knotd -c "$dir/knot.conf")
		;;
	pdns)
		{ render pdns-common.conf; render "pdns-$t.conf"; } >"$dir/pdns.conf"
		[ ! -f "$tmpl/pdns-$t.yaml" ] || render "pdns-$t.yaml" >"$dir/pdns-$t.yaml"
		[ "$t" != auth ] || render named.conf >"$dir/named.conf"
		cmd=(pdns_server --config-dir="$dir")
		;;
	unbound)
		{ render unbound-common.conf; render "unbound-$t.conf"; } >"$dir/unbound.conf"
		cmd=(unbound -d -c "$dir/unbound.conf")
		;;
	dnsmasq)
		render "dnsmasq-$t.conf" >"$dir/dnsmasq.conf"
		cmd=(dnsmasq -C "$dir/dnsmasq.conf")
		;;
	esac
}

# ask PORT NAME [DIG ARGS] sets $got to "RCODE addr,addr" and returns 0 when
# a reply came.
ask() {
	local p=$1 name=$2 out status addrs
	shift 2
	out=$(dig +tries=1 +time=2 +noall +comments +answer @127.0.0.1 -p "$p" "$name" A "$@" 2>&1) || true
	status=$(sed -n 's/.*status: \([A-Z]*\),.*/\1/p' <<<"$out" | head -1)
	addrs=$(awk '$4 == "A" {print $5}' <<<"$out" | sort | paste -sd, -)
	got="${status:-no-reply} ${addrs:--}"
	[ -n "$status" ]
}

# wait_up PID PORT NAME waits up to 15s for any reply from a live PID.
wait_up() {
	local i
	for i in $(seq 150); do
		kill -0 "$1" 2>/dev/null || return 1
		ask "$2" "$3" && return 0
		sleep 0.1
	done
	return 1
}

# dnsperf_run OUTFILE ARGS... runs dnsperf on CPU 1 against the row's server.
dnsperf_run() {
	local o=$1
	shift
	# shellcheck disable=SC2086 # DNSPERF_ARGS is split on purpose
	taskset -c 1 dnsperf -s 127.0.0.1 -p "${port[$server]}" -d "$OUT/${qfile[$scenario]}.queries" \
		"$@" $DNSPERF_ARGS "${perf_extra[@]}" >"$o" 2>&1 || true
}

# parse FILE prints "qps<TAB>latency ms<TAB>lost %<TAB>NOERROR %<TAB>completed".
parse() {
	awk '
	/Queries completed:/ {done = $3}
	/Queries lost:/ {lost = $4; gsub(/[()%]/, "", lost)}
	/Response codes:/ {if (match($0, /NOERROR [0-9]+ \([0-9.]+%\)/)) {s = substr($0, RSTART, RLENGTH); sub(/.*\(/, "", s); sub(/%\)/, "", s); noerr = s}}
	/Queries per second:/ {qps = $4}
	/Average Latency \(s\):/ {lat = $4 * 1000}
	END {printf "%.0f\t%.3f\t%s\t%s\t%s\n", qps, lat, (lost == "" ? "-" : lost), (noerr == "" ? 0 : noerr), done + 0}' "$1"
}

# proc_ticks PID prints the CPU time (user + system, in clock ticks) PID and
# all its threads have used.
proc_ticks() { sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | awk '{print $12 + $13}'; }
# child_secs VAR sets VAR to the CPU seconds this shell's finished children
# have used: the second line of the times builtin. It must run in this
# shell, not in a $(...) subshell, whose children are not ours.
child_secs() {
	times >"$OUT/.times"
	printf -v "$1" '%s' "$(awk 'NR == 2 {
		split($1, u, /[ms]/); split($2, s, /[ms]/)
		print u[1] * 60 + u[2] + s[1] * 60 + s[2]
	}' "$OUT/.times")"
}

# cpu_busy prints how busy CPU 0 and CPU 1 were over one second, in %.
cpu_busy() {
	local a b
	a=$(grep -E '^cpu[01] ' /proc/stat)
	sleep 1
	b=$(grep -E '^cpu[01] ' /proc/stat)
	awk -v a="$a" -v b="$b" 'BEGIN {
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

# wait_quiet waits until other processes leave both CPUs mostly idle, at
# most QUIET_WAIT seconds; $quiet_note says when it gave up.
wait_quiet() {
	local waited=0 b0 b1
	quiet_note=""
	while :; do
		read -r b0 b1 <<<"$(cpu_busy)"
		[ "$b0" -gt "$QUIET_BUSY" ] || [ "$b1" -gt "$QUIET_BUSY" ] || return 0
		if [ "$waited" -ge "$QUIET_WAIT" ]; then
			quiet_note="CPUs still ${b0}%/${b1}% busy after waiting ${waited}s"
			return 0
		fi
		[ "$waited" -gt 0 ] || log "  (other processes keep the CPUs ${b0}%/${b1}% busy; waiting up to ${QUIET_WAIT}s)"
		sleep 4
		waited=$((waited + 5))
	done
}

# upstream_queries prints how many queries the upstream Knot has answered.
upstream_queries() {
	knotc -s "$upstream_dir/knot.sock" stats mod-stats.request-protocol 2>/dev/null |
		awk -F' = ' '{n += $2} END {print n + 0}'
}

failed=0
# record STATUS QPS LAT LOST NOERR SERVER-CPU CLIENT-CPU NOTE appends the
# row's result to results.tsv (after run, scenario and server).
record() {
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$run" "$scenario" "$server" "$@" >>"$results"
	case $1 in
	ok | contended) log "$(printf '  %-9s %-8s %9s qps %7s ms  lost %s%%  cpu server %s%% dnsperf %s%%  %s' "$scenario" "$server" "$2" "$3" "$4" "$6" "$7" "$8")" ;;
	*) log "  $scenario $server: $1 $8" ;;
	esac
	case $1 in FAILED | INVALID) failed=1 ;; esac
}

run_row() {
	dir=$OUT/rows/run$run-$scenario-$server
	mkdir -p "$dir"
	local raw=$OUT/raw/run$run-$scenario-$server p=${port[$server]} pid why="" up_before=0 up_after=0
	local name=${check_name[$scenario]} want=${check_want[$scenario]} stats
	perf_extra=()
	local dig_extra=()
	if [ "$scenario" = geo-ecs ]; then
		perf_extra=("${ecs_dnsperf[@]}")
		dig_extra=("${ecs_dig[@]}")
	fi
	if ! setup; then
		if [ "$scenario" = fwd-cache ]; then
			record n/a - - - - - - "not available ($why)"
		else
			record FAILED - - - - - - "$why"
		fi
		return
	fi
	start 0 "$dir/server.log" "${cmd[@]}"
	pid=$started
	if ! wait_up "$pid" "$p" "$name" "${dig_extra[@]}"; then
		stop_pid "$pid"
		record FAILED - - - - - - "did not start or answer on 127.0.0.1:$p (log: $dir/server.log)"
		return
	fi
	if [ "$scenario" = fwd-cache ]; then
		# Fill the cache: every name once, then the check below.
		dnsperf_run "$raw.fill" -n 1 -q 10
	fi
	ask "$p" "$name" "${dig_extra[@]}" || true
	if [ "$got" != "NOERROR $want" ]; then
		stop_pid "$pid"
		record INVALID - - - - - - "dig $name before the run: got $got, want NOERROR $want"
		return
	fi
	local ticks0 ticks1 client0 client1 t0 t1 server_cpu client_cpu attempt=0 contended="" quiet_note
	while :; do
		wait_quiet
		[ "$WARMUP" -eq 0 ] || dnsperf_run "$raw.warmup" -l "$WARMUP" -q 100
		[ "$scenario" != fwd-cache ] || up_before=$(upstream_queries)
		ticks0=$(proc_ticks "$pid")
		child_secs client0
		t0=$(date +%s.%N)
		dnsperf_run "$raw.txt" -l "$DURATION" -q 100
		t1=$(date +%s.%N)
		child_secs client1
		ticks1=$(proc_ticks "$pid")
		[ "$scenario" != fwd-cache ] || up_after=$(upstream_queries)
		# CPU use over the measured run, in % of one core: a server well
		# below 100% while dnsperf is near 100% was limited by the client;
		# both well below 100%, by other processes on the machine.
		server_cpu=$(awk -v a="$ticks0" -v b="$ticks1" -v t0="$t0" -v t1="$t1" -v hz="$(getconf CLK_TCK)" \
			'BEGIN {printf "%.0f", (b - a) / hz / (t1 - t0) * 100}')
		client_cpu=$(awk -v a="$client0" -v b="$client1" -v t0="$t0" -v t1="$t1" 'BEGIN {printf "%.0f", (b - a) / (t1 - t0) * 100}')
		[ "$server_cpu" -lt "$MIN_CPU" ] && [ "$client_cpu" -lt "$MIN_CPU" ] || break
		contended="server ${server_cpu}%, dnsperf ${client_cpu}% of their cores"
		if [ "$attempt" -ge "$RETRIES" ] || ! kill -0 "$pid" 2>/dev/null; then
			break
		fi
		attempt=$((attempt + 1))
		log "  $scenario $server: CPUs taken by other processes ($contended); measuring again"
		mv "$raw.txt" "$raw.contended$attempt"
		contended=""
	done
	[ "$server" != edge-dns ] || curl -sf "http://127.0.0.1:$metrics_port/metrics" >"$dir/metrics.txt" 2>/dev/null || true
	if ! kill -0 "$pid" 2>/dev/null; then
		stop_pid "$pid"
		record FAILED - - - - - - "exited during the run (log: $dir/server.log)"
		return
	fi
	ask "$p" "$name" "${dig_extra[@]}" || true
	local after=$got
	stop_pid "$pid"
	stats=$(parse "$raw.txt")
	local qps lat lost noerr done_n note=""
	IFS=$'\t' read -r qps lat lost noerr done_n <<<"$stats"
	[ "$scenario" != fwd-cache ] || note="upstream asked $((up_after - up_before)) times during the run"
	[ "$attempt" -eq 0 ] || note="${note:+$note, }measured $((attempt + 1)) times, the machine being busy"
	[ -z "$contended" ] || note="${note:+$note, }STILL CONTENDED ($contended)"
	[ -z "$quiet_note" ] || note="${note:+$note, }$quiet_note"
	if [ -s "$dir/metrics.txt" ]; then
		# Where edge-dns's answers came from (warm-up included).
		note="${note:+$note, }$(awk '
			/^edge_dns_queries_total[{ ]/ {q += $NF}
			/^edge_dns_answer_cache_hits_total / {a = $NF}
			/^edge_dns_cache_hits_total / {c = $NF}
			END {printf "%.0f queries: %.0f from the packed-answer cache, %.0f from the resolver cache", q, a, c}' "$dir/metrics.txt")"
	fi
	if [ "$after" != "NOERROR $want" ]; then
		record INVALID "$qps" "$lat" "$lost" "$noerr" "$server_cpu" "$client_cpu" "dig $name after the run: got $after, want NOERROR $want"
	elif [ "$done_n" -eq 0 ] || awk -v n="$noerr" 'BEGIN {exit !(n < 100)}'; then
		record INVALID "$qps" "$lat" "$lost" "$noerr" "$server_cpu" "$client_cpu" "only $noerr% NOERROR in dnsperf's answers ($raw.txt)"
	elif [ -n "$contended" ]; then
		record contended "$qps" "$lat" "$lost" "$noerr" "$server_cpu" "$client_cpu" "$note"
	else
		record ok "$qps" "$lat" "$lost" "$noerr" "$server_cpu" "$client_cpu" "$note"
	fi
}

# --- the run ----------------------------------------------------------------
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
load_start=$(loadavg)
started_at=$(date -u '+%Y-%m-%d %H:%M:%S UTC')
ps -eo pcpu,pid,comm --sort=-pcpu | head -15 >"$OUT/ps-start.txt"
log "dns.sh: output in $OUT; ports: edge-dns ${port[edge-dns]} knot ${port[knot]} pdns ${port[pdns]} unbound ${port[unbound]} dnsmasq ${port[dnsmasq]} upstream $upstream_port"

for run in $(seq "$RUNS"); do
	log "== run $run of $RUNS"
	for scenario in $SCENARIOS; do
		upstream_pid=""
		if [ "$scenario" = fwd-cache ]; then
			upstream_dir=$OUT/rows/run$run-upstream
			mkdir -p "$upstream_dir"
			dir=$upstream_dir server=knot
			mkdir -p "$dir/db"
			sed -e "s|@WORK@|$OUT|g" -e "s|@RUN@|$dir|g" -e "s|@PORT@|$upstream_port|g" \
				"$tmpl/knot-upstream.conf" >"$dir/knot.conf"
			start 1 "$dir/server.log" knotd -c "$dir/knot.conf"
			upstream_pid=$started
			if ! wait_up "$upstream_pid" "$upstream_port" host1.fwd.test || ! ask "$upstream_port" host42.fwd.test ||
				[ "$got" != "NOERROR 10.20.0.42" ]; then
				stop_pid "$upstream_pid"
				for server in ${servers[$scenario]}; do
					record FAILED - - - - - - "the upstream Knot did not start (log: $dir/server.log)"
				done
				continue
			fi
		fi
		# Rotate the order each run so no server always goes first.
		read -r -a list <<<"${servers[$scenario]}"
		n=${#list[@]}
		for i in $(seq 0 $((n - 1))); do
			server=${list[$(((i + run - 1) % n))]}
			run_row
		done
		[ -z "$upstream_pid" ] || stop_pid "$upstream_pid"
	done
done
load_end=$(loadavg)

# --- the report ---------------------------------------------------------------
version_of() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || echo "?"; }
report() {
	echo "## DNS benchmark, $started_at"
	echo
	echo "- machine: $(nproc) CPUs, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1); load average at start $load_start, at end $load_end"
	echo "- command: \`SCENARIOS=\"$SCENARIOS\" RUNS=$RUNS DURATION=$DURATION WARMUP=$WARMUP${DNSPERF_ARGS:+ DNSPERF_ARGS=\"$DNSPERF_ARGS\"} bench/dns.sh\`"
	echo "- per row: \`taskset -c 1 dnsperf -s 127.0.0.1 -p PORT -d QFILE -l $DURATION -q 100${DNSPERF_ARGS:+ $DNSPERF_ARGS}\` after a ${WARMUP}s warm-up; servers on CPU 0 with one worker thread; before each measurement dns.sh waited (at most ${QUIET_WAIT}s) for both CPUs to be at most ${QUIET_BUSY}% busy, and measured again (at most $RETRIES times) when neither the server nor dnsperf got ${MIN_CPU}% of its core"
	echo "- versions: edge-dns from $edge_rev at the start ($edge_src, $(go env GOVERSION), GOMAXPROCS=1); knot $(version_of knot); pdns-server $(version_of pdns-server); unbound $(version_of unbound); dnsmasq $(version_of dnsmasq); dnsperf $(version_of dnsperf)"
	echo "- raw output: $OUT"
	echo "- CPU % server / dnsperf: the share of one core each got during the measured seconds (a row where neither is near 100 shared its CPUs with other processes); QPS per server CPU = QPS / server share, less sensitive to that noise. Verdicts are on QPS, as docs/targets.md states the targets."
	awk -F'\t' -v scenarios="$SCENARIOS" -v runs="$RUNS" -v descfile="$OUT/describe.txt" '
	function fmt(x,   s) {
		x = sprintf("%.0f", x); s = ""
		while (length(x) > 3) { s = "," substr(x, length(x) - 2) s; x = substr(x, 1, length(x) - 3) }
		return x s
	}
	function median(arr, n,   i, j, t, a) {
		for (i = 1; i <= n; i++) a[i] = arr[i]
		for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j-1] + 0 > a[j] + 0; j--) { t = a[j]; a[j] = a[j-1]; a[j-1] = t }
		return n % 2 ? a[(n+1)/2] : (a[n/2] + a[n/2+1]) / 2
	}
	BEGIN {
		while ((getline line < descfile) > 0) { split(line, d, "\t"); desc[d[1]] = d[2] }
	}
	{
		k = $2 SUBSEP $3
		if (!(k in seen)) { seen[k] = 1; order[$2] = order[$2] " " $3 }
		per[k] = per[k] (per[k] == "" ? "" : ", ") ($4 == "ok" ? fmt($5) : $4 == "contended" ? fmt($5) "*" : $4)
		if ($4 == "contended") {
			# Kept apart: used only when a row has no uncontended run.
			k = k SUBSEP "c"
			if ($11 != "") note[k] = note[k] (note[k] == "" ? "" : "; ") "run " $1 ": " $11
		}
		if ($4 == "ok" || $4 == "contended") {
			n[k]++; q[k, n[k]] = $5; eff[k, n[k]] = ($9 > 0 ? $5 / ($9 / 100) : 0); l[k, n[k]] = $6; lo[k, n[k]] = $7; sc[k, n[k]] = $9; cc[k, n[k]] = $10
			if ($4 == "ok" && $11 != "") note[k] = note[k] (note[k] == "" ? "" : "; ") "run " $1 ": " $11
		} else {
			if (bad[k] != "FAILED" && bad[k] != "INVALID") bad[k] = $4
			note[k] = note[k] (note[k] == "" ? "" : "; ") "run " $1 ": " $11
		}
	}
	END {
		ns = split(scenarios, scn, " ")
		for (s = 1; s <= ns; s++) {
			S = scn[s]
			printf "\n### %s\n\n%s\n\n", S, desc[S]
			printf "| server | QPS (median of %d) | avg latency ms | lost %% | CPU %% server / dnsperf | QPS per server CPU | QPS per run | edge-dns / server |\n", runs
			print "|---|---:|---:|---:|---:|---:|---|---:|"
			ek = S SUBSEP "edge-dns"
			if (n[ek] == 0) ek = ek SUBSEP "c"
			eq = ""
			if (!((S, "edge-dns") in bad) && n[ek] > 0) {
				for (i = 1; i <= n[ek]; i++) t[i] = q[ek, i]
				eq = median(t, n[ek])
			}
			m = split(order[S], sv, " ")
			for (j = 1; j <= m; j++) {
				k = S SUBSEP sv[j]
				name = sv[j]
				if (k in bad) {
					printf "| %s | %s | | | | | %s | |\n", sv[j], bad[k], per[k]
					continue
				}
				pk = k
				if (n[k] == 0) { k = k SUBSEP "c"; name = name " (contended)"; cont[S, sv[j]] = 1 }
				for (i = 1; i <= n[k]; i++) { t[i] = q[k, i]; u[i] = l[k, i]; v[i] = lo[k, i]; w[i] = sc[k, i]; x[i] = cc[k, i]; y[i] = eff[k, i] }
				mq = median(t, n[k]); ml = median(u, n[k]); mlo = median(v, n[k])
				ratio = sv[j] == "edge-dns" ? "-" : (eq == "" ? "n/a" : sprintf("%.2fx", eq / mq))
				printf "| %s | %s | %.3f | %.2f | %.0f / %.0f | %s | %s | %s |\n", name, fmt(mq), ml, mlo, median(w, n[k]), median(x, n[k]), fmt(median(y, n[k])), per[pk], ratio
				med[S, sv[j]] = mq; medeff[S, sv[j]] = median(y, n[k])
			}
			for (j = 1; j <= m; j++) {
				k = S SUBSEP sv[j]
				if (note[k] != "") printf "\n- %s: %s", sv[j], note[k]
				if (note[k SUBSEP "c"] != "") printf "\n- %s, contended runs (marked *, left out of the median when another run was not): %s", sv[j], note[k SUBSEP "c"]
			}
			print ""
		}
		print "\n### Targets (docs/targets.md)\n"
		print "| target | scenario | edge-dns QPS | peer QPS | ratio | verdict | ratio per server CPU |"
		print "|---|---|---:|---:|---:|---|---:|"
		nt = split("geo|knot|GeoIP answers >= 1.0x Knot;geo-ecs|knot|GeoIP answers (ECS) >= 1.0x Knot;split|unbound|split-horizon >= 1.0x Unbound;fwd-cache|unbound|cache hits >= 1.0x Unbound", tg, ";")
		for (i = 1; i <= nt; i++) {
			split(tg[i], f, "|")
			if (index(" " scenarios " ", " " f[1] " ") == 0) continue
			e = med[f[1], "edge-dns"]; p = med[f[1], f[2]]
			if (e == "" || p == "") {
				why = (e == "" ? "edge-dns" : "") (e == "" && p == "" ? " and " : "") (p == "" ? f[2] : "")
				printf "| %s | %s | %s | %s | | n/a: no valid %s figure | |\n", f[3], f[1], e == "" ? "-" : fmt(e), p == "" ? "-" : fmt(p), why
				continue
			}
			if (cont[f[1], "edge-dns"] || cont[f[1], f[2]]) {
				printf "| %s | %s | %s | %s | %.2fx | n/a: every run contended | |\n", f[3], f[1], fmt(e), fmt(p), e / p
				continue
			}
			pe = medeff[f[1], f[2]]
			printf "| %s | %s | %s | %s | %.2fx | %s | %s |\n", f[3], f[1], fmt(e), fmt(p), e / p, (e / p >= 1.0 ? "PASS" : "FAIL"), \
				(pe > 0 ? sprintf("%.2fx", medeff[f[1], "edge-dns"] / pe) : "-")
		}
	}' "$results"
}
for s in $SCENARIOS; do printf '%s\t%s\n' "$s" "${describe[$s]}"; done >"$OUT/describe.txt"
report | tee "$OUT/report.md"
echo
echo "raw dnsperf output, configs and logs: $OUT"
exit "$failed"
