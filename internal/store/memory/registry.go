package memory

import (
	"container/heap"
	"hash/maphash"
	"net/netip"
	"slices"
	"sync"
	"time"

	"northd/internal/store"
)

// Store remembers the north servers that logged in to one subsystem, one
// entry per ip, so the subsystem knows where to push data, and the one live
// token each of them holds; safe for concurrent use. It holds at most max
// entries, forgetting the least recently seen.
//
// It is split into shards by ip, each with its own lock and its share of
// the bound, so that logins on many cores do not queue on one lock. The
// bound is then kept per shard: the entry forgotten is the least recently
// seen of its shard. A token's last byte carries its shard's number in its
// low bits, so that verify and logout go straight to it; the token keeps
// 116 random bits.
type Store struct {
	shards []registryShard
	mask   byte
	seed   maphash.Seed
	users  *userIPs
}

const (
	registryMaxShards = 64
	// registryMinPerShard keeps small registries in one shard, exactly
	// least-recently-used.
	registryMinPerShard = 256
)

// newRegistry returns an empty registry that holds at most max entries,
// at most maxPerUser of them for one username (0: no such bound), whose
// tokens live tokenTTL.
func newRegistry(max, maxPerUser int, tokenTTL time.Duration) *Store {
	n := 1
	for n < registryMaxShards && max/(2*n) >= registryMinPerShard {
		n *= 2
	}
	r := &Store{shards: make([]registryShard, n), mask: byte(n - 1), seed: maphash.MakeSeed()}
	if maxPerUser > 0 {
		r.users = newUserIPs(maxPerUser)
	}
	for i := range r.shards {
		share := max / n
		if i < max%n {
			share++
		}
		r.shards[i] = newRegistryShard(share, tokenTTL, r.users)
	}
	return r
}

func (r *Store) shardOf(ip netip.Addr) int {
	a := ip.As16()
	return int(maphash.Bytes(r.seed, a[:]) & uint64(r.mask))
}

// login records a login of the north server at ip with token, which
// replaces the one it held, and returns the token as issued: with its
// shard's number in the low bits of its last byte. It reports false, and
// records nothing, when another username holds ip's live token, unless
// takeover (the users file lists ip as this username's).
func (r *Store) login(ip netip.Addr, username []byte, token [16]byte, at time.Time, takeover bool) ([16]byte, bool) {
	i := r.shardOf(ip)
	token[15] = token[15]&^r.mask | byte(i)
	over, ok := r.shards[i].login(ip, username, token, at, takeover)
	if over.IsValid() {
		// Past -max-ips-per-user: the username's least recently seen
		// north server goes, in its own shard.
		r.shards[r.shardOf(over)].forgetOverUser(over, username)
	}
	return token, ok
}

// endUserTokens ends the live tokens username holds, because the users
// file no longer has it or changed its password; it reports how many.
func (r *Store) endUserTokens(username string) int {
	n := 0
	for _, ip := range r.users.ips(username) {
		n += r.shards[r.shardOf(ip)].endUserToken(ip, username)
	}
	return n
}

// endUserTokensOutside ends the live tokens username holds at ips that
// none of keep contains, because the users file narrowed the ips it may
// claim; it reports how many.
func (r *Store) endUserTokensOutside(username string, keep []netip.Prefix) int {
	n := 0
	for _, ip := range r.users.ips(username) {
		if !store.Contains(keep, ip) {
			n += r.shards[r.shardOf(ip)].endUserToken(ip, username)
		}
	}
	return n
}

func (r *Store) verify(token [16]byte, now int64, usernameDst []byte) (username []byte, ip netip.Addr, expires int64, tenure store.Tenure, result store.Result) {
	return r.shards[token[15]&r.mask].verify(token, now, usernameDst)
}

func (r *Store) holder(ip netip.Addr, now int64) (string, bool, store.Tenure) {
	return r.shards[r.shardOf(ip)].holder(ip, now)
}

func (r *Store) logout(token [16]byte, now int64) bool {
	return r.shards[token[15]&r.mask].logout(token, now)
}

// tokenCounts reports the live tokens at now and how many have ended, by
// why.
func (r *Store) tokenCounts(now int64) (live int, ended [tokenEndCount]uint64) {
	for i := range r.shards {
		l, e := r.shards[i].tokenCounts(now)
		live += l
		for why := range ended {
			ended[why] += e[why]
		}
	}
	return live, ended
}

// count reports how many north servers are remembered.
func (r *Store) count() int {
	n := 0
	for i := range r.shards {
		n += r.shards[i].count()
	}
	return n
}

// evictions reports how many were forgotten to stay within the bound.
func (r *Store) evictions() uint64 {
	var n uint64
	for i := range r.shards {
		n += r.shards[i].evictions()
	}
	return n
}

// page returns up to limit north servers seen after cursor, most recently
// seen first, and the cursor of the next page (the zero cursor when this
// is the last). Each shard's list is already in that order, so they are
// merged (k-way, through a heap) rather than copied whole and sorted: each
// shard is walked a few entries at a time under its own lock, resuming
// where it stopped, and only as far as the page needs (a deep page's first
// walk steps past the newer entries without copying them). A page copies
// O(limit + shards) entries and merges them in O(limit · log shards), and
// formats them with no lock held, so reading a full registry never holds
// up logins for long.
func (r *Store) page(after store.Cursor, limit int) ([]store.NorthServer, store.Cursor) {
	batch := min(limit, max(4, 2*limit/len(r.shards)))
	walks := make(shardWalks, 0, len(r.shards))
	for i := range r.shards {
		w := &shardWalk{shard: &r.shards[i], after: after}
		if w.fill(batch) {
			walks = append(walks, w)
		}
	}
	heap.Init(&walks)
	copies := make([]northServerCopy, 0, limit)
	for len(walks) > 0 && len(copies) < limit {
		w := walks[0]
		copies = append(copies, w.buf[w.next])
		if w.next++; w.next < len(w.buf) || w.fill(batch) {
			heap.Fix(&walks, 0)
		} else {
			heap.Pop(&walks)
		}
	}
	var next store.Cursor
	if len(walks) > 0 {
		last := copies[len(copies)-1]
		next = store.Cursor{LastLogin: last.lastLogin, IP: last.ip}
	}
	reports := make([]store.NorthServer, len(copies))
	for i := range copies {
		reports[i] = copies[i].report()
	}
	return reports, next
}

// shardWalk is one shard's part in a page: the entries copied from it and
// not yet merged, and where to go on.
type shardWalk struct {
	shard *registryShard
	after store.Cursor // the last entry copied, or the page's cursor
	buf   []northServerCopy
	next  int // buf[next] is the newest not yet merged

	// resume is the entry the walk stopped at, if still where it was:
	// with the same ip and last login (an entry that logs in again moves
	// to the front; one forgotten is reused for another ip).
	resume   *northServer
	resumeAt store.Cursor
	done     bool // the walk reached the oldest entry
}

// fill copies the shard's next entries after w.after, most recently seen
// first: n of them when there are, and any more seen at the same moment
// as the last, so that the merge can order ties by ip. It holds the
// shard's lock for those entries only, and reports whether it copied any.
func (w *shardWalk) fill(n int) bool {
	w.buf, w.next = w.buf[:0], 0
	if w.done {
		return false
	}
	r := w.shard
	r.mu.Lock()
	e := r.recent.newest
	if w.resume != nil && w.resume.lastLogin == w.resumeAt.LastLogin && w.resume.ip == w.resumeAt.IP {
		e = w.resume
	}
	for ; e != nil; e = e.links[recentLinks].older {
		if !w.after.Before(e.lastLogin, e.ip) {
			continue
		}
		if len(w.buf) >= n && e.lastLogin != w.buf[len(w.buf)-1].lastLogin {
			break
		}
		w.buf = append(w.buf, northServerCopy{ip: e.ip, username: string(e.username), token: e.token, hasToken: e.hasToken, lastLogin: e.lastLogin, logins: e.logins})
	}
	if e == nil {
		w.done = true
	} else {
		w.resume, w.resumeAt = e, store.Cursor{LastLogin: e.lastLogin, IP: e.ip}
	}
	r.mu.Unlock()
	slices.SortFunc(w.buf, func(a, b northServerCopy) int {
		return store.Cursor{LastLogin: a.lastLogin, IP: a.ip}.Compare(store.Cursor{LastLogin: b.lastLogin, IP: b.ip})
	})
	if len(w.buf) == 0 {
		return false
	}
	last := w.buf[len(w.buf)-1]
	w.after = store.Cursor{LastLogin: last.lastLogin, IP: last.ip}
	return true
}

// shardWalks is a heap of walks, the one with the newest entry on top.
type shardWalks []*shardWalk

func (h shardWalks) Len() int { return len(h) }
func (h shardWalks) Less(i, j int) bool {
	a, b := h[i].buf[h[i].next], h[j].buf[h[j].next]
	return store.Cursor{LastLogin: a.lastLogin, IP: a.ip}.Compare(store.Cursor{LastLogin: b.lastLogin, IP: b.ip}) < 0
}
func (h shardWalks) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *shardWalks) Push(x any)   { *h = append(*h, x.(*shardWalk)) }
func (h *shardWalks) Pop() any {
	old := *h
	w := old[len(old)-1]
	*h = old[:len(old)-1]
	return w
}

// registryShard is one shard of a registry: the north servers whose ip
// falls in it, at most max of them, and their tokens. When a new ip arrives
// at the bound, the entry seen least recently is forgotten, with its token.
//
// Every token lives tokenTTL from its login, so tokens expire in the order
// they were issued: a second list, of the entries holding a live token in
// that order, lets expiry drop them from its old end, with no timers and
// no scans.
type registryShard struct {
	mu       sync.Mutex
	max      int
	tokenTTL time.Duration
	byIP     map[netip.Addr]*northServer
	byToken  map[[16]byte]*northServer
	recent   entryList // every entry, most recently seen first; the oldest is forgotten next
	evicted  uint64
	users    *userIPs // shared by every shard of the registry

	tokens      entryList // the entries holding a live token, newest token first
	liveTokens  int
	tokensEnded [tokenEndCount]uint64

	// clock counts the shard's logins and forgotten entries, one more with
	// each: the Tenures' clock (an ip stays in its shard). forgot is the
	// clock when it last forgot an entry.
	clock, forgot uint64

	_ [64]byte // keeps neighbouring shards' locks off one cache line
}

// tokenEnd says why a token stopped verifying.
type tokenEnd uint8

const (
	tokenExpired tokenEnd = iota
	tokenReplaced
	tokenLoggedOut
	tokenEvicted     // its north server was forgotten at the registry's bound, or its username's
	tokenUserChanged // a reload removed its username or changed its password
	tokenEndCount
)

var tokenEndNames = [tokenEndCount]string{"expired", "replaced", "logged_out", "evicted", "user_changed"}

// northServer is one registry entry. Its username buffer is reused when the
// same ip logs in again or when the entry is recycled for a new ip, so a
// login from a known ip allocates nothing.
type northServer struct {
	ip        netip.Addr
	username  []byte
	token     [16]byte
	hasToken  bool  // token is live: in byToken and the live-token list
	lastLogin int64 // unix nanoseconds; the token expires tokenTTL later
	logins    uint64
	tenure    store.Tenure // its last login's

	links      [3]entryLinks // in the recent list, the live-token list and its username's list
	userListed bool          // on its username's list (userIPs); guarded by that list's lock
}

// entryList is a doubly linked list of entries, newest first. An entry is
// on two lists at once, each through its own links: which says whose.
type entryList struct {
	newest, oldest *northServer
	which          int
}

const (
	recentLinks = iota
	tokenLinks
	userLinks
)

type entryLinks struct{ newer, older *northServer }

func (l *entryList) unlink(e *northServer) {
	ln := &e.links[l.which]
	if ln.newer != nil {
		ln.newer.links[l.which].older = ln.older
	} else {
		l.newest = ln.older
	}
	if ln.older != nil {
		ln.older.links[l.which].newer = ln.newer
	} else {
		l.oldest = ln.newer
	}
	*ln = entryLinks{}
}

func (l *entryList) pushFront(e *northServer) {
	e.links[l.which].older = l.newest
	if l.newest != nil {
		l.newest.links[l.which].newer = e
	}
	l.newest = e
	if l.oldest == nil {
		l.oldest = e
	}
}

func newRegistryShard(max int, tokenTTL time.Duration, users *userIPs) registryShard {
	// Sized for twice the bound from the start: at the bound every new ip
	// deletes one key and inserts another, and a map sized for max alone
	// rehashes into twice its size partway through a flood (a one-time
	// 26% RSS step in a 60 s login-varied soak). The price is paid up
	// front instead: about 10 MiB per subsystem at the default bound.
	return registryShard{
		max:      max,
		tokenTTL: tokenTTL,
		byIP:     make(map[netip.Addr]*northServer, 2*max),
		byToken:  make(map[[16]byte]*northServer, 2*max),
		recent:   entryList{which: recentLinks},
		tokens:   entryList{which: tokenLinks},
		users:    users,
	}
}

// login records a login of the north server at ip: its username, and the
// token it was given, which replaces the one it held. It reports false,
// and records nothing, when another username holds ip's live token and
// not takeover. over is the ip of the username's north server to forget,
// when it now holds more than -max-ips-per-user.
func (r *registryShard) login(ip netip.Addr, username []byte, token [16]byte, at time.Time, takeover bool) (over netip.Addr, ok bool) {
	now := at.UnixNano()
	r.mu.Lock()
	defer r.mu.Unlock()
	// at is when the request began; a login that waited for a password
	// check can arrive after a later one. The lists stay in time order,
	// as expiry and paging need, when no login is older than the newest.
	if newest := r.recent.newest; newest != nil && now < newest.lastLogin {
		now = newest.lastLogin
	}
	r.expireTokens(now)
	e := r.byIP[ip]
	switch {
	case e != nil:
		if string(e.username) != string(username) {
			if e.hasToken && !takeover {
				return netip.Addr{}, false
			}
			r.users.remove(e) // it changes hands
			e.tenure.Prev = e.tenure.Login
		}
		r.recent.unlink(e)
		r.endToken(e, tokenReplaced)
		r.clock++
	case len(r.byIP) >= r.max:
		e = r.recent.oldest
		r.recent.unlink(e)
		r.endToken(e, tokenEvicted)
		r.users.remove(e)
		delete(r.byIP, e.ip)
		r.evicted++
		*e = northServer{username: e.username[:0]}
		e.ip = ip
		r.byIP[ip] = e
		// The ip forgotten is another: this one's tenure begins after
		// the forgetting before.
		e.tenure.Prev = r.forgot
		r.clock++
		r.forgot = r.clock
	default:
		e = &northServer{ip: ip}
		r.byIP[ip] = e
		e.tenure.Prev = r.forgot
		r.clock++
	}
	e.tenure.Login = r.clock
	e.username = append(e.username[:0], username...)
	e.lastLogin = now
	e.logins++
	r.recent.pushFront(e)
	e.token, e.hasToken = token, true
	r.byToken[token] = e
	r.tokens.pushFront(e)
	r.liveTokens++
	return r.users.add(e), true
}

// forgetOverUser forgets the north server at ip, which add took off
// username's list past -max-ips-per-user, unless it changed hands or the
// username logged in from it again meanwhile.
func (r *registryShard) forgetOverUser(ip netip.Addr, username []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e := r.byIP[ip]
	if e == nil || string(e.username) != string(username) || !r.users.forgettable(e) {
		return
	}
	r.recent.unlink(e)
	r.endToken(e, tokenEvicted)
	delete(r.byIP, ip)
	r.clock++
	r.forgot = r.clock
}

// endUserToken ends the live token of the north server at ip, if username
// holds it, and reports 1 if it did.
func (r *registryShard) endUserToken(ip netip.Addr, username string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	e := r.byIP[ip]
	if e == nil || string(e.username) != username || !e.hasToken {
		return 0
	}
	r.endToken(e, tokenUserChanged)
	return 1
}

// verify looks token up at now. For a valid token it appends the north
// server's username to usernameDst and returns it with the ip, the
// token's expiry (unix nanoseconds) and its tenure.
func (r *registryShard) verify(token [16]byte, now int64, usernameDst []byte) (username []byte, ip netip.Addr, expires int64, tenure store.Tenure, result store.Result) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e := r.byToken[token]
	if e == nil {
		return usernameDst, netip.Addr{}, 0, store.Tenure{}, store.Unknown
	}
	if expires = e.lastLogin + int64(r.tokenTTL); expires <= now {
		r.expireTokens(now)
		return usernameDst, netip.Addr{}, 0, store.Tenure{}, store.Expired
	}
	return append(usernameDst, e.username...), e.ip, expires, e.tenure, store.Valid
}

// holder reports the username of the live token at ip at now and its
// tenure, or false and the count so far.
func (r *registryShard) holder(ip netip.Addr, now int64) (string, bool, store.Tenure) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e := r.byIP[ip]
	if e == nil || !e.hasToken || e.lastLogin+int64(r.tokenTTL) <= now {
		return "", false, store.Tenure{Login: r.clock}
	}
	return string(e.username), true, e.tenure
}

// logout ends token at once. It reports false for a token that was not
// live.
func (r *registryShard) logout(token [16]byte, now int64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.expireTokens(now)
	e := r.byToken[token]
	if e == nil {
		return false
	}
	r.endToken(e, tokenLoggedOut)
	return true
}

// expireTokens ends the tokens that expired by now: the oldest ones.
func (r *registryShard) expireTokens(now int64) {
	for e := r.tokens.oldest; e != nil && e.lastLogin+int64(r.tokenTTL) <= now; e = r.tokens.oldest {
		r.endToken(e, tokenExpired)
	}
}

// endToken ends e's token, if it holds one.
func (r *registryShard) endToken(e *northServer, why tokenEnd) {
	if !e.hasToken {
		return
	}
	delete(r.byToken, e.token)
	r.tokens.unlink(e)
	e.hasToken = false
	r.liveTokens--
	r.tokensEnded[why]++
}

// tokenCounts reports the live tokens at now and how many have ended, by
// why.
func (r *registryShard) tokenCounts(now int64) (live int, ended [tokenEndCount]uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.expireTokens(now)
	return r.liveTokens, r.tokensEnded
}

// count reports how many north servers are remembered.
func (r *registryShard) count() int {
	r.mu.Lock()
	n := len(r.byIP)
	r.mu.Unlock()
	return n
}

// evictions reports how many entries were forgotten to stay within the bound.
func (r *registryShard) evictions() uint64 {
	r.mu.Lock()
	n := r.evicted
	r.mu.Unlock()
	return n
}

// northServerCopy is an entry copied out of a shard to be reported.
type northServerCopy struct {
	ip        netip.Addr
	username  string
	token     [16]byte
	hasToken  bool
	lastLogin int64
	logins    uint64
}

func (e *northServerCopy) report() store.NorthServer {
	var digest string
	if e.hasToken {
		digest = store.TokenDigest(e.token)[:8]
	}
	return store.NorthServer{
		IP:                e.ip.String(),
		Username:          string(e.username),
		TokenDigestPrefix: digest,
		LastLogin:         time.Unix(0, e.lastLogin).UTC(),
		Logins:            e.logins,
	}
}
