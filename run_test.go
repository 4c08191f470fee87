package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"northd/internal/config"
	"northd/internal/store"
	"northd/internal/testdeps"
)

// startRun starts northd with args in this process, as run does, until the
// test ends or calls stop. It returns the subsystem addresses, the admin
// address ("" with the admin listener off), the log, and stop, which shuts
// northd down and returns what run would.
func startRun(t *testing.T, args ...string) (listen []string, admin string, logs *testdeps.SyncBuffer, stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	logs = new(testdeps.SyncBuffer)
	srv, err := startInstance(t, ctx, args, testdeps.NoEnv, logs)
	if err != nil {
		cancel()
		t.Fatalf("start: %v\n%s", err, logs)
	}
	result := make(chan error, 1)
	go func() { result <- srv.wait() }()
	var once sync.Once
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-result:
			case <-time.After(time.Minute):
				err = errors.New("northd did not stop within a minute of cancel")
			}
		})
		return err
	}
	t.Cleanup(func() { stop() })
	return srv.listenAddrs(), srv.adminAddr, logs, stop
}

type serversReport struct {
	Subsystems []struct {
		Listen       string              `json:"listen"`
		NorthServers []store.NorthServer `json:"north_servers"`
		Count        int                 `json:"count"`
	} `json:"subsystems"`
}

func TestRunTwoSubsystemsEndToEnd(t *testing.T) {
	listen, admin, logs, stop := startRun(t, "-listen", "127.0.0.1:0,127.0.0.1:0", "-admin", "127.0.0.1:0")
	if len(listen) != 2 {
		t.Fatalf("listening on %v, want two addresses", listen)
	}
	client := &http.Client{Timeout: 5 * time.Second}
	for i, addr := range listen {
		body := `{"username":"north-` + string(rune('a'+i)) + `","password":"secret","ip":"192.0.2.` + string(rune('1'+i)) + `"}`
		resp, err := client.Post("http://"+addr+"/north/login", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		testdeps.CheckAnswer(t, "POST", "/north/login", nil, resp.StatusCode, resp.Header, got)
		if resp.StatusCode != 200 || !loginOKBody.Match(got) || resp.Proto != "HTTP/1.1" {
			t.Fatalf("login on %s: %s %d %q", addr, resp.Proto, resp.StatusCode, got)
		}
	}
	// A login without ip is recorded under the client's address.
	testdeps.Call(t, client, "POST", "http://"+listen[1]+"/north/login", "", `{"username":"local","password":"p"}`)

	var report serversReport
	if err := json.Unmarshal([]byte(testdeps.Call(t, client, "GET", "http://"+admin+"/north/servers", "", "").Body), &report); err != nil {
		t.Fatal(err)
	}
	if len(report.Subsystems) != 2 {
		t.Fatalf("report has %d subsystems", len(report.Subsystems))
	}
	want := [][]string{{"192.0.2.1 north-a"}, {"127.0.0.1 local", "192.0.2.2 north-b"}}
	for i, sub := range report.Subsystems {
		if sub.Listen != listen[i] {
			t.Errorf("subsystem %d listens on %s, want %s", i, sub.Listen, listen[i])
		}
		var got []string
		for _, ns := range sub.NorthServers {
			got = append(got, ns.IP+" "+ns.Username)
		}
		if strings.Join(got, ",") != strings.Join(want[i], ",") {
			t.Errorf("subsystem %s registry %v, want %v", sub.Listen, got, want[i])
		}
	}

	if err := stop(); err != nil {
		t.Fatalf("Run after shutdown: %v\n%s", err, logs)
	}
	if !strings.Contains(logs.String(), "stopped cleanly") {
		t.Errorf("no clean shutdown line in the log:\n%s", logs)
	}
	if strings.Contains(logs.String(), "secret") {
		t.Errorf("the log holds a password:\n%s", logs)
	}
	if _, err := net.DialTimeout("tcp", listen[0], time.Second); err == nil {
		t.Error("still accepting connections after shutdown")
	}
}

func TestRunRefusesBadConfiguration(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	tests := []struct {
		name  string
		args  []string
		env   map[string]string
		usage bool
		msg   string
	}{
		{"unknown flag", []string{"-nope"}, nil, true, "flag provided but not defined: -nope"},
		{"bad number", []string{"-max-body-size", "lots"}, nil, true, `invalid value "lots" for flag -max-body-size`},
		{"negative", []string{"-registry-max", "-1"}, nil, true, "-registry-max must be positive"},
		{"bad env", nil, map[string]string{"NORTHD_READ_TIMEOUT": "soon"}, true, `invalid value "soon" for NORTHD_READ_TIMEOUT`},
		{"bad listen", []string{"-listen", "8000"}, nil, true, `invalid -listen address "8000"`},
		{"public admin", []string{"-admin", "0.0.0.0:9100"}, nil, true, "pass -admin-public"},
		{"bad proxy", []string{"-trusted-proxies", "10.0.0.0/99"}, nil, true, `invalid -trusted-proxies entry "10.0.0.0/99"`},
		{"bad log level", nil, map[string]string{"NORTHD_LOG_LEVEL": "loud"}, true, "-log-level must be"},
		{"public admin, no secrets", []string{"-admin", "0.0.0.0:9100", "-admin-public"}, nil, true, "-admin-public needs -admin-token-file"},
		{"admin secrets missing", []string{"-admin", "127.0.0.1:0", "-admin-token-file", "/nonexistent/secrets"}, nil, true, "cannot read -admin-token-file"},
		{"short push lease", []string{"-push-allow", "10.0.0.0/8", "-push-lease", "1ms"}, nil, true, "-push-lease must be at least 300ms"},
		{"push timeout over the lease", []string{"-push-allow", "10.0.0.0/8", "-push-lease", "1s"}, nil, true, "-push-timeout (10s) must be less than half of -push-lease (1s)"},
		{"bad push-allow", []string{"-push-allow", "10.0.0.0/99"}, nil, true, `"10.0.0.0/99" is not a CIDR`},
		{"event data over the log", []string{"-event-max-bytes", "100", "-event-log-bytes", "10"}, nil, true, "one event would not fit in the log"},
		{"port in use", []string{"-listen", busy.Addr().String(), "-admin", ""}, nil, false, "cannot listen on " + busy.Addr().String() + ": the address is already in use"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := run(context.Background(), tt.args, testdeps.EnvFrom(tt.env), nil, io.Discard, io.Discard)
			if err == nil {
				t.Fatal("Run succeeded")
			}
			var usage config.UsageError
			if errors.As(err, &usage) != tt.usage {
				t.Errorf("error %q: usage error %v, want %v", err, !tt.usage, tt.usage)
			}
			if !strings.Contains(err.Error(), tt.msg) || strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q, want one line containing %q", err, tt.msg)
			}
		})
	}
}

func TestRunEnvironmentSetsFlags(t *testing.T) {
	env := map[string]string{"NORTHD_LISTEN": "127.0.0.1:0", "NORTHD_ADMIN": "off", "NORTHD_LOG_FORMAT": "json"}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	logs := new(testdeps.SyncBuffer)
	srv, err := startInstance(t, ctx, nil, testdeps.EnvFrom(env), logs)
	if err != nil {
		t.Fatalf("start: %v\n%s", err, logs)
	}
	cancel()
	if err := srv.wait(); err != nil {
		t.Fatal(err)
	}
	if listen := srv.listenAddrs(); len(listen) != 1 || !strings.HasPrefix(listen[0], "127.0.0.1:") || srv.admin != nil {
		t.Fatalf("environment not applied: listening on %v, admin listener %v", listen, srv.admin)
	}
	if !strings.Contains(logs.String(), `"msg":"northd started","listen":"127.0.0.1:`) || !strings.Contains(logs.String(), `"admin":"disabled"`) {
		t.Fatalf("NORTHD_LOG_FORMAT not applied; log:\n%s", logs)
	}
}

// TestDrainingServesAllButReadyz: while the instance drains, /readyz
// answers 503 and everything else is served as usual, and counted. The
// drain is started as wait starts it (TestShutdownDrainsFirst), by setting
// the flag the handlers read.
func TestDrainingServesAllButReadyz(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv, err := startInstance(t, ctx, []string{"-listen", "127.0.0.1:0", "-admin", "127.0.0.1:0"}, testdeps.NoEnv, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	listen := srv.listenAddrs()[0]
	client := &http.Client{Timeout: time.Minute} // only a hang gets near it
	do := func(method, path, body string) (int, string) {
		t.Helper()
		a := testdeps.Call(t, client, method, "http://"+listen+path, "", body)
		return a.Status, a.Body
	}
	if st, body := do("GET", "/readyz", ""); st != 200 || body != "ready\n" {
		t.Fatalf("/readyz before the drain: %d %q", st, body)
	}
	srv.draining.Store(true)
	tests := []struct {
		method, path, body string
		status             int
		answer             *regexp.Regexp
	}{
		{"GET", "/readyz", "", 503, regexp.MustCompile(`^draining: this instance is shutting down\n$`)},
		{"GET", "/healthz", "", 200, regexp.MustCompile(`^ok\n$`)},
		{"GET", "/", "", 200, regexp.MustCompile(`^` + regexp.QuoteMeta(wantHome) + `$`)},
		{"POST", "/north/login", `{"username":"late","password":"p"}`, 200, loginOKBody},
	}
	for _, tt := range tests {
		if st, body := do(tt.method, tt.path, tt.body); st != tt.status || !tt.answer.MatchString(body) {
			t.Errorf("%s %s while draining: %d %q, want %d matching %v", tt.method, tt.path, st, body, tt.status, tt.answer)
		}
	}
	mb := testdeps.Call(t, client, "GET", "http://"+srv.adminAddr+"/metrics", "", "").Body
	label := `subsystem="` + testdeps.PortOf(listen) + `"`
	for _, want := range []string{
		`northd_requests_total{` + label + `,route="readyz",status="200"} 1`,
		`northd_requests_total{` + label + `,route="readyz",status="503"} 1`,
		`northd_requests_total{` + label + `,route="healthz",status="200"} 1`,
		`northd_requests_total{` + label + `,route="home",status="200"} 1`,
		`northd_requests_total{` + label + `,route="login",status="200"} 1`,
		`northd_logins_total{` + label + `} 1`,
		`northd_registry_north_servers{` + label + `} 1`,
		`northd_request_duration_seconds_count{` + label + `} 5`,
	} {
		if !hasMetricLine(string(mb), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if !strings.Contains(string(mb), "\ngo_goroutines ") {
		t.Errorf("/metrics lacks the process metrics")
	}
	cancel()
	if err := srv.wait(); err != nil {
		t.Fatal(err)
	}
}

// TestShutdownDrainsFirst: on cancel, wait turns /readyz to 503 (the flag
// every subsystem reads), serves on for the drain delay, then shuts down
// cleanly, in that order.
func TestShutdownDrainsFirst(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	logs := new(testdeps.SyncBuffer)
	srv, err := startInstance(t, ctx, []string{"-listen", "127.0.0.1:0,127.0.0.1:0", "-admin", "off", "-drain-delay", "1ms"}, testdeps.NoEnv, logs)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range srv.subsystems {
		if s.draining != srv.draining {
			t.Fatalf("subsystem %s reads another drain flag than the one wait sets", s.name)
		}
	}
	if srv.draining.Load() {
		t.Fatal("draining before shutdown")
	}
	cancel()
	if err := srv.wait(); err != nil {
		t.Fatalf("wait: %v\n%s", err, logs)
	}
	if !srv.draining.Load() {
		t.Error("wait did not set the drain flag")
	}
	log := logs.String()
	drain := strings.Index(log, `msg="draining: /readyz answers 503; serving on until the drain delay ends" drain_delay=1ms`)
	shut := strings.Index(log, `msg="shutting down: no new connections; finishing in-flight requests; event streams told to reconnect elsewhere"`)
	clean := strings.Index(log, `msg="stopped cleanly: every in-flight request was answered"`)
	if drain < 0 || shut < drain || clean < shut {
		t.Errorf("want the drain, the shutdown and the clean stop logged in that order:\n%s", log)
	}
}

func TestStartReusePortSharesTheAddress(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var servers []*instance
	addr := "127.0.0.1:0" // the first instance picks the port, the second shares it
	for i := 0; i < 2; i++ {
		srv, err := startInstance(t, ctx, []string{"-listen", addr, "-admin", "off", "-reuseport"}, testdeps.NoEnv, io.Discard)
		if err != nil {
			t.Fatalf("instance %d with -reuseport on %s: %v", i, addr, err)
		}
		servers = append(servers, srv)
		addr = srv.listenAddrs()[0]
	}
	if _, err := startInstance(t, ctx, []string{"-listen", addr, "-admin", "off"}, testdeps.NoEnv, io.Discard); err == nil {
		t.Fatal("a third instance without -reuseport bound the same address")
	}
	if a := testdeps.Call(t, http.DefaultClient, "GET", "http://"+addr+"/healthz", "", ""); a.Status != 200 {
		t.Fatalf("GET /healthz: %d %q", a.Status, a.Body)
	}
	cancel()
	for _, srv := range servers {
		if err := srv.wait(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestPprofOnlyWhenAskedFor(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want int
	}{{nil, 404}, {[]string{"-pprof"}, 200}} {
		ctx, cancel := context.WithCancel(context.Background())
		srv, err := startInstance(t, ctx, append([]string{"-listen", "127.0.0.1:0", "-admin", "127.0.0.1:0"}, tt.args...), testdeps.NoEnv, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		if a := testdeps.Call(t, http.DefaultClient, "GET", "http://"+srv.adminAddr+"/debug/pprof/", "", ""); a.Status != tt.want {
			t.Errorf("args %v: /debug/pprof/ status %d, want %d", tt.args, a.Status, tt.want)
		}
		// Never on a public port.
		if a := testdeps.Call(t, http.DefaultClient, "GET", "http://"+srv.listenAddrs()[0]+"/debug/pprof/", "", ""); a.Status != 404 {
			t.Errorf("args %v: /debug/pprof/ on the public port: %d", tt.args, a.Status)
		}
		cancel()
		if err := srv.wait(); err != nil {
			t.Fatal(err)
		}
	}
}

// startInstance starts northd in this process as run would, and returns
// once it serves.
func startInstance(t testing.TB, ctx context.Context, args []string, lookupEnv func(string) (string, bool), stderr io.Writer) (*instance, error) {
	t.Helper()
	cfg, err := config.Parse(args, lookupEnv, io.Discard)
	if err != nil {
		return nil, err
	}
	return start(ctx, cfg, newLogger(stderr, cfg.LogLevel, cfg.LogFormat), nil)
}
