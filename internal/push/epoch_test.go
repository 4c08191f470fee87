package push_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"northd/internal/events"
	eventsredis "northd/internal/events/redis"
	"northd/internal/push"
	storeredis "northd/internal/store/redis"
	"northd/internal/testdeps"
)

// A Redis restarted from an older snapshot gives the log a new epoch
// (events/redis). A subscription whose cursor is an id of the old one, of
// the stretch the snapshot lost, is told so by a reset leading its next
// delivery, and then gets the events published since, under ids it has
// never seen: none taken for one it already had.
func TestACursorOfALostStretchGetsAReset(t *testing.T) {
	redis := testdeps.StartRedisSnapshots(t)
	store, err := storeredis.Open(storeredis.Options{URL: redis.URL(), CallTimeout: 30 * time.Second, Max: 10, TokenTTL: time.Hour},
		metrics.NewSet(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() { cancel(); store.Close() })
	go store.Watch(ctx)
	log := eventsredis.New(store.Rueidis(), "nms", eventsredis.Options{Retention: 1000, CallTimeout: 30 * time.Second, Ready: store.Ready})
	testdeps.WaitFor(t, "the store to be ready", log.Ready)

	w := newWorldOn(t, log, func(o *push.Options) { o.LeaseTTL = 300 * time.Millisecond; o.SyncEvery = 20 * time.Millisecond })
	r := newReceiver(t)
	w.login("north-1", loopback)
	w.subscribe(push.Owner{Username: "north-1", IP: loopback}, r.url("/hook"))
	for _, n := range []string{"1", "2", "3"} {
		w.publish("t", n)
	}
	// taken counts the subscription.verify event too.
	testdeps.WaitFor(t, "the first three events", func() bool { return len(taken(r.deliveries())) == 1+3 })
	if got := strings.TrimSpace(redis.CLI("SAVE")); got != "OK" {
		t.Fatalf("SAVE: %q", got)
	}
	w.publish("t", "4")
	w.publish("t", "5")
	testdeps.WaitFor(t, "the lost two", func() bool { return len(taken(r.deliveries())) == 1+5 })
	lost := r.deliveries()
	lastID := lost[len(lost)-1].events[len(lost[len(lost)-1].events)-1].ID
	// No instance delivers while Redis restarts and events are published.
	w.crash()
	w.push.Wait(context.Background())
	redis.Kill()
	redis.Restart()
	for _, n := range []string{"6", "7"} {
		testdeps.WaitFor(t, "a publish after the restart", func() bool {
			_, _, err := w.log.Publish(context.Background(), "after-restart-"+n, []events.Draft{{Type: "t", Data: []byte(n)}}, time.Now())
			return err == nil
		})
	}
	w.otherInstance()
	testdeps.WaitFor(t, "the delivery after the restart", func() bool { return len(r.deliveries()) == len(lost)+1 })
	d := r.deliveries()[len(lost)]
	if len(d.events) != 6 || d.events[0].Type != "reset" {
		t.Fatalf("after the restart, resuming from %s: %s, want a reset and then t=1 t=2 t=3 t=6 t=7", lastID, d.body)
	}
	var reset struct{ Oldest string }
	if err := json.Unmarshal(d.events[0].Data, &reset); err != nil || reset.Oldest != d.events[1].ID {
		t.Errorf("the reset names %q as the oldest kept, the next event is %s", reset.Oldest, d.events[1].ID)
	}
	if got := strings.Join(taken([]delivery{d})[1:], " "); got != "t=1 t=2 t=3 t=6 t=7" {
		t.Errorf("after the reset: %q, want t=1 t=2 t=3 t=6 t=7", got)
	}
	had := map[string]bool{}
	for _, old := range lost {
		for _, e := range old.events {
			had[e.ID] = true
		}
	}
	for _, e := range d.events[1:] {
		if had[e.ID] {
			t.Errorf("event %s %s came under an id already delivered before the restart", e.ID, e.Data)
		}
	}
}
