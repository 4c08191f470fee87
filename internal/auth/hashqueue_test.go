package auth

import (
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"northd/internal/testdeps"
)

// A login that finds the password checks' queue full is HashBusy at once,
// and the logins that waited when the checker died are CheckerDown; both
// wait a second. None of them is charged a failure: their reservations are
// released.
func TestHashQueueFullAndCheckerDownChargeNothing(t *testing.T) {
	o := testOptions(testdeps.WriteUsersFile(t, "alice:"+testdeps.Bcrypt2ySecret+"\n"))
	// Limits high enough for every login below to reach the checker.
	o.MaxAddrFailures, o.MaxUserFailures = 1000, 1000
	set := metrics.NewSet()
	a := newTestAuthenticator(t, o, set, discardLog())
	client := netip.MustParseAddr("192.0.2.66")
	// Stopped, the child answers nothing: every slot stays taken.
	pid := a.hashing.pid()
	stopChild(t, pid)
	slots := len(a.hashing.slots)
	type result struct {
		outcome Outcome
		wait    time.Duration
	}
	queued := make(chan result, slots)
	for range slots {
		go func() {
			o, wait := a.Check(client, []byte("alice"), []byte("a guess"), time.Now())
			queued <- result{o, wait}
		}()
	}
	testdeps.WaitFor(t, "every slot of the checker taken", func() bool { return len(a.hashing.free) == 0 })

	if o, wait := a.Check(client, []byte("alice"), []byte("one more guess"), time.Now()); o != HashBusy || wait != time.Second {
		t.Errorf("with the queue full: %s, wait %v; want %s, 1s", o.Reason(), wait, HashBusy.Reason())
	}
	if n := a.hashRejections.Get(); n != 1 {
		t.Errorf("%d hash rejections counted, want 1", n)
	}

	// The child dies: the waiting logins are told the checker is down.
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for range slots {
		if r := <-queued; r.outcome != CheckerDown || r.wait != time.Second {
			t.Fatalf("a login waiting when the checker died: %s, wait %v; want %s, 1s", r.outcome.Reason(), r.wait, CheckerDown.Reason())
		}
	}
	if n, u := a.limits.byAddr.count.Load(), a.limits.byUser.count.Load(); n != 0 || u != 0 {
		t.Errorf("%d address and %d username buckets after %d unchecked logins, want none", n, u, slots+1)
	}
}
