package main

import (
	"net/netip"
	"sync"
	"testing"
	"time"
)

func ipN(n int) netip.Addr {
	return netip.AddrFrom4([4]byte{10, byte(n >> 16), byte(n >> 8), byte(n)})
}

// The report's token_digest_prefix is the start of the SHA-256 of the 16
// token bytes: for {9, 0, …, 0} (printf '\x09' plus 15 zero bytes |
// sha256sum) d6370cab.
func TestRegistryForgetsLeastRecentlySeen(t *testing.T) {
	r := newRegistry(3, time.Hour)
	at := time.Unix(1700000000, 0)
	for i := 1; i <= 3; i++ {
		r.login(ipN(i), []byte("user"), [16]byte{byte(i)}, at)
	}
	r.login(ipN(1), []byte("again"), [16]byte{9}, at) // 1 is now the newest; 2 the oldest
	r.login(ipN(4), []byte("new"), [16]byte{4}, at)

	if _, ok := r.lookup(ipN(2)); ok {
		t.Error("10.0.0.2 should have been forgotten first")
	}
	if r.count() != 3 || r.evictions() != 1 {
		t.Errorf("Len %d Evicted %d, want 3 and 1", r.count(), r.evictions())
	}
	got := r.appendNewestFirst(nil, 0)
	var order []string
	for _, e := range got {
		order = append(order, e.IP+"/"+e.Username)
	}
	want := []string{"10.0.0.4/new", "10.0.0.1/again", "10.0.0.3/user"}
	if len(order) != len(want) {
		t.Fatalf("entries %v, want %v", order, want)
	}
	for i := range want {
		if order[i] != want[i] {
			t.Fatalf("entries %v, want %v", order, want)
		}
	}
	e, _ := r.lookup(ipN(1))
	if e.Logins != 2 || e.TokenDigestPrefix != "d6370cab" || !e.LastLogin.Equal(at) {
		t.Errorf("entry for 10.0.0.1 = %+v", e)
	}
}

func TestRegistryStaysBoundedUnderConcurrentLogins(t *testing.T) {
	r := newRegistry(100, time.Hour)
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 5000; i++ {
				r.login(ipN(g*5000+i), []byte("north"), [16]byte{}, time.Now())
				if i%500 == 0 {
					r.appendNewestFirst(nil, 10)
				}
			}
		}()
	}
	wg.Wait()
	if r.count() != 100 {
		t.Fatalf("Len %d, want the bound 100", r.count())
	}
	if n := len(r.appendNewestFirst(nil, 0)); n != 100 {
		t.Fatalf("list holds %d entries, map 100", n)
	}
	if r.evictions() != 40000-100 {
		t.Fatalf("Evicted %d, want %d", r.evictions(), 40000-100)
	}
}

func TestRegistryKnownIPAllocatesNothing(t *testing.T) {
	r := newRegistry(2, time.Hour)
	at := time.Now()
	r.login(ipN(1), []byte("north-1"), [16]byte{}, at)
	r.login(ipN(2), []byte("north-2"), [16]byte{}, at)
	if n := testing.AllocsPerRun(1000, func() { r.login(ipN(1), []byte("north-1"), [16]byte{1}, at) }); n != 0 {
		t.Errorf("a login from a known ip allocates %v times", n)
	}
	// At the bound, a new ip reuses the forgotten entry.
	i := 3
	if n := testing.AllocsPerRun(1000, func() { r.login(ipN(i), []byte("north-x"), [16]byte{}, at); i++ }); n != 0 {
		t.Errorf("a login from a new ip at the bound allocates %v times", n)
	}
}
