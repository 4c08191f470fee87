package redis

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"northd/internal/events"
	"northd/internal/events/eventstest"
	"northd/internal/redisconn"
	"northd/internal/testdeps"
)

// The Redis log passes the suite the memory log passes, against a real
// redis-server: each case has a subsystem, and so a stream, of its own.
func TestConformance(t *testing.T) {
	redis := testdeps.StartRedis(t)
	conn := openConn(t, redis)
	n := 0
	eventstest.Run(t, func(t *testing.T, o eventstest.Options) events.Log {
		n++
		return New(conn, "case"+strconv.Itoa(n), Options{Retention: o.Retention, CallTimeout: 30 * time.Second})
	})
}

// openConn is a watched connection to redis, which the logs share, as
// northd's subsystems do.
func openConn(t *testing.T, redis *testdeps.Redis) *redisconn.Conn {
	t.Helper()
	c, err := redisconn.Open(redis.URL(), metrics.NewSet(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() { cancel(); c.Close() })
	go c.Watch(ctx)
	return c
}

func newLog(t *testing.T, redis *testdeps.Redis, subsystem string) *Log {
	t.Helper()
	return New(openConn(t, redis), subsystem, Options{Retention: 1000, CallTimeout: 30 * time.Second})
}

func publish(t *testing.T, l *Log, data ...string) []events.ID {
	t.Helper()
	var drafts []events.Draft
	for _, d := range data {
		drafts = append(drafts, events.Draft{Type: "t", Data: []byte(d)})
	}
	ids, _, err := l.Publish(context.Background(), "", drafts, time.Now())
	if err != nil {
		t.Fatalf("publish: %v", err)
	}
	return ids
}

// A Redis that lost its data (FLUSHALL here; a restart without
// persistence alike) gives the log a new epoch: a reader of the old one is
// reset, rather than left waiting for seqs that started again at 1.
func TestLostDataIsANewEpoch(t *testing.T) {
	redis := testdeps.StartRedis(t)
	l := newLog(t, redis, "north")
	old := publish(t, l, `{"n":1}`, `{"n":2}`, `{"n":3}`)[2]
	if got := strings.TrimSpace(redis.CLI("FLUSHALL")); got != "OK" {
		t.Fatalf("FLUSHALL: %q", got)
	}
	evs, next, reset, err := l.Read(context.Background(), old, 10, 0, nil)
	if err != nil || !reset || len(evs) != 0 || next.Epoch == old.Epoch || next.Seq != 0 {
		t.Fatalf("read after %v: %d events, next %v, reset %v, %v; want none, seq 0 of a new epoch, reset", old, len(evs), next, reset, err)
	}
	if id := publish(t, l, `{"n":1}`)[0]; id != (events.ID{Epoch: next.Epoch, Seq: 1}) {
		t.Errorf("the first event after FLUSHALL is %v, want %s-1", id, next.Epoch)
	}
}

// Two instances sharing Redis share the log: one reads what the other
// published, under one epoch.
func TestInstancesShareTheLog(t *testing.T) {
	redis := testdeps.StartRedis(t)
	a, b := newLog(t, redis, "north"), newLog(t, redis, "north")
	other := newLog(t, redis, "south")
	ids := publish(t, a, `{"n":1}`, `{"n":2}`)
	evs, next, reset, err := b.Read(context.Background(), events.ID{}, 10, 0, nil)
	if err != nil || reset || len(evs) != 2 || evs[1].ID != ids[1] || string(evs[1].Data) != `{"n":2}` || next != ids[1] {
		t.Errorf("the other instance read %d events (%v), next %v, reset %v, %v; want both, ending %v", len(evs), evs, next, reset, err, ids[1])
	}
	if s, err := other.Stats(context.Background()); err != nil || s.Len != 0 {
		t.Errorf("another subsystem's log holds %d events (%v), want none", s.Len, err)
	}
}

// An entry a producer wrote with XADD itself is read back as an event of
// the next seq, however it was written.
func TestRawEntries(t *testing.T) {
	redis := testdeps.StartRedis(t)
	l := newLog(t, redis, "north")
	head := publish(t, l, `{"n":1}`)[0]
	cases := []struct {
		name     string
		fields   []string
		typ      string
		data     string
		to       events.Target
		thatTime bool // the entry's own time, 2025-03-01T12:00:00.5Z
	}{
		{"as documented", []string{"type", "t", "data", `{"a":1}`, "time", "2025-03-01T12:00:00.5Z"}, "t", `{"a":1}`, events.Target{}, true},
		{"with targets", []string{"type", "t", "data", `[]`, "to_ip", "192.0.2.7", "to_user", "north-1"}, "t", `[]`, events.Target{IP: netip.MustParseAddr("192.0.2.7"), Username: "north-1"}, false},
		{"no type", []string{"data", `{"a":1}`}, "message", `{"a":1}`, events.Target{}, false},
		{"a type with a space", []string{"type", "two words", "data", `1`}, "message", `1`, events.Target{}, false},
		{"data not JSON", []string{"type", "t", "data", `not "json"`}, "t", `"not \"json\""`, events.Target{}, false},
		{"no data", []string{"type", "t"}, "t", `""`, events.Target{}, false},
		{"JSON spread over lines", []string{"type", "t", "data", "{\n  \"a\": [1, 2]\n}"}, "t", `{"a":[1,2]}`, events.Target{}, false},
		{"bad time", []string{"type", "t", "data", `1`, "time", "yesterday"}, "t", `1`, events.Target{}, false},
		{"bad ip: for no one", []string{"type", "t", "data", `1`, "to_ip", "nowhere"}, "t", `1`, events.Target{IP: netip.IPv6Unspecified()}, false},
	}
	for i, c := range cases {
		added := strings.TrimSpace(redis.CLI(append([]string{"XADD", "northd:{north}:events", "MAXLEN", "~", "100000", "0-*"}, c.fields...)...))
		wantID := events.ID{Epoch: head.Epoch, Seq: head.Seq + uint64(i) + 1}
		if added != "0-"+strconv.FormatUint(wantID.Seq, 10) {
			t.Fatalf("%s: XADD added %q, want 0-%d", c.name, added, wantID.Seq)
		}
		evs, _, _, err := l.Read(context.Background(), events.ID{Epoch: head.Epoch, Seq: wantID.Seq - 1}, 10, 0, nil)
		if err != nil || len(evs) != 1 {
			t.Fatalf("%s: read %d events, %v; want 1", c.name, len(evs), err)
		}
		e := evs[0]
		wantTime := time.Date(2025, 3, 1, 12, 0, 0, 5e8, time.UTC)
		if e.ID != wantID || e.Type != c.typ || string(e.Data) != c.data || e.To != c.to || e.Time.IsZero() || e.Time.Equal(wantTime) != c.thatTime {
			t.Errorf("%s: read %v %q %s to %+v at %v; want %v %q %s to %+v (its own time %v)", c.name, e.ID, e.Type, e.Data, e.To, e.Time, wantID, c.typ, c.data, c.to, c.thatTime)
		}
	}
}

// The publish script writes Redis's time as RFC 3339, as Go does, across
// leap days, centuries and the ends of years.
func TestRFC3339Lua(t *testing.T) {
	redis := testdeps.StartRedis(t)
	cases := []struct {
		s, us int64
		want  string
	}{
		{0, 0, "1970-01-01T00:00:00.000000000Z"},
		{951782400, 1, "2000-02-29T00:00:00.000001000Z"},
		{951868799, 999999, "2000-02-29T23:59:59.999999000Z"},
		{1709251199, 500000, "2024-02-29T23:59:59.500000000Z"},
		{1735689599, 123456, "2024-12-31T23:59:59.123456000Z"},
		{1735689600, 0, "2025-01-01T00:00:00.000000000Z"},
		{4107542400, 42, "2100-03-01T00:00:00.000042000Z"},
		{253402300799, 999999, "9999-12-31T23:59:59.999999000Z"},
	}
	for _, c := range cases {
		got := strings.TrimSpace(redis.CLI("EVAL", rfc3339Lua+"return rfc3339(tonumber(ARGV[1]), tonumber(ARGV[2]))", "0", strconv.FormatInt(c.s, 10), strconv.FormatInt(c.us, 10)))
		if got != c.want {
			t.Errorf("rfc3339(%d, %d) = %q, want %q", c.s, c.us, got, c.want)
		}
		if parsed, err := time.Parse(time.RFC3339Nano, got); err != nil || !parsed.Equal(time.Unix(c.s, c.us*1000)) {
			t.Errorf("%q reads back as %v, %v; want %v", got, parsed, err, time.Unix(c.s, c.us*1000).UTC())
		}
	}
}

// With Redis gone, calls answer ErrUnavailable within their timeout, a
// waiting Read included; once it is back they work again, on the log it
// kept.
func TestUnavailableWhileRedisIsDown(t *testing.T) {
	redis := testdeps.StartRedis(t)
	l := New(openConn(t, redis), "north", Options{Retention: 1000, CallTimeout: 2 * time.Second})
	testdeps.WaitFor(t, "the store to be ready", l.Ready)
	head := publish(t, l, `{"n":1}`)[0]

	waiting := make(chan error, 1)
	go func() {
		_, _, _, err := l.Read(context.Background(), head, 10, 10*time.Minute, nil)
		waiting <- err
	}()
	redis.Kill()
	select {
	case err := <-waiting:
		if !errors.Is(err, events.ErrUnavailable) {
			t.Errorf("the waiting read: %v, want ErrUnavailable", err)
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("the waiting read went on waiting with Redis gone")
	}
	if _, _, err := l.Publish(context.Background(), "", []events.Draft{{Type: "t", Data: []byte(`1`)}}, time.Now()); !errors.Is(err, events.ErrUnavailable) {
		t.Errorf("publish: %v, want ErrUnavailable", err)
	}
	if _, _, _, err := l.Read(context.Background(), head, 10, 0, nil); !errors.Is(err, events.ErrUnavailable) {
		t.Errorf("read: %v, want ErrUnavailable", err)
	}
	if _, err := l.Stats(context.Background()); !errors.Is(err, events.ErrUnavailable) {
		t.Errorf("stats: %v, want ErrUnavailable", err)
	}
	testdeps.WaitFor(t, "the log to say it is not ready", func() bool { return !l.Ready() })

	redis.Restart()
	testdeps.WaitFor(t, "the log to be ready again", l.Ready)
	// The key makes a publish whose answer was lost count once.
	var ids []events.ID
	testdeps.WaitFor(t, "a publish to succeed", func() bool {
		var err error
		ids, _, err = l.Publish(context.Background(), "after-restart", []events.Draft{{Type: "t", Data: []byte(`{"n":2}`)}}, time.Now())
		return err == nil
	})
	want := events.ID{Epoch: head.Epoch, Seq: 2}
	evs, _, reset, err := l.Read(context.Background(), head, 10, 0, nil)
	if err != nil || reset || len(ids) != 1 || ids[0] != want || len(evs) != 1 || evs[0].ID != want || string(evs[0].Data) != `{"n":2}` {
		t.Errorf("after the restart: published %v, read %d events (reset %v, %v); want %v read back", ids, len(evs), reset, err, want)
	}
}

// A producer's XADD with * rather than 0-* leaves an id Redis will not
// add 0-* after: publishing fails with the cause and the fix, not as if
// Redis were down, and works again once the stream is deleted.
func TestAForeignIDNamesTheFix(t *testing.T) {
	redis := testdeps.StartRedis(t)
	l := newLog(t, redis, "north")
	first := publish(t, l, `1`)[0]
	redis.CLI("XADD", "northd:{north}:events", "*", "type", "t", "data", "2")
	_, _, err := l.Publish(context.Background(), "", []events.Draft{{Type: "t", Data: []byte(`3`)}}, time.Now())
	if !errors.Is(err, events.ErrUnavailable) || !strings.Contains(err.Error(), "XADD with * rather than 0-*") || !strings.Contains(err.Error(), "DEL northd:{north}:events") {
		t.Fatalf("publishing after an XADD *: %v", err)
	}
	redis.CLI("DEL", "northd:{north}:events")
	// Seq 1 again, but of a new epoch: the 1 before the DEL was
	// another event.
	if ids := publish(t, l, `4`); len(ids) != 1 || ids[0].Seq != 1 || ids[0].Epoch == first.Epoch {
		t.Errorf("after DEL: %v, want seq 1 of an epoch other than %s", ids, first.Epoch)
	}
}

// A Redis restarted from an older snapshot has forgotten events 4 and 5,
// whose ids it gave out. No later event takes those ids, nor the next
// million (an instance may have seen further than this one): the new ones
// are in the same epoch past them, and the events the snapshot kept keep
// theirs. A reader resuming from before the gap's end gets a reset naming
// where the stream goes on, never silently; one from before the lost
// stretch gets what was kept up to it first. The instance that did not
// publish them knows too, from having read them.
func TestRestartFromAnOlderSnapshotReusesNoID(t *testing.T) {
	redis := testdeps.StartRedisSnapshots(t)
	l, other := newLog(t, redis, "north"), newLog(t, redis, "north")
	ctx := context.Background()
	publish(t, l, `{"n":1}`, `{"n":2}`, `{"n":3}`)
	if got := strings.TrimSpace(redis.CLI("SAVE")); got != "OK" {
		t.Fatalf("SAVE: %q", got)
	}
	lost := publish(t, l, `{"n":4}`, `{"n":5}`)
	epoch := lost[0].Epoch
	if evs, _, _, err := other.Read(ctx, events.ID{}, 10, 0, nil); err != nil || len(evs) != 5 {
		t.Fatalf("the other instance read %d events, %v; want 5", len(evs), err)
	}
	redis.Kill()
	redis.Restart()

	var ids []events.ID
	testdeps.WaitFor(t, "a publish after the restart", func() bool {
		var err error
		ids, _, err = other.Publish(ctx, "after-restart", []events.Draft{{Type: "t", Data: []byte(`{"new":1}`)}, {Type: "t", Data: []byte(`{"new":2}`)}}, time.Now())
		return err == nil
	})
	if want := []events.ID{{Epoch: epoch, Seq: 1000006}, {Epoch: epoch, Seq: 1000007}}; !slices.Equal(ids, want) {
		t.Fatalf("after the restart the new events got %v, want %v: %s-4 and %s-5 were other events", ids, want, epoch, epoch)
	}
	id := func(seq uint64) events.ID { return events.ID{Epoch: epoch, Seq: seq} }
	for _, c := range []struct {
		name  string
		l     *Log
		from  events.ID
		reset bool
		want  []string
	}{
		{"resuming after the lost 5", l, id(5), true, []string{"1000006 {\"new\":1}", "1000007 {\"new\":2}"}},
		{"resuming after the lost 4", l, id(4), true, []string{"1000006 {\"new\":1}", "1000007 {\"new\":2}"}},
		{"resuming after 3, before the lost stretch", other, id(3), true, []string{"1000006 {\"new\":1}", "1000007 {\"new\":2}"}},
		{"resuming after 1: up to the gap", l, id(1), false, []string{"2 {\"n\":2}", "3 {\"n\":3}"}},
		{"from the start", other, events.ID{}, false, []string{"1 {\"n\":1}", "2 {\"n\":2}", "3 {\"n\":3}"}},
	} {
		var evs []events.Event
		var next events.ID
		var reset bool
		testdeps.WaitFor(t, "a read after the restart", func() bool {
			// The first call of an instance after the restart may
			// find its connection closed.
			var err error
			evs, next, reset, err = c.l.Read(ctx, c.from, 10, 0, nil)
			return err == nil
		})
		var got []string
		for _, e := range evs {
			if e.ID.Epoch != epoch {
				t.Errorf("%s: event %v of another epoch", c.name, e.ID)
			}
			got = append(got, strconv.FormatUint(e.ID.Seq, 10)+" "+string(e.Data))
		}
		last := c.from
		if len(evs) > 0 {
			last = evs[len(evs)-1].ID
		}
		if reset != c.reset || !slices.Equal(got, c.want) || next != last {
			t.Errorf("%s (%v): reset %v, %q, next %v; want reset %v, then %q", c.name, c.from, reset, got, next, c.reset, c.want)
		}
	}
}
