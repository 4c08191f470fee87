// Package redis keeps a subsystem's tokens and north servers in the shared
// Redis or Valkey (-store redis://…, opened by redisconn), so that every
// northd instance sharing it agrees on them: a token issued by one
// verifies on every other, and /north/servers shows the whole fleet. It
// passes the conformance suite (store/storetest) the memory store
// (store/memory) passes.
package redis

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/rueidis"

	"northd/internal/redisconn"
	"northd/internal/store"
)

// client is the token store's calls to Redis on the shared connection,
// within a subsystem's bounds.
type client struct {
	conn    *redisconn.Conn
	client  rueidis.Client
	timeout time.Duration
	max     int
	userMax int // -max-ips-per-user; 0 for no bound
	ttl     time.Duration
}

// Options bound a subsystem's keys and the calls made for its requests.
type Options struct {
	CallTimeout time.Duration // deadline of one call made for a request (-store-timeout)
	Max         int           // north servers per subsystem (-registry-max)
	MaxPerUser  int           // north servers one username holds (-max-ips-per-user); 0 for no bound
	TokenTTL    time.Duration // how long a token verifies (-token-ttl)
}

// failed notes a call made for a request that did not complete: it is
// counted, and the request gets 503. Whether the store is down is for the
// probes to say.
func (s *client) failed(error) error {
	s.conn.CountFailedCall()
	return store.ErrUnavailable
}

// call is the context of one call made for a request, or an error at once
// while the probes declare the store down.
func (s *client) call(parent context.Context) (context.Context, context.CancelFunc, error) {
	if s.conn.Down() {
		s.conn.CountFailedCall()
		return nil, nil, store.ErrUnavailable
	}
	ctx, cancel := context.WithTimeout(parent, s.timeout)
	return ctx, cancel, nil
}

// subsystemKeys are one subsystem's key names.
type subsystemKeys struct {
	prefix  string // northd:{NAME}:
	servers string
	clock   string
}

func keysFor(name string) subsystemKeys {
	p := "northd:{" + name + "}:"
	return subsystemKeys{prefix: p, servers: p + "servers", clock: p + "clock"}
}

// loginScript records a login in one step: the north server's old token
// ends as the new one begins, so there is no moment at which both verify,
// and the north servers past the bounds go with their tokens: the least
// recently seen of the subsystem past -registry-max, and of the username
// past -max-ips-per-user (ARGV[6]; 0 for no bound). It returns 0, and records nothing, when another
// username holds the ip's live token and ARGV[7] is not 1 (takeover: the
// users file lists the ip as this username's).
//
// The login's tenure (store.Tenure) is the clock's count after it ticks,
// and the count at the last login of the ip's previous username; a new
// ip's begins at the last forgetting. A record written before tenures
// were kept takes the count before this login instead (events published
// meanwhile to the ip unheld then go to no one rather than to this one).
//
// The time is Redis's own, never older than the newest north server's:
// the request's start time would make a login that waited (for a password
// check, or on an instance whose clock is behind) older than every entry,
// the first to go at the bound, and its fresh token deleted while it
// answers 200. The new entry also leaves its sets before they are trimmed,
// so that a tie can never pick it.
var loginScript = rueidis.NewLuaScript(loginScriptSource)

const loginScriptSource = `
local rec, servers, tok, userset, clock = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local username, ip, ttl, digest, max, usermax, takeover, prefix = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4], tonumber(ARGV[5]), tonumber(ARGV[6]), ARGV[7], ARGV[8]
local holder = redis.call('HGET', rec, 'username')
local old = redis.call('HGET', rec, 'token')
if holder and holder ~= username then
  if old and takeover ~= '1' and redis.call('EXISTS', prefix .. 'tok:' .. old) == 1 then return 0 end
  redis.call('ZREM', prefix .. 'user:' .. holder, ip)
end
local before = redis.call('HGET', clock, 'count') or '0'
local prev
if not holder then
  prev = redis.call('HGET', clock, 'forgot') or '0'
elseif holder == username then
  prev = redis.call('HGET', rec, 'prev') or before
else
  prev = redis.call('HGET', rec, 'login') or before
end
local login = string.format('%d', redis.call('HINCRBY', clock, 'count', 1))
local t = redis.call('TIME')
-- The subsystem's north servers are scored in microseconds, each later
-- than the newest, so that no two logins tie and a page lists the most
-- recent first; now is in milliseconds.
local seen = tonumber(t[1]) * 1000000 + tonumber(t[2])
local newest = redis.call('ZREVRANGE', servers, 0, 0, 'WITHSCORES')
if newest[2] and tonumber(newest[2]) >= seen then seen = tonumber(newest[2]) + 1 end
local now = math.floor(seen / 1000)
if old then redis.call('DEL', prefix .. 'tok:' .. old) end
redis.call('SET', tok, string.format('%d', now + ttl) .. '\n' .. ip .. '\n' .. username .. '\n' .. login .. ' ' .. prev, 'PX', ttl)
redis.call('HSET', rec, 'username', username, 'ip', ip, 'last_login', string.format('%d', now), 'token', digest, 'login', login, 'prev', prev)
redis.call('HINCRBY', rec, 'logins', 1)
-- forget drops the north servers popped from one of the two sets, with
-- their tokens, from the other set too. Events published to them unheld
-- are for none of the north servers at their ips after (see prev).
local function forget(gone, fromServers)
  if #gone > 0 then redis.call('HSET', clock, 'forgot', login) end
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
redis.call('ZADD', servers, string.format('%d', seen), ip)
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
return 1`

// endUserScript ends the live tokens one username (ARGV[2]) holds at the
// ips ARGV[3…], or, given none, at every ip of its set KEYS[1] (which
// names the slot either way), and returns how many it ended.
var endUserScript = rueidis.NewLuaScript(endUserScriptSource)

const endUserScriptSource = `
local prefix, username, n = ARGV[1], ARGV[2], 0
local ips = {}
for i = 3, #ARGV do ips[#ips + 1] = ARGV[i] end
if #ips == 0 then ips = redis.call('ZRANGE', KEYS[1], 0, -1) end
for _, ip in ipairs(ips) do
  local r = prefix .. 'ns:' .. ip
  if redis.call('HGET', r, 'username') == username then
    local t = redis.call('HGET', r, 'token')
    if t then
      n = n + redis.call('DEL', prefix .. 'tok:' .. t)
      redis.call('HDEL', r, 'token')
    end
  end
end
return n`

// storeScripts are loaded by the connection's probes while the store is
// not up (redisconn.Conn.LoadOnProbe), so that it is ready only with them
// loaded.
var storeScripts = []string{loginScriptSource, endUserScriptSource, logoutScriptSource}

// logoutScript ends a token and clears it from its north server's record.
var logoutScript = rueidis.NewLuaScript(logoutScriptSource)

const logoutScriptSource = `
local v = redis.call('GET', KEYS[1])
if not v then return 0 end
redis.call('DEL', KEYS[1])
local ip = string.match(v, '^[^\n]*\n([^\n]*)\n')
if ip then
  local rec = ARGV[1] .. 'ns:' .. ip
  if redis.call('HGET', rec, 'token') == ARGV[2] then redis.call('HDEL', rec, 'token') end
end
-- The key outlives the expiry it records by the moments the login
-- script took (its PX starts at the SET): a token past that expiry was
-- not live, as verify already says, and is only cleared.
local t = redis.call('TIME')
local exp = tonumber(string.match(v, '^(%d+)\n'))
if exp and exp <= tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) then return 0 end
return 1`

// login records a login of the north server at ip on subsystem k. It
// reports false, and records nothing, when another username holds ip's
// live token, unless takeover (the users file lists ip as username's).
func (s *client) login(k subsystemKeys, ip netip.Addr, username []byte, token [16]byte, takeover bool) (bool, error) {
	ctx, cancel, err := s.call(context.Background())
	if err != nil {
		return false, err
	}
	defer cancel()
	ipText := ip.String()
	digest := store.TokenDigest(token)
	take := "0"
	if takeover {
		take = "1"
	}
	n, err := loginScript.Exec(ctx, s.client,
		[]string{k.prefix + "ns:" + ipText, k.servers, k.prefix + "tok:" + digest, k.prefix + "user:" + string(username), k.clock},
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
func (s *client) endUserTokens(ctx context.Context, k subsystemKeys, username string) (int, error) {
	ctx, cancel, err := s.call(ctx)
	if err != nil {
		return 0, err
	}
	defer cancel()
	n, err := endUserScript.Exec(ctx, s.client, []string{k.prefix + "user:" + username}, []string{k.prefix, username}).AsInt64()
	if err != nil {
		return 0, s.failed(err)
	}
	return int(n), nil
}

// tokenRecord is a token's key as the login script wrote it.
type tokenRecord struct {
	expires  time.Time
	ip       netip.Addr
	username string
	tenure   store.Tenure
}

// parseTokenRecord reads "expiry-ms\nip\nusername\nLOGIN PREV"; a record
// written before tenures were kept ends at the username (usernames hold
// no line breaks) and has the zero Tenure.
func parseTokenRecord(v string) (tokenRecord, error) {
	ms, rest, _ := strings.Cut(v, "\n")
	ipText, rest, ok := strings.Cut(rest, "\n")
	exp, err1 := strconv.ParseInt(ms, 10, 64)
	addr, err2 := netip.ParseAddr(ipText)
	if !ok || err1 != nil || err2 != nil {
		return tokenRecord{}, fmt.Errorf("store holds a malformed token record %q", v)
	}
	r := tokenRecord{expires: time.UnixMilli(exp), ip: addr, username: rest}
	if username, tenure, ok := strings.Cut(rest, "\n"); ok {
		login, prev, _ := strings.Cut(tenure, " ")
		var err1, err2 error
		r.username = username
		r.tenure.Login, err1 = strconv.ParseUint(login, 10, 64)
		r.tenure.Prev, err2 = strconv.ParseUint(prev, 10, 64)
		if err1 != nil || err2 != nil {
			return tokenRecord{}, fmt.Errorf("store holds a malformed token record %q", v)
		}
	}
	return r, nil
}

// endUserTokensOutside ends the live tokens username holds on subsystem
// k at ips that none of keep contains, because the users file narrowed
// the ips it may claim; it reports how many. The ips are picked here,
// from the username's set, as Lua has no CIDR arithmetic; a login at an
// ip outside keep, between the read and the script, is one the users file
// in force no longer allows.
func (s *client) endUserTokensOutside(ctx context.Context, k subsystemKeys, username string, keep []netip.Prefix) (int, error) {
	ctx, cancel, err := s.call(ctx)
	if err != nil {
		return 0, err
	}
	defer cancel()
	userKey := k.prefix + "user:" + username
	held, err := s.client.Do(ctx, s.client.B().Zrange().Key(userKey).Min("0").Max("-1").Build()).AsStrSlice()
	if err != nil {
		return 0, s.failed(err)
	}
	args := []string{k.prefix, username}
	for _, ipText := range held {
		if ip, err := netip.ParseAddr(ipText); err == nil && store.Contains(keep, ip) {
			continue
		}
		args = append(args, ipText) // outside keep, or not an ip: not kept
	}
	if len(args) == 2 {
		return 0, nil
	}
	n, err := endUserScript.Exec(ctx, s.client, []string{userKey}, args).AsInt64()
	if err != nil {
		return 0, s.failed(err)
	}
	return int(n), nil
}

// verify looks a token up on subsystem k at now.
func (s *client) verify(k subsystemKeys, token [16]byte, now time.Time) (tokenRecord, store.Result, error) {
	ctx, cancel, err := s.call(context.Background())
	if err != nil {
		return tokenRecord{}, store.Unknown, err
	}
	defer cancel()
	v, err := s.client.Do(ctx, s.client.B().Get().Key(k.prefix+"tok:"+store.TokenDigest(token)).Build()).ToString()
	switch {
	case rueidis.IsRedisNil(err):
		return tokenRecord{}, store.Unknown, nil
	case err != nil:
		return tokenRecord{}, store.Unknown, s.failed(err)
	}
	r, err := parseTokenRecord(v)
	if err != nil {
		return tokenRecord{}, store.Unknown, err
	}
	if !now.Before(r.expires) {
		return tokenRecord{}, store.Expired, nil
	}
	return r, store.Valid, nil
}

// holder reports the username of the live token at ip on subsystem k and
// its tenure, or false and the clock's count: the north server's record
// names its token's digest, and the token's own key says whether it
// lives. The count is read first, in the same pipeline, so that a login
// after it, which the rest may or may not see, counts later than it.
func (s *client) holder(parent context.Context, k subsystemKeys, ip netip.Addr, now time.Time) (string, bool, store.Tenure, error) {
	ctx, cancel, err := s.call(parent)
	if err != nil {
		return "", false, store.Tenure{}, err
	}
	defer cancel()
	replies := s.client.DoMulti(ctx,
		s.client.B().Hget().Key(k.clock).Field("count").Build(),
		s.client.B().Hget().Key(k.prefix+"ns:"+ip.String()).Field("token").Build())
	count, err := replies[0].AsUint64()
	if rueidis.IsRedisNil(err) {
		count, err = 0, nil
	}
	if err != nil {
		return "", false, store.Tenure{}, s.failed(err)
	}
	unheld := store.Tenure{Login: count}
	digest, err := replies[1].ToString()
	switch {
	case rueidis.IsRedisNil(err) || err == nil && digest == "":
		return "", false, unheld, nil
	case err != nil:
		return "", false, store.Tenure{}, s.failed(err)
	}
	v, err := s.client.Do(ctx, s.client.B().Get().Key(k.prefix+"tok:"+digest).Build()).ToString()
	switch {
	case rueidis.IsRedisNil(err):
		return "", false, unheld, nil
	case err != nil:
		return "", false, store.Tenure{}, s.failed(err)
	}
	r, err := parseTokenRecord(v)
	if err != nil {
		return "", false, store.Tenure{}, err
	}
	if !now.Before(r.expires) {
		return "", false, unheld, nil
	}
	return r.username, true, r.tenure, nil
}

// logout ends a token on subsystem k; false for one that was not live.
func (s *client) logout(k subsystemKeys, token [16]byte) (bool, error) {
	ctx, cancel, err := s.call(context.Background())
	if err != nil {
		return false, err
	}
	defer cancel()
	digest := store.TokenDigest(token)
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
func (s *client) northServers(ctx context.Context, k subsystemKeys, after store.Cursor, limit int) ([]store.NorthServer, int, store.Cursor, error) {
	ctx, cancel, err := s.call(ctx)
	if err != nil {
		return nil, 0, store.Cursor{}, err
	}
	defer cancel()
	// The scores are microseconds, as is every cursor this store hands
	// out (in nanoseconds, as the memory registry's).
	top := "+inf"
	cmds := rueidis.Commands{s.client.B().Zcard().Key(k.servers).Build()}
	if after != (store.Cursor{}) {
		us := strconv.FormatInt(after.LastLogin/int64(time.Microsecond), 10)
		top = "(" + us
		// Those seen in the cursor's microsecond (logins give each its
		// own, but a score written by other means may tie), to keep the
		// ones after it by ip.
		cmds = append(cmds, s.client.B().Zrange().Key(k.servers).Min(us).Max(us).Byscore().Withscores().Build())
	}
	cmds = append(cmds, s.client.B().Zrange().Key(k.servers).Min(top).Max("-inf").Byscore().Rev().Limit(0, int64(limit)+1).Withscores().Build())
	results := s.client.DoMulti(ctx, cmds...)
	count, err := results[0].AsInt64()
	if err != nil {
		return nil, 0, store.Cursor{}, s.failed(err)
	}
	var found []rueidis.ZScore
	for _, r := range results[1:] {
		z, err := r.AsZScores()
		if err != nil {
			return nil, 0, store.Cursor{}, s.failed(err)
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
			return nil, 0, store.Cursor{}, s.failed(err)
		}
		found = append(found, z...)
	}
	page := make([]store.Cursor, 0, len(found))
	for _, z := range found {
		ip, err := netip.ParseAddr(z.Member)
		at := int64(z.Score) * int64(time.Microsecond)
		if err == nil && after.Before(at, ip) {
			page = append(page, store.Cursor{LastLogin: at, IP: ip})
		}
	}
	slices.SortFunc(page, store.Cursor.Compare)
	var next store.Cursor
	if len(page) > limit {
		page = page[:limit]
		next = page[limit-1]
	}
	reports := make([]store.NorthServer, 0, len(page))
	if len(page) > 0 {
		cmds := make(rueidis.Commands, len(page))
		for i, e := range page {
			cmds[i] = s.client.B().Hgetall().Key(k.prefix + "ns:" + e.IP.String()).Build()
		}
		for _, r := range s.client.DoMulti(ctx, cmds...) {
			m, err := r.AsStrMap()
			if err != nil {
				return nil, 0, store.Cursor{}, s.failed(err)
			}
			if len(m) == 0 {
				continue // forgotten between the two reads
			}
			ms, _ := strconv.ParseInt(m["last_login"], 10, 64)
			logins, _ := strconv.ParseUint(m["logins"], 10, 64)
			reports = append(reports, store.NorthServer{
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
