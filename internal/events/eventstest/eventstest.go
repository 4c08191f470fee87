// Package eventstest is the conformance suite every events.Log passes, in
// the way storetest checks every store: the memory ring and the Redis
// Stream run the same cases, and a third log is done when it passes them
// too.
package eventstest

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"northd/internal/events"
	"northd/internal/testdeps"
)

// Options are the bounds a case asks its log for.
type Options struct {
	Retention int // events kept; a log may keep more (Redis trims in whole nodes)
}

// NewLog makes an empty log, of its own, within o's bounds, for one case;
// it is torn down when t ends.
type NewLog func(t *testing.T, o Options) events.Log

// Run runs every case against the logs newLog makes.
func Run(t *testing.T, newLog NewLog) {
	cases := []struct {
		name string
		run  func(*testing.T, NewLog)
	}{
		{"PublishThenRead", testPublishThenRead},
		{"PublishCopiesData", testPublishCopiesData},
		{"ResumeFromAnyID", testResume},
		{"ConcurrentBatchesAreContiguous", testConcurrentBatches},
		{"WaitWakesOnPublish", testWaitWakes},
		{"WaitEndsWithContext", testWaitEndsWithContext},
		{"ShortWaitWithNothingNew", testShortWait},
		{"Trimmed", testTrimmed},
		{"OtherEpoch", testOtherEpoch},
		{"AheadOfHead", testAhead},
		{"ResetOnEmptyLog", testResetOnEmptyLog},
		{"Idempotency", testIdempotency},
		{"Stats", testStats},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { c.run(t, newLog) })
	}
}

// ample keeps every event a case publishes.
var ample = Options{Retention: 100000}

// never is a wait no case reaches: a Read that should return early but
// does not fails the case on the overall timeout instead.
const never = 10 * time.Minute

// overall bounds what a case waits for: only a hang reaches it.
const overall = 2 * time.Minute

func publish(t *testing.T, l events.Log, key string, drafts ...events.Draft) []events.ID {
	t.Helper()
	ids, replayed, err := l.Publish(context.Background(), key, drafts, time.Now())
	if err != nil || replayed {
		t.Fatalf("publish of %d events (key %q): replayed %v, %v", len(drafts), key, replayed, err)
	}
	return ids
}

// draftN is an event whose data is {"n":N}.
func draftN(n int) events.Draft {
	return events.Draft{Type: "count", Data: fmt.Appendf(nil, `{"n":%d}`, n)}
}

func publishN(t *testing.T, l events.Log, from, to int) {
	t.Helper()
	var drafts []events.Draft
	for n := from; n <= to; n++ {
		drafts = append(drafts, draftN(n))
	}
	publish(t, l, "", drafts...)
}

type readResult struct {
	events []events.Event
	next   events.ID
	reset  bool
	err    error
}

func read(t *testing.T, l events.Log, after events.ID, max int) readResult {
	t.Helper()
	evs, next, reset, err := l.Read(context.Background(), after, max, 0, nil)
	if err != nil {
		t.Fatalf("read after %v: %v", after, err)
	}
	return readResult{evs, next, reset, nil}
}

func seqs(evs []events.Event) []uint64 {
	s := []uint64{}
	for _, e := range evs {
		s = append(s, e.ID.Seq)
	}
	return s
}

func datas(evs []events.Event) []string {
	s := []string{}
	for _, e := range evs {
		s = append(s, string(e.Data))
	}
	return s
}

func stats(t *testing.T, l events.Log) events.Stats {
	t.Helper()
	s, err := l.Stats(context.Background())
	if err != nil {
		t.Fatalf("stats: %v", err)
	}
	return s
}

// epochOf is the epoch of the log's events, as its first publish says.
func epochOf(t *testing.T, ids []events.ID) string {
	t.Helper()
	if len(ids) == 0 {
		t.Fatal("publish returned no ids")
	}
	if _, err := events.ParseID(ids[0].String()); err != nil {
		t.Fatalf("id %v does not read back: %v", ids[0], err)
	}
	return ids[0].Epoch
}

// Events read back as published, in order, their seqs counting from 1:
// types, data to the byte (UTF-8, JSON escapes), targets (with the next
// login at an unheld ip) and a time.
func testPublishThenRead(t *testing.T, newLog NewLog) {
	l := newLog(t, ample)
	if !l.Ready() {
		testdeps.WaitFor(t, "the log to be ready", l.Ready)
	}
	drafts := []events.Draft{
		{Type: "greeting", Data: []byte(`{"text":"héllo, wörld ☃ 🎉"}`)},
		{Type: "quote", Data: []byte(`"a \"quoted\" back\\slash\nnew line \u0000 \u2028"`), To: events.Target{IP: netip.MustParseAddr("192.0.2.7")}},
		{Type: "list", Data: []byte(`[1,-2.5e3,null,true,false,{}]`), To: events.Target{Username: "north-1"}},
		{Type: "user.renamed", Data: []byte(`{"from":"ålice","to":"bob"}`), To: events.Target{IP: netip.MustParseAddr("2001:db8::1"), Username: "north-2"}},
	}
	ids := publish(t, l, "", drafts...)
	ids = append(ids, publish(t, l, "", events.Draft{Type: "n", Data: []byte(`42`), To: events.Target{IP: netip.MustParseAddr("192.0.2.8"), NextLogin: 1<<40 + 3}})...)
	epoch := epochOf(t, ids)
	want := []events.Event{
		{ID: events.ID{Epoch: epoch, Seq: 1}, Type: "greeting", Data: []byte(`{"text":"héllo, wörld ☃ 🎉"}`)},
		{ID: events.ID{Epoch: epoch, Seq: 2}, Type: "quote", Data: []byte(`"a \"quoted\" back\\slash\nnew line \u0000 \u2028"`), To: events.Target{IP: netip.MustParseAddr("192.0.2.7")}},
		{ID: events.ID{Epoch: epoch, Seq: 3}, Type: "list", Data: []byte(`[1,-2.5e3,null,true,false,{}]`), To: events.Target{Username: "north-1"}},
		{ID: events.ID{Epoch: epoch, Seq: 4}, Type: "user.renamed", Data: []byte(`{"from":"ålice","to":"bob"}`), To: events.Target{IP: netip.MustParseAddr("2001:db8::1"), Username: "north-2"}},
		{ID: events.ID{Epoch: epoch, Seq: 5}, Type: "n", Data: []byte(`42`), To: events.Target{IP: netip.MustParseAddr("192.0.2.8"), NextLogin: 1099511627779}},
	}
	for i, id := range ids {
		if id != want[i].ID {
			t.Errorf("publish returned id %v for event %d, want %v", id, i+1, want[i].ID)
		}
	}
	r := read(t, l, events.ID{}, 100)
	if r.reset || r.next != want[4].ID || len(r.events) != len(want) {
		t.Fatalf("read: %d events, next %v, reset %v; want 5, %v, false", len(r.events), r.next, r.reset, want[4].ID)
	}
	for i, e := range r.events {
		w := want[i]
		if e.ID != w.ID || e.Type != w.Type || string(e.Data) != string(w.Data) || e.To != w.To || e.Time.IsZero() {
			t.Errorf("event %d: %v %q %s to %+v at %v; want %v %q %s to %+v at a time", i+1, e.ID, e.Type, e.Data, e.To, e.Time, w.ID, w.Type, w.Data, w.To)
		}
	}
	// Appending to dst keeps what it held.
	keep := []events.Event{{Type: "mine"}}
	evs, _, _, err := l.Read(context.Background(), want[3].ID, 100, 0, keep)
	if err != nil || len(evs) != 2 || evs[0].Type != "mine" || evs[1].ID != want[4].ID {
		t.Errorf("read appending to dst: %d events (%v), %v; want mine then %v", len(evs), seqs(evs), err, want[4].ID)
	}
}

// Publish copies the data it is given, which the caller may then reuse,
// and an event read stays as it was however the log goes on.
func testPublishCopiesData(t *testing.T, newLog NewLog) {
	l := newLog(t, Options{Retention: 2})
	buf := []byte(`{"n":1}`)
	publish(t, l, "", events.Draft{Type: "t", Data: buf})
	copy(buf, `{"n":9}`)
	first := read(t, l, events.ID{}, 10).events
	for n := 2; n <= 6; n++ {
		copy(buf, fmt.Sprintf(`{"n":%d}`, n))
		publish(t, l, "", events.Draft{Type: "t", Data: buf})
	}
	if got := datas(first); !slices.Equal(got, []string{`{"n":1}`}) {
		t.Errorf("the first event, read before five more were published: %q, want [{\"n\":1}]", got)
	}
	last := read(t, l, events.ID{Epoch: first[0].ID.Epoch, Seq: 5}, 10).events
	if got := datas(last); !slices.Equal(got, []string{`{"n":6}`}) {
		t.Errorf("the last event: %q, want [{\"n\":6}]", got)
	}
}

// Reading on from any id returns exactly the events after it, in pages
// of max, none lost and none twice.
func testResume(t *testing.T, newLog NewLog) {
	l := newLog(t, ample)
	publishN(t, l, 1, 1)
	publishN(t, l, 2, 4)
	publishN(t, l, 5, 6)
	publishN(t, l, 7, 10)
	all := []string{`{"n":1}`, `{"n":2}`, `{"n":3}`, `{"n":4}`, `{"n":5}`, `{"n":6}`, `{"n":7}`, `{"n":8}`, `{"n":9}`, `{"n":10}`}

	var pages [][]uint64
	after := events.ID{}
	for range 10 {
		r := read(t, l, after, 3)
		if r.reset {
			t.Fatalf("read after %v: reset", after)
		}
		if len(r.events) == 0 {
			if r.next != after {
				t.Errorf("an empty read after %v: next %v, want it unchanged", after, r.next)
			}
			break
		}
		pages = append(pages, seqs(r.events))
		after = r.next
	}
	if fmt.Sprint(pages) != "[[1 2 3] [4 5 6] [7 8 9] [10]]" {
		t.Errorf("pages of 3: %v, want [[1 2 3] [4 5 6] [7 8 9] [10]]", pages)
	}
	epoch := after.Epoch
	for k := 0; k <= 10; k++ {
		from := events.ID{Epoch: epoch, Seq: uint64(k)}
		var got []string
		for range 10 {
			r := read(t, l, from, 4)
			if r.reset {
				t.Fatalf("read after %v: reset", from)
			}
			if len(r.events) == 0 {
				break
			}
			got = append(got, datas(r.events)...)
			from = r.next
		}
		if !slices.Equal(got, all[k:]) {
			t.Errorf("read on from seq %d: %q, want %q", k, got, all[k:])
		}
	}
}

// Batches published at once by several goroutines each get contiguous
// ids, and the log holds each batch together, in its order.
func testConcurrentBatches(t *testing.T, newLog NewLog) {
	const writers, batches, size = 4, 25, 4
	l := newLog(t, ample)
	var mu sync.Mutex
	got := map[string][]events.ID{} // by "w/b"
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for b := range batches {
				drafts := make([]events.Draft, size)
				for i := range drafts {
					drafts[i] = events.Draft{Type: "batch", Data: fmt.Appendf(nil, `{"w":%d,"b":%d,"i":%d}`, w, b, i)}
				}
				ids, _, err := l.Publish(context.Background(), "", drafts, time.Now())
				if err != nil {
					t.Errorf("writer %d, batch %d: %v", w, b, err)
					return
				}
				mu.Lock()
				got[fmt.Sprintf("%d/%d", w, b)] = ids
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	var log []events.Event
	after := events.ID{}
	for len(log) < writers*batches*size+1 {
		r := read(t, l, after, 150)
		if len(r.events) == 0 {
			break
		}
		log = append(log, r.events...)
		after = r.next
	}
	if len(log) != 400 {
		t.Fatalf("the log holds %d events, want 400", len(log))
	}
	for i, e := range log {
		if e.ID.Seq != uint64(i+1) {
			t.Fatalf("event %d has seq %d", i+1, e.ID.Seq)
		}
	}
	epoch := log[0].ID.Epoch
	for w := range writers {
		for b := range batches {
			ids := got[fmt.Sprintf("%d/%d", w, b)]
			if len(ids) != size {
				t.Fatalf("writer %d, batch %d: %d ids, want %d", w, b, len(ids), size)
			}
			for i, id := range ids {
				if id.Epoch != epoch || id.Seq != ids[0].Seq+uint64(i) {
					t.Errorf("writer %d, batch %d: ids %v are not contiguous", w, b, ids)
					break
				}
				if want := fmt.Sprintf(`{"w":%d,"b":%d,"i":%d}`, w, b, i); string(log[id.Seq-1].Data) != want {
					t.Errorf("event %v holds %s, want %s", id, log[id.Seq-1].Data, want)
				}
			}
		}
	}
}

// A Read that waits returns the event another goroutine publishes, not
// its wait later: each round publishes one while a reader waits (or is
// about to).
func testWaitWakes(t *testing.T, newLog NewLog) {
	const rounds = 20
	l := newLog(t, ample)
	after := publish(t, l, "", draftN(0))[0]
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	results := make(chan readResult)
	go func() {
		for range rounds {
			evs, next, reset, err := l.Read(ctx, after, 10, never, nil)
			select {
			case results <- readResult{evs, next, reset, err}:
			case <-ctx.Done():
				return
			}
			after = next
		}
	}()
	for n := 1; n <= rounds; n++ {
		id := publish(t, l, "", draftN(n))[0]
		select {
		case r := <-results:
			want := fmt.Sprintf(`{"n":%d}`, n)
			if r.err != nil || r.reset || r.next != id || !slices.Equal(datas(r.events), []string{want}) {
				t.Fatalf("round %d: read %q, next %v, reset %v, %v; want [%s], %v", n, datas(r.events), r.next, r.reset, r.err, want, id)
			}
		case <-time.After(overall):
			t.Fatalf("round %d: the waiting read did not return the event published", n)
		}
	}
}

// A waiting Read whose context ends returns at once with its error.
func testWaitEndsWithContext(t *testing.T, newLog NewLog) {
	l := newLog(t, ample)
	after := publish(t, l, "", draftN(1))[0]
	ctx, cancel := context.WithCancel(context.Background())
	results := make(chan readResult, 1)
	go func() {
		evs, next, reset, err := l.Read(ctx, after, 10, never, nil)
		results <- readResult{evs, next, reset, err}
	}()
	cancel()
	select {
	case r := <-results:
		if !errors.Is(r.err, context.Canceled) || len(r.events) != 0 || r.next != after || r.reset {
			t.Errorf("read: %d events, next %v, reset %v, %v; want none, %v, false, context.Canceled", len(r.events), r.next, r.reset, r.err, after)
		}
	case <-time.After(overall):
		t.Fatal("the read went on waiting after its context ended")
	}
}

// A short wait with nothing published returns nothing, and next is the
// id read after: the zero id on an empty log, the last event's after one.
func testShortWait(t *testing.T, newLog NewLog) {
	l := newLog(t, ample)
	wantNothing := func(after events.ID) {
		t.Helper()
		evs, next, reset, err := l.Read(context.Background(), after, 10, 20*time.Millisecond, nil)
		if err != nil || len(evs) != 0 || next != after || reset {
			t.Errorf("read after %v: %d events, next %v, reset %v, %v; want none, %v, false", after, len(evs), next, reset, err, after)
		}
	}
	wantNothing(events.ID{})
	ids := publish(t, l, "", draftN(1), draftN(2))
	wantNothing(ids[1])
}

// Past Retention the oldest events go: a read from one of them says
// reset and starts at the oldest kept, in order to the last; one from
// just before the oldest kept, or from the zero id, does not reset.
func testTrimmed(t *testing.T, newLog NewLog) {
	l := newLog(t, Options{Retention: 100})
	// Twenty publishes of 50: a Redis Stream trims whole nodes of 100
	// entries, so this many leaves it no choice.
	for b := range 20 {
		publishN(t, l, b*50+1, b*50+50)
	}
	s := stats(t, l)
	epoch := s.Head.Epoch
	if s.Head.Seq != 1000 || s.Oldest.Epoch != epoch || s.Oldest.Seq <= 1 || s.Len < 100 || uint64(s.Len) != s.Head.Seq-s.Oldest.Seq+1 {
		t.Fatalf("stats after 1000 events kept to 100: %+v; want head seq 1000, oldest past 1, at least 100 kept, from oldest to head", s)
	}
	oldest := s.Oldest.Seq
	wantFrom := func(from uint64, n int) []string {
		var w []string
		for seq := from; seq < from+uint64(n) && seq <= 1000; seq++ {
			w = append(w, fmt.Sprintf(`{"n":%d}`, seq))
		}
		return w
	}
	cases := []struct {
		name  string
		after events.ID
		max   int
		reset bool
		from  uint64 // seq of the first event read
	}{
		{"the first event, trimmed", events.ID{Epoch: epoch, Seq: 1}, 2000, true, oldest},
		{"the first event, a page", events.ID{Epoch: epoch, Seq: 1}, 3, true, oldest},
		{"two before the oldest kept", events.ID{Epoch: epoch, Seq: oldest - 2}, 2000, true, oldest},
		{"just before the oldest kept", events.ID{Epoch: epoch, Seq: oldest - 1}, 2000, false, oldest},
		{"the zero id", events.ID{}, 2000, false, oldest},
		{"the oldest kept", s.Oldest, 2000, false, oldest + 1},
	}
	for _, c := range cases {
		r := read(t, l, c.after, c.max)
		want := wantFrom(c.from, c.max)
		wantNext := events.ID{Epoch: epoch, Seq: c.from + uint64(len(want)) - 1}
		if got := datas(r.events); r.reset != c.reset || !slices.Equal(got, want) || r.next != wantNext {
			t.Errorf("%s (after %v, max %d): reset %v, %d events from %v, next %v; want reset %v, %d from seq %d, next %v",
				c.name, c.after, c.max, r.reset, len(got), seqs(r.events[:min(1, len(r.events))]), r.next, c.reset, len(want), c.from, wantNext)
		}
	}
}

// An id of another epoch (another run of the log) resets to the oldest.
func testOtherEpoch(t *testing.T, newLog NewLog) {
	l := newLog(t, ample)
	ids := publish(t, l, "", draftN(1), draftN(2), draftN(3))
	for _, after := range []events.ID{{Epoch: "otherepoch1", Seq: 1}, {Epoch: "otherepoch1", Seq: 3}, {Epoch: "otherepoch1", Seq: 0}} {
		r := read(t, l, after, 10)
		if !r.reset || !slices.Equal(seqs(r.events), []uint64{1, 2, 3}) || r.next != ids[2] {
			t.Errorf("read after %v: reset %v, seqs %v, next %v; want true, [1 2 3], %v", after, r.reset, seqs(r.events), r.next, ids[2])
		}
	}
}

// An id past the log's last (a log that started again under the same
// epoch) resets to the oldest. It is a client's, and leaves the log as it
// was: the next event is the next of the same epoch, whatever ids clients
// sent.
func testAhead(t *testing.T, newLog NewLog) {
	l := newLog(t, ample)
	ids := publish(t, l, "", draftN(1), draftN(2), draftN(3))
	for _, seq := range []uint64{4, 99, 1_000_000_000, 1<<64 - 1} {
		after := events.ID{Epoch: ids[0].Epoch, Seq: seq}
		r := read(t, l, after, 10)
		if !r.reset || !slices.Equal(seqs(r.events), []uint64{1, 2, 3}) || r.next != ids[2] {
			t.Errorf("read after %v: reset %v, seqs %v, next %v; want true, [1 2 3], %v", after, r.reset, seqs(r.events), r.next, ids[2])
		}
	}
	if id := publish(t, l, "", draftN(4))[0]; id != (events.ID{Epoch: ids[0].Epoch, Seq: 4}) {
		t.Errorf("the publish after those reads got %v, want %s-4", id, ids[0].Epoch)
	}
}

// On an empty log, an id of another epoch resets to just before the
// first event, which a read from there then returns without a reset.
func testResetOnEmptyLog(t *testing.T, newLog NewLog) {
	l := newLog(t, ample)
	other := events.ID{Epoch: "otherepoch1", Seq: 5}
	r := read(t, l, other, 10)
	if !r.reset || len(r.events) != 0 || r.next.Seq != 0 || r.next.Epoch == other.Epoch {
		t.Fatalf("read after %v: reset %v, %d events, next %v; want true, none, seq 0 of the log's epoch", other, r.reset, len(r.events), r.next)
	}
	if _, err := events.ParseID(r.next.String()); err != nil {
		t.Fatalf("next %v does not read back: %v", r.next, err)
	}
	id := publish(t, l, "", draftN(1))[0]
	if id != (events.ID{Epoch: r.next.Epoch, Seq: 1}) {
		t.Errorf("the first event's id is %v, want seq 1 of %s", id, r.next.Epoch)
	}
	r = read(t, l, r.next, 10)
	if r.reset || !slices.Equal(datas(r.events), []string{`{"n":1}`}) {
		t.Errorf("read on: reset %v, %q; want false, [{\"n\":1}]", r.reset, datas(r.events))
	}
}

// A publish repeated with its Idempotency-Key returns the first one's ids
// and publishes nothing; another key, or none, publishes.
func testIdempotency(t *testing.T, newLog NewLog) {
	l := newLog(t, ample)
	ctx := context.Background()
	first := publish(t, l, "key-1", draftN(1), draftN(2))
	epoch := epochOf(t, first)
	ids, replayed, err := l.Publish(ctx, "key-1", []events.Draft{draftN(3)}, time.Now())
	want := []events.ID{{Epoch: epoch, Seq: 1}, {Epoch: epoch, Seq: 2}}
	if err != nil || !replayed || !slices.Equal(ids, want) {
		t.Fatalf("the repeated publish: %v, replayed %v, %v; want %v, true", ids, replayed, err, want)
	}
	if s := stats(t, l); s.Len != 2 {
		t.Errorf("after the repeated publish %d events are kept, want 2", s.Len)
	}
	for _, c := range []struct {
		key  string
		want uint64
	}{{"key-2", 3}, {"", 4}, {"", 5}} {
		ids := publish(t, l, c.key, draftN(int(c.want)))
		if !slices.Equal(ids, []events.ID{{Epoch: epoch, Seq: c.want}}) {
			t.Errorf("publish with key %q: %v, want seq %d", c.key, ids, c.want)
		}
	}
	r := read(t, l, events.ID{}, 10)
	if got := datas(r.events); !slices.Equal(got, []string{`{"n":1}`, `{"n":2}`, `{"n":3}`, `{"n":4}`, `{"n":5}`}) {
		t.Errorf("the log holds %q", got)
	}
}

// Stats count the events kept, and name the oldest and the last.
func testStats(t *testing.T, newLog NewLog) {
	l := newLog(t, ample)
	if s := stats(t, l); s != (events.Stats{}) {
		t.Errorf("an empty log's stats: %+v, want zero", s)
	}
	epoch := epochOf(t, publish(t, l, "", draftN(1), draftN(2)))
	publish(t, l, "", draftN(3))
	want := events.Stats{Len: 3, Oldest: events.ID{Epoch: epoch, Seq: 1}, Head: events.ID{Epoch: epoch, Seq: 3}}
	if s := stats(t, l); s != want {
		t.Errorf("stats: %+v, want %+v", s, want)
	}
}
