package main

import (
	"hash/maphash"
	"math"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// failureLimits slows password guessing. Each client address, and each
// username (existing or not), has a token bucket of failed logins (x/time/rate):
// max failures at once, refilled at max per window. An empty bucket means
// every login from that address, or for that user, gets 429 with
// Retry-After until a failure's worth has refilled. So a guesser gets at
// most max guesses per window and address, and a guesser spread over many
// addresses at most the per-user allowance per window and user.
//
// A login reserves a failure before its password check and gives it back
// when it succeeds, so that guesses sent together get no more checks than
// the bucket holds; a login that succeeds costs nothing.
// Buckets live in bounded tables: at the bound, a bucket that has refilled
// (it holds nothing a fresh one would not) is forgotten first.
type failureLimits struct {
	byAddr     *limiterTable[addrKey]
	byUser     *limiterTable[uint64] // a maphash of the username
	ipv6Prefix int                   // -ipv6-prefix
}

// addrKey is a client as a map key (see clientKey), IPv4 as IPv4-mapped
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
	return clientKey(ip, l.ipv6Prefix).As16()
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
	m  map[K]*rate.Limiter
	_  [64]byte
}

func newLimiterTable[K comparable](burst int, window time.Duration, max int, shardOf func(K) uint64) *limiterTable[K] {
	t := &limiterTable[K]{every: rate.Limit(float64(burst) / window.Seconds()), burst: burst, max: max / limiterShards, shardOf: shardOf}
	for i := range t.shards {
		t.shards[i].m = make(map[K]*rate.Limiter)
	}
	return t
}

// blocked reports whether k's bucket is empty at now, and how long until
// it holds a failure's worth again.
func (t *limiterTable[K]) blocked(k K, now time.Time) (time.Duration, bool) {
	if t.count.Load() == 0 {
		return 0, false // no failures anywhere: the common case costs a load
	}
	sh := &t.shards[t.shardOf(k)%limiterShards]
	sh.mu.Lock()
	lim := sh.m[k]
	sh.mu.Unlock()
	if lim == nil {
		return 0, false
	}
	tokens := lim.TokensAt(now)
	if tokens >= 1 {
		return 0, false
	}
	return time.Duration((1 - tokens) / float64(t.every) * float64(time.Second)), true
}

// reserve takes a failure from k's bucket at now, before the password
// check it pays for: guesses sent together then cannot all pass a check
// of the bucket before any of them has failed. An empty bucket reserves
// nothing and says how long until it holds a failure's worth again. The
// reservation is given back (giveBack) if the login succeeds or is not
// checked after all.
func (t *limiterTable[K]) reserve(k K, now time.Time) (*rate.Reservation, time.Duration, bool) {
	sh := &t.shards[t.shardOf(k)%limiterShards]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	lim := sh.m[k]
	if lim == nil {
		if len(sh.m) >= t.max {
			t.forgetOne(sh, now)
		}
		lim = rate.NewLimiter(t.every, t.burst)
		sh.m[k] = lim
		t.count.Add(1)
	}
	// Looked at and taken under the shard's lock, so no reservation
	// ever puts a bucket in debt.
	if tokens := lim.TokensAt(now); tokens < 1 {
		return nil, time.Duration((1 - tokens) / float64(t.every) * float64(time.Second)), false
	}
	return lim.ReserveN(now, 1), 0, true
}

// giveBack returns a failure reserve took for k at now. now must be the
// time it was reserved at: x/time/rate restores only reservations whose
// time has not passed. A bucket full again is forgotten, so that the
// tables hold only addresses and usernames that have failed.
func (t *limiterTable[K]) giveBack(k K, r *rate.Reservation, now time.Time) {
	sh := &t.shards[t.shardOf(k)%limiterShards]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	r.CancelAt(now)
	if lim := sh.m[k]; lim != nil && lim.TokensAt(now) >= float64(t.burst) {
		delete(sh.m, k)
		t.count.Add(-1)
	}
}

// forgetOne drops a bucket that has refilled, looking at a few, or else
// the first one the map yields.
func (t *limiterTable[K]) forgetOne(sh *limiterShard[K], now time.Time) {
	looked := 0
	var victim K
	for k, lim := range sh.m {
		if looked == 0 {
			victim = k
		}
		if lim.TokensAt(now) >= float64(t.burst) {
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

// retryAfterSeconds rounds d up to whole seconds, at least 1, for a
// Retry-After header.
func retryAfterSeconds(d time.Duration) int {
	return max(1, int(math.Ceil(d.Seconds())))
}
