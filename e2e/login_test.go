package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"northd/internal/testdeps"
)

// Users made by the tools operators use log in; wrong passwords and
// unknown users get the same answer; a repeat login is served from the
// credential cache, which a reload empties.
func TestUsersFileLogins(t *testing.T) {
	bcryptLine := htpasswdBcrypt(t, "alice", "alice's secret")
	users := testdeps.WriteUsersFile(t, testdeps.TestUsersHeader+bcryptLine+"\nbob:"+hashPassword(t, "b\u00f6b's secret")+"\n")
	n := start(t, "-listen", "127.0.0.1:0", "-admin", "127.0.0.1:0", "-users", users)
	base, admin := "http://"+n.Listen[0], n.Admin
	client := testdeps.ClientFrom("127.0.0.1")

	testdeps.LoginToken(t, client, base, `{"username":"alice","password":"alice's secret"}`)
	// The password escaped in JSON is the same password.
	testdeps.LoginToken(t, client, base, `{"username":"bob","password":"b\u00f6b's secret","ip":"192.0.2.2"}`)

	wrong := testdeps.Call(t, client, "POST", base+"/north/login", "", `{"username":"alice","password":"alice's Secret"}`)
	unknown := testdeps.Call(t, client, "POST", base+"/north/login", "", `{"username":"mallory","password":"alice's secret"}`)
	for _, a := range []testdeps.Answer{wrong, unknown} {
		if a.Status != 401 || a.Body != wrongCredentials || a.Header.Get("WWW-Authenticate") != `Bearer realm="northd"` ||
			a.Header.Get("Content-Type") != "application/json; charset=utf-8" || a.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("refused login: %d %v %q", a.Status, a.Header, a.Body)
		}
	}
	wrong.Header.Del("Date")
	unknown.Header.Del("Date")
	if !equalHeaders(wrong.Header, unknown.Header) {
		t.Errorf("a wrong password and an unknown user differ in headers:\n%v\n%v", wrong.Header, unknown.Header)
	}
	// Both were checked against a hash: the unknown user against the
	// dummy. 2 logins + 2 refusals = 4 hashes (the pool counts a check
	// just after answering it).
	testdeps.WaitFor(t, "4 password hashes counted", func() bool {
		return testdeps.MetricValue(t, admin, "northd_password_hash_duration_seconds_count") == 4
	})

	// A repeat login hashes nothing: the cache answers.
	hits := testdeps.MetricValue(t, admin, "northd_auth_cache_hits_total")
	testdeps.LoginToken(t, client, base, `{"username":"alice","password":"alice's secret"}`)
	if n := testdeps.MetricValue(t, admin, "northd_password_hash_duration_seconds_count"); n != 4 {
		t.Errorf("a repeat login hashed: %v hashes, want still 4", n)
	}
	if n := testdeps.MetricValue(t, admin, "northd_auth_cache_hits_total"); n != hits+1 {
		t.Errorf("cache hits %v, want %v", n, hits+1)
	}

	// A reload (SIGHUP) loads the file anew, with an empty cache: the
	// next login hashes again.
	reloads := testdeps.MetricValue(t, admin, `northd_reloads_total{result="ok"}`)
	reload(t, n)
	if n := testdeps.MetricValue(t, admin, `northd_reloads_total{result="ok"}`); n != reloads+1 {
		t.Errorf("%v reloads counted ok, want %v", n, reloads+1)
	}
	testdeps.LoginToken(t, client, base, `{"username":"alice","password":"alice's secret"}`)
	testdeps.WaitFor(t, "a 5th password hash after the reload", func() bool {
		return testdeps.MetricValue(t, admin, "northd_password_hash_duration_seconds_count") == 5
	})

	// A bad file keeps the one in force, and says why.
	if err := os.WriteFile(users, []byte("alice:$apr1$Qm5ySfvx$rJQ2X8ZzMmY3vP3oWlF0Q.\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	failed := testdeps.MetricValue(t, admin, `northd_reloads_total{result="failed"}`)
	reload(t, n)
	if n := testdeps.MetricValue(t, admin, `northd_reloads_total{result="failed"}`); n != failed+1 {
		t.Errorf("%v reloads counted failed, want %v", n, failed+1)
	}
	if !strings.Contains(n.Log(), "users file not reloaded; the previous one stays in force") || !strings.Contains(n.Log(), "line 1: MD5 hashes") {
		t.Errorf("log does not say why the reload failed:\n%s", n.Log())
	}
	testdeps.LoginToken(t, client, base, `{"username":"bob","password":"b\u00f6b's secret","ip":"192.0.2.2"}`) // 127.0.0.1 is alice's
	if testdeps.MetricValue(t, admin, `northd_auth_mode{mode="users"}`) != 1 {
		t.Error("auth mode is not users")
	}
}

func TestBruteForceLimits(t *testing.T) {
	users := testdeps.WriteUsersFile(t, "alice:"+testdeps.Bcrypt2ySecret+"\n")
	n := start(t, "-listen", "127.0.0.1:0", "-admin", "127.0.0.1:0", "-users", users,
		"-login-failure-window", "1h", "-max-user-login-failures", "15")
	listen, admin := n.Listen, n.Admin
	base := "http://" + listen[0]
	attacker, other := testdeps.ClientFrom("127.0.0.2"), testdeps.ClientFrom("127.0.0.3")
	for i := range 10 {
		// Unknown usernames count as failures too.
		body := `{"username":"alice","password":"guess` + strconv.Itoa(i) + `"}`
		if i%2 == 1 {
			body = `{"username":"nobody` + strconv.Itoa(i) + `","password":"guess"}`
		}
		if a := testdeps.Call(t, attacker, "POST", base+"/north/login", "", body); a.Status != 401 {
			t.Fatalf("failure %d: %d %q", i+1, a.Status, a.Body)
		}
	}
	// The 11th login from the address is refused before any check,
	// even with the right password.
	a := testdeps.Call(t, attacker, "POST", base+"/north/login", "", `{"username":"alice","password":"secret"}`)
	retry, _ := strconv.Atoi(a.Header.Get("Retry-After"))
	// A tenth of an hour refills one failure: 360 s at most, less by
	// however long the test has run (no lower bound: the machine may be
	// slow). TestFailureLimits checks the figure exactly on a fixed clock.
	if a.Status != 429 || a.Body != tooManyFailures || retry < 1 || retry > 360 {
		t.Fatalf("11th login: %d Retry-After %q %q", a.Status, a.Header.Get("Retry-After"), a.Body)
	}
	if n := testdeps.MetricValue(t, admin, `northd_login_failures_total{subsystem="`+testdeps.PortOf(listen[0])+`",reason="rate_limited_address"}`); n != 1 {
		t.Errorf("rate-limited logins counted %v, want 1", n)
	}
	// Another address is unaffected.
	testdeps.LoginToken(t, other, base, `{"username":"alice","password":"secret"}`)

	// Per username: 15 failures for alice in all, 5 of them counted
	// above; 10 more from other addresses reach the limit.
	for i := range 10 {
		c := testdeps.ClientFrom("127.0.1." + strconv.Itoa(i+1))
		if a := testdeps.Call(t, c, "POST", base+"/north/login", "", `{"username":"alice","password":"nope"}`); a.Status != 401 {
			t.Fatalf("spread failure %d: %d %q", i, a.Status, a.Body)
		}
	}
	a = testdeps.Call(t, testdeps.ClientFrom("127.0.2.1"), "POST", base+"/north/login", "", `{"username":"alice","password":"still guessing"}`)
	if a.Status != 429 || a.Body != tooManyFailures || a.Header.Get("Retry-After") == "" {
		t.Fatalf("a guess spread over addresses: %d %q", a.Status, a.Body)
	}
	// The verified password still logs in from the cache: the limit is
	// on guessing, and the cache holds only what was verified.
	testdeps.LoginToken(t, testdeps.ClientFrom("127.0.2.2"), base, `{"username":"alice","password":"secret"}`)

	// A username that does not exist is limited alike, so that a 429
	// does not tell which usernames exist.
	for i := range 15 {
		c := testdeps.ClientFrom("127.0.3." + strconv.Itoa(i+1))
		if a := testdeps.Call(t, c, "POST", base+"/north/login", "", `{"username":"ghost","password":"nope"}`); a.Status != 401 {
			t.Fatalf("ghost failure %d: %d %q", i, a.Status, a.Body)
		}
	}
	a = testdeps.Call(t, testdeps.ClientFrom("127.0.4.1"), "POST", base+"/north/login", "", `{"username":"ghost","password":"nope"}`)
	if a.Status != 429 || a.Body != tooManyFailures {
		t.Fatalf("an unknown username guessed from many addresses: %d %q, want 429 as for a known one", a.Status, a.Body)
	}
}

// The token lifecycle over HTTP: login, verify, logout, verify, and a
// new login from the same ip replacing the token.
func TestTokenLifecycle(t *testing.T) {
	n := start(t, "-listen", "127.0.0.1:0,127.0.0.1:0", "-admin", "127.0.0.1:0")
	listen, admin := n.Listen, n.Admin
	base := "http://" + listen[0]
	client := testdeps.ClientFrom("127.0.0.1")
	body := `{"username":"n\u00f6rth \"1\"","password":"pw","ip":"192.0.2.10"}`
	token := testdeps.LoginToken(t, client, base, body)

	a := testdeps.Call(t, client, "GET", base+"/north/verify", token, "")
	want := regexp.MustCompile(`^\{"code": 0, "description": "valid", "username": "nörth \\"1\\"", "ip": "192.0.2.10", "expires_in": (3600|3599)\}$`)
	if a.Status != 200 || !want.MatchString(a.Body) || a.Header.Get("Content-Type") != "application/json; charset=utf-8" {
		t.Fatalf("verify: %d %q", a.Status, a.Body)
	}
	// A token is valid on the subsystem that issued it only.
	if a := testdeps.Call(t, client, "GET", "http://"+listen[1]+"/north/verify", token, ""); a.Status != 401 {
		t.Errorf("verify on the other subsystem: %d %q", a.Status, a.Body)
	}

	a = testdeps.Call(t, client, "POST", base+"/north/logout", token, "")
	if a.Status != 200 || a.Body != `{"code": 0, "description": "logged out"}` {
		t.Fatalf("logout: %d %q", a.Status, a.Body)
	}
	unknown := `{"code": 2, "description": "the token is not valid: it was never issued here, or a newer login replaced it, or it was logged out; log in again"}`
	for _, route := range []struct{ method, path string }{{"GET", "/north/verify"}, {"POST", "/north/logout"}} {
		a = testdeps.Call(t, client, route.method, base+route.path, token, "")
		if a.Status != 401 || a.Body != unknown || a.Header.Get("WWW-Authenticate") != `Bearer realm="northd", error="invalid_token"` {
			t.Errorf("%s after logout: %d %v %q", route.path, a.Status, a.Header, a.Body)
		}
	}

	first := testdeps.LoginToken(t, client, base, body)
	second := testdeps.LoginToken(t, client, base, body)
	if a := testdeps.Call(t, client, "GET", base+"/north/verify", first, ""); a.Status != 401 || a.Body != unknown {
		t.Errorf("a replaced token: %d %q", a.Status, a.Body)
	}
	if a := testdeps.Call(t, client, "GET", base+"/north/verify", second, ""); a.Status != 200 {
		t.Errorf("the replacing token: %d %q", a.Status, a.Body)
	}
	if n := testdeps.MetricValue(t, admin, `northd_tokens_live{subsystem="`+testdeps.PortOf(listen[0])+`"}`); n != 1 {
		t.Errorf("%v live tokens, want 1", n)
	}
	if n := testdeps.MetricValue(t, admin, `northd_tokens_ended_total{subsystem="`+testdeps.PortOf(listen[0])+`",why="replaced"}`); n != 1 {
		t.Errorf("%v replaced tokens, want 1", n)
	}
}

// Every malformed Authorization gets a 4xx with a sentence to act on.
func TestVerifyRefusesBadAuthorization(t *testing.T) {
	n := start(t, "-listen", "127.0.0.1:0", "-admin", "off")
	listen := n.Listen
	const (
		challenge = `Bearer realm="northd"`
		invalid   = `Bearer realm="northd", error="invalid_token"`
		malformed = `{"code": 2, "description": "the token must be the 32 lowercase hex digits /north/login returned"}`
		tok       = "0123456789abcdef0123456789abcdef"
	)
	tests := []struct {
		name          string
		authorization []string
		status        int
		challenge     string
		body          string
	}{
		{"missing", nil, 401, challenge, `{"code": 2, "description": "send the token from /north/login as Authorization: Bearer TOKEN"}`},
		{"empty bearer", []string{"Bearer"}, 401, invalid, malformed},
		{"uppercase", []string{"Bearer " + strings.ToUpper(tok)}, 401, invalid, malformed},
		{"short", []string{"Bearer " + tok[:30]}, 401, invalid, malformed},
		{"non-hex", []string{"Bearer " + tok[:31] + "z"}, 401, invalid, malformed},
		{"basic", []string{"Basic YWxpY2U6c2VjcmV0"}, 401, challenge, `{"code": 2, "description": "Authorization must use the Bearer scheme: Authorization: Bearer TOKEN"}`},
		{"unknown", []string{"Bearer " + tok}, 401, invalid, `{"code": 2, "description": "the token is not valid: it was never issued here, or a newer login replaced it, or it was logged out; log in again"}`},
		{"several", []string{"Bearer " + tok, "Bearer " + tok}, 400, `Bearer realm="northd", error="invalid_request"`, `{"code": 1, "description": "send one Authorization header, not several"}`},
		{"long", []string{"Bearer " + strings.Repeat("a", 3000)}, 401, invalid, malformed},
	}
	for _, tt := range tests {
		raw := "GET /north/verify HTTP/1.1\r\nHost: x\r\n"
		for _, v := range tt.authorization {
			raw += "Authorization: " + v + "\r\n"
		}
		resp, body := rawRoundTrip(t, listen[0], raw+"\r\n")
		if resp.StatusCode != tt.status || resp.Header.Get("WWW-Authenticate") != tt.challenge || body != tt.body ||
			resp.Header.Get("Content-Type") != "application/json; charset=utf-8" {
			t.Errorf("%s: %d %q %q", tt.name, resp.StatusCode, resp.Header.Get("WWW-Authenticate"), body)
		}
	}
	// Headers past the server's limit are refused with 431, not a 5xx.
	resp, body := rawRoundTrip(t, listen[0], "GET /north/verify HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "+strings.Repeat("a", 64<<10)+"\r\n\r\n")
	if resp.StatusCode != 431 {
		t.Errorf("huge headers: %d %q", resp.StatusCode, body)
	}
}

func TestTLSEndToEnd(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, roots := testdeps.SelfSignedCert(t, dir, "first")
	n := start(t, "-listen", "127.0.0.1:0", "-admin", "127.0.0.1:0", "-tls-cert", certFile, "-tls-key", keyFile)
	listen := n.Listen
	base := "https://" + listen[0]
	httpsClient := func(roots *x509.CertPool, maxVersion uint16) *http.Client {
		return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, MaxVersion: maxVersion}}}
	}
	client := httpsClient(roots, 0)
	token := testdeps.LoginToken(t, client, base, `{"username":"north","password":"pw"}`)
	if a := testdeps.Call(t, client, "GET", base+"/north/verify", token, ""); a.Status != 200 {
		t.Fatalf("verify over TLS: %d %q", a.Status, a.Body)
	}
	// TLS 1.1 is refused.
	if _, err := httpsClient(roots, tls.VersionTLS11).Get(base + "/"); err == nil {
		t.Error("a TLS 1.1 client was served")
	}
	// Plain HTTP on the TLS port gets no answer of the contract.
	if a, err := http.Get("http://" + listen[0] + "/"); err == nil && a.StatusCode == 200 {
		t.Error("plain HTTP was served on the TLS port")
	}

	// A reload (SIGHUP) loads a renewed certificate.
	newCert, newKey, newRoots := testdeps.SelfSignedCert(t, t.TempDir(), "second")
	for _, f := range [][2]string{{newCert, certFile}, {newKey, keyFile}} {
		b, _ := os.ReadFile(f[0])
		if err := os.WriteFile(f[1], b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	reload(t, n)
	resp, err := httpsClient(newRoots, 0).Get(base + "/")
	if err != nil {
		t.Fatalf("after the reload: %v", err)
	}
	resp.Body.Close()
	if cn := resp.TLS.PeerCertificates[0].Subject.CommonName; cn != "second" {
		t.Errorf("served certificate %q after the reload, want second", cn)
	}
}

// bcrypt checks only a password's first 72 bytes (with its terminating
// NUL), so a bcrypt user's password of 72 bytes or more is refused, with
// the wrong-password answer: otherwise 72 A's would log in whatever
// followed them, or with nothing after.
func TestBcryptRefusesPasswordsOf72BytesOrMore(t *testing.T) {
	a72 := strings.Repeat("A", 72)
	b71 := strings.Repeat("B", 71)
	long := strings.Repeat("long argon2id secret ", 5)
	users := testdeps.WriteUsersFile(t, htpasswdBcrypt(t, "longpw", a72+"secret tail")+"\n"+htpasswdBcrypt(t, "edge", b71)+"\n"+
		"argon:"+hashPassword(t, long)+"\n")
	n := start(t, "-listen", "127.0.0.1:0", "-admin", "127.0.0.1:0", "-users", users)
	listen, admin := n.Listen, n.Admin
	base := "http://" + listen[0]
	client := testdeps.ClientFrom("127.0.0.1")

	for _, password := range []string{a72 + "another tail", a72, a72 + "secret tail", a72 + "secret tail"} {
		a := testdeps.Call(t, client, "POST", base+"/north/login", "", `{"username":"longpw","password":"`+password+`"}`)
		if a.Status != 401 || a.Body != wrongCredentials || a.Header.Get("WWW-Authenticate") != `Bearer realm="northd"` {
			t.Errorf("bcrypt user, a %d-byte password: %d %q; want 401 %q", len(password), a.Status, a.Body, wrongCredentials)
		}
	}
	// Nothing was verified, so the cache holds nothing to log in with.
	if n := testdeps.MetricValue(t, admin, "northd_auth_cache_entries"); n != 0 {
		t.Errorf("%v cache entries after refused logins, want 0", n)
	}
	// 71 bytes are checked whole; argon2id users have no such limit.
	testdeps.LoginToken(t, client, base, `{"username":"edge","password":"`+b71+`"}`)
	if a := testdeps.Call(t, client, "POST", base+"/north/login", "", `{"username":"edge","password":"`+b71+`B"}`); a.Status != 401 {
		t.Errorf("71 B's and one more: %d %q, want 401", a.Status, a.Body)
	}
	testdeps.LoginToken(t, client, base, `{"username":"argon","password":"`+long+`","ip":"192.0.2.1"}`) // edge holds 127.0.0.1

	// The log says so once per user, recommends argon2id, and holds no
	// password.
	const warning = `refused a bcrypt user's password of 72 bytes or more: bcrypt checks only the first 72 bytes, so it cannot tell such a password from others that begin alike; give the user an argon2id hash (northd hash-password)`
	if got := n.Log(); strings.Count(got, warning) != 2 || strings.Count(got, `"user":"longpw"`) != 1 || strings.Count(got, `"user":"edge"`) != 1 || strings.Contains(got, "AAAA") || strings.Contains(got, "tail") {
		t.Errorf("log, want the warning once for longpw and once for edge, without passwords:\n%s", got)
	}
}

// An unknown username gets the same answer as a wrong password of the
// costliest user in the file, not the first: here a bcrypt cost 4 user
// comes first, a light argon2id user next, and the costliest is an
// argon2id user of hash-password's (m=19456,t=2). internal/auth checks
// that the dummy is as costly as that user.
func TestUnknownUserAnsweredAsTheCostliestUser(t *testing.T) {
	users := testdeps.WriteUsersFile(t, "cheap:"+testdeps.Bcrypt2ySecret+"\nlight:"+testdeps.Argon2idSecret+"\nheavy:"+hashPassword(t, "heavy secret")+"\n")
	n := start(t, "-listen", "127.0.0.1:0", "-admin", "off", "-users", users)
	listen := n.Listen
	client := testdeps.ClientFrom("127.0.0.1")
	wrong := testdeps.Call(t, client, "POST", "http://"+listen[0]+"/north/login", "", `{"username":"heavy","password":"guess"}`)
	unknown := testdeps.Call(t, client, "POST", "http://"+listen[0]+"/north/login", "", `{"username":"nobody","password":"guess"}`)
	wrong.Header.Del("Date")
	unknown.Header.Del("Date")
	if wrong.Status != 401 || wrong.Body != wrongCredentials || unknown.Status != 401 || unknown.Body != wrongCredentials || !equalHeaders(wrong.Header, unknown.Header) {
		t.Errorf("wrong password: %d %v %q; unknown user: %d %v %q", wrong.Status, wrong.Header, wrong.Body, unknown.Status, unknown.Header, unknown.Body)
	}
}
