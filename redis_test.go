package main

import (
	"io"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"northd/internal/testdeps"
)

// Two instances serving one subsystem name over one Redis agree on every
// token and north server.
func TestTwoInstancesShareTokensThroughRedis(t *testing.T) {
	redis := testdeps.StartRedis(t)
	a, adminA, _, _ := startRun(t, "-listen", "alarms=127.0.0.1:0", "-admin", "127.0.0.1:0", "-store", redis.URL())
	b, adminB, _, _ := startRun(t, "-listen", "alarms=127.0.0.1:0", "-admin", "127.0.0.1:0", "-store", redis.URL())
	// A subsystem of another name shares nothing with them.
	other, _, _, _ := startRun(t, "-listen", "billing=127.0.0.1:0", "-admin", "off", "-store", redis.URL())
	A, B := "http://"+a[0], "http://"+b[0]
	client := clientFrom("127.0.0.1")
	body := `{"username":"north","password":"pw","ip":"192.0.2.50"}`

	token := loginToken(t, client, A, body)
	if v := call(t, client, "GET", B+"/north/verify", token, ""); v.status != 200 ||
		!strings.HasPrefix(v.body, `{"code": 0, "description": "valid", "username": "north", "ip": "192.0.2.50", "expires_in": `) {
		t.Fatalf("login on A, verify on B: %d %q", v.status, v.body)
	}
	if v := call(t, client, "GET", "http://"+other[0]+"/north/verify", token, ""); v.status != 401 {
		t.Errorf("verify on another subsystem name: %d %q", v.status, v.body)
	}
	if v := call(t, client, "POST", B+"/north/logout", token, ""); v.status != 200 {
		t.Fatalf("logout on B: %d %q", v.status, v.body)
	}
	if v := call(t, client, "GET", A+"/north/verify", token, ""); v.status != 401 {
		t.Fatalf("verify on A after logout on B: %d %q", v.status, v.body)
	}

	first := loginToken(t, client, A, body)
	second := loginToken(t, client, B, body)
	if v := call(t, client, "GET", A+"/north/verify", first, ""); v.status != 401 {
		t.Errorf("A's token after a new login on B: %d %q", v.status, v.body)
	}
	if v := call(t, client, "GET", A+"/north/verify", second, ""); v.status != 200 {
		t.Errorf("B's token on A: %d %q", v.status, v.body)
	}
	for _, admin := range []string{adminA, adminB} {
		a := call(t, client, "GET", "http://"+admin+"/north/servers", "", "")
		if a.status != 200 || !strings.Contains(a.body, `"name": "alarms"`) || !strings.Contains(a.body, `"ip": "192.0.2.50"`) ||
			!strings.Contains(a.body, `"logins": 3`) || !strings.Contains(a.body, `"count": 1`) {
			t.Errorf("/north/servers on %s: %d %s", admin, a.status, a.body)
		}
	}
	if n := metricValue(t, adminA, `northd_logins_total{subsystem="alarms"}`); n != 2 {
		t.Errorf("A counted %v logins under subsystem=alarms, want 2", n)
	}
}

// The store keeps tokens only as digests.
func TestRedisHoldsNoToken(t *testing.T) {
	redis := testdeps.StartRedis(t)
	a, _, _, _ := startRun(t, "-listen", "alarms=127.0.0.1:0", "-admin", "off", "-store", redis.URL())
	token := loginToken(t, clientFrom("127.0.0.1"), "http://"+a[0], `{"username":"north","password":"pw","ip":"192.0.2.9"}`)
	dump := redis.CLI("KEYS", "*") + redis.CLI("HGETALL", "northd:{alarms}:ns:192.0.2.9")
	if strings.Contains(dump, token) || !strings.Contains(dump, "northd:{alarms}:tok:") || !strings.Contains(dump, "192.0.2.9") {
		t.Fatalf("redis holds:\n%s", dump)
	}
}

// When Redis goes away, logins and verifications get 503 at once and
// /readyz says so; when it comes back on the same port, northd serves
// again without a restart and with nothing lost, and no goroutine is left
// behind.
func TestRedisOutage(t *testing.T) {
	redis := testdeps.StartRedis(t)
	listen, admin, logs, _ := startRun(t, "-listen", "alarms=127.0.0.1:0", "-admin", "127.0.0.1:0", "-store", redis.URL())
	base := "http://" + listen[0]
	client := clientFrom("127.0.0.1")
	client.Timeout = 10 * time.Second // a hang, not a slow answer, fails
	before := loginToken(t, client, base, `{"username":"north","password":"pw","ip":"192.0.2.1"}`)
	goroutines := runtime.NumGoroutine()

	// Logins under load while Redis dies.
	var stop atomic.Bool
	var wg sync.WaitGroup
	var ok, unavailable, other atomic.Int64
	clients := make([]*http.Client, 4)
	for w := range clients {
		c := clientFrom("127.0.0.1")
		c.Timeout = 10 * time.Second
		clients[w] = c
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !stop.Load() && i < 100000; i++ {
				resp, err := c.Post(base+"/north/login", "", strings.NewReader(`{"username":"n","password":"p","ip":"192.0.3.`+strconv.Itoa(w)+`"}`))
				if err != nil {
					other.Add(1)
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				switch {
				case resp.StatusCode == 200:
					ok.Add(1)
				case resp.StatusCode == 503 && resp.Header.Get("Retry-After") == "1":
					unavailable.Add(1)
				default:
					other.Add(1)
				}
			}
		}()
	}
	testdeps.WaitFor(t, "logins under load", func() bool { return ok.Load() > 20 })
	redis.Kill()
	testdeps.WaitFor(t, "503s for logins", func() bool { return unavailable.Load() > 20 })
	testdeps.WaitFor(t, "/readyz 503", func() bool { return call(t, client, "GET", base+"/readyz", "", "").status == 503 })
	a := call(t, client, "GET", base+"/north/verify", before, "")
	if a.status != 503 || a.body != `{"code": 4, "description": "the token store is unavailable; retry after the Retry-After seconds"}` || a.header.Get("Retry-After") != "1" {
		t.Errorf("verify while Redis is down: %d %v %q", a.status, a.header, a.body)
	}
	a = call(t, client, "POST", base+"/north/login", "", `{"username":"n","password":"p"}`)
	if a.status != 503 || a.body != `{"code": 4, "token": "", "description": "the token store is unavailable; retry after the Retry-After seconds"}` {
		t.Errorf("login while Redis is down: %d %q", a.status, a.body)
	}
	stop.Store(true)
	wg.Wait()
	if other.Load() != 0 {
		t.Errorf("%d logins got neither 200 nor 503 with Retry-After (or no answer)", other.Load())
	}
	if n := strings.Count(logs.String(), "store unreachable"); n != 1 {
		t.Errorf("the outage was logged %d times, want once:\n%s", n, logs)
	}

	redis.Restart()
	testdeps.WaitFor(t, "/readyz 200 after Redis came back", func() bool { return call(t, client, "GET", base+"/readyz", "", "").status == 200 })
	if a := call(t, client, "GET", base+"/north/verify", before, ""); a.status != 200 {
		t.Errorf("a token from before the outage: %d %q", a.status, a.body)
	}
	after := loginToken(t, client, base, `{"username":"north","password":"pw","ip":"192.0.2.2"}`)
	if a := call(t, client, "GET", base+"/north/verify", after, ""); a.status != 200 {
		t.Errorf("a token from after the outage: %d %q", a.status, a.body)
	}
	if metricValue(t, admin, "northd_store_up") != 1 {
		t.Error("northd_store_up is not 1 after recovery")
	}
	for _, c := range append(clients, client, http.DefaultClient) {
		c.CloseIdleConnections()
	}
	testdeps.WaitFor(t, "goroutines back to their number before the outage", func() bool { return runtime.NumGoroutine() <= goroutines+2 })
}

// -registry-max bounds the north servers of a subsystem in the store too:
// the least recently seen goes, with its token.
func TestRedisStoreIsBounded(t *testing.T) {
	redis := testdeps.StartRedis(t)
	listen, admin, _, _ := startRun(t, "-listen", "alarms=127.0.0.1:0", "-admin", "127.0.0.1:0", "-store", redis.URL(), "-registry-max", "2")
	base := "http://" + listen[0]
	client := clientFrom("127.0.0.1")
	var tokens []string
	for i := 1; i <= 3; i++ {
		tokens = append(tokens, loginToken(t, client, base, `{"username":"n","password":"p","ip":"192.0.2.`+strconv.Itoa(i)+`"}`))
	}
	if a := call(t, client, "GET", base+"/north/verify", tokens[0], ""); a.status != 401 {
		t.Errorf("the forgotten north server's token: %d %q", a.status, a.body)
	}
	for _, tok := range tokens[1:] {
		if a := call(t, client, "GET", base+"/north/verify", tok, ""); a.status != 200 {
			t.Errorf("a kept north server's token: %d %q", a.status, a.body)
		}
	}
	if got := strings.TrimSpace(redis.CLI("ZCARD", "northd:{alarms}:servers")); got != "2" {
		t.Errorf("the store holds %s north servers, want 2", got)
	}
	if got := strings.TrimSpace(redis.CLI("EXISTS", "northd:{alarms}:ns:192.0.2.1")); got != "0" {
		t.Errorf("the forgotten north server's record is still there")
	}
	a := call(t, client, "GET", "http://"+admin+"/north/servers?limit=1", "", "")
	if !strings.Contains(a.body, `"ip": "192.0.2.3"`) || strings.Contains(a.body, `"ip": "192.0.2.2"`) || !strings.Contains(a.body, `"count": 2`) {
		t.Errorf("/north/servers?limit=1: %s", a.body)
	}
}
