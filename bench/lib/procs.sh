# procs.sh: process bookkeeping for the bench scripts, which source it.
# Every process a script starts goes into pids; stop_pid ends one by PID
# (TERM, then KILL after 5 s) and forgets it. Nothing is ever stopped by
# name, so no process of anyone else is touched.
pids=()
stop_pid() {
	local pid=$1 i
	kill -TERM "$pid" 2>/dev/null || true
	for i in $(seq 50); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	local keep=()
	for i in "${pids[@]}"; do [ "$i" = "$pid" ] || keep+=("$i"); done
	pids=("${keep[@]}")
}
