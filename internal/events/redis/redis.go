// Package redis keeps a subsystem's events in a Redis Stream, shared by
// every northd instance that uses the store (-store redis://…), so that
// an event published on one reaches the north servers of all. It is the
// shared counterpart of events/memory, on the connection redisconn opens
// for the token store too, and passes the same suite (events/eventstest).
//
// Its keys carry the subsystem's name as a Redis Cluster hash tag, as the
// token store's do, so that its scripts may touch them all:
//   - northd:{NAME}:events, the stream. Entry ids are 0-SEQ: the
//     sequence part is the event's Seq, which Redis (7.0 or later) counts
//     on by one per entry given the id 0-*;
//   - northd:{NAME}:events:epoch, the log's epoch, made anew when it is
//     missing (Redis lost its data, and with it the stream), or when the
//     stream's last id is behind one an instance already saw in that epoch
//     (Redis restarted from older data: a snapshot, or an append-only file
//     that lost its last second), so that ids from before are reset, not
//     taken for the new ones of their number;
//   - northd:{NAME}:events:idem:DIGEST, a publish's Idempotency-Key (its
//     SHA-256) and the ids it was given, for IdempotencyWindow.
//
// Software in any language may publish by writing the stream itself:
//
//	XADD northd:{NAME}:events MAXLEN ~ 100000 0-* type TYPE data JSON [to_ip IP] [to_user USERNAME] [time RFC3339NANO]
//
// with time in UTC. An entry with to_ip and no to_user is for whoever
// holds the ip when it is read (northd's own publishing writes the
// username holding the ip, or, when no one held it, to_next_login: see
// events.Target). Such an entry is delivered however it was written: one
// with no type (or one events.ValidType refuses) as type "message",
// data that is not JSON as a JSON string of its bytes, a missing or
// unreadable time as the time the reading instance read it, and an
// unreadable to_ip as for no north server rather than for all. An entry
// whose id is not 0-SEQ (an XADD with * rather than 0-*) makes the next
// 0-* fail: publishing then answers 503, and its error names the fix,
// until the stream is deleted.
package redis

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/rueidis"

	"northd/internal/events"
	"northd/internal/redisconn"
)

// Options bound the stream and the calls made to it.
type Options struct {
	Retention   int           // entries kept: MAXLEN ~, so Redis keeps a few more, in whole nodes
	CallTimeout time.Duration // deadline of one call (-store-timeout)
}

// Log is a subsystem's events in a Redis Stream; see events.Log.
type Log struct {
	conn      *redisconn.Conn
	client    rueidis.Client
	stream    string
	epochKey  string
	idemKeys  string // prefix of the idempotency keys
	retention string
	timeout   time.Duration

	// seen is the stream's last id as far as this instance knows: the
	// highest seq Redis answered in the epoch it answered last. A
	// stream found behind it in that epoch was restored from older
	// data, and its next seqs would name other events than the ones
	// this instance gave out: the scripts start a new epoch instead.
	// Only Redis's answers move it, never an id a client sent.
	mu   sync.Mutex
	seen events.ID
}

var _ events.Log = (*Log)(nil)

// New is the log of subsystem on conn, the connection the token store
// shares, bounded by o.
func New(conn *redisconn.Conn, subsystem string, o Options) *Log {
	p := "northd:{" + subsystem + "}:events"
	return &Log{
		conn:      conn,
		client:    conn.Client(),
		stream:    p,
		epochKey:  p + ":epoch",
		idemKeys:  p + ":idem:",
		retention: strconv.Itoa(max(o.Retention, 1)),
		timeout:   o.CallTimeout,
	}
}

// newEpoch is a random candidate for the log's epoch, which the scripts
// take only when Redis holds none.
func newEpoch() string {
	var b [6]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// rfc3339Lua formats Redis's TIME (seconds, microseconds) as RFC 3339 in
// UTC: Redis's Lua has no date functions, so the civil date is counted
// from the days since 1970 (Howard Hinnant's days_from_civil, inverted).
const rfc3339Lua = `
local function rfc3339(s, us)
  local days = math.floor(s / 86400)
  local secs = s - days * 86400
  local z = days + 719468
  local era = math.floor(z / 146097)
  local doe = z - era * 146097
  local yoe = math.floor((doe - math.floor(doe / 1460) + math.floor(doe / 36524) - math.floor(doe / 146096)) / 365)
  local doy = doe - (365 * yoe + math.floor(yoe / 4) - math.floor(yoe / 100))
  local mp = math.floor((5 * doy + 2) / 153)
  local d = doy - math.floor((153 * mp + 2) / 5) + 1
  local m = mp < 10 and mp + 3 or mp - 9
  local y = yoe + era * 400
  if m <= 2 then y = y + 1 end
  return string.format('%04d-%02d-%02dT%02d:%02d:%02d.%06d000Z', y, m, d, math.floor(secs / 3600), math.floor(secs % 3600 / 60), secs % 60, us)
end
`

// epochLua is the log's epoch, made from the candidate ARGV[1] when Redis
// holds none: at the first publish or read, and after Redis lost its data.
// When the stream KEYS[1]'s last-generated id is behind the seq ARGV[3]
// that the calling instance saw in that epoch, ARGV[2], Redis restarted
// from older data (a snapshot, or an append-only file that lost its last
// second), and the ids after it were given to events it no longer holds:
// the stream's last id is set a million past ARGV[3] (XSETID), so that no
// later event takes one of them (another instance may have seen ids past
// this one's, up to what its tail of the log was ahead), and the events
// it kept keep their ids. The lost
// stretch is then a gap in the seqs, which the read script turns into a
// reset for every reader that had not read past it. (A stream that is gone
// altogether starts a new epoch instead: nothing of it is left to keep.)
// It also sets the entries kept, the oldest's seq (nil when none is) and
// the last generated seq (0 before the first), which the scripts answer.
const epochLua = `
local function seq(id) return tonumber(string.match(id, '%-(%d+)$')) end
local kept, first, last, ours = 0, nil, 0, true
if redis.call('EXISTS', KEYS[1]) == 1 then
  local info = redis.call('XINFO', 'STREAM', KEYS[1])
  for i = 1, #info, 2 do
    local k, v = info[i], info[i + 1]
    if k == 'length' then kept = v
    elseif k == 'last-generated-id' then last, ours = seq(v), string.sub(v, 1, 2) == '0-'
    elseif k == 'first-entry' and v then first = seq(v[1]) end
  end
end
local epoch = redis.call('GET', KEYS[2])
if not epoch then
  epoch = ARGV[1]
  redis.call('SET', KEYS[2], epoch)
elseif epoch == ARGV[2] and last < tonumber(ARGV[3]) then
  if not ours then
    -- A producer's XADD * broke the stream: publishing says so.
  elseif redis.call('EXISTS', KEYS[1]) == 1 then
    last = tonumber(ARGV[3]) + 1000000
    redis.call('XSETID', KEYS[1], string.format('0-%d', last))
  else
    epoch = ARGV[1]
    redis.call('SET', KEYS[2], epoch)
  end
end
`

// publishScript appends the drafts (ARGV[6…], five values each: type,
// data, to_ip, to_user, to_next_login) to the stream KEYS[1] at Redis's
// time, trimmed to
// about ARGV[4] entries, unless the idempotency key KEYS[3] (when given)
// holds a publish of the last ARGV[5] milliseconds. It returns
// "EPOCH FIRST-SEQ COUNT" and whether that is a replay. A script is not
// rolled back when a command in it fails, but only the first XADD can
// fail (a stream whose last id is not 0-SEQ), before it wrote anything but
// maybe a new epoch, which that stream's readers need anyway.
var publishScript = rueidis.NewLuaScript(publishScriptSource)

const publishScriptSource = rfc3339Lua + epochLua + `
if KEYS[3] then
  local given = redis.call('GET', KEYS[3])
  if given then return {given, 1} end
end
local t = redis.call('TIME')
local now = rfc3339(tonumber(t[1]), tonumber(t[2]))
local first, n = nil, 0
for i = 6, #ARGV, 5 do
  local fields = {'type', ARGV[i], 'data', ARGV[i + 1]}
  if ARGV[i + 2] ~= '' then
    fields[#fields + 1] = 'to_ip'
    fields[#fields + 1] = ARGV[i + 2]
  end
  if ARGV[i + 3] ~= '' then
    fields[#fields + 1] = 'to_user'
    fields[#fields + 1] = ARGV[i + 3]
  end
  if ARGV[i + 4] ~= '' then
    fields[#fields + 1] = 'to_next_login'
    fields[#fields + 1] = ARGV[i + 4]
  end
  fields[#fields + 1] = 'time'
  fields[#fields + 1] = now
  local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[4], '0-*', unpack(fields))
  first = first or string.match(id, '^0%-(%d+)$')
  n = n + 1
end
local ids = epoch .. ' ' .. first .. ' ' .. n
if KEYS[3] then redis.call('SET', KEYS[3], ids, 'PX', ARGV[5]) end
return {ids, 0}`

// readScript reads up to ARGV[6] entries of the stream KEYS[1] after the
// id of epoch ARGV[4] and seq ARGV[5] (ARGV[7] is 1 for the zero id: from
// the oldest, no reset), or from the oldest, saying reset, when that id is
// of another epoch, trimmed away, or past the last entry ever added; or
// from the first entry after a gap in the seqs that follows that id,
// saying reset (events lost, see epochLua, or deleted by hand). That
// id is the client's, and may be anything: it is only compared, and never
// moves the epoch on. It returns the epoch, reset (0 or 1), the entries
// kept, the first's seq (the next to be added when none is), the last
// added's seq, and the entries.
var readScript = rueidis.NewLuaScript(readScriptSource)

const readScriptSource = epochLua + `
first = first or last + 1
local after, zero, max = tonumber(ARGV[5]), ARGV[7] == '1', tonumber(ARGV[6])
local reset, start = 0, '(0-' .. ARGV[5]
if zero then
  start = '-'
elseif ARGV[4] ~= epoch or after > last or after + 1 < first then
  reset, start = 1, '-'
end
local entries = {}
if max > 0 then entries = redis.call('XRANGE', KEYS[1], start, '+', 'COUNT', max) end
-- Seqs follow one another but where events were lost (see epochLua) or
-- deleted by hand: the entries stop before such a gap, and a read that
-- starts at one says reset, from the first entry after it.
local expect = nil
if reset == 0 and not zero then expect = after + 1 end
for i = 1, #entries do
  local s = seq(entries[i][1])
  if expect and s ~= expect then
    if i == 1 then
      reset, first = 1, s
    else
      local upto = {}
      for j = 1, i - 1 do upto[j] = entries[j] end
      entries = upto
      break
    end
  end
  expect = s + 1
end
return {epoch, reset, kept, first, last, entries}`

// lastSeen is the stream's last id as far as this instance knows, for a
// script to compare with Redis's: its epoch and seq.
func (l *Log) lastSeen() (events.ID, string, string) {
	l.mu.Lock()
	seen := l.seen
	l.mu.Unlock()
	return seen, seen.Epoch, strconv.FormatUint(seen.Seq, 10)
}

// saw records the stream's last id, last, as a script answered it, the
// call having been sent when this instance had seen sent. An answer in
// another epoch than the one seen is taken only when the epoch changed
// since the call was sent: one that ran before a newer answer, and comes
// back after it, does not take the instance back to the old epoch.
func (l *Log) saw(sent, last events.ID) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case last.Epoch == l.seen.Epoch:
		l.seen.Seq = max(l.seen.Seq, last.Seq)
	case sent.Epoch == l.seen.Epoch:
		l.seen = last
	}
}

// call is the context of one call, within the log's timeout.
func (l *Log) call(ctx context.Context, extra time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, l.timeout+extra)
}

// failed is a call's error: the caller's own when its context ended, and
// otherwise ErrUnavailable, saying why.
func failed(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return fmt.Errorf("%w: %v", events.ErrUnavailable, err)
}

// Publish appends drafts; see events.Log. The events' time is Redis's,
// not now, so that every instance stamps them by one clock.
func (l *Log) Publish(ctx context.Context, idempotencyKey string, drafts []events.Draft, _ time.Time) ([]events.ID, bool, error) {
	if len(drafts) == 0 {
		return nil, false, nil
	}
	keys := []string{l.stream, l.epochKey}
	if idempotencyKey != "" {
		digest := sha256.Sum256([]byte(idempotencyKey))
		keys = append(keys, l.idemKeys+hex.EncodeToString(digest[:]))
	}
	seen, seenEpoch, seenSeq := l.lastSeen()
	args := make([]string, 0, 5+5*len(drafts))
	args = append(args, newEpoch(), seenEpoch, seenSeq, l.retention, strconv.FormatInt(events.IdempotencyWindow.Milliseconds(), 10))
	for _, d := range drafts {
		ip := ""
		if d.To.IP.IsValid() {
			ip = d.To.IP.String()
		}
		next := ""
		if d.To.NextLogin != 0 {
			next = strconv.FormatUint(d.To.NextLogin, 10)
		}
		args = append(args, d.Type, string(d.Data), ip, d.To.Username, next)
	}
	cctx, cancel := l.call(ctx, 0)
	defer cancel()
	reply, err := publishScript.Exec(cctx, l.client, keys, args).ToArray()
	if err != nil && strings.Contains(err.Error(), "equal or smaller than the target stream top item") {
		// Retrying will not help: say what broke it and how to mend it.
		return nil, false, fmt.Errorf("%w: the stream %s holds an entry whose id is not 0-SEQ (a producer ran XADD with * rather than 0-*), after which Redis refuses every 0-*; delete the stream (DEL %s: north servers get a reset) and have that producer use 0-*", events.ErrUnavailable, l.stream, l.stream)
	}
	if err != nil {
		return nil, false, failed(ctx, err)
	}
	if len(reply) != 2 {
		return nil, false, failed(ctx, fmt.Errorf("the publish script answered %d values, want 2", len(reply)))
	}
	given, err1 := reply[0].ToString()
	replayed, err2 := reply[1].AsInt64()
	epoch, first, n, err3 := parseGiven(given)
	if err := errors.Join(err1, err2, err3); err != nil {
		return nil, false, failed(ctx, err)
	}
	ids := make([]events.ID, n)
	for i := range ids {
		ids[i] = events.ID{Epoch: epoch, Seq: first + uint64(i)}
	}
	if replayed == 0 && n > 0 {
		// A replay's ids are an earlier call's, maybe of an epoch
		// since gone: only new ones say where the stream is.
		l.saw(seen, ids[n-1])
	}
	return ids, replayed == 1, nil
}

// parseGiven reads the ids the publish script gave: "EPOCH FIRST COUNT".
func parseGiven(s string) (epoch string, first uint64, n int, err error) {
	f := strings.Fields(s)
	if len(f) == 3 {
		epoch = f[0]
		first, err = strconv.ParseUint(f[1], 10, 64)
		if err == nil {
			n, err = strconv.Atoi(f[2])
		}
		if err == nil {
			return epoch, first, n, nil
		}
	}
	return "", 0, 0, fmt.Errorf("the store holds ids %q, not \"EPOCH FIRST COUNT\"", s)
}

// readReply is what readScript answers.
type readReply struct {
	epoch   string
	reset   bool
	kept    int
	first   uint64 // seq of the oldest kept, or the next to be added
	last    uint64 // seq of the last added; 0 before the first
	entries []rueidis.XRangeSlice
}

func (l *Log) read(ctx context.Context, after events.ID, limit int) (readReply, error) {
	zero := "0"
	if after.IsZero() {
		zero = "1"
	}
	seen, seenEpoch, seenSeq := l.lastSeen()
	cctx, cancel := l.call(ctx, 0)
	defer cancel()
	reply, err := readScript.Exec(cctx, l.client, []string{l.stream, l.epochKey},
		[]string{newEpoch(), seenEpoch, seenSeq, after.Epoch, strconv.FormatUint(after.Seq, 10), strconv.Itoa(limit), zero}).ToArray()
	if err != nil {
		return readReply{}, failed(ctx, err)
	}
	if len(reply) != 6 {
		return readReply{}, failed(ctx, fmt.Errorf("the read script answered %d values, want 6", len(reply)))
	}
	var r readReply
	var reset, kept, first, last int64
	var err1, err2, err3, err4, err5, err6 error
	r.epoch, err1 = reply[0].ToString()
	reset, err2 = reply[1].AsInt64()
	kept, err3 = reply[2].AsInt64()
	first, err4 = reply[3].AsInt64()
	last, err5 = reply[4].AsInt64()
	r.entries, err6 = reply[5].AsXRangeSlices()
	if err := errors.Join(err1, err2, err3, err4, err5, err6); err != nil {
		return readReply{}, failed(ctx, err)
	}
	r.reset, r.kept, r.first, r.last = reset == 1, int(kept), uint64(first), uint64(last)
	l.saw(seen, events.ID{Epoch: r.epoch, Seq: r.last})
	return r, nil
}

// Read appends up to limit events published after after to dst; see
// events.Log. It returns ctx's error when ctx ends first.
//
// A Read that waits holds one of the client's blocking connections
// (ClientOption.BlockingPoolSize) while it does.
func (l *Log) Read(ctx context.Context, after events.ID, limit int, wait time.Duration, dst []events.Event) ([]events.Event, events.ID, bool, error) {
	r, err := l.read(ctx, after, limit)
	if err != nil {
		return dst, after, false, err
	}
	if len(r.entries) > 0 || r.reset || wait <= 0 || limit <= 0 {
		return r.events(after, dst)
	}
	// XREAD returns what came after the id, and the read script is then
	// run again, so that an epoch changed meanwhile is not missed. A
	// Redis that lost its data while this waits starts its seqs again
	// below after's: they wake it only past after's seq, or the wait
	// ends, and the next Read sees the new epoch.
	cctx, cancel := l.call(ctx, wait)
	defer cancel()
	ms := wait.Milliseconds()
	if ms < 1 {
		ms = 1 // BLOCK 0 would wait for ever
	}
	// Arbitrary, not B().Xread(): rueidis retries a read-only command that
	// lost its connection until the context's deadline, so a Read waiting
	// minutes would outlast a dead store by as long instead of answering
	// ErrUnavailable at once.
	cmd := l.client.B().Arbitrary("XREAD", "COUNT", strconv.Itoa(limit), "BLOCK", strconv.FormatInt(ms, 10), "STREAMS").
		Keys(l.stream).Args("0-" + strconv.FormatUint(after.Seq, 10)).Blocking()
	// A reader gone (its context ended) has Redis unblock the
	// connection, which is then reused rather than closed.
	err = l.client.Do(cctx, cmd.UnblockOnCancel()).Error()
	switch {
	case rueidis.IsRedisNil(err): // the wait ended with nothing new
		return dst, after, false, nil
	case err != nil:
		return dst, after, false, failed(ctx, err)
	}
	if r, err = l.read(ctx, after, limit); err != nil {
		return dst, after, false, err
	}
	return r.events(after, dst)
}

// events appends r's entries to dst as events, and says where to read on.
func (r readReply) events(after events.ID, dst []events.Event) ([]events.Event, events.ID, bool, error) {
	next := after
	if r.reset {
		next = events.ID{Epoch: r.epoch, Seq: r.first - 1}
	}
	for _, e := range r.entries {
		dst = append(dst, entryEvent(r.epoch, e))
		next = dst[len(dst)-1].ID
	}
	return dst, next, r.reset, nil
}

// entryEvent is the event an entry holds, however its producer wrote it:
// see the package's comment.
func entryEvent(epoch string, e rueidis.XRangeSlice) events.Event {
	_, seq, _ := strings.Cut(e.ID, "-")
	n, _ := strconv.ParseUint(seq, 10, 64)
	ev := events.Event{ID: events.ID{Epoch: epoch, Seq: n}, Type: "message"}
	var data, at string
	for _, f := range e.FieldValues {
		switch f.Field {
		case "type":
			if events.ValidType(f.Value) {
				ev.Type = f.Value
			}
		case "data":
			data = f.Value
		case "to_ip":
			ip, err := netip.ParseAddr(f.Value)
			if err != nil {
				// No north server is at ::, so the event reaches none
				// rather than, with no ip, all.
				ip = netip.IPv6Unspecified()
			}
			ev.To.IP = ip
		case "to_user":
			ev.To.Username = f.Value
		case "to_next_login":
			// Unreadable: for no north server (no login counts that
			// far) rather than for any holder.
			n, err := strconv.ParseUint(f.Value, 10, 64)
			if err != nil || n == 0 {
				n = math.MaxUint64
			}
			ev.To.NextLogin = n
		case "time":
			at = f.Value
		}
	}
	ev.Data = compactJSON(data)
	t, err := time.Parse(time.RFC3339Nano, at)
	if err != nil {
		t = time.Now()
	}
	ev.Time = t
	return ev
}

// compactJSON is data as one compact JSON value, or, when it is not JSON,
// a JSON string of its bytes.
func compactJSON(data string) []byte {
	var b bytes.Buffer
	b.Grow(len(data))
	if json.Compact(&b, []byte(data)) == nil {
		return b.Bytes()
	}
	quoted, _ := json.Marshal(data)
	return quoted
}

// Stats describes the log; see events.Log.
func (l *Log) Stats(ctx context.Context) (events.Stats, error) {
	r, err := l.read(ctx, events.ID{}, 0)
	if err != nil {
		return events.Stats{}, err
	}
	var s events.Stats
	s.Len = r.kept
	if r.kept > 0 {
		s.Oldest = events.ID{Epoch: r.epoch, Seq: r.first}
	}
	if r.last > 0 {
		s.Head = events.ID{Epoch: r.epoch, Seq: r.last}
	}
	return s, nil
}

// Ready reports whether the store answers, as its probes say.
func (l *Log) Ready() bool { return l.conn.Ready() }
