package main

import (
	"net/netip"
	"sync"
	"time"
)

// registry remembers the north servers that logged in to one subsystem, one
// entry per ip, so the subsystem knows where to push data, and the one live
// token each of them holds. It holds at most max entries: when a new ip
// arrives at the bound, the entry seen least recently is forgotten, with
// its token. Safe for concurrent use.
//
// Every token lives tokenTTL from its login, so tokens expire in the order
// they were issued: a second list, of the entries holding a live token in
// that order, lets expiry drop them from its old end, with no timers and
// no scans.
type registry struct {
	mu       sync.Mutex
	max      int
	tokenTTL time.Duration
	byIP     map[netip.Addr]*northServer
	byToken  map[[16]byte]*northServer
	newest   *northServer // head of the recency list
	oldest   *northServer // tail: the next to be forgotten
	evicted  uint64

	newestToken, oldestToken *northServer // the live-token list
	liveTokens               int
	tokensEnded              [tokenEndCount]uint64
}

// tokenEnd says why a token stopped verifying.
type tokenEnd uint8

const (
	tokenExpired tokenEnd = iota
	tokenReplaced
	tokenLoggedOut
	tokenEvicted // its north server was forgotten at the registry's bound
	tokenEndCount
)

var tokenEndNames = [tokenEndCount]string{"expired", "replaced", "logged_out", "evicted"}

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

	newer, older           *northServer // recency list
	newerToken, olderToken *northServer // live-token list
}

// northServerReport is a copy of one registry entry for reporting. It carries
// no password (none is ever kept) and nothing of the token but the start of
// its SHA-256 digest, as the shared store keeps it: enough to tell tokens
// apart, nothing to present.
type northServerReport struct {
	IP                string    `json:"ip"`
	Username          string    `json:"username"`
	TokenDigestPrefix string    `json:"token_digest_prefix"` // "" once the token ended`
	LastLogin         time.Time `json:"last_login"`
	Logins            uint64    `json:"logins"`
}

// newRegistry returns an empty registry that holds at most max entries,
// whose tokens live tokenTTL.
func newRegistry(max int, tokenTTL time.Duration) *registry {
	// Sized for twice the bound from the start: at the bound every new ip
	// deletes one key and inserts another, and a map sized for max alone
	// rehashes into twice its size partway through a flood (a one-time
	// 26% RSS step in a 60 s login-varied soak). The price is paid up
	// front instead: about 10 MiB per subsystem at the default bound.
	return &registry{
		max:      max,
		tokenTTL: tokenTTL,
		byIP:     make(map[netip.Addr]*northServer, 2*max),
		byToken:  make(map[[16]byte]*northServer, 2*max),
	}
}

// login records a login of the north server at ip: its username, and the
// token it was given, which replaces the one it held.
func (r *registry) login(ip netip.Addr, username []byte, token [16]byte, at time.Time) {
	now := at.UnixNano()
	r.mu.Lock()
	r.expireTokens(now)
	e := r.byIP[ip]
	switch {
	case e != nil:
		r.unlink(e)
		r.endToken(e, tokenReplaced)
	case len(r.byIP) >= r.max:
		e = r.oldest
		r.unlink(e)
		r.endToken(e, tokenEvicted)
		delete(r.byIP, e.ip)
		r.evicted++
		*e = northServer{username: e.username[:0]}
		e.ip = ip
		r.byIP[ip] = e
	default:
		e = &northServer{ip: ip}
		r.byIP[ip] = e
	}
	e.username = append(e.username[:0], username...)
	e.lastLogin = now
	e.logins++
	r.pushFront(e)
	e.token, e.hasToken = token, true
	r.byToken[token] = e
	r.pushFrontToken(e)
	r.mu.Unlock()
}

// verifyResult is what verify found of a token.
type verifyResult uint8

const (
	tokenValid   verifyResult = iota
	tokenUnknown              // never issued here, replaced, logged out or evicted
	tokenHasExpired
)

// verify looks token up at now. For a valid token it appends the north
// server's username to usernameDst and returns it with the ip and the
// token's expiry (unix nanoseconds).
func (r *registry) verify(token [16]byte, now int64, usernameDst []byte) (username []byte, ip netip.Addr, expires int64, result verifyResult) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e := r.byToken[token]
	if e == nil {
		return usernameDst, netip.Addr{}, 0, tokenUnknown
	}
	if expires = e.lastLogin + int64(r.tokenTTL); expires <= now {
		r.expireTokens(now)
		return usernameDst, netip.Addr{}, 0, tokenHasExpired
	}
	return append(usernameDst, e.username...), e.ip, expires, tokenValid
}

// logout ends token at once. It reports false for a token that was not
// live.
func (r *registry) logout(token [16]byte, now int64) bool {
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
func (r *registry) expireTokens(now int64) {
	for e := r.oldestToken; e != nil && e.lastLogin+int64(r.tokenTTL) <= now; e = r.oldestToken {
		r.endToken(e, tokenExpired)
	}
}

// endToken ends e's token, if it holds one.
func (r *registry) endToken(e *northServer, why tokenEnd) {
	if !e.hasToken {
		return
	}
	delete(r.byToken, e.token)
	if e.newerToken != nil {
		e.newerToken.olderToken = e.olderToken
	} else {
		r.newestToken = e.olderToken
	}
	if e.olderToken != nil {
		e.olderToken.newerToken = e.newerToken
	} else {
		r.oldestToken = e.newerToken
	}
	e.newerToken, e.olderToken = nil, nil
	e.hasToken = false
	r.liveTokens--
	r.tokensEnded[why]++
}

func (r *registry) pushFrontToken(e *northServer) {
	e.olderToken = r.newestToken
	if r.newestToken != nil {
		r.newestToken.newerToken = e
	}
	r.newestToken = e
	if r.oldestToken == nil {
		r.oldestToken = e
	}
	r.liveTokens++
}

// tokenCounts reports the live tokens at now and how many have ended, by
// why.
func (r *registry) tokenCounts(now int64) (live int, ended [tokenEndCount]uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.expireTokens(now)
	return r.liveTokens, r.tokensEnded
}

func (r *registry) unlink(e *northServer) {
	if e.newer != nil {
		e.newer.older = e.older
	} else {
		r.newest = e.older
	}
	if e.older != nil {
		e.older.newer = e.newer
	} else {
		r.oldest = e.newer
	}
	e.newer, e.older = nil, nil
}

func (r *registry) pushFront(e *northServer) {
	e.older = r.newest
	if r.newest != nil {
		r.newest.newer = e
	}
	r.newest = e
	if r.oldest == nil {
		r.oldest = e
	}
}

// Len reports how many north servers are remembered.
func (r *registry) count() int {
	r.mu.Lock()
	n := len(r.byIP)
	r.mu.Unlock()
	return n
}

// Evicted reports how many entries were forgotten to stay within the bound.
func (r *registry) evictions() uint64 {
	r.mu.Lock()
	n := r.evicted
	r.mu.Unlock()
	return n
}

// Lookup returns the entry for ip.
func (r *registry) lookup(ip netip.Addr) (northServerReport, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e := r.byIP[ip]
	if e == nil {
		return northServerReport{}, false
	}
	return e.report(), true
}

// appendNewestFirst appends up to limit entries to dst, most recently seen
// first; limit <= 0 means all.
func (r *registry) appendNewestFirst(dst []northServerReport, limit int) []northServerReport {
	r.mu.Lock()
	defer r.mu.Unlock()
	for e, n := r.newest, 0; e != nil && (limit <= 0 || n < limit); e, n = e.older, n+1 {
		dst = append(dst, e.report())
	}
	return dst
}

func (e *northServer) report() northServerReport {
	var digest string
	if e.hasToken {
		digest = tokenDigest(e.token)[:8]
	}
	return northServerReport{
		IP:                e.ip.String(),
		Username:          string(e.username),
		TokenDigestPrefix: digest,
		LastLogin:         time.Unix(0, e.lastLogin).UTC(),
		Logins:            e.logins,
	}
}
