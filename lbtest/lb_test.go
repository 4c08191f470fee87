// Package lbtest runs the northd binary as operators do. Above all it
// proves northd behind a real load balancer: HAProxy on
// loopback in front of two northd processes speaking PROXY protocol, with a
// constant-rate verified load running, and a north server's event stream
// open through HAProxy while events are published, while each instance in
// turn is drained, stopped and started again: no request fails, and the
// stream moves to the other instance with no event lost or repeated. `make test-lb` runs it; `make test`
// runs it too when haproxy is installed and skips it, saying so, when not
// (under CI=true it fails instead: testdeps.Need).
//
// TestChaos (chaos_test.go, `make chaos`) runs the push under seeded
// faults, and lbtest/chaoscheck, which imports nothing of northd, holds
// what the receivers got to the push's promise. Its faults last a
// chosen time (a sleep is their length, never a synchronisation).
//
// No test here waits a fixed time for something to happen: each waits for
// the event itself (a log line, HAProxy's view of a server, the load's
// progress), under a generous bound that only a hang reaches.
package lbtest

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
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

	"northd/contract"
	"northd/internal/testdeps"
)

const (
	// HAProxy connects to northd from this address, and only it is
	// trusted; clients reach HAProxy from clientIPs. Without PROXY
	// protocol northd would see proxyIP for every login.
	proxyIP  = "127.0.0.9"
	loadRate = 300 // requests per second, at most
	checkInt = 200 * time.Millisecond
	// drainTime is the -drain-delay of the instances behind HAProxy. The
	// deployment rule is drain delay > fall × inter (here 1 × 200ms), so
	// that HAProxy takes an instance out of rotation before it stops; 25
	// times that leaves room for a slow machine. Whether HAProxy did see
	// the 503 first is checked afterwards, from its log.
	drainTime = 5 * time.Second
	// phaseRequests is how many answers the load must get between two
	// restarts, and after the last.
	phaseRequests = 600
	// patience bounds every wait: only a hang gets near it.
	patience = 2 * time.Minute
)

var clientIPs = []string{"127.0.0.1", "127.0.0.2", "127.0.0.3"}

// bin is the northd binary the tests run, built once by TestMain.
var bin string

func TestMain(m *testing.M) { testdeps.MainWithNorthd(m, "..", &bin) }

func TestBehindHAProxy(t *testing.T) {
	haproxy := testdeps.Need(t, "haproxy", "haproxy")
	if testing.Short() {
		t.Skip("-short: skipping the load-balancer test")
	}
	dir := t.TempDir()

	// Both instances keep tokens in one Redis, as one subsystem.
	redis := testdeps.StartRedis(t)
	instances := []*instance{{name: "a", store: redis.URL()}, {name: "b", store: redis.URL()}}
	startAll(t, instances)

	// HAProxy takes the front socket from us, already bound, as fd 3: no
	// port is left free between choosing it and binding it.
	frontLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	frontFile, err := frontLn.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	front := "http://" + frontLn.Addr().String()
	sock := filepath.Join(dir, "haproxy.sock")
	cfg := filepath.Join(dir, "haproxy.cfg")
	writeHAProxyConfig(t, cfg, sock, instances)
	hap := exec.Command(haproxy, "-db", "-f", cfg)
	hap.ExtraFiles = []*os.File{frontFile}
	hapLog := new(testdeps.SyncBuffer)
	hap.Stdout, hap.Stderr = hapLog, hapLog
	if err := hap.Start(); err != nil {
		t.Fatal(err)
	}
	frontFile.Close()
	frontLn.Close() // HAProxy holds the socket now
	t.Cleanup(func() { hap.Process.Kill(); hap.Wait() })
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("haproxy log:\n%s", hapLog)
		}
	})
	testdeps.WaitFor(t, "both instances UP in HAProxy", func() bool {
		st, err := haproxyStats(sock)
		return err == nil && st["a"]["status"] == "UP" && st["b"]["status"] == "UP"
	})

	// The load runs while each instance in turn is drained (SIGTERM with
	// a drain delay), stops, and is started again; each phase lasts until
	// the load has had phaseRequests more answers.
	ctx, stopLoad := context.WithCancel(context.Background())
	load := newLoad(t, front)
	loadDone := make(chan struct{})
	go func() { defer close(loadDone); load.run(ctx, loadRate) }()
	// Meanwhile a north server streams its events through HAProxy, and
	// the subsystem's software publishes to whichever instance is up.
	stream := startStream(t, strings.TrimPrefix(front, "http://"))
	pub := startPublisher(t, instances)
	load.awaitAnswers(t, phaseRequests)
	// The instance holding the stream restarts first, so that the stream
	// moves at each restart: to the other, then back.
	order := streamHolderFirst(t, instances)
	for _, in := range order {
		before := load.answered.Load()
		opens := stream.opens.Load()
		in.restart(t, sock)
		t.Logf("instance %s restarted while the load got %d answers", in.name, load.answered.Load()-before)
		load.awaitAnswers(t, phaseRequests)
		testdeps.WaitFor(t, "the stream to reconnect after instance "+in.name+"'s restart", func() bool { return stream.opens.Load() > opens })
	}
	stopLoad()
	<-loadDone
	published := pub.stop(t)
	stream.expect(t, published)
	t.Logf("stream: %d events published and received once each, in order, over %d connections through HAProxy", published, stream.opens.Load())

	t.Logf("load: %d requests sent, %d failed", load.sent.Load(), load.failed.Load())
	if f := load.failed.Load(); f != 0 {
		t.Errorf("%d requests failed during the rolling restart; first failures:\n%s", f, strings.Join(load.firstFailures(), "\n"))
	}
	// Each instance left rotation because /readyz said 503 while it was
	// still serving, never because it had stopped.
	for _, in := range instances {
		for _, line := range regexp.MustCompile(`Server northd/`+in.name+` is DOWN, reason: [^,]*(, code: \d+)?`).FindAllString(hapLog.String(), -1) {
			if !strings.HasSuffix(line, "reason: Layer7 wrong status, code: 503") {
				t.Errorf("HAProxy took instance %s out of rotation for another reason than its drain: %s", in.name, line)
			}
		}
		if n := strings.Count(hapLog.String(), "Server northd/"+in.name+" is DOWN, reason: Layer7 wrong status, code: 503"); n != 1 {
			t.Errorf("HAProxy logged instance %s down for its drain %d times, want once", in.name, n)
		}
	}

	// Every login without an ip is recorded under the client address that
	// HAProxy saw, never under HAProxy's own.
	for i, ip := range clientIPs {
		st, body := load.do(i, "POST", "/north/login", fmt.Sprintf(`{"username":"final-%d","password":"p"}`, i), "")
		if _, err := contract.LoginToken(body); st != 200 || err != nil {
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
		if st, _ := load.do(i, method, path, body, ""); st != 200 {
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
}

// TestSecondSignalExitsAtOnce: during the drain delay northd serves as
// usual but /readyz answers 503; a second SIGTERM then ends it without
// waiting for the drain to end.
func TestSecondSignalExitsAtOnce(t *testing.T) {
	in := &instance{name: "x", drain: time.Hour, plain: true}
	in.start(t)
	in.n.Signal(t, syscall.SIGTERM)
	in.n.WaitForLog(t, "draining")

	client := &http.Client{Timeout: patience}
	is := func(want string) func(string) bool { return func(body string) bool { return body == want } }
	for _, tt := range []struct {
		method, path, body string
		status             int
		answer             func(body string) bool
	}{
		{"GET", "/readyz", "", 503, is("draining: this instance is shutting down\n")},
		{"GET", "/healthz", "", 200, is("ok\n")},
		{"GET", "/", "", 200, is(contract.HomeBody)},
		{"POST", "/north/login", `{"username":"late","password":"p"}`, 200, func(body string) bool { _, err := contract.LoginToken(body); return err == nil }},
	} {
		a := testdeps.Call(t, client, tt.method, "http://"+in.listen+tt.path, "", tt.body)
		if a.Status != tt.status || !tt.answer(a.Body) {
			t.Errorf("%s %s while draining: %d %q, want %d and the contract's answer", tt.method, tt.path, a.Status, a.Body, tt.status)
		}
	}

	in.n.Signal(t, syscall.SIGTERM)
	var exit *exec.ExitError
	if err := in.n.Wait(t); !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Errorf("northd exited with %v after a second signal, want exit status 1", err)
	}
}

// instance is one northd process. Its first start takes free ports (port
// 0); a restart takes the same listen port again, which HAProxy's
// configuration names.
type instance struct {
	name   string
	drain  time.Duration
	plain  bool             // no PROXY protocol: clients talk to it directly
	store  string           // -store, with the subsystem named alarms; "" for memory
	extra  []string         // more flags
	listen string           // host:port, set by the first start and kept by every restart
	n      *testdeps.Northd // the process of the last start
	mu     sync.Mutex
	admin  string // host:port of the admin listener, which each start changes; read by others through adminAddr
}

// startAll starts the instances, and kills them when the test ends,
// showing their logs if it failed.
func startAll(t *testing.T, instances []*instance) {
	t.Helper()
	for _, in := range instances {
		in.start(t)
	}
	t.Cleanup(func() {
		for _, in := range instances {
			in.n.Kill()
			if t.Failed() {
				t.Logf("northd %s log:\n%s", in.name, in.n.Log())
			}
		}
	})
}

// start starts the instance, on the listen address of its first start if
// it had one, and kills it when the test ends: the tests here end their
// instances as a crash would, and look at a shutdown only where they ask
// for one.
func (in *instance) start(t *testing.T) {
	t.Helper()
	drain := in.drain
	if drain == 0 {
		drain = drainTime
	}
	listen := in.listen
	if listen == "" {
		listen = "127.0.0.1:0"
	}
	if in.store != "" {
		listen = "alarms=" + listen
	}
	args := []string{
		"-listen", listen, "-admin", "127.0.0.1:0",
		"-drain-delay", drain.String(), "-shutdown-timeout", "30s",
		// Streams through HAProxy carry a heartbeat well inside its
		// 30 s client and server timeouts.
		"-event-heartbeat", "1s",
	}
	if !in.plain {
		args = append(args, "-proxy-protocol-from", proxyIP)
	}
	if in.store != "" {
		args = append(args, "-store", in.store)
	}
	args = append(args, in.extra...)
	n := testdeps.StartNorthdWith(t, bin, testdeps.Options{}, args...)
	t.Cleanup(n.Kill) // before the harness's own cleanup, which would stop it
	if in.listen == "" {
		in.listen = n.Listen[0]
	} else if n.Listen[0] != in.listen {
		t.Fatalf("northd %s restarted on %s, want %s", in.name, n.Listen[0], in.listen)
	}
	in.n = n
	in.mu.Lock()
	in.admin = n.Admin
	in.mu.Unlock()
}

// adminAddr is the admin listener's address, which a restart changes.
func (in *instance) adminAddr() string {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.admin
}

// restart drains and stops the instance with SIGTERM, checks it exited 0
// after HAProxy took it out of rotation, starts it again and waits until
// HAProxy has it UP.
func (in *instance) restart(t *testing.T, sock string) {
	t.Helper()
	in.n.Signal(t, syscall.SIGTERM)
	// The drain takes the instance out of rotation while it still
	// serves; whether HAProxy saw the 503 first is read from its log.
	testdeps.WaitFor(t, "HAProxy to mark draining instance "+in.name+" down", func() bool {
		if in.n.Exited() {
			return true
		}
		st, err := haproxyStats(sock)
		return err == nil && strings.HasPrefix(st[in.name]["status"], "DOWN")
	})
	if err := in.n.Wait(t); err != nil {
		t.Fatalf("instance %s exited with %v after SIGTERM:\n%s", in.name, err, in.n.Log())
	}
	if !strings.Contains(in.n.Log(), "stopped cleanly") {
		t.Errorf("instance %s: no clean shutdown line:\n%s", in.name, in.n.Log())
	}
	in.start(t)
	testdeps.WaitFor(t, "instance "+in.name+" UP again", func() bool {
		st, err := haproxyStats(sock)
		return err == nil && st[in.name]["status"] == "UP"
	})
}

type northServer struct {
	IP       string `json:"ip"`
	Username string `json:"username"`
}

func (in *instance) northServers(t *testing.T) []northServer {
	t.Helper()
	a := testdeps.Call(t, http.DefaultClient, "GET", "http://"+in.adminAddr()+"/north/servers", "", "")
	var report struct {
		Subsystems []struct {
			NorthServers []northServer `json:"north_servers"`
		} `json:"subsystems"`
	}
	if err := json.Unmarshal([]byte(a.Body), &report); err != nil {
		t.Fatalf("GET /north/servers of %s: %d %q: %v", in.name, a.Status, a.Body, err)
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
	a := testdeps.Call(t, http.DefaultClient, "GET", "http://"+in.adminAddr()+"/metrics", "", "")
	n := 0
	for _, m := range requestsLine.FindAllStringSubmatch(a.Body, -1) {
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
	c, err := net.DialTimeout("unix", sock, patience)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(patience))
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

// writeHAProxyConfig writes a configuration whose front end is the socket
// HAProxy inherits as fd 3.
func writeHAProxyConfig(t *testing.T, path, sock string, instances []*instance) {
	t.Helper()
	var servers strings.Builder
	for _, in := range instances {
		fmt.Fprintf(&servers, "    server %s %s check\n", in.name, in.listen)
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
    bind fd@3
    default_backend northd

backend northd
    balance roundrobin
    option httpchk GET /readyz
    http-check expect status 200
    default-server inter %dms fall 1 rise 2 send-proxy-v2 check-send-proxy source %s
%s`, sock, checkInt.Milliseconds(), proxyIP, servers.String())
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
}

// load sends requests through HAProxy at up to a constant rate, from each
// of clientIPs in turn, and verifies every answer. At most 256 are in
// flight: past that it waits rather than sends, since a slow machine is
// not a failed request.
type load struct {
	tb       testing.TB
	front    string
	clients  []*http.Client
	sent     atomic.Int64
	answered atomic.Int64 // answers checked, good or bad
	failed   atomic.Int64

	mu       sync.Mutex
	failures []string
}

func newLoad(tb testing.TB, front string) *load {
	l := &load{tb: tb, front: front}
	for _, ip := range clientIPs {
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: patience}
		l.clients = append(l.clients, &http.Client{
			Timeout:   patience,
			Transport: &http.Transport{DialContext: d.DialContext, MaxIdleConnsPerHost: 64},
		})
	}
	return l
}

// do sends one request; bearer, when not "", goes in Authorization.
func (l *load) do(i int, method, path, body, bearer string) (int, string) {
	a, err := testdeps.Try(l.tb, l.clients[i%len(l.clients)], method, l.front+path, bearer, body)
	if err != nil {
		return 0, err.Error()
	}
	return a.Status, a.Body
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
		case <-ctx.Done():
			return
		case sem <- struct{}{}:
		}
		l.sent.Add(1)
		wg.Add(1)
		go func() {
			defer func() { l.answered.Add(1); <-sem; wg.Done() }()
			if i%2 == 0 {
				// A login, then a verification of its token through
				// the balancer, which sends it to either instance:
				// with the shared store both know every token.
				user := fmt.Sprintf("load-%d", i)
				st, body := l.do(i, "POST", "/north/login", `{"username":"`+user+`","password":"p","ip":"192.0.2.`+strconv.Itoa(i%250+1)+`"}`, "")
				token, err := contract.LoginToken(body)
				if st != 200 || err != nil {
					l.fail(fmt.Sprintf("login %d: %d %q", i, st, body))
					return
				}
				st, body = l.do(i, "GET", contract.VerifyPath, "", token)
				if _, err := contract.VerifyExpiresIn(body, contract.VerifyPrefix(user, "192.0.2."+strconv.Itoa(i%250+1))); st != 200 || err != nil {
					l.fail(fmt.Sprintf("verify %d: %d %q", i, st, body))
				}
				return
			}
			if st, body := l.do(i, "GET", "/", "", ""); st != 200 || body != contract.HomeBody {
				l.fail(fmt.Sprintf("home %d: %d %q", i, st, body))
			}
		}()
	}
}

// awaitAnswers waits until the load has had n more answers.
func (l *load) awaitAnswers(t *testing.T, n int64) {
	t.Helper()
	target := l.answered.Load() + n
	testdeps.WaitFor(t, fmt.Sprintf("%d more answers to the load", n), func() bool { return l.answered.Load() >= target })
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

// TestHangupReloads: SIGHUP, sent to a northd process of its own (never
// to the test binary, where every test would get it), reloads the users
// file, and a second user added to it logs in.
func TestHangupReloads(t *testing.T) {
	line := func(name, password string) string {
		r := testdeps.RunNorthd(t, bin, testdeps.Options{}, password+"\n", "hash-password")
		if r.Code != 0 {
			t.Fatalf("northd hash-password: exit %d\n%s", r.Code, r.Stderr)
		}
		return name + ":" + strings.TrimSpace(r.Stdout) + "\n"
	}
	users := testdeps.WriteUsersFile(t, line("first", "one"))
	n := testdeps.StartNorthd(t, bin, "-users", users)
	login := func(user, password string) int {
		return testdeps.Call(t, http.DefaultClient, "POST", "http://"+n.Listen[0]+"/north/login", "", `{"username":"`+user+`","password":"`+password+`"}`).Status
	}
	if st := login("second", "two"); st != 401 {
		t.Fatalf("a user not yet in the file: %d, want 401", st)
	}
	if err := os.WriteFile(users, []byte(line("first", "one")+line("second", "two")), 0o600); err != nil {
		t.Fatal(err)
	}
	n.Signal(t, syscall.SIGHUP)
	testdeps.WaitFor(t, "the users file loaded again", func() bool { return strings.Count(n.Log(), `"users file loaded"`) == 2 })
	if st := login("second", "two"); st != 200 {
		t.Errorf("the user added before SIGHUP: %d, want 200", st)
	}
}
