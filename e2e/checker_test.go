package e2e

import (
	"errors"
	"os"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"northd/internal/testdeps"
)

const (
	hashBusyBody503    = `{"code": 4, "token": "", "description": "too many logins are waiting for a password check; retry after the Retry-After seconds"}`
	checkerDownBody503 = `{"code": 4, "token": "", "description": "the password checker is restarting; retry after the Retry-After seconds"}`
)

var checkerStartedLine = regexp.MustCompile(`"msg":"password checker started","checker_pid":(\d+)`)

// checkerPIDs are the children northd said it started, in order.
func checkerPIDs(n *testdeps.Northd) []int {
	var pids []int
	for _, m := range checkerStartedLine.FindAllStringSubmatch(n.Log(), -1) {
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
	users := testdeps.WriteUsersFile(t, "alice:"+testdeps.Bcrypt2ySecret+"\nbob:"+testdeps.Argon2idSecret+"\n")
	n := start(t, "-listen", "127.0.0.1:0", "-admin", "127.0.0.1:0", "-users", users,
		"-max-login-failures", "1000", "-max-user-login-failures", "1000")
	listen, admin := n.Listen, n.Admin
	base := "http://" + listen[0]
	pids := checkerPIDs(n)
	if len(pids) != 1 {
		t.Fatalf("checker pids %v in the log, want one:\n%s", pids, n.Log())
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
	testdeps.LoginToken(t, testdeps.ClientFrom("127.0.0.1"), base, `{"username":"bob","password":"secret","ip":"192.0.2.1"}`)

	// The pool frees a check's place just after answering it: a place
	// still taken by bob's would turn one login below away at once.
	testdeps.WaitFor(t, "bob's check to free its place", func() bool { return testdeps.MetricValue(t, admin, "northd_password_checks_waiting") == 0 })
	// Stopped, the child answers nothing: fill the queue.
	stopChild(t, first)
	// A login the cache has verified never asks the child.
	testdeps.LoginToken(t, testdeps.ClientFrom("127.0.0.1"), base, `{"username":"bob","password":"secret","ip":"192.0.2.1"}`)
	queue := (1 + 4) * runtime.GOMAXPROCS(0) // 4 waiting per processor of the child, and one running
	answers := make(chan testdeps.Answer, queue)
	for i := range queue {
		go func() {
			c := testdeps.ClientFrom("127.0.0." + strconv.Itoa(i+2))
			answers <- tryLogin(t, c, base, `{"username":"alice","password":"guess `+strconv.Itoa(i)+`"}`)
		}()
	}
	testdeps.WaitFor(t, "a full queue of checks", func() bool { return testdeps.MetricValue(t, admin, "northd_password_checks_waiting") == float64(queue) })
	a := testdeps.Call(t, testdeps.ClientFrom("127.0.1.1"), "POST", base+"/north/login", "", `{"username":"alice","password":"secret"}`)
	if a.Status != 503 || a.Body != hashBusyBody503 || a.Header.Get("Retry-After") != "1" {
		t.Fatalf("a login beyond the queue: %d %v %q", a.Status, a.Header, a.Body)
	}

	// The child dies: every waiting login is answered.
	if err := syscall.Kill(first, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for range queue {
		a := <-answers
		if a.Status != 503 || a.Body != checkerDownBody503 || a.Header.Get("Retry-After") != "1" {
			t.Fatalf("a login waiting when the checker died: %d %v %q", a.Status, a.Header, a.Body)
		}
	}
	testdeps.WaitFor(t, "the checker started again", func() bool { return len(checkerPIDs(n)) == 2 })
	if second := checkerPIDs(n)[1]; second == first {
		t.Fatalf("the same pid %d again", second)
	}
	if !strings.Contains(n.Log(), `"msg":"password checker stopped; logins that need a password check get 503 until it is restarted","checker_pid":`+strconv.Itoa(first)+`,`) {
		t.Errorf("the log does not say the checker stopped:\n%s", n.Log())
	}
	testdeps.LoginToken(t, testdeps.ClientFrom("127.0.0.1"), base, `{"username":"alice","password":"secret","ip":"192.0.2.2"}`)
	if n := testdeps.MetricValue(t, admin, "northd_password_checker_restarts_total"); n != 1 {
		t.Errorf("%v restarts counted, want 1", n)
	}
	if n := testdeps.MetricValue(t, admin, `northd_login_failures_total{subsystem="`+testdeps.PortOf(listen[0])+`",reason="password_checker_down"}`); n != float64(queue) {
		t.Errorf("%v logins counted refused for the checker being down, want %d", n, queue)
	}
}

// A login still waiting for its check when the shutdown timeout ends is
// answered 503 (or its connection cut), and northd exits with the child
// ended and reaped: the checker stops after the servers, and nothing of
// the login's memory is read once its handler returns (northd is built
// with -race when the tests run under it).
func TestShutdownTimeoutWithACheckWaiting(t *testing.T) {
	users := testdeps.WriteUsersFile(t, "alice:"+testdeps.Bcrypt2ySecret+"\n")
	n := start(t, "-listen", "127.0.0.1:0", "-admin", "127.0.0.1:0", "-users", users, "-shutdown-timeout", "1s")
	listen, admin := n.Listen, n.Admin
	pid := checkerPIDs(n)[0]
	stopChild(t, pid)
	answered := make(chan testdeps.Answer, 1)
	go func() {
		answered <- tryLogin(t, testdeps.ClientFrom("127.0.0.1"), "http://"+listen[0], `{"username":"alice","password":"secret"}`)
	}()
	testdeps.WaitFor(t, "the login waiting for its check", func() bool { return testdeps.MetricValue(t, admin, "northd_password_checks_waiting") == 1 })
	if err := n.Stop(t); err == nil || !strings.Contains(lastLine(n.Log()), "shutdown timed out") {
		t.Fatalf("northd exited with %v, want the shutdown timeout\n%s", err, n.Log())
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("the checker %d is still there after northd exited: %v", pid, err)
	}
	a := <-answered
	t.Logf("the waiting login got %d %q (-1: its connection was cut)", a.Status, a.Body)
	if a.Status != -1 && (a.Status != 503 || a.Body != checkerDownBody503) {
		t.Errorf("the waiting login: %d %q", a.Status, a.Body)
	}
}

// A login that finds the password checks' queue full is answered 503 code
// 4 with Retry-After: 1 at once, counted as hash_queue_full; the logins
// that waited when the checker died are answered 503 code 4 too.
// internal/auth checks that none of them is charged a failure.
func TestHashQueueFullAnswers503(t *testing.T) {
	// Limits high enough for every login below to reach the checker.
	users := testdeps.WriteUsersFile(t, "alice:"+testdeps.Bcrypt2ySecret+"\n")
	n := start(t, "-listen", "127.0.0.1:0", "-admin", "127.0.0.1:0", "-users", users,
		"-max-login-failures", "1000", "-max-user-login-failures", "1000")
	base := "http://" + n.Listen[0]
	// Stopped, the child answers nothing: every slot stays taken.
	pid := checkerPIDs(n)[0]
	stopChild(t, pid)
	slots := (1 + 4) * runtime.GOMAXPROCS(0) // 4 waiting per processor of the child, and one running
	queued := make(chan testdeps.Answer, slots)
	for range slots {
		go func() {
			queued <- tryLogin(t, testdeps.ClientFrom("127.0.0.1"), base, `{"username":"alice","password":"a guess"}`)
		}()
	}
	testdeps.WaitFor(t, "every slot of the checker taken", func() bool {
		return testdeps.MetricValue(t, n.Admin, "northd_password_checks_waiting") == float64(slots)
	})

	a := testdeps.Call(t, testdeps.ClientFrom("127.0.0.1"), "POST", base+"/north/login", "", `{"username":"alice","password":"one more guess"}`)
	if a.Status != 503 || a.Body != hashBusyBody503 || a.Header.Get("Retry-After") != "1" || a.Header.Get("Content-Type") != "application/json; charset=utf-8" {
		t.Errorf("with the queue full: %d %v %q, want 503 Retry-After 1 %q", a.Status, a.Header, a.Body, hashBusyBody503)
	}
	if v := testdeps.MetricValue(t, n.Admin, `northd_login_failures_total{subsystem="`+testdeps.PortOf(n.Listen[0])+`",reason="hash_queue_full"}`); v != 1 {
		t.Errorf("%v logins counted refused for a full queue, want 1", v)
	}

	// The child dies: the waiting logins are answered that the checker
	// is restarting.
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for range slots {
		a := <-queued
		if a.Status != 503 || a.Body != checkerDownBody503 || a.Header.Get("Retry-After") != "1" {
			t.Fatalf("a login waiting when the checker died: %d %v %q, want 503 Retry-After 1 %q", a.Status, a.Header, a.Body, checkerDownBody503)
		}
	}
}
