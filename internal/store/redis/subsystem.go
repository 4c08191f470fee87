package redis

import (
	"context"
	"net/netip"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"northd/internal/redisconn"
	"northd/internal/store"
)

// Subsystem is one subsystem's part of the store: its tokens and north
// servers. Every key of a subsystem carries its name as a Redis Cluster
// hash tag, northd:{NAME}:…, so that one subsystem's keys share a slot and
// its scripts may touch several of them:
//   - northd:{NAME}:tok:DIGEST, a token: "expiry-ms\nip\nusername\nLOGIN PREV"
//     (its store.Tenure; records written before tenures were kept end
//     at the username), with Redis's own expiry. DIGEST is the SHA-256
//     of the token, so a dump of Redis holds no token anyone could
//     present;
//   - northd:{NAME}:ns:IP, a north server: a hash of username, ip,
//     last_login (ms), logins, token (the digest of its live token),
//     and login and prev (its last login's store.Tenure);
//   - northd:{NAME}:clock, the tenures' clock: a hash of count (the
//     logins, one more with each) and forgot (the count at the last
//     login that forgot north servers at the bounds);
//   - northd:{NAME}:servers, the north servers by last login in
//     microseconds, no two alike (a sorted set), which keeps their number
//     within -registry-max;
//   - northd:{NAME}:user:USERNAME, the ips of the north servers USERNAME
//     holds, by last login in microseconds (a sorted set), which keeps
//     their number within -max-ips-per-user.
type Subsystem struct {
	c    *client
	keys subsystemKeys
	// userTokensEnded counts the tokens EndUserTokens ended; the store's
	// other ends (expiry, logout, replacement) happen inside Redis,
	// uncounted.
	userTokensEnded *metrics.Counter
}

var _ store.Store = (*Subsystem)(nil)

// New is the store of the subsystem named name on conn, within o's
// bounds, its metrics in set under label (subsystem="NAME"). Its scripts
// are loaded by conn's probes, so New comes before conn.Watch.
func New(conn *redisconn.Conn, name string, o Options, set *metrics.Set, label string) *Subsystem {
	conn.LoadOnProbe(storeScripts...)
	return &Subsystem{
		c: &client{
			conn:    conn,
			client:  conn.Client(),
			timeout: o.CallTimeout,
			max:     o.Max,
			userMax: o.MaxPerUser,
			ttl:     o.TokenTTL,
		},
		keys:            keysFor(name),
		userTokensEnded: set.NewCounter(`northd_tokens_ended_total{` + label + `,why="user_changed"}`),
	}
}

// Login records a login; see store.Store. The time is Redis's own, not
// now: see loginScript.
func (s *Subsystem) Login(ip netip.Addr, username []byte, token [16]byte, _ time.Time, takeover bool) ([16]byte, bool, error) {
	claimed, err := s.c.login(s.keys, ip, username, token, takeover)
	return token, claimed, err
}

// Verify looks token up at now; see store.Store.
func (s *Subsystem) Verify(token [16]byte, now time.Time, usernameDst []byte) (store.Token, error) {
	r, result, err := s.c.verify(s.keys, token, now)
	if err != nil || result != store.Valid {
		return store.Token{Result: result}, err
	}
	return store.Token{Result: result, Username: append(usernameDst, r.username...), IP: r.ip, Expires: r.expires.UnixNano(), Tenure: r.tenure}, nil
}

// Logout ends token at once; see store.Store.
func (s *Subsystem) Logout(token [16]byte, _ time.Time) (bool, error) {
	return s.c.logout(s.keys, token)
}

// EndUserTokens ends username's live tokens; see store.Store.
func (s *Subsystem) EndUserTokens(ctx context.Context, username string) (int, error) {
	n, err := s.c.endUserTokens(ctx, s.keys, username)
	s.userTokensEnded.Add(n)
	return n, err
}

// EndUserTokensOutside ends username's live tokens at ips outside keep;
// see store.Store.
func (s *Subsystem) EndUserTokensOutside(ctx context.Context, username string, keep []netip.Prefix) (int, error) {
	n, err := s.c.endUserTokensOutside(ctx, s.keys, username, keep)
	s.userTokensEnded.Add(n)
	return n, err
}

// Page lists north servers, the whole fleet's; see store.Store.
func (s *Subsystem) Page(ctx context.Context, after store.Cursor, limit int) (store.Page, error) {
	servers, count, next, err := s.c.northServers(ctx, s.keys, after, limit)
	return store.Page{NorthServers: servers, Count: count, Next: next}, err
}

// Ready reports whether the store answers, for /readyz: see
// redisconn.Conn.Ready.
func (s *Subsystem) Ready() bool { return s.c.conn.Ready() }

// Holder reports who holds the live token at ip; see store.Store.
func (s *Subsystem) Holder(ctx context.Context, ip netip.Addr, now time.Time) (string, bool, store.Tenure, error) {
	return s.c.holder(ctx, s.keys, ip, now)
}
