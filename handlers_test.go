package main

import (
	"bufio"
	"io"
	"log/slog"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttputil"
)

// testConfig is the default configuration with changes applied.
func testConfig(t testing.TB, args ...string) config {
	t.Helper()
	cfg, err := parseConfig(args, func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// startSubsystem serves one subsystem on ln until the test ends.
func startSubsystem(t testing.TB, cfg config, ln net.Listener) *subsystem {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	s := newSubsystem(cfg, "test", ln, new(atomic.Bool), nil, nil, nil, metrics.NewSet(), log)
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.server.Serve(s.listener)
	}()
	t.Cleanup(func() {
		s.server.Shutdown()
		<-done
	})
	return s
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
	if strings.HasPrefix(raw, "HEAD ") {
		resp.SkipBody = true
	}
	if err := resp.Read(bufio.NewReader(c)); err != nil {
		t.Fatalf("reading response to %q: %v", raw, err)
	}
	return resp
}

const (
	wantHome     = `<meta http-equiv="Content-Type" content="text/html; charset=utf-8"><h1>Home Page</h1>`
	wantNotFound = `<h1>404 Not Found</h1>`
	html         = "text/html; charset=utf-8"
	jsonType     = "application/json; charset=utf-8"
	text         = "text/plain; charset=utf-8"
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
		{"HEAD /", "HEAD / HTTP/1.1\r\nHost: x\r\n\r\n", 200, html, "", nil, [2]string{"Content-Length", "85"}},
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
		{"GET /north/login", "GET /north/login HTTP/1.1\r\nHost: x\r\n\r\n", 405, text, string(methodNotAllowedBody), nil, [2]string{"Allow", "OPTIONS, POST"}},
		{"DELETE /", "DELETE / HTTP/1.1\r\nHost: x\r\n\r\n", 405, text, string(methodNotAllowedBody), nil, [2]string{"Allow", "GET, HEAD, OPTIONS, POST"}},
		{"OPTIONS /north/login", "OPTIONS /north/login HTTP/1.1\r\nHost: x\r\n\r\n", 204, "", "", nil, [2]string{"Allow", "OPTIONS, POST"}},
		{"404", "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n", 404, html, wantNotFound, nil, [2]string{}},
		{"404 trailing slash", post("/north/login/", valid), 404, html, wantNotFound, nil, [2]string{}},
		{"404 case", post("/North/Login", valid), 404, html, wantNotFound, nil, [2]string{}},
		{"healthz", "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 200, text, "ok\n", nil, [2]string{}},
		{"HEAD healthz", "HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 200, text, "", nil, [2]string{}},
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
