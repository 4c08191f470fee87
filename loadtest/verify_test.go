package main

import (
	"encoding/json"
	"net/http"
	"net/netip"
	"strings"
	"testing"
)

const goodToken = "0c8e4f0e2b2f4d1c9a3e5b7d9f1a2c4e"

// The contract's bytes, written out here rather than taken from
// northd/contract, so that these tests check what loadtest expects too.
const (
	litHTML     = "text/html; charset=utf-8"
	litJSON     = "application/json; charset=utf-8"
	litText     = "text/plain; charset=utf-8"
	litHome     = `<meta http-equiv="Content-Type" content="text/html; charset=utf-8"><h1>Home Page</h1>`
	litNotFound = `<h1>404 Not Found</h1>`
)

// loginBody is the contract's success body, written out here rather than
// taken from northd/contract, so that the test checks the contract too.
func loginBody(token string) []byte {
	return []byte(`{"code": 0, "token": "` + token + `", "description": "success"}`)
}

func okHeaders(ct string) http.Header {
	return http.Header{"Content-Type": {ct}, "Cache-Control": {"no-store"}}
}

func TestVerifierLogin(t *testing.T) {
	lc := loginCase()
	want := &lc.want
	tests := []struct {
		name   string
		status int
		header http.Header
		body   string
		kind   string
	}{
		{"good", 200, okHeaders(litJSON), string(loginBody(goodToken)), ""},
		{"wrong status", 400, okHeaders(litJSON), string(loginBody(goodToken)), errStatus},
		{"wrong content type", 200, okHeaders("application/json"), string(loginBody(goodToken)), errContentType},
		{"two content types", 200, http.Header{"Content-Type": {litJSON, litJSON}, "Cache-Control": {"no-store"}}, string(loginBody(goodToken)), errContentType},
		{"no cache-control", 200, http.Header{"Content-Type": {litJSON}}, string(loginBody(goodToken)), errCacheControl},
		{"uppercase token", 200, okHeaders(litJSON), string(loginBody(strings.ToUpper(goodToken))), errTokenFormat},
		{"short token", 200, okHeaders(litJSON), string(loginBody(goodToken[:31])), errTokenFormat},
		{"dashed token", 200, okHeaders(litJSON), string(loginBody("0c8e4f0e-2b2f-4d1c-9a3e-5b7d9f1a2c4e")), errTokenFormat},
		{"version 1 token", 200, okHeaders(litJSON), string(loginBody("0c8e4f0e2b2f1d1c9a3e5b7d9f1a2c4e")), errTokenVersion},
		{"wrong variant", 200, okHeaders(litJSON), string(loginBody("0c8e4f0e2b2f4d1c7a3e5b7d9f1a2c4e")), errTokenVersion},
		{"compact json", 200, okHeaders(litJSON), `{"code":0,"token":"` + goodToken + `","description":"success"}`, errTokenFormat},
		{"refusal", 200, okHeaders(litJSON), `{"code": 1, "token": "", "description": "username is required"}`, errTokenFormat},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := &verifier{tokens: newTokenSet()}
			if got := v.check(want, tt.status, tt.header, []byte(tt.body)); got != tt.kind {
				t.Errorf("check = %q, want %q", got, tt.kind)
			}
		})
	}
}

func TestVerifierRepeatedToken(t *testing.T) {
	v := &verifier{tokens: newTokenSet()}
	lc := loginCase()
	want := &lc.want
	if got := v.check(want, 200, okHeaders(litJSON), loginBody(goodToken)); got != "" {
		t.Fatalf("first login: %q", got)
	}
	other := "1c8e4f0e2b2f4d1c9a3e5b7d9f1a2c4e"
	if got := v.check(want, 200, okHeaders(litJSON), loginBody(other)); got != "" {
		t.Fatalf("second token: %q", got)
	}
	if got := v.check(want, 200, okHeaders(litJSON), loginBody(goodToken)); got != errTokenRepeated {
		t.Fatalf("repeated token: %q, want %q", got, errTokenRepeated)
	}
	if v.tokens.Len() != 2 {
		t.Fatalf("%d tokens, want 2", v.tokens.Len())
	}
}

func TestVerifierFixedBodies(t *testing.T) {
	v := &verifier{tokens: newTokenSet()}
	hc := homeCase()
	home := &hc.want
	if got := v.check(home, 200, okHeaders(litHTML), []byte(litHome)); got != "" {
		t.Errorf("home: %q", got)
	}
	if got := v.check(home, 200, okHeaders(litText), []byte(litHome)); got != errContentType {
		t.Errorf("home as text/plain: %q", got)
	}
	if got := v.check(home, 200, okHeaders(litHTML), append([]byte(litHome), '\n')); got != errBody {
		t.Errorf("home with a newline: %q", got)
	}
	var oversize *expectation
	for _, c := range badInputCases(65536) {
		if c.name == "oversize" {
			oversize = &c.want
		}
	}
	body := []byte(`{"code": 1, "token": "", "description": "request body is larger than 65536 bytes"}`)
	if got := v.check(oversize, 413, okHeaders(litJSON), body); got != errNotClosed {
		t.Errorf("413 left open: %q", got)
	}
	h := okHeaders(litJSON)
	h.Set(closedHeader, "1")
	if got := v.check(oversize, 413, h, body); got != "" {
		t.Errorf("413 closed: %q", got)
	}
}

func TestClassifyTransport(t *testing.T) {
	for msg, want := range map[string]string{
		`Post "http://x/": context deadline exceeded (Client.Timeout exceeded while awaiting headers)`: errTimeout,
		`dial tcp 127.0.0.1:1: connect: connection refused`:                                            errRefused,
		`read tcp: connection reset by peer`:                                                           errReset,
		`Get "http://x/": EOF`:                                                                         errReset,
		`something else`:                                                                               errTransport,
	} {
		if got := classifyTransport(msg); got != want {
			t.Errorf("classifyTransport(%q) = %q, want %q", msg, got, want)
		}
	}
}

func TestTokenSet(t *testing.T) {
	s := newTokenSet()
	const n = 300000 // grows past the first table several times
	for i := range n {
		var tok [16]byte
		for j := range 8 {
			tok[j] = byte(uint64(i) * 0x9e3779b97f4a7c15 >> (8 * j))
		}
		tok[8] = byte(i)
		tok[9] = byte(i >> 8)
		tok[10] = byte(i >> 16)
		tok[11] = 0x40 // never the zero token
		if !s.add(tok) {
			t.Fatalf("token %d reported as seen", i)
		}
		if i%1000 == 0 && s.add(tok) {
			t.Fatalf("token %d added twice", i)
		}
	}
	if s.Len() != n {
		t.Fatalf("Len = %d, want %d", s.Len(), n)
	}
	if s.add([16]byte{}) {
		t.Fatal("the zero token was accepted")
	}
}

func TestWeightedSchedule(t *testing.T) {
	sc, err := newScenario("mixed", scenarioOptions{mix: defaultMix, maxBody: 65536})
	if err != nil {
		t.Fatal(err)
	}
	if len(sc.schedule) != 10 {
		t.Fatalf("schedule %v, want 10 slots for 40/40/10/10", sc.schedule)
	}
	count := map[string]int{}
	for _, i := range sc.schedule {
		count[sc.cases[i].name]++
	}
	if count["home"] != 4 || count["login"] != 4 || count["not-found"] != 1 || count["bad-json"] != 1 {
		t.Fatalf("shares %v", count)
	}
	for _, bad := range []string{"home", "home=x", "nope=1", "home=0"} {
		if _, err := newScenario("mixed", scenarioOptions{mix: bad, maxBody: 65536}); err == nil {
			t.Errorf("-mix %q accepted", bad)
		}
	}
}

func TestVariedLogin(t *testing.T) {
	seen := map[string]bool{}
	for n := range uint64(1000) {
		var req struct{ Username, Password, IP string }
		if err := json.Unmarshal(variedLogin(n*977), &req); err != nil {
			t.Fatalf("body %d: %v", n, err)
		}
		if _, err := netip.ParseAddr(req.IP); err != nil || seen[req.IP] {
			t.Fatalf("body %d: ip %q (parse error %v, seen before %v)", n, req.IP, err, seen[req.IP])
		}
		seen[req.IP] = true
	}
}
