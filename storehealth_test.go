package main

import (
	"strings"
	"testing"
	"time"

	"northd/internal/testdeps"
)

// A login whose store call times out gets 503, but says nothing about the
// store as a whole: /readyz stays 200, so a balancer does not take every
// instance sharing the store out of rotation for one slow answer. Redis's
// CLIENT PAUSE … WRITE holds the login's script while PING still answers.
func TestSlowStoreCallKeepsInstanceReady(t *testing.T) {
	redis := testdeps.StartRedis(t)
	listen, _, _, _ := startRun(t, "-listen", "alarms=127.0.0.1:0", "-admin", "off", "-store", redis.URL(), "-store-timeout", "100ms")
	base := "http://" + listen[0]
	client := clientFrom("127.0.0.1")
	testdeps.WaitFor(t, "/readyz 200 once the store answered", func() bool { return call(t, client, "GET", base+"/readyz", "", "").status == 200 })

	redis.CLI("CLIENT", "PAUSE", "20000", "WRITE")
	a := call(t, client, "POST", base+"/north/login", "", `{"username":"n","password":"p","ip":"192.0.2.1"}`)
	if a.status != 503 || a.body != `{"code": 4, "token": "", "description": "the token store is unavailable; retry after the Retry-After seconds"}` {
		t.Fatalf("login while the store holds writes: %d %q", a.status, a.body)
	}
	if r := call(t, client, "GET", base+"/readyz", "", ""); r.status != 200 || r.body != "ready\n" {
		t.Errorf("/readyz after one slow store call: %d %q, want 200 ready", r.status, r.body)
	}
	redis.CLI("CLIENT", "UNPAUSE")
	loginToken(t, client, base, `{"username":"n","password":"p","ip":"192.0.2.1"}`)
}

// A store that hangs is declared down by the probes, with their own
// deadline, however long -store-timeout is; from then on requests get 503
// at once instead of waiting it out, and the first probe that answers
// brings the instance back.
func TestHungStoreIsDeclaredDownByProbes(t *testing.T) {
	redis := testdeps.StartRedis(t)
	listen, _, logs, _ := startRun(t, "-listen", "alarms=127.0.0.1:0", "-admin", "off", "-store", redis.URL(), "-store-timeout", "1h")
	base := "http://" + listen[0]
	client := clientFrom("127.0.0.1")
	client.Timeout = time.Minute // a request that waited out the hour fails here
	testdeps.WaitFor(t, "/readyz 200 once the store answered", func() bool { return call(t, client, "GET", base+"/readyz", "", "").status == 200 })
	token := loginToken(t, client, base, `{"username":"n","password":"p","ip":"192.0.2.1"}`)

	redis.Pause()
	testdeps.WaitFor(t, "/readyz 503 while the store hangs", func() bool {
		r := call(t, client, "GET", base+"/readyz", "", "")
		return r.status == 503 && r.body == "store unavailable: this instance cannot reach -store\n"
	})
	if a := call(t, client, "GET", base+"/north/verify", token, ""); a.status != 503 || a.header.Get("Retry-After") != "1" {
		t.Errorf("verify while the store is down: %d %v %q", a.status, a.header, a.body)
	}
	if a := call(t, client, "POST", base+"/north/login", "", `{"username":"n","password":"p","ip":"192.0.2.2"}`); a.status != 503 {
		t.Errorf("login while the store is down: %d %q", a.status, a.body)
	}
	redis.Resume()
	testdeps.WaitFor(t, "/readyz 200 after the store answered again", func() bool { return call(t, client, "GET", base+"/readyz", "", "").status == 200 })
	if a := call(t, client, "GET", base+"/north/verify", token, ""); a.status != 200 {
		t.Errorf("the token from before the hang: %d %q", a.status, a.body)
	}
	if n := strings.Count(logs.String(), "store unreachable"); n != 1 {
		t.Errorf("the hang was logged %d times, want once:\n%s", n, logs)
	}
}
