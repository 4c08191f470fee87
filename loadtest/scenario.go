package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"northd/contract"
)

// A reqCase is one kind of request a scenario sends, with the response the
// wire contract requires for it.
type reqCase struct {
	name   string
	method string
	path   string
	// body returns the request body for the n-th request of this case; nil
	// for none.
	body func(n uint64) []byte
	// header, when set, adds headers to the n-th request of this case,
	// sent to the target-th target (X-Forwarded-For, Authorization).
	header func(n uint64, target int, h http.Header)
	// indexed: the verifier needs n to know the answer (want.verifyPrefix),
	// so the request carries it to the response as the case does.
	indexed bool
	// raw, when set, is sent as-is on a fresh TCP connection instead of
	// through the HTTP client: for requests net/http cannot or will not
	// send (no Content-Length, a garbage request line, an oversize body
	// that must still be answered).
	raw  []byte
	want expectation
}

// expectation is what a response must be. Every response must also carry
// Cache-Control: no-store.
type expectation struct {
	status      int
	contentType string
	// body is the exact body; ignored when login is set.
	body []byte
	// login: the body must be a successful login with a fresh UUIDv4 token.
	login bool
	// connClose: the server must close the connection after answering.
	connClose bool
	// oneOf, when set, lists the answers allowed instead of status and
	// body: the response must be the one of its status.
	oneOf []answer
	// verifyPrefix, when set, gives the start of the right verification
	// body for the n-th request (contract.VerifyPrefix), which then ends in
	// a positive expires_in and "}".
	verifyPrefix func(n uint64) string
}

// answer is one of several a case allows (expectation.oneOf), with the
// content type of its expectation.
type answer struct {
	status int
	body   []byte
	// challenge: WWW-Authenticate must be exactly this.
	challenge string
	// retryAfter: Retry-After must be one positive whole number of seconds.
	retryAfter bool
}

// The answers come from northd/contract, which bench/cmd/compare and
// lbtest check against too.
const (
	ctHTML = contract.ContentTypeHTML
	ctJSON = contract.ContentTypeJSON
	ctText = contract.ContentTypeText
)

var (
	homeBody     = []byte(contract.HomeBody)
	notFoundBody = []byte(contract.NotFoundBody)
	fixedLogin   = []byte(`{"username":"north-1","password":"secret","ip":"192.0.2.10"}`)
)

// loginFailure is the contract's refusal body.
func loginFailure(description string) []byte {
	return []byte(contract.LoginFailure(description))
}

func staticBody(b []byte) func(uint64) []byte { return func(uint64) []byte { return b } }

// variedLogin gives every request its own username and ip: IPv4 addresses
// cycle through 198.18.0.0/15 (131072 of them, twice the registry's default
// bound), IPv6 ones in 2001:db8::/32 never repeat, so the registry is kept
// full and evicting for the whole run.
func variedLogin(n uint64) []byte {
	b := make([]byte, 0, 96)
	b = append(b, `{"username":"north-`...)
	b = strconv.AppendUint(b, n, 10)
	b = append(b, `","password":"secret","ip":"`...)
	if n%2 == 0 {
		v := uint32(n/2) & 0x1ffff
		b = fmt.Appendf(b, "198.%d.%d.%d", 18+v>>16, v>>8&0xff, v&0xff)
	} else {
		b = fmt.Appendf(b, "2001:db8:%x:%x::1", uint16(n>>16), uint16(n))
	}
	return append(b, `"}`...)
}

func homeCase() reqCase {
	return reqCase{name: "home", method: http.MethodGet, path: "/",
		want: expectation{status: 200, contentType: ctHTML, body: homeBody}}
}

func loginCase() reqCase {
	return reqCase{name: "login", method: http.MethodPost, path: "/north/login", body: staticBody(fixedLogin),
		want: expectation{status: 200, contentType: ctJSON, login: true}}
}

func loginVariedCase() reqCase {
	return reqCase{name: "login-varied", method: http.MethodPost, path: "/north/login", body: variedLogin,
		want: expectation{status: 200, contentType: ctJSON, login: true}}
}

func notFoundCase() reqCase {
	return reqCase{name: "not-found", method: http.MethodGet, path: "/nope",
		want: expectation{status: 404, contentType: ctHTML, body: notFoundBody}}
}

// badLogin is a login the contract refuses with 400 and description.
func badLogin(name, body, description string) reqCase {
	return reqCase{name: name, method: http.MethodPost, path: "/north/login", body: staticBody([]byte(body)),
		want: expectation{status: 400, contentType: ctJSON, body: loginFailure(description)}}
}

func badJSONCase() reqCase {
	return badLogin("bad-json", `{"username":"north-1"`, "request body is not valid JSON")
}

// badInputCases are the refusals the contract names, each with the status
// and body it requires. maxBody is the server's -max-body-size.
func badInputCases(maxBody int) []reqCase {
	over := maxBody + 1
	oversize := fmt.Appendf(nil, "POST /north/login HTTP/1.1\r\nHost: loadtest\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", over)
	oversize = append(oversize, bytes.Repeat([]byte{' '}, over)...)
	tooLarge := loginFailure("request body is larger than " + strconv.Itoa(maxBody) + " bytes")
	return []reqCase{
		badJSONCase(),
		badLogin("bad-utf8", "{\"username\":\"\xff\",\"password\":\"p\"}", "request body is not valid UTF-8"),
		badLogin("not-object", `["north-1","secret"]`, "request body must be a JSON object"),
		badLogin("trailing-data", `{"username":"a","password":"b"} {}`, "request body has data after the JSON object"),
		badLogin("empty-body", ``, "request body is empty; send a JSON object with username and password"),
		badLogin("no-username", `{"password":"secret"}`, "username is required"),
		badLogin("username-type", `{"username":42,"password":"secret"}`, "username must be a string"),
		badLogin("username-empty", `{"username":"","password":"secret"}`, "username must not be empty"),
		badLogin("no-password", `{"username":"north-1"}`, "password is required"),
		badLogin("password-type", `{"username":"north-1","password":true}`, "password must be a string"),
		badLogin("ip-type", `{"username":"north-1","password":"secret","ip":10}`, "ip must be a string"),
		badLogin("ip-invalid", `{"username":"north-1","password":"secret","ip":"300.1.2.3"}`, "ip is not a valid IP address"),
		badLogin("deep-nesting", `{"username":"a","password":"b","x":`+strings.Repeat("[", 40)+strings.Repeat("]", 40)+`}`,
			"request body nests JSON deeper than 32 levels"),
		{name: "wrong-method", method: http.MethodGet, path: "/north/login",
			want: expectation{status: 405, contentType: ctText,
				body: []byte("405 Method Not Allowed: see the Allow header for the methods this path takes\n")}},
		{name: "oversize", method: http.MethodPost, path: "/north/login", raw: oversize,
			want: expectation{status: 413, contentType: ctJSON, body: tooLarge, connClose: true}},
		{name: "no-content-length", method: http.MethodPost, path: "/north/login",
			raw: []byte("POST /north/login HTTP/1.1\r\nHost: loadtest\r\nContent-Type: application/json\r\n\r\n"),
			want: expectation{status: 400, contentType: ctJSON,
				body: loginFailure("request body is empty; send a JSON object with username and password")}},
		{name: "garbage-line", method: http.MethodGet, path: "/", raw: []byte("GARBAGE\r\n\r\n"),
			want: expectation{status: 400, contentType: ctText, body: []byte("Error when parsing request"), connClose: true}},
		{name: "garbage-bytes", method: http.MethodGet, path: "/", raw: []byte("\x16\x03\x01\x02\x00 not http\r\n\r\n"),
			want: expectation{status: 400, contentType: ctText, body: []byte("Error when parsing request"), connClose: true}},
	}
}

// scenario is a weighted set of request cases sent in a fixed interleaved
// order, so every share holds over any stretch of the run.
type scenario struct {
	name     string
	cases    []reqCase
	schedule []int // indexes into cases, one per request, repeating
	// prime, when set, runs once before any load: it logs the known
	// north servers in (north.go), adding their tokens to the run's.
	prime func(ctx context.Context, p *primer) error
}

// loginShare is the fraction of requests that should get a token.
func (s *scenario) loginShare() float64 {
	n := 0
	for _, i := range s.schedule {
		if s.cases[i].want.login {
			n++
		}
	}
	return float64(n) / float64(len(s.schedule))
}

// scenarioNames are the request scenarios; ramp, soak and conns run one of
// these.
var scenarioNames = []string{"home", "login", "login-varied", "mixed", "bad-input", "auth-storm", "verify"}

// scenarioOptions are what newScenario builds a scenario from: the command
// line's say.
type scenarioOptions struct {
	mix          string // mixed, auth-storm: case=weight shares ("" for the default)
	maxBody      int    // the server's -max-body-size
	northServers int    // auth-storm, verify: the known north servers
	stormAddrs   int    // auth-storm: distinct client addresses of the storm
	targets      int    // how many targets (verify: each has its own tokens)
}

// defaultMix is the mixed scenario's shares in percent.
const defaultMix = "home=40,login=40,not-found=10,bad-json=10"

func newScenario(name string, so scenarioOptions) (*scenario, error) {
	mix, maxBody := so.mix, so.maxBody
	if mix == "" && name == "mixed" {
		mix = defaultMix
	}
	switch name {
	case "auth-storm":
		return authStormScenario(so)
	case "verify":
		return verifyScenario(so), nil
	case "home":
		return weighted(name, []reqCase{homeCase()}, []int{1}), nil
	case "login":
		return weighted(name, []reqCase{loginCase()}, []int{1}), nil
	case "login-varied":
		return weighted(name, []reqCase{loginVariedCase()}, []int{1}), nil
	case "bad-input":
		cs := badInputCases(maxBody)
		w := make([]int, len(cs))
		for i := range w {
			w[i] = 1
		}
		return weighted(name, cs, w), nil
	case "mixed":
		byName := map[string]reqCase{}
		for _, c := range []reqCase{homeCase(), loginCase(), loginVariedCase(), notFoundCase()} {
			byName[c.name] = c
		}
		for _, c := range badInputCases(maxBody) {
			byName[c.name] = c
		}
		cs, ws, err := parseMix(mix, byName)
		if err != nil {
			return nil, err
		}
		return weighted(name, cs, ws), nil
	}
	return nil, fmt.Errorf("unknown scenario %q (want one of %s)", name, strings.Join(scenarioNames, ", "))
}

// parseMix reads case=weight,... shares of the cases in byName.
func parseMix(mix string, byName map[string]reqCase) ([]reqCase, []int, error) {
	var cs []reqCase
	var ws []int
	{
		for part := range strings.SplitSeq(mix, ",") {
			k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
			c, known := byName[k]
			w, err := strconv.Atoi(v)
			if !ok || !known || err != nil || w < 0 {
				names := make([]string, 0, len(byName))
				for n := range byName {
					names = append(names, n)
				}
				sort.Strings(names)
				return nil, nil, fmt.Errorf("-mix %q: want case=weight,... with cases among %s", mix, strings.Join(names, ", "))
			}
			if w > 0 {
				cs = append(cs, c)
				ws = append(ws, w)
			}
		}
		if len(cs) == 0 {
			return nil, nil, fmt.Errorf("-mix %q has no case with a positive weight", mix)
		}
	}
	return cs, ws, nil
}

// weighted builds the schedule by smooth weighted round robin: over any
// sum(weights) consecutive requests each case gets exactly its weight, and
// the cases are spread out rather than sent in runs.
func weighted(name string, cases []reqCase, weights []int) *scenario {
	g := 0
	for _, w := range weights {
		g = gcd(g, w)
	}
	total := 0
	for i := range weights {
		weights[i] /= g
		total += weights[i]
	}
	current := make([]int, len(weights))
	schedule := make([]int, 0, total)
	for range total {
		best := 0
		for i, w := range weights {
			current[i] += w
			if current[i] > current[best] {
				best = i
			}
		}
		current[best] -= total
		schedule = append(schedule, best)
	}
	return &scenario{name: name, cases: cases, schedule: schedule}
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// caseHeader carries the case index from the targeter to the transport,
// which removes it before the request goes out and puts it on the response,
// where the verifier reads it. It never reaches the server. indexHeader
// does the same with the request's number within its case, for the cases
// whose right answer depends on it (reqCase.indexed).
const (
	caseHeader  = "X-Loadtest-Case"
	indexHeader = "X-Loadtest-Index"
)

// targeter returns a vegeta Targeter that walks the schedule and the
// targets round-robin: each target gets the whole schedule.
func (s *scenario) targeter(targets []string) vegeta.Targeter {
	var seq atomic.Uint64
	perCase := make([]atomic.Uint64, len(s.cases))
	return func(t *vegeta.Target) error {
		i := seq.Add(1) - 1
		ti := int(i % uint64(len(targets)))
		ci := s.schedule[(i/uint64(len(targets)))%uint64(len(s.schedule))]
		c := &s.cases[ci]
		n := perCase[ci].Add(1) - 1
		t.Method = c.method
		t.URL = targets[ti] + c.path
		t.Body = nil
		if c.body != nil {
			t.Body = c.body(n)
		}
		t.Header = http.Header{caseHeader: []string{strconv.Itoa(ci)}}
		if c.body != nil {
			t.Header["Content-Type"] = []string{"application/json"}
		}
		if c.indexed {
			t.Header[indexHeader] = []string{strconv.FormatUint(n, 10)}
		}
		if c.header != nil {
			c.header(n, ti, t.Header)
		}
		return nil
	}
}
