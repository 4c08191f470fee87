package main

import (
	"net/netip"
	"testing"
	"time"
)

// The token lifecycle on one registry, with the clock passed in.
func TestRegistryTokens(t *testing.T) {
	const ttl = time.Hour
	r := newRegistry(2, 16, ttl)
	t0 := time.Unix(1700000000, 0)
	a, b, c := [16]byte{1}, [16]byte{2}, [16]byte{3}
	ipA, ipB := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("2001:db8::2")

	check := func(step string, tok [16]byte, at time.Time, want verifyResult, wantUser string, wantIP netip.Addr, wantExpires time.Time) {
		t.Helper()
		user, ip, expires, got := r.verify(tok, at.UnixNano(), nil)
		if got != want || string(user) != wantUser || ip != wantIP || (want == tokenValid && expires != wantExpires.UnixNano()) {
			t.Errorf("%s: verify = %q %v %v %d, want %q %v %v %v", step, user, ip, time.Unix(0, expires), got, wantUser, wantIP, wantExpires, want)
		}
	}
	live := func(step string, at time.Time, want int, wantEnded [tokenEndCount]uint64) {
		t.Helper()
		if n, ended := r.tokenCounts(at.UnixNano()); n != want || ended != wantEnded {
			t.Errorf("%s: %d live, ended %v; want %d, %v", step, n, ended, want, wantEnded)
		}
	}

	r.login(ipA, []byte("alice"), a, t0, false)
	check("after login", a, t0.Add(time.Minute), tokenValid, "alice", ipA, t0.Add(ttl))
	check("never issued", c, t0, tokenUnknown, "", netip.Addr{}, time.Time{})
	if !r.logout(a, t0.Add(time.Minute).UnixNano()) {
		t.Fatal("logout of a live token said no")
	}
	check("after logout", a, t0.Add(time.Minute), tokenUnknown, "", netip.Addr{}, time.Time{})
	if r.logout(a, t0.Add(time.Minute).UnixNano()) {
		t.Error("a second logout said yes")
	}
	live("after logout", t0.Add(time.Minute), 0, [tokenEndCount]uint64{tokenLoggedOut: 1})

	r.login(ipA, []byte("alice"), a, t0.Add(2*time.Minute), false)
	r.login(ipA, []byte("alice2"), b, t0.Add(3*time.Minute), true) // same ip, a user the users file gives it to: replaces a
	check("replaced", a, t0.Add(3*time.Minute), tokenUnknown, "", netip.Addr{}, time.Time{})
	check("replacement", b, t0.Add(3*time.Minute), tokenValid, "alice2", ipA, t0.Add(3*time.Minute+ttl))

	r.login(ipB, []byte("bob"), c, t0.Add(4*time.Minute), false)
	live("two north servers", t0.Add(4*time.Minute), 2, [tokenEndCount]uint64{tokenLoggedOut: 1, tokenReplaced: 1})
	check("b at its last nanosecond", b, t0.Add(3*time.Minute+ttl-1), tokenValid, "alice2", ipA, t0.Add(3*time.Minute+ttl))
	check("b expired", b, t0.Add(3*time.Minute+ttl), tokenHasExpired, "", netip.Addr{}, time.Time{})
	check("b after expiry", b, t0.Add(3*time.Minute+ttl), tokenUnknown, "", netip.Addr{}, time.Time{})
	check("c still valid", c, t0.Add(3*time.Minute+ttl), tokenValid, "bob", ipB, t0.Add(4*time.Minute+ttl))
	live("one expired", t0.Add(3*time.Minute+ttl), 1, [tokenEndCount]uint64{tokenExpired: 1, tokenLoggedOut: 1, tokenReplaced: 1})

	// A third ip at the bound of 2 forgets the least recently seen
	// (ipA, whose token had expired) and nothing of bob's.
	r.login(netip.MustParseAddr("192.0.2.3"), []byte("carol"), a, t0.Add(5*time.Minute), false)
	live("third ip", t0.Add(5*time.Minute), 2, [tokenEndCount]uint64{tokenExpired: 1, tokenLoggedOut: 1, tokenReplaced: 1})
	live("all expired", t0.Add(5*time.Minute+ttl), 0, [tokenEndCount]uint64{tokenExpired: 3, tokenLoggedOut: 1, tokenReplaced: 1})

	// A live token goes with its north server when the bound forgets it.
	r = newRegistry(1, 16, ttl)
	r.login(ipA, []byte("alice"), a, t0, false)
	r.login(ipB, []byte("bob"), b, t0, false)
	check("evicted", a, t0, tokenUnknown, "", netip.Addr{}, time.Time{})
	check("evicting", b, t0, tokenValid, "bob", ipB, t0.Add(ttl))
	live("evicted", t0, 1, [tokenEndCount]uint64{tokenEvicted: 1})
}
