package e2e

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"

	"northd/internal/testdeps"
)

// Published on instance A, received on instance B, resumed on A: one log in
// Redis, whichever instance a north server reaches.
func TestEventsAcrossInstancesThroughRedis(t *testing.T) {
	redis := testdeps.StartRedis(t)
	nA := start(t, "-listen", "nms=127.0.0.1:0", "-admin", "127.0.0.1:0", "-store", redis.URL())
	a, adminA := nA.Listen, nA.Admin
	nB := start(t, "-listen", "nms=127.0.0.1:0", "-admin", "127.0.0.1:0", "-store", redis.URL())
	b, adminB := nB.Listen, nB.Admin
	token := loginAs(t, a[0], "north-1", "192.0.2.10")
	s := streamOpened(t, "stream on B", b[0], token, "")
	s.next()
	first := published(t, adminA, `{"type":"on.a","data":1}`)
	if ev := decodeEvent(t, s.nextEvent()); ev.ID != first || ev.Seq != 1 || ev.Type != "on.a" {
		t.Fatalf("B received %+v, want %s", ev, first)
	}
	published(t, adminB, `{"type":"on.b","data":2}`)
	if ev := decodeEvent(t, s.nextEvent()); ev.Seq != 2 || ev.Type != "on.b" {
		t.Fatalf("B received %+v, want seq 2", ev)
	}
	// A producer of its own, straight into the stream.
	epoch, _, _ := strings.Cut(first, "-")
	if got := strings.TrimSpace(redis.CLI("XADD", "northd:{nms}:events", "MAXLEN", "~", "1000", "0-*", "type", "raw", "data", `{"from":"redis-cli"}`, "to_ip", "192.0.2.10")); got != "0-3" {
		t.Fatalf("XADD: %q, want 0-3", got)
	}
	if ev := decodeEvent(t, s.nextEvent()); ev.ID != epoch+"-3" || ev.Type != "raw" || string(ev.Data) != `{"from":"redis-cli"}` {
		t.Fatalf("B received %+v, want the raw XADD as %s-3", ev, epoch)
	}
	s.conn.Close()
	for i := 4; i <= 6; i++ {
		published(t, adminB, fmt.Sprintf(`{"type":"t","data":%d}`, i))
	}
	s = streamOpened(t, "resume on A", a[0], token, epoch+"-3")
	for i := uint64(4); i <= 6; i++ {
		if ev := decodeEvent(t, s.nextEvent()); ev.Seq != i {
			t.Fatalf("resumed on A: %+v, want seq %d", ev, i)
		}
	}
}

// Redis stopped and restarted under a publishing load: the publisher
// retries each 503 with its Idempotency-Key, as docs/operating.md says to, and
// the stream, open throughout, receives every event once, in order.
func TestEventsSurviveARedisRestart(t *testing.T) {
	redis := testdeps.StartRedis(t)
	nA := start(t, "-listen", "nms=127.0.0.1:0", "-admin", "127.0.0.1:0", "-store", redis.URL(), "-store-timeout", "300ms")
	a, admin := nA.Listen, nA.Admin
	token := loginAs(t, a[0], "north-1", "192.0.2.10")
	s := streamOpened(t, "the stream", a[0], token, "")
	s.next()

	var mu sync.Mutex
	published, refused := 0, 0
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 20000; i++ {
			select {
			case <-stop:
				return
			default:
			}
			for try := 0; ; try++ {
				a := publish(t, admin, "", `{"type":"load","data":`+strconv.Itoa(i)+`}`, "Idempotency-Key", "load-"+strconv.Itoa(i))
				if a.Status == 202 {
					break
				}
				if a.Status != 503 || try == 100000 {
					t.Errorf("publish %d: %d %s", i, a.Status, a.Body)
					return
				}
				mu.Lock()
				refused++
				mu.Unlock()
			}
			mu.Lock()
			published++
			mu.Unlock()
		}
	}()
	count := func() (int, int) { mu.Lock(); defer mu.Unlock(); return published, refused }
	testdeps.WaitFor(t, "publishes before the stop", func() bool { n, _ := count(); return n >= 50 })
	redis.Stop()
	testdeps.WaitFor(t, "a publish refused while Redis is down", func() bool { _, r := count(); return r >= 1 })
	redis.Restart()
	n0, _ := count()
	testdeps.WaitFor(t, "publishes after the restart", func() bool { n, _ := count(); return n >= n0+50 })
	close(stop)
	<-done

	n, r := count()
	var last uint64
	for i := 0; i < n; i++ {
		ev := decodeEvent(t, s.nextEvent())
		if string(ev.Data) != strconv.Itoa(i) || ev.Seq <= last {
			t.Fatalf("received %+v after seq %d, want data %d: every event once, in order", ev, last, i)
		}
		last = ev.Seq
	}
	t.Logf("%d events published and received in order; %d publishes answered 503 while Redis was down, and retried", n, r)
}
