package testdeps

import (
	"net/http"
	"strings"
	"testing"
)

func jsonHeader(kv ...string) http.Header {
	h := http.Header{"Content-Type": {"application/json; charset=utf-8"}, "Cache-Control": {"no-store"}}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Set(kv[i], kv[i+1])
	}
	return h
}

const loginBody = `{"username": "north", "password": "secret"}`

// TestCheckAnswerRefusesUndocumented: an answer docs/openapi.yaml does not
// describe is reported, naming the route, the status and the document.
func TestCheckAnswerRefusesUndocumented(t *testing.T) {
	doc := OpenAPI(t)
	for _, tt := range []struct {
		name, method, target string
		status               int
		header               http.Header
		body                 string
		want                 string // in the message
	}{
		{"undocumented status", "POST", "/north/login", 418, jsonHeader(), `{"code": 1, "token": "", "description": "teapot"}`,
			"POST /north/login answered 418, which docs/openapi.yaml does not describe"},
		{"missing required field", "POST", "/north/login", 200, jsonHeader(), `{"code": 0, "description": "success"}`,
			`missing property 'token'`},
		{"wrong content type", "GET", "/north/verify", 200, http.Header{"Content-Type": {"text/plain; charset=utf-8"}, "Cache-Control": {"no-store"}},
			`{"code": 0, "description": "valid", "username": "north", "ip": "192.0.2.7", "expires_in": 3600}`, `text/plain; charset=utf-8`},
		{"required header missing", "GET", "/north/verify", 200, http.Header{"Content-Type": {"application/json; charset=utf-8"}},
			`{"code": 0, "description": "valid", "username": "north", "ip": "192.0.2.7", "expires_in": 3600}`, `Cache-Control`},
		{"a field the document does not have", "POST", "/north/logout", 200, jsonHeader(), `{"code": 0, "description": "logged out", "extra": 1}`, "extra"},
		{"405 without Allow", "GET", "/north/login", 405, http.Header{"Content-Type": {"text/plain; charset=utf-8"}, "Cache-Control": {"no-store"}},
			"405 Method Not Allowed: see the Allow header for the methods this path takes\n", "Allow"},
		{"404 not as the document's unknown path", "GET", "/nowhere", 404, jsonHeader(), `{"code": 1, "description": "not found"}`, "x-unknown-path"},
		{"a body where none is described", "OPTIONS", "/north/login", 204, http.Header{"Allow": {"OPTIONS, POST"}, "Cache-Control": {"no-store"}}, "x", "a body of 1 bytes"},
		{"HEAD without Cache-Control", "HEAD", "/healthz", 200, http.Header{}, "", "Cache-Control"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := checkAnswer(doc, tt.method, tt.target, nil, nil, tt.status, tt.header, []byte(tt.body))
			if err == nil {
				t.Fatalf("%s %s %d %q passed", tt.method, tt.target, tt.status, tt.body)
			}
			if msg := err.Error(); !strings.Contains(msg, tt.want) || !strings.Contains(msg, OpenAPIFile) {
				t.Errorf("the message does not name %q and the document:\n%s", tt.want, msg)
			}
		})
	}
}

// TestCheckAnswerRefusesUndocumentedRequests: a request the server took
// that the document does not describe is reported: the document would
// turn away a client the server serves.
func TestCheckAnswerRefusesUndocumentedRequests(t *testing.T) {
	doc := OpenAPI(t)
	ok := []byte(`{"code": 0, "token": "1132682a72c045c3af78092fa8c44bf2", "description": "success"}`)
	err := checkAnswer(doc, "POST", "/north/login", nil, []byte(`{"username": "north"}`), 200, jsonHeader(), ok)
	if err == nil || !strings.Contains(err.Error(), "to a request docs/openapi.yaml's paths./north/login.post does not describe") || !strings.Contains(err.Error(), "password") {
		t.Errorf("a login without a password answered 200: %v", err)
	}
	if err := checkAnswer(doc, "POST", "/north/login", nil, []byte(loginBody), 200, jsonHeader(), ok); err != nil {
		t.Error(err)
	}
}

// TestCheckAnswerTakesDocumented: the answers of the document pass,
// those of an operation and those of its extensions.
func TestCheckAnswerTakesDocumented(t *testing.T) {
	doc := OpenAPI(t)
	text := func(kv ...string) http.Header {
		h := http.Header{"Content-Type": {"text/plain; charset=utf-8"}, "Cache-Control": {"no-store"}}
		for i := 0; i+1 < len(kv); i += 2 {
			h.Set(kv[i], kv[i+1])
		}
		return h
	}
	for _, tt := range []struct {
		method, target string
		reqBody        string
		status         int
		header         http.Header
		body           string
	}{
		{"POST", "/north/login", loginBody, 200, jsonHeader(), `{"code": 0, "token": "1132682a72c045c3af78092fa8c44bf2", "description": "success"}`},
		{"POST", "/north/login", "", 401, jsonHeader("WWW-Authenticate", `Bearer realm="northd"`), `{"code": 2, "token": "", "description": "username or password is incorrect"}`},
		{"GET", "/north/login", "", 405, text("Allow", "OPTIONS, POST"), "405 Method Not Allowed: see the Allow header for the methods this path takes\n"},
		{"DELETE", "/north/subscriptions/sub_0fae79348b225fd418b08647/enable", "", 405, text("Allow", "OPTIONS, POST"), "405 Method Not Allowed: see the Allow header for the methods this path takes\n"},
		{"GET", "/nowhere?x=1", "", 404, http.Header{"Content-Type": {"text/html; charset=utf-8"}, "Cache-Control": {"no-store"}}, "<h1>404 Not Found</h1>"},
		{"OPTIONS", "/north/login", "", 204, http.Header{"Allow": {"OPTIONS, POST"}, "Cache-Control": {"no-store"}}, ""},
		{"HEAD", "/healthz", "", 200, text(), ""},
		{"GET", "/readyz", "", 503, text(), "draining: this instance is shutting down\n"},
		{"GET", "http://127.0.0.1:1/north/events", "", 200, http.Header{"Content-Type": {"text/event-stream; charset=utf-8"}, "Cache-Control": {"no-store"}}, ""},
		{"POST", "/north/login", "", 400, text(), "Error when parsing request"},
	} {
		var reqBody []byte
		if tt.reqBody != "" {
			reqBody = []byte(tt.reqBody)
		}
		if err := checkAnswer(doc, tt.method, tt.target, http.Header{"Content-Type": {"application/json"}}, reqBody, tt.status, tt.header, []byte(tt.body)); err != nil {
			t.Errorf("%s %s %d: %v", tt.method, tt.target, tt.status, err)
		}
	}
}

// TestCheckEvent: a stream's data: line is an Event, and a reset's a
// ResetEvent.
func TestCheckEvent(t *testing.T) {
	doc := OpenAPI(t)
	const event = `{"id":"7eae50746197-1","seq":1,"type":"alarm.raised","time":"2026-12-04T02:04:48.776412125Z","subsystem":"8000","data":{"level":"major"}}`
	const reset = `{"id":"7eae50746197-0","seq":0,"type":"reset","time":"2026-12-04T02:04:56.100276047Z","subsystem":"8000","data":{"oldest":"7eae50746197-1","reason":"the events after your last id are no longer kept; resynchronise, then go on from here"}}`
	if err := checkEvent(doc, "alarm.raised", []byte(event)); err != nil {
		t.Error(err)
	}
	if err := checkEvent(doc, "reset", []byte(reset)); err != nil {
		t.Error(err)
	}
	for _, tt := range []struct{ event, data string }{
		{"alarm.raised", strings.Replace(event, `"seq":1,`, ``, 1)},
		{"alarm.raised", strings.Replace(event, `"7eae50746197-1"`, `"7eae50746197-01"`, 1)},
		{"alarm.raised", `not json`},
		{"alarm.minor", event},
		{"reset", strings.Replace(reset, `"oldest":"7eae50746197-1",`, ``, 1)},
	} {
		if checkEvent(doc, tt.event, []byte(tt.data)) == nil {
			t.Errorf("event %s %s passed", tt.event, tt.data)
		}
	}
}
