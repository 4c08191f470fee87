package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
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
	nA := start(t, "-listen", "alarms=127.0.0.1:0", "-admin", "127.0.0.1:0", "-store", redis.URL())
	a, adminA := nA.Listen, nA.Admin
	nB := start(t, "-listen", "alarms=127.0.0.1:0", "-admin", "127.0.0.1:0", "-store", redis.URL())
	b, adminB := nB.Listen, nB.Admin
	// A subsystem of another name shares nothing with them.
	nOther := start(t, "-listen", "billing=127.0.0.1:0", "-admin", "off", "-store", redis.URL())
	other := nOther.Listen
	A, B := "http://"+a[0], "http://"+b[0]
	client := testdeps.ClientFrom("127.0.0.1")
	body := `{"username":"north","password":"pw","ip":"192.0.2.50"}`

	token := testdeps.LoginToken(t, client, A, body)
	if v := testdeps.Call(t, client, "GET", B+"/north/verify", token, ""); v.Status != 200 ||
		!strings.HasPrefix(v.Body, `{"code": 0, "description": "valid", "username": "north", "ip": "192.0.2.50", "expires_in": `) {
		t.Fatalf("login on A, verify on B: %d %q", v.Status, v.Body)
	}
	if v := testdeps.Call(t, client, "GET", "http://"+other[0]+"/north/verify", token, ""); v.Status != 401 {
		t.Errorf("verify on another subsystem name: %d %q", v.Status, v.Body)
	}
	if v := testdeps.Call(t, client, "POST", B+"/north/logout", token, ""); v.Status != 200 {
		t.Fatalf("logout on B: %d %q", v.Status, v.Body)
	}
	if v := testdeps.Call(t, client, "GET", A+"/north/verify", token, ""); v.Status != 401 {
		t.Fatalf("verify on A after logout on B: %d %q", v.Status, v.Body)
	}

	first := testdeps.LoginToken(t, client, A, body)
	second := testdeps.LoginToken(t, client, B, body)
	if v := testdeps.Call(t, client, "GET", A+"/north/verify", first, ""); v.Status != 401 {
		t.Errorf("A's token after a new login on B: %d %q", v.Status, v.Body)
	}
	if v := testdeps.Call(t, client, "GET", A+"/north/verify", second, ""); v.Status != 200 {
		t.Errorf("B's token on A: %d %q", v.Status, v.Body)
	}
	for _, admin := range []string{adminA, adminB} {
		a := testdeps.Call(t, client, "GET", "http://"+admin+"/north/servers", "", "")
		if a.Status != 200 || !strings.Contains(a.Body, `"name": "alarms"`) || !strings.Contains(a.Body, `"ip": "192.0.2.50"`) ||
			!strings.Contains(a.Body, `"logins": 3`) || !strings.Contains(a.Body, `"count": 1`) {
			t.Errorf("/north/servers on %s: %d %s", admin, a.Status, a.Body)
		}
	}
	if n := testdeps.MetricValue(t, adminA, `northd_logins_total{subsystem="alarms"}`); n != 2 {
		t.Errorf("A counted %v logins under subsystem=alarms, want 2", n)
	}
}

// The store keeps tokens only as digests.
func TestRedisHoldsNoToken(t *testing.T) {
	redis := testdeps.StartRedis(t)
	nA := start(t, "-listen", "alarms=127.0.0.1:0", "-admin", "off", "-store", redis.URL())
	a := nA.Listen
	token := testdeps.LoginToken(t, testdeps.ClientFrom("127.0.0.1"), "http://"+a[0], `{"username":"north","password":"pw","ip":"192.0.2.9"}`)
	dump := redis.CLI("KEYS", "*") + redis.CLI("HGETALL", "northd:{alarms}:ns:192.0.2.9")
	if strings.Contains(dump, token) || !strings.Contains(dump, "northd:{alarms}:tok:") || !strings.Contains(dump, "192.0.2.9") {
		t.Fatalf("redis holds:\n%s", dump)
	}
}

// When Redis goes away, logins and verifications get 503 at once and
// /readyz says so; when it comes back on the same port, northd serves
// again without a restart and with nothing lost, and no goroutine of
// northd's is left behind.
func TestRedisOutage(t *testing.T) {
	redis := testdeps.StartRedis(t)
	n := start(t, "-listen", "alarms=127.0.0.1:0", "-admin", "127.0.0.1:0", "-store", redis.URL())
	listen, admin := n.Listen, n.Admin
	base := "http://" + listen[0]
	client := testdeps.ClientFrom("127.0.0.1")
	client.Timeout = 10 * time.Second // a hang, not a slow answer, fails
	before := testdeps.LoginToken(t, client, base, `{"username":"north","password":"pw","ip":"192.0.2.1"}`)
	// The instance reads the shared event log on a connection of its own,
	// which it may open after it says it started: the count is taken once
	// it has read an event.
	id := published(t, admin, `{"type":"t"}`)
	testdeps.WaitFor(t, "the instance to read the event log", func() bool {
		return strings.Contains(testdeps.Call(t, client, "GET", base+"/north/events?wait=0s", before, "").Body, `"next":"`+id+`"`)
	})
	goroutines := testdeps.MetricValue(t, admin, "go_goroutines")

	// Logins under load while Redis dies.
	var stop atomic.Bool
	var wg sync.WaitGroup
	var ok, unavailable, other atomic.Int64
	clients := make([]*http.Client, 4)
	for w := range clients {
		c := testdeps.ClientFrom("127.0.0.1")
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
	// Enough refusals that a goroutine left behind by each would show
	// far above the slack allowed at the end.
	testdeps.WaitFor(t, "503s for logins", func() bool { return unavailable.Load() > 200 })
	testdeps.WaitFor(t, "/readyz 503", func() bool { return testdeps.Call(t, client, "GET", base+"/readyz", "", "").Status == 503 })
	a := testdeps.Call(t, client, "GET", base+"/north/verify", before, "")
	if a.Status != 503 || a.Body != `{"code": 4, "description": "the token store is unavailable; retry after the Retry-After seconds"}` || a.Header.Get("Retry-After") != "1" {
		t.Errorf("verify while Redis is down: %d %v %q", a.Status, a.Header, a.Body)
	}
	a = testdeps.Call(t, client, "POST", base+"/north/login", "", `{"username":"n","password":"p"}`)
	if a.Status != 503 || a.Body != `{"code": 4, "token": "", "description": "the token store is unavailable; retry after the Retry-After seconds"}` {
		t.Errorf("login while Redis is down: %d %q", a.Status, a.Body)
	}
	stop.Store(true)
	wg.Wait()
	if other.Load() != 0 {
		t.Errorf("%d logins got neither 200 nor 503 with Retry-After (or no answer)", other.Load())
	}
	if c := strings.Count(n.Log(), "store unreachable"); c != 1 {
		t.Errorf("the outage was logged %d times, want once:\n%s", c, n.Log())
	}

	redis.Restart()
	testdeps.WaitFor(t, "/readyz 200 after Redis came back", func() bool { return testdeps.Call(t, client, "GET", base+"/readyz", "", "").Status == 200 })
	if a := testdeps.Call(t, client, "GET", base+"/north/verify", before, ""); a.Status != 200 {
		t.Errorf("a token from before the outage: %d %q", a.Status, a.Body)
	}
	after := testdeps.LoginToken(t, client, base, `{"username":"north","password":"pw","ip":"192.0.2.2"}`)
	if a := testdeps.Call(t, client, "GET", base+"/north/verify", after, ""); a.Status != 200 {
		t.Errorf("a token from after the outage: %d %q", a.Status, a.Body)
	}
	if testdeps.MetricValue(t, admin, "northd_store_up") != 1 {
		t.Error("northd_store_up is not 1 after recovery")
	}
	for _, c := range append(clients, client, http.DefaultClient) {
		c.CloseIdleConnections()
	}
	// The slack is the Redis client's: it opens its pipelined
	// connections (four, two goroutines each) and its blocking ones as
	// calls need them, and the load and the restart may leave more open
	// than the baseline had. A leak per refused request would be
	// hundreds.
	testdeps.WaitFor(t, "northd's goroutines back to their number before the outage", func() bool {
		return testdeps.MetricValue(t, admin, "go_goroutines") <= goroutines+16
	})
}

// -registry-max bounds the north servers of a subsystem in the store too:
// the least recently seen goes, with its token.
func TestRedisStoreIsBounded(t *testing.T) {
	redis := testdeps.StartRedis(t)
	n := start(t, "-listen", "alarms=127.0.0.1:0", "-admin", "127.0.0.1:0", "-store", redis.URL(), "-registry-max", "2")
	listen, admin := n.Listen, n.Admin
	base := "http://" + listen[0]
	client := testdeps.ClientFrom("127.0.0.1")
	var tokens []string
	for i := 1; i <= 3; i++ {
		tokens = append(tokens, testdeps.LoginToken(t, client, base, `{"username":"n","password":"p","ip":"192.0.2.`+strconv.Itoa(i)+`"}`))
	}
	if a := testdeps.Call(t, client, "GET", base+"/north/verify", tokens[0], ""); a.Status != 401 {
		t.Errorf("the forgotten north server's token: %d %q", a.Status, a.Body)
	}
	for _, tok := range tokens[1:] {
		if a := testdeps.Call(t, client, "GET", base+"/north/verify", tok, ""); a.Status != 200 {
			t.Errorf("a kept north server's token: %d %q", a.Status, a.Body)
		}
	}
	if got := strings.TrimSpace(redis.CLI("ZCARD", "northd:{alarms}:servers")); got != "2" {
		t.Errorf("the store holds %s north servers, want 2", got)
	}
	if got := strings.TrimSpace(redis.CLI("EXISTS", "northd:{alarms}:ns:192.0.2.1")); got != "0" {
		t.Errorf("the forgotten north server's record is still there")
	}
	a := testdeps.Call(t, client, "GET", "http://"+admin+"/north/servers?limit=1", "", "")
	if !strings.Contains(a.Body, `"ip": "192.0.2.3"`) || strings.Contains(a.Body, `"ip": "192.0.2.2"`) || !strings.Contains(a.Body, `"count": 2`) {
		t.Errorf("/north/servers?limit=1: %s", a.Body)
	}
}

// A token in Redis stops verifying once -token-ttl has passed, on every
// instance, and Redis's own expiry removes it: nothing is left to present.
func TestRedisTokenExpires(t *testing.T) {
	redis := testdeps.StartRedis(t)
	nA := start(t, "-listen", "alarms=127.0.0.1:0", "-admin", "off", "-store", redis.URL(), "-token-ttl", "1s")
	a := nA.Listen
	nB := start(t, "-listen", "alarms=127.0.0.1:0", "-admin", "off", "-store", redis.URL(), "-token-ttl", "1s")
	b := nB.Listen
	client := testdeps.ClientFrom("127.0.0.1")
	token := testdeps.LoginToken(t, client, "http://"+a[0], `{"username":"north","password":"pw","ip":"192.0.2.70"}`)
	if strings.TrimSpace(redis.CLI("EXISTS", "northd:{alarms}:tok:"+tokenDigestOf(t, token))) != "1" {
		t.Fatal("the token's record is not in Redis after its login")
	}
	// It may have expired already on a slow machine; only its end is
	// waited for.
	v := testdeps.Call(t, client, "GET", "http://"+b[0]+"/north/verify", token, "")
	if v.Status == 200 && !strings.HasSuffix(v.Body, `, "expires_in": 1}`) && !strings.HasSuffix(v.Body, `, "expires_in": 0}`) {
		t.Errorf("verify just after the login: %q, want expires_in 1 or 0", v.Body)
	}
	testdeps.WaitFor(t, "the token to stop verifying", func() bool {
		v = testdeps.Call(t, client, "GET", "http://"+b[0]+"/north/verify", token, "")
		return v.Status != 200
	})
	// Redis drops the record at the expiry itself, so verify can tell
	// only within a millisecond or so that it expired rather than never
	// existed; both are code 2.
	if v.Status != 401 || (v.Body != `{"code": 2, "description": "the token has expired; log in again"}` &&
		v.Body != `{"code": 2, "description": "the token is not valid: it was never issued here, or a newer login replaced it, or it was logged out; log in again"}`) {
		t.Errorf("verify after -token-ttl: %d %q", v.Status, v.Body)
	}
	if v := testdeps.Call(t, client, "GET", "http://"+a[0]+"/north/verify", token, ""); v.Status != 401 {
		t.Errorf("verify on the issuing instance after -token-ttl: %d %q", v.Status, v.Body)
	}
	testdeps.WaitFor(t, "Redis to drop the token's record", func() bool {
		return strings.TrimSpace(redis.CLI("EXISTS", "northd:{alarms}:tok:"+tokenDigestOf(t, token))) == "0"
	})
}

// tokenDigestOf is the store's key for a token given in hex: the hex
// SHA-256 of its 16 bytes.
func tokenDigestOf(t *testing.T, hexToken string) string {
	t.Helper()
	b, err := hex.DecodeString(hexToken)
	if err != nil || len(b) != 16 {
		t.Fatalf("token %q: %v", hexToken, err)
	}
	d := sha256.Sum256(b)
	return hex.EncodeToString(d[:])
}

// At -registry-max, a login older than every north server in the store
// (it waited for a password check, or another instance's clock is ahead)
// must not be the one forgotten: it answers 200, so its token verifies.
func TestRedisLoginOlderThanEveryScoreKeepsItsToken(t *testing.T) {
	redis := testdeps.StartRedis(t)
	n := start(t, "-listen", "alarms=127.0.0.1:0", "-admin", "off", "-store", redis.URL(), "-registry-max", "2")
	listen := n.Listen
	base := "http://" + listen[0]
	client := testdeps.ClientFrom("127.0.0.1")
	testdeps.LoginToken(t, client, base, `{"username":"a","password":"p","ip":"192.0.2.1"}`)
	kept := testdeps.LoginToken(t, client, base, `{"username":"b","password":"p","ip":"192.0.2.2"}`)
	// Both were seen "later" than any login this instance can make: by
	// an instance whose clock is far ahead.
	for _, ip := range []string{"192.0.2.1", "192.0.2.2"} {
		redis.CLI("ZADD", "northd:{alarms}:servers", "XX", "4102444800000000", ip) // 2100-01-01, in microseconds
	}
	fresh := testdeps.LoginToken(t, client, base, `{"username":"c","password":"p","ip":"192.0.2.3"}`)
	if a := testdeps.Call(t, client, "GET", base+"/north/verify", fresh, ""); a.Status != 200 {
		t.Errorf("the token of a login answered 200 at the bound: %d %q", a.Status, a.Body)
	}
	if a := testdeps.Call(t, client, "GET", base+"/north/verify", kept, ""); a.Status != 200 {
		t.Errorf("the newer of the two others: %d %q", a.Status, a.Body)
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
	n := start(t, "-listen", "alarms=127.0.0.1:0", "-admin", "off", "-store", redis.URL(), "-store-timeout", "200ms")
	listen := n.Listen
	base := "http://" + listen[0]
	client := testdeps.ClientFrom("127.0.0.1")
	body := `{"username":"north","password":"pw","ip":"192.0.2.7"}`
	before := testdeps.LoginToken(t, client, base, body)

	redis.Pause()
	a := testdeps.Call(t, client, "POST", base+"/north/login", "", body)
	if a.Status != 503 || a.Body != `{"code": 4, "token": "", "description": "the token store is unavailable; retry after the Retry-After seconds"}` || a.Header.Get("Retry-After") != "1" {
		t.Fatalf("login while the store is paused: %d %v %q", a.Status, a.Header, a.Body)
	}
	redis.Resume()

	// The 503 login may still be in Redis's queue, on another of the
	// client's connections, and land after a retry, ending the retry's
	// token; or it may never land. So the retry is what a north server
	// does: log in, and log in again on a 401 (docs/north-servers.md says so). The
	// late login lands at most once, so this ends.
	var retried string
	testdeps.WaitFor(t, "a retried login whose token verifies", func() bool {
		a := testdeps.Call(t, client, "POST", base+"/north/login", "", body)
		if a.Status == 503 {
			return false
		}
		token, ok := testdeps.TokenIn(a.Body)
		if a.Status != 200 || !ok {
			t.Fatalf("retried login: %d %q", a.Status, a.Body)
		}
		retried = token
		v := testdeps.Call(t, client, "GET", base+"/north/verify", retried, "")
		if v.Status == 401 {
			return false // the late login replaced it
		}
		if v.Status != 200 || !strings.Contains(v.Body, `"username": "north", "ip": "192.0.2.7"`) {
			t.Fatalf("the retried login's token: %d %q", v.Status, v.Body)
		}
		return true
	})
	if a := testdeps.Call(t, client, "GET", base+"/north/verify", before, ""); a.Status != 401 {
		t.Errorf("the token from before the 503: %d %q", a.Status, a.Body)
	}
}

// A login whose store call times out gets 503, but says nothing about the
// store as a whole: /readyz stays 200, so a balancer does not take every
// instance sharing the store out of rotation for one slow answer. Redis's
// CLIENT PAUSE … WRITE holds the login's script while PING still answers.
func TestSlowStoreCallKeepsInstanceReady(t *testing.T) {
	redis := testdeps.StartRedis(t)
	n := start(t, "-listen", "alarms=127.0.0.1:0", "-admin", "off", "-store", redis.URL(), "-store-timeout", "100ms")
	listen := n.Listen
	base := "http://" + listen[0]
	client := testdeps.ClientFrom("127.0.0.1")
	testdeps.WaitFor(t, "/readyz 200 once the store answered", func() bool { return testdeps.Call(t, client, "GET", base+"/readyz", "", "").Status == 200 })

	redis.CLI("CLIENT", "PAUSE", "20000", "WRITE")
	a := testdeps.Call(t, client, "POST", base+"/north/login", "", `{"username":"n","password":"p","ip":"192.0.2.1"}`)
	if a.Status != 503 || a.Body != `{"code": 4, "token": "", "description": "the token store is unavailable; retry after the Retry-After seconds"}` {
		t.Fatalf("login while the store holds writes: %d %q", a.Status, a.Body)
	}
	if r := testdeps.Call(t, client, "GET", base+"/readyz", "", ""); r.Status != 200 || r.Body != "ready\n" {
		t.Errorf("/readyz after one slow store call: %d %q, want 200 ready", r.Status, r.Body)
	}
	redis.CLI("CLIENT", "UNPAUSE")
	testdeps.LoginToken(t, client, base, `{"username":"n","password":"p","ip":"192.0.2.1"}`)
}

// A store that hangs is declared down by the probes, with their own
// deadline, however long -store-timeout is; from then on requests get 503
// at once instead of waiting it out, and the first probe that answers
// brings the instance back.
func TestHungStoreIsDeclaredDownByProbes(t *testing.T) {
	redis := testdeps.StartRedis(t)
	n := start(t, "-listen", "alarms=127.0.0.1:0", "-admin", "off", "-store", redis.URL(), "-store-timeout", "1h")
	listen := n.Listen
	base := "http://" + listen[0]
	client := testdeps.ClientFrom("127.0.0.1")
	client.Timeout = time.Minute // a request that waited out the hour fails here
	testdeps.WaitFor(t, "/readyz 200 once the store answered", func() bool { return testdeps.Call(t, client, "GET", base+"/readyz", "", "").Status == 200 })
	token := testdeps.LoginToken(t, client, base, `{"username":"n","password":"p","ip":"192.0.2.1"}`)

	redis.Pause()
	testdeps.WaitFor(t, "/readyz 503 while the store hangs", func() bool {
		r := testdeps.Call(t, client, "GET", base+"/readyz", "", "")
		return r.Status == 503 && r.Body == "store unavailable: this instance cannot reach -store\n"
	})
	if a := testdeps.Call(t, client, "GET", base+"/north/verify", token, ""); a.Status != 503 || a.Header.Get("Retry-After") != "1" {
		t.Errorf("verify while the store is down: %d %v %q", a.Status, a.Header, a.Body)
	}
	if a := testdeps.Call(t, client, "POST", base+"/north/login", "", `{"username":"n","password":"p","ip":"192.0.2.2"}`); a.Status != 503 {
		t.Errorf("login while the store is down: %d %q", a.Status, a.Body)
	}
	redis.Resume()
	testdeps.WaitFor(t, "/readyz 200 after the store answered again", func() bool { return testdeps.Call(t, client, "GET", base+"/readyz", "", "").Status == 200 })
	if a := testdeps.Call(t, client, "GET", base+"/north/verify", token, ""); a.Status != 200 {
		t.Errorf("the token from before the hang: %d %q", a.Status, a.Body)
	}
	if c := strings.Count(n.Log(), "store unreachable"); c != 1 {
		t.Errorf("the hang was logged %d times, want once:\n%s", c, n.Log())
	}
}

// While serving with a store whose URL holds a password, neither the log,
// /north/servers nor /metrics shows it, not even when the store goes away.
func TestStorePasswordNotShownWhileServing(t *testing.T) {
	redis := testdeps.StartRedis(t)
	redis.CLI("CONFIG", "SET", "requirepass", "hunter2-secret")
	n := start(t, "-listen", "alarms=127.0.0.1:0", "-admin", "127.0.0.1:0", "-store", "redis://:hunter2-secret@"+redis.Addr()+"/0")
	listen, admin := n.Listen, n.Admin
	client := testdeps.ClientFrom("127.0.0.1")
	testdeps.LoginToken(t, client, "http://"+listen[0], `{"username":"north","password":"pw","ip":"192.0.2.80"}`)
	shown := testdeps.Call(t, client, "GET", "http://"+admin+"/north/servers", "", "").Body + testdeps.Call(t, client, "GET", "http://"+admin+"/metrics", "", "").Body
	redis.Kill()
	testdeps.WaitFor(t, "/readyz 503 with the store gone", func() bool {
		return testdeps.Call(t, client, "GET", "http://"+listen[0]+"/readyz", "", "").Status == 503
	})
	if strings.Contains(shown, "hunter2") || strings.Contains(n.Log(), "hunter2") {
		t.Errorf("the password is shown:\n%s\nlog:\n%s", shown, n.Log())
	}
}
