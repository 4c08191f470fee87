#!/usr/bin/env bash
# with-server.sh starts a server on a free loopback port, runs bin/loadtest
# against it, stops the server, and exits with loadtest's exit code.
#
#   loadtest/with-server.sh SERVER_CMD... -- LOADTEST_FLAGS...
#
# In SERVER_CMD, {addr} is replaced by the address chosen (127.0.0.1:PORT).
# LOADTEST_SERVER_CPU and LOADTEST_CPU, when set, pin the server and the
# load tool to those CPUs (taskset -c) with GOMAXPROCS set to match.
set -euo pipefail

server=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do server+=("$1"); shift; done
[ $# -gt 0 ] && shift
[ ${#server[@]} -gt 0 ] || { echo "usage: $0 SERVER_CMD... -- LOADTEST_FLAGS..." >&2; exit 2; }

# A free port: nothing answers a connect on it.
port=""
for _ in $(seq 1 50); do
	p=$((20000 + RANDOM % 20000))
	if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then port=$p; break; fi
done
[ -n "$port" ] || { echo "with-server: no free port found" >&2; exit 1; }
addr="127.0.0.1:$port"
server=("${server[@]//\{addr\}/$addr}")

ncpus() { awk -F, '{print NF}' <<<"$1"; }
pin_server=()
if [ -n "${LOADTEST_SERVER_CPU:-}" ]; then
	pin_server=(taskset -c "$LOADTEST_SERVER_CPU" env GOMAXPROCS="$(ncpus "$LOADTEST_SERVER_CPU")")
fi
pin_load=()
if [ -n "${LOADTEST_CPU:-}" ]; then
	pin_load=(taskset -c "$LOADTEST_CPU" env GOMAXPROCS="$(ncpus "$LOADTEST_CPU")")
fi

log=$(mktemp)
"${pin_server[@]}" "${server[@]}" >"$log" 2>&1 &
pid=$!
stop() {
	if kill -0 "$pid" 2>/dev/null; then
		kill -TERM "$pid" 2>/dev/null || true
		for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$pid" 2>/dev/null || true
	fi
	wait "$pid" 2>/dev/null || true
	rm -f "$log"
}
trap stop EXIT

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
"${pin_load[@]}" ./bin/loadtest -target "http://$addr" -pid "$pid" "$@"
code=$?
set -e
exit $code
