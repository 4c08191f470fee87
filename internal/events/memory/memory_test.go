package memory

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"testing"
	"time"

	"northd/internal/events"
	"northd/internal/testdeps"
)

func draft(n int) events.Draft {
	return events.Draft{Type: "t", Data: fmt.Appendf(nil, `{"n":%d}`, n)} // 8 bytes with its type, for n < 10
}

func publish(t testing.TB, l *Log, key string, now time.Time, drafts ...events.Draft) ([]uint64, bool) {
	t.Helper()
	ids, replayed, err := l.Publish(context.Background(), key, drafts, now)
	if err != nil {
		t.Fatal(err)
	}
	var s []uint64
	for _, id := range ids {
		s = append(s, id.Seq)
	}
	return s, replayed
}

func seqs(evs []events.Event) []uint64 {
	s := []uint64{}
	for _, e := range evs {
		s = append(s, e.ID.Seq)
	}
	return s
}

// The ring keeps exactly Retention events, or as many of the newest as fit
// in MaxBytes, and always the newest one.
func TestTrimsExactly(t *testing.T) {
	cases := []struct {
		name      string
		o         Options
		published int
		want      []uint64 // seqs kept
	}{
		{"retention", Options{Retention: 3, MaxBytes: 1 << 20}, 5, []uint64{3, 4, 5}},
		{"retention, not reached", Options{Retention: 3, MaxBytes: 1 << 20}, 2, []uint64{1, 2}},
		{"bytes: 8 each, 20 at most", Options{Retention: 100, MaxBytes: 20}, 5, []uint64{4, 5}},
		{"bytes: exactly full", Options{Retention: 100, MaxBytes: 16}, 5, []uint64{4, 5}},
		{"bytes: the newest alone is past them", Options{Retention: 100, MaxBytes: 4}, 3, []uint64{3}},
		{"bytes: no bound", Options{Retention: 4}, 6, []uint64{3, 4, 5, 6}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			l := New(c.o)
			for n := 1; n <= c.published; n++ {
				publish(t, l, "", time.Now(), draft(n))
			}
			evs, _, _, _ := l.Read(context.Background(), events.ID{}, 100, 0, nil)
			if got := seqs(evs); !slices.Equal(got, c.want) {
				t.Errorf("kept %v, want %v", got, c.want)
			}
			s, _ := l.Stats(context.Background())
			if s.Len != len(c.want) || s.Oldest.Seq != c.want[0] || s.Head.Seq != uint64(c.published) {
				t.Errorf("stats %+v, want %d kept from %d to %d", s, len(c.want), c.want[0], c.published)
			}
		})
	}
}

// The ring wraps around many times over and still reads in order.
func TestRingWrapsInOrder(t *testing.T) {
	l := New(Options{Retention: 70})
	for n := 1; n <= 1000; n++ {
		publish(t, l, "", time.Now(), draft(n%10))
	}
	evs, _, _, _ := l.Read(context.Background(), events.ID{}, 100, 0, nil)
	if got := seqs(evs); len(got) != 70 || got[0] != 931 || got[69] != 1000 || !slices.IsSorted(got) {
		t.Errorf("read %v, want 931 to 1000", got)
	}
}

// A key is remembered for IdempotencyWindow after the now it was given
// at, not one nanosecond more.
func TestIdempotencyWindowByNow(t *testing.T) {
	l := New(Options{Retention: 100})
	t0 := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		at       time.Time
		want     []uint64
		replayed bool
	}{
		{t0, []uint64{1, 2}, false},
		{t0.Add(events.IdempotencyWindow - time.Nanosecond), []uint64{1, 2}, true},
		{t0.Add(events.IdempotencyWindow), []uint64{3}, false},
		{t0.Add(events.IdempotencyWindow + time.Hour), []uint64{3}, true},
	}
	for _, c := range cases {
		drafts := []events.Draft{draft(1), draft(2)}[:len(c.want)]
		got, replayed := publish(t, l, "key", c.at, drafts...)
		if !slices.Equal(got, c.want) || replayed != c.replayed {
			t.Errorf("at %v: %v, replayed %v; want %v, %v", c.at, got, replayed, c.want, c.replayed)
		}
	}
}

// Past MaxIdempotencyKeys the oldest key is forgotten, and only it.
func TestIdempotencyKeysBounded(t *testing.T) {
	l := New(Options{Retention: 10})
	now := time.Now()
	for k := range MaxIdempotencyKeys + 1 {
		publish(t, l, fmt.Sprint("key-", k), now, draft(1))
	}
	if len(l.byKey) != MaxIdempotencyKeys || l.keys.len() != MaxIdempotencyKeys {
		t.Errorf("%d keys remembered (%d in order), want %d", len(l.byKey), l.keys.len(), MaxIdempotencyKeys)
	}
	cases := []struct {
		key      string
		want     uint64
		replayed bool
	}{
		{"key-1", 2, true},
		{"key-0", MaxIdempotencyKeys + 2, false},
	}
	for _, c := range cases {
		got, replayed := publish(t, l, c.key, now, draft(1))
		if !slices.Equal(got, []uint64{c.want}) || replayed != c.replayed {
			t.Errorf("%s: %v, replayed %v; want [%d], %v", c.key, got, replayed, c.want, c.replayed)
		}
	}
}

// Appending to one event's Data never writes into another's.
func TestEventDataIsItsOwn(t *testing.T) {
	l := New(Options{Retention: 10})
	publish(t, l, "", time.Now(), draft(1), draft(2))
	evs, _, _, _ := l.Read(context.Background(), events.ID{}, 10, 0, nil)
	_ = append(evs[0].Data, "XXXXXXXX"...)
	again, _, _, _ := l.Read(context.Background(), events.ID{}, 10, 0, nil)
	if string(again[0].Data) != `{"n":1}` || string(again[1].Data) != `{"n":2}` {
		t.Errorf("after an append to the first event's data the log holds %s, %s", again[0].Data, again[1].Data)
	}
}

// Each log has an epoch of its own: 12 lowercase hexadecimal digits.
func TestEpochsDiffer(t *testing.T) {
	a, b := New(Options{Retention: 1}), New(Options{Retention: 1})
	valid := regexp.MustCompile(`^[0-9a-f]{12}$`)
	if a.epoch == b.epoch || !valid.MatchString(a.epoch) || !valid.MatchString(b.epoch) {
		t.Errorf("epochs %q and %q: want two different ones of 12 hex digits", a.epoch, b.epoch)
	}
}

// A Read into a buffer large enough allocates nothing, whether it waits
// or not, when there are events to return.
func TestReadAllocatesNothing(t *testing.T) {
	l := New(Options{Retention: 1000})
	for n := range 200 {
		publish(t, l, "", time.Now(), draft(n%10))
	}
	dst := make([]events.Event, 0, 100)
	for _, wait := range []time.Duration{0, time.Minute} {
		testdeps.WantAllocs(t, fmt.Sprintf("Read of 100 events, wait %v", wait), 0, func() {
			dst, _, _, _ = l.Read(context.Background(), events.ID{Epoch: l.epoch, Seq: 50}, 100, wait, dst[:0])
		})
	}
}

func BenchmarkPublish(b *testing.B) {
	l := New(Options{Retention: 100000, MaxBytes: 64 << 20})
	d := []events.Draft{{Type: "user.updated", Data: []byte(`{"user":"north-1","groups":["a","b"],"note":"a hundred bytes or so of json, as events are"}`)}}
	ctx := context.Background()
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := l.Publish(ctx, "", d, now); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRead(b *testing.B) {
	l := New(Options{Retention: 100000, MaxBytes: 64 << 20})
	for n := range 1000 {
		publish(b, l, "", time.Now(), draft(n%10))
	}
	ctx := context.Background()
	dst := make([]events.Event, 0, 100)
	after := events.ID{Epoch: l.epoch, Seq: 500}
	b.ReportAllocs()
	for b.Loop() {
		dst, _, _, _ = l.Read(ctx, after, 100, 0, dst[:0])
	}
}
