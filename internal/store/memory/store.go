package memory

import (
	"context"
	"net/netip"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"northd/internal/store"
)

// Options bound a memory store.
type Options struct {
	Max        int           // north servers held (-registry-max)
	MaxPerUser int           // north servers one username holds (-max-ips-per-user); 0 for no bound
	TokenTTL   time.Duration // how long a token verifies (-token-ttl)
}

// New is an empty store within o's bounds.
func New(o Options) *Store { return newRegistry(o.Max, o.MaxPerUser, o.TokenTTL) }

var _ store.Store = (*Store)(nil)

// Login records a login; see store.Store. The token as issued carries its
// shard's number in the low bits of its last byte.
func (r *Store) Login(ip netip.Addr, username []byte, token [16]byte, now time.Time, takeover bool) ([16]byte, bool, error) {
	issued, claimed := r.login(ip, username, token, now, takeover)
	return issued, claimed, nil
}

// Verify looks token up at now; see store.Store.
func (r *Store) Verify(token [16]byte, now time.Time, usernameDst []byte) (store.Token, error) {
	username, ip, expires, tenure, result := r.verify(token, now.UnixNano(), usernameDst)
	if result != store.Valid {
		return store.Token{Result: result}, nil
	}
	return store.Token{Result: result, Username: username, IP: ip, Expires: expires, Tenure: tenure}, nil
}

// Logout ends token at once; see store.Store.
func (r *Store) Logout(token [16]byte, now time.Time) (bool, error) {
	return r.logout(token, now.UnixNano()), nil
}

// EndUserTokens ends username's live tokens; see store.Store.
func (r *Store) EndUserTokens(_ context.Context, username string) (int, error) {
	return r.endUserTokens(username), nil
}

// EndUserTokensOutside ends username's live tokens at ips outside keep;
// see store.Store.
func (r *Store) EndUserTokensOutside(_ context.Context, username string, keep []netip.Prefix) (int, error) {
	return r.endUserTokensOutside(username, keep), nil
}

// Page lists north servers; see store.Store.
func (r *Store) Page(_ context.Context, after store.Cursor, limit int) (store.Page, error) {
	servers, next := r.page(after, limit)
	return store.Page{NorthServers: servers, Count: r.count(), Next: next}, nil
}

// Ready is always true: the store is this process.
func (r *Store) Ready() bool { return true }

// Holder reports who holds the live token at ip; see store.Store.
func (r *Store) Holder(_ context.Context, ip netip.Addr, now time.Time) (string, bool, store.Tenure, error) {
	username, live, tenure := r.holder(ip, now.UnixNano())
	return username, live, tenure, nil
}

// RegisterMetrics adds the store's gauges to set under label
// (subsystem="NAME"), read at scrape time.
func (r *Store) RegisterMetrics(set *metrics.Set, label string) {
	set.NewGauge(`northd_tokens_live{`+label+`}`, func() float64 {
		live, _ := r.tokenCounts(time.Now().UnixNano())
		return float64(live)
	})
	for why := tokenExpired; why < tokenEndCount; why++ {
		set.NewGauge(`northd_tokens_ended_total{`+label+`,why="`+tokenEndNames[why]+`"}`, func() float64 {
			_, ended := r.tokenCounts(time.Now().UnixNano())
			return float64(ended[why])
		})
	}
	set.NewGauge(`northd_registry_north_servers{`+label+`}`, func() float64 { return float64(r.count()) })
	set.NewGauge(`northd_registry_evictions_total{`+label+`}`, func() float64 { return float64(r.evictions()) })
}
