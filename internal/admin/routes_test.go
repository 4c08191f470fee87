package admin

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

// The admin listener answers a path it does not know, a method a path does
// not take, and OPTIONS with the bytes the subsystems' ports answer them
// with, and every answer, a route's own included, with no-store.
func TestHandlerAnswersUnroutedRequests(t *testing.T) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	h := Handler([]Route{
		{Method: "GET", Path: "/metrics", Handler: ok},
		{Method: "POST", Path: "/north/events", Handler: ok},
		{Path: "/debug/pprof/", Handler: ok},
	})
	tests := []struct {
		method, path string
		status       int
		allow        string
		contentType  string
		body         string
	}{
		{"GET", "/metrics", 200, "", "text/plain; charset=utf-8", "ok"},
		{"HEAD", "/metrics", 200, "", "text/plain; charset=utf-8", "ok"}, // the server, not the recorder, drops a HEAD body
		{"POST", "/debug/pprof/cmdline", 200, "", "text/plain; charset=utf-8", "ok"},
		{"GET", "/nope", 404, "", "text/html; charset=utf-8", "<h1>404 Not Found</h1>"},
		{"DELETE", "/metrics", 405, "GET, HEAD, OPTIONS", "text/plain; charset=utf-8", "405 Method Not Allowed: see the Allow header for the methods this path takes\n"},
		{"GET", "/north/events", 405, "OPTIONS, POST", "text/plain; charset=utf-8", "405 Method Not Allowed: see the Allow header for the methods this path takes\n"},
		{"OPTIONS", "/north/events", 204, "OPTIONS, POST", "", ""},
	}
	for _, tt := range tests {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(tt.method, tt.path, nil))
		res := rec.Result()
		if res.StatusCode != tt.status || res.Header.Get("Allow") != tt.allow || res.Header.Get("Content-Type") != tt.contentType || rec.Body.String() != tt.body {
			t.Errorf("%s %s: %d Allow %q Content-Type %q %q, want %d %q %q %q", tt.method, tt.path, res.StatusCode, res.Header.Get("Allow"), res.Header.Get("Content-Type"), rec.Body.String(), tt.status, tt.allow, tt.contentType, tt.body)
		}
		if cc := res.Header.Get("Cache-Control"); cc != "no-store" {
			t.Errorf("%s %s: Cache-Control %q, want no-store", tt.method, tt.path, cc)
		}
	}
}
