package main

// The end-to-end tests run northd as a separate process, the binary that
// `go build .` makes at the repository root, as an operator runs it:
// loadtest does not import the server (the root is package main, and the
// server's module does not carry loadtest's dependencies).
//
// bench/northd_test.go has the same harness; keep the two alike.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// northdBin is the server binary, built once by TestMain.
var northdBin string

// startTimeout and stopTimeout are generous: the machines that run these
// tests are shared and slow at times, and a start or a stop that takes
// this long is broken, not slow.
const (
	startTimeout = 30 * time.Second
	stopTimeout  = 30 * time.Second
)

func TestMain(m *testing.M) {
	os.Exit(buildAndRun(m))
}

func buildAndRun(m *testing.M) int {
	dir, err := os.MkdirTemp("", "northd-loadtest")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	northdBin = filepath.Join(dir, "northd")
	build := exec.Command("go", "build", "-o", northdBin, ".")
	build.Dir = ".." // the repository root: the server's module
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building northd: %v\n%s", err, out)
		return 1
	}
	return m.Run()
}

// northdProc is a running northd.
type northdProc struct {
	listen []string // the subsystems' addresses, with the ports chosen
	admin  string   // the admin address, or "disabled"
}

// startedLog is the fields of northd's JSON log line that says it listens.
type startedLog struct {
	Msg    string `json:"msg"`
	Listen string `json:"listen"`
	Admin  string `json:"admin"`
}

// startNorthd runs northd on free loopback ports, with the admin listener
// off unless args turn it on (a later flag wins: "-admin", "127.0.0.1:0"),
// until the test ends. It learns the ports from the "northd started" log
// line, reading stderr as it comes rather than polling, and keeps reading
// it afterwards so that northd never blocks on a full pipe. At the end it
// stops northd with SIGTERM and expects a clean exit.
func startNorthd(tb testing.TB, args ...string) *northdProc {
	tb.Helper()
	// -log-level info, whatever NORTHD_LOG_LEVEL says: the started line
	// is an info line.
	args = append([]string{"-listen", "127.0.0.1:0", "-admin", "off", "-log-format", "json", "-log-level", "info"}, args...)
	cmd := exec.Command(northdBin, args...)
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
	return &northdProc{listen: strings.Split(l.Listen, ","), admin: l.Admin}
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

// TestNorthdHarness checks that startNorthd learns every address northd
// listens on, the admin one included, and that each answers.
func TestNorthdHarness(t *testing.T) {
	off := startNorthd(t)
	if len(off.listen) != 1 || off.admin != "disabled" {
		t.Errorf("default: listen %q, admin %q; want one address and \"disabled\"", off.listen, off.admin)
	}
	p := startNorthd(t, "-listen", "127.0.0.1:0,127.0.0.1:0", "-admin", "127.0.0.1:0")
	if len(p.listen) != 2 || p.listen[0] == p.listen[1] {
		t.Fatalf("listen %q: want two addresses", p.listen)
	}
	client := &http.Client{Timeout: startTimeout}
	get := func(url string) (int, string) {
		t.Helper()
		resp, err := client.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, string(b)
	}
	for _, a := range append(p.listen, off.listen...) {
		if code, body := get("http://" + a + "/"); code != 200 || body != `<meta http-equiv="Content-Type" content="text/html; charset=utf-8"><h1>Home Page</h1>` {
			t.Errorf("GET http://%s/: %d %.80q", a, code, body)
		}
	}
	if code, body := get("http://" + p.admin + "/metrics"); code != 200 || !strings.Contains(body, "northd_") {
		t.Errorf("GET http://%s/metrics: %d %.200q", p.admin, code, body)
	}
}
