package main

import (
	"io"
	"sync/atomic"
	"testing"

	"github.com/VictoriaMetrics/metrics"

	"northd/internal/testdeps"
)

const (
	claimRefusedBody = `{"code": 5, "token": "", "description": "this username may not log in for that ip: the users file lists the addresses it may claim; send one of them as ip, or ask the operator to add this one"}`
	ipHeldBody       = `{"code": 6, "token": "", "description": "another username holds a live token for that ip; send your own north server's ip, or wait until that token is logged out or expires"}`
)

// Who may claim an ip, over HTTP, with either store: a user with a list
// only its ips (403 otherwise), taking them over from anyone; a user
// without one any ip whose live token no other username holds (409
// otherwise, until that token ends).
func TestLoginClaims(t *testing.T) {
	for _, store := range []string{"memory", "redis"} {
		t.Run(store, func(t *testing.T) {
			users := testdeps.WriteUsersFile(t, "alice:"+testdeps.Bcrypt2ySecret+":192.0.2.0/24,2001:db8::1\nbob:"+testdeps.Bcrypt2ySecret+"\ncarol:"+testdeps.Bcrypt2ySecret+"\n")
			args := []string{"-listen", "alarms=127.0.0.1:0", "-admin", "127.0.0.1:0", "-users", users}
			if store == "redis" {
				args = append(args, "-store", testdeps.StartRedis(t).URL())
			}
			listen, admin, _, _ := startRun(t, args...)
			base := "http://" + listen[0]
			client := testdeps.ClientFrom("127.0.0.1")
			login := func(user, ip string) testdeps.Answer {
				body := `{"username":"` + user + `","password":"secret"`
				if ip != "" {
					body += `,"ip":"` + ip + `"`
				}
				return testdeps.Call(t, client, "POST", base+"/north/login", "", body+"}")
			}
			refused := func(step string, a testdeps.Answer, status int, body string) {
				t.Helper()
				if a.Status != status || a.Body != body || a.Header.Get("Content-Type") != "application/json; charset=utf-8" ||
					a.Header.Get("Cache-Control") != "no-store" || a.Header.Get("WWW-Authenticate") != "" || a.Header.Get("Retry-After") != "" {
					t.Errorf("%s: %d %v %q, want %d %q", step, a.Status, a.Header, a.Body, status, body)
				}
			}
			verifies := func(step, token string, want int) {
				t.Helper()
				if a := testdeps.Call(t, client, "GET", base+"/north/verify", token, ""); a.Status != want {
					t.Errorf("%s: verify %d %q, want %d", step, a.Status, a.Body, want)
				}
			}

			refused("alice off her list", login("alice", "198.51.100.1"), 403, claimRefusedBody)
			refused("alice from her client address, off her list", login("alice", ""), 403, claimRefusedBody)
			// A wrong password is told as such, not by the list.
			if a := testdeps.Call(t, client, "POST", base+"/north/login", "", `{"username":"alice","password":"Secret","ip":"198.51.100.1"}`); a.Status != 401 {
				t.Errorf("alice with a wrong password off her list: %d %q", a.Status, a.Body)
			}
			testdeps.LoginToken(t, client, base, `{"username":"alice","password":"secret","ip":"2001:db8::1"}`)

			bob := testdeps.LoginToken(t, client, base, `{"username":"bob","password":"secret","ip":"198.51.100.1"}`)
			refused("carol on bob's ip", login("carol", "198.51.100.1"), 409, ipHeldBody)
			verifies("bob's token after carol's try", bob, 200)
			bob = testdeps.LoginToken(t, client, base, `{"username":"bob","password":"secret","ip":"198.51.100.1"}`) // his own again
			if a := testdeps.Call(t, client, "POST", base+"/north/logout", bob, ""); a.Status != 200 {
				t.Fatalf("bob's logout: %d %q", a.Status, a.Body)
			}
			carol := testdeps.LoginToken(t, client, base, `{"username":"carol","password":"secret","ip":"198.51.100.1"}`)
			verifies("carol's token on the ip bob left", carol, 200)

			// The ips on alice's list are hers, whoever holds them.
			squatter := testdeps.LoginToken(t, client, base, `{"username":"bob","password":"secret","ip":"192.0.2.9"}`)
			mine := testdeps.LoginToken(t, client, base, `{"username":"alice","password":"secret","ip":"192.0.2.9"}`)
			verifies("bob's token on alice's ip after she logged in", squatter, 401)
			verifies("alice's token on her ip", mine, 200)
			refused("bob back on alice's ip", login("bob", "192.0.2.9"), 409, ipHeldBody)

			for reason, want := range map[string]float64{"ip_not_allowed": 2, "ip_held_by_another_user": 2} {
				if n := testdeps.MetricValue(t, admin, `northd_login_failures_total{subsystem="alarms",reason="`+reason+`"}`); n != want {
					t.Errorf("login failures for %s: %v, want %v", reason, n, want)
				}
			}
			for status, want := range map[string]float64{"403": 2, "409": 2} {
				if n := testdeps.MetricValue(t, admin, `northd_requests_total{subsystem="alarms",route="login",status="`+status+`"}`); n != want {
					t.Errorf("logins answered %s: %v, want %v", status, n, want)
				}
			}
		})
	}
}

// In open mode a username proves nothing: the latest login takes the ip,
// as in the seed, and a username is not bounded in ips.
func TestOpenModeLatestLoginTakesTheIP(t *testing.T) {
	for _, store := range []string{"memory", "redis"} {
		t.Run(store, func(t *testing.T) {
			args := []string{"-listen", "alarms=127.0.0.1:0", "-admin", "off", "-max-ips-per-user", "2"}
			if store == "redis" {
				args = append(args, "-store", testdeps.StartRedis(t).URL())
			}
			listen, _, _, _ := startRun(t, args...)
			base := "http://" + listen[0]
			client := testdeps.ClientFrom("127.0.0.1")
			testdeps.LoginToken(t, client, base, `{"username":"a","password":"p","ip":"192.0.2.1"}`)
			taken := testdeps.LoginToken(t, client, base, `{"username":"b","password":"p","ip":"192.0.2.1"}`)
			if a := testdeps.Call(t, client, "GET", base+"/north/verify", taken, ""); a.Status != 200 {
				t.Errorf("b's token on the ip it took: %d %q", a.Status, a.Body)
			}
			var tokens []string
			for i := 2; i <= 5; i++ {
				tokens = append(tokens, testdeps.LoginToken(t, client, base, `{"username":"a","password":"p","ip":"192.0.2.`+string(rune('0'+i))+`"}`))
			}
			for i, tok := range tokens {
				if a := testdeps.Call(t, client, "GET", base+"/north/verify", tok, ""); a.Status != 200 {
					t.Errorf("a's token %d of 4: %d %q", i+1, a.Status, a.Body)
				}
			}
		})
	}
}

// A cached login of a user with a claim list, and the 403 and 409
// refusals, allocate nothing.
func TestClaimsAllocateNothing(t *testing.T) {
	cfg := testConfig(t, "-users", testdeps.WriteUsersFile(t, "alice:"+testdeps.Bcrypt2ySecret+":192.0.2.0/24\nbob:"+testdeps.Bcrypt2ySecret+"\n"))
	log := newLogger(io.Discard, "error", "text")
	set := metrics.NewSet()
	authn, err := newAuthenticator(cfg, set, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(authn.Stop)
	h := newSubsystem(t.Context(), common{cfg: cfg, draining: new(atomic.Bool), auth: authn, set: set, log: log}, "test", nullListener{}).routes()
	for _, tt := range []struct {
		name   string
		body   string
		status int
	}{
		{"listed login", `{"username":"alice","password":"secret","ip":"192.0.2.7"}`, 200},
		{"unlisted ip", `{"username":"alice","password":"secret","ip":"198.51.100.7"}`, 403},
		{"held ip", `{"username":"bob","password":"secret","ip":"192.0.2.7"}`, 409},
	} {
		ctx := handlerCtx(t, post("/north/login", tt.body))
		body := []byte(tt.body)
		run := func() {
			ctx.Request.SetBody(body)
			ctx.Response.Reset()
			h(ctx)
			if ctx.Response.StatusCode() != tt.status {
				t.Fatalf("%s: %d %q, want %d", tt.name, ctx.Response.StatusCode(), ctx.Response.Body(), tt.status)
			}
		}
		run() // fills the credential cache
		if n := testing.AllocsPerRun(200, run); n != 0 && !testdeps.RaceEnabled {
			t.Errorf("%s allocates %v times per request", tt.name, n)
		}
	}
}
