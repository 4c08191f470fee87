package main

import (
	"net/netip"
	"sync"
	"time"
)

// registry remembers the north servers that logged in to one subsystem, one
// entry per ip, so the subsystem knows where to push data. It holds at most
// max entries: when a new ip arrives at the bound, the entry seen least
// recently is forgotten. Safe for concurrent use.
type registry struct {
	mu      sync.Mutex
	max     int
	byIP    map[netip.Addr]*northServer
	newest  *northServer // head of the recency list
	oldest  *northServer // tail: the next to be forgotten
	evicted uint64
}

// northServer is one registry entry. Its username buffer is reused when the
// same ip logs in again or when the entry is recycled for a new ip, so a
// login from a known ip allocates nothing.
type northServer struct {
	ip        netip.Addr
	username  []byte
	token     [16]byte
	lastLogin int64 // unix nanoseconds
	logins    uint64

	newer, older *northServer
}

// northServerReport is a copy of one registry entry for reporting. It carries no
// password (none is ever kept) and only the start of the token.
type northServerReport struct {
	IP          string    `json:"ip"`
	Username    string    `json:"username"`
	TokenPrefix string    `json:"token_prefix"`
	LastLogin   time.Time `json:"last_login"`
	Logins      uint64    `json:"logins"`
}

// newRegistry returns an empty registry that holds at most max entries.
func newRegistry(max int) *registry {
	// Sized for twice the bound from the start: at the bound every new ip
	// deletes one key and inserts another, and a map sized for max alone
	// rehashes into twice its size partway through a flood (a one-time
	// 26% RSS step in a 60 s login-varied soak). The price is paid up
	// front instead: about 10 MiB per subsystem at the default bound.
	return &registry{max: max, byIP: make(map[netip.Addr]*northServer, 2*max)}
}

// Remember records a login of the north server at ip: its username, the
// token it was given and when.
func (r *registry) remember(ip netip.Addr, username []byte, token [16]byte, at time.Time) {
	r.mu.Lock()
	e := r.byIP[ip]
	switch {
	case e != nil:
		r.unlink(e)
	case len(r.byIP) >= r.max:
		e = r.oldest
		r.unlink(e)
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
	e.token = token
	e.lastLogin = at.UnixNano()
	e.logins++
	r.pushFront(e)
	r.mu.Unlock()
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
	var hexToken [32]byte
	appendHex(hexToken[:0], e.token[:])
	return northServerReport{
		IP:          e.ip.String(),
		Username:    string(e.username),
		TokenPrefix: string(hexToken[:8]),
		LastLogin:   time.Unix(0, e.lastLogin).UTC(),
		Logins:      e.logins,
	}
}
