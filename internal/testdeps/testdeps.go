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
	"path/filepath"
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
	// noAOF starts the next redis-server without its append-only file,
	// so that it loads dump.rdb: RestartFromSnapshot.
	noAOF bool
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
	args := append([]string{"--port", strconv.Itoa(r.port), "--bind", "127.0.0.1", "--dir", r.dir,
		"--protected-mode", "yes"}, r.persistence...)
	if r.noAOF {
		args = append(args, "--appendonly", "no") // the last one given counts
	}
	cmd := exec.Command(r.bin, args...)
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

// SyncAOF makes every write redis-server has answered durable: it
// rewrites the append-only file from memory (BGREWRITEAOF, which fsyncs
// it) and returns once the rewrite is done. A Kill after it loses at most
// the writes answered since, as a crash of a Redis with appendfsync
// everysec may.
func (r *Redis) SyncAOF() {
	r.t.Helper()
	r.CLI("BGREWRITEAOF")
	r.waitInfo("the append-only file rewritten", "aof_rewrite_in_progress:0", "aof_rewrite_scheduled:0")
	if info := r.CLI("INFO", "persistence"); !strings.Contains(info, "aof_last_bgrewrite_status:ok") {
		r.t.Fatalf("BGREWRITEAOF failed:\n%s", info)
	}
}

// SaveSnapshot writes an RDB snapshot (SAVE) and keeps a copy of it
// aside, for RestartFromSnapshot to start from later: an operator
// restoring last night's backup.
func (r *Redis) SaveSnapshot() {
	r.t.Helper()
	r.CLI("SAVE")
	b, err := os.ReadFile(filepath.Join(r.dir, "dump.rdb"))
	if err != nil {
		r.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(r.dir, "snapshot.rdb"), b, 0o600); err != nil {
		r.t.Fatal(err)
	}
}

// RestartFromSnapshot kills redis-server if it runs, and starts it again
// from the snapshot SaveSnapshot kept, dropping its append-only file:
// every write since the snapshot is gone. It then turns the append-only
// file on again (CONFIG SET appendonly yes rewrites it from memory), so
// that a later Kill and Restart keep what it answers from then on.
func (r *Redis) RestartFromSnapshot() {
	r.t.Helper()
	r.Kill()
	b, err := os.ReadFile(filepath.Join(r.dir, "snapshot.rdb"))
	if err != nil {
		r.t.Fatalf("no snapshot to restart from (SaveSnapshot first): %v", err)
	}
	if err := os.RemoveAll(filepath.Join(r.dir, "appendonlydir")); err != nil {
		r.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(r.dir, "dump.rdb"), b, 0o600); err != nil {
		r.t.Fatal(err)
	}
	r.noAOF = true
	err = r.start()
	r.noAOF = false
	if err != nil {
		r.t.Fatalf("restarting redis-server from its snapshot: %v", err)
	}
	r.CLI("CONFIG", "SET", "appendonly", "yes")
	r.waitInfo("the append-only file written from the snapshot", "aof_enabled:1", "aof_rewrite_in_progress:0", "aof_rewrite_scheduled:0")
}

// waitInfo waits until INFO persistence holds every one of lines.
func (r *Redis) waitInfo(what string, lines ...string) {
	r.t.Helper()
	WaitFor(r.t, what, func() bool {
		info := strings.ReplaceAll(r.CLI("INFO", "persistence"), "\r", "")
		for _, l := range lines {
			if !strings.Contains(info, l+"\n") {
				return false
			}
		}
		return true
	})
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
