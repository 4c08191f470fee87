package push_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"northd/internal/events"
	eventsredis "northd/internal/events/redis"
	"northd/internal/push"
	"northd/internal/redisconn"
	"northd/internal/testdeps"
)

// A Redis restarted from an older snapshot has forgotten events 4 and 5,
// whose ids it gave out (events/redis), and the cursor past them. The
// subscription's next delivery is led by a reset naming where it goes on,
// then the events published since, under ids it has never seen: none
// silently lost, none taken for one it had.
func TestAWebhookCursorAcrossARestartFromAnOlderSnapshot(t *testing.T) {
	for _, c := range []struct {
		name     string
		tookLost bool     // the subscription took 4 and 5 before the restart
		want     []string // what it takes after the restart
	}{
		// The gap the lost stretch left is a reset (its cursor in the
		// restored Redis is from before it); or, for the one that had
		// not taken 4 and 5, those from the cache of the instance that
		// read them: either way, none lost silently, no id reused.
		{"it took the lost stretch", true, []string{"reset t=6 t=7"}},
		{"it had not", false, []string{"t=4 t=5 t=6 t=7", "reset t=6 t=7"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			redis := testdeps.StartRedisSnapshots(t)
			conn, err := redisconn.Open(redis.URL(), metrics.NewSet(), slog.New(slog.NewTextHandler(io.Discard, nil)))
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			t.Cleanup(func() { cancel(); conn.Close() })
			go conn.Watch(ctx)
			log := eventsredis.New(conn, "nms", eventsredis.Options{Retention: 1000, CallTimeout: 30 * time.Second})
			testdeps.WaitFor(t, "the store to be ready", log.Ready)

			w := newWorldOn(t, log, 1000, func(o *push.Options) { o.LeaseTTL = 300 * time.Millisecond; o.SyncEvery = 20 * time.Millisecond })
			r := newReceiver(t)
			var refuse atomic.Bool
			r.answer = func(int, *http.Request) (int, http.Header) {
				if refuse.Load() {
					return 500, nil
				}
				return 204, nil
			}
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
			refuse.Store(!c.tookLost)
			before := len(r.deliveries())
			w.publish("t", "4")
			w.publish("t", "5")
			if c.tookLost {
				testdeps.WaitFor(t, "the lost two", func() bool { return len(taken(r.deliveries())) == 1+5 })
			} else {
				testdeps.WaitFor(t, "an attempt at the lost two", func() bool { return len(r.deliveries()) > before })
			}
			had := map[string]string{} // event id → its data
			for _, d := range r.deliveries() {
				for _, e := range d.events {
					had[e.ID] = string(e.Data)
				}
			}
			// No instance delivers while Redis restarts and events are published.
			w.crash()
			w.push.Wait(context.Background())
			redis.Kill()
			redis.Restart()
			refuse.Store(false)
			for _, n := range []string{"6", "7"} {
				testdeps.WaitFor(t, "a publish after the restart", func() bool {
					_, _, err := w.log.Publish(context.Background(), "after-restart-"+n, []events.Draft{{Type: "t", Data: []byte(n)}}, time.Now())
					return err == nil
				})
			}
			at := len(r.deliveries())
			w.otherInstance()
			var after []string
			testdeps.WaitFor(t, "t=7 delivered after the restart", func() bool {
				after = taken(r.deliveries()[at:])
				for i, e := range after {
					if strings.HasPrefix(e, "reset=") {
						after[i] = "reset" // its data is checked below
					}
				}
				return slices.Contains(after, "t=7")
			})
			for _, d := range r.deliveries()[at:] {
				for i, e := range d.events {
					if e.Type == "reset" {
						var reset struct{ Oldest string }
						if err := json.Unmarshal(e.Data, &reset); err != nil || i+1 >= len(d.events) || reset.Oldest != d.events[i+1].ID {
							t.Errorf("the reset %s does not name the event after it as the oldest kept: %s", e.Data, d.body)
						}
					} else if had[e.ID] != "" && had[e.ID] != string(e.Data) {
						t.Errorf("event %s came with %s, and before the restart with %s: one id, two events", e.ID, e.Data, had[e.ID])
					}
				}
			}
			if got := strings.Join(after, " "); !slices.Contains(c.want, got) {
				t.Errorf("after the restart: %s, want one of %q", got, c.want)
			}
		})
	}
}
