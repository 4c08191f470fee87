package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"northd/internal/testdeps"
)

// tryLogin is a login for a goroutine of its own: status -1 when no
// answer came.
func tryLogin(tb testing.TB, client *http.Client, base, body string) testdeps.Answer {
	a, err := testdeps.Try(tb, client, "POST", base+"/north/login", "", body)
	if err != nil {
		return testdeps.Answer{Status: -1}
	}
	return a
}

// loginAs logs username in at ip (any password does in open mode).
func loginAs(t *testing.T, addr, username, ip string) string {
	t.Helper()
	return testdeps.LoginToken(t, http.DefaultClient, "http://"+addr, fmt.Sprintf(`{"username":%q,"password":"pw","ip":%q}`, username, ip))
}

func logoutToken(t *testing.T, addr, token string) {
	t.Helper()
	if a := testdeps.Call(t, http.DefaultClient, "POST", "http://"+addr+"/north/logout", token, ""); a.Status != 200 {
		t.Fatalf("logout: %d %s", a.Status, a.Body)
	}
}

const (
	wrongCredentials = `{"code": 2, "token": "", "description": "username or password is incorrect"}`
	tooManyFailures  = `{"code": 3, "token": "", "description": "too many failed logins; wait the Retry-After seconds before trying again"}`
	storeUnavailable = `{"code": 4, "token": "", "description": "the token store is unavailable; retry after the Retry-After seconds"}`
)

// reload sends northd SIGHUP, as an operator does, and returns once it has
// counted the reload, ok or failed: northd counts it last, after the
// tokens it ends.
func reload(t *testing.T, n *testdeps.Northd) {
	t.Helper()
	reloads := func() float64 {
		return testdeps.MetricValue(t, n.Admin, `northd_reloads_total{result="ok"}`) + testdeps.MetricValue(t, n.Admin, `northd_reloads_total{result="failed"}`)
	}
	before := reloads()
	n.Signal(t, syscall.SIGHUP)
	testdeps.WaitFor(t, "northd to count the reload", func() bool { return reloads() == before+1 })
}

// eachStore runs test with the memory store and with a Redis store of
// its own.
func eachStore(t *testing.T, test func(t *testing.T, store ...string)) {
	t.Run("memory", func(t *testing.T) { test(t) })
	t.Run("redis", func(t *testing.T) { test(t, "-store", testdeps.StartRedis(t).URL()) })
}

func equalHeaders(a, b http.Header) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if strings.Join(v, "\n") != strings.Join(b[k], "\n") {
			return false
		}
	}
	return true
}

// hashPassword is northd hash-password's hash of password.
func hashPassword(t *testing.T, password string) string {
	t.Helper()
	r := testdeps.RunNorthd(t, bin, testdeps.Options{}, password+"\n", "hash-password")
	if r.Code != 0 {
		t.Fatalf("northd hash-password: exit %d\n%s", r.Code, r.Stderr)
	}
	return strings.TrimSpace(r.Stdout)
}

// htpasswdBcrypt makes a bcrypt users-file line with Apache's htpasswd,
// the tool operators use.
func htpasswdBcrypt(t *testing.T, user, password string) string {
	t.Helper()
	testdeps.Need(t, "htpasswd", "apache2-utils")
	out, err := exec.Command("htpasswd", "-nbB", "-C", "4", user, password).Output()
	if err != nil {
		t.Fatalf("htpasswd: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// rawRoundTrip writes raw, a request as bytes, to a new connection to
// addr and reads one response, for requests net/http will not send (two
// Authorization headers, headers past any limit).
func rawRoundTrip(t *testing.T, addr, raw string) (*http.Response, string) {
	t.Helper()
	c := testdeps.DialKept(t, addr)
	c.SetDeadline(time.Now().Add(time.Minute)) // only a hang gets near it
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("reading the response to %.100q: %v", raw, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading the response to %.100q: %v", raw, err)
	}
	testdeps.CheckAnswerTo(t, raw, resp.StatusCode, resp.Header, body)
	return resp, string(body)
}
