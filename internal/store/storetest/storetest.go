// Package storetest is the conformance suite every store.Store passes, in
// the way testing/fstest checks any fs.FS: the memory store and the Redis
// store run the same cases, and a third store is done when it passes them
// too.
package storetest

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"

	"northd/internal/store"
	"northd/internal/testdeps"
)

// Options are the bounds a case asks its store for.
type Options struct {
	Max        int           // north servers held
	MaxPerUser int           // north servers one username holds; 0 for no bound
	TokenTTL   time.Duration // how long a token verifies
}

// NewStore makes an empty store, of its own, within o's bounds, for one
// case; it is torn down when t ends.
type NewStore func(t *testing.T, o Options) store.Store

// Run runs every case against the stores newStore makes.
func Run(t *testing.T, newStore NewStore) {
	cases := []struct {
		name string
		run  func(*testing.T, NewStore)
	}{
		{"LoginVerify", testLoginVerify},
		{"Replace", testReplace},
		{"Logout", testLogout},
		{"Holder", testHolder},
		{"Tenure", testTenure},
		{"TenureAfterForgetting", testTenureAfterForgetting},
		{"Expiry", testExpiry},
		{"Bound", testBound},
		{"Claim", testClaim},
		{"MaxPerUser", testMaxPerUser},
		{"EndUserTokens", testEndUserTokens},
		{"EndUserTokensOutside", testEndUserTokensOutside},
		{"Paging", testPaging},
		{"OneUserWithManyIPsEvictsNoOtherUser", testFlood},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { c.run(t, newStore) })
	}
}

var hour = Options{Max: 100, MaxPerUser: 16, TokenTTL: time.Hour}

func ipN(n int) netip.Addr {
	return netip.AddrFrom4([4]byte{10, byte(n >> 16), byte(n >> 8), byte(n)})
}

func newToken() [16]byte {
	var t [16]byte
	rand.Read(t[:])
	return t
}

// login logs username in from ip and fails the test on an error.
func login(t *testing.T, s store.Store, ip netip.Addr, username string, takeover bool) ([16]byte, bool) {
	t.Helper()
	token, claimed, err := s.Login(ip, []byte(username), newToken(), time.Now(), takeover)
	if err != nil {
		t.Fatalf("login of %s from %v: %v", username, ip, err)
	}
	return token, claimed
}

func mustLogin(t *testing.T, s store.Store, ip netip.Addr, username string) [16]byte {
	t.Helper()
	token, claimed := login(t, s, ip, username, false)
	if !claimed {
		t.Fatalf("login of %s from %v refused: the ip is another username's", username, ip)
	}
	return token
}

func verify(t *testing.T, s store.Store, token [16]byte) store.Token {
	t.Helper()
	v, err := s.Verify(token, time.Now(), make([]byte, 0, 64))
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	return v
}

func valid(t *testing.T, s store.Store, token [16]byte) bool {
	t.Helper()
	return verify(t, s, token).Result == store.Valid
}

func count(t *testing.T, s store.Store) int {
	t.Helper()
	p, err := s.Page(context.Background(), store.Cursor{}, 1)
	if err != nil {
		t.Fatalf("page: %v", err)
	}
	return p.Count
}

// A login's token verifies, naming its username and ip, and expires one
// TTL after the login; a token never issued does not verify.
func testLoginVerify(t *testing.T, newStore NewStore) {
	s := newStore(t, hour)
	if !s.Ready() {
		testdeps.WaitFor(t, "the store to be ready", s.Ready)
	}
	before := time.Now()
	token := mustLogin(t, s, netip.MustParseAddr("192.0.2.10"), "north-1")
	after := time.Now()
	v := verify(t, s, token)
	if v.Result != store.Valid || string(v.Username) != "north-1" || v.IP != netip.MustParseAddr("192.0.2.10") {
		t.Fatalf("verify: %+v, want valid north-1 at 192.0.2.10", v)
	}
	// A store may keep time by its own clock, in milliseconds: allow it
	// a second either way.
	if lo, hi := before.Add(time.Hour-time.Second), after.Add(time.Hour+time.Second); v.Expires < lo.UnixNano() || v.Expires > hi.UnixNano() {
		t.Errorf("expires %v, want within a second of an hour after the login (%v to %v)", time.Unix(0, v.Expires), lo, hi)
	}
	if v := verify(t, s, newToken()); v.Result != store.Unknown {
		t.Errorf("a token never issued: %+v, want unknown", v)
	}
	// Username is appended to the buffer given, whose start is kept.
	v, err := s.Verify(token, time.Now(), []byte("x"))
	if err != nil || string(v.Username) != "xnorth-1" {
		t.Errorf("verify appending to %q: %q, %v", "x", v.Username, err)
	}
}

// A second login from an ip replaces the token it held: the old one stops
// verifying at once. Whoever logs in, the entry stays one.
func testReplace(t *testing.T, newStore NewStore) {
	s := newStore(t, hour)
	ip := netip.MustParseAddr("192.0.2.10")
	first := mustLogin(t, s, ip, "north-1")
	second := mustLogin(t, s, ip, "north-1")
	if valid(t, s, first) || !valid(t, s, second) {
		t.Errorf("after a second login: first valid %v, second valid %v; want false, true", valid(t, s, first), valid(t, s, second))
	}
	if n := count(t, s); n != 1 {
		t.Errorf("%d north servers, want 1", n)
	}
}

// Logout ends a token once: it stops verifying, and a second logout says
// it was not live. The north server stays listed.
func testLogout(t *testing.T, newStore NewStore) {
	s := newStore(t, hour)
	token := mustLogin(t, s, netip.MustParseAddr("192.0.2.10"), "north-1")
	other := mustLogin(t, s, netip.MustParseAddr("192.0.2.11"), "north-2")
	for i, want := range []bool{true, false} {
		ended, err := s.Logout(token, time.Now())
		if err != nil || ended != want {
			t.Fatalf("logout %d: %v, %v; want %v", i+1, ended, err, want)
		}
	}
	if valid(t, s, token) || !valid(t, s, other) {
		t.Error("logout ended the wrong token")
	}
	if ended, _ := s.Logout(newToken(), time.Now()); ended {
		t.Error("a token never issued was logged out")
	}
	if n := count(t, s); n != 2 {
		t.Errorf("%d north servers after a logout, want 2", n)
	}
}

// Holder names the username whose live token is at an ip, through
// logins, replacements and logouts, and expiry.
func testHolder(t *testing.T, newStore NewStore) {
	s := newStore(t, Options{Max: 100, MaxPerUser: 16, TokenTTL: 300 * time.Millisecond})
	ip, other := netip.MustParseAddr("192.0.2.10"), netip.MustParseAddr("192.0.2.11")
	holder := func() string {
		t.Helper()
		u, live, _, err := s.Holder(context.Background(), ip, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if !live {
			return "(none)"
		}
		return u
	}
	if h := holder(); h != "(none)" {
		t.Fatalf("before any login: %s", h)
	}
	first := mustLogin(t, s, ip, "north-1")
	if h := holder(); h != "north-1" {
		t.Fatalf("after north-1's login: %s", h)
	}
	if u, live, _, _ := s.Holder(context.Background(), other, time.Now()); live {
		t.Errorf("another ip: %s, live", u)
	}
	if _, err := s.Logout(first, time.Now()); err != nil {
		t.Fatal(err)
	}
	if h := holder(); h != "(none)" {
		t.Fatalf("after the logout: %s", h)
	}
	mustLogin(t, s, ip, "north-1")
	if h := holder(); h != "north-1" {
		t.Fatalf("after logging in again: %s", h)
	}
	testdeps.WaitFor(t, "the token to expire", func() bool { return holder() == "(none)" })
}

// holderTenure is Holder's answer at ip: live, and the tenure.
func holderTenure(t *testing.T, s store.Store, ip netip.Addr) (bool, store.Tenure) {
	t.Helper()
	_, live, tenure, err := s.Holder(context.Background(), ip, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return live, tenure
}

// unheld is what publishing learns of ip while no one holds it: the count
// every later login there exceeds.
func unheld(t *testing.T, s store.Store, ip netip.Addr) uint64 {
	t.Helper()
	live, tenure := holderTenure(t, s, ip)
	if live {
		t.Fatalf("%v is held", ip)
	}
	return tenure.Login
}

// nextAfter reports whether the login of tenure is the next at its ip
// after the moment Holder counted published, nothing said: an event
// published then to the unheld ip is for it (events.Target's rule).
func nextAfter(tenure store.Tenure, published uint64) bool {
	return tenure.Prev <= published && published < tenure.Login
}

// A tenure lasts while one username logs in at an ip, through logouts:
// an event published to the ip while no one holds it is for the next
// login there and its username's later ones, never for a later username
// at the ip; Verify and Holder tell the same tenure.
func testTenure(t *testing.T, newStore NewStore) {
	s := newStore(t, hour)
	ip, other := netip.MustParseAddr("192.0.2.10"), netip.MustParseAddr("192.0.2.11")
	tenureOf := func(token [16]byte) store.Tenure {
		t.Helper()
		v := verify(t, s, token)
		if v.Result != store.Valid {
			t.Fatalf("verify: %+v", v)
		}
		if live, held := holderTenure(t, s, ip); !live || held != v.Tenure {
			t.Fatalf("Holder says live %v, tenure %+v; Verify %+v", live, held, v.Tenure)
		}
		return v.Tenure
	}
	logout := func(token [16]byte) {
		t.Helper()
		if _, err := s.Logout(token, time.Now()); err != nil {
			t.Fatal(err)
		}
	}

	never := unheld(t, s, ip) // before any login
	mustLogin(t, s, other, "north-9")
	first := mustLogin(t, s, ip, "north-1")
	t1 := tenureOf(first)
	if !nextAfter(t1, never) {
		t.Errorf("the first login at the ip, %+v, is not the next after %d", t1, never)
	}
	logout(first)
	out := unheld(t, s, ip)
	if out < t1.Login {
		t.Errorf("logged out, the count %d is before the login's %d", out, t1.Login)
	}
	mustLogin(t, s, other, "north-9")
	again := mustLogin(t, s, ip, "north-1")
	t2 := tenureOf(again)
	if !nextAfter(t2, never) || !nextAfter(t2, out) {
		t.Errorf("north-1 logging in again, %+v, is not the one tenure after %d and %d", t2, never, out)
	}
	logout(again)
	out2 := unheld(t, s, ip)
	second := mustLogin(t, s, ip, "north-2")
	t3 := tenureOf(second)
	if nextAfter(t3, never) || nextAfter(t3, out) {
		t.Errorf("north-2, after north-1 at the ip, %+v, is next after %d or %d, north-1's", t3, never, out)
	}
	if !nextAfter(t3, out2) {
		t.Errorf("north-2, %+v, is not the next after %d", t3, out2)
	}
	// Taking the ip over starts a tenure as well.
	third, claimed := login(t, s, ip, "north-3", true)
	if !claimed {
		t.Fatal("takeover refused")
	}
	if t4 := tenureOf(third); nextAfter(t4, out2) || t4.Prev < t3.Login {
		t.Errorf("north-3, taking over from north-2, %+v, is next after %d, north-2's", t4, out2)
	}
}

// A store that forgets an ip at its bound forgets its tenures too: the
// next login there, under any username, is not the one an event
// published before for the ip's forgotten holder was for, but one
// published after the forgetting is for it.
func testTenureAfterForgetting(t *testing.T, newStore NewStore) {
	s := newStore(t, Options{Max: 1, TokenTTL: time.Hour})
	a, b := netip.MustParseAddr("192.0.2.10"), netip.MustParseAddr("192.0.2.11")
	first := mustLogin(t, s, a, "north-1")
	if _, err := s.Logout(first, time.Now()); err != nil {
		t.Fatal(err)
	}
	before := unheld(t, s, a)
	mustLogin(t, s, b, "north-2") // a is forgotten
	after := unheld(t, s, a)
	if n := count(t, s); n != 1 {
		t.Fatalf("%d north servers, want the bound, 1", n)
	}
	v := verify(t, s, mustLogin(t, s, a, "north-1"))
	if nextAfter(v.Tenure, before) || !nextAfter(v.Tenure, after) {
		t.Errorf("north-1 back at its forgotten ip: %+v; next after %d (before the forgetting) %v, want false; after %d %v, want true",
			v.Tenure, before, nextAfter(v.Tenure, before), after, nextAfter(v.Tenure, after))
	}
}

// A token stops verifying once its TTL has passed. A store may say it
// expired or that it does not know it (Redis drops the key).
func testExpiry(t *testing.T, newStore NewStore) {
	s := newStore(t, Options{Max: 100, MaxPerUser: 16, TokenTTL: 200 * time.Millisecond})
	token := mustLogin(t, s, netip.MustParseAddr("192.0.2.10"), "north-1")
	testdeps.WaitFor(t, "the token to expire", func() bool { return !valid(t, s, token) })
	if r := verify(t, s, token).Result; r != store.Expired && r != store.Unknown {
		t.Errorf("an expired token: result %d", r)
	}
	if ended, _ := s.Logout(token, time.Now()); ended {
		t.Error("an expired token was logged out")
	}
}

// At the bound the least recently seen north server is forgotten, with
// its token.
func testBound(t *testing.T, newStore NewStore) {
	s := newStore(t, Options{Max: 3, TokenTTL: time.Hour})
	var tokens [5][16]byte
	for i := 1; i <= 3; i++ {
		tokens[i] = mustLogin(t, s, ipN(i), fmt.Sprint("north-", i))
	}
	tokens[1] = mustLogin(t, s, ipN(1), "north-1") // 2 is now the least recently seen
	tokens[4] = mustLogin(t, s, ipN(4), "north-4")
	for i, want := range []bool{1: true, 2: false, 3: true, 4: true} {
		if i > 0 && valid(t, s, tokens[i]) != want {
			t.Errorf("token of %v: valid %v, want %v", ipN(i), !want, want)
		}
	}
	if n := count(t, s); n != 3 {
		t.Errorf("%d north servers, want the bound, 3", n)
	}
}

// An ip whose live token is another username's is not taken over, unless
// the login says takeover; once that token ends, anyone may log in there.
func testClaim(t *testing.T, newStore NewStore) {
	s := newStore(t, hour)
	ip := netip.MustParseAddr("192.0.2.10")
	alice := mustLogin(t, s, ip, "alice")
	if _, claimed := login(t, s, ip, "bob", false); claimed {
		t.Fatal("bob took alice's ip while her token is live")
	}
	if !valid(t, s, alice) {
		t.Fatal("a refused login ended the holder's token")
	}
	carol, claimed := login(t, s, ip, "carol", true)
	if !claimed || valid(t, s, alice) || !valid(t, s, carol) {
		t.Fatalf("takeover: claimed %v, alice valid %v, carol valid %v; want true, false, true", claimed, valid(t, s, alice), valid(t, s, carol))
	}
	if v := verify(t, s, carol); string(v.Username) != "carol" {
		t.Errorf("the ip's token names %q, want carol", v.Username)
	}
	s.Logout(carol, time.Now())
	if _, claimed := login(t, s, ip, "bob", false); !claimed {
		t.Error("bob refused an ip whose token had ended")
	}
}

// One username holds at most MaxPerUser north servers: past it, its least
// recently seen goes with its token, and no other username's.
func testMaxPerUser(t *testing.T, newStore NewStore) {
	s := newStore(t, Options{Max: 100, MaxPerUser: 3, TokenTTL: time.Hour})
	other := mustLogin(t, s, ipN(1000), "other")
	var tokens [5][16]byte
	for i := 1; i <= 3; i++ {
		tokens[i] = mustLogin(t, s, ipN(i), "north")
	}
	tokens[1] = mustLogin(t, s, ipN(1), "north") // 1 is now its newest, 2 its oldest
	tokens[4] = mustLogin(t, s, ipN(4), "north")
	for i, want := range []bool{1: true, 2: false, 3: true, 4: true} {
		if i > 0 && valid(t, s, tokens[i]) != want {
			t.Errorf("north's token on %v: valid %v, want %v", ipN(i), !want, want)
		}
	}
	if !valid(t, s, other) {
		t.Error("another username's token ended")
	}
	if n := count(t, s); n != 4 {
		t.Errorf("%d north servers held, want 4: north's 3 and other's", n)
	}
	// The forgotten ip is free: another username takes it at once.
	if _, claimed := login(t, s, ipN(2), "other", false); !claimed {
		t.Error("the ip north lost past its bound is still held")
	}
}

// EndUserTokens ends every live token of one username, and only those.
func testEndUserTokens(t *testing.T, newStore NewStore) {
	s := newStore(t, hour)
	a1 := mustLogin(t, s, ipN(1), "alice")
	a2 := mustLogin(t, s, ipN(2), "alice")
	b := mustLogin(t, s, ipN(3), "bob")
	s.Logout(a2, time.Now())
	a2 = mustLogin(t, s, ipN(2), "alice")
	n, err := s.EndUserTokens(context.Background(), "alice")
	if err != nil || n != 2 {
		t.Fatalf("EndUserTokens: %d, %v; want 2", n, err)
	}
	if valid(t, s, a1) || valid(t, s, a2) || !valid(t, s, b) {
		t.Error("EndUserTokens ended the wrong tokens")
	}
	if n, _ := s.EndUserTokens(context.Background(), "alice"); n != 0 {
		t.Errorf("a second EndUserTokens ended %d, want 0", n)
	}
	if n, _ := s.EndUserTokens(context.Background(), "nobody"); n != 0 {
		t.Errorf("EndUserTokens of an unknown user ended %d", n)
	}
}

// EndUserTokensOutside ends one username's live tokens at the ips outside
// the prefixes kept, and only those: its others, and another username's
// at an ip outside them, stay.
func testEndUserTokensOutside(t *testing.T, newStore NewStore) {
	s := newStore(t, hour)
	in := mustLogin(t, s, ipN(1), "alice")
	out := mustLogin(t, s, ipN(2), "alice")
	inPrefix := mustLogin(t, s, ipN(300), "alice") // 10.0.1.44
	mapped := mustLogin(t, s, netip.AddrFrom16(ipN(3).As16()), "alice")
	b := mustLogin(t, s, ipN(4), "bob")
	keep := []netip.Prefix{netip.MustParsePrefix("10.0.0.1/32"), netip.MustParsePrefix("10.0.1.0/24"), netip.MustParsePrefix("10.0.0.3/32")}
	n, err := s.EndUserTokensOutside(context.Background(), "alice", keep)
	if err != nil || n != 1 {
		t.Fatalf("EndUserTokensOutside: %d, %v; want 1", n, err)
	}
	if !valid(t, s, in) || valid(t, s, out) || !valid(t, s, inPrefix) || !valid(t, s, mapped) || !valid(t, s, b) {
		t.Error("EndUserTokensOutside ended the wrong tokens")
	}
	// Nothing kept: every one of alice's ends, none of bob's.
	if n, _ := s.EndUserTokensOutside(context.Background(), "alice", nil); n != 3 {
		t.Errorf("with nothing kept, %d ended; want alice's other 3", n)
	}
	if !valid(t, s, b) {
		t.Error("bob's token ended with alice's")
	}
	if n, _ := s.EndUserTokensOutside(context.Background(), "nobody", keep); n != 0 {
		t.Errorf("EndUserTokensOutside of an unknown user ended %d", n)
	}
}

// Pages list every north server once, most recently seen first, and the
// last page's cursor is zero.
func testPaging(t *testing.T, newStore NewStore) {
	s := newStore(t, hour)
	const n = 7
	for i := 1; i <= n; i++ {
		mustLogin(t, s, ipN(i), fmt.Sprint("north-", i))
	}
	var got []string
	after := store.Cursor{}
	for pages := 1; ; pages++ {
		p, err := s.Page(context.Background(), after, 3)
		if err != nil {
			t.Fatal(err)
		}
		if p.Count != n {
			t.Errorf("page %d: count %d, want %d", pages, p.Count, n)
		}
		for _, ns := range p.NorthServers {
			got = append(got, ns.IP+"/"+ns.Username)
			if len(ns.TokenDigestPrefix) != 8 || ns.Logins != 1 || ns.LastLogin.IsZero() {
				t.Errorf("north server %+v: want an 8-digit digest prefix, 1 login and its time", ns)
			}
		}
		if p.Next == (store.Cursor{}) {
			break
		}
		if pages > n {
			t.Fatal("the pages do not end")
		}
		// The cursor is handed out as text and read back.
		var err2 error
		if after, err2 = store.ParseCursor(p.Next.String()); err2 != nil {
			t.Fatal(err2)
		}
	}
	want := []string{"10.0.0.7/north-7", "10.0.0.6/north-6", "10.0.0.5/north-5", "10.0.0.4/north-4", "10.0.0.3/north-3", "10.0.0.2/north-2", "10.0.0.1/north-1"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("pages listed %v, want %v", got, want)
	}
}

// One valid user logging in with a new ip per request, from several
// goroutines at once, pushes out only its own north servers, never
// another username's, however far past the bound it goes.
func testFlood(t *testing.T, newStore NewStore) {
	const others, flood, workers = 1000, 100000, 8
	s := newStore(t, Options{Max: 65536, MaxPerUser: 16, TokenTTL: time.Hour})
	tokens := make([][16]byte, others)
	for i := range tokens {
		tokens[i] = mustLogin(t, s, netip.AddrFrom4([4]byte{192, 0, 2 + byte(i>>8), byte(i)}), fmt.Sprintf("north-%d", i))
	}
	start := time.Now()
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < flood; i += workers {
				_, claimed, err := s.Login(ipN(i), []byte("mallory"), newToken(), time.Now(), false)
				if err != nil || !claimed {
					t.Errorf("mallory's login %d: claimed %v, %v", i, claimed, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	ended := 0
	for i := range tokens {
		if !valid(t, s, tokens[i]) {
			ended++
		}
	}
	t.Logf("after %d logins of one user with %d ips (%v), %d of %d other users' tokens ended; %d north servers held",
		flood, flood, time.Since(start).Round(time.Millisecond), ended, others, count(t, s))
	if n := count(t, s); ended != 0 || n != others+16 {
		t.Errorf("%d other users' tokens ended, %d north servers held; want 0 and %d", ended, n, others+16)
	}
}
