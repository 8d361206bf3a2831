#!/usr/bin/env bash
# demo.sh brings up the namespace lab, starts the suite's daemons in the
# router namespace (and an upstream DNS server for the internet in the
# services namespace), shows them working, and tears everything down on
# exit (Ctrl-C, or after DEMO_SECONDS when not on a terminal). The daemons'
# logs are kept, and their folder is printed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -ne 0 ]; then
	echo "demo: needs root (network namespaces); run: sudo make demo" >&2
	exit 1
fi

work=$(mktemp -d /tmp/edge-demo.XXXXXX)
logs=$(mktemp -d /tmp/edge-demo-logs.XXXXXX)
chmod 0755 "$work" "$logs"
runid=
daemon_pid=
dns_pid=
fw_pid=
vpn_pid=
upstream_pid=
probe_pids=
cleanup() {
	for pid in $fw_pid $vpn_pid $daemon_pid $dns_pid $upstream_pid $probe_pids; do
		kill -TERM "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	[ -z "$runid" ] || bin/edge-lab down "$runid" >/dev/null || true
	rm -rf "$work"
	echo "demo: lab removed; the daemons' logs are in $logs"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

out=$(bin/edge-lab up -logdir "$work")
runid=$(sed -n 's/^lab \([0-9a-f]*\) is up.*/\1/p' <<<"$out" | head -n1)
[ -n "$runid" ] || { echo "$out" >&2; echo "demo: lab did not come up" >&2; exit 1; }
echo "$out"

# The suite's config, pointed at throwaway directories, with the lab's
# upstream resolver (an edge-dns in the services namespace that serves
# example.org, standing in for the internet's DNS).
upstream=172.31.53.10
for f in edge testd; do
	sed -e "s|/run/edge|$work/run|; s|/var/lib/edge|$work/state|" \
		-e "s|^  # upstreams: .*|  upstreams: {servers: [{address: $upstream}]}|" "examples/$f.yaml" >"$work/$f.yaml"
done
cat >"$work/upstream.yaml" <<EOF
version: 1
site: {domain: example.org}
admin: {socket_dir: $work/upstream-run}
state_dir: $work/upstream-state
dns:
  listen: ["$upstream:53"]
  metrics: {listen: "off"}
  zones:
    - name: example.org
      ns: [ns1.example.org]
      records:
        - {name: "@", type: A, value: 203.0.113.80}
        - {name: www, type: A, value: 203.0.113.80}
        - {name: ns1, type: A, value: $upstream}
EOF
echo
echo "== edge-dns -check (the start of the normalized config)"
bin/edge-dns -check -config "$work/edge.yaml" | sed -n '1,12p'

ns=edge-$runid-router
ip netns exec "edge-$runid-services" bin/edge-dns -config "$work/upstream.yaml" >"$logs/upstream-dns.log" 2>&1 &
upstream_pid=$!
ip netns exec "$ns" bin/edge-testd -config "$work/testd.yaml" >"$logs/edge-testd.log" 2>&1 &
daemon_pid=$!
ip netns exec "$ns" bin/edge-dns -config "$work/edge.yaml" >"$logs/edge-dns.log" 2>&1 &
dns_pid=$!
ip netns exec "$ns" bin/edge-firewall -config "$work/edge.yaml" >"$logs/edge-firewall.log" 2>&1 &
fw_pid=$!
ip netns exec "$ns" bin/edge-vpn -config "$work/edge.yaml" >"$logs/edge-vpn.log" 2>&1 &
vpn_pid=$!
ctl() { bin/edgectl --socket-dir "$work/run" "$@"; }
for _ in $(seq 50); do
	ctl status testd dns firewall vpn >/dev/null 2>&1 && break
	sleep 0.1
done
echo
echo "== edgectl status"
ctl status || true
echo
echo "== a lan client asks the router"
ip netns exec "edge-$runid-client" bash -c 'exec 3<>/dev/tcp/192.168.1.1/7000 && timeout 3 cat <&3'
echo "== an outside client asks the router (not allowed: no answer)"
ip netns exec "edge-$runid-outside-de" timeout 3 bash -c 'exec 3<>/dev/tcp/192.0.2.1/7000 && cat <&3' || echo '  (dropped by edge-firewall: 7000 is not a wan service)'
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
printf '  lan client   www.example.org -> %s\n' "$(client client 192.168.1.1 www.example.org) (through the lab's upstream resolver)"
printf '  lan client   www.example.org -> %s\n' "$(client client 192.168.1.1 www.example.org) (again: from edge-dns's cache)"
printf '  outside-de   www.example.org -> %s\n' "$(client outside-de 192.0.2.1 www.example.org | tr -d '\n')(refused: no recursion for the internet)"
echo "== a record added at run time"
ctl record add printer.home.arpa A 192.168.1.20
printf '  lan client   printer.home.arpa -> %s\n' "$(client client 192.168.1.1 printer.home.arpa)"
echo
echo "== edge-firewall"
probe() { ip netns exec "edge-$runid-$1" bin/edge-probe "${@:2}"; }
ip netns exec "edge-$runid-outside-de" bin/edge-probe serve -tcp :7000 >/dev/null 2>&1 &
probe_pids="$probe_pids $!"
ip netns exec "edge-$runid-nas" bin/edge-probe serve -tcp :80 >/dev/null 2>&1 &
probe_pids="$probe_pids $!"
sleep 0.3
printf '  lan client -> outside-de:7000, masqueraded:   %s\n' "$(probe client dial 198.51.100.10:7000)"
printf '  outside-de -> router:8080, forwarded to nas:  %s\n' "$(probe outside-de dial 192.0.2.1:8080)"
printf '  lan client -> router:8080, hairpin:           %s\n' "$(probe client dial 192.0.2.1:8080)"
printf '  outside-de -> router:7000 (not a wan service): %s\n' "$(probe outside-de dial -timeout 1s 192.0.2.1:7000 || true)"
ctl fw ban 198.51.100.10 --for 10m --comment "demo"
printf '  banned outside-de asks the router for DNS:    %s\n' "$(client outside-de 192.0.2.1 www.example.net 2>&1 | tail -n1)"
ctl fw unban 198.51.100.10
echo "== edgectl fw diff, after allowing https from the wan in the config"
sed -i 's|services: \[dns, ssh, wireguard\]|services: [dns, ssh, wireguard, https]|' "$work/edge.yaml"
ctl fw diff || true
echo "== edgectl fw apply --confirm 30s, then confirm"
ctl fw apply --confirm 30s | tail -n2
ctl fw confirm
echo "== the log names the rule that dropped a packet"
grep -m2 'msg=packet' "$logs/edge-firewall.log" || true

echo
echo "== edge-vpn: a laptop on the road joins with Debian's wireguard-go"
(umask 077; ctl peer add laptop >"$work/laptop.conf")
wg-quick strip "$work/laptop.conf" >"$work/laptop.stripped"
rw="edge-$runid-roadwarrior"
wgif="wgdemo$runid"
wgif=${wgif:0:15}
ip netns exec "$rw" wireguard-go -f "$wgif" >/dev/null 2>&1 &
probe_pids="$probe_pids $!"
for _ in $(seq 50); do [ -S "/var/run/wireguard/$wgif.sock" ] && break; sleep 0.1; done
ip netns exec "$rw" wg setconf "$wgif" "$work/laptop.stripped"
ip netns exec "$rw" ip address add 10.100.0.2/32 dev "$wgif"
ip netns exec "$rw" ip link set "$wgif" up
ip netns exec "$rw" ip route add 192.168.1.0/24 dev "$wgif"
ip netns exec "$rw" ip route add 10.100.0.0/24 dev "$wgif"
for _ in $(seq 10); do ip netns exec "$rw" ping -c1 -W1 192.168.1.10 >/dev/null 2>&1 && break; done
printf '  laptop pings the nas through the tunnel:   %s\n' "$(ip netns exec "$rw" ping -c1 -W1 192.168.1.10 | grep -o 'time=.*' || echo failed)"
printf '  laptop asks the router for nas.home.arpa:  %s\n' "$(ip netns exec "$rw" dig +short +time=2 @10.100.0.1 nas.home.arpa)"
printf '  a lan client asks for laptop.vpn.home.arpa: %s\n' "$(client client 192.168.1.1 laptop.vpn.home.arpa)"
ctl peer ls
echo "  (the config's QR code: bin/edgectl --socket-dir $work/run peer add phone --qr)"

echo
echo "== metrics: each daemon serves them on the router's loopback"
metrics() {
	echo "  \$ ip netns exec $ns curl -s http://127.0.0.1:$1/metrics | grep -E '$2'"
	ip netns exec "$ns" curl -sf "http://127.0.0.1:$1/metrics" | grep -E "$2" | sed 's/^/  /' || true
}
metrics 9799 '^edge_testd_config'
metrics 9710 '^edge_dns_(zones|cache_(hits|entries)[a-z_]*) '
metrics 9711 '^edge_firewall_(zone_packets_total\{|bans |rules )'
metrics 9712 '^edge_vpn_peer_(receive_bytes_total|last_handshake_seconds)\{'

echo
echo "The lab is up. Try, in another shell:"
echo "  bin/edgectl --socket-dir $work/run status"
echo "  bin/edge-lab exec -lab $runid client -- ping -c1 192.168.1.1"
echo "  bin/edge-lab exec -lab $runid client -- dig @192.168.1.1 www.example.net"
echo "  bin/edgectl --socket-dir $work/run fw show"
echo "  bin/edgectl --socket-dir $work/run peer ls"
echo "  ip netns exec $ns curl -s http://127.0.0.1:9711/metrics   (dns 9710, firewall 9711, vpn 9712)"
echo "  tail -f $logs/edge-dns.log $logs/edge-firewall.log $logs/edge-vpn.log $logs/edge-testd.log"
if [ -t 0 ]; then
	echo "Press Ctrl-C to stop the demo and remove the lab."
	wait "$daemon_pid"
else
	sleep "${DEMO_SECONDS:-5}"
fi
