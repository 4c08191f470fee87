package testdeps

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// startTimeout and stopTimeout are generous: the machines that run these
// tests are shared and slow at times, and a start or a stop that takes
// this long is broken, not slow.
const (
	startTimeout = 30 * time.Second
	stopTimeout  = 30 * time.Second
	// waitTimeout bounds Wait, which may span a drain and a shutdown the
	// test chose the length of.
	waitTimeout = 2 * time.Minute
)

// MainWithNorthd is a TestMain for the tests that run northd as an
// operator does, as a process of its own (e2e, lbtest, the tools' modules):
// it builds northd from root into *bin with the go build flags given, runs
// the tests, removes the build and exits.
func MainWithNorthd(m *testing.M, root string, bin *string, buildFlags ...string) {
	b, remove, err := BuildNorthd(root, buildFlags...)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	*bin = b
	code := m.Run()
	remove()
	os.Exit(code)
}

// BuildNorthd builds the server from the repository root, root, into a
// temporary directory, with the go build flags given (e2e passes -race
// under the race detector, so that northd runs under it too), for tests
// that run northd as a process of its own. The tools' modules (bench,
// loadtest) do not import the server; the root is package main. Call
// remove when done.
func BuildNorthd(root string, buildFlags ...string) (bin string, remove func(), err error) {
	dir, err := os.MkdirTemp("", "northd-test")
	if err != nil {
		return "", nil, err
	}
	bin = filepath.Join(dir, "northd")
	build := exec.Command("go", append(append([]string{"build"}, buildFlags...), "-o", bin, ".")...)
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return "", nil, fmt.Errorf("building northd: %v\n%s", err, out)
	}
	return bin, func() { os.RemoveAll(dir) }, nil
}

// Northd is a running northd.
type Northd struct {
	Listen []string // the subsystems' addresses, with the ports chosen
	Admin  string   // the admin address, or "disabled"

	cmd     *exec.Cmd
	log     *capturedLog
	exited  chan struct{} // closed once northd has exited and waitErr is set
	waitErr error         // how it exited: nil for status 0, else an *exec.ExitError
	stopped bool          // Stop, Kill or Wait was called: the cleanup has nothing left to do
}

// Options are what a test may set on the northd process beyond its flags.
type Options struct {
	// Env is added to the test's environment, from which every NORTHD_
	// variable is removed first: only what the test gives steers northd.
	Env []string
	// NoFile, when not 0, is the descriptor limit northd runs under
	// (prlimit --nofile, from util-linux).
	NoFile int
}

// startedLog is the fields of northd's JSON log line that says it listens.
type startedLog struct {
	Msg    string `json:"msg"`
	Listen string `json:"listen"`
	Admin  string `json:"admin"`
}

// StartNorthd runs the northd binary bin on free loopback ports, with the admin listener
// off unless args turn it on (a later flag wins: "-admin", "127.0.0.1:0"),
// until the test ends. It learns the ports from the "northd started" log
// line, reading stderr as it comes rather than polling, and keeps reading
// it afterwards so that northd never blocks on a full pipe. At the end it
// stops northd with SIGTERM and expects a clean exit, unless the test
// stopped it itself (Stop, Kill or Wait).
func StartNorthd(tb testing.TB, bin string, args ...string) *Northd {
	tb.Helper()
	return StartNorthdWith(tb, bin, Options{}, args...)
}

// StartNorthdWith is StartNorthd with the process's environment and limits
// set by opt.
func StartNorthdWith(tb testing.TB, bin string, opt Options, args ...string) *Northd {
	tb.Helper()
	// -log-level info, whatever NORTHD_LOG_LEVEL says: the started line
	// is an info line.
	args = append([]string{"-listen", "127.0.0.1:0", "-admin", "off", "-log-format", "json", "-log-level", "info"}, args...)
	cmd := northdCommand(tb, bin, opt, args)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatalf("starting northd: %v", err)
	}
	n := &Northd{cmd: cmd, log: new(capturedLog), exited: make(chan struct{})}
	started := make(chan startedLog, 1)
	go func() {
		r := bufio.NewReader(stderr)
		seen := false
		for {
			line, err := r.ReadBytes('\n')
			n.log.add(line)
			var l startedLog
			if !seen && json.Unmarshal(line, &l) == nil && l.Msg == "northd started" {
				seen = true
				started <- l
			}
			if err != nil {
				break
			}
		}
		// Wait only once stderr is read to its end, as os/exec asks.
		n.waitErr = cmd.Wait()
		close(n.exited)
	}()

	var l startedLog
	select {
	case l = <-started:
	case <-n.exited:
		select {
		case l = <-started: // the line came, then northd exited at once
		default:
			tb.Fatalf("northd %s exited before it listened: %v\n%s", strings.Join(args, " "), n.waitErr, n.log)
		}
	case <-time.After(startTimeout):
		cmd.Process.Kill()
		<-n.exited
		tb.Fatalf("northd %s did not log \"northd started\" within %v\n%s", strings.Join(args, " "), startTimeout, n.log)
	}
	tb.Cleanup(func() {
		if n.stopped {
			return
		}
		if err := n.Stop(tb); err != nil {
			tb.Errorf("northd exited with %v after SIGTERM\n%s", err, n.log)
		}
	})
	if l.Listen == "" {
		tb.Fatalf("northd logged no listen addresses\n%s", n.log)
	}
	n.Listen, n.Admin = strings.Split(l.Listen, ","), l.Admin
	return n
}

// northdCommand is bin with args, its environment and limits set by opt:
// the one way the tests make a northd process.
func northdCommand(tb testing.TB, bin string, opt Options, args []string) *exec.Cmd {
	tb.Helper()
	if opt.NoFile != 0 {
		prlimit := Need(tb, "prlimit", "util-linux")
		// prlimit sets the limit on itself and execs northd: the pid
		// stays northd's.
		args = append([]string{"--nofile=" + strconv.Itoa(opt.NoFile), bin}, args...)
		bin = prlimit
	}
	cmd := exec.Command(bin, args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "NORTHD_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, opt.Env...)
	return cmd
}

// Pid is northd's process id: for a signal, or to read /proc.
func (n *Northd) Pid() int { return n.cmd.Process.Pid }

// Signal sends sig to northd (SIGHUP reloads it).
func (n *Northd) Signal(tb testing.TB, sig os.Signal) {
	tb.Helper()
	if err := n.cmd.Process.Signal(sig); err != nil {
		tb.Fatalf("signalling northd: %v", err)
	}
}

// Log is what northd has logged so far (its standard error, JSON lines),
// up to its first MiB.
func (n *Northd) Log() string { return n.log.text() }

// WaitForLog waits until northd's log holds want, failing the test if
// northd exits first, or after the two minutes only a hang reaches.
func (n *Northd) WaitForLog(tb testing.TB, want string) {
	tb.Helper()
	WaitFor(tb, "northd to log "+want, func() bool {
		if strings.Contains(n.log.text(), want) {
			return true
		}
		if n.Exited() {
			tb.Fatalf("northd exited (%v) before logging %q\n%s", n.waitErr, want, n.log)
		}
		return false
	})
}

// Exited says whether northd has exited.
func (n *Northd) Exited() bool {
	select {
	case <-n.exited:
		return true
	default:
		return false
	}
}

// Stop sends northd SIGTERM and waits for it to exit, killing it if it
// has not within 30 s (and failing the test). It returns how northd
// exited: nil for status 0, else an *exec.ExitError. Stop before the end
// of the test, to look at a shutdown; the cleanup then does nothing.
func (n *Northd) Stop(tb testing.TB) error {
	tb.Helper()
	n.stopped = true
	n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-n.exited:
	case <-time.After(stopTimeout):
		tb.Errorf("northd did not exit within %v of SIGTERM; killing it\n%s", stopTimeout, n.log)
		n.cmd.Process.Kill()
		<-n.exited
	}
	return n.waitErr
}

// Kill ends northd at once with SIGKILL, as a crash would, even while it
// is stopped (SIGSTOP), and returns once it has exited; the cleanup then
// does nothing. A northd that has already exited is left as it is.
func (n *Northd) Kill() {
	n.stopped = true
	n.cmd.Process.Kill()
	<-n.exited
}

// Wait returns once northd has exited by itself or on a signal the test
// sent (Signal), and how it exited, as Stop does; the cleanup then does
// nothing. After the two minutes only a hang reaches it kills northd and
// fails the test.
func (n *Northd) Wait(tb testing.TB) error {
	tb.Helper()
	n.stopped = true
	select {
	case <-n.exited:
	case <-time.After(waitTimeout):
		n.cmd.Process.Kill()
		<-n.exited
		tb.Fatalf("northd still running %v after the test expected it to exit; killed it\n%s", waitTimeout, n.log)
	}
	return n.waitErr
}

// Ran is how a run of northd that ends by itself went: a command
// (hash-password), or a configuration northd refuses to start with.
type Ran struct {
	Code           int // the exit status
	Stdout, Stderr string
}

// RunNorthd runs bin with args, stdin on its standard input, and the
// environment opt sets, and returns once it exits; a northd still running
// after 30 s (a configuration wrongly accepted serves on) is killed, and
// the test fails.
func RunNorthd(tb testing.TB, bin string, opt Options, stdin string, args ...string) Ran {
	tb.Helper()
	cmd := northdCommand(tb, bin, opt, args)
	var stdout, stderr bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = strings.NewReader(stdin), &stdout, &stderr
	if err := cmd.Start(); err != nil {
		tb.Fatalf("starting northd: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(startTimeout):
		cmd.Process.Kill()
		<-done
		tb.Fatalf("northd %s was still running after %v\n%s", strings.Join(args, " "), startTimeout, stderr.String())
	}
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		tb.Fatalf("running northd %s: %v", strings.Join(args, " "), err)
	}
	return Ran{cmd.ProcessState.ExitCode(), stdout.String(), stderr.String()}
}

// capturedLog keeps the first logLimit bytes of northd's log, for the
// tests to read and for failure messages; the rest is read and dropped.
type capturedLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

const logLimit = 1 << 20

func (t *capturedLog) add(line []byte) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.buf.Len()+len(line) <= logLimit {
		t.buf.Write(line)
	}
}

func (t *capturedLog) text() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.buf.String()
}

func (t *capturedLog) String() string { return "northd's log:\n" + t.text() }
