package auth

import (
	"hash/maphash"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"northd/internal/netx"
)

// failureLimits slows password guessing. Each client address, and each
// username (existing or not), has a token bucket of failed logins (x/time/rate):
// max failures at once, refilled at max per window. An empty bucket means
// every login from that address, or for that user, gets 429 with
// Retry-After until a failure's worth has refilled. So a guesser gets at
// most max guesses per window and address, and a guesser spread over many
// addresses at most the per-user allowance per window and user.
//
// A login reserves a failure before its password check and takes it only
// when the check fails, so that guesses sent together get no more checks
// than the bucket holds; a login that succeeds, or is not checked, costs
// nothing.
// Buckets live in bounded tables: at the bound, a bucket that has refilled
// (it holds nothing a fresh one would not) is forgotten first.
type failureLimits struct {
	byAddr     *limiterTable[addrKey]
	byUser     *limiterTable[uint64] // a maphash of the username
	ipv6Prefix int                   // -ipv6-prefix
}

// addrKey is a client as a map key (see netx.ClientKey), IPv4 as IPv4-mapped
// IPv6.
type addrKey [16]byte

// failureTableMax bounds each table of buckets.
const failureTableMax = 1 << 16

func newFailureLimits(maxPerAddr, maxPerUser int, window time.Duration, ipv6Prefix int) *failureLimits {
	seed := maphash.MakeSeed()
	return &failureLimits{
		byAddr: newLimiterTable(maxPerAddr, window, failureTableMax, func(k addrKey) uint64 { return maphash.Bytes(seed, k[:]) }),
		byUser: newLimiterTable(maxPerUser, window, failureTableMax, func(k uint64) uint64 { return k }),

		ipv6Prefix: ipv6Prefix,
	}
}

// addrKey is the key of the client at ip in byAddr.
func (l *failureLimits) addrKey(ip netip.Addr) addrKey {
	return netx.ClientKey(ip, l.ipv6Prefix).As16()
}

// limiterTable is a bounded, sharded map of token buckets.
type limiterTable[K comparable] struct {
	every   rate.Limit
	burst   int
	max     int // per shard
	shardOf func(K) uint64
	count   atomic.Int64
	shards  [limiterShards]limiterShard[K]
}

const limiterShards = 16

type limiterShard[K comparable] struct {
	mu sync.Mutex
	m  map[K]*failureBucket
	// latest is the latest time a failure in this shard was reserved or
	// settled at. Logins carry the time they arrived, which across
	// goroutines is not the order they get here in, and x/time/rate
	// counts right only with times that do not go backwards.
	latest time.Time
	_      [64]byte
}

// failureBucket is one address's or username's failures: the bucket, and
// the failures reserved from it whose checks have not settled yet.
type failureBucket struct {
	lim     *rate.Limiter
	pending int
}

// available is how many failures b can still take at now.
func (b *failureBucket) available(now time.Time) float64 {
	return b.lim.TokensAt(now) - float64(b.pending)
}

func newLimiterTable[K comparable](burst int, window time.Duration, max int, shardOf func(K) uint64) *limiterTable[K] {
	t := &limiterTable[K]{every: rate.Limit(float64(burst) / window.Seconds()), burst: burst, max: max / limiterShards, shardOf: shardOf}
	for i := range t.shards {
		t.shards[i].m = make(map[K]*failureBucket)
	}
	return t
}

// monotonic is now, or the shard's latest time if now is before it.
// Called with sh.mu held.
func (sh *limiterShard[K]) monotonic(now time.Time) time.Time {
	if now.Before(sh.latest) {
		return sh.latest
	}
	sh.latest = now
	return now
}

// blocked reports whether k's bucket has no failure left at now, and how
// long until it has one again.
func (t *limiterTable[K]) blocked(k K, now time.Time) (time.Duration, bool) {
	if t.count.Load() == 0 {
		return 0, false // no failures anywhere: the common case costs a load
	}
	sh := &t.shards[t.shardOf(k)%limiterShards]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	b := sh.m[k]
	if b == nil {
		return 0, false
	}
	return t.wait(b.available(now))
}

// wait is how long until a bucket with available failures has one.
func (t *limiterTable[K]) wait(available float64) (time.Duration, bool) {
	if available >= 1 {
		return 0, false
	}
	return time.Duration((1 - available) / float64(t.every) * float64(time.Second)), true
}

// pendingFailure is a failure reserve set aside, until settle.
type pendingFailure struct {
	bucket *failureBucket
}

// reserve sets a failure aside in k's bucket at now, before the password
// check it pays for: guesses sent together then cannot all pass a look at
// the bucket before any of them has failed. A bucket with nothing left
// reserves nothing and says how long until it has a failure again. Each
// reservation is settled (settle): taken if the check failed, released
// otherwise. Released reservations are exact, in whatever order they
// settle: they were never taken from the bucket.
func (t *limiterTable[K]) reserve(k K, now time.Time) (pendingFailure, time.Duration, bool) {
	sh := &t.shards[t.shardOf(k)%limiterShards]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	now = sh.monotonic(now)
	b := sh.m[k]
	if b == nil {
		if len(sh.m) >= t.max {
			t.forgetOne(sh, now)
		}
		b = &failureBucket{lim: rate.NewLimiter(t.every, t.burst)}
		sh.m[k] = b
		t.count.Add(1)
	}
	// Looked at and set aside under the shard's lock, so no bucket ever
	// goes into debt.
	if wait, blocked := t.wait(b.available(now)); blocked {
		return pendingFailure{}, wait, false
	}
	b.pending++
	return pendingFailure{b}, 0, true
}

// settle ends a reservation of k's at now: a failed check takes its
// failure from the bucket, any other outcome releases it. A bucket full
// with nothing pending is forgotten, so that the tables hold only
// addresses and usernames that have failed.
func (t *limiterTable[K]) settle(k K, p pendingFailure, failed bool, now time.Time) {
	sh := &t.shards[t.shardOf(k)%limiterShards]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	now = sh.monotonic(now)
	b := p.bucket
	b.pending--
	if failed {
		// available was at least 1 for this reservation, and only grows
		// with time, so the token is there.
		b.lim.AllowN(now, 1)
		return
	}
	if b.pending == 0 && sh.m[k] == b && b.lim.TokensAt(now) >= float64(t.burst) {
		delete(sh.m, k)
		t.count.Add(-1)
	}
}

// forgetOne drops a bucket that has refilled with nothing pending, looking
// at a few, or else the first one the map yields. A bucket dropped with
// reservations pending loses the failures they settle.
func (t *limiterTable[K]) forgetOne(sh *limiterShard[K], now time.Time) {
	looked := 0
	var victim K
	for k, b := range sh.m {
		if looked == 0 {
			victim = k
		}
		if b.pending == 0 && b.lim.TokensAt(now) >= float64(t.burst) {
			victim = k
			break
		}
		if looked++; looked == 8 {
			break
		}
	}
	delete(sh.m, victim)
	t.count.Add(-1)
}
