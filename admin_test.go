package main

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"testing"
	"time"
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
