// Package store defines where a subsystem keeps its north servers and the
// one live token each holds, and what every such place must do. Two
// implementations exist: store/memory (this process alone) and store/redis
// (Redis or Valkey, shared by every instance). Both pass the one
// conformance suite, store/storetest.
package store

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Store keeps one subsystem's north servers, one per ip, and the one live
// token each holds; safe for concurrent use. Login, Verify and Logout are
// on the request path: the memory store answers them without allocating.
type Store interface {
	// Login records a login of the north server at ip by username with
	// token, which replaces the token the north server held, at now (a
	// store may use its own clock instead). It returns the token as
	// issued (a store may set bits of it) and false, recording nothing,
	// when another username holds ip's live token, unless takeover (the
	// users file lists ip as this username's).
	Login(ip netip.Addr, username []byte, token [16]byte, now time.Time, takeover bool) (issued [16]byte, claimed bool, err error)
	// Verify looks token up at now. For a valid token it appends the
	// north server's username to usernameDst, which must not be stack
	// memory of the caller's (an interface call would move it to the
	// heap), and returns it in Token.Username.
	Verify(token [16]byte, now time.Time, usernameDst []byte) (Token, error)
	// Logout ends token at once; false for a token that was not live.
	Logout(token [16]byte, now time.Time) (bool, error)
	// EndUserTokens ends the live tokens username holds, because the
	// users file no longer has it or changed its password, and reports
	// how many.
	EndUserTokens(ctx context.Context, username string) (int, error)
	// EndUserTokensOutside ends the live tokens username holds at ips
	// that none of keep contains, because the users file narrowed the
	// ips it may claim, and reports how many.
	EndUserTokensOutside(ctx context.Context, username string, keep []netip.Prefix) (int, error)
	// Page lists up to limit north servers seen after the cursor, most
	// recently seen first, ties by ip.
	Page(ctx context.Context, after Cursor, limit int) (Page, error)
	// Holder reports the username whose live token is the north server
	// at ip's at now, with that token's Tenure, and false when no live
	// token is there, with Tenure{Login: the logins counted so far}:
	// what a webhook subscription of that north server asks before each
	// delivery (it pauses while its north server is logged out), and
	// what publishing asks to address an event to an ip's north server.
	Holder(ctx context.Context, ip netip.Addr, now time.Time) (username string, live bool, tenure Tenure, err error)
	// Ready reports whether the store answers, for /readyz.
	Ready() bool
}

// ErrUnavailable is the error of every call the store could not complete
// in time: the request gets 503 and may be retried.
var ErrUnavailable = errors.New("store unavailable")

// Contains reports whether one of prefixes contains ip (as Unmap()
// writes it).
func Contains(prefixes []netip.Prefix, ip netip.Addr) bool {
	ip = ip.Unmap()
	for _, p := range prefixes {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// Result is what Verify found of a token.
type Result uint8

const (
	Valid   Result = iota
	Unknown        // never issued here, replaced, logged out, evicted or ended with its user
	Expired
)

// Token is a verified token's north server.
type Token struct {
	Result   Result
	Username []byte // the username appended to Verify's usernameDst
	IP       netip.Addr
	Expires  int64 // unix nanoseconds: no time.Time to build and take apart on the request path
	Tenure   Tenure
}

// Tenure places a token among the logins at its ip, so that an event
// published to the ip while no one held it goes to the next north server
// that logged in there and to no later one under another username (see
// events.Target). A store counts the logins it records, each one more
// than the last (the count is shared by many ips, and only compared
// between logins at one ip).
type Tenure struct {
	// Login is the count at the login that issued the token.
	Login uint64
	// Prev is the count at the last login at the ip under another
	// username than the token's, before the token's username came: its
	// logins there since (with logouts between) are one tenure. When
	// the store holds no such login (none was made, or the store forgot
	// the ip at its bounds) it is the count when the store last forgot
	// an ip, so that events published for an earlier holder it forgot
	// are never taken for this one's.
	Prev uint64
}

// Page is one page of a subsystem's north servers.
type Page struct {
	NorthServers []NorthServer
	Count        int    // all the subsystem's north servers
	Next         Cursor // the zero Cursor after the last page
}

// NorthServer is a copy of one north server for reporting. It carries no
// password (none is ever kept) and nothing of the token but the start of
// its SHA-256 digest, as the shared store keeps it: enough to tell tokens
// apart, nothing to present.
type NorthServer struct {
	IP                string    `json:"ip"`
	Username          string    `json:"username"`
	TokenDigestPrefix string    `json:"token_digest_prefix"` // "" once the token ended
	LastLogin         time.Time `json:"last_login"`
	Logins            uint64    `json:"logins"`
}

// TokenDigest is the hex SHA-256 of a token: what a store keeps and shows
// instead of the token itself.
func TokenDigest(token [16]byte) string {
	d := sha256.Sum256(token[:])
	return hex.EncodeToString(d[:])
}

// Cursor is where a page of north servers ends: its last entry. The next
// page holds what was seen before it (ties broken by ip).
type Cursor struct {
	LastLogin int64 // unix nanoseconds; 0 for the first page
	IP        netip.Addr
}

// Before reports whether an entry seen at lastLogin from ip comes after
// the cursor in newest-first order.
func (c Cursor) Before(lastLogin int64, ip netip.Addr) bool {
	return c.LastLogin == 0 || lastLogin < c.LastLogin || (lastLogin == c.LastLogin && c.IP.Less(ip))
}

// Compare orders entries as pages list them: most recently seen first,
// ties by ip.
func (c Cursor) Compare(d Cursor) int {
	if n := cmp.Compare(d.LastLogin, c.LastLogin); n != 0 {
		return n
	}
	return c.IP.Compare(d.IP)
}

// String is the cursor as /north/servers hands it out: "NANOS_IP".
func (c Cursor) String() string {
	return strconv.FormatInt(c.LastLogin, 10) + "_" + c.IP.String()
}

// ParseCursor reads a cursor String wrote.
func ParseCursor(s string) (Cursor, error) {
	ns, ip, ok := strings.Cut(s, "_")
	n, err1 := strconv.ParseInt(ns, 10, 64)
	a, err2 := netip.ParseAddr(ip)
	if !ok || err1 != nil || err2 != nil || n <= 0 {
		return Cursor{}, fmt.Errorf("after=%q is not a cursor from a previous page's \"next\"", s)
	}
	return Cursor{n, a}, nil
}
