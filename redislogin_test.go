package main

import (
	"strings"
	"testing"

	"northd/internal/testdeps"
)

// At -registry-max, a login older than every north server in the store
// (it waited for a password check, or another instance's clock is ahead)
// must not be the one forgotten: it answers 200, so its token verifies.
func TestRedisLoginOlderThanEveryScoreKeepsItsToken(t *testing.T) {
	redis := testdeps.StartRedis(t)
	listen, _, _, _ := startRun(t, "-listen", "alarms=127.0.0.1:0", "-admin", "off", "-store", redis.URL(), "-registry-max", "2")
	base := "http://" + listen[0]
	client := clientFrom("127.0.0.1")
	loginToken(t, client, base, `{"username":"a","password":"p","ip":"192.0.2.1"}`)
	kept := loginToken(t, client, base, `{"username":"b","password":"p","ip":"192.0.2.2"}`)
	// Both were seen "later" than any login this instance can make: by
	// an instance whose clock is far ahead.
	for _, ip := range []string{"192.0.2.1", "192.0.2.2"} {
		redis.CLI("ZADD", "northd:{alarms}:servers", "XX", "4102444800000000", ip) // 2100-01-01, in microseconds
	}
	fresh := loginToken(t, client, base, `{"username":"c","password":"p","ip":"192.0.2.3"}`)
	if a := call(t, client, "GET", base+"/north/verify", fresh, ""); a.status != 200 {
		t.Errorf("the token of a login answered 200 at the bound: %d %q", a.status, a.body)
	}
	if a := call(t, client, "GET", base+"/north/verify", kept, ""); a.status != 200 {
		t.Errorf("the newer of the two others: %d %q", a.status, a.body)
	}
	if got := redis.CLI("ZRANGE", "northd:{alarms}:servers", "0", "-1"); got != "192.0.2.2\n192.0.2.3\n" {
		t.Errorf("north servers in the store:\n%s", got)
	}
}

// A login answered 503 because the store did not answer in time may
// still take effect once the store catches up (docs/north-servers.md says so); the
// retry the answer asks for then works, and its token verifies, once the
// late login, if it lands, has landed.
func TestLoginRetriedAfterSlowStore(t *testing.T) {
	redis := testdeps.StartRedis(t)
	listen, _, _, _ := startRun(t, "-listen", "alarms=127.0.0.1:0", "-admin", "off", "-store", redis.URL(), "-store-timeout", "200ms")
	base := "http://" + listen[0]
	client := clientFrom("127.0.0.1")
	body := `{"username":"north","password":"pw","ip":"192.0.2.7"}`
	before := loginToken(t, client, base, body)

	redis.Pause()
	a := call(t, client, "POST", base+"/north/login", "", body)
	if a.status != 503 || a.body != `{"code": 4, "token": "", "description": "the token store is unavailable; retry after the Retry-After seconds"}` || a.header.Get("Retry-After") != "1" {
		t.Fatalf("login while the store is paused: %d %v %q", a.status, a.header, a.body)
	}
	redis.Resume()

	// The 503 login may still be in Redis's queue, on another of the
	// client's connections, and land after a retry, ending the retry's
	// token; or it may never land. So the retry is what a north server
	// does: log in, and log in again on a 401 (docs/north-servers.md says so). The
	// late login lands at most once, so this ends.
	var retried string
	testdeps.WaitFor(t, "a retried login whose token verifies", func() bool {
		a := call(t, client, "POST", base+"/north/login", "", body)
		if a.status == 503 {
			return false
		}
		m := tokenIn.FindStringSubmatch(a.body)
		if a.status != 200 || m == nil {
			t.Fatalf("retried login: %d %q", a.status, a.body)
		}
		retried = m[1]
		v := call(t, client, "GET", base+"/north/verify", retried, "")
		if v.status == 401 {
			return false // the late login replaced it
		}
		if v.status != 200 || !strings.Contains(v.body, `"username": "north", "ip": "192.0.2.7"`) {
			t.Fatalf("the retried login's token: %d %q", v.status, v.body)
		}
		return true
	})
	if a := call(t, client, "GET", base+"/north/verify", before, ""); a.status != 401 {
		t.Errorf("the token from before the 503: %d %q", a.status, a.body)
	}
}
