package main

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttputil"

	"northd/internal/config"
	"northd/internal/testdeps"
)

// testConfig is the default configuration with changes applied.
func testConfig(t testing.TB, args ...string) config.Config {
	t.Helper()
	cfg, err := config.Parse(args, testdeps.NoEnv, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// startSubsystem serves one subsystem on ln until the test ends.
func startSubsystem(t testing.TB, cfg config.Config, ln net.Listener) *subsystem {
	t.Helper()
	return startSubsystemWith(t, cfg, ln, io.Discard)
}

// startSubsystemWith is startSubsystem logging to logs.
func startSubsystemWith(t testing.TB, cfg config.Config, ln net.Listener, logs io.Writer) *subsystem {
	t.Helper()
	s := newSubsystem(t.Context(), common{cfg: cfg, draining: new(atomic.Bool), set: metrics.NewSet(), log: newLogger(logs, cfg.LogLevel, cfg.LogFormat)}, "test", ln)
	serveUntilCleanup(t, s)
	return s
}

// serveUntilCleanup serves s until the test ends.
func serveUntilCleanup(t testing.TB, s *subsystem) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.server.Serve(s.listener)
	}()
	t.Cleanup(func() {
		s.server.Shutdown()
		<-done
	})
}

// roundTrip writes raw to a new connection and reads one response.
func roundTrip(t *testing.T, dial func() (net.Conn, error), raw string) *fasthttp.Response {
	t.Helper()
	c, err := dial()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	resp := new(fasthttp.Response)
	resp.Header.SetNoDefaultContentType(true)
	if err := resp.Read(bufio.NewReader(c)); err != nil {
		t.Fatalf("reading response to %q: %v", raw, err)
	}
	checkAnswer(t, raw, resp)
	return resp
}

// checkAnswer checks resp, read off a connection, against docs/openapi.yaml
// as the answer to raw's first request (testdeps.CheckAnswerTo).
func checkAnswer(t testing.TB, raw string, resp *fasthttp.Response) {
	t.Helper()
	header := http.Header{}
	resp.Header.VisitAll(func(k, v []byte) { header.Add(string(k), string(v)) })
	testdeps.CheckAnswerTo(t, raw, resp.StatusCode(), header, resp.Body())
}

const (
	wantHome     = `<meta http-equiv="Content-Type" content="text/html; charset=utf-8"><h1>Home Page</h1>`
	wantNotFound = `<h1>404 Not Found</h1>`
	// wantMethodNotAllowed ends in a newline.
	wantMethodNotAllowed = "405 Method Not Allowed: see the Allow header for the methods this path takes\n"
	html                 = "text/html; charset=utf-8"
	jsonType             = "application/json; charset=utf-8"
	text                 = "text/plain; charset=utf-8"
)

var loginOKBody = regexp.MustCompile(`^\{"code": 0, "token": "[0-9a-f]{12}4[0-9a-f]{3}[89ab][0-9a-f]{15}", "description": "success"\}$`)

func post(path, body string) string {
	return "POST " + path + " HTTP/1.1\r\nHost: x\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body
}

// chunked encodes parts as a chunked body with its final empty chunk.
func chunked(parts ...string) string {
	var b strings.Builder
	for _, p := range parts {
		b.WriteString(strconv.FormatInt(int64(len(p)), 16) + "\r\n" + p + "\r\n")
	}
	return b.String() + "0\r\n\r\n"
}

func failure(description string) string {
	return `{"code": 1, "token": "", "description": "` + description + `"}`
}

func TestContract(t *testing.T) {
	ln := fasthttputil.NewInmemoryListener()
	startSubsystem(t, testConfig(t, "-max-body-size", "1024"), ln)
	const valid = `{"username": "north", "password": "secret", "ip": "192.0.2.7"}`
	tests := []struct {
		name        string
		raw         string
		status      int
		contentType string
		body        string // exact, unless bodyRE is set
		bodyRE      *regexp.Regexp
		header      [2]string // a further header that must be present
	}{
		{"GET /", "GET / HTTP/1.1\r\nHost: x\r\n\r\n", 200, html, wantHome, nil, [2]string{}},
		{"GET / with query", "GET /?a=1&b HTTP/1.1\r\nHost: x\r\n\r\n", 200, html, wantHome, nil, [2]string{}},
		{"POST / with body", post("/", "anything at all"), 200, html, wantHome, nil, [2]string{}},
		{"HTTP/1.0 GET /", "GET / HTTP/1.0\r\n\r\n", 200, html, wantHome, nil, [2]string{}},
		{"login", post("/north/login", valid), 200, jsonType, "", loginOKBody, [2]string{}},
		{"login without ip", post("/north/login", `{"username":"n","password":"p"}`), 200, jsonType, "", loginOKBody, [2]string{}},
		{"login with query and unknown fields", post("/north/login?x=1", `{"username":"n","password":"p","extra":[1,{"a":null}],"ip":"::1"}`), 200, jsonType, "", loginOKBody, [2]string{}},
		{"login chunked", "POST /north/login HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" +
			chunked(`{"username":"n","`, `password":"p"}   `), 200, jsonType, "", loginOKBody, [2]string{}},
		{"login bad JSON", post("/north/login", `{"username":`), 400, jsonType, failure("request body is not valid JSON"), nil, [2]string{}},
		{"login empty body", post("/north/login", ""), 400, jsonType, failure("request body is empty; send a JSON object with username and password"), nil, [2]string{}},
		{"login no Content-Length", "POST /north/login HTTP/1.1\r\nHost: x\r\n\r\n", 400, jsonType, failure("request body is empty; send a JSON object with username and password"), nil, [2]string{}},
		{"login array", post("/north/login", `[1,2]`), 400, jsonType, failure("request body must be a JSON object"), nil, [2]string{}},
		{"login trailing", post("/north/login", valid+` {}`), 400, jsonType, failure("request body has data after the JSON object"), nil, [2]string{}},
		{"login missing username", post("/north/login", `{"password":"p"}`), 400, jsonType, failure("username is required"), nil, [2]string{}},
		{"login numeric password", post("/north/login", `{"username":"n","password":7}`), 400, jsonType, failure("password must be a string"), nil, [2]string{}},
		{"login bad ip", post("/north/login", `{"username":"n","password":"p","ip":"300.1.1.1"}`), 400, jsonType, failure("ip is not a valid IP address"), nil, [2]string{}},
		{"login invalid UTF-8", post("/north/login", "{\"username\":\"\xff\",\"password\":\"p\"}"), 400, jsonType, failure("request body is not valid UTF-8"), nil, [2]string{}},
		{"login too deep", post("/north/login", `{"a":`+strings.Repeat("[", 40)+strings.Repeat("]", 40)+`}`), 400, jsonType, failure("request body nests JSON deeper than 32 levels"), nil, [2]string{}},
		{"login over the limit", post("/north/login", strings.Repeat(" ", 1025)), 413, jsonType, failure("request body is larger than 1024 bytes"), nil, [2]string{"Connection", "close"}},
		{"login over the limit, Expect 100-continue", "POST /north/login HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5000\r\n\r\n", 413, jsonType, failure("request body is larger than 1024 bytes"), nil, [2]string{"Connection", "close"}},
		{"GET /north/login", "GET /north/login HTTP/1.1\r\nHost: x\r\n\r\n", 405, text, wantMethodNotAllowed, nil, [2]string{"Allow", "OPTIONS, POST"}},
		{"DELETE /", "DELETE / HTTP/1.1\r\nHost: x\r\n\r\n", 405, text, wantMethodNotAllowed, nil, [2]string{"Allow", "GET, HEAD, OPTIONS, POST"}},
		{"OPTIONS /north/login", "OPTIONS /north/login HTTP/1.1\r\nHost: x\r\n\r\n", 204, "", "", nil, [2]string{"Allow", "OPTIONS, POST"}},
		{"OPTIONS *", "OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n", 204, "", "", nil, [2]string{"Allow", "DELETE, GET, HEAD, OPTIONS, POST"}},
		{"POST /north/verify", "POST /north/verify HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", 405, text, wantMethodNotAllowed, nil, [2]string{"Allow", "GET, OPTIONS"}},
		{"GET /north/logout", "GET /north/logout HTTP/1.1\r\nHost: x\r\n\r\n", 405, text, wantMethodNotAllowed, nil, [2]string{"Allow", "OPTIONS, POST"}},
		{"GET /north/subscriptions/ID", "GET /north/subscriptions/sub_1 HTTP/1.1\r\nHost: x\r\n\r\n", 405, text, wantMethodNotAllowed, nil, [2]string{"Allow", "DELETE, OPTIONS"}},
		{"OPTIONS /north/subscriptions/ID/enable", "OPTIONS /north/subscriptions/sub_1/enable HTTP/1.1\r\nHost: x\r\n\r\n", 204, "", "", nil, [2]string{"Allow", "OPTIONS, POST"}},
		{"GET /north/subscriptions/ID/rotate-secret", "GET /north/subscriptions/sub_1/rotate-secret HTTP/1.1\r\nHost: x\r\n\r\n", 405, text, wantMethodNotAllowed, nil, [2]string{"Allow", "OPTIONS, POST"}},
		{"GET /north/subscriptions/ID/other", "GET /north/subscriptions/sub_1/other HTTP/1.1\r\nHost: x\r\n\r\n", 404, html, wantNotFound, nil, [2]string{}},
		{"404", "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n", 404, html, wantNotFound, nil, [2]string{}},
		{"404 trailing slash", post("/north/login/", valid), 404, html, wantNotFound, nil, [2]string{}},
		{"404 case", post("/North/Login", valid), 404, html, wantNotFound, nil, [2]string{}},
		{"healthz", "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 200, text, "ok\n", nil, [2]string{}},
		{"readyz", "GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n", 200, text, "ready\n", nil, [2]string{}},
		{"malformed request line", "GARBAGE\r\n\r\n", 400, text, "Error when parsing request", nil, [2]string{"Connection", "close"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := roundTrip(t, ln.Dial, tt.raw)
			if got := resp.StatusCode(); got != tt.status {
				t.Errorf("status %d, want %d; body %q", got, tt.status, resp.Body())
			}
			if got := string(resp.Header.Peek("Content-Type")); got != tt.contentType {
				t.Errorf("Content-Type %q, want %q", got, tt.contentType)
			}
			if got := string(resp.Header.Peek("Cache-Control")); got != "no-store" {
				t.Errorf("Cache-Control %q, want no-store", got)
			}
			if got := resp.Header.Peek("instance"); got != nil {
				t.Errorf("instance header %q, want none", got)
			}
			if tt.bodyRE != nil {
				if !tt.bodyRE.Match(resp.Body()) {
					t.Errorf("body %q does not match %v", resp.Body(), tt.bodyRE)
				}
			} else if got := string(resp.Body()); got != tt.body {
				t.Errorf("body %q, want %q", got, tt.body)
			}
			if tt.header[0] != "" {
				if got := string(resp.Header.Peek(tt.header[0])); got != tt.header[1] {
					t.Errorf("%s %q, want %q", tt.header[0], got, tt.header[1])
				}
			}
		})
	}
}

// dateHeader is the Date header fasthttp puts in every answer, the one part
// of an answer that changes from one second to the next.
var dateHeader = regexp.MustCompile(`\r\nDate: (Mon|Tue|Wed|Thu|Fri|Sat|Sun), [0-9]{2} [A-Z][a-z]{2} [0-9]{4} [0-9]{2}:[0-9]{2}:[0-9]{2} GMT\r\n`)

// TestHeadSendsNoBody reads, over TCP, the raw bytes of the answer to a
// HEAD request and then those of a GET pipelined behind it on the same
// keep-alive connection: a body sent after the HEAD answer's headers would
// sit between the two.
func TestHeadSendsNoBody(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	startSubsystem(t, testConfig(t), ln)
	const (
		next       = "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
		nextAnswer = "HTTP/1.1 200 OK\r\nDate: (date)\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 3\r\nCache-Control: no-store\r\nConnection: close\r\n\r\nok\n"
	)
	tests := []struct{ path, answer string }{
		{"/", "HTTP/1.1 200 OK\r\nDate: (date)\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: 85\r\nCache-Control: no-store\r\n\r\n"},
		{"/?a=1", "HTTP/1.1 200 OK\r\nDate: (date)\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: 85\r\nCache-Control: no-store\r\n\r\n"},
		{"/healthz", "HTTP/1.1 200 OK\r\nDate: (date)\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 3\r\nCache-Control: no-store\r\n\r\n"},
		{"/readyz", "HTTP/1.1 200 OK\r\nDate: (date)\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 6\r\nCache-Control: no-store\r\n\r\n"},
		{"/nope", "HTTP/1.1 404 Not Found\r\nDate: (date)\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: 22\r\nCache-Control: no-store\r\n\r\n"},
		{"/north/login", "HTTP/1.1 405 Method Not Allowed\r\nDate: (date)\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 77\r\nCache-Control: no-store\r\nAllow: OPTIONS, POST\r\n\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(time.Minute)) // only a hang gets near it
			if _, err := io.WriteString(c, "HEAD "+tt.path+" HTTP/1.1\r\nHost: x\r\n\r\n"+next); err != nil {
				t.Fatal(err)
			}
			raw, err := io.ReadAll(c) // the server closes after the GET
			if err != nil {
				t.Fatalf("read %q, then %v", raw, err)
			}
			testdeps.CheckRawAnswer(t, "HEAD "+tt.path+" HTTP/1.1\r\nHost: x\r\n\r\n", raw)
			got := dateHeader.ReplaceAllString(string(raw), "\r\nDate: (date)\r\n")
			if want := tt.answer + nextAnswer; got != want {
				t.Errorf("HEAD %s, then GET /healthz on the same connection:\ngot  %q\nwant %q", tt.path, got, want)
			}
		})
	}
}

// addrCounter is a client address that counts how often it is formatted.
type addrCounter struct{ formatted *atomic.Int32 }

func (a addrCounter) Network() string { return "tcp" }
func (a addrCounter) String() string {
	a.formatted.Add(1)
	return "192.0.2.44:4000"
}

// TestMalformedRequestLoggedOnlyAtDebug: the refusal of a malformed request
// is logged at debug level, and below it the client's address is not even
// formatted.
func TestMalformedRequestLoggedOnlyAtDebug(t *testing.T) {
	for _, tt := range []struct {
		level     string
		log       string // the line without its time, "" for none
		formatted int32
	}{
		{"info", "", 0},
		{"debug", `level=DEBUG msg="refused a malformed request" subsystem=test client=192.0.2.44:4000 err="bad request line"` + "\n", 1},
	} {
		t.Run(tt.level, func(t *testing.T) {
			logs := new(testdeps.SyncBuffer)
			s := startSubsystemWith(t, testConfig(t, "-log-level", tt.level), nullListener{}, logs)
			var formatted atomic.Int32
			var ctx fasthttp.RequestCtx
			ctx.Init(new(fasthttp.Request), addrCounter{&formatted}, nil)
			s.handleRequestError(&ctx, errors.New("bad request line"))

			if st, body, cc := ctx.Response.StatusCode(), string(ctx.Response.Body()), string(ctx.Response.Header.Peek("Cache-Control")); st != 400 || body != "Error when parsing request" || cc != "no-store" {
				t.Errorf("answer %d %q, Cache-Control %q; want 400 %q, no-store", st, body, cc, "Error when parsing request")
			}
			if n := formatted.Load(); n != tt.formatted {
				t.Errorf("client address formatted %d times, want %d", n, tt.formatted)
			}
			got := logs.String()
			if _, rest, ok := strings.Cut(got, " "); ok && strings.HasPrefix(got, "time=") {
				got = rest
			}
			if got != tt.log {
				t.Errorf("log %q, want %q", got, tt.log)
			}
		})
	}
}

// Retry-After is whole seconds, rounded up, and at least 1: a client that
// waits as long is not refused again for the same failures.
func TestFailureWaitRoundsUpToRetryAfter(t *testing.T) {
	for _, tt := range []struct {
		wait time.Duration
		want int
	}{{6 * time.Second, 6}, {time.Millisecond, 1}, {0, 1}, {5500 * time.Millisecond, 6}} {
		if got := retryAfterSeconds(tt.wait); got != tt.want {
			t.Errorf("retryAfterSeconds(%v) = %d, want %d", tt.wait, got, tt.want)
		}
	}
}
