package memory

import (
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"northd/internal/store"
)

func ipN(n int) netip.Addr {
	return netip.AddrFrom4([4]byte{10, byte(n >> 16), byte(n >> 8), byte(n)})
}

// The report's token_digest_prefix is the start of the SHA-256 of the 16
// token bytes: for {9, 0, …, 0} (printf '\x09' plus 15 zero bytes |
// sha256sum) d6370cab.
func TestRegistryForgetsLeastRecentlySeen(t *testing.T) {
	r := newRegistry(3, 3, time.Hour)
	at := time.Unix(1700000000, 0)
	for i := 1; i <= 3; i++ {
		r.login(ipN(i), []byte("user"), [16]byte{byte(i)}, at.Add(time.Duration(i)*time.Second), false)
	}
	r.login(ipN(1), []byte("again"), [16]byte{9}, at.Add(4*time.Second), true) // 1 is now the newest; 2 the oldest
	r.login(ipN(4), []byte("new"), [16]byte{4}, at.Add(5*time.Second), false)

	if r.count() != 3 || r.evictions() != 1 {
		t.Errorf("count %d evictions %d, want 3 and 1", r.count(), r.evictions())
	}
	got, next := r.page(store.Cursor{}, 100)
	var order []string
	for _, e := range got {
		order = append(order, e.IP+"/"+e.Username)
	}
	if want := "10.0.0.4/new 10.0.0.1/again 10.0.0.3/user"; strings.Join(order, " ") != want || next != (store.Cursor{}) {
		t.Fatalf("entries %v (next %v), want %s: 10.0.0.2 forgotten first", order, next, want)
	}
	if e := got[1]; e.Logins != 2 || e.TokenDigestPrefix != "d6370cab" || !e.LastLogin.Equal(at.Add(4*time.Second)) {
		t.Errorf("entry for 10.0.0.1 = %+v", e)
	}
}

// A large registry is sharded; its tokens carry their shard, pages walk
// every entry once, and the bound holds over the shards together.
func TestShardedRegistry(t *testing.T) {
	const max = 65536
	r := newRegistry(max, max, time.Hour)
	if len(r.shards) != registryMaxShards {
		t.Fatalf("%d shards, want %d", len(r.shards), registryMaxShards)
	}
	at := time.Unix(1700000000, 0)
	tokens := make(map[netip.Addr][16]byte)
	for i := range max + 1000 {
		// Some logins at the same moment, to test ties.
		tok, _ := r.login(ipN(i), []byte("n"), [16]byte{byte(i), byte(i >> 8), byte(i >> 16), 15: 0xff}, at.Add(time.Duration(i/3)), false)
		if want := byte(0xff)&^r.mask | byte(r.shardOf(ipN(i))); tok[15] != want || tok[0] != byte(i) {
			t.Fatalf("token %x for shard %d", tok, r.shardOf(ipN(i)))
		}
		tokens[ipN(i)] = tok
	}
	// Each shard holds its share, or every ip it was given if fewer.
	perShard := make([]int, len(r.shards))
	for ip := range tokens {
		perShard[r.shardOf(ip)]++
	}
	want := 0
	for i, n := range perShard {
		want += min(n, r.shards[i].max)
	}
	if n := r.count(); n != want || n > max {
		t.Fatalf("count %d, want %d (each shard its share of %d)", n, want, max)
	}
	seen := make(map[string]bool)
	var cursor store.Cursor
	pages := 0
	var prev time.Time
	for {
		page, next := r.page(cursor, 1000)
		for _, e := range page {
			if seen[e.IP] {
				t.Fatalf("%s on two pages", e.IP)
			}
			if !prev.IsZero() && e.LastLogin.After(prev) {
				t.Fatalf("%s seen at %v after one seen at %v", e.IP, e.LastLogin, prev)
			}
			seen[e.IP], prev = true, e.LastLogin
		}
		pages++
		if next == (store.Cursor{}) {
			break
		}
		cursor = next
	}
	if len(seen) != r.count() || pages != (r.count()+999)/1000 {
		t.Fatalf("pages held %d entries in %d pages, registry %d", len(seen), pages, r.count())
	}
	// Every remembered north server's token verifies, through its shard.
	for ip, tok := range tokens {
		_, got, _, _, result := r.verify(tok, at.UnixNano(), nil)
		if seen[ip.String()] != (result == store.Valid) || (result == store.Valid && got != ip) {
			t.Fatalf("token of %v: %v (remembered: %v)", ip, result, seen[ip.String()])
		}
	}
	c, err := store.ParseCursor(cursor.String())
	if err != nil || c != cursor {
		t.Errorf("cursor %v does not round-trip: %v %v", cursor, c, err)
	}
	for _, bad := range []string{"", "x", "12", "0_10.0.0.1", "12_nope"} {
		if _, err := store.ParseCursor(bad); err == nil {
			t.Errorf("store.ParseCursor(%q) accepted it", bad)
		}
	}
}

func TestRegistryStaysBoundedUnderConcurrentLogins(t *testing.T) {
	r := newRegistry(100, 100, time.Hour)
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 5000; i++ {
				r.login(ipN(g*5000+i), []byte("north"), [16]byte{}, time.Now(), false)
				if i%500 == 0 {
					r.page(store.Cursor{}, 10)
				}
			}
		}()
	}
	wg.Wait()
	if r.count() != 100 {
		t.Fatalf("Len %d, want the bound 100", r.count())
	}
	if page, _ := r.page(store.Cursor{}, 1000); len(page) != 100 {
		t.Fatalf("list holds %d entries, map 100", len(page))
	}
	if r.evictions() != 40000-100 {
		t.Fatalf("Evicted %d, want %d", r.evictions(), 40000-100)
	}
}

func TestRegistryKnownIPAllocatesNothing(t *testing.T) {
	r := newRegistry(2, 16, time.Hour)
	at := time.Now()
	r.login(ipN(1), []byte("north-1"), [16]byte{}, at, false)
	r.login(ipN(2), []byte("north-2"), [16]byte{}, at, false)
	if n := testing.AllocsPerRun(1000, func() { r.login(ipN(1), []byte("north-1"), [16]byte{1}, at, false) }); n != 0 {
		t.Errorf("a login from a known ip allocates %v times", n)
	}
	// At the bound, a new ip reuses the forgotten entry.
	i := 3
	if n := testing.AllocsPerRun(1000, func() { r.login(ipN(i), []byte("north-x"), [16]byte{}, at, false); i++ }); n != 0 {
		t.Errorf("a login from a new ip at the bound allocates %v times", n)
	}
}

// A page of /north/servers holds each shard's lock only while it copies
// a few entries (and those tied with the last), however full the registry
// and however deep the page: what a login may wait for is bounded by the
// page size, not by the registry's. Walking a shard a few at a time lists
// each of its entries after the cursor once, in order.
func TestPageHoldsEachLockForAPageOnly(t *testing.T) {
	// Room for twice as many, so that no shard forgets any; 0: no bound
	// per username.
	r := newRegistry(2*65536, 0, time.Hour)
	at := time.Unix(1700000000, 0)
	for i := range 65536 {
		r.login(ipN(i), []byte("n"), [16]byte{}, at.Add(time.Duration(i)), false)
	}
	const limit, batch = 100, 8
	for _, tt := range []struct {
		name   string
		after  store.Cursor
		newest int // the first entry of the page: ipN(newest)
	}{
		{"first page", store.Cursor{}, 65535},
		{"deep page", store.Cursor{LastLogin: at.Add(30000).UnixNano(), IP: ipN(30000)}, 29999},
	} {
		t.Run(tt.name, func(t *testing.T) {
			walked := 0
			for i := range r.shards {
				w := &shardWalk{shard: &r.shards[i], after: tt.after}
				prev := tt.after
				for w.fill(batch) {
					if len(w.buf) > batch {
						t.Fatalf("shard %d copied %d entries under its lock for a batch of %d", i, len(w.buf), batch)
					}
					for _, e := range w.buf {
						if c := (store.Cursor{LastLogin: e.lastLogin, IP: e.ip}); prev != (store.Cursor{}) && prev.Compare(c) >= 0 {
							t.Fatalf("shard %d: %v after %v", i, c, prev)
						}
						prev = store.Cursor{LastLogin: e.lastLogin, IP: e.ip}
						walked++
					}
				}
			}
			if walked != tt.newest+1 {
				t.Errorf("the shards' walks listed %d entries, want %d", walked, tt.newest+1)
			}
			page, next := r.page(tt.after, limit)
			if len(page) != limit {
				t.Fatalf("a page of %d entries", len(page))
			}
			for k, ns := range page {
				if want := ipN(tt.newest - k).String(); ns.IP != want {
					t.Fatalf("entry %d of the page is %s, want %s", k, ns.IP, want)
				}
			}
			last := tt.newest - limit + 1
			if want := (store.Cursor{LastLogin: at.Add(time.Duration(last)).UnixNano(), IP: ipN(last)}); next != want {
				t.Errorf("next %v, want %v", next, want)
			}
		})
	}
}

// North servers seen at the same moment are listed by ip, across shards,
// and a cursor among them goes on with the next ip.
func TestPagesOrderTiesByIP(t *testing.T) {
	r := newRegistry(4096, 0, time.Hour)
	at := time.Unix(1700000000, 0)
	for _, n := range []int{7, 3, 300, 12, 5, 1000, 1} {
		r.login(ipN(n), []byte("n"), [16]byte{}, at, false)
	}
	r.login(ipN(2), []byte("n"), [16]byte{}, at.Add(time.Second), false)
	var got []string
	var after store.Cursor
	for pages := 1; ; pages++ {
		page, next := r.page(after, 3)
		for _, ns := range page {
			got = append(got, ns.IP)
		}
		if next == (store.Cursor{}) || pages > 3 {
			break
		}
		after = next
	}
	if want := "10.0.0.2 10.0.0.1 10.0.0.3 10.0.0.5 10.0.0.7 10.0.0.12 10.0.1.44 10.0.3.232"; strings.Join(got, " ") != want {
		t.Errorf("pages listed %s, want %s", strings.Join(got, " "), want)
	}
}

// The token lifecycle on one registry, with the clock passed in.
func TestRegistryTokens(t *testing.T) {
	const ttl = time.Hour
	r := newRegistry(2, 16, ttl)
	t0 := time.Unix(1700000000, 0)
	a, b, c := [16]byte{1}, [16]byte{2}, [16]byte{3}
	ipA, ipB := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("2001:db8::2")

	check := func(step string, tok [16]byte, at time.Time, want store.Result, wantUser string, wantIP netip.Addr, wantExpires time.Time) {
		t.Helper()
		user, ip, expires, _, got := r.verify(tok, at.UnixNano(), nil)
		if got != want || string(user) != wantUser || ip != wantIP || (want == store.Valid && expires != wantExpires.UnixNano()) {
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
	check("after login", a, t0.Add(time.Minute), store.Valid, "alice", ipA, t0.Add(ttl))
	check("never issued", c, t0, store.Unknown, "", netip.Addr{}, time.Time{})
	if !r.logout(a, t0.Add(time.Minute).UnixNano()) {
		t.Fatal("logout of a live token said no")
	}
	check("after logout", a, t0.Add(time.Minute), store.Unknown, "", netip.Addr{}, time.Time{})
	if r.logout(a, t0.Add(time.Minute).UnixNano()) {
		t.Error("a second logout said yes")
	}
	live("after logout", t0.Add(time.Minute), 0, [tokenEndCount]uint64{tokenLoggedOut: 1})

	r.login(ipA, []byte("alice"), a, t0.Add(2*time.Minute), false)
	r.login(ipA, []byte("alice2"), b, t0.Add(3*time.Minute), true) // same ip, a user the users file gives it to: replaces a
	check("replaced", a, t0.Add(3*time.Minute), store.Unknown, "", netip.Addr{}, time.Time{})
	check("replacement", b, t0.Add(3*time.Minute), store.Valid, "alice2", ipA, t0.Add(3*time.Minute+ttl))

	r.login(ipB, []byte("bob"), c, t0.Add(4*time.Minute), false)
	live("two north servers", t0.Add(4*time.Minute), 2, [tokenEndCount]uint64{tokenLoggedOut: 1, tokenReplaced: 1})
	check("b at its last nanosecond", b, t0.Add(3*time.Minute+ttl-1), store.Valid, "alice2", ipA, t0.Add(3*time.Minute+ttl))
	check("b expired", b, t0.Add(3*time.Minute+ttl), store.Expired, "", netip.Addr{}, time.Time{})
	check("b after expiry", b, t0.Add(3*time.Minute+ttl), store.Unknown, "", netip.Addr{}, time.Time{})
	check("c still valid", c, t0.Add(3*time.Minute+ttl), store.Valid, "bob", ipB, t0.Add(4*time.Minute+ttl))
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
	check("evicted", a, t0, store.Unknown, "", netip.Addr{}, time.Time{})
	check("evicting", b, t0, store.Valid, "bob", ipB, t0.Add(ttl))
	live("evicted", t0, 1, [tokenEndCount]uint64{tokenEvicted: 1})
}
