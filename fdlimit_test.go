package main

import (
	"bufio"
	"context"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"northd/internal/config"
	"northd/internal/testdeps"
)

// childArgsEnv carries northd's arguments, one a line, to the test binary
// run as a child process by runNorthdChild.
const childArgsEnv = "GO_TEST_NORTHD_CHILD_ARGS"

// TestNorthdChildProcess is northd itself when the test binary is run by
// runNorthdChild; otherwise it has nothing to do.
func TestNorthdChildProcess(t *testing.T) {
	args, ok := os.LookupEnv(childArgsEnv)
	if !ok {
		t.Skip("runs only as the child process of another test")
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	err := run(ctx, strings.Split(args, "\n"), os.LookupEnv, os.Stdin, os.Stdout, os.Stderr)
	if err != nil {
		os.Stderr.WriteString("northd: " + err.Error() + "\n")
		os.Exit(1)
	}
	os.Exit(0)
}

// northdChild is northd running in a child process.
type northdChild struct {
	addr   string
	log    *testdeps.SyncBuffer
	exited chan error // receives the process's end once
	cmd    *exec.Cmd
}

// startedLine is the child's log line that says it serves, and where.
var startedLine = regexp.MustCompile(`msg="northd started" listen=(\S+) admin=(\S+)`)

// runNorthdChild runs northd with args in a child process with at most
// nofile descriptors (prlimit), until the test ends, and returns once it
// listens.
func runNorthdChild(t *testing.T, nofile string, args ...string) *northdChild {
	t.Helper()
	prlimit := testdeps.Need(t, "prlimit", "util-linux")
	c := &northdChild{log: new(testdeps.SyncBuffer), exited: make(chan error, 1)}
	c.cmd = exec.Command(prlimit, "--nofile="+nofile, os.Args[0], "-test.run=^TestNorthdChildProcess$")
	c.cmd.Env = append(os.Environ(), childArgsEnv+"="+strings.Join(append([]string{"-listen", "127.0.0.1:0", "-admin", "off"}, args...), "\n"))
	c.cmd.Stdout, c.cmd.Stderr = c.log, c.log
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { c.exited <- c.cmd.Wait() }()
	t.Cleanup(func() {
		c.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-c.exited:
		case <-time.After(time.Minute):
			c.cmd.Process.Kill()
			t.Errorf("northd did not stop within a minute of SIGTERM:\n%s", c.log)
		}
	})
	c.waitForLog(t, `msg="northd started"`)
	m := startedLine.FindStringSubmatch(c.log.String())
	if m == nil {
		t.Fatalf("no listen address in the log:\n%s", c.log)
	}
	c.addr = m[1]
	return c
}

// waitForLog waits until the log holds want, and fails the test if northd
// exits first.
func (c *northdChild) waitForLog(t *testing.T, want string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute) // only a hang gets near it
	for !strings.Contains(c.log.String(), want) {
		select {
		case err := <-c.exited:
			t.Fatalf("northd exited (%v) before logging %q:\n%s", err, want, c.log)
		case <-time.After(5 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("northd did not log %q within a minute:\n%s", want, c.log)
		}
	}
}

// running fails the test if northd has exited.
func (c *northdChild) running(t *testing.T) {
	t.Helper()
	select {
	case err := <-c.exited:
		t.Fatalf("northd exited (%v):\n%s", err, c.log)
	default:
	}
}

// idleConns opens n connections to northd that send nothing, closed when
// the test ends (or by the caller).
func (c *northdChild) idleConns(t *testing.T, n int) []net.Conn {
	t.Helper()
	conns := make([]net.Conn, 0, n)
	for i := range n {
		conn, err := net.Dial("tcp", c.addr)
		if err != nil {
			c.running(t)
			t.Fatalf("connection %d: %v\n%s", i+1, err, c.log)
		}
		t.Cleanup(func() { conn.Close() })
		conns = append(conns, conn)
	}
	return conns
}

// get sends GET /healthz on a new connection and returns the status, or
// fails the test if no answer comes.
func get(t *testing.T, addr string) int {
	t.Helper()
	c := testdeps.DialKept(t, addr)
	c.SetDeadline(time.Now().Add(time.Minute)) // only a hang gets near it
	io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
	var resp fasthttp.Response
	if err := resp.Read(bufio.NewReader(c)); err != nil {
		t.Fatalf("GET /healthz: %v", err)
	}
	return resp.StatusCode()
}

// TestDescriptorExhaustionKeepsServing: with 160 descriptors and
// -max-conns above what they allow, more idle connections than that make
// accept fail ("too many open files"). northd logs it, keeps running, and
// answers again once connections close.
func TestDescriptorExhaustionKeepsServing(t *testing.T) {
	c := runNorthdChild(t, "160", "-max-conns", "1000", "-read-timeout", "10m", "-idle-timeout", "10m")
	held := c.idleConns(t, 200)
	c.waitForLog(t, "too many open files")
	if !strings.Contains(c.log.String(), `msg="cannot accept a connection; retrying"`) {
		t.Fatalf("the accept failure was not logged as retried:\n%s", c.log)
	}
	c.running(t)
	for _, h := range held {
		h.Close()
	}
	if st := get(t, c.addr); st != 200 {
		t.Fatalf("after the connections closed: status %d, want 200", st)
	}
	c.running(t)
	t.Logf("held 200 idle connections under 160 descriptors: northd logged %d failed accepts, kept running, and answered 200 once they closed", strings.Count(c.log.String(), "cannot accept a connection"))
	// An explicit -max-conns is kept, with a warning.
	c.waitForLog(t, `msg="-max-conns is above what the descriptor limit leaves for connections; past it, accepts fail and are retried" max_conns=1000 fits=96 descriptor_limit=160 reserved=64 subsystems=1`)
}

// TestDefaultMaxConnsFitsTheDescriptorLimit: without -max-conns, northd
// lowers the default to what 160 descriptors allow after its reserve, says
// so, and refuses the connections past it with 503 instead of running out.
func TestDefaultMaxConnsFitsTheDescriptorLimit(t *testing.T) {
	c := runNorthdChild(t, "160", "-read-timeout", "10m", "-idle-timeout", "10m")
	c.waitForLog(t, `msg="lowered the default -max-conns to fit the descriptor limit" max_conns=96 descriptor_limit=160 reserved=64 subsystems=1`)
	held := c.idleConns(t, 96)
	// Accepted in order, the held ones fill -max-conns; each of the
	// next is refused.
	for i := range 104 {
		if got := testdeps.ReadRefusal(t, c.addr); got != overloadedAnswer {
			t.Fatalf("connection %d past 96 held ones got %q, want the 503 refusal\n%s", 97+i, got, c.log)
		}
	}
	if strings.Contains(c.log.String(), "too many open files") {
		t.Fatalf("northd ran out of descriptors:\n%s", c.log)
	}
	for _, h := range held {
		h.Close()
	}
	testdeps.WaitFor(t, "a place freed by the closed connections", func() bool { return get(t, c.addr) == 200 })
	c.running(t)
}

// TestMaxConnsGiven: -max-conns counts as given on the command line or in
// the environment, and only then is it kept above the descriptor limit.
func TestMaxConnsGiven(t *testing.T) {
	for _, tt := range []struct {
		args []string
		env  map[string]string
		want bool
	}{
		{nil, nil, false},
		{[]string{"-max-conns", "1000"}, nil, true},
		{nil, map[string]string{"NORTHD_MAX_CONNS": "1000"}, true},
	} {
		cfg, err := config.Parse(tt.args, testdeps.EnvFrom(tt.env), io.Discard)
		if err != nil || cfg.MaxConnsGiven != tt.want {
			t.Errorf("%v %v: given %v, %v; want %v", tt.args, tt.env, cfg.MaxConnsGiven, err, tt.want)
		}
	}
}
