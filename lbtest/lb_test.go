// Package lbtest runs the northd binary as operators do. Above all it
// proves northd behind a real load balancer: HAProxy on
// loopback in front of two northd processes speaking PROXY protocol, with a
// constant-rate verified load running while each instance in turn is
// drained, stopped and started again. `make test-lb` runs it; `make test`
// runs it too when haproxy is installed and skips it, saying so, when not.
package lbtest

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

const (
	// HAProxy connects to northd from this address, and only it is
	// trusted; clients reach HAProxy from clientIPs. Without PROXY
	// protocol northd would see proxyIP for every login.
	proxyIP   = "127.0.0.9"
	loadRate  = 300 // requests per second, constant
	checkInt  = 200 * time.Millisecond
	drainTime = 1 * time.Second // > fall × inter, so HAProxy marks the instance down first
)

var clientIPs = []string{"127.0.0.1", "127.0.0.2", "127.0.0.3"}

var tokenBody = regexp.MustCompile(`^\{"code": 0, "token": "[0-9a-f]{12}4[0-9a-f]{3}[89ab][0-9a-f]{15}", "description": "success"\}$`)

const homeBody = `<meta http-equiv="Content-Type" content="text/html; charset=utf-8"><h1>Home Page</h1>`

// bin is the northd binary the tests run, built once by TestMain.
var bin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "northd-lbtest")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bin = filepath.Join(dir, "northd")
	if out, err := exec.Command("go", "build", "-o", bin, "..").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building northd: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func TestBehindHAProxy(t *testing.T) {
	haproxy, err := exec.LookPath("haproxy")
	if err != nil {
		t.Skip("haproxy is not installed: skipping the load-balancer test (apt-get install haproxy, or let .ci/run do it)")
	}
	if testing.Short() {
		t.Skip("-short: skipping the 20-second load-balancer test")
	}
	dir := t.TempDir()

	instances := []*instance{
		{name: "a", port: freePort(t), adminPort: freePort(t)},
		{name: "b", port: freePort(t), adminPort: freePort(t)},
	}
	for _, in := range instances {
		in.start(t)
	}
	t.Cleanup(func() {
		for _, in := range instances {
			in.kill()
		}
	})

	frontPort := freePort(t)
	sock := filepath.Join(dir, "haproxy.sock")
	cfg := filepath.Join(dir, "haproxy.cfg")
	writeHAProxyConfig(t, cfg, sock, frontPort, instances)
	hap := exec.Command(haproxy, "-db", "-f", cfg)
	hapLog := new(syncBuffer)
	hap.Stdout, hap.Stderr = hapLog, hapLog
	if err := hap.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hap.Process.Kill(); hap.Wait() })
	front := "http://127.0.0.1:" + strconv.Itoa(frontPort)
	waitFor(t, "both instances UP in HAProxy", 10*time.Second, func() bool {
		st, err := haproxyStats(sock)
		return err == nil && st["a"]["status"] == "UP" && st["b"]["status"] == "UP"
	})

	// The constant-rate load runs while each instance in turn is drained
	// (SIGTERM with a drain delay), stops, and is started again.
	ctx, stopLoad := context.WithCancel(context.Background())
	load := newLoad(front)
	loadStart := time.Now()
	loadDone := make(chan struct{})
	go func() { defer close(loadDone); load.run(ctx, loadRate) }()
	time.Sleep(5 * time.Second)
	for _, in := range instances {
		in.restart(t, sock)
		time.Sleep(5 * time.Second)
	}
	stopLoad()
	<-loadDone
	loadTime := time.Since(loadStart)

	t.Logf("load: %d requests sent in %v at %d/s, %d failed", load.sent.Load(), loadTime.Round(time.Millisecond), loadRate, load.failed.Load())
	if f := load.failed.Load(); f != 0 {
		t.Errorf("%d requests failed during the rolling restart; first failures:\n%s", f, strings.Join(load.firstFailures(), "\n"))
	}
	if want := int64(0.9 * loadRate * loadTime.Seconds()); load.sent.Load() < want {
		t.Errorf("only %d requests were sent in %v, want at least %d", load.sent.Load(), loadTime, want)
	}

	// Every login without an ip is recorded under the client address that
	// HAProxy saw, never under HAProxy's own.
	for i, ip := range clientIPs {
		st, body := load.do(i, "POST", "/north/login", fmt.Sprintf(`{"username":"final-%d","password":"p"}`, i))
		if st != 200 || !tokenBody.MatchString(body) {
			t.Fatalf("final login from %s: %d %q", ip, st, body)
		}
	}
	found := map[string]string{}
	for _, in := range instances {
		for _, ns := range in.northServers(t) {
			if ns.IP == proxyIP {
				t.Errorf("instance %s recorded a login under HAProxy's address %s", in.name, proxyIP)
			}
			if strings.HasPrefix(ns.Username, "final-") {
				found[ns.Username] = ns.IP
			}
		}
	}
	for i, ip := range clientIPs {
		if got := found["final-"+strconv.Itoa(i)]; got != ip {
			t.Errorf("login final-%d from %s recorded under %q", i, ip, got)
		}
	}

	// /metrics agrees with HAProxy on how many requests each instance got.
	before := countsNow(t, sock, instances)
	const n = 200
	for i := 0; i < n; i++ {
		path, body, method := "/", "", "GET"
		if i%2 == 0 {
			path, body, method = "/north/login", `{"username":"count","password":"p","ip":"192.0.2.1"}`, "POST"
		}
		if st, _ := load.do(i, method, path, body); st != 200 {
			t.Fatalf("counting request %d: status %d", i, st)
		}
	}
	after := countsNow(t, sock, instances)
	total := 0
	for _, in := range instances {
		northdDelta := after[in.name].northd - before[in.name].northd
		haproxyDelta := after[in.name].haproxy - before[in.name].haproxy
		total += northdDelta
		if northdDelta != haproxyDelta {
			t.Errorf("instance %s: /metrics counted %d requests, HAProxy sent it %d", in.name, northdDelta, haproxyDelta)
		}
	}
	if total != n {
		t.Errorf("/metrics of both instances counted %d requests, the load sent %d", total, n)
	}
	if t.Failed() {
		t.Logf("haproxy log:\n%s", hapLog)
	}
}

// TestSecondSignalExitsAtOnce: a second SIGTERM during the drain delay ends
// northd without waiting.
func TestSecondSignalExitsAtOnce(t *testing.T) {
	in := &instance{name: "x", port: freePort(t), adminPort: freePort(t), drain: time.Minute}
	in.start(t)
	defer in.kill()
	in.cmd.Process.Signal(syscall.SIGTERM)
	waitFor(t, "drain to begin", 5*time.Second, func() bool { return strings.Contains(in.log.String(), "draining") })
	in.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-in.exited:
	case <-time.After(5 * time.Second):
		t.Fatal("northd still running 5s after a second SIGTERM")
	}
	if code := in.cmd.ProcessState.ExitCode(); code != 1 {
		t.Errorf("exit code %d after a second signal, want 1", code)
	}
}

type instance struct {
	name            string
	port, adminPort int
	drain           time.Duration
	cmd             *exec.Cmd
	log             *syncBuffer
	exited          chan struct{}
}

func (in *instance) start(t *testing.T) {
	t.Helper()
	drain := in.drain
	if drain == 0 {
		drain = drainTime
	}
	in.log = new(syncBuffer)
	in.cmd = exec.Command(bin,
		"-listen", "127.0.0.1:"+strconv.Itoa(in.port),
		"-admin", "127.0.0.1:"+strconv.Itoa(in.adminPort),
		"-proxy-protocol", "-trusted-proxies", proxyIP,
		"-drain-delay", drain.String(), "-shutdown-timeout", "5s")
	in.cmd.Stdout, in.cmd.Stderr = in.log, in.log
	if err := in.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	in.exited = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { cmd.Wait(); close(done) }(in.cmd, in.exited)
	waitFor(t, "northd "+in.name+" to start", 10*time.Second, func() bool {
		return strings.Contains(in.log.String(), "northd started")
	})
}

// restart drains and stops the instance with SIGTERM, checks it exited 0,
// starts it again and waits until HAProxy has it UP.
func (in *instance) restart(t *testing.T, sock string) {
	t.Helper()
	in.cmd.Process.Signal(syscall.SIGTERM)
	// The drain must take the instance out of rotation while it still
	// serves: HAProxy sees /readyz fail before the process is gone.
	markedDown := false
	for deadline := time.Now().Add(15 * time.Second); !markedDown; {
		select {
		case <-in.exited:
			t.Fatalf("instance %s exited before HAProxy marked it down:\n%s", in.name, in.log)
		default:
		}
		if st, err := haproxyStats(sock); err == nil && strings.HasPrefix(st[in.name]["status"], "DOWN") {
			markedDown = true
		}
		if time.Now().After(deadline) {
			t.Fatalf("HAProxy never marked draining instance %s down", in.name)
		}
		time.Sleep(20 * time.Millisecond)
	}
	select {
	case <-in.exited:
	case <-time.After(15 * time.Second):
		t.Fatalf("instance %s did not exit after SIGTERM:\n%s", in.name, in.log)
	}
	if code := in.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("instance %s exited %d:\n%s", in.name, code, in.log)
	}
	if !strings.Contains(in.log.String(), "stopped cleanly") {
		t.Errorf("instance %s: no clean shutdown line:\n%s", in.name, in.log)
	}
	in.start(t)
	waitFor(t, "instance "+in.name+" UP again", 10*time.Second, func() bool {
		st, err := haproxyStats(sock)
		return err == nil && st[in.name]["status"] == "UP"
	})
}

func (in *instance) kill() {
	if in.cmd != nil && in.cmd.Process != nil {
		in.cmd.Process.Kill()
		<-in.exited
	}
}

type northServer struct {
	IP       string `json:"ip"`
	Username string `json:"username"`
}

func (in *instance) northServers(t *testing.T) []northServer {
	t.Helper()
	resp, err := http.Get("http://127.0.0.1:" + strconv.Itoa(in.adminPort) + "/north/servers")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var report struct {
		Subsystems []struct {
			NorthServers []northServer `json:"north_servers"`
		} `json:"subsystems"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&report); err != nil {
		t.Fatal(err)
	}
	var all []northServer
	for _, s := range report.Subsystems {
		all = append(all, s.NorthServers...)
	}
	return all
}

var requestsLine = regexp.MustCompile(`(?m)^northd_requests_total\{[^}]*route="(home|login)"[^}]*\} (\d+)$`)

// metricRequests sums the home and login requests an instance counted.
func (in *instance) metricRequests(t *testing.T) int {
	t.Helper()
	resp, err := http.Get("http://127.0.0.1:" + strconv.Itoa(in.adminPort) + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	n := 0
	for _, m := range requestsLine.FindAllStringSubmatch(string(b), -1) {
		v, _ := strconv.Atoi(m[2])
		n += v
	}
	return n
}

type counts struct{ northd, haproxy int }

func countsNow(t *testing.T, sock string, instances []*instance) map[string]counts {
	t.Helper()
	st, err := haproxyStats(sock)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]counts{}
	for _, in := range instances {
		h := 0
		for _, col := range []string{"hrsp_1xx", "hrsp_2xx", "hrsp_3xx", "hrsp_4xx", "hrsp_5xx", "hrsp_other"} {
			v, _ := strconv.Atoi(st[in.name][col])
			h += v
		}
		out[in.name] = counts{northd: in.metricRequests(t), haproxy: h}
	}
	return out
}

// haproxyStats reads "show stat" from the stats socket: server name →
// column → value, for the northd backend's servers.
func haproxyStats(sock string) (map[string]map[string]string, error) {
	c, err := net.DialTimeout("unix", sock, time.Second)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	io.WriteString(c, "show stat\n")
	r := csv.NewReader(bufio.NewReader(c))
	r.FieldsPerRecord = -1
	rows, err := r.ReadAll()
	if err != nil || len(rows) == 0 {
		return nil, fmt.Errorf("show stat: %v", err)
	}
	header := rows[0]
	header[0] = strings.TrimPrefix(header[0], "# ")
	out := map[string]map[string]string{}
	for _, row := range rows[1:] {
		if len(row) < 2 || row[0] != "northd" {
			continue
		}
		m := map[string]string{}
		for i, col := range header {
			if i < len(row) {
				m[col] = row[i]
			}
		}
		out[row[1]] = m
	}
	return out, nil
}

func writeHAProxyConfig(t *testing.T, path, sock string, frontPort int, instances []*instance) {
	t.Helper()
	var servers strings.Builder
	for _, in := range instances {
		fmt.Fprintf(&servers, "    server %s 127.0.0.1:%d check\n", in.name, in.port)
	}
	// The same shape as deploy/haproxy.cfg, on loopback ports.
	cfg := fmt.Sprintf(`global
    stats socket %s mode 600 level admin
    maxconn 4096

defaults
    mode http
    timeout connect 2s
    timeout client 30s
    timeout server 30s
    retries 3
    option redispatch 1
    retry-on conn-failure empty-response response-timeout

frontend north
    bind 127.0.0.1:%d
    default_backend northd

backend northd
    balance roundrobin
    option httpchk GET /readyz
    http-check expect status 200
    default-server inter %dms fall 1 rise 2 send-proxy-v2 check-send-proxy source %s
%s`, sock, frontPort, checkInt.Milliseconds(), proxyIP, servers.String())
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
}

// load sends requests at a constant rate through HAProxy, from each of
// clientIPs in turn, and verifies every answer.
type load struct {
	front   string
	clients []*http.Client
	sent    atomic.Int64
	failed  atomic.Int64

	mu       sync.Mutex
	failures []string
}

func newLoad(front string) *load {
	l := &load{front: front}
	for _, ip := range clientIPs {
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 2 * time.Second}
		l.clients = append(l.clients, &http.Client{
			Timeout:   5 * time.Second,
			Transport: &http.Transport{DialContext: d.DialContext, MaxIdleConnsPerHost: 64},
		})
	}
	return l
}

func (l *load) do(i int, method, path, body string) (int, string) {
	req, _ := http.NewRequest(method, l.front+path, strings.NewReader(body))
	resp, err := l.clients[i%len(l.clients)].Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err.Error()
	}
	return resp.StatusCode, string(b)
}

func (l *load) run(ctx context.Context, rate int) {
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	sem := make(chan struct{}, 256) // bounds requests in flight
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		select {
		case sem <- struct{}{}:
		default:
			l.fail(fmt.Sprintf("request %d not sent: 256 requests already in flight", i))
			continue
		}
		l.sent.Add(1)
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if i%2 == 0 {
				st, body := l.do(i, "POST", "/north/login", fmt.Sprintf(`{"username":"load-%d","password":"p"}`, i))
				if st != 200 || !tokenBody.MatchString(body) {
					l.fail(fmt.Sprintf("login %d: %d %q", i, st, body))
				}
				return
			}
			if st, body := l.do(i, "GET", "/", ""); st != 200 || body != homeBody {
				l.fail(fmt.Sprintf("home %d: %d %q", i, st, body))
			}
		}()
	}
}

func (l *load) fail(msg string) {
	l.failed.Add(1)
	l.mu.Lock()
	if len(l.failures) < 10 {
		l.failures = append(l.failures, msg)
	}
	l.mu.Unlock()
}

func (l *load) firstFailures() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.failures...)
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func waitFor(t *testing.T, what string, limit time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", limit, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
