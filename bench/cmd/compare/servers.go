package main

import (
	"bytes"
	"cmp"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"northd/bench/internal/benchutil"
	"northd/contract"
)

// serverSpec says how to start one server under test.
type serverSpec struct {
	name string
	// about is one line for the report: what the server is.
	about string
	// argv builds the command for a port; a non-empty skip says why the
	// server cannot run on this machine.
	argv     func(o *options, port int) (argv []string, dir string, skip string)
	goServer bool
	// tls: the server answers HTTPS only.
	tls bool
	// redis: the server keeps its tokens in compare's redis-server
	// (store.go), whose commands and CPU are counted with its runs.
	redis bool
	// closes: the server answers one request per connection (HTTP/1.0),
	// so it is not measured on the pipelined routes.
	closes bool
	// describe, when set, is about for this run (it depends on the
	// options or on a file beside the binaries).
	describe func(o *options) string
}

// aboutFor is the report's line on what the server is.
func (s serverSpec) aboutFor(o *options) string {
	if s.describe != nil {
		return s.describe(o)
	}
	return s.about
}

// northdArgv is northd on port with the flags every northd of a
// comparison has, and extra.
func northdArgv(o *options, port int, extra ...string) ([]string, string, string) {
	return northdBinArgv(o, "northd", "make compare builds it", port, extra...)
}

// northdBinArgv is northdArgv for the binary name in o.bin; build says
// how to build it when it is not there.
func northdBinArgv(o *options, name, build string, port int, extra ...string) ([]string, string, string) {
	bin := filepath.Join(o.bin, name)
	if !isExecutable(bin) {
		return nil, "", bin + " is not built (" + build + ")"
	}
	return append([]string{bin, "-listen", addr(port), "-admin", "off", "-log-level", "warn"}, extra...), "", ""
}

// A northd built from a revision by bench.mk (northd-old always; northd
// too with make compare-ab NEW=<rev>) has beside it, in the binaries'
// directory, NAME.rev: the revision's hash, then its subject, one a line.
func revFile(o *options, name string) string { return filepath.Join(o.bin, name+".rev") }

// describeRev makes the report's words for the content of a .rev file:
// the hash shortened to 12 digits and the subject to 80 characters.
func describeRev(content string) string {
	hash, subject, _ := strings.Cut(strings.TrimSpace(content), "\n")
	hash, subject = strings.TrimSpace(hash), strings.TrimSpace(subject)
	if hash == "" {
		return "an unrecorded revision"
	}
	if len(hash) > 12 {
		hash = hash[:12]
	}
	if r := []rune(subject); len(r) > 80 {
		subject = string(r[:79]) + "…"
	}
	if subject == "" {
		return hash
	}
	return fmt.Sprintf("%s (“%s”)", hash, subject)
}

// builtRevision is the hash of the revision the binary name was built
// from, or "" (for northd: built from the working tree).
func builtRevision(o *options, name string) string {
	b, err := os.ReadFile(revFile(o, name))
	if err != nil {
		return ""
	}
	hash, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
	return strings.TrimSpace(hash)
}

// describeBuilt is "northd built from REV …" when the binary name has a
// .rev file, else "".
func describeBuilt(o *options, name, how string) string {
	b, err := os.ReadFile(revFile(o, name))
	if err != nil {
		return ""
	}
	return "northd built from " + describeRev(string(b)) + " by " + how
}

var specs = []serverSpec{
	{
		name:     "northd",
		about:    "this repository's server (the repository root, built into bin/bench/northd)",
		goServer: true,
		describe: func(o *options) string {
			if d := describeBuilt(o, "northd", "make compare-ab NEW=<rev>, in place of the working tree"); d != "" {
				return d
			}
			return "this repository's server (the working tree, built into bin/bench/northd)"
		},
		argv: func(o *options, port int) ([]string, string, string) {
			return northdArgv(o, port)
		},
	},
	{
		// not in the default list: northd trading a small allocation
		// per request for less memory per idle connection
		name:     "northd-reduce-memory",
		about:    "northd -reduce-memory (fasthttp ReduceMemoryUsage)",
		goServer: true,
		argv: func(o *options, port int) ([]string, string, string) {
			return northdArgv(o, port, "-reduce-memory")
		},
	},
	{
		// not in the default list, for the pairs (pairs.go): northd
		// checking credentials against a users file that holds the
		// user the wrk scripts log in as, so that their logins are
		// cached ones after the first
		name:     "northd-users",
		about:    "northd -users FILE, FILE holding the one user the wrk scripts log in as (north-1, password secret) with a bcrypt hash of cost 4",
		goServer: true,
		argv: func(o *options, port int) ([]string, string, string) {
			if o.auth == nil {
				return nil, "", errNoAuthFiles.Error()
			}
			return northdArgv(o, port, "-users", o.auth.users)
		},
	},
	{
		// not in the default list, for the pairs: northd over HTTPS
		name:     "northd-tls",
		about:    "northd -tls-cert FILE -tls-key FILE, in open mode, with a self-signed ECDSA P-256 certificate",
		goServer: true,
		tls:      true,
		argv: func(o *options, port int) ([]string, string, string) {
			if o.auth == nil {
				return nil, "", errNoAuthFiles.Error()
			}
			return northdArgv(o, port, "-tls-cert", o.auth.cert, "-tls-key", o.auth.key)
		},
	},
	{
		// not in the default list, for the pairs login-redis and
		// verify-redis: northd with its tokens and north servers in
		// the redis-server compare starts (store.go)
		name:     "northd-redis",
		about:    "northd -store redis://ADDR/0, in open mode; ADDR a throwaway redis-server (no persistence, loopback) that compare starts pinned to the load generator's CPU, beside wrk",
		goServer: true,
		redis:    true,
		argv: func(o *options, port int) ([]string, string, string) {
			if o.redis == nil {
				return nil, "", "no redis-server: " + cmp.Or(o.redisSkip, "compare did not start one")
			}
			return northdArgv(o, port, "-store", "redis://"+o.redis.addr()+"/0")
		},
	},
	{
		// not in the default list: northd built from an earlier revision
		// (make bench-build-old OLD=<rev>; make compare-ab builds it and
		// compares), so that northd ÷ northd-old is what a change did
		name:     "northd-old",
		goServer: true,
		describe: func(o *options) string {
			d := describeBuilt(o, "northd-old", "make bench-build-old")
			if d == "" {
				d = "northd built from an unrecorded revision"
			}
			return d + ", run with the same flags as northd: northd ÷ northd-old is what changed between them"
		},
		argv: func(o *options, port int) ([]string, string, string) {
			return northdBinArgv(o, "northd-old", "make bench-build-old OLD=<rev> builds it; make compare-ab does too", port)
		},
	},
	{
		name:     "floor",
		about:    "fasthttp, one handler writing a constant body per route (bench/peers/floor)",
		goServer: true,
		argv: func(o *options, port int) ([]string, string, string) {
			bin := filepath.Join(o.bin, "floor")
			if !isExecutable(bin) {
				return nil, "", bin + " is not built (make compare builds it)"
			}
			return []string{bin, "-listen", addr(port)}, "", ""
		},
	},
	{
		// not in the default list: the floor with northd's default
		// timeouts, to see what per-request deadlines cost
		name:     "floor-10s",
		about:    "the floor with ReadTimeout, WriteTimeout and IdleTimeout of 10s, as northd sets them (bench/peers/floor -timeout 10s)",
		goServer: true,
		argv: func(o *options, port int) ([]string, string, string) {
			bin := filepath.Join(o.bin, "floor")
			if !isExecutable(bin) {
				return nil, "", bin + " is not built (make compare builds it)"
			}
			return []string{bin, "-listen", addr(port), "-timeout", "10s"}, "", ""
		},
	},
	{
		name:     "nethttp",
		about:    "net/http + encoding/json + google/uuid, untuned (bench/peers/nethttp)",
		goServer: true,
		argv: func(o *options, port int) ([]string, string, string) {
			bin := filepath.Join(o.bin, "nethttp")
			if !isExecutable(bin) {
				return nil, "", bin + " is not built (make compare builds it)"
			}
			return []string{bin, "-listen", addr(port)}, "", ""
		},
	},
	{
		name:   "seed",
		about:  "the Python http.server seed, case restored (bench/peers/seed, python3)",
		closes: true,
		argv: func(o *options, port int) ([]string, string, string) {
			if _, err := exec.LookPath("python3"); err != nil {
				return nil, "", "python3 is not installed"
			}
			return []string{"python3", "serve.py", strconv.Itoa(port)}, "bench/peers/seed", ""
		},
	},
	{
		name: "nginx",
		describe: func(o *options) string {
			return fmt.Sprintf("nginx `return 200` with constant bodies, %s (bench/peers/nginx/nginx.conf)", plural(o.nginxWorkers(), "worker"))
		},
		argv: func(o *options, port int) ([]string, string, string) {
			if _, err := exec.LookPath("nginx"); err != nil {
				return nil, "", "nginx is not installed (make bench-tools installs it as root)"
			}
			tmpl, err := os.ReadFile("bench/peers/nginx/nginx.conf")
			if err != nil {
				return nil, "", err.Error()
			}
			dir, err := os.MkdirTemp("", "northd-bench-nginx-")
			if err != nil {
				return nil, "", err.Error()
			}
			conf := nginxConf(string(tmpl), dir, addr(port), o.nginxWorkers())
			if err := os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(conf), 0o644); err != nil {
				return nil, "", err.Error()
			}
			return []string{"nginx", "-p", dir, "-c", "nginx.conf"}, "", ""
		},
	},
}

// nginxConf fills in bench/peers/nginx/nginx.conf: its directory, the
// address it listens on and its worker processes.
func nginxConf(tmpl, prefix, listen string, workers int) string {
	return strings.NewReplacer("{{PREFIX}}", prefix, "{{LISTEN}}", listen, "{{WORKERS}}", strconv.Itoa(workers)).Replace(tmpl)
}

// plural is n and the noun, with an s unless n is 1.
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}

func addr(port int) string { return "127.0.0.1:" + strconv.Itoa(port) }

func isExecutable(path string) bool {
	st, err := os.Stat(path)
	return err == nil && !st.IsDir() && st.Mode()&0o111 != 0
}

// running is a started server.
type running struct {
	spec     serverSpec
	port     int
	cmd      *exec.Cmd
	argv     []string // as run, taskset included
	exited   chan struct{}
	log      *bytes.Buffer
	notes    []string // where it departs from the contract
	tempDir  string
	restarts int
	client   *http.Client // for compare's own requests (checkContract, route preparation)
	tlsInfo  string       // the TLS version and cipher suite checkContract saw
}

// baseURL is the server's scheme and address, without a path.
func (r *running) baseURL() string {
	if r.spec.tls {
		return "https://" + addr(r.port)
	}
	return "http://" + addr(r.port)
}

// exitReport says how a server that died ended, with the end of its log.
func (r *running) exitReport() string {
	st := "still running"
	if !r.alive() && r.cmd.ProcessState != nil {
		st = r.cmd.ProcessState.String()
	}
	log := strings.TrimSpace(r.log.String())
	if len(log) > 2000 {
		log = "…" + log[len(log)-2000:]
	}
	return fmt.Sprintf("%s (pid %d) %s; its log:\n%s", r.spec.name, r.cmd.Process.Pid, st, log)
}

func (r *running) alive() bool {
	select {
	case <-r.exited:
		return false
	default:
		return true
	}
}

// start runs spec pinned to the server CPUs and waits until it answers.
func start(o *options, spec serverSpec) (*running, string, error) {
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		port, err := benchutil.FreePort()
		if err != nil {
			return nil, "", err
		}
		argv, dir, skip := spec.argv(o, port)
		if skip != "" {
			return nil, skip, nil
		}
		full := append(append([]string{}, o.serverPin...), argv...)
		cmd := exec.Command(full[0], full[1:]...)
		cmd.Dir = dir
		cmd.Env = os.Environ()
		if spec.goServer {
			cmd.Env = append(cmd.Env, "GOMAXPROCS="+strconv.Itoa(o.serverProcs))
		}
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		logs := new(bytes.Buffer)
		cmd.Stdout = io.Discard
		cmd.Stderr = &limitedWriter{w: logs, left: 64 << 10}
		if err := cmd.Start(); err != nil {
			return nil, "", err
		}
		r := &running{spec: spec, port: port, cmd: cmd, argv: full, exited: make(chan struct{}), log: logs, client: httpClient(o.auth)}
		if spec.name == "nginx" {
			r.tempDir = argv[2]
		}
		go func() { cmd.Wait(); close(r.exited) }()
		if err := waitReady(r); err != nil {
			lastErr = err
			r.stop()
			continue
		}
		return r, "", nil
	}
	return nil, "", fmt.Errorf("%s did not start: %v", spec.name, lastErr)
}

func waitReady(r *running) error {
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if !r.alive() {
			return fmt.Errorf("exited: %s", strings.TrimSpace(r.log.String()))
		}
		c, err := net.DialTimeout("tcp", addr(r.port), time.Second)
		if err == nil {
			c.Close()
			// Make sure the server answering is the one we started.
			time.Sleep(100 * time.Millisecond)
			if !r.alive() {
				return fmt.Errorf("exited (port taken?): %s", strings.TrimSpace(r.log.String()))
			}
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return errors.New("not listening after 15s")
}

// stop ends the server's process group and waits for it.
func (r *running) stop() {
	stopGroup(r.cmd, r.exited, 5*time.Second)
	if r.tempDir != "" {
		os.RemoveAll(r.tempDir)
	}
}

// cpuTicks is the CPU time (utime+stime, clock ticks) of the server
// process and its children (nginx's worker).
func (r *running) cpuTicks() int64 {
	pid := r.cmd.Process.Pid
	total := procTicks(pid)
	kids, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	for _, f := range strings.Fields(string(kids)) {
		if k, err := strconv.Atoi(f); err == nil {
			total += procTicks(k)
		}
	}
	return total
}

func procTicks(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// fields after the command, which is in parentheses
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	s, _ := strconv.ParseInt(f[12], 10, 64)
	return u + s
}

// clockTicks is USER_HZ, 100 on every Linux this runs on.
const clockTicks = 100

// checkContract asks the server for each route once and notes where it
// departs from northd's wire contract (northd/contract, which loadtest and
// lbtest check too). A server that gets a route wrong (status or body, the
// token's form included) is an error: comparing it would not be like for
// like.
func checkContract(r *running) ([]string, error) {
	base := r.baseURL()
	client := r.client
	defer client.CloseIdleConnections()
	var notes []string
	type probe struct {
		method, path, body string
		status             int
		ctype              string
		check              func(string) error
	}
	exactly := func(want string) func(string) error {
		return func(s string) error {
			if s != want {
				return errors.New("not the contract's body")
			}
			return nil
		}
	}
	probes := []probe{
		{"GET", "/", "", 200, contract.ContentTypeHTML, exactly(contract.HomeBody)},
		{"POST", "/north/login", `{"username": "north-1", "password": "secret", "ip": "192.0.2.10"}`, 200,
			contract.ContentTypeJSON, func(s string) error { _, err := contract.LoginToken(s); return err }},
		{"GET", "/favicon.ico", "", 404, contract.ContentTypeHTML, exactly(contract.NotFoundBody)},
	}
	tokens := map[string]bool{}
	for _, p := range probes {
		req, _ := http.NewRequest(p.method, base+p.path, strings.NewReader(p.body))
		if p.body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := client.Do(req)
		if err != nil {
			return notes, fmt.Errorf("%s %s: %v", p.method, p.path, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		bodyErr := p.check(string(body))
		switch {
		case resp.StatusCode != p.status:
			return notes, fmt.Errorf("%s %s: status %d, want %d", p.method, p.path, resp.StatusCode, p.status)
		case bodyErr != nil:
			return notes, fmt.Errorf("%s %s: %v: body %.100q", p.method, p.path, bodyErr, body)
		case resp.Header.Get("Content-Type") != p.ctype:
			notes = append(notes, fmt.Sprintf("%s %s: Content-Type %q", p.method, p.path, resp.Header.Get("Content-Type")))
		case resp.Header.Get("Cache-Control") != contract.CacheControl:
			notes = append(notes, fmt.Sprintf("%s %s: no Cache-Control: no-store", p.method, p.path))
		}
		if p.path == "/north/login" {
			tokens[string(body)] = true
			if resp.TLS != nil {
				r.tlsInfo = fmt.Sprintf("%s, %s with Go's client", tls.VersionName(resp.TLS.Version), tls.CipherSuiteName(resp.TLS.CipherSuite))
			}
			if resp.Proto != "HTTP/1.1" {
				notes = append(notes, "answers "+resp.Proto+", one request per connection (wrk reconnects for every request and counts each close as a read error)")
			}
			if s := resp.Header.Get("Server"); s != "" {
				notes = append(notes, fmt.Sprintf("sends a Server header (%q)", s))
			}
		}
	}
	// a second login: is the token random?
	resp, err := client.Post(base+"/north/login", "application/json",
		strings.NewReader(`{"username": "north-1", "password": "secret", "ip": "192.0.2.10"}`))
	if err == nil {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if tokens[string(body)] {
			notes = append(notes, "login token is a constant (no JSON decoding, no random token)")
		}
	}
	return notes, nil
}

// limitedWriter keeps the first left bytes written to it.
type limitedWriter struct {
	w    io.Writer
	left int
}

func (l *limitedWriter) Write(p []byte) (int, error) {
	n := len(p)
	if l.left > 0 {
		q := p
		if len(q) > l.left {
			q = q[:l.left]
		}
		l.w.Write(q)
		l.left -= len(q)
	}
	return n, nil
}

// stopGroup ends the process group cmd leads, unless it has exited
// already (exited is closed then): SIGTERM, and SIGKILL after grace.
func stopGroup(cmd *exec.Cmd, exited <-chan struct{}, grace time.Duration) {
	select {
	case <-exited:
		return
	default:
	}
	syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(grace):
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
	}
}
