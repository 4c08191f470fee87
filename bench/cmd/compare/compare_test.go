package main

import (
	"strings"
	"testing"
	"time"
)

func TestRatio(t *testing.T) {
	// The machine steps from slow to fast after round 2: the paired
	// ratio stays 0.9 where the ratio of medians would say 1.0.
	nd := []wrkResult{{RPS: 90}, {RPS: 90}, {RPS: 135}, {RPS: 135}, {RPS: 135}}
	peer := []wrkResult{{RPS: 100}, {RPS: 100}, {RPS: 150}, {RPS: 150}, {RPS: 150}}
	m, lo, hi := ratio(nd, peer)
	if m != 0.9 || lo != 0.9 || hi != 0.9 {
		t.Errorf("ratio = %v %v %v, want 0.9 0.9 0.9", m, lo, hi)
	}
}

func TestParseWrk(t *testing.T) {
	out := "Running 1s test @ http://127.0.0.1:1/\n" +
		`WRKJSON {"requests":1200,"duration_us":1000000,"rps":1200.0,"p50_us":310,"p90_us":400,"p99_us":900,"max_us":1500,` +
		`"status_errors":0,"connect_errors":0,"read_errors":0,"write_errors":0,"timeouts":0,"expect":200,"unexpected":0,"checked":false}` +
		"\n1200 responses, 0 not 200\n"
	r, err := parseWrk([]byte(out))
	if err != nil {
		t.Fatal(err)
	}
	if r.Requests != 1200 || r.RPS != 1200 || r.P99US != 900 || r.Expect != 200 {
		t.Errorf("parsed %+v", r)
	}
	if _, err := parseWrk([]byte("Running 1s test\n")); err == nil {
		t.Error("no WRKJSON line: want an error")
	}
}

func TestWrkArgv(t *testing.T) {
	o := &options{wrk: "wrk", threads: 1, conns: 50, clientPin: []string{"taskset", "-c", "1"}}
	got := strings.Join(wrkArgv(o, routes[3], "http://127.0.0.1:8000", 5*time.Second, nil), " ")
	want := "taskset -c 1 wrk -t1 -c50 -d5s -s bench/wrk/get.lua http://127.0.0.1:8000/favicon.ico -- 404"
	if got != want {
		t.Errorf("wrkArgv = %q, want %q", got, want)
	}
	// verify: the token goes after "--"; HTTPS is in the base URL.
	got = strings.Join(wrkArgv(o, verifyRoute, "https://127.0.0.1:8443", 2*time.Second, []string{"0c8e4f0e2b2f4d1c9a3e5b7d9f1a2c4e"}), " ")
	want = "taskset -c 1 wrk -t1 -c50 -d2s -s bench/wrk/verify.lua https://127.0.0.1:8443/ -- 0c8e4f0e2b2f4d1c9a3e5b7d9f1a2c4e"
	if got != want {
		t.Errorf("wrkArgv = %q, want %q", got, want)
	}
}
