package main

import (
	"net/netip"
	"testing"
	"time"
)

func TestFailureLimits(t *testing.T) {
	l := newFailureLimits(10, 50, time.Minute)
	t0 := time.Unix(1700000000, 0)
	attacker, other := addrKeyOf(netip.MustParseAddr("192.0.2.66")), addrKeyOf(netip.MustParseAddr("192.0.2.7"))
	for i := range 10 {
		if wait, blocked := l.byAddr.blocked(attacker, t0); blocked {
			t.Fatalf("blocked after %d failures (wait %v), want after 10", i, wait)
		}
		l.byAddr.fail(attacker, t0)
	}
	wait, blocked := l.byAddr.blocked(attacker, t0)
	if !blocked || wait != 6*time.Second {
		t.Fatalf("after 10 failures: blocked %v, wait %v; want true, 6s (a minute's tenth)", blocked, wait)
	}
	if retryAfterSeconds(wait) != 6 || retryAfterSeconds(time.Millisecond) != 1 || retryAfterSeconds(5500*time.Millisecond) != 6 {
		t.Error("retryAfterSeconds rounds wrong")
	}
	if _, blocked := l.byAddr.blocked(other, t0); blocked {
		t.Error("another address is blocked too")
	}
	if wait, blocked := l.byAddr.blocked(attacker, t0.Add(3*time.Second)); !blocked || wait != 3*time.Second {
		t.Errorf("3 s later: blocked %v, wait %v; want true, 3s", blocked, wait)
	}
	if _, blocked := l.byAddr.blocked(attacker, t0.Add(6*time.Second)); blocked {
		t.Error("still blocked once a failure's worth refilled")
	}
	// Failures that got past blocked at once (a hash runs between the
	// check and the count) still count: each puts the bucket in debt.
	l.byAddr.fail(attacker, t0.Add(6*time.Second))
	l.byAddr.fail(attacker, t0.Add(6*time.Second))
	if wait, _ := l.byAddr.blocked(attacker, t0.Add(6*time.Second)); wait != 12*time.Second {
		t.Errorf("after two more failures: wait %v, want 12s", wait)
	}
	// The debt stops at a window's worth: at most 66 s to wait.
	for range 100 {
		l.byAddr.fail(attacker, t0.Add(6*time.Second))
	}
	if wait, _ := l.byAddr.blocked(attacker, t0.Add(6*time.Second)); wait > 66*time.Second || wait < 60*time.Second {
		t.Errorf("after a hundred more failures: wait %v, want 60 s to 66 s", wait)
	}
	// IPv4 and its IPv4-mapped IPv6 form are one client.
	if addrKeyOf(netip.MustParseAddr("::ffff:192.0.2.66")) != attacker {
		t.Error("an IPv4-mapped address has another key")
	}
}

// The tables stay bounded however many addresses fail.
func TestFailureTableIsBounded(t *testing.T) {
	l := newFailureLimits(10, 50, time.Minute)
	t0 := time.Unix(1700000000, 0)
	for i := range 3 * failureTableMax {
		l.byUser.fail(uint64(i), t0)
	}
	if n := l.byUser.count.Load(); n > failureTableMax {
		t.Fatalf("%d buckets, want at most %d", n, failureTableMax)
	}
	total := 0
	for i := range l.byUser.shards {
		total += len(l.byUser.shards[i].m)
	}
	if int64(total) != l.byUser.count.Load() {
		t.Fatalf("count %d, buckets %d", l.byUser.count.Load(), total)
	}
}
