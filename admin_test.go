package main

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"northd/internal/testdeps"
)

// The admin listener closes a keep-alive connection left idle for
// -idle-timeout, so that idle clients cannot hold its descriptors forever.
func TestAdminClosesIdleConnections(t *testing.T) {
	_, admin, _, _ := startRun(t, "-listen", "127.0.0.1:0", "-admin", "127.0.0.1:0", "-idle-timeout", "1s")
	c, err := net.Dial("tcp", admin)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, "GET /metrics HTTP/1.1\r\nHost: admin\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(c)
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Close {
		t.Fatalf("GET /metrics: %d, close %v", resp.StatusCode, resp.Close)
	}
	// Only a server that never closes it gets near the deadline.
	c.SetReadDeadline(time.Now().Add(60 * time.Second))
	n, err := r.Read(make([]byte, 1))
	if n != 0 || !errors.Is(err, io.EOF) {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatal("the idle admin connection was still open a minute later")
		}
		t.Fatalf("reading the idle connection: %d bytes, %v; want the server to close it", n, err)
	}
}

// A CPU profile that runs longer than -write-timeout is still delivered:
// its write deadline allows for the seconds it was asked to run.
func TestAdminProfileOutlastsWriteTimeout(t *testing.T) {
	_, admin, _, _ := startRun(t, "-listen", "127.0.0.1:0", "-admin", "127.0.0.1:0", "-pprof", "-write-timeout", "1s")
	client := &http.Client{Timeout: time.Minute}
	resp, err := client.Get("http://" + admin + "/debug/pprof/profile?seconds=2")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/octet-stream" || len(body) == 0 {
		t.Fatalf("profile: %d %q, %d bytes, %v: %.200s", resp.StatusCode, resp.Header.Get("Content-Type"), len(body), err, body)
	}
}

// With -admin-token-file every route of the admin listener asks for one of
// its secrets, reads included (the listings name north servers' urls, ips
// and last errors): 401 without it, with a sentence and WWW-Authenticate,
// and its own answer with it.
func TestAdminRoutesNeedTheToken(t *testing.T) {
	secrets := testdeps.WriteUsersFile(t, "# operators\n0123456789abcdef0123\n")
	_, admin, _, _ := startRun(t, "-listen", "127.0.0.1:0", "-admin", "127.0.0.1:0", "-admin-token-file", secrets, "-pprof")
	client := &http.Client{Timeout: time.Minute}
	for _, c := range []struct {
		method, path string
		with         int // the answer with the token
	}{
		{"POST", "/north/events", 202},
		{"GET", "/metrics", 200},
		{"GET", "/north/servers", 200},
		{"GET", "/north/subscriptions", 200},
		{"GET", "/debug/pprof/", 200},
		{"GET", "/debug/pprof/heap", 200},
		{"GET", "/debug/pprof/goroutine?debug=1", 200},
		{"GET", "/debug/pprof/cmdline", 200},
		{"GET", "/debug/pprof/symbol", 200},
		{"GET", "/debug/pprof/profile?seconds=1", 200},
		{"GET", "/debug/pprof/trace?seconds=1", 200},
		{"GET", "/no/such/route", 404},
	} {
		for _, auth := range []string{"", "Bearer wrong-secret-wrong-secret", "Basic 0123456789abcdef0123", "Bearer 0123456789abcdef0123"} {
			req, err := http.NewRequest(c.method, "http://"+admin+c.path, strings.NewReader(`{"type":"t"}`))
			if err != nil {
				t.Fatal(err)
			}
			if auth != "" {
				req.Header.Set("Authorization", auth)
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			want := 401
			if auth == "Bearer 0123456789abcdef0123" {
				want = c.with
			}
			if resp.StatusCode != want {
				t.Errorf("%s %s, Authorization %q: %d %.60q, want %d", c.method, c.path, auth, resp.StatusCode, body, want)
			}
			if want == 401 && (resp.Header.Get("WWW-Authenticate") != `Bearer realm="northd-admin"` ||
				!strings.Contains(string(body), "the admin listener needs Authorization: Bearer with a secret from -admin-token-file")) {
				t.Errorf("%s %s, Authorization %q: 401 %v %s, want WWW-Authenticate and the sentence", c.method, c.path, auth, resp.Header, body)
			}
		}
	}
}
