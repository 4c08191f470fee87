// Package redis keeps a subsystem's webhook subscriptions in Redis or
// Valkey, shared by every instance: the subscriptions, their cursors, and
// the lease that makes one instance at a time deliver for each. It is the
// shared counterpart of push/memory, on the connection redisconn opens for
// the token store too, and passes the same suite (push/pushtest).
//
// Keys, under the subsystem's {NAME} hash tag (one Cluster slot):
//   - northd:{NAME}:subs, a hash: subscription id → its record (JSON,
//     secrets included, since an instance that takes a subscription over
//     signs with them: sealed by SecretKeys when northd has them);
//   - northd:{NAME}:sub:ID:cursor, the last event delivered;
//   - northd:{NAME}:sub:ID:lease, the holder delivering, with a PX that
//     lapses when it dies;
//   - northd:{NAME}:sub:ID:failing, the unix milliseconds of the first
//     failure since the last delivery taken, for -push-disable-after;
//   - northd:{NAME}:sub:ID:pending, the last event of the batch being
//     delivered, fixed before its first attempt, so that every attempt
//     posts the same events under the same webhook-id;
//   - northd:{NAME}:subs:version, counted up by every change of the
//     subscriptions, so that an instance reads them all again only when
//     it moved (each instance lists them every second). A change made by
//     hand in Redis must INCR it too.
package redis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/redis/rueidis"

	"northd/internal/events"
	"northd/internal/push"
	"northd/internal/redisconn"
)

// Store is one subsystem's subscriptions in Redis; see push.Store.
type Store struct {
	client  rueidis.Client
	subs    string
	version string
	prefix  string
	timeout time.Duration
	keys    *SecretKeys // nil: secrets in clear

	mu     sync.Mutex
	listed int64          // the version records were read at; 0: none kept
	cached []*push.Record // read-only, shared with List's callers
}

var _ push.Store = (*Store)(nil)

// New is the subscriptions of subsystem on conn (the connection the token
// store shares), each call bounded by timeout, their secrets sealed by
// keys (nil: kept in clear).
func New(conn *redisconn.Conn, subsystem string, timeout time.Duration, keys *SecretKeys) *Store {
	p := "northd:{" + subsystem + "}:"
	return &Store{client: conn.Client(), subs: p + "subs", version: p + "subs:version", prefix: p + "sub:", timeout: timeout, keys: keys}
}

func (s *Store) cursorKey(id string) string  { return s.prefix + id + ":cursor" }
func (s *Store) leaseKey(id string) string   { return s.prefix + id + ":lease" }
func (s *Store) failingKey(id string) string { return s.prefix + id + ":failing" }
func (s *Store) pendingKey(id string) string { return s.prefix + id + ":pending" }

func (s *Store) call(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.timeout)
}

func unavailable(err error) error { return fmt.Errorf("%w: %v", events.ErrUnavailable, err) }

// createScript adds the record ARGV[1] under id ARGV[2] with cursor
// ARGV[3], unless the subsystem holds ARGV[5] subscriptions or the owner
// ARGV[6] (username and ip, as the records' "owner" would be compared)
// ARGV[4]: counting them reads every record, bounded by the max.
var createScript = rueidis.NewLuaScript(`
if redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[5]) then return 0 end
local mine = 0
for _, v in ipairs(redis.call('HVALS', KEYS[1])) do
  local r = cjson.decode(v)
  if r.username .. ' ' .. r.ip == ARGV[6] then mine = mine + 1 end
end
if mine >= tonumber(ARGV[4]) then return 0 end
redis.call('HSET', KEYS[1], ARGV[2], ARGV[1])
redis.call('SET', KEYS[2], ARGV[3])
redis.call('INCR', KEYS[3])
return 1
`)

func (s *Store) Create(ctx context.Context, r *push.Record, cursor events.ID, perOwner, max int) error {
	b, err := json.Marshal(s.keys.seal(r))
	if err != nil {
		return err
	}
	ctx, cancel := s.call(ctx)
	defer cancel()
	n, err := createScript.Exec(ctx, s.client, []string{s.subs, s.cursorKey(r.ID), s.version},
		[]string{string(b), r.ID, cursor.String(), strconv.Itoa(perOwner), strconv.Itoa(max), r.Username + " " + r.IP.String()}).AsInt64()
	if err != nil {
		return unavailable(err)
	}
	if n == 0 {
		return push.ErrTooMany
	}
	return nil
}

// updateScript replaces a record that is still there.
var updateScript = rueidis.NewLuaScript(`
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('INCR', KEYS[2])
return 1
`)

func (s *Store) Update(ctx context.Context, r *push.Record) (bool, error) {
	b, err := json.Marshal(s.keys.seal(r))
	if err != nil {
		return false, err
	}
	ctx, cancel := s.call(ctx)
	defer cancel()
	n, err := updateScript.Exec(ctx, s.client, []string{s.subs, s.version}, []string{r.ID, string(b)}).AsInt64()
	if err != nil {
		return false, unavailable(err)
	}
	return n == 1, nil
}

// deleteScript removes the record ARGV[1] of KEYS[1], its cursor, lease,
// failing time and pending batch (KEYS[2], KEYS[3], KEYS[5], KEYS[6]),
// and counts the change in KEYS[4], at once.
var deleteScript = rueidis.NewLuaScript(`
local n = redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('DEL', KEYS[2], KEYS[3], KEYS[5], KEYS[6])
if n == 1 then redis.call('INCR', KEYS[4]) end
return n
`)

func (s *Store) Delete(ctx context.Context, id string) (bool, error) {
	ctx, cancel := s.call(ctx)
	defer cancel()
	n, err := deleteScript.Exec(ctx, s.client, []string{s.subs, s.cursorKey(id), s.leaseKey(id), s.version, s.failingKey(id), s.pendingKey(id)}, []string{id}).AsInt64()
	if err != nil {
		return false, unavailable(err)
	}
	return n == 1, nil
}

// listScript answers the version and every record, read together.
var listScript = rueidis.NewLuaScript(`
return {tonumber(redis.call('GET', KEYS[2]) or '0'), redis.call('HVALS', KEYS[1])}
`)

// List reads every record only when the version says they changed since
// the last List: one GET a turn otherwise. Without a version (no change
// yet, or Redis lost its data) it reads them every time.
func (s *Store) List(ctx context.Context) ([]*push.Record, error) {
	ctx, cancel := s.call(ctx)
	defer cancel()
	v, err := s.client.Do(ctx, s.client.B().Get().Key(s.version).Build()).AsInt64()
	if err != nil && !rueidis.IsRedisNil(err) {
		return nil, unavailable(err)
	}
	s.mu.Lock()
	if v != 0 && v == s.listed {
		cached := s.cached
		s.mu.Unlock()
		return cached, nil
	}
	s.mu.Unlock()
	reply, err := listScript.Exec(ctx, s.client, []string{s.subs, s.version}, nil).ToArray()
	if err != nil {
		return nil, unavailable(err)
	}
	if len(reply) != 2 {
		return nil, unavailable(fmt.Errorf("the list script answered %d values, want 2", len(reply)))
	}
	v, err1 := reply[0].AsInt64()
	all, err2 := reply[1].AsStrSlice()
	if err := errors.Join(err1, err2); err != nil {
		return nil, unavailable(err)
	}
	out := make([]*push.Record, 0, len(all))
	for _, v := range all {
		var st stored
		if err := json.Unmarshal([]byte(v), &st); err != nil {
			return nil, fmt.Errorf("a webhook subscription in Redis is not a record northd wrote: %v", err)
		}
		r, err := s.keys.open(&st)
		if e, ok := errors.AsType[*unbound](err); ok {
			// The north server's DELETE reads the subscriptions too:
			// only a hand in Redis can remove it.
			return nil, fmt.Errorf("%w: delete it (redis-cli HDEL '%s' %s; redis-cli DEL '%s' '%s' '%s'; redis-cli INCR '%s') and let its north server subscribe again",
				err, s.subs, e.id, s.cursorKey(e.id), s.leaseKey(e.id), s.failingKey(e.id), s.version)
		}
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	s.mu.Lock()
	s.listed, s.cached = v, out
	s.mu.Unlock()
	return out, nil
}

// Cursor reads the cursor and the pending batch's end together (one
// slot: MGET).
func (s *Store) Cursor(ctx context.Context, id string) (events.ID, events.ID, bool, error) {
	ctx, cancel := s.call(ctx)
	defer cancel()
	vs, err := s.client.Do(ctx, s.client.B().Mget().Key(s.cursorKey(id), s.pendingKey(id)).Build()).ToArray()
	if err != nil {
		return events.ID{}, events.ID{}, false, unavailable(err)
	}
	if len(vs) != 2 {
		return events.ID{}, events.ID{}, false, unavailable(fmt.Errorf("MGET answered %d values, want 2", len(vs)))
	}
	v, err := vs[0].ToString()
	if rueidis.IsRedisNil(err) {
		return events.ID{}, events.ID{}, false, nil
	}
	c, err := parseID(v, err)
	if err != nil {
		return events.ID{}, events.ID{}, false, err
	}
	var pending events.ID
	if v, err := vs[1].ToString(); !rueidis.IsRedisNil(err) {
		if pending, err = parseID(v, err); err != nil {
			return events.ID{}, events.ID{}, false, err
		}
	}
	return c, pending, true, nil
}

// parseID reads an id this store wrote.
func parseID(v string, err error) (events.ID, error) {
	if err != nil {
		return events.ID{}, unavailable(err)
	}
	if v == "-0" { // the zero ID: before every event
		return events.ID{}, nil
	}
	return events.ParseID(v)
}

// behindLua is behind(stored, from): whether the cursor stored is
// before the cursor from, in from's epoch (or the zero cursor), which only
// a Redis that came back with older data makes so: the holder's own
// cursor, which Redis took before it lost it, is then the truth.
const behindLua = `
local function behind(stored, from)
  if not stored then return false end
  local se, sn = string.match(stored, '^(.*)%-(%d+)$')
  local fe, fn = string.match(from, '^(.*)%-(%d+)$')
  if not se or not fe then return false end
  if se == '' and sn == '0' then return from ~= stored end
  return se == fe and tonumber(sn) < tonumber(fn)
end
`

// pendingScript sets the pending batch end KEYS[2] to ARGV[2] unless it is
// set, only while ARGV[1] holds the lease KEYS[1] and the cursor KEYS[3]
// is ARGV[3], and answers it (nil without the lease or on another cursor).
// A cursor behind ARGV[3] (Redis lost its later value) is put back to it,
// and the end recorded for it, of a batch taken since, dropped.
var pendingScript = rueidis.NewLuaScript(behindLua + `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return false end
local c = redis.call('GET', KEYS[3])
if c ~= ARGV[3] then
  if not behind(c, ARGV[3]) then return false end
  redis.call('SET', KEYS[3], ARGV[3])
  redis.call('DEL', KEYS[2])
end
redis.call('SET', KEYS[2], ARGV[2], 'NX')
return redis.call('GET', KEYS[2])
`)

func (s *Store) Pending(ctx context.Context, id, holder string, from, end events.ID) (events.ID, bool, error) {
	ctx, cancel := s.call(ctx)
	defer cancel()
	v, err := pendingScript.Exec(ctx, s.client, []string{s.leaseKey(id), s.pendingKey(id), s.cursorKey(id)}, []string{holder, end.String(), from.String()}).ToString()
	if rueidis.IsRedisNil(err) {
		return events.ID{}, false, nil
	}
	e, err := parseID(v, err)
	return e, err == nil, err
}

// leaseScript takes the lease KEYS[1] for ARGV[1] for ARGV[2] ms when
// free, or renews it when ARGV[1] holds it; only for a subscription that
// still exists (KEYS[2] holds ARGV[3]).
var leaseScript = rueidis.NewLuaScript(`
if redis.call('HEXISTS', KEYS[2], ARGV[3]) == 0 then return 0 end
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
`)

func (s *Store) Lease(ctx context.Context, id, holder string, ttl time.Duration) (bool, error) {
	ctx, cancel := s.call(ctx)
	defer cancel()
	n, err := leaseScript.Exec(ctx, s.client, []string{s.leaseKey(id), s.subs}, []string{holder, strconv.FormatInt(ttl.Milliseconds(), 10), id}).AsInt64()
	if err != nil {
		return false, unavailable(err)
	}
	return n == 1, nil
}

// advanceScript moves the cursor KEYS[2] from ARGV[3] to ARGV[2], and
// clears the failing time KEYS[3] and the pending batch KEYS[4], only
// while ARGV[1] holds the lease KEYS[1] and the cursor is still ARGV[3]
// (or behind it: Redis lost its later value): an instance that lost the
// lease (it stalled past it) cannot move a cursor the new holder moves,
// even once it holds the lease again.
var advanceScript = rueidis.NewLuaScript(behindLua + `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
local c = redis.call('GET', KEYS[2])
if c ~= ARGV[3] and not behind(c, ARGV[3]) then return 0 end
redis.call('SET', KEYS[2], ARGV[2])
redis.call('DEL', KEYS[3], KEYS[4])
return 1
`)

func (s *Store) Advance(ctx context.Context, id, holder string, from, to events.ID) (bool, error) {
	ctx, cancel := s.call(ctx)
	defer cancel()
	n, err := advanceScript.Exec(ctx, s.client, []string{s.leaseKey(id), s.cursorKey(id), s.failingKey(id), s.pendingKey(id)}, []string{holder, to.String(), from.String()}).AsInt64()
	if err != nil {
		return false, unavailable(err)
	}
	return n == 1, nil
}

// failingScript sets the failing time KEYS[2] to ARGV[2] unless it is set,
// only while ARGV[1] holds the lease KEYS[1], and answers it (nil without
// the lease).
var failingScript = rueidis.NewLuaScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return false end
redis.call('SET', KEYS[2], ARGV[2], 'NX')
return redis.call('GET', KEYS[2])
`)

func (s *Store) Failing(ctx context.Context, id, holder string, since time.Time) (time.Time, bool, error) {
	ctx, cancel := s.call(ctx)
	defer cancel()
	ms, err := failingScript.Exec(ctx, s.client, []string{s.leaseKey(id), s.failingKey(id)}, []string{holder, strconv.FormatInt(since.UnixMilli(), 10)}).AsInt64()
	if rueidis.IsRedisNil(err) {
		return time.Time{}, false, nil
	}
	if err != nil {
		return time.Time{}, false, unavailable(err)
	}
	return time.UnixMilli(ms), true, nil
}

func (s *Store) ClearFailing(ctx context.Context, id string) error {
	ctx, cancel := s.call(ctx)
	defer cancel()
	if err := s.client.Do(ctx, s.client.B().Del().Key(s.failingKey(id)).Build()).Error(); err != nil {
		return unavailable(err)
	}
	return nil
}
