package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp/fasthttputil"

	"northd/internal/testdeps"
)

// TestOpenAPIDocumentIsValid: docs/openapi.yaml loads, its references
// resolve, and it is valid OpenAPI 3.1, as the validator the answers are
// checked with reads it.
func TestOpenAPIDocumentIsValid(t *testing.T) {
	doc := testdeps.OpenAPI(t)
	if doc.OpenAPI != "3.1.0" {
		t.Errorf("openapi: %q, want 3.1.0", doc.OpenAPI)
	}
	for _, hook := range []string{"eventDelivery", "subscriptionVerify"} {
		if doc.Webhooks[hook] == nil {
			t.Errorf("webhooks has no %s", hook)
		}
	}
}

// TestOpenAPIServed: the admin listener answers GET /openapi.yaml with the
// file's bytes, built in, and asks for its token like every admin route.
func TestOpenAPIServed(t *testing.T) {
	want, err := os.ReadFile(testdeps.OpenAPIFile)
	if err != nil {
		t.Fatal(err)
	}
	secret := "0123456789abcdef0123456789abcdef"
	tokenFile := filepath.Join(t.TempDir(), "admin-token")
	if err := os.WriteFile(tokenFile, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := startInstance(t, ctx, []string{"-listen", "127.0.0.1:0", "-admin", "127.0.0.1:0", "-admin-token-file", tokenFile}, testdeps.NoEnv, io.Discard)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	defer func() {
		cancel()
		if err := srv.wait(); err != nil {
			t.Error(err)
		}
	}()
	client := &http.Client{Timeout: time.Minute} // only a hang gets near it
	url := "http://" + srv.adminAddr + "/openapi.yaml"

	if a := testdeps.Call(t, client, "GET", url, "", ""); a.Status != 401 || a.Header.Get("WWW-Authenticate") != `Bearer realm="northd-admin"` {
		t.Errorf("without the admin token: %d %v, want 401 with the admin challenge", a.Status, a.Header)
	}
	a := testdeps.Call(t, client, "GET", url, secret, "")
	if a.Status != 200 {
		t.Fatalf("GET /openapi.yaml: %d %q", a.Status, a.Body)
	}
	if ct := a.Header.Get("Content-Type"); ct != "application/yaml" {
		t.Errorf("Content-Type: %q, want application/yaml", ct)
	}
	if cc := a.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control: %q, want no-store", cc)
	}
	if !bytes.Equal([]byte(a.Body), want) {
		t.Errorf("GET /openapi.yaml is not %s (%d bytes, want %d): rebuild", testdeps.OpenAPIFile, len(a.Body), len(want))
	}
}

// TestOpenAPILintAndClient: Redocly's linter passes the document, and a
// client typed by what openapi-typescript generates from it type-checks.
// The tools are docs/tools' own, pinned by its lockfile: without them the
// test is skipped, saying how to install them, and under CI=true it fails,
// as testdeps.Need does for a missing program.
func TestOpenAPILintAndClient(t *testing.T) {
	tools, err := filepath.Abs("docs/tools")
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(tools, "node_modules", ".bin")
	if _, err := os.Stat(filepath.Join(bin, "redocly")); err != nil {
		msg := "the OpenAPI tools are not installed: run npm ci --prefix docs/tools"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg + "; CI must run this test")
		}
		t.Skip(msg + "; skipping")
	}
	run := func(name string, args ...string) {
		t.Helper()
		cmd := exec.Command(filepath.Join(bin, name), args...)
		cmd.Dir = tools
		// No "update available" banners or telemetry from the tools.
		cmd.Env = append(os.Environ(), "REDOCLY_TELEMETRY=off", "REDOCLY_SUPPRESS_UPDATE_NOTICE=true", "NO_UPDATE_NOTIFIER=1")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
		}
	}
	run("redocly", "lint", "../openapi.yaml")

	dir := t.TempDir()
	api := filepath.Join(dir, "api.d.ts")
	run("openapi-typescript", "../openapi.yaml", "-o", api)
	// client.ts imports "northd-api": here, the types just generated.
	tsconfig := `{"extends": "` + filepath.Join(tools, "tsconfig.json") + `",
 "compilerOptions": {"paths": {"northd-api": ["` + api + `"]}},
 "files": ["` + filepath.Join(tools, "client.ts") + `"]}`
	if err := os.WriteFile(filepath.Join(dir, "tsconfig.json"), []byte(tsconfig), 0o600); err != nil {
		t.Fatal(err)
	}
	run("tsc", "--noEmit", "-p", filepath.Join(dir, "tsconfig.json"))
}

// TestRoutesAreDocumented walks both lists: every route routes.go mounts,
// on a subsystem's router and on the admin listener, is a path and method
// of docs/openapi.yaml, and every path and method of the document is one
// of them. net/http's mux answers HEAD for a GET route; a route of any
// method (pprof's) is documented by its GET.
func TestRoutesAreDocumented(t *testing.T) {
	doc := testdeps.OpenAPI(t)
	documented := map[string]bool{} // "METHOD path"
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			documented[method+" "+path] = true
		}
	}
	routed := map[string]bool{}
	// Built, not served: its router is what is read.
	ln := fasthttputil.NewInmemoryListener()
	defer ln.Close()
	s := newSubsystem(t.Context(), common{cfg: testConfig(t), draining: new(atomic.Bool), set: metrics.NewSet(), log: newLogger(io.Discard, "info", "text")}, "test", ln)
	for method, paths := range s.router().List() {
		for _, p := range paths {
			routed[method+" "+p] = true
			routed["OPTIONS "+p] = true // routes answers OPTIONS on every path it routes
		}
	}
	for _, r := range adminRouteList([]*subsystem{s}, metrics.NewSet(), 1024, true, nil) {
		if r.Method == "" {
			routed["GET "+r.Path] = true // the document names no other
			continue
		}
		routed[r.Method+" "+r.Path] = true
		routed["OPTIONS "+r.Path] = true
		if r.Method == "GET" {
			routed["HEAD "+r.Path] = true
		}
	}
	// The one path a profile's name fills in: pprof.Index serves every
	// /debug/pprof/NAME.
	routed["GET /debug/pprof/{profile}"] = true
	for route := range routed {
		if !documented[route] {
			t.Errorf("%s is routed (routes.go) but not in %s", route, testdeps.OpenAPIFile)
		}
	}
	for route := range documented {
		if !routed[route] {
			t.Errorf("%s is in %s but routes.go does not route it", route, testdeps.OpenAPIFile)
		}
	}
}
