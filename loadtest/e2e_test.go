package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// northdURL starts northd (northd_test.go) and returns its base URL.
func northdURL(t *testing.T) string {
	t.Helper()
	return "http://" + startNorthd(t).Listen[0]
}

// runLoadtest runs the command and returns its exit code, its output and
// the JSON report.
func runLoadtest(t *testing.T, args ...string) (int, string, Report) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "report.json")
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), append(args, "-out", out, "-progress=false"), &stdout, &stderr)
	var rep Report
	if b, err := os.ReadFile(out); err != nil {
		t.Fatalf("no report (exit %d): %v\n%s%s", code, err, stdout.String(), stderr.String())
	} else if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatalf("report: %v\n%s", err, b)
	}
	if _, err := os.Stat(strings.TrimSuffix(out, ".json") + ".html"); err != nil {
		t.Errorf("no plot beside the report: %v", err)
	}
	return code, stdout.String() + stderr.String(), rep
}

func TestMixedAgainstNorthd(t *testing.T) {
	target := northdURL(t)
	code, out, rep := runLoadtest(t, "-target", target, "-scenario", "mixed", "-rate", "300", "-duration", "2s")
	if code != 0 || rep.ErrorCount != 0 || len(rep.Errors) != 0 || !rep.Passed {
		t.Fatalf("exit %d, errors %v\n%s", code, rep.Errors, out)
	}
	if rep.Requests < 500 || rep.SuccessRatio != 1 {
		t.Fatalf("%d requests, success ratio %v\n%s", rep.Requests, rep.SuccessRatio, out)
	}
	if logins := rep.Cases["login"]; logins == 0 || uint64(rep.UniqueTokens) != logins {
		t.Fatalf("%d unique tokens for %d logins\n%s", rep.UniqueTokens, logins, out)
	}
	for _, c := range []string{"home", "login", "not-found", "bad-json"} {
		if rep.Cases[c] == 0 {
			t.Errorf("case %s never sent: %v", c, rep.Cases)
		}
	}
	if rep.Latency.P99 <= 0 || rep.Latency.P50 > rep.Latency.P99 || rep.Latency.Max < rep.Latency.P999 {
		t.Errorf("latency quantiles out of order: %+v", rep.Latency)
	}
}

// The raw TCP cases (no Content-Length, garbage request lines, oversize
// bodies) and every refusal, through both clients.
func TestBadInputAgainstNorthd(t *testing.T) {
	target := northdURL(t)
	for _, client := range []string{"nethttp", "fasthttp"} {
		t.Run(client, func(t *testing.T) {
			code, out, rep := runLoadtest(t, "-target", target, "-client", client, "-scenario", "bad-input", "-rate", "200", "-duration", "1s")
			if code != 0 || rep.ErrorCount != 0 {
				t.Fatalf("exit %d, errors %v\n%s", code, rep.Errors, out)
			}
			if len(rep.Cases) != len(badInputCases(65536)) {
				t.Errorf("cases sent: %v", rep.Cases)
			}
			if rep.StatusCodes["413"] == 0 || rep.StatusCodes["405"] == 0 || rep.StatusCodes["400"] == 0 {
				t.Errorf("status codes: %v", rep.StatusCodes)
			}
		})
	}
}

// wrongServer breaks the contract in three ways: the home page has the
// wrong content type, every login gets the same token, and a 404 forgets
// Cache-Control.
func wrongServer() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/":
			w.Header().Set("Cache-Control", "no-store")
			w.Header().Set("Content-Type", "text/plain")
			w.Write([]byte(litHome))
		case "/north/login":
			io.Copy(io.Discard, r.Body)
			w.Header().Set("Cache-Control", "no-store")
			w.Header().Set("Content-Type", litJSON)
			if r.ContentLength > 30 { // a valid login body
				fmt.Fprintf(w, `{"code": 0, "token": "%s", "description": "success"}`, goodToken)
				return
			}
			w.WriteHeader(400)
			w.Write([]byte(`{"code": 1, "token": "", "description": "request body is not valid JSON"}`))
		default:
			w.Header().Set("Content-Type", litHTML)
			w.WriteHeader(404)
			w.Write([]byte(litNotFound))
		}
	})
}

func TestWrongServerFails(t *testing.T) {
	srv := httptest.NewServer(wrongServer())
	defer srv.Close()
	code, out, rep := runLoadtest(t, "-target", srv.URL, "-scenario", "mixed", "-rate", "200", "-duration", "1s")
	if code == 0 || rep.Passed || rep.ErrorCount == 0 {
		t.Fatalf("exit %d, passed %v against a wrong server\n%s", code, rep.Passed, out)
	}
	for _, kind := range []string{"home/content-type", "login/token-repeated", "not-found/cache-control"} {
		if rep.Errors[kind] == 0 {
			t.Errorf("no %s error counted: %v", kind, rep.Errors)
		}
	}
	if rep.Errors["bad-json/"+errStatus] != 0 || rep.UniqueTokens != 1 {
		t.Errorf("errors %v, %d unique tokens", rep.Errors, rep.UniqueTokens)
	}
	if !strings.Contains(out, "FAIL") {
		t.Errorf("no FAIL verdict in the output:\n%s", out)
	}
}

func TestNoServerFails(t *testing.T) {
	srv := httptest.NewServer(wrongServer())
	target := srv.URL
	srv.Close() // nothing listens there now
	code, out, rep := runLoadtest(t, "-target", target, "-scenario", "home", "-rate", "50", "-duration", "500ms")
	// The refusal is counted against the case whose request it was.
	if code == 0 || rep.Errors["home/"+errRefused] == 0 || rep.Errors["no-response/"+errRefused] != 0 {
		t.Fatalf("exit %d, errors %v\n%s", code, rep.Errors, out)
	}
}

func TestUsage(t *testing.T) {
	for _, args := range [][]string{
		{"-scenario", "nope"},
		{"-rate", "0"},
		{"-target", "https://example.invalid"},
		{"-client", "curl"},
		{"-scenario", "mixed", "-mix", "home=x"},
		{"extra"},
	} {
		var out bytes.Buffer
		if code := run(context.Background(), args, &out, &out); code != 2 {
			t.Errorf("%v: exit %d, want 2\n%s", args, code, out.String())
		}
	}
	var out bytes.Buffer
	if code := run(context.Background(), []string{"-h"}, &out, &out); code != 0 || !strings.Contains(out.String(), "-scenario") {
		t.Errorf("-h: exit %d\n%s", code, out.String())
	}
}
