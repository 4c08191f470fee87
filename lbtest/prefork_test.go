package lbtest

import (
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestPreforkChildrenShareThePort: -prefork starts one child per CPU on the
// same port, child k with its admin listener on the admin port plus k, and
// SIGTERM to the master drains and stops them all.
func TestPreforkChildrenShareThePort(t *testing.T) {
	port, admin := freePort(t), consecutiveFreePorts(t, 2)
	log := new(syncBuffer)
	cmd := exec.Command(bin, "-prefork", "-listen", "127.0.0.1:"+strconv.Itoa(port), "-admin", "127.0.0.1:"+strconv.Itoa(admin), "-drain-delay", "300ms")
	cmd.Env = append(cmd.Environ(), "GOMAXPROCS=2")
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer cmd.Process.Kill()
	waitFor(t, "two children to start", 10*time.Second, func() bool { return strings.Count(log.String(), "northd started") == 2 })

	for k := 0; k < 2; k++ {
		resp, err := http.Get("http://127.0.0.1:" + strconv.Itoa(admin+k) + "/metrics")
		if err != nil {
			t.Fatalf("child %d admin listener: %v", k, err)
		}
		resp.Body.Close()
	}
	for i := 0; i < 20; i++ {
		resp, err := http.Post("http://127.0.0.1:"+strconv.Itoa(port)+"/north/login", "", strings.NewReader(`{"username":"u","password":"p"}`))
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("login %d: %v %v", i, err, resp)
		}
		resp.Body.Close()
	}

	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("master exited with %v:\n%s", err, log)
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("master still running 15s after SIGTERM:\n%s", log)
	}
	if got := strings.Count(log.String(), "stopped cleanly"); got != 2 || !strings.Contains(log.String(), "every child stopped") {
		t.Fatalf("want both children stopped cleanly, then the master:\n%s", log)
	}
}

func consecutiveFreePorts(t *testing.T, n int) int {
	t.Helper()
	for try := 0; try < 50; try++ {
		first := freePort(t)
		ok := true
		for k := 1; k < n && ok; k++ {
			ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(first+k))
			if err != nil {
				ok = false
				continue
			}
			ln.Close()
		}
		if ok {
			return first
		}
	}
	t.Fatal("no run of free ports found")
	return 0
}
