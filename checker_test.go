package main

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/VictoriaMetrics/metrics"
	"golang.org/x/sys/unix"

	"northd/internal/testdeps"
)

const (
	hashBusyBody503    = `{"code": 4, "token": "", "description": "too many logins are waiting for a password check; retry after the Retry-After seconds"}`
	checkerDownBody503 = `{"code": 4, "token": "", "description": "the password checker is restarting; retry after the Retry-After seconds"}`
)

// A request frame, byte for byte: length, id, hash length, hash, password.
func TestCheckRequestFrame(t *testing.T) {
	h, err := parsePasswordHash(bcrypt2ySecret)
	if err != nil {
		t.Fatal(err)
	}
	frame := appendCheckRequest(nil, 0x0102030405060708, h, []byte("pw"))
	want := "\x00\x00\x00\x48" + "\x01\x02\x03\x04\x05\x06\x07\x08" + "\x00\x3c" + bcrypt2ySecret + "pw"
	if string(frame) != want {
		t.Fatalf("frame\n%q, want\n%q", frame, want)
	}
	// argon2id goes as its PHC string, as the users file has it.
	h, err = parsePasswordHash(argon2idSecret)
	if err != nil {
		t.Fatal(err)
	}
	body, err := readCheckFrame(bytes.NewReader(appendCheckRequest(nil, 7, h, []byte("secret"))), nil)
	if err != nil {
		t.Fatal(err)
	}
	id, hash, password, err := parseCheckRequest(body)
	if err != nil || id != 7 || string(hash) != argon2idSecret || string(password) != "secret" {
		t.Fatalf("parsed %d %q %q %v", id, hash, password, err)
	}
	if _, v := checkFrame(body); v != verdictMatch {
		t.Errorf("the child's verdict on the right password: %d, want a match", v)
	}
	if got := appendCheckReply(nil, 0x0102030405060708, verdictMatch); string(got) != "\x01\x02\x03\x04\x05\x06\x07\x08\x01" {
		t.Errorf("reply %q", got)
	}
	// A frame longer than the protocol allows is refused before any
	// memory is taken for it.
	if _, err := readCheckFrame(strings.NewReader("\x00\x02\x00\x00"), nil); !errors.Is(err, errCheckFrameTooLarge) {
		t.Errorf("a 128 KiB frame: %v", err)
	}
}

// Whatever the stream holds, the child's reader and parser neither panic
// nor take more than a frame's bound, and what they return lies within the
// frame.
func FuzzCheckFrames(f *testing.F) {
	h, _ := parsePasswordHash(bcrypt2ySecret)
	f.Add(appendCheckRequest(nil, 1, h, []byte("secret")))
	f.Add([]byte("\x00\x00\x00\x0a\x00\x00\x00\x00\x00\x00\x00\x01\xff\xff"))
	f.Add([]byte("\xff\xff\xff\xff"))
	f.Add([]byte("\x00\x00\x00\x02ab"))
	f.Fuzz(func(t *testing.T, stream []byte) {
		r := bytes.NewReader(stream)
		var buf []byte
		for {
			frame, err := readCheckFrame(r, buf)
			if err != nil {
				return
			}
			if len(frame) > maxCheckFrame {
				t.Fatalf("a frame of %d bytes", len(frame))
			}
			id, hash, password, err := parseCheckRequest(frame)
			if err == nil && checkRequestFixed+len(hash)+len(password) != len(frame) {
				t.Fatalf("id %d: hash %d and password %d bytes in a frame of %d", id, len(hash), len(password), len(frame))
			}
			buf = frame
		}
	})
}

// A checker without a child answers at once that it is down.
func TestCheckWithoutChildIsDown(t *testing.T) {
	c := newPasswordChecker("/nonexistent", metrics.NewSet(), slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	h, _ := parsePasswordHash(bcrypt2ySecret)
	if v := c.check(h, []byte("secret")); v != verdictDown {
		t.Fatalf("verdict %d, want down", v)
	}
	if _, err := c.spawn(); err == nil || !strings.Contains(err.Error(), "cannot start the password checker /nonexistent") {
		t.Errorf("spawning a missing program: %v", err)
	}
}

var checkerStartedLine = regexp.MustCompile(`msg="password checker started" checker_pid=(\d+)`)

// checkerPIDs are the children northd said it started, in order.
func checkerPIDs(logs *testdeps.SyncBuffer) []int {
	var pids []int
	for _, m := range checkerStartedLine.FindAllStringSubmatch(logs.String(), -1) {
		pid, _ := strconv.Atoi(m[1])
		pids = append(pids, pid)
	}
	return pids
}

// stopChild stops pid (SIGSTOP) until the test ends, when it is killed
// should the test have failed with it stopped.
func stopChild(t *testing.T, pid int) {
	t.Helper()
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Kill(pid, syscall.SIGKILL) })
}

// The checker runs in a child at SCHED_IDLE; cached logins do not need
// it. When it dies, the logins
// waiting for it get 503 code 4, and once northd has started it again,
// logins are checked again. Beyond the queue, a login gets 503 at once.
func TestPasswordCheckerIsIdleAndRestarts(t *testing.T) {
	users := writeUsersFile(t, "alice:"+bcrypt2ySecret+"\nbob:"+argon2idSecret+"\n")
	listen, admin, logs, _ := startRun(t, "-listen", "127.0.0.1:0", "-admin", "127.0.0.1:0", "-users", users,
		"-max-login-failures", "1000", "-max-user-login-failures", "1000")
	base := "http://" + listen[0]
	pids := checkerPIDs(logs)
	if len(pids) != 1 {
		t.Fatalf("checker pids %v in the log, want one:\n%s", pids, logs)
	}
	first := pids[0]
	testdeps.WaitFor(t, "every thread of the checker at SCHED_IDLE", func() bool {
		entries, err := os.ReadDir("/proc/" + strconv.Itoa(first) + "/task")
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			tid, _ := strconv.Atoi(e.Name())
			attr, err := unix.SchedGetAttr(tid, 0)
			if err != nil || attr.Policy != unix.SCHED_IDLE {
				return false
			}
		}
		return true
	})
	// Stop signals for the whole terminal or unit do not end it before
	// northd's drain: SIGHUP, SIGINT and SIGTERM (bits 0, 1, 14) ignored.
	testdeps.WaitFor(t, "the checker ignoring SIGHUP, SIGINT and SIGTERM", func() bool {
		status, err := os.ReadFile("/proc/" + strconv.Itoa(first) + "/status")
		if err != nil {
			t.Fatal(err)
		}
		m := regexp.MustCompile(`(?m)^SigIgn:\s*([0-9a-f]+)$`).FindSubmatch(status)
		ignored, _ := strconv.ParseUint(string(m[1]), 16, 64)
		return ignored&0x4003 == 0x4003
	})
	loginToken(t, clientFrom("127.0.0.1"), base, `{"username":"bob","password":"secret","ip":"192.0.2.1"}`)

	// Stopped, the child answers nothing: fill the queue.
	stopChild(t, first)
	// A login the cache has verified never asks the child.
	loginToken(t, clientFrom("127.0.0.1"), base, `{"username":"bob","password":"secret","ip":"192.0.2.1"}`)
	queue := (1 + 4) * runtime.GOMAXPROCS(0) // 4 waiting per processor of the child, and one running
	answers := make(chan answer, queue)
	for i := range queue {
		go func() {
			c := clientFrom("127.0.0." + strconv.Itoa(i+2))
			answers <- tryLogin(c, base, `{"username":"alice","password":"guess `+strconv.Itoa(i)+`"}`)
		}()
	}
	testdeps.WaitFor(t, "a full queue of checks", func() bool { return metricValue(t, admin, "northd_password_checks_waiting") == float64(queue) })
	a := call(t, clientFrom("127.0.1.1"), "POST", base+"/north/login", "", `{"username":"alice","password":"secret"}`)
	if a.status != 503 || a.body != hashBusyBody503 || a.header.Get("Retry-After") != "1" {
		t.Fatalf("a login beyond the queue: %d %v %q", a.status, a.header, a.body)
	}

	// The child dies: every waiting login is answered.
	if err := syscall.Kill(first, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for range queue {
		a := <-answers
		if a.status != 503 || a.body != checkerDownBody503 || a.header.Get("Retry-After") != "1" {
			t.Fatalf("a login waiting when the checker died: %d %v %q", a.status, a.header, a.body)
		}
	}
	testdeps.WaitFor(t, "the checker started again", func() bool { return len(checkerPIDs(logs)) == 2 })
	if second := checkerPIDs(logs)[1]; second == first {
		t.Fatalf("the same pid %d again", second)
	}
	if !strings.Contains(logs.String(), `msg="password checker stopped; logins that need a password check get 503 until it is restarted" checker_pid=`+strconv.Itoa(first)) {
		t.Errorf("the log does not say the checker stopped:\n%s", logs)
	}
	loginToken(t, clientFrom("127.0.0.1"), base, `{"username":"alice","password":"secret","ip":"192.0.2.2"}`)
	if n := metricValue(t, admin, "northd_password_checker_restarts_total"); n != 1 {
		t.Errorf("%v restarts counted, want 1", n)
	}
	if n := metricValue(t, admin, `northd_login_failures_total{subsystem="`+portOf(listen[0])+`",reason="password_checker_down"}`); n != float64(queue) {
		t.Errorf("%v logins counted refused for the checker being down, want %d", n, queue)
	}
}

// A login still waiting for its check when the shutdown timeout ends is
// answered 503 (or its connection cut), and run returns with the child
// ended and reaped: the checker stops after the servers, and nothing of
// the login's memory is read once its handler returns (run under -race).
func TestShutdownTimeoutWithACheckWaiting(t *testing.T) {
	users := writeUsersFile(t, "alice:"+bcrypt2ySecret+"\n")
	listen, admin, logs, stop := startRun(t, "-listen", "127.0.0.1:0", "-admin", "127.0.0.1:0", "-users", users, "-shutdown-timeout", "1s")
	pid := checkerPIDs(logs)[0]
	stopChild(t, pid)
	answered := make(chan answer, 1)
	go func() {
		answered <- tryLogin(clientFrom("127.0.0.1"), "http://"+listen[0], `{"username":"alice","password":"secret"}`)
	}()
	testdeps.WaitFor(t, "the login waiting for its check", func() bool { return metricValue(t, admin, "northd_password_checks_waiting") == 1 })
	if err := stop(); err == nil || !strings.Contains(err.Error(), "shutdown timed out") {
		t.Fatalf("run returned %v, want the shutdown timeout", err)
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("the checker %d is still there after run returned: %v", pid, err)
	}
	a := <-answered
	t.Logf("the waiting login got %d %q (-1: its connection was cut)", a.status, a.body)
	if a.status != -1 && (a.status != 503 || a.body != checkerDownBody503) {
		t.Errorf("the waiting login: %d %q", a.status, a.body)
	}
}

// tryLogin is call for a goroutine of its own: status -1 when no answer
// came.
func tryLogin(client *http.Client, base, body string) answer {
	resp, err := client.Post(base+"/north/login", "application/json", strings.NewReader(body))
	if err != nil {
		return answer{status: -1}
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, resp.Header, string(b)}
}

// A reply with the hello's id 0 after the hello is garbage: it must not
// land in a free slot, where the next check would take it for its own.
func TestReplyWithIdZeroIsGarbage(t *testing.T) {
	c := newPasswordChecker("/nonexistent", metrics.NewSet(), slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	w.Write(appendCheckReply(nil, 0, verdictMatch))
	w.Close()
	if err := c.readVerdicts(&checkerChild{stdout: r}); err == nil || !strings.Contains(err.Error(), "answered garbage") {
		t.Errorf("readVerdicts: %v", err)
	}
	if n := len(c.slots[0].verdict); n != 0 {
		t.Errorf("slot 0 holds %d verdicts, want none", n)
	}
}
