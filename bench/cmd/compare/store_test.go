package main

import (
	"math"
	"strings"
	"testing"
)

// commandStatsSample is INFO commandstats as redis-cli prints it (Redis
// 7: CRLF line ends, subcommands as container|sub) after a run of 1000
// logins: one EVALSHA each, running the login script's commands, plus
// compare's own CONFIG RESETSTAT and a PING of the client library.
const commandStatsSample = "# Commandstats\r\n" +
	"cmdstat_config|resetstat:calls=1,usec=31,usec_per_call=31.00,rejected_calls=0,failed_calls=0\r\n" +
	"cmdstat_evalsha:calls=1000,usec=51000,usec_per_call=51.00,rejected_calls=0,failed_calls=0\r\n" +
	"cmdstat_hget:calls=1000,usec=900,usec_per_call=0.90,rejected_calls=0,failed_calls=0\r\n" +
	"cmdstat_del:calls=999,usec=1200,usec_per_call=1.20,rejected_calls=0,failed_calls=0\r\n" +
	"cmdstat_set:calls=1000,usec=2100,usec_per_call=2.10,rejected_calls=0,failed_calls=0\r\n" +
	"cmdstat_hset:calls=1000,usec=2500,usec_per_call=2.50,rejected_calls=0,failed_calls=0\r\n" +
	"cmdstat_hincrby:calls=1000,usec=800,usec_per_call=0.80,rejected_calls=0,failed_calls=0\r\n" +
	"cmdstat_zadd:calls=1000,usec=1900,usec_per_call=1.90,rejected_calls=0,failed_calls=0\r\n" +
	"cmdstat_zcard:calls=1000,usec=300,usec_per_call=0.30,rejected_calls=0,failed_calls=0\r\n" +
	"cmdstat_ping:calls=2,usec=1,usec_per_call=0.50,rejected_calls=0,failed_calls=0\r\n" +
	"cmdstat_client|setinfo:calls=2,usec=3,usec_per_call=1.50,rejected_calls=0,failed_calls=0\r\n"

func TestParseCommandStats(t *testing.T) {
	calls, err := parseCommandStats(commandStatsSample)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int64{"evalsha": 1000, "hget": 1000, "del": 999, "set": 1000, "hset": 1000, "hincrby": 1000,
		"zadd": 1000, "zcard": 1000, "ping": 2, "client|setinfo": 2}
	if len(calls) != len(want) {
		t.Errorf("calls %v, want %v", calls, want)
	}
	for c, n := range want {
		if calls[c] != n {
			t.Errorf("%s: %d calls, want %d", c, calls[c], n)
		}
	}
	if _, ok := calls["config|resetstat"]; ok {
		t.Error("compare's own CONFIG RESETSTAT counted")
	}
	// No command since the reset: empty, not an error.
	if calls, err := parseCommandStats("# Commandstats\r\n"); err != nil || len(calls) != 0 {
		t.Errorf("empty commandstats: %v, %v", calls, err)
	}
	for _, bad := range []string{"", "ERR unknown command", "# Commandstats\r\ncmdstat_get:usec=3\r\n", "# Commandstats\r\ncmdstat_get:calls=x\r\n"} {
		if _, err := parseCommandStats(bad); err == nil {
			t.Errorf("parseCommandStats(%q): no error", bad)
		}
	}
}

func TestParseMonitorLine(t *testing.T) {
	for _, tt := range []struct {
		line, cmd, origin string
		ok                bool
	}{
		{`1795644451.377174 [0 127.0.0.1:33486] "EVALSHA" "4f1c…" "3" "northd:{default}:tok:ab"`, "evalsha", fromClient, true},
		{`1795644451.377223 [0 lua] "HGET" "northd:{default}:ns:192.0.2.10" "token"`, "hget", fromScript, true},
		{`1795644451.377300 [3 unix:/run/redis.sock] "get" "k"`, "get", fromClient, true},
		{`1795644451.377300 [0 [::1]:51234] "get" "k"`, "get", fromClient, true},
		{`1795644451.377300 [0 lua] "get"`, "get", fromScript, true},
		{`1795644451.377300 [0 lua] ""`, "", "", false},
		{"OK", "", "", false},
		{"", "", "", false},
		{`1795644451.3 [0 lua]`, "", "", false},
	} {
		cmd, origin, ok := parseMonitorLine(tt.line)
		if cmd != tt.cmd || origin != tt.origin || ok != tt.ok {
			t.Errorf("parseMonitorLine(%q) = %q, %q, %v; want %q, %q, %v", tt.line, cmd, origin, ok, tt.cmd, tt.origin, tt.ok)
		}
	}
}

// Commands per request: calls over the responses of every run of a side,
// round trips those northd sent.
func TestStorePerRequest(t *testing.T) {
	calls, err := parseCommandStats(commandStatsSample)
	if err != nil {
		t.Fatal(err)
	}
	// Two runs of 500 responses each, the calls split between them;
	// the warm-up and a side without -store redis have no StoreCalls.
	first, second := map[string]int64{}, map[string]int64{}
	for c, n := range calls {
		first[c] = n / 2
		second[c] = n - n/2
	}
	u := sumStore([]wrkResult{{Requests: 500, StoreCalls: first}, {Requests: 123}, {Requests: 500, StoreCalls: second}})
	if u.runs != 2 || u.requests != 1000 || u.calls["del"] != 999 {
		t.Fatalf("sumStore: %d runs, %d requests, calls %v", u.runs, u.requests, u.calls)
	}
	u.origins = map[string][]string{"evalsha": {fromClient}, "hget": {fromScript}, "del": {fromScript}, "set": {fromScript},
		"hset": {fromScript}, "hincrby": {fromScript}, "zadd": {fromScript}, "zcard": {fromScript}}
	cmds, all, trips, unseen := u.perRequest()
	near := func(a, b float64) bool { return math.Abs(a-b) < 1e-9 }
	if !near(all, 7.999+0.004) || !near(trips, 1) || !near(unseen, 0.004) {
		t.Errorf("all %v, round trips %v, unseen %v; want 8.003, 1, 0.004", all, trips, unseen)
	}
	if len(cmds) != 10 || cmds[0].name != "evalsha" || cmds[0].origin != fromClient || !near(cmds[0].perRequest, 1) {
		t.Errorf("commands %+v", cmds)
	}
	for _, c := range cmds {
		switch c.name {
		case "del":
			if !near(c.perRequest, 0.999) || c.origin != fromScript {
				t.Errorf("del: %+v", c)
			}
		case "ping", "client|setinfo":
			if c.origin != "" {
				t.Errorf("%s: origin %q, want unseen", c.name, c.origin)
			}
		}
	}
	// A command both sent and run by scripts is not a round trip for sure.
	u.origins["get"] = []string{fromClient, fromScript}
	u.calls["get"] = 1000
	if _, _, trips, unseen := u.perRequest(); !near(trips, 1) || !near(unseen, 1.004) {
		t.Errorf("with get from both: round trips %v, unseen %v", trips, unseen)
	}
	if cmds, all, _, _ := (storeUse{}).perRequest(); cmds != nil || all != 0 {
		t.Error("no requests: want nothing")
	}
}

// The report's redis-server command names its temporary directory
// $REDISDIR and quotes the empty --save.
func TestRedisServerCommand(t *testing.T) {
	s := &redisServer{dir: "/somewhere/tmp-1", argv: []string{"taskset", "-c", "1", "redis-server", "--save", "", "--dir", "/somewhere/tmp-1"}}
	if got := s.command(); !strings.HasPrefix(got, "taskset -c 1 redis-server --save '' --dir $REDISDIR ") || strings.Contains(got, "/somewhere") {
		t.Errorf("command() = %q", got)
	}
}

// The redis pairs compare -store redis with the memory store, on the
// same route, with no goal; only they need redis-server.
func TestRedisPairs(t *testing.T) {
	ps, err := parsePairs("login-redis,verify-redis")
	if err != nil || len(ps) != 2 {
		t.Fatalf("parsePairs = %v, %v", ps, err)
	}
	for i, route := range []string{"login", "verify"} {
		p := ps[i]
		if p.a != (side{"northd-redis", route}) || p.b != (side{"northd", route}) || p.goal != 0 || !p.needsRedis() {
			t.Errorf("pair %s: %v ÷ %v goal %v", p.name, p.a, p.b, p.goal)
		}
	}
	for _, p := range pairs {
		if p.needsRedis() != strings.HasSuffix(p.name, "-redis") {
			t.Errorf("pair %s: needsRedis %v", p.name, p.needsRedis())
		}
	}
	if !specNamed("northd-redis").redis || specNamed("northd").redis {
		t.Error("only northd-redis uses Redis")
	}
	// Without a redis-server, northd-redis is skipped, saying why.
	_, _, skip := specNamed("northd-redis").argv(&options{redisSkip: "redis-server is not installed"}, 1)
	if !strings.Contains(skip, "redis-server is not installed") {
		t.Errorf("skip %q", skip)
	}
}
