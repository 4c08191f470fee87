package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

// The contract's refusals, written out here rather than taken from
// northd/contract, so that these tests check what loadtest expects too.
const (
	litWrongCredentials = `{"code": 2, "token": "", "description": "username or password is incorrect"}`
	litTooManyFailures  = `{"code": 3, "token": "", "description": "too many failed logins; wait the Retry-After seconds before trying again"}`
	litHashBusy         = `{"code": 4, "token": "", "description": "too many logins are waiting for a password check; retry after the Retry-After seconds"}`
	litChallenge        = `Bearer realm="northd"`
)

func withHeader(h http.Header, kv ...string) http.Header {
	h = h.Clone()
	for i := 0; i < len(kv); i += 2 {
		h.Add(kv[i], kv[i+1])
	}
	return h
}

// The storm may get only the contract's 401, 429 and 503, each with its
// own body and header.
func TestStormClassification(t *testing.T) {
	sc := stormCase(20, 5000)
	want := &sc.want
	json := okHeaders(litJSON)
	for _, tt := range []struct {
		name   string
		status int
		header http.Header
		body   string
		kind   string
	}{
		{"401", 401, withHeader(json, "WWW-Authenticate", litChallenge), litWrongCredentials, ""},
		{"429", 429, withHeader(json, "Retry-After", "6"), litTooManyFailures, ""},
		{"503", 503, withHeader(json, "Retry-After", "1"), litHashBusy, ""},
		{"401 without challenge", 401, json, litWrongCredentials, errChallenge},
		{"401 with another challenge", 401, withHeader(json, "WWW-Authenticate", `Basic realm="northd"`), litWrongCredentials, errChallenge},
		{"401 with the 429 body", 401, withHeader(json, "WWW-Authenticate", litChallenge), litTooManyFailures, errBody},
		{"429 without Retry-After", 429, json, litTooManyFailures, errRetryAfter},
		{"429 Retry-After 0", 429, withHeader(json, "Retry-After", "0"), litTooManyFailures, errRetryAfter},
		{"429 Retry-After as a date", 429, withHeader(json, "Retry-After", "Wed, 21 Oct 2026 07:28:00 GMT"), litTooManyFailures, errRetryAfter},
		{"429 with two Retry-After", 429, withHeader(json, "Retry-After", "6", "Retry-After", "6"), litTooManyFailures, errRetryAfter},
		{"503 with the 401 body", 503, withHeader(json, "Retry-After", "1"), litWrongCredentials, errBody},
		{"503 without Retry-After", 503, json, litHashBusy, errRetryAfter},
		{"429 as text", 429, withHeader(okHeaders(litText), "Retry-After", "6"), litTooManyFailures, errContentType},
		{"401 without Cache-Control", 401, http.Header{"Content-Type": {litJSON}, "WWW-Authenticate": {litChallenge}}, litWrongCredentials, errCacheControl},
		{"a wrong password let in", 200, json, string(loginBody(goodToken)), errAccepted},
		{"200 of another kind", 200, json, `{}`, errStatus},
		{"400", 400, json, `{"code": 1, "token": "", "description": "username is required"}`, errStatus},
		{"500", 500, okHeaders(litText), "Internal Server Error", errStatus},
		{"403", 403, json, litWrongCredentials, errStatus},
	} {
		t.Run(tt.name, func(t *testing.T) {
			v := &verifier{tokens: newTokenSet()}
			if got := v.check(want, tt.status, tt.header, []byte(tt.body)); got != tt.kind {
				t.Errorf("check = %q, want %q", got, tt.kind)
			}
		})
	}
}

// Each verification must be that of the north server whose token was sent:
// the n-th request's.
func TestVerifyCaseCheck(t *testing.T) {
	sc := verifyScenario(scenarioOptions{northServers: 3, targets: 1})
	c := &sc.cases[0]
	if !c.indexed || c.path != "/north/verify" || c.method != "GET" {
		t.Fatalf("verify case %+v", c)
	}
	v := &verifier{tokens: newTokenSet()}
	h := okHeaders(litJSON)
	second := `{"code": 0, "description": "valid", "username": "north-2", "ip": "172.16.0.2", "expires_in": 3600}`
	for _, tt := range []struct {
		n      uint64
		status int
		body   string
		kind   string
	}{
		{1, 200, second, ""},
		{4, 200, second, ""}, // 4 mod 3
		{1, 200, `{"code": 0, "description": "valid", "username": "north-2", "ip": "172.16.0.2", "expires_in": 1}`, ""},
		{0, 200, second, errVerify},
		{2, 200, second, errVerify},
		{1, 200, `{"code": 0, "description": "valid", "username": "north-2", "ip": "172.16.0.2", "expires_in": 0}`, errVerify},
		{1, 200, `{"code":0,"description":"valid","username":"north-2","ip":"172.16.0.2","expires_in":3600}`, errVerify},
		{1, 401, `{"code": 2, "description": "the token has expired; log in again"}`, errStatus},
	} {
		if got := v.checkIndexed(&c.want, tt.n, tt.status, h, []byte(tt.body)); got != tt.kind {
			t.Errorf("request %d, %d %s: %q, want %q", tt.n, tt.status, tt.body, got, tt.kind)
		}
	}
}

func TestKnownServersAndStorm(t *testing.T) {
	for k, want := range map[int]northServer{
		0:     {"north-1", "loadtest-secret-1", "172.16.0.1"},
		255:   {"north-256", "loadtest-secret-256", "172.16.1.0"},
		65534: {"north-65535", "loadtest-secret-65535", "172.16.255.255"},
	} {
		if got := knownServer(k); got != want {
			t.Errorf("knownServer(%d) = %+v, want %+v", k, got, want)
		}
	}
	var body struct{ Username, Password, IP string }
	if err := json.Unmarshal(knownServer(6).loginBody(), &body); err != nil || body.Username != "north-7" ||
		body.Password != "loadtest-secret-7" || body.IP != "172.16.0.7" {
		t.Errorf("login body %s: %+v, %v", knownServer(6).loginBody(), body, err)
	}
	for j, want := range map[uint64]string{0: "10.0.0.1", 255: "10.0.1.0", 4999: "10.0.19.136", maxStormAddrs - 1: "10.16.0.0"} {
		if got := stormAddr(j); got != want {
			t.Errorf("stormAddr(%d) = %s, want %s", j, got, want)
		}
	}
	// The storm never comes from a known server's address or the probe's.
	known := netip.MustParsePrefix("172.16.0.0/16")
	for _, j := range []uint64{0, 1, 4999, maxStormAddrs - 1} {
		a := netip.MustParseAddr(stormAddr(j))
		if known.Contains(a) || a.String() == probeAddr || !netip.MustParsePrefix("10.0.0.0/8").Contains(a) {
			t.Errorf("storm address %s", a)
		}
	}
	// Half the storm guesses known usernames, never with their password.
	users := map[string]int{}
	for n := range uint64(2000) {
		var b struct {
			Username, Password string
			IP                 *string
		}
		if err := json.Unmarshal(stormLogin(n, 20), &b); err != nil {
			t.Fatalf("storm body %d: %v", n, err)
		}
		if b.IP != nil {
			t.Errorf("storm body %d says an ip", n)
		}
		if strings.HasPrefix(b.Username, "north-") {
			users["known"]++
			for k := range 20 {
				if s := knownServer(k); s.username == b.Username && s.password == b.Password {
					t.Fatalf("storm body %d has %s's password", n, s.username)
				}
			}
		} else {
			users["unknown"]++
		}
	}
	if users["known"] != 1000 || users["unknown"] != 1000 {
		t.Errorf("storm usernames %v, want half known", users)
	}
}

func TestErrorTag(t *testing.T) {
	for msg, want := range map[string]int{
		`Post "http://127.0.0.1:1/north/login": loadtest-case 1: dial tcp 127.0.0.1:1: connect: connection refused`: 1,
		`loadtest-case 12: EOF`: 12,
		`Post "http://x/": loadtest-case 0: context deadline exceeded (Client.Timeout exceeded while awaiting headers)`: 0,
		`Post "http://x/": EOF`:    -1,
		`loadtest-case x: EOF`:     -1,
		`loadtest-case -1: EOF`:    -1,
		`loadtest-case 3 no colon`: -1,
	} {
		ci, ok := errorTag(msg)
		if (want < 0) == ok || (ok && ci != want) {
			t.Errorf("errorTag(%q) = %d, %v; want %d", msg, ci, ok, want)
		}
	}
	e := &taggedError{tag: "2", err: os.ErrDeadlineExceeded}
	if !errors.Is(e, os.ErrDeadlineExceeded) || classifyTransport(e.Error()) != errTimeout {
		t.Errorf("taggedError %q hides its cause", e)
	}
}

// A request that gets no response is counted against its own case.
func TestUnansweredCountedAgainstItsCase(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	sc, err := newScenario("auth-storm", scenarioOptions{northServers: 2, stormAddrs: 10})
	if err != nil {
		t.Fatal(err)
	}
	client := newHTTPClient(sc.cases, "nethttp", 4, 30*time.Second)
	v := &verifier{cases: sc.cases, tokens: newTokenSet()}
	for ci := range sc.cases {
		req, _ := http.NewRequest("POST", "http://"+addr+"/north/login", strings.NewReader("{}"))
		req.Header.Set(caseHeader, strconv.Itoa(ci))
		_, err := client.Do(req)
		if err == nil {
			t.Fatal("a request to a closed port was answered")
		}
		r := vegeta.Result{Error: err.Error()} // as vegeta keeps a failed hit
		if name, kind := v.verify(&r); name != sc.cases[ci].name || kind != errRefused {
			t.Errorf("case %d: counted as %s/%s, want %s/%s", ci, name, kind, sc.cases[ci].name, errRefused)
		}
	}
}

func TestJudgeAuthStorm(t *testing.T) {
	ms := time.Millisecond
	run := func(add func(st *stepStats)) *stepStats {
		st := newStepStats("auth-storm", 1000, time.Second)
		add(st)
		for _, errs := range st.caseErrors {
			st.failed += sum(errs)
		}
		return st
	}
	good := func(st *stepStats) {
		for range 99 {
			st.addCase("known", 200, "", ms/2, ms/2)
		}
		st.addCase("known", 200, "", 3*ms, 3*ms) // the slowest 1% is allowed
		for _, code := range []int{401, 401, 429, 503} {
			st.addCase("storm", code, "", 40*ms, 40*ms)
		}
	}
	a, ok, verdict := judgeAuthStorm(run(good), 2*ms, 20, 5000)
	if !ok || !a.KnownMet || !a.StormMet || !strings.HasPrefix(verdict, "PASS") {
		t.Fatalf("good run judged %v %q: %+v", ok, verdict, a)
	}
	if a.Known.Requests != 100 || a.Storm.StatusCodes["401"] != 2 || a.Storm.StatusCodes["429"] != 1 || a.Storm.StatusCodes["503"] != 1 {
		t.Errorf("counts: known %d, storm %v", a.Known.Requests, a.Storm.StatusCodes)
	}
	for _, tt := range []struct {
		name string
		add  func(st *stepStats)
		why  string
	}{
		{"known too slow", func(st *stepStats) {
			good(st)
			for range 5 {
				st.addCase("known", 200, "", 5*ms, 5*ms)
			}
		}, "known servers' p99"},
		{"a wrong password let in", func(st *stepStats) {
			good(st)
			st.addCase("storm", 200, errAccepted, ms, ms)
		}, "storm: 1 answers other than the contract's 401, 429 or 503 (accepted=1)"},
		{"storm unanswered", func(st *stepStats) {
			good(st)
			st.addCase("storm", 0, errTimeout, 5*time.Second, 5*time.Second)
		}, "1 unanswered"},
		{"known refused", func(st *stepStats) {
			good(st)
			st.addCase("known", 429, errStatus, ms, ms)
		}, "-trusted-proxies 127.0.0.1"},
		{"no storm", func(st *stepStats) {
			st.addCase("known", 200, "", ms/2, ms/2)
		}, "no storm was sent"},
		{"unattributed", func(st *stepStats) {
			good(st)
			st.addCase("no-response", 0, errTransport, ms, ms)
		}, "1 failures of no known case"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, ok, verdict := judgeAuthStorm(run(tt.add), 2*ms, 20, 5000)
			if ok || !strings.HasPrefix(verdict, "FAIL") || !strings.Contains(verdict, tt.why) {
				t.Errorf("judged %v %q; want a FAIL saying %q", ok, verdict, tt.why)
			}
		})
	}
}

// The users file holds the known servers with their passwords, in forms
// northd takes: checked here with x/crypto and a PHC parse of our own.
func TestUsersFile(t *testing.T) {
	for _, spec := range []string{"bcrypt:4", "argon2id"} {
		t.Run(spec, func(t *testing.T) {
			hash, err := parseHasher(spec)
			if err != nil {
				t.Fatal(err)
			}
			text, err := usersFile(3, hash)
			if err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
			if len(lines) != 4 || !strings.HasPrefix(lines[0], "#") {
				t.Fatalf("users file:\n%s", text)
			}
			for k, line := range lines[1:] {
				user, h, _ := strings.Cut(line, ":")
				want := knownServer(k)
				if user != want.username {
					t.Errorf("line %d: user %q, want %q", k+2, user, want.username)
				}
				if !matches(t, h, want.password) || matches(t, h, "guess-0") {
					t.Errorf("line %d: %s does not hold exactly %s's password", k+2, h, user)
				}
			}
		})
	}
	for _, bad := range []string{"bcrypt", "bcrypt:3", "bcrypt:32", "md5", "argon2i", ""} {
		if _, err := parseHasher(bad); err == nil {
			t.Errorf("-hash %q accepted", bad)
		}
	}
	dir := t.TempDir()
	var out strings.Builder
	if code := runWriteUsers([]string{"-n", "2", "-hash", "bcrypt:4", filepath.Join(dir, "users")}, &out, &out); code != 0 {
		t.Fatalf("write-users: exit %d\n%s", code, out.String())
	}
	if fi, err := os.Stat(filepath.Join(dir, "users")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("users file: %v, %v; want mode 0600", fi, err)
	}
	for _, args := range [][]string{{}, {"-n", "0", "f"}, {"-hash", "sha1", "f"}, {"a", "b"}} {
		if code := runWriteUsers(args, &out, &out); code != 2 {
			t.Errorf("write-users %q: exit %d, want 2", args, code)
		}
	}
}

// matches checks password against a bcrypt hash or an argon2id PHC string
// ($argon2id$v=19$m=19456,t=2,p=1$SALT$KEY, what northd hash-password
// writes).
func matches(t *testing.T, hash, password string) bool {
	t.Helper()
	if strings.HasPrefix(hash, "$2") {
		if cost, err := bcrypt.Cost([]byte(hash)); err != nil || cost != 4 {
			t.Errorf("bcrypt cost %d, %v", cost, err)
		}
		return bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)) == nil
	}
	parts := strings.Split(hash, "$")
	if len(parts) != 6 || parts[1] != "argon2id" || parts[2] != "v=19" || parts[3] != "m=19456,t=2,p=1" {
		t.Fatalf("not northd hash-password's argon2id: %q", hash)
	}
	salt, err1 := base64.RawStdEncoding.DecodeString(parts[4])
	key, err2 := base64.RawStdEncoding.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(salt) != 16 || len(key) != 32 {
		t.Fatalf("argon2id salt %d bytes, key %d bytes: %v %v", len(salt), len(key), err1, err2)
	}
	return string(argon2.IDKey([]byte(password), salt, 2, 19456, 1, 32)) == string(key)
}

// auth-storm against northd with a users file and loadtest trusted as its
// proxy. The objective is set out of reach of any machine's noise (-slo
// 1h): this checks the answers, not the speed.
func TestAuthStormAgainstNorthd(t *testing.T) {
	dir := t.TempDir()
	users := filepath.Join(dir, "users")
	var out strings.Builder
	if code := runWriteUsers([]string{"-n", "3", "-hash", "bcrypt:4", users}, &out, &out); code != 0 {
		t.Fatalf("write-users: %s", out.String())
	}
	target := "http://" + startNorthd(t, "-users", users, "-trusted-proxies", "127.0.0.1").Listen[0]
	code, text, rep := runLoadtest(t, "-target", target, "-scenario", "auth-storm", "-north-servers", "3",
		"-storm-addresses", "50", "-rate", "300", "-duration", "2s", "-slo", "1h")
	a := rep.AuthStorm
	if code != 0 || !rep.Passed || a == nil || !a.KnownMet || !a.StormMet {
		t.Fatalf("exit %d, errors %v\n%s", code, rep.Errors, text)
	}
	if a.Known.Requests == 0 || a.Storm.Requests == 0 || a.NorthServers != 3 || a.StormAddresses != 50 {
		t.Errorf("known %d, storm %d requests: %+v", a.Known.Requests, a.Storm.Requests, a)
	}
	for status := range a.Storm.StatusCodes {
		if status != "401" && status != "429" && status != "503" {
			t.Errorf("the storm got %s: %v", status, a.Storm.StatusCodes)
		}
	}
	// Every known login got a token of its own, and so did prime's three.
	if uint64(rep.UniqueTokens) != a.Known.Requests+3 {
		t.Errorf("%d unique tokens for %d known logins and 3 before the load", rep.UniqueTokens, a.Known.Requests)
	}
	if rep.CaseLatency["known"].P99 <= 0 || rep.CaseStatusCodes["known"]["200"] != a.Known.Requests {
		t.Errorf("per case: %+v %+v", rep.CaseLatency, rep.CaseStatusCodes)
	}
	if !strings.Contains(text, "known servers 3 logging in") || !strings.Contains(text, "storm ") {
		t.Errorf("no auth-storm lines in the output:\n%s", text)
	}
}

// Against open mode the storm would log in: loadtest says so before any
// load.
func TestAuthStormNeedsUsers(t *testing.T) {
	target := northdURL(t)
	var out strings.Builder
	code := run(context.Background(), []string{"-target", target, "-scenario", "auth-storm", "-north-servers", "2",
		"-rate", "100", "-duration", "1s", "-progress=false"}, &out, &out)
	if code != 1 || !strings.Contains(out.String(), "let a wrong password in") {
		t.Errorf("exit %d\n%s", code, out.String())
	}
}

// verify on two subsystems: each north server logs in on each, and every
// verification is checked against the token's own server and target.
func TestVerifyAgainstNorthd(t *testing.T) {
	p := startNorthd(t, "-listen", "127.0.0.1:0,127.0.0.1:0")
	code, text, rep := runLoadtest(t, "-target", "http://"+p.Listen[0]+",http://"+p.Listen[1], "-scenario", "verify",
		"-north-servers", "5", "-rate", "200", "-duration", "1s")
	if code != 0 || !rep.Passed || rep.ErrorCount != 0 {
		t.Fatalf("exit %d, errors %v\n%s", code, rep.Errors, text)
	}
	if rep.UniqueTokens != 10 || rep.StatusCodes["200"] != rep.Requests || rep.Requests < 100 {
		t.Errorf("%d unique tokens (want 10), statuses %v of %d requests", rep.UniqueTokens, rep.StatusCodes, rep.Requests)
	}
}

// A ramp of verify (as make loadtest-ramp-verify-redis runs it, here
// against the in-memory store): each north server logs in once, every
// step sends only verifications, and the JSON report records the highest
// rate that held. The SLO is far above anything loopback takes, so that
// the test does not depend on this machine's speed: it checks the
// bookkeeping, not the latency.
func TestRampVerifyAgainstNorthd(t *testing.T) {
	target := northdURL(t)
	code, text, rep := runLoadtest(t, "-target", target, "-scenario", "ramp", "-load", "verify", "-north-servers", "5",
		"-rate", "100", "-step", "100", "-max-rate", "200", "-duration", "1s", "-cool", "10ms", "-slo", "10s",
		"-store-pid", strconv.Itoa(os.Getpid()))
	if code != 0 || !rep.Passed || rep.Ramp == nil {
		t.Fatalf("exit %d, ramp %+v\n%s", code, rep.Ramp, text)
	}
	if rep.Scenario != "ramp:verify" || rep.Ramp.HighestRateHeld != 200 || rep.Ramp.FirstRateFailed != 0 || len(rep.Ramp.Steps) != 2 {
		t.Errorf("scenario %s, highest rate held %d, first failed %d, %d steps; want ramp:verify, 200, 0, 2\n%s",
			rep.Scenario, rep.Ramp.HighestRateHeld, rep.Ramp.FirstRateFailed, len(rep.Ramp.Steps), text)
	}
	if rep.Cases["verify"] == 0 || rep.Cases["verify"] != rep.Requests || rep.ErrorCount != 0 {
		t.Errorf("cases %v of %d requests, %d errors", rep.Cases, rep.Requests, rep.ErrorCount)
	}
	if rep.CPU == nil || rep.CPU.Store <= 0 {
		t.Errorf("cpu %+v: want the -store-pid process's CPU (this test's own)", rep.CPU)
	}
}
