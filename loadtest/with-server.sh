#!/usr/bin/env bash
# with-server.sh starts a server on a free loopback port, runs bin/loadtest
# against it, stops the server, and exits with loadtest's exit code.
#
#   loadtest/with-server.sh SERVER_CMD... -- LOADTEST_FLAGS...
#
# In SERVER_CMD, {addr} is replaced by the address chosen (127.0.0.1:PORT).
# {redis}, when present, starts a throwaway redis-server (no persistence,
# loopback only, its own temporary directory) on another free port first
# and is replaced by its address, for northd -store redis://{redis}/0;
# loadtest then gets its pid (-store-pid) and reports its CPU.
# {admin}, when present, is replaced by another free address, for northd
# -admin {admin}, and passed on as -admin (loadtest events publishes there).
# LOADTEST_CMD is the load tool's command (default ./bin/loadtest; "./bin/
# loadtest events" for the event streams).
# LOADTEST_SERVER_CPU and LOADTEST_CPU, when set, pin the server and the
# load tool to those CPUs (taskset -c) with GOMAXPROCS set to match.
# Redis runs on LOADTEST_REDIS_CPU, which defaults to LOADTEST_CPU: on the
# load generator's CPUs, so that the server's CPUs stay the server's alone
# (a separate Redis machine is what production has); set it to the
# server's CPUs to have Redis share them instead, or empty not to pin it.
set -euo pipefail

server=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do server+=("$1"); shift; done
[ $# -gt 0 ] && shift
[ ${#server[@]} -gt 0 ] || { echo "usage: $0 SERVER_CMD... -- LOADTEST_FLAGS..." >&2; exit 2; }

# A free port: nothing answers a connect on it.
free_port() {
	for _ in $(seq 1 50); do
		p=$((20000 + RANDOM % 20000))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return 0; fi
	done
	echo "with-server: no free port found" >&2
	return 1
}

ncpus() { awk -F, '{print NF}' <<<"$1"; }
pin_server=()
if [ -n "${LOADTEST_SERVER_CPU:-}" ]; then
	pin_server=(taskset -c "$LOADTEST_SERVER_CPU" env GOMAXPROCS="$(ncpus "$LOADTEST_SERVER_CPU")")
fi
pin_load=()
if [ -n "${LOADTEST_CPU:-}" ]; then
	pin_load=(taskset -c "$LOADTEST_CPU" env GOMAXPROCS="$(ncpus "$LOADTEST_CPU")")
fi
redis_cpu=${LOADTEST_REDIS_CPU-${LOADTEST_CPU:-}}
pin_redis=()
if [ -n "$redis_cpu" ]; then
	pin_redis=(taskset -c "$redis_cpu")
fi

# stop_pid ends a process: SIGTERM, then SIGKILL after 10 s.
stop_pid() {
	local p=$1
	if kill -0 "$p" 2>/dev/null; then
		kill -TERM "$p" 2>/dev/null || true
		for _ in $(seq 1 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$p" 2>/dev/null || true
	fi
	wait "$p" 2>/dev/null || true
}
pid=""
redis_pid=""
redis_dir=""
log=""
cleanup() {
	[ -z "$pid" ] || stop_pid "$pid"
	[ -z "$redis_pid" ] || stop_pid "$redis_pid"
	[ -z "$redis_dir" ] || rm -rf "$redis_dir"
	[ -z "$log" ] || rm -f "$log"
}
trap cleanup EXIT

if [[ "${server[*]}" == *"{redis}"* ]]; then
	command -v redis-server >/dev/null || { echo "with-server: {redis} needs redis-server, which is not installed (apt-get install redis-server)" >&2; exit 1; }
	rport=$(free_port)
	redis_dir=$(mktemp -d)
	# taskset execs redis-server: $! is redis-server's pid.
	"${pin_redis[@]}" redis-server --bind 127.0.0.1 --port "$rport" --save '' --appendonly no \
		--dir "$redis_dir" --daemonize no >"$redis_dir/log" 2>&1 &
	redis_pid=$!
	# Ready when it logs so (30 s at most: a start that takes longer on a
	# shared machine is broken, not slow).
	ready=""
	deadline=$((SECONDS + 30))
	while [ $SECONDS -lt $deadline ]; do
		if grep -q "Ready to accept connections" "$redis_dir/log"; then ready=1; break; fi
		if ! kill -0 "$redis_pid" 2>/dev/null; then break; fi
		sleep 0.1
	done
	if [ -z "$ready" ]; then
		echo "with-server: redis-server did not get ready:" >&2
		cat "$redis_dir/log" >&2
		exit 1
	fi
	server=("${server[@]//\{redis\}/127.0.0.1:$rport}")
	echo "with-server: redis-server (pid $redis_pid) on 127.0.0.1:$rport${redis_cpu:+, CPU $redis_cpu}" >&2
fi

port=$(free_port)
addr="127.0.0.1:$port"
server=("${server[@]//\{addr\}/$addr}")
admin_args=()
if [[ "${server[*]}" == *"{admin}"* ]]; then
	admin="127.0.0.1:$(free_port)"
	server=("${server[@]//\{admin\}/$admin}")
	admin_args=(-admin "$admin")
fi

log=$(mktemp)
"${pin_server[@]}" "${server[@]}" >"$log" 2>&1 &
pid=$!

for _ in $(seq 1 100); do
	if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
	if ! kill -0 "$pid" 2>/dev/null; then
		echo "with-server: the server exited before listening:" >&2
		cat "$log" >&2
		exit 1
	fi
	sleep 0.1
done
echo "with-server: ${server[*]} (pid $pid) on $addr${LOADTEST_SERVER_CPU:+, CPU $LOADTEST_SERVER_CPU}" >&2

set +e
store_args=()
[ -z "$redis_pid" ] || store_args=(-store-pid "$redis_pid")
read -r -a cmd <<<"${LOADTEST_CMD:-./bin/loadtest}"
"${pin_load[@]}" "${cmd[@]}" -target "http://$addr" -pid "$pid" "${store_args[@]}" "${admin_args[@]}" "$@"
code=$?
set -e
exit $code
