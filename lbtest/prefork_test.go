package lbtest

import (
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"northd/internal/testdeps"
)

// TestPreforkChildrenShareThePort: -prefork starts one child per CPU on the
// same port, child k with its admin listener on the admin port plus k, and
// SIGTERM to the master drains and stops them all. -prefork takes a shared
// store (with -store memory northd refuses to start), so the children share
// a real redis-server.
func TestPreforkChildrenShareThePort(t *testing.T) {
	redis := testdeps.StartRedis(t)
	// -prefork takes fixed ports: the listen port and the admin ports of
	// the two children, all consecutive.
	port := fixedFreePorts(t, 3)
	admin := port + 1
	n := startPrefork(t, "-listen", "127.0.0.1:"+strconv.Itoa(port), "-admin", "127.0.0.1:"+strconv.Itoa(admin), "-drain-delay", "300ms", "-store", redis.URL())

	for k := 0; k < 2; k++ {
		if _, err := testdeps.Try(t, http.DefaultClient, "GET", "http://127.0.0.1:"+strconv.Itoa(admin+k)+"/metrics", "", ""); err != nil {
			t.Fatalf("child %d admin listener: %v", k, err)
		}
	}
	for i := 0; i < 20; i++ {
		if a := testdeps.Call(t, http.DefaultClient, "POST", "http://127.0.0.1:"+strconv.Itoa(port)+"/north/login", "", `{"username":"u","password":"p"}`); a.Status != 200 {
			t.Fatalf("login %d: %d %s", i, a.Status, a.Body)
		}
	}

	n.Signal(t, syscall.SIGTERM)
	if err := n.Wait(t); err != nil {
		t.Fatalf("master exited with %v:\n%s", err, n.Log())
	}
	if got := strings.Count(n.Log(), "stopped cleanly"); got != 2 || !strings.Contains(n.Log(), "every child stopped") {
		t.Fatalf("want both children stopped cleanly, then the master:\n%s", n.Log())
	}
}

// startPrefork runs northd -prefork with args on two CPUs, so with two
// children, and returns once both serve: each logs "northd started".
func startPrefork(t *testing.T, args ...string) *testdeps.Northd {
	t.Helper()
	n := testdeps.StartNorthdWith(t, bin, testdeps.Options{Env: []string{"GOMAXPROCS=2"}}, append([]string{"-prefork"}, args...)...)
	testdeps.WaitFor(t, "two children to start", func() bool { return strings.Count(n.Log(), `"northd started"`) == 2 })
	return n
}

// fixedFreePorts returns the first of n consecutive ports that were free
// on 127.0.0.1 a moment ago, below the range the kernel hands out for port
// 0 and for outgoing connections: no other test that lets the kernel pick
// can take them between this check and their use.
func fixedFreePorts(t *testing.T, n int) int {
	t.Helper()
	low := 32768 // Linux's default, when the range cannot be read
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if v, err := strconv.Atoi(f[0]); err == nil {
				low = v
			}
		}
	}
	const floor = 20000
	if low-n <= floor {
		t.Fatalf("the kernel hands out ports from %d: no room below it for fixed test ports", low)
	}
	for try := 0; try < 100; try++ {
		first := floor + rand.IntN(low-n-floor)
		var held []net.Listener
		for k := 0; k < n; k++ {
			ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(first+k))
			if err != nil {
				break
			}
			held = append(held, ln)
		}
		for _, ln := range held {
			ln.Close()
		}
		if len(held) == n {
			return first
		}
	}
	t.Fatal("no run of free ports found")
	return 0
}

// TestPreforkWithMemoryStoreExits2: the binary refuses -prefork without a
// shared store before it starts a child, exits 2, and says what to give.
func TestPreforkWithMemoryStoreExits2(t *testing.T) {
	port := fixedFreePorts(t, 1)
	r := testdeps.RunNorthd(t, bin, testdeps.Options{}, "", "-prefork", "-listen", "127.0.0.1:"+strconv.Itoa(port), "-admin", "off")
	if r.Code != 2 {
		t.Fatalf("northd -prefork -store memory: exit status %d, want 2\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	const want = "northd: -prefork needs a shared store: each child would keep its own tokens, so a verify or logout that reaches another child would fail; give -store redis://host:port/db\n"
	if r.Stdout != "" || r.Stderr != want {
		t.Fatalf("northd -prefork -store memory said\n%q on its standard output and\n%q on its standard error\nwant nothing and\n%q", r.Stdout, r.Stderr, want)
	}
}
