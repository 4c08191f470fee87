package main

import (
	"bytes"
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
)

// syncBuffer is a goroutine-safe log sink a test can read while Run writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

var startedLine = regexp.MustCompile(`msg="northd started" listen=(\S+) admin=(\S+)`)

// startRun runs northd with args until the test cancels it. It returns the
// subsystem addresses, the admin address, the log and Run's result.
func startRun(t *testing.T, args ...string) (listen []string, admin string, logs *syncBuffer, stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	logs = new(syncBuffer)
	result := make(chan error, 1)
	go func() { result <- run(ctx, args, func(string) string { return "" }, nil, io.Discard, logs) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if m := startedLine.FindStringSubmatch(logs.String()); m != nil {
			listen, admin = strings.Split(m[1], ","), m[2]
			break
		}
		select {
		case err := <-result:
			cancel()
			t.Fatalf("Run returned before starting: %v\n%s", err, logs)
		default:
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("northd did not start:\n%s", logs)
		}
		time.Sleep(10 * time.Millisecond)
	}
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-result:
			case <-time.After(15 * time.Second):
				err = errors.New("Run did not return after cancel")
			}
		})
		return err
	}
	t.Cleanup(func() { stop() })
	return listen, admin, logs, stop
}

type serversReport struct {
	Subsystems []struct {
		Listen       string              `json:"listen"`
		NorthServers []northServerReport `json:"north_servers"`
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
		if resp.StatusCode != 200 || !loginOKBody.Match(got) || resp.Proto != "HTTP/1.1" {
			t.Fatalf("login on %s: %s %d %q", addr, resp.Proto, resp.StatusCode, got)
		}
	}
	// A login without ip is recorded under the client's address.
	resp, err := client.Post("http://"+listen[1]+"/north/login", "", strings.NewReader(`{"username":"local","password":"p"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	resp, err = client.Get("http://" + admin + "/north/servers")
	if err != nil {
		t.Fatal(err)
	}
	var report serversReport
	err = json.NewDecoder(resp.Body).Decode(&report)
	resp.Body.Close()
	if err != nil {
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
		{"port in use", []string{"-listen", busy.Addr().String(), "-admin", ""}, nil, false, "cannot listen on " + busy.Addr().String() + ": the address is already in use"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := run(context.Background(), tt.args, func(k string) string { return tt.env[k] }, nil, io.Discard, io.Discard)
			if err == nil {
				t.Fatal("Run succeeded")
			}
			var usage usageError
			if errors.As(err, &usage) != tt.usage {
				t.Errorf("error %q: usage error %v, want %v", err, !tt.usage, tt.usage)
			}
			if !strings.Contains(err.Error(), tt.msg) || strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q, want one line containing %q", err, tt.msg)
			}
		})
	}
}

func TestRunHelpListsEveryFlag(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"-h"}, func(string) string { return "" }, nil, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	for _, flag := range []string{"-listen", "-max-body-size", "-read-timeout", "-write-timeout", "-idle-timeout", "-max-conns-per-ip", "-registry-max", "-shutdown-timeout", "-drain-delay", "-log-level", "-log-format", "-admin", "-trusted-proxies", "NORTHD_MAX_BODY_SIZE"} {
		if !strings.Contains(out.String(), flag) {
			t.Errorf("-h does not mention %s", flag)
		}
	}
}

func TestRunEnvironmentSetsFlags(t *testing.T) {
	env := map[string]string{"NORTHD_LISTEN": "127.0.0.1:0", "NORTHD_ADMIN": "off", "NORTHD_LOG_FORMAT": "json"}
	ctx, cancel := context.WithCancel(context.Background())
	logs := new(syncBuffer)
	done := make(chan error, 1)
	go func() { done <- run(ctx, nil, func(k string) string { return env[k] }, nil, io.Discard, logs) }()
	for i := 0; i < 500 && !strings.Contains(logs.String(), `"msg":"northd started"`); i++ {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), `"msg":"northd started","listen":"127.0.0.1:`) || !strings.Contains(logs.String(), `"admin":"disabled"`) {
		t.Fatalf("environment not applied; log:\n%s", logs)
	}
}

func TestRunDrainsBeforeStopping(t *testing.T) {
	listen, admin, logs, stop := startRun(t, "-listen", "127.0.0.1:0", "-admin", "127.0.0.1:0", "-drain-delay", "700ms")
	base := "http://" + listen[0]
	client := &http.Client{Timeout: 5 * time.Second}
	get := func(path string) (int, string) {
		resp, err := client.Get(base + path)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if st, body := get("/readyz"); st != 200 || body != "ready\n" {
		t.Fatalf("/readyz before shutdown: %d %q", st, body)
	}
	stopped := make(chan error, 1)
	go func() { stopped <- stop() }()
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(logs.String(), "draining") {
		if time.Now().After(deadline) {
			t.Fatalf("no drain line in the log:\n%s", logs)
		}
		time.Sleep(5 * time.Millisecond)
	}
	// During the drain delay: not ready, but still serving everything.
	if st, _ := get("/readyz"); st != 503 {
		t.Errorf("/readyz while draining: %d, want 503", st)
	}
	if st, _ := get("/healthz"); st != 200 {
		t.Errorf("/healthz while draining: %d, want 200", st)
	}
	resp, err := client.Post(base+"/north/login", "", strings.NewReader(`{"username":"late","password":"p"}`))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("login while draining: %v %v", err, resp)
	}
	resp.Body.Close()
	metrics, err := client.Get("http://" + admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	mb, _ := io.ReadAll(metrics.Body)
	metrics.Body.Close()
	for _, want := range []string{
		`northd_requests_total{subsystem="` + portOf(listen[0]) + `",route="readyz",status="503"} 1`,
		`northd_requests_total{subsystem="` + portOf(listen[0]) + `",route="login",status="200"} 1`,
		`northd_logins_total{subsystem="` + portOf(listen[0]) + `"} 1`,
		`northd_registry_north_servers{subsystem="` + portOf(listen[0]) + `"} 1`,
		`northd_request_duration_seconds_count{subsystem="` + portOf(listen[0]) + `"}`,
		`go_goroutines `,
	} {
		if !strings.Contains(string(mb), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if err := <-stopped; err != nil {
		t.Fatalf("Run: %v\n%s", err, logs)
	}
	if st, _ := get("/"); st != 0 {
		t.Errorf("after shutdown: status %d, want no connection", st)
	}
}

func TestStartReusePortSharesTheAddress(t *testing.T) {
	probe, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := probe.Addr().String()
	probe.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var servers []*instance
	for i := 0; i < 2; i++ {
		srv, err := startInstance(t, ctx, []string{"-listen", addr, "-admin", "off", "-reuseport"}, func(string) string { return "" }, io.Discard)
		if err != nil {
			t.Fatalf("instance %d with -reuseport on %s: %v", i, addr, err)
		}
		servers = append(servers, srv)
	}
	if _, err := startInstance(t, ctx, []string{"-listen", addr, "-admin", "off"}, func(string) string { return "" }, io.Discard); err == nil {
		t.Fatal("a third instance without -reuseport bound the same address")
	}
	resp, err := http.Get("http://" + addr + "/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET /healthz: %v %v", err, resp)
	}
	resp.Body.Close()
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
		srv, err := startInstance(t, ctx, append([]string{"-listen", "127.0.0.1:0", "-admin", "127.0.0.1:0"}, tt.args...), func(string) string { return "" }, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.Get("http://" + srv.adminAddr + "/debug/pprof/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tt.want {
			t.Errorf("args %v: /debug/pprof/ status %d, want %d", tt.args, resp.StatusCode, tt.want)
		}
		// Never on a public port.
		resp, err = http.Get("http://" + srv.listenAddrs()[0] + "/debug/pprof/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 404 {
			t.Errorf("args %v: /debug/pprof/ on the public port: %d", tt.args, resp.StatusCode)
		}
		cancel()
		if err := srv.wait(); err != nil {
			t.Fatal(err)
		}
	}
}

// startInstance starts northd in this process as run would, and returns
// once it serves.
func startInstance(t testing.TB, ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) (*instance, error) {
	t.Helper()
	cfg, err := parseConfig(args, getenv, io.Discard)
	if err != nil {
		return nil, err
	}
	return start(ctx, cfg, newLogger(stderr, cfg.LogLevel, cfg.LogFormat))
}
