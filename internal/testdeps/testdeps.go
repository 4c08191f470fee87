// Package testdeps gives tests the real programs they run against (Redis,
// HAProxy, htpasswd): it finds them, or skips the test saying how to
// install them, and under CI=true fails it instead, so that CI cannot pass
// without its real parts.
package testdeps

import (
	"bufio"
	"errors"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Need returns the path of a program a test needs. Where it is missing the
// test is skipped, saying how to install it; under CI=true it fails
// instead.
func Need(t testing.TB, name, debianPackage string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	msg := name + " is not installed (apt-get install " + debianPackage + ")"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg + "; CI must run this test")
	}
	t.Skip(msg + "; skipping")
	return ""
}

// CLI runs one command with redis-cli against r and returns its
// output.
func (r *Redis) CLI(args ...string) string {
	r.t.Helper()
	out, err := exec.Command(Need(r.t, "redis-cli", "redis-tools"), append([]string{"-p", strconv.Itoa(r.port)}, args...)...).Output()
	if err != nil {
		r.t.Fatalf("redis-cli %v: %v", args, err)
	}
	return string(out)
}

// Redis is a real redis-server on a loopback port, in a temporary
// directory, stopped when the test ends. It writes every command to its
// append-only file before it answers, so a restart after Kill keeps what it
// acknowledged. It fsyncs that file once a second, Redis's default, not on
// every write: with --appendfsync always each write waits for the disk,
// which on a busy machine stalls Redis past a second at times, and every
// northd sharing it then sees its store time out at once.
type Redis struct {
	t           *testing.T
	bin         string
	dir         string
	port        int
	persistence []string // redis-server's arguments saying how it keeps its data
	cmd         *exec.Cmd
	done        chan struct{}
}

// StartRedis starts redis-server on a free loopback port, or skips (fails
// under CI=true) the test when it is not installed.
func StartRedis(t *testing.T) *Redis {
	t.Helper()
	return startRedis(t, "--save", "", "--appendonly", "yes", "--appendfsync", "everysec")
}

// StartRedisSnapshots is StartRedis keeping its data in the snapshot a
// SAVE writes alone, with no append-only file: a restart after Kill comes
// back as of the last SAVE, as a Redis restored from an older backup does.
func StartRedisSnapshots(t *testing.T) *Redis {
	t.Helper()
	return startRedis(t, "--save", "", "--appendonly", "no")
}

func startRedis(t *testing.T, persistence ...string) *Redis {
	t.Helper()
	r := &Redis{t: t, bin: Need(t, "redis-server", "redis-server"), dir: t.TempDir(), persistence: persistence}
	// A free port is found by listening on port 0; should another
	// process take it before redis-server does, it says so and another
	// is tried.
	for try := 0; ; try++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		r.port = ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		err = r.start()
		if err == nil {
			break
		}
		if try == 5 || !strings.Contains(err.Error(), "in use") {
			t.Fatalf("starting redis-server: %v", err)
		}
	}
	t.Cleanup(r.Kill)
	return r
}

// Addr is host:port.
func (r *Redis) Addr() string { return "127.0.0.1:" + strconv.Itoa(r.port) }

// URL is what -store takes.
func (r *Redis) URL() string { return "redis://" + r.Addr() + "/0" }

// start runs redis-server and returns once it accepts connections, as it
// says on its standard output.
func (r *Redis) start() error {
	cmd := exec.Command(r.bin, append([]string{"--port", strconv.Itoa(r.port), "--bind", "127.0.0.1", "--dir", r.dir,
		"--protected-mode", "yes"}, r.persistence...)...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	ready := make(chan error, 1)
	done := make(chan struct{})
	go func() {
		var log strings.Builder
		sc := bufio.NewScanner(out)
		sent := false
		for sc.Scan() {
			if !sent {
				log.WriteString(sc.Text() + "\n")
			}
			if !sent && strings.Contains(sc.Text(), "Ready to accept connections") {
				ready <- nil
				sent = true
			}
		}
		cmd.Wait()
		if !sent {
			ready <- errors.New(log.String())
		}
		close(done)
	}()
	select {
	case err := <-ready:
		if err != nil {
			return err
		}
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		return errors.New("redis-server did not say it was ready within 30 s")
	}
	r.cmd, r.done = cmd, done
	return nil
}

// Kill ends redis-server at once, as a crash would.
func (r *Redis) Kill() {
	if r.cmd != nil {
		r.cmd.Process.Kill()
		<-r.done
		r.cmd = nil
	}
}

// Stop ends redis-server as an operator's restart does (SIGTERM): it
// writes its append-only file out and exits. Kill, a crash, may lose the
// writes of the last second that were answered but not yet written out.
func (r *Redis) Stop() {
	r.t.Helper()
	r.signal(syscall.SIGTERM)
	<-r.done
	r.cmd = nil
}

// Pause stops redis-server (SIGSTOP) without closing its connections, as
// a hung store would: calls wait, then time out. Resume lets it go on, and
// it then executes what it read while paused.
func (r *Redis) Pause() {
	r.t.Helper()
	r.signal(syscall.SIGSTOP)
	r.t.Cleanup(func() {
		if r.cmd != nil {
			r.cmd.Process.Signal(syscall.SIGCONT)
		}
	})
}

// Resume continues a paused redis-server (SIGCONT).
func (r *Redis) Resume() { r.signal(syscall.SIGCONT) }

func (r *Redis) signal(sig syscall.Signal) {
	r.t.Helper()
	if r.cmd == nil {
		r.t.Fatalf("redis-server is not running")
	}
	if err := r.cmd.Process.Signal(sig); err != nil {
		r.t.Fatalf("signalling redis-server: %v", err)
	}
}

// Restart starts it again on the same port and directory.
func (r *Redis) Restart() {
	r.t.Helper()
	if err := r.start(); err != nil {
		r.t.Fatalf("restarting redis-server: %v", err)
	}
}

// WaitFor polls cond until it holds, failing the test after two minutes
// that only a hang reaches: tests wait for events, never for a time.
func WaitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// NoEnv is an empty environment, read as os.LookupEnv reads the real one.
func NoEnv(string) (string, bool) { return "", false }

// EnvFrom is an environment of the given variables, read as os.LookupEnv
// reads the real one.
func EnvFrom(env map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := env[k]
		return v, ok
	}
}

// SyncBuffer is a log sink a test can read while a server writes to it.
type SyncBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
