package auth

import (
	"net/netip"
	"testing"
	"time"
)

func TestFailureLimits(t *testing.T) {
	l := newFailureLimits(10, 50, time.Minute, 64)
	t0 := time.Unix(1700000000, 0)
	attacker, other := l.addrKey(netip.MustParseAddr("192.0.2.66")), l.addrKey(netip.MustParseAddr("192.0.2.7"))
	for i := range 10 {
		if wait, blocked := l.byAddr.blocked(attacker, t0); blocked {
			t.Fatalf("blocked after %d failures (wait %v), want after 10", i, wait)
		}
		p, _, ok := l.byAddr.reserve(attacker, t0)
		if !ok {
			t.Fatalf("failure %d not reserved", i+1)
		}
		l.byAddr.settle(attacker, p, true, t0)
	}
	wait, blocked := l.byAddr.blocked(attacker, t0)
	if !blocked || wait != 6*time.Second {
		t.Fatalf("after 10 failures: blocked %v, wait %v; want true, 6s (a minute's tenth)", blocked, wait)
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
	// An empty bucket reserves nothing, and is not put in debt: the
	// wait stays a failure's worth however often it is asked.
	for range 100 {
		if _, wait, ok := l.byAddr.reserve(attacker, t0.Add(3*time.Second)); ok || wait != 3*time.Second {
			t.Fatalf("reserved from an empty bucket: %v, wait %v; want false, 3s", ok, wait)
		}
	}
	// A reservation released is restored whole.
	r, _, ok := l.byAddr.reserve(attacker, t0.Add(6*time.Second))
	if !ok {
		t.Fatal("no reservation once a failure's worth refilled")
	}
	if _, blocked := l.byAddr.blocked(attacker, t0.Add(6*time.Second)); !blocked {
		t.Error("not blocked with the refilled failure reserved")
	}
	l.byAddr.settle(attacker, r, false, t0.Add(6*time.Second))
	if _, blocked := l.byAddr.blocked(attacker, t0.Add(6*time.Second)); blocked {
		t.Error("still blocked after the reservation was released")
	}
	// A reservation taken is a failure.
	r, _, _ = l.byAddr.reserve(attacker, t0.Add(6*time.Second))
	l.byAddr.settle(attacker, r, true, t0.Add(6*time.Second))
	if wait, blocked := l.byAddr.blocked(attacker, t0.Add(6*time.Second)); !blocked || wait != 6*time.Second {
		t.Errorf("after a failed check: blocked %v, wait %v; want true, 6s", blocked, wait)
	}
	// A bucket full again is forgotten.
	r, _, _ = l.byAddr.reserve(other, t0)
	l.byAddr.settle(other, r, false, t0)
	if n := l.byAddr.count.Load(); n != 1 {
		t.Errorf("%d buckets after another address released its reservation, want 1", n)
	}
	// IPv4 and its IPv4-mapped IPv6 form are one client.
	if l.addrKey(netip.MustParseAddr("::ffff:192.0.2.66")) != attacker {
		t.Error("an IPv4-mapped address has another key")
	}
}

// Reservations made at times that go backwards and released in another
// order leave the bucket exactly full, and forgotten: x/time/rate's own
// CancelAt restored such reservations short, charging failures for
// logins that were never checked.
func TestReleasedReservationsLeaveNoFailure(t *testing.T) {
	l := newFailureLimits(1000, 1000, time.Minute, 64)
	t0 := time.Unix(1700000000, 0)
	k := l.addrKey(netip.MustParseAddr("192.0.2.66"))
	var pending []pendingFailure
	for _, ms := range []int{5, 0, 9, 3, 7, 1, 8, 2, 6, 4} {
		p, _, ok := l.byAddr.reserve(k, t0.Add(time.Duration(ms)*time.Millisecond))
		if !ok {
			t.Fatal("not reserved")
		}
		pending = append(pending, p)
	}
	for i, p := range pending {
		l.byAddr.settle(k, p, false, t0.Add(time.Duration(10+i)*time.Millisecond))
	}
	if n := l.byAddr.count.Load(); n != 0 {
		t.Errorf("%d buckets after every reservation was released, want none", n)
	}
	// Failures taken in any order are each one failure.
	pending = pending[:0]
	for _, ms := range []int{5, 0, 9} {
		p, _, _ := l.byAddr.reserve(k, t0.Add(time.Duration(ms)*time.Millisecond))
		pending = append(pending, p)
	}
	for _, p := range pending {
		l.byAddr.settle(k, p, true, t0)
	}
	sh := &l.byAddr.shards[l.byAddr.shardOf(k)%limiterShards]
	if got := sh.m[k].available(t0.Add(9 * time.Millisecond)); got != 997 {
		t.Errorf("%v failures left after 3 taken, want 997", got)
	}
}

// The tables stay bounded however many addresses fail.
func TestFailureTableIsBounded(t *testing.T) {
	l := newFailureLimits(10, 50, time.Minute, 64)
	t0 := time.Unix(1700000000, 0)
	for i := range 3 * failureTableMax {
		l.byUser.reserve(uint64(i), t0)
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

// Addresses in one IPv6 /64 (the default -ipv6-prefix) share one failure
// bucket; another /64 has its own, and IPv4 addresses each their own.
func TestFailureBucketsKeyIPv6ByPrefix(t *testing.T) {
	l := newFailureLimits(2, 50, time.Minute, 64)
	t0 := time.Unix(1700000000, 0)
	key := func(s string) addrKey { return l.addrKey(netip.MustParseAddr(s)) }
	l.byAddr.reserve(key("2001:db8:0:7::1"), t0)
	l.byAddr.reserve(key("2001:db8:0:7:ffff:ffff:ffff:ffff"), t0)
	for _, tt := range []struct {
		addr    string
		blocked bool
	}{
		{"2001:db8:0:7::1", true},
		{"2001:db8:0:7:aaaa::1", true}, // the same /64
		{"2001:db8:0:8::1", false},     // the next /64
		{"192.0.2.1", false},
	} {
		if _, blocked := l.byAddr.blocked(key(tt.addr), t0); blocked != tt.blocked {
			t.Errorf("%s after two failures in 2001:db8:0:7::/64: blocked %v, want %v", tt.addr, blocked, tt.blocked)
		}
	}
	l.byAddr.reserve(key("192.0.2.1"), t0)
	l.byAddr.reserve(key("192.0.2.1"), t0)
	if _, blocked := l.byAddr.blocked(key("192.0.2.2"), t0); blocked {
		t.Error("192.0.2.2 blocked by 192.0.2.1's failures: IPv4 is keyed by the whole address")
	}
	// IPv4 and its IPv4-mapped IPv6 form are one client.
	if key("::ffff:192.0.2.1") != key("192.0.2.1") {
		t.Error("an IPv4-mapped address has another key")
	}
	// -ipv6-prefix 128 keys every address apart.
	l128 := newFailureLimits(2, 50, time.Minute, 128)
	if l128.addrKey(netip.MustParseAddr("2001:db8::1")) == l128.addrKey(netip.MustParseAddr("2001:db8::2")) {
		t.Error("-ipv6-prefix 128: two addresses share a key")
	}
}
