package testdeps

import (
	"errors"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestNorthdHarness checks that StartNorthd learns every address northd
// listens on, the admin one included, and that each answers.
func TestNorthdHarness(t *testing.T) {
	bin, remove, err := BuildNorthd("../..")
	if err != nil {
		t.Fatal(err)
	}
	defer remove()
	off := StartNorthd(t, bin)
	if len(off.Listen) != 1 || off.Admin != "disabled" {
		t.Errorf("default: listen %q, admin %q; want one address and \"disabled\"", off.Listen, off.Admin)
	}
	p := StartNorthd(t, bin, "-listen", "127.0.0.1:0,127.0.0.1:0", "-admin", "127.0.0.1:0")
	if len(p.Listen) != 2 || p.Listen[0] == p.Listen[1] {
		t.Fatalf("listen %q: want two addresses", p.Listen)
	}
	client := &http.Client{Timeout: 30 * time.Second}
	get := func(url string) (int, string) {
		t.Helper()
		a := Call(t, client, "GET", url, "", "")
		return a.Status, a.Body
	}
	for _, a := range append(p.Listen, off.Listen...) {
		if code, body := get("http://" + a + "/"); code != 200 || body != `<meta http-equiv="Content-Type" content="text/html; charset=utf-8"><h1>Home Page</h1>` {
			t.Errorf("GET http://%s/: %d %.80q", a, code, body)
		}
	}
	if code, body := get("http://" + p.Admin + "/metrics"); code != 200 || !strings.Contains(body, "northd_") {
		t.Errorf("GET http://%s/metrics: %d %.200q", p.Admin, code, body)
	}
	if !strings.Contains(p.Log(), `"msg":"northd started"`) || !strings.Contains(p.Log(), `"pid":`+strconv.Itoa(p.Pid())) {
		t.Errorf("the log does not say northd started with pid %d:\n%s", p.Pid(), p.Log())
	}
	if err := p.Stop(t); err != nil || !p.Exited() {
		t.Errorf("Stop: %v, exited %v; want a clean exit", err, p.Exited())
	}

	// Wait sees the exit a signal the test sent brings; Kill ends northd
	// as a crash does, stopped or not.
	w := StartNorthd(t, bin)
	w.Signal(t, syscall.SIGTERM)
	if err := w.Wait(t); err != nil || !w.Exited() {
		t.Errorf("Wait after SIGTERM: %v, exited %v; want a clean exit", err, w.Exited())
	}
	k := StartNorthd(t, bin)
	k.Signal(t, syscall.SIGSTOP)
	k.Kill()
	var exit *exec.ExitError
	if err := k.Wait(t); !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Errorf("Kill: northd exited with %v, want killed by SIGKILL", err)
	}

	// A refused configuration ends by itself, with status 2 and its
	// error; NORTHD_ variables of the test's environment do not reach
	// northd, those given do.
	t.Setenv("NORTHD_ADMIN", "nonsense")
	r := RunNorthd(t, bin, Options{Env: []string{"NORTHD_USERS=/nonexistent/users"}}, "", "-listen", "127.0.0.1:0")
	if r.Code != 2 || !strings.Contains(r.Stderr, "/nonexistent/users") || strings.Contains(r.Stderr, "nonsense") {
		t.Errorf("northd with NORTHD_USERS given and NORTHD_ADMIN in the test's environment: exit %d\n%s", r.Code, r.Stderr)
	}
}
