package e2e

import (
	"net"
	"net/http"
	"strings"
	"testing"

	"northd/internal/testdeps"
)

// overloadedAnswer is the listener's refusal over -max-conns, byte for
// byte.
const overloadedAnswer = "HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\nCache-Control: no-store\r\nContent-Length: 53\r\n\r\n" +
	"too many connections to this server; try again later\n"

// startLimited runs northd with args under a limit of 160 descriptors.
func startLimited(t *testing.T, args ...string) *testdeps.Northd {
	t.Helper()
	return testdeps.StartNorthdWith(t, bin, testdeps.Options{NoFile: 160}, args...)
}

// running fails the test if northd has exited.
func running(t *testing.T, n *testdeps.Northd) {
	t.Helper()
	if n.Exited() {
		t.Fatalf("northd exited:\n%s", n.Log())
	}
}

// idleConns opens count connections to northd that send nothing, closed
// when the test ends (or by the caller).
func idleConns(t *testing.T, n *testdeps.Northd, count int) []net.Conn {
	t.Helper()
	conns := make([]net.Conn, 0, count)
	for i := range count {
		conn, err := net.Dial("tcp", n.Listen[0])
		if err != nil {
			running(t, n)
			t.Fatalf("connection %d: %v\n%s", i+1, err, n.Log())
		}
		t.Cleanup(func() { conn.Close() })
		conns = append(conns, conn)
	}
	return conns
}

// healthz sends GET /healthz on a new connection and returns the status,
// or fails the test if no answer comes.
func healthz(t *testing.T, addr string) int {
	t.Helper()
	resp, _ := rawRoundTrip(t, addr, "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	return resp.StatusCode
}

// TestDescriptorExhaustionKeepsServing: with 160 descriptors and
// -max-conns above what they allow, more idle connections than that make
// accept fail ("too many open files"). northd logs it, keeps running, and
// answers again once connections close.
func TestDescriptorExhaustionKeepsServing(t *testing.T) {
	n := startLimited(t, "-max-conns", "1000", "-read-timeout", "10m", "-idle-timeout", "10m")
	held := idleConns(t, n, 200)
	n.WaitForLog(t, "too many open files")
	if !strings.Contains(n.Log(), `"msg":"cannot accept a connection; retrying"`) {
		t.Fatalf("the accept failure was not logged as retried:\n%s", n.Log())
	}
	running(t, n)
	for _, h := range held {
		h.Close()
	}
	if st := healthz(t, n.Listen[0]); st != http.StatusOK {
		t.Fatalf("after the connections closed: status %d, want 200", st)
	}
	running(t, n)
	t.Logf("held 200 idle connections under 160 descriptors: northd logged %d failed accepts, kept running, and answered 200 once they closed", strings.Count(n.Log(), "cannot accept a connection"))
	// An explicit -max-conns is kept, with a warning.
	n.WaitForLog(t, `"msg":"-max-conns is above what the descriptor limit leaves for connections; past it, accepts fail and are retried","max_conns":1000,"fits":96,"descriptor_limit":160,"reserved":64,"subsystems":1`)
}

// TestDefaultMaxConnsFitsTheDescriptorLimit: without -max-conns, northd
// lowers the default to what 160 descriptors allow after its reserve, says
// so, and refuses the connections past it with 503 instead of running out.
func TestDefaultMaxConnsFitsTheDescriptorLimit(t *testing.T) {
	n := startLimited(t, "-read-timeout", "10m", "-idle-timeout", "10m")
	n.WaitForLog(t, `"msg":"lowered the default -max-conns to fit the descriptor limit","max_conns":96,"descriptor_limit":160,"reserved":64,"subsystems":1`)
	held := idleConns(t, n, 96)
	// Accepted in order, the held ones fill -max-conns; each of the
	// next is refused.
	for i := range 104 {
		if got := testdeps.ReadRefusal(t, n.Listen[0]); got != overloadedAnswer {
			t.Fatalf("connection %d past 96 held ones got %q, want the 503 refusal\n%s", 97+i, got, n.Log())
		}
	}
	if strings.Contains(n.Log(), "too many open files") {
		t.Fatalf("northd ran out of descriptors:\n%s", n.Log())
	}
	for _, h := range held {
		h.Close()
	}
	testdeps.WaitFor(t, "a place freed by the closed connections", func() bool { return healthz(t, n.Listen[0]) == http.StatusOK })
	running(t, n)
}
