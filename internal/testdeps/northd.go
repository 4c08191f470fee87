package testdeps

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
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
)

// MainWithNorthd is a TestMain for the tools' modules: it builds northd
// from root into *bin, runs the tests, removes the build and exits.
func MainWithNorthd(m *testing.M, root string, bin *string) {
	b, remove, err := BuildNorthd(root)
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
// temporary directory, for tests that run northd as an operator does: as a
// process of its own. The tools' modules (bench, loadtest) do not import
// the server; the root is package main. Call remove when done.
func BuildNorthd(root string) (bin string, remove func(), err error) {
	dir, err := os.MkdirTemp("", "northd-test")
	if err != nil {
		return "", nil, err
	}
	bin = filepath.Join(dir, "northd")
	build := exec.Command("go", "build", "-o", bin, ".")
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
// stops northd with SIGTERM and expects a clean exit.
func StartNorthd(tb testing.TB, bin string, args ...string) *Northd {
	tb.Helper()
	// -log-level info, whatever NORTHD_LOG_LEVEL says: the started line
	// is an info line.
	args = append([]string{"-listen", "127.0.0.1:0", "-admin", "off", "-log-format", "json", "-log-level", "info"}, args...)
	cmd := exec.Command(bin, args...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatalf("starting northd: %v", err)
	}
	log := new(capturedLog)
	started := make(chan startedLog, 1)
	drained := make(chan struct{}) // closed when stderr ends: northd exited
	go func() {
		defer close(drained)
		r := bufio.NewReader(stderr)
		seen := false
		for {
			line, err := r.ReadBytes('\n')
			log.add(line)
			var l startedLog
			if !seen && json.Unmarshal(line, &l) == nil && l.Msg == "northd started" {
				seen = true
				started <- l
			}
			if err != nil {
				return
			}
		}
	}()

	var l startedLog
	select {
	case l = <-started:
	case <-drained:
		select {
		case l = <-started: // the line came, then northd exited at once
		default:
			err := cmd.Wait()
			tb.Fatalf("northd %s exited before it listened: %v\n%s", strings.Join(args, " "), err, log)
		}
	case <-time.After(startTimeout):
		cmd.Process.Kill()
		<-drained
		cmd.Wait()
		tb.Fatalf("northd %s did not log \"northd started\" within %v\n%s", strings.Join(args, " "), startTimeout, log)
	}
	tb.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-drained:
		case <-time.After(stopTimeout):
			tb.Errorf("northd did not exit within %v of SIGTERM; killing it\n%s", stopTimeout, log)
			cmd.Process.Kill()
			<-drained
		}
		if err := cmd.Wait(); err != nil {
			tb.Errorf("northd exited with %v after SIGTERM\n%s", err, log)
		}
	})
	if l.Listen == "" {
		tb.Fatalf("northd logged no listen addresses\n%s", log)
	}
	return &Northd{Listen: strings.Split(l.Listen, ","), Admin: l.Admin}
}

// capturedLog keeps the first logLimit bytes of northd's log, for failure
// messages; the rest is read and dropped.
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

func (t *capturedLog) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return "northd's log:\n" + t.buf.String()
}
