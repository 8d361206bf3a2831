#!/usr/bin/env bash
# demo.sh brings up the namespace lab, starts the suite's daemons in the
# router namespace, shows them working, and tears everything down on exit
# (Ctrl-C, or after DEMO_SECONDS when not on a terminal).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -ne 0 ]; then
	echo "demo: needs root (network namespaces); run: sudo make demo" >&2
	exit 1
fi

work=$(mktemp -d /tmp/edge-demo.XXXXXX)
chmod 0755 "$work"
runid=
daemon_pid=
dns_pid=
cleanup() {
	for pid in $daemon_pid $dns_pid; do
		kill -TERM "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	[ -z "$runid" ] || bin/edge-lab down "$runid" >/dev/null || true
	rm -rf "$work"
	echo "demo: lab removed"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

out=$(bin/edge-lab up -logdir "$work")
runid=$(sed -n 's/^lab \([0-9a-f]*\) is up.*/\1/p' <<<"$out" | head -n1)
[ -n "$runid" ] || { echo "$out" >&2; echo "demo: lab did not come up" >&2; exit 1; }
echo "$out"

# The suite's config, pointed at throwaway directories.
for f in edge testd; do
	sed -e "s|/run/edge|$work/run|; s|/var/lib/edge|$work/state|" "examples/$f.yaml" >"$work/$f.yaml"
done
echo
echo "== edge-dns -check (the start of the normalized config)"
bin/edge-dns -check -config "$work/edge.yaml" | sed -n '1,12p'

ns=edge-$runid-router
ip netns exec "$ns" bin/edge-testd -config "$work/testd.yaml" >"$work/edge-testd.log" 2>&1 &
daemon_pid=$!
ip netns exec "$ns" bin/edge-dns -config "$work/edge.yaml" >"$work/edge-dns.log" 2>&1 &
dns_pid=$!
ctl() { bin/edgectl --socket-dir "$work/run" "$@"; }
for _ in $(seq 50); do
	ctl status testd dns >/dev/null 2>&1 && break
	sleep 0.1
done
echo
echo "== edgectl status"
ctl status || true
echo
echo "== a lan client asks the router"
ip netns exec "edge-$runid-client" bash -c 'exec 3<>/dev/tcp/192.168.1.1/7000 && timeout 3 cat <&3'
echo "== an outside client asks the router (not allowed: no answer)"
ip netns exec "edge-$runid-outside-de" bash -c 'exec 3<>/dev/tcp/192.0.2.1/7000 && timeout 3 cat <&3' || true
echo
echo "== reload with a new greeting"
sed -i 's|greeting: .*|greeting: "reloaded without a restart"|' "$work/testd.yaml"
ctl reload testd
ip netns exec "edge-$runid-client" bash -c 'exec 3<>/dev/tcp/192.168.1.1/7000 && timeout 3 cat <&3'
echo
echo "== edge-dns: the same name, asked from three places"
client() { ip netns exec "edge-$runid-$1" dig +short +time=2 "@$2" "${@:3}"; }
printf '  lan client   www.example.net -> %s\n' "$(client client 192.168.1.1 www.example.net)"
printf '  outside-de   www.example.net -> %s\n' "$(client outside-de 192.0.2.1 www.example.net)"
printf '  outside-us   www.example.net -> %s\n' "$(client outside-us 192.0.2.1 www.example.net)"
printf '  lan client   nas.home.arpa   -> %s\n' "$(client client 192.168.1.1 nas.home.arpa)"
printf '  outside-de   nas.home.arpa   -> %s\n' "$(client outside-de 192.0.2.1 nas.home.arpa | tr -d '\n')(refused: inside only)"
echo "== a record added at run time"
ctl record add printer.home.arpa A 192.168.1.20
printf '  lan client   printer.home.arpa -> %s\n' "$(client client 192.168.1.1 printer.home.arpa)"
echo
echo "== metrics (from the router's loopback)"
ip netns exec "$ns" curl -sf http://127.0.0.1:9799/metrics | grep '^edge_testd_' || true

echo
echo "The lab is up. Try, in another shell:"
echo "  bin/edgectl --socket-dir $work/run status"
echo "  bin/edge-lab exec -lab $runid client -- ping -c1 192.168.1.1"
echo "  bin/edge-lab exec -lab $runid client -- dig @192.168.1.1 www.example.net"
echo "  tail -f $work/edge-testd.log $work/edge-dns.log"
if [ -t 0 ]; then
	echo "Press Ctrl-C to stop the demo and remove the lab."
	wait "$daemon_pid"
else
	sleep "${DEMO_SECONDS:-5}"
fi
