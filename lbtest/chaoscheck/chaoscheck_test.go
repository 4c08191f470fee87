package chaoscheck

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

func at(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

const secret = "whsec_c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0" // base64 of "secretsecretsecretsecret"

// delivery signs body as a receiver expects it.
func delivery(id string, ms, status int, body string) Delivery {
	key, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + ".1700000000." + body))
	return Delivery{WebhookID: id, Timestamp: "1700000000", Signature: "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil)), Body: []byte(body), Status: status, At: at(ms)}
}

func ev(id, key string) string {
	return fmt.Sprintf(`{"id":"%s","seq":0,"type":"chaos","data":{"k":"%s"}}`, id, key)
}

// pub is the i-th publish, sent at i*10 ms and answered 5 ms later.
func pub(i int, to Target) Publish {
	return Publish{Key: fmt.Sprint("k", i), To: to, Sent: at(i * 10), Answered: at(i*10 + 5), ID: fmt.Sprint("e-", i)}
}

func frame(i int, ms int) Frame {
	return Frame{ID: fmt.Sprint("e-", i), Type: "chaos", Key: fmt.Sprint("k", i), At: at(ms)}
}

var (
	n1 = NorthServer{"north-1", "127.0.0.2"}
	n2 = NorthServer{"north-2", "127.0.0.3"}
)

// base is a clean run: two north servers logged in from the start, each
// with a stream; events 1 and 2 to all, 3 to north-1's ip, 4 to
// north-2's username.
func base() Run {
	return Run{
		Publishes: []Publish{pub(1, Target{}), pub(2, Target{}), pub(3, Target{IP: n1.IP}), pub(4, Target{Username: n2.Username})},
		Transitions: []Transition{
			{IP: n1.IP, Holder: n1.Username, Start: at(-20), End: at(-15)},
			{IP: n2.IP, Holder: n2.Username, Start: at(-20), End: at(-15)},
		},
		Streams: []Stream{
			{NorthServer: n1, Opened: at(0), Frames: []Frame{frame(1, 100), frame(2, 101), frame(3, 102)}},
			{NorthServer: n2, Opened: at(0), Frames: []Frame{frame(1, 100), frame(2, 101), frame(4, 102)}},
		},
	}
}

func TestCheck(t *testing.T) {
	for _, tt := range []struct {
		name   string
		change func(r *Run)
		want   string // the Summary's breach counts
	}{
		{"clean", func(r *Run) {}, "lost 0, reordered 0, reused 0, leaked 0, duplicated 0, bad signatures 0"},
		{"an event missing", func(r *Run) { r.Streams[0].Frames = r.Streams[0].Frames[1:] }, "lost 1, reordered 0, reused 0, leaked 0, duplicated 0, bad signatures 0"},
		{"an event missing inside a reset's gap", func(r *Run) {
			r.Streams[0].Frames = []Frame{frame(1, 100), {ID: "e-2", Type: "reset", Oldest: "e-3", At: at(101)}, frame(3, 102)}
		}, "lost 0, reordered 0, reused 0, leaked 0, duplicated 0, bad signatures 0"},
		{"a reset naming the wrong gap", func(r *Run) {
			r.Streams[0].Frames = []Frame{frame(2, 100), {ID: "e-2", Type: "reset", Oldest: "e-3", At: at(101)}, frame(3, 102)}
		}, "lost 1, reordered 0, reused 0, leaked 0, duplicated 0, bad signatures 0"},
		{"two events swapped", func(r *Run) { f := r.Streams[0].Frames; f[0], f[1] = f[1], f[0] }, "lost 0, reordered 1, reused 0, leaked 0, duplicated 0, bad signatures 0"},
		{"an id reused", func(r *Run) { r.Publishes[3].ID = "e-3"; r.Streams[1].Frames[2].ID = "e-3" }, "lost 0, reordered 0, reused 1, leaked 0, duplicated 0, bad signatures 0"},
		{"an event to an ip at another", func(r *Run) {
			r.Streams[1].Frames = []Frame{frame(1, 100), frame(2, 101), frame(3, 102), frame(4, 103)}
		}, "lost 0, reordered 0, reused 0, leaked 1, duplicated 0, bad signatures 0"},
		{"an event to an ip at its next holder", func(r *Run) {
			r.Transitions = append(r.Transitions, Transition{IP: n1.IP, Start: at(20), End: at(22)}, Transition{IP: n1.IP, Holder: "north-4", Start: at(50), End: at(52)})
			r.Streams = append(r.Streams, Stream{NorthServer: NorthServer{"north-4", n1.IP}, Opened: at(60), Frames: []Frame{frame(3, 103)}})
		}, "lost 0, reordered 0, reused 0, leaked 1, duplicated 0, bad signatures 0"},
		{"an event to an ip while it changed hands", func(r *Run) {
			// Logged out while event 3 was published: either may have it.
			r.Transitions = append(r.Transitions, Transition{IP: n1.IP, Start: at(29), End: at(31)}, Transition{IP: n1.IP, Holder: "north-4", Start: at(50), End: at(52)})
			r.Streams[0].Frames = r.Streams[0].Frames[:2]
			r.Streams = append(r.Streams, Stream{NorthServer: NorthServer{"north-4", n1.IP}, Opened: at(60), Frames: []Frame{frame(3, 103)}})
		}, "lost 0, reordered 0, reused 0, leaked 0, duplicated 0, bad signatures 0"},
		{"an event again under another id", func(r *Run) {
			r.Streams[0].Frames = append(r.Streams[0].Frames, Frame{ID: "e-9", Type: "chaos", Key: "k3", At: at(103)})
		}, "lost 0, reordered 0, reused 0, leaked 0, duplicated 1, bad signatures 0"},
		{"an event again under its id", func(r *Run) { r.Streams[0].Frames = append(r.Streams[0].Frames, frame(3, 103)) }, "lost 0, reordered 0, reused 0, leaked 0, duplicated 0, bad signatures 0"},
		{"a webhook batch again under its webhook-id", func(r *Run) {
			r.Subs = []Subscription{{NorthServer: n2, Name: "s", Secret: secret, Created: at(0), Deliveries: []Delivery{
				delivery("m2", 100, 204, "["+ev("e-1", "k1")+","+ev("e-2", "k2")+"]"),
				delivery("m2", 101, 204, "["+ev("e-1", "k1")+","+ev("e-2", "k2")+"]"),
				delivery("m4", 102, 204, "["+ev("e-4", "k4")+"]"),
			}}}
		}, "lost 0, reordered 0, reused 0, leaked 0, duplicated 0, bad signatures 0"},
		{"a webhook batch rebuilt under another webhook-id", func(r *Run) {
			r.Subs = []Subscription{{NorthServer: n2, Name: "s", Secret: secret, Created: at(0), Deliveries: []Delivery{
				delivery("m1", 100, 204, "["+ev("e-1", "k1")+"]"),
				delivery("m2", 101, 204, "["+ev("e-1", "k1")+","+ev("e-2", "k2")+"]"),
				delivery("m4", 102, 204, "["+ev("e-4", "k4")+"]"),
			}}}
		}, "lost 0, reordered 0, reused 0, leaked 0, duplicated 1, bad signatures 0"},
		{"a webhook answered 500 does not count as taken", func(r *Run) {
			r.Subs = []Subscription{{NorthServer: n2, Name: "s", Secret: secret, Created: at(0), Deliveries: []Delivery{
				delivery("m1", 100, 500, "["+ev("e-1", "k1")+"]"),
				delivery("m2", 101, 204, "["+ev("e-2", "k2")+","+ev("e-4", "k4")+"]"),
			}}}
		}, "lost 1, reordered 0, reused 0, leaked 0, duplicated 0, bad signatures 0"},
		{"a webhook-id carrying two batches, a delivery after a 410 and one forged", func(r *Run) {
			forged := delivery("m9", 104, 204, "[]")
			forged.Signature = "v1,AAAA"
			r.Subs = []Subscription{{NorthServer: n2, Name: "s", Secret: secret, Created: at(0), Ended: at(102), Deliveries: []Delivery{
				delivery("m1", 100, 204, "["+ev("e-1", "k1")+"]"),
				delivery("m1", 101, 204, "["+ev("e-2", "k2")+"]"),
				delivery("m4", 103, 204, "["+ev("e-4", "k4")+"]"),
				forged,
			}}}
		}, "lost 0, reordered 0, reused 1, leaked 1, duplicated 0, bad signatures 1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			run := base()
			tt.change(&run)
			r := Check(run)
			if got := r.Summary(); !strings.HasSuffix(got, tt.want) {
				t.Errorf("got %s\nwant …%s\n%s", got, tt.want, r.Details())
			}
		})
	}
}
