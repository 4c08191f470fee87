package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/redis/rueidis"
)

// redisStore keeps tokens and north servers in Redis or Valkey (-store), so
// that every northd instance sharing it agrees on them: a token issued by
// one verifies on every other, and /north/servers shows the whole fleet.
//
// Every key of a subsystem carries its name as a Redis Cluster hash tag,
// northd:{NAME}:…, so that one subsystem's keys share a slot and its
// scripts may touch several of them:
//   - northd:{NAME}:tok:DIGEST, a token: "expiry-ms\nip\nusername", with
//     Redis's own expiry. DIGEST is the SHA-256 of the token, so a dump of
//     Redis holds no token anyone could present;
//   - northd:{NAME}:ns:IP, a north server: a hash of username, ip,
//     last_login (ms), logins and token (the digest of its live token);
//   - northd:{NAME}:servers, the north servers by last login (a sorted
//     set), which keeps their number within -registry-max.
type redisStore struct {
	client  rueidis.Client
	timeout time.Duration
	max     int
	ttl     time.Duration
	log     *slog.Logger

	up     atomic.Bool
	errors *metrics.Counter
}

// storeUnavailable is the error of every store call that did not complete:
// the caller answers 503.
var errStoreUnavailable = errors.New("store unavailable")

// newRedisStore connects to the store URL: redis://, rediss:// (TLS), or
// a comma-separated list of host:port for Redis Cluster.
func newRedisStore(url string, cfg config, set *metrics.Set, log *slog.Logger) (*redisStore, error) {
	var opt rueidis.ClientOption
	switch {
	case strings.Contains(url, "://"):
		var err error
		if opt, err = rueidis.ParseURL(url); err != nil {
			return nil, usageErrorf("invalid -store %s: %s (want memory, redis://[user:pass@]host:port/db, rediss://… or host:port,host:port for a cluster)", redactedStoreURL(url), storeURLError(url, err))
		}
	default:
		for _, a := range strings.Split(url, ",") {
			if err := checkHostPort(strings.TrimSpace(a)); err != nil {
				return nil, usageErrorf("invalid -store address %q: %v (want memory, redis://host:port or host:port,host:port for a cluster)", a, err)
			}
			opt.InitAddress = append(opt.InitAddress, strings.TrimSpace(a))
		}
	}
	// Verification must see a logout at once on every instance, so no
	// client-side cache: its invalidations arrive asynchronously.
	opt.DisableCache = true
	opt.Dialer.Timeout = cfg.StoreTimeout
	opt.ConnWriteTimeout = cfg.StoreTimeout
	opt.ClientName = "northd"
	client, err := rueidis.NewClient(opt)
	if err != nil {
		return nil, fmt.Errorf("cannot reach the store %s: %w (is it running? check -store)", redactedStoreURL(url), err)
	}
	s := &redisStore{
		client:  client,
		timeout: cfg.StoreTimeout,
		max:     cfg.RegistryMax,
		ttl:     cfg.TokenTTL,
		log:     log,
		errors:  set.NewCounter(`northd_store_errors_total`),
	}
	s.up.Store(true)
	set.NewGauge(`northd_store_up`, func() float64 {
		if s.up.Load() {
			return 1
		}
		return 0
	})
	return s, nil
}

// watch pings the store every interval until ctx ends, so that /readyz
// follows it: down after a failed call or ping, up after a ping succeeds.
func (s *redisStore) watch(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		cctx, cancel := context.WithTimeout(ctx, s.timeout)
		err := s.client.Do(cctx, s.client.B().Ping().Build()).Error()
		cancel()
		if err == nil && !s.up.Load() {
			s.up.Store(true)
			s.log.Info("store reachable again: serving logins and verifications")
		} else if err != nil && ctx.Err() == nil {
			s.failed(err)
		}
	}
}

// failed notes a call that did not complete; the first of an outage is
// logged, not each.
func (s *redisStore) failed(err error) error {
	s.errors.Inc()
	if s.up.Swap(false) {
		s.log.Error("store unreachable: logins and verifications get 503 and /readyz 503 until it answers", "err", err)
	}
	return errStoreUnavailable
}

func (s *redisStore) close() { s.client.Close() }

// subsystemKeys are one subsystem's key names.
type subsystemKeys struct {
	prefix  string // northd:{NAME}:
	servers string
}

func keysFor(name string) subsystemKeys {
	p := "northd:{" + name + "}:"
	return subsystemKeys{prefix: p, servers: p + "servers"}
}

func tokenDigest(token [16]byte) string {
	d := sha256.Sum256(token[:])
	return hex.EncodeToString(d[:])
}

// loginScript records a login in one step: the north server's old token
// ends as the new one begins, so there is no moment at which both verify,
// and the north servers past the bound go with their tokens.
var loginScript = rueidis.NewLuaScript(`
local rec, servers, tok = KEYS[1], KEYS[2], KEYS[3]
local username, ip, now, ttl, digest, max, prefix, expires = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], tonumber(ARGV[6]), ARGV[7], ARGV[8]
local old = redis.call('HGET', rec, 'token')
if old then redis.call('DEL', prefix .. 'tok:' .. old) end
redis.call('SET', tok, expires .. '\n' .. ip .. '\n' .. username, 'PX', ttl)
redis.call('HSET', rec, 'username', username, 'ip', ip, 'last_login', now, 'token', digest)
redis.call('HINCRBY', rec, 'logins', 1)
redis.call('ZADD', servers, now, ip)
local over = redis.call('ZCARD', servers) - max
if over > 0 then
  local gone = redis.call('ZPOPMIN', servers, over)
  for i = 1, #gone, 2 do
    local r = prefix .. 'ns:' .. gone[i]
    local t = redis.call('HGET', r, 'token')
    if t then redis.call('DEL', prefix .. 'tok:' .. t) end
    redis.call('DEL', r)
  end
end
return 1`)

// logoutScript ends a token and clears it from its north server's record.
var logoutScript = rueidis.NewLuaScript(`
local v = redis.call('GET', KEYS[1])
if not v then return 0 end
redis.call('DEL', KEYS[1])
local ip = string.match(v, '^[^\n]*\n([^\n]*)\n')
if ip then
  local rec = ARGV[1] .. 'ns:' .. ip
  if redis.call('HGET', rec, 'token') == ARGV[2] then redis.call('HDEL', rec, 'token') end
end
return 1`)

func (s *redisStore) call(parent context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(parent, s.timeout)
}

// login records a login of the north server at ip on subsystem k.
func (s *redisStore) login(k subsystemKeys, ip netip.Addr, username []byte, token [16]byte, at time.Time) error {
	ctx, cancel := s.call(context.Background())
	defer cancel()
	ipText := ip.String()
	digest := tokenDigest(token)
	now := at.UnixMilli()
	err := loginScript.Exec(ctx, s.client,
		[]string{k.prefix + "ns:" + ipText, k.servers, k.prefix + "tok:" + digest},
		[]string{string(username), ipText, strconv.FormatInt(now, 10), strconv.FormatInt(s.ttl.Milliseconds(), 10), digest,
			strconv.Itoa(s.max), k.prefix, strconv.FormatInt(now+s.ttl.Milliseconds(), 10)}).Error()
	if err != nil {
		return s.failed(err)
	}
	return nil
}

// verify looks a token up on subsystem k at now.
func (s *redisStore) verify(k subsystemKeys, token [16]byte, now time.Time) (username string, ip netip.Addr, expires time.Time, result verifyResult, err error) {
	ctx, cancel := s.call(context.Background())
	defer cancel()
	v, err := s.client.Do(ctx, s.client.B().Get().Key(k.prefix+"tok:"+tokenDigest(token)).Build()).ToString()
	switch {
	case rueidis.IsRedisNil(err):
		return "", netip.Addr{}, time.Time{}, tokenUnknown, nil
	case err != nil:
		return "", netip.Addr{}, time.Time{}, tokenUnknown, s.failed(err)
	}
	ms, rest, _ := strings.Cut(v, "\n")
	ipText, username, ok := strings.Cut(rest, "\n")
	exp, err1 := strconv.ParseInt(ms, 10, 64)
	addr, err2 := netip.ParseAddr(ipText)
	if !ok || err1 != nil || err2 != nil {
		return "", netip.Addr{}, time.Time{}, tokenUnknown, fmt.Errorf("store holds a malformed token record %q", v)
	}
	expires = time.UnixMilli(exp)
	if !now.Before(expires) {
		return "", netip.Addr{}, time.Time{}, tokenHasExpired, nil
	}
	return username, addr, expires, tokenValid, nil
}

// logout ends a token on subsystem k; false for one that was not live.
func (s *redisStore) logout(k subsystemKeys, token [16]byte) (bool, error) {
	ctx, cancel := s.call(context.Background())
	defer cancel()
	digest := tokenDigest(token)
	n, err := logoutScript.Exec(ctx, s.client, []string{k.prefix + "tok:" + digest}, []string{k.prefix, digest}).AsInt64()
	if err != nil {
		return false, s.failed(err)
	}
	return n == 1, nil
}

// northServers lists up to limit north servers of subsystem k seen after
// the cursor, most recently seen first (ties by ip, as in the memory
// registry), with how many there are and the cursor of the next page (the
// zero cursor after the last). The cursor is the last entry listed, so a
// walk of the pages lists each north server once, unless it logs in
// between two pages: it then moves to the front, and is missed or seen
// twice.
func (s *redisStore) northServers(ctx context.Context, k subsystemKeys, after pageCursor, limit int) ([]northServerReport, int, pageCursor, error) {
	ctx, cancel := s.call(ctx)
	defer cancel()
	// The scores are milliseconds, as is every cursor this store hands
	// out (in nanoseconds, as the memory registry's).
	top := "+inf"
	cmds := rueidis.Commands{s.client.B().Zcard().Key(k.servers).Build()}
	if after != (pageCursor{}) {
		ms := strconv.FormatInt(after.lastLogin/int64(time.Millisecond), 10)
		top = "(" + ms
		// Those seen in the cursor's millisecond (as many as logged in
		// within it), to keep the ones after it by ip.
		cmds = append(cmds, s.client.B().Zrange().Key(k.servers).Min(ms).Max(ms).Byscore().Withscores().Build())
	}
	cmds = append(cmds, s.client.B().Zrange().Key(k.servers).Min(top).Max("-inf").Byscore().Rev().Limit(0, int64(limit)+1).Withscores().Build())
	results := s.client.DoMulti(ctx, cmds...)
	count, err := results[0].AsInt64()
	if err != nil {
		return nil, 0, pageCursor{}, s.failed(err)
	}
	var found []rueidis.ZScore
	for _, r := range results[1:] {
		z, err := r.AsZScores()
		if err != nil {
			return nil, 0, pageCursor{}, s.failed(err)
		}
		found = append(found, z...)
	}
	// Redis orders one score's members by their text, not by ip: when the
	// older ones were cut at limit+1, the last score is taken whole, and
	// sorted below with the rest.
	if older, _ := results[len(results)-1].AsZScores(); len(older) > limit {
		last := older[len(older)-1].Score
		for len(found) > 0 && found[len(found)-1].Score == last {
			found = found[:len(found)-1]
		}
		lastText := strconv.FormatFloat(last, 'f', -1, 64)
		z, err := s.client.Do(ctx, s.client.B().Zrange().Key(k.servers).Min(lastText).Max(lastText).Byscore().Withscores().Build()).AsZScores()
		if err != nil {
			return nil, 0, pageCursor{}, s.failed(err)
		}
		found = append(found, z...)
	}
	page := make([]pageCursor, 0, len(found))
	for _, z := range found {
		ip, err := netip.ParseAddr(z.Member)
		at := int64(z.Score) * int64(time.Millisecond)
		if err == nil && after.before(at, ip) {
			page = append(page, pageCursor{at, ip})
		}
	}
	slices.SortFunc(page, pageCursor.compare)
	var next pageCursor
	if len(page) > limit {
		page = page[:limit]
		next = page[limit-1]
	}
	reports := make([]northServerReport, 0, len(page))
	if len(page) > 0 {
		cmds := make(rueidis.Commands, len(page))
		for i, e := range page {
			cmds[i] = s.client.B().Hgetall().Key(k.prefix + "ns:" + e.ip.String()).Build()
		}
		for _, r := range s.client.DoMulti(ctx, cmds...) {
			m, err := r.AsStrMap()
			if err != nil {
				return nil, 0, pageCursor{}, s.failed(err)
			}
			if len(m) == 0 {
				continue // forgotten between the two reads
			}
			ms, _ := strconv.ParseInt(m["last_login"], 10, 64)
			logins, _ := strconv.ParseUint(m["logins"], 10, 64)
			reports = append(reports, northServerReport{
				IP:                m["ip"],
				Username:          m["username"],
				TokenDigestPrefix: prefixOf(m["token"], 8),
				LastLogin:         time.UnixMilli(ms).UTC(),
				Logins:            logins,
			})
		}
	}
	return reports, int(count), next, nil
}

func prefixOf(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
