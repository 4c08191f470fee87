package main

import (
	"encoding/hex"
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestParseBearer(t *testing.T) {
	const tok = "0123456789abcdef0123456789abcdef"
	want, _ := hex.DecodeString(tok)
	tests := []struct {
		value string
		want  bearerProblem
	}{
		{"Bearer " + tok, bearerOK},
		{"bearer " + tok, bearerOK},
		{"BEARER   " + tok, bearerOK},
		{"Bearer " + strings.ToUpper(tok), bearerMalformed},
		{"Bearer " + tok[:31], bearerMalformed},
		{"Bearer " + tok + "0", bearerMalformed},
		{"Bearer " + tok[:31] + "g", bearerMalformed},
		{"Bearer " + tok + " ", bearerMalformed},
		{"Bearer 01234567-89ab-cdef-0123-456789abcdef", bearerMalformed},
		{"Bearer", bearerMalformed},
		{"Bearer ", bearerMalformed},
		{"Bearer\t" + tok, bearerNotBearer},
		{"Bearerx " + tok, bearerNotBearer},
		{"Basic YWxpY2U6c2VjcmV0", bearerNotBearer},
		{tok, bearerNotBearer},
		{"", bearerNotBearer},
		{"Bear", bearerNotBearer},
	}
	for _, tt := range tests {
		got, problem := parseBearer([]byte(tt.value))
		if problem != tt.want {
			t.Errorf("parseBearer(%q) = %q, want %q", tt.value, bearerReasons[problem], bearerReasons[tt.want])
		}
		if problem == bearerOK && string(got[:]) != string(want) {
			t.Errorf("parseBearer(%q) = %x", tt.value, got)
		}
	}
}

// FuzzParseBearer checks the parser against a plain statement of the
// format: the scheme in any case, one or more spaces, then exactly 32
// lowercase hex digits, which encoding/hex decodes to the token.
func FuzzParseBearer(f *testing.F) {
	for _, s := range []string{"Bearer 0123456789abcdef0123456789abcdef", "bearer  00", "Basic x", "", "Bearer", "BeArEr 0123456789ABCDEF0123456789abcdef"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		got, problem := parseBearer([]byte(v))
		var want [16]byte
		ok := false
		if len(v) >= 6 && strings.EqualFold(v[:6], "bearer") && (len(v) == 6 || v[6] == ' ') {
			rest := strings.TrimLeft(v[6:], " ")
			if len(rest) == 32 && strings.ToLower(rest) == rest {
				_, err := hex.Decode(want[:], []byte(rest))
				ok = err == nil
			}
			if !ok && problem != bearerMalformed {
				t.Fatalf("parseBearer(%q) = %q, want malformed", v, bearerReasons[problem])
			}
		} else if problem != bearerNotBearer {
			t.Fatalf("parseBearer(%q) = %q, want not_bearer", v, bearerReasons[problem])
		}
		if ok && (problem != bearerOK || got != want) {
			t.Fatalf("parseBearer(%q) = %x, %q; want %x", v, got, bearerReasons[problem], want)
		}
	})
}

func TestAppendJSONString(t *testing.T) {
	tests := []struct{ in, want string }{
		{"north", `"north"`},
		{"", `""`},
		{`a"b\c`, `"a\"b\\c"`},
		{"<&>", `"\u003c\u0026\u003e"`},
		{"é😀", `"é😀"`},
		{"tab\there", `"tab\there"`},
	}
	for _, tt := range tests {
		if got := string(appendJSONString([]byte("x"), []byte(tt.in))); got != "x"+tt.want {
			t.Errorf("appendJSONString(%q) = %s, want x%s", tt.in, got, tt.want)
		}
	}
}

// FuzzAppendJSONString pins the fast path to encoding/json's output.
func FuzzAppendJSONString(f *testing.F) {
	for _, s := range []string{"north", `a"b`, "<", "\x7f", "é", "\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !utf8.ValidString(s) {
			return // usernames come from a body checked to be UTF-8
		}
		want, _ := json.Marshal(s)
		if got := appendJSONString(nil, []byte(s)); string(got) != string(want) {
			t.Fatalf("appendJSONString(%q) = %s, want %s", s, got, want)
		}
	})
}

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
