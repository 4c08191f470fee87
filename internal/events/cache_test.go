package events

import (
	"math"
	"testing"
	"time"
)

// The frame and the JSON of each event the hub caches take one
// allocation: grown from nothing they took seven, the most of a busy hub's
// garbage.
func TestCacheAddAllocatesOnce(t *testing.T) {
	for _, c := range []struct {
		name string
		ev   Event
		sub  string
	}{
		{"short", Event{ID: ID{"ab12", 1}, Type: "t", Data: []byte(`{}`)}, "s"},
		{"longest seq and time", Event{ID: ID{"3kq9v2mx0a1b", math.MaxUint64 - 200}, Type: "alarm.raised",
			Time: time.Date(2026, 12, 31, 23, 59, 59, 123456789, time.FixedZone("", 5*3600)), Data: []byte(`{"level":"major","text":"fan failure in rack 7"}`)}, "network-management"},
		{"large data", Event{ID: ID{"ab12", 7}, Type: "bulk", Data: make([]byte, 60<<10)}, "nms"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var cc cache
			cc.init(16, 1<<30)
			ev := c.ev
			cc.add(&ev, c.sub) // the cache starts at it
			n := testing.AllocsPerRun(100, func() {
				ev.ID.Seq++
				cc.add(&ev, c.sub)
			})
			if n != 1 {
				t.Errorf("cache.add: %v allocs per event, want 1", n)
			}
			e := cc.ring[(cc.start+cc.n-1)%len(cc.ring)]
			if got, limit := len(e.frame)+len(e.json), encodedSize(&ev, c.sub); got > limit {
				t.Errorf("frame and JSON take %d bytes, over encodedSize's %d", got, limit)
			}
		})
	}
}

func BenchmarkCacheAdd(b *testing.B) {
	var c cache
	c.init(4096, 32<<20)
	ev := Event{ID: ID{"3kq9v2mx0a1b", 1}, Type: "alarm.raised", Time: time.Now(), Data: []byte(`{"level":"major","text":"fan failure in rack 7"}`)}
	b.ReportAllocs()
	for b.Loop() {
		c.add(&ev, "nms")
		ev.ID.Seq++
	}
}
