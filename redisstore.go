package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
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
//     set), which keeps their number within -registry-max;
//   - northd:{NAME}:user:USERNAME, the ips of the north servers USERNAME
//     holds, by last login in microseconds (a sorted set), which keeps
//     their number within -max-ips-per-user.
type redisStore struct {
	client  rueidis.Client
	timeout time.Duration
	max     int
	userMax int // -max-ips-per-user; 0 for no bound
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
			return nil, usageErrorf("invalid -store %q: %v (want memory, redis://[user:pass@]host:port/db, rediss://… or host:port,host:port for a cluster)", url, err)
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
		return nil, fmt.Errorf("cannot reach the store %s: %w (is it running? check -store)", url, err)
	}
	s := &redisStore{
		client:  client,
		timeout: cfg.StoreTimeout,
		max:     cfg.RegistryMax,
		userMax: cfg.ipsPerUser(),
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
// and the north servers past the bounds go with their tokens: the least
// recently seen of the subsystem past -registry-max, and of the username
// past -max-ips-per-user (ARGV[6]; 0 for no bound). It returns 0, and records nothing, when another
// username holds the ip's live token and ARGV[7] is not 1 (takeover: the
// users file lists the ip as this username's).
//
// The time is Redis's own, never older than the newest north server's:
// the request's start time would make a login that waited (for a password
// check, or on an instance whose clock is behind) older than every entry,
// the first to go at the bound, and its fresh token deleted while it
// answers 200. The new entry also leaves its sets before they are trimmed,
// so that a tie can never pick it.
var loginScript = rueidis.NewLuaScript(`
local rec, servers, tok, userset = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local username, ip, ttl, digest, max, usermax, takeover, prefix = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4], tonumber(ARGV[5]), tonumber(ARGV[6]), ARGV[7], ARGV[8]
local holder = redis.call('HGET', rec, 'username')
local old = redis.call('HGET', rec, 'token')
if holder and holder ~= username then
  if old and takeover ~= '1' and redis.call('EXISTS', prefix .. 'tok:' .. old) == 1 then return 0 end
  redis.call('ZREM', prefix .. 'user:' .. holder, ip)
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local newest = redis.call('ZREVRANGE', servers, 0, 0, 'WITHSCORES')
if newest[2] and tonumber(newest[2]) > now then now = tonumber(newest[2]) end
if old then redis.call('DEL', prefix .. 'tok:' .. old) end
redis.call('SET', tok, string.format('%d', now + ttl) .. '\n' .. ip .. '\n' .. username, 'PX', ttl)
redis.call('HSET', rec, 'username', username, 'ip', ip, 'last_login', string.format('%d', now), 'token', digest)
redis.call('HINCRBY', rec, 'logins', 1)
-- forget drops the north servers popped from one of the two sets, with
-- their tokens, from the other set too.
local function forget(gone, fromServers)
  for i = 1, #gone, 2 do
    local r = prefix .. 'ns:' .. gone[i]
    local who = redis.call('HGET', r, 'username')
    if fromServers or who == username then
      local t = redis.call('HGET', r, 'token')
      if t then redis.call('DEL', prefix .. 'tok:' .. t) end
      if fromServers then
        if who then redis.call('ZREM', prefix .. 'user:' .. who, gone[i]) end
      else
        redis.call('ZREM', servers, gone[i])
      end
      redis.call('DEL', r)
    end
  end
end
redis.call('ZREM', servers, ip)
local over = redis.call('ZCARD', servers) - (max - 1)
if over > 0 then forget(redis.call('ZPOPMIN', servers, over), true) end
redis.call('ZADD', servers, now, ip)
if usermax > 0 then
  -- In microseconds, each later than the last, so that the one to go
  -- is the least recently seen even among logins of one millisecond.
  local us = tonumber(t[1]) * 1000000 + tonumber(t[2])
  local last = redis.call('ZREVRANGE', userset, 0, 0, 'WITHSCORES')
  if last[2] and tonumber(last[2]) >= us then us = tonumber(last[2]) + 1 end
  redis.call('ZREM', userset, ip)
  over = redis.call('ZCARD', userset) - (usermax - 1)
  if over > 0 then forget(redis.call('ZPOPMIN', userset, over), false) end
  redis.call('ZADD', userset, string.format('%d', us), ip)
end
return 1`)

// endUserScript ends the live tokens of one username (KEYS[1] is its set
// of ips), and returns how many it ended.
var endUserScript = rueidis.NewLuaScript(`
local prefix, username, n = ARGV[1], ARGV[2], 0
for _, ip in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local r = prefix .. 'ns:' .. ip
  if redis.call('HGET', r, 'username') == username then
    local t = redis.call('HGET', r, 'token')
    if t then
      n = n + redis.call('DEL', prefix .. 'tok:' .. t)
      redis.call('HDEL', r, 'token')
    end
  end
end
return n`)

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

// login records a login of the north server at ip on subsystem k. It
// reports false, and records nothing, when another username holds ip's
// live token, unless takeover (the users file lists ip as username's).
func (s *redisStore) login(k subsystemKeys, ip netip.Addr, username []byte, token [16]byte, takeover bool) (bool, error) {
	ctx, cancel := s.call(context.Background())
	defer cancel()
	ipText := ip.String()
	digest := tokenDigest(token)
	take := "0"
	if takeover {
		take = "1"
	}
	n, err := loginScript.Exec(ctx, s.client,
		[]string{k.prefix + "ns:" + ipText, k.servers, k.prefix + "tok:" + digest, k.prefix + "user:" + string(username)},
		[]string{string(username), ipText, strconv.FormatInt(s.ttl.Milliseconds(), 10), digest,
			strconv.Itoa(s.max), strconv.Itoa(s.userMax), take, k.prefix}).AsInt64()
	if err != nil {
		return false, s.failed(err)
	}
	return n == 1, nil
}

// endUserTokens ends the live tokens username holds on subsystem k,
// because the users file no longer has it or changed its password; it
// reports how many.
func (s *redisStore) endUserTokens(ctx context.Context, k subsystemKeys, username string) (int, error) {
	ctx, cancel := s.call(ctx)
	defer cancel()
	n, err := endUserScript.Exec(ctx, s.client, []string{k.prefix + "user:" + username}, []string{k.prefix, username}).AsInt64()
	if err != nil {
		return 0, s.failed(err)
	}
	return int(n), nil
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

// northServers lists up to limit north servers of subsystem k, most
// recently seen first, from the position after (a number; "" for the
// first page), with how many there are and the position of the next page
// ("" after the last). North servers that log in between two pages move to
// the front, so a walk of the pages may see one twice or miss one.
func (s *redisStore) northServers(ctx context.Context, k subsystemKeys, after string, limit int) ([]northServerReport, int, string, error) {
	start := 0
	if after != "" {
		n, err := strconv.Atoi(after)
		if err != nil || n < 0 {
			return nil, 0, "", fmt.Errorf("after=%q is not a position from a previous page's \"next\"", after)
		}
		start = n
	}
	ctx, cancel := s.call(ctx)
	defer cancel()
	count, err := s.client.Do(ctx, s.client.B().Zcard().Key(k.servers).Build()).AsInt64()
	if err != nil {
		return nil, 0, "", s.failed(err)
	}
	ips, err := s.client.Do(ctx, s.client.B().Zrange().Key(k.servers).Min(strconv.Itoa(start)).Max(strconv.Itoa(start+limit-1)).Rev().Build()).AsStrSlice()
	if err != nil {
		return nil, 0, "", s.failed(err)
	}
	reports := make([]northServerReport, 0, len(ips))
	if len(ips) > 0 {
		cmds := make(rueidis.Commands, len(ips))
		for i, ip := range ips {
			cmds[i] = s.client.B().Hgetall().Key(k.prefix + "ns:" + ip).Build()
		}
		for _, r := range s.client.DoMulti(ctx, cmds...) {
			m, err := r.AsStrMap()
			if err != nil {
				return nil, 0, "", s.failed(err)
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
	next := ""
	if int64(start+limit) < count {
		next = strconv.Itoa(start + limit)
	}
	return reports, int(count), next, nil
}

func prefixOf(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
