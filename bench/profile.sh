#!/bin/sh
# bench/profile.sh ROUTE [SECONDS]: CPU profile of northd under wrk, pinned
# as make compare pins it (northd on CPU 0 with GOMAXPROCS=1, wrk on CPU 1).
# ROUTE: home, login, login-varied or notfound. Writes bench/ROUTE.prof
# and prints the top of it. Run from the repository root (make bench-profile).
set -eu
route=${1:-login}
secs=${2:-10}
case $route in
home) script=get.lua path=/ args= ;;
login) script=login.lua path=/ args= ;;
login-varied) script=login-varied.lua path=/ args= ;;
notfound) script=get.lua path=/favicon.ico args="-- 404" ;;
*) echo "profile.sh: unknown route $route" >&2; exit 2 ;;
esac
pin_server= pin_client=
if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
	pin_server="taskset -c 0" pin_client="taskset -c 1"
fi
log=$(mktemp)
trap 'kill $pid 2>/dev/null; rm -f "$log"' EXIT INT TERM
GOMAXPROCS=1 $pin_server bin/bench/northd -listen 127.0.0.1:0 -admin 127.0.0.1:0 -pprof 2>"$log" &
pid=$!
i=0
until grep -q 'northd started' "$log"; do
	i=$((i + 1)); [ $i -lt 100 ] || { cat "$log"; exit 1; }
	sleep 0.1
done
listen=$(sed -n 's/.*northd started" listen=\([^ ]*\) admin=\([^ ]*\).*/\1/p' "$log")
admin=$(sed -n 's/.*northd started" listen=\([^ ]*\) admin=\([^ ]*\).*/\2/p' "$log")
$pin_client wrk -t1 -c50 -d$((secs + 3))s -s bench/wrk/$script "http://$listen$path" $args >/dev/null &
wrk=$!
sleep 1
curl -fsS -o "bench/$route.prof" "http://$admin/debug/pprof/profile?seconds=$secs"
wait $wrk
go tool pprof -top -nodecount=30 bin/bench/northd "bench/$route.prof" 2>/dev/null | head -40
echo "profile.sh: wrote bench/$route.prof (go tool pprof -http=127.0.0.1:0 bin/bench/northd bench/$route.prof)"
