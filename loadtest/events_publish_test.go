package main

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"
)

func TestPublishPlan(t *testing.T) {
	ms := time.Millisecond
	for _, c := range []struct {
		plan             publishPlan
		batches, lastLen int
		interval, last   time.Duration
	}{
		{publishPlan{total: 1000, batch: 10, rate: 1000}, 100, 10, 10 * ms, 990 * ms},
		{publishPlan{total: 1000, batch: 7, rate: 1000}, 143, 6, 7 * ms, 994 * ms},
		{publishPlan{total: 100000, batch: 10, rate: 10000}, 10000, 10, ms, 9999 * ms},
		{publishPlan{total: 30, batch: 1, rate: 3}, 30, 1, 333333333, 9666666666},
		{publishPlan{total: 20000, batch: 100}, 200, 100, 0, 0}, // fanout: all due at once
	} {
		n := c.plan.batches()
		if n != c.batches || c.plan.size(n-1) != c.lastLen || c.plan.interval() != c.interval || c.plan.due(n-1) != c.last {
			t.Errorf("%+v: %d batches, the last of %d due at %v, interval %v; want %d, %d, %v, %v",
				c.plan, n, c.plan.size(n-1), c.plan.due(n-1), c.plan.interval(), c.batches, c.lastLen, c.last, c.interval)
		}
	}
}

// fakeClock is a publisher's clock that sleeping moves on, and that the
// fake publishers move on too: the counts below do not depend on how fast
// the machine is.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) sleepUntil(t time.Time) { c.advanceTo(t) }

func (c *fakeClock) advanceTo(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t.After(c.t) {
		c.t = t
	}
}

// recorder is a publisher that notes every batch; before, when set, runs
// first with the number of the call. The workers may share one.
type recorder struct {
	mu      sync.Mutex
	batches [][2]int
	calls   int
	before  func(call int) error
}

func (r *recorder) publish(first, n int) error {
	r.mu.Lock()
	call := r.calls
	r.calls++
	r.mu.Unlock()
	if r.before != nil {
		if err := r.before(call); err != nil {
			return err
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.batches = append(r.batches, [2]int{first, n})
	return nil
}

func recorders(n int, before func(call int) error) ([]eventPublisher, *recorder) {
	r := &recorder{before: before}
	return slices.Repeat([]eventPublisher{r}, n), r
}

// Every batch of the plan is sent once, whichever worker sends it.
func TestPublishOpenLoopSendsEveryBatchOnce(t *testing.T) {
	for _, workers := range []int{1, 4} {
		ws, rec := recorders(workers, nil)
		plan := publishPlan{total: 1000, batch: 7, rate: 1000, limit: time.Second}
		out, err := publishOpenLoop(context.Background(), plan, ws, &fakeClock{t: time.Unix(1000, 0)})
		if err != nil {
			t.Fatal(err)
		}
		var want [][2]int
		for first := 0; first < 1000; first += 7 {
			want = append(want, [2]int{first, min(7, 1000-first)})
		}
		got := slices.Clone(rec.batches)
		slices.SortFunc(got, func(a, b [2]int) int { return a[0] - b[0] })
		if out.published != 1000 || !reflect.DeepEqual(got, want) {
			t.Errorf("%d workers: published %d in %d batches; want 1000 in %d", workers, out.published, len(got), len(want))
		}
		// One worker: each batch taken by its due time, none late.
		if workers == 1 && out.late != 0 {
			t.Errorf("1 worker: %d batches late", out.late)
		}
	}
}

// A publish slower than the interval makes the batches behind it late,
// not fewer, until the duration ends: nothing is sent after it.
func TestPublishOpenLoopCountsLateBatches(t *testing.T) {
	start := time.Unix(1000, 0)
	clk := &fakeClock{t: start}
	interval := 10 * time.Millisecond
	// The call-th publish answers at 3 × (call+1) intervals.
	ws, rec := recorders(1, func(call int) error {
		clk.advanceTo(start.Add(time.Duration(3*(call+1)) * interval))
		return nil
	})
	plan := publishPlan{total: 100, batch: 10, rate: 1000, limit: 10 * interval}
	out, err := publishOpenLoop(context.Background(), plan, ws, clk)
	if err != nil {
		t.Fatal(err)
	}
	// Sent at 0, 3, 6 and 9 intervals; the fifth would go at 12.
	want := [][2]int{{0, 10}, {10, 10}, {20, 10}, {30, 10}}
	if out.published != 40 || out.late != 3 || out.seconds != 0.12 || !reflect.DeepEqual(rec.batches, want) {
		t.Errorf("published %d, late %d, %v s, batches %v; want 40, 3, 0.12 s, %v", out.published, out.late, out.seconds, rec.batches, want)
	}
}

// A publish that fails ends the publishing with its error.
func TestPublishOpenLoopStopsAtAnError(t *testing.T) {
	refused := errors.New("publish: 503")
	ws, rec := recorders(1, func(call int) error {
		if call == 2 {
			return refused
		}
		return nil
	})
	out, err := publishOpenLoop(context.Background(), publishPlan{total: 100, batch: 10, rate: 1000}, ws, &fakeClock{t: time.Unix(1000, 0)})
	if err != refused || out.published != 20 || len(rec.batches) != 2 {
		t.Errorf("error %v, published %d in %d batches; want %v, 20 in 2", err, out.published, len(rec.batches), refused)
	}
}

// The publishers' body for northd, byte for byte.
func TestAppendNorthdBatch(t *testing.T) {
	if got := string(appendNorthdBatch([]byte("old"), 5, 2, 1796357341090895882)); got != `old[{"type":"load","data":{"t":1796357341090895882,"n":5}},{"type":"load","data":{"t":1796357341090895882,"n":6}}]` {
		t.Errorf("%s", got)
	}
}
