package push_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	neturl "net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"northd/internal/events"
	"northd/internal/events/memory"
	"northd/internal/push"
	pushmemory "northd/internal/push/memory"
	storememory "northd/internal/store/memory"
	"northd/internal/testdeps"
	"northd/internal/webhooks"
)

// receiver is a north server's webhook endpoint, written from the Standard
// Webhooks specification, sharing no code with the sender: it checks each
// request's signature against the secrets it was given, and answers as its
// script says. Beside its own check, testdeps.CheckWebhook has each
// request verified by the specification's reference library, under the
// secrets of the subscriptions made to it so far, and validated against
// the document.
type receiver struct {
	t       *testing.T
	srv     *httptest.Server
	mu      sync.Mutex
	secrets []string   // every secret world.subscribe or trust gave it, for testdeps.CheckWebhook
	keys    [][]byte   // trusted secrets' keys a signature may be made with
	got     []delivery // every request, in arrival order
	answer  func(n int, r *http.Request) (status int, header http.Header)
}

type delivery struct {
	id, timestamp, signature string
	body                     []byte
	request                  *http.Request // for testdeps.CheckWebhook, once its secret is known
	events                   []eventJSON
	status                   int      // what the receiver answered
	signed                   []string // which of the trusted keys signed it: "0", "1", ...
}

type eventJSON struct {
	ID   string          `json:"id"`
	Seq  uint64          `json:"seq"`
	Type string          `json:"type"`
	Data json.RawMessage `json:"data"`
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{t: t}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	r.listening()
	return r
}

// receivers are the receivers listening, by address: world.subscribe
// gives each the secret of every subscription it makes to it, before any
// event can be delivered under it.
var receivers sync.Map // "IP:port" → *receiver

// listening enters r in receivers until its test ends.
func (r *receiver) listening() {
	addr := r.srv.Listener.Addr().String()
	receivers.Store(addr, r)
	r.t.Cleanup(func() { receivers.Delete(addr) })
}

// know gives CheckWebhook the secret of subscription id, without trusting
// it in r's own check, and has the subscription.verify r took for id, sent
// before its secret could be known, verified by it now.
func (r *receiver) know(id, secret string) {
	r.mu.Lock()
	r.secrets = append(r.secrets, secret)
	got := slices.Clone(r.got)
	r.mu.Unlock()
	for _, d := range got {
		if d.verify() && d.id == "msg_"+id+"_verify" {
			if err := testdeps.CheckWebhook(d.request, d.body, secret); err != nil {
				r.t.Errorf("the verification of %s, with its secret: %v", id, err)
			}
			return
		}
	}
	r.t.Errorf("%s was made with no subscription.verify of it taken here", id)
}

// trust adds a secret whose signatures the receiver checks for.
func (r *receiver) trust(secret string) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil || !strings.HasPrefix(secret, "whsec_") {
		r.t.Fatalf("secret %q is not whsec_ and base64", secret)
	}
	r.mu.Lock()
	r.secrets = append(r.secrets, secret)
	r.keys = append(r.keys, key)
	r.mu.Unlock()
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	d := delivery{id: req.Header.Get("webhook-id"), timestamp: req.Header.Get("webhook-timestamp"), signature: req.Header.Get("webhook-signature"), body: body}
	if sec, err := strconv.ParseInt(d.timestamp, 10, 64); err != nil || time.Since(time.Unix(sec, 0)).Abs() > 5*time.Minute {
		r.t.Errorf("webhook-timestamp %q is not now", d.timestamp)
	}
	if err := json.Unmarshal(body, &d.events); err != nil {
		r.t.Errorf("delivery %s: body %q is not a JSON array of events: %v", d.id, body, err)
	}
	r.mu.Lock()
	n := len(r.got) + 1
	answer := r.answer
	secrets := slices.Clone(r.secrets)
	r.mu.Unlock()
	if d.verify() {
		secrets = nil // its secret is known once the subscribe returns: know checks it then
	}
	if err := testdeps.CheckWebhook(req, body, secrets...); err != nil {
		r.t.Errorf("request %d: %v", n, err)
	}
	d.request = req.Clone(context.Background())
	d.status = 200
	var header http.Header
	if answer != nil {
		d.status, header = answer(n, req)
	}
	r.mu.Lock()
	r.got = append(r.got, d)
	r.mu.Unlock()
	for k, v := range header {
		w.Header()[k] = v
	}
	w.WriteHeader(d.status)
}

// deliveries is every request so far, each with the trusted keys that
// signed it: "v1," and the base64 HMAC-SHA256, under the key, of
// "id.timestamp.body", among the space-separated signatures.
func (r *receiver) deliveries() []delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := append([]delivery(nil), r.got...)
	for i := range out {
		out[i].signed = nil
		for k, key := range r.keys {
			mac := hmac.New(sha256.New, key)
			mac.Write([]byte(out[i].id + "." + out[i].timestamp + "."))
			mac.Write(out[i].body)
			want := "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
			for _, sig := range strings.Fields(out[i].signature) {
				if sig == want {
					out[i].signed = append(out[i].signed, strconv.Itoa(k))
				}
			}
		}
	}
	return out
}

// verify is whether d is a subscription.verify, sent before its
// subscription's secret is known.
func (d *delivery) verify() bool {
	return len(d.events) == 1 && d.events[0].Type == "subscription.verify"
}

func (r *receiver) url(path string) string { return r.srv.URL + path }

// world is one subsystem: its log, hub, store and webhooks.
type world struct {
	t     *testing.T
	log   events.Log
	store *storememory.Store
	push  *push.Pusher
	set   *metrics.Set
	// To start a second instance's Pusher on the same log and stores.
	ctx   context.Context
	o     push.Options
	hub   *events.Hub
	subs  push.Store
	crash context.CancelFunc // stops the first Pusher as a crash would
	logs  *testdeps.SyncBuffer
}

var loopback = netip.MustParseAddr("127.0.0.1")

func newWorld(t *testing.T, tune func(*push.Options)) *world {
	return newWorldRetaining(t, 10_000, tune)
}

// newWorldRetaining is a world whose log keeps only retention events.
func newWorldRetaining(t *testing.T, retention int, tune func(*push.Options)) *world {
	return newWorldOn(t, memory.New(memory.Options{Retention: retention}), retention, tune)
}

// newWorldOn is a world whose events are log's, which keeps retention
// events. Its hub caches no more than the log keeps, as northd's does: a
// cache holding events the log trimmed would answer a cursor behind the
// log with them, or with a reset, by whether the hub had read them first.
func newWorldOn(t *testing.T, log events.Log, retention int, tune func(*push.Options)) *world {
	ctx, cancel := context.WithCancel(context.Background())
	set := metrics.NewSet()
	hub := events.NewHub(log, events.HubOptions{
		Subsystem: "nms", Heartbeat: time.Hour, Retry: time.Second, DrainRetry: time.Second, WriteTimeout: time.Minute,
		Queue: 1000, MaxStreams: 10, MaxPerToken: 10, CacheEvents: min(retention, 1000), CacheBytes: 1 << 20,
		TokenLive: func([16]byte, time.Time) bool { return true },
	}, set, `subsystem="nms"`, slog.New(slog.DiscardHandler))
	done := make(chan struct{})
	go func() { defer close(done); hub.Run(ctx) }()
	st := storememory.New(storememory.Options{Max: 100, TokenTTL: time.Hour})
	allow, err := webhooks.ParseAllow([]string{"127.0.0.0/8"})
	if err != nil {
		t.Fatal(err)
	}
	o := push.Options{
		Subsystem: "nms", Batch: 100, BatchBytes: 256 << 10, Timeout: 10 * time.Second, DisableAfter: time.Hour,
		Rate: 1000, PerNorthServer: 3, MaxSubscriptions: 100, SecretOverlap: time.Hour, PauseCheck: 10 * time.Millisecond,
		Allow: allow, Client: allow.Client(webhooks.ClientOptions{Timeout: 10 * time.Second, MaxResponseBytes: 1 << 10}),
		Workers: make(chan struct{}, 8), Verifiers: 4, VerifyRate: 1000, VerifyBurst: 100, Backoff: func(int) time.Duration { return time.Millisecond },
		LeaseTTL: time.Minute, SyncEvery: time.Minute,
	}
	if tune != nil {
		tune(&o)
	}
	subs := pushmemory.New()
	pctx, crash := context.WithCancel(ctx)
	logs := new(testdeps.SyncBuffer)
	p := push.New(pctx, o, hub, st, subs, set, `subsystem="nms"`, slog.New(slog.NewTextHandler(logs, nil)))
	t.Cleanup(func() { cancel(); p.Wait(context.Background()); <-done })
	return &world{t: t, log: log, store: st, push: p, set: set, ctx: ctx, o: o, hub: hub, subs: subs, crash: crash, logs: logs}
}

// otherInstance starts a second Pusher on the world's log and stores, as
// another instance would run, once the first has crashed.
func (w *world) otherInstance() *push.Pusher {
	ctx, stop := context.WithCancel(w.ctx)
	b := push.New(ctx, w.o, w.hub, w.store, w.subs, metrics.NewSet(), `subsystem="nms"`, slog.New(slog.DiscardHandler))
	w.t.Cleanup(func() { stop(); b.Wait(context.Background()) })
	return b
}

func (w *world) login(username string, ip netip.Addr) [16]byte {
	w.t.Helper()
	token := [16]byte{byte(len(username)), ip.As4()[3], byte(time.Now().UnixNano())}
	if _, ok, err := w.store.Login(ip, []byte(username), token, time.Now(), false); err != nil || !ok {
		w.t.Fatalf("login: %v %v", ok, err)
	}
	return token
}

func (w *world) publish(typ string, data string) {
	w.t.Helper()
	if _, _, err := w.log.Publish(context.Background(), "", []events.Draft{{Type: typ, Data: []byte(data)}}, time.Now()); err != nil {
		w.t.Fatal(err)
	}
}

func (w *world) subscribe(o push.Owner, url string, types ...string) (push.View, string) {
	w.t.Helper()
	v, secret, err := w.push.Create(context.Background(), o, url, types)
	if err != nil {
		w.t.Fatalf("Create: %v", err)
	}
	if u, err := neturl.Parse(url); err == nil {
		if r, ok := receivers.Load(u.Host); ok {
			r.(*receiver).know(v.ID, secret)
		}
	}
	return v, secret
}

// taken is "type=data" of every event of the deliveries answered 2xx, in
// order.
func taken(ds []delivery) []string {
	var out []string
	for _, d := range ds {
		if d.status < 200 || d.status > 299 {
			continue
		}
		for _, e := range d.events {
			out = append(out, e.Type+"="+string(e.Data))
		}
	}
	return out
}

func TestDeliversSignedEventsInOrder(t *testing.T) {
	w := newWorld(t, nil)
	r := newReceiver(t)
	w.login("north-1", loopback)
	owner := push.Owner{Username: "north-1", IP: loopback}
	r.answer = func(n int, req *http.Request) (int, http.Header) { return 204, nil }
	v, secret := w.subscribe(owner, r.url("/hook"), "alarm", "notice")
	r.trust(secret)
	first := r.deliveries()[0]
	if len(first.events) != 1 || first.events[0].Type != "subscription.verify" || first.id != "msg_"+v.ID+"_verify" ||
		string(first.events[0].Data) != `{"subscription":"`+v.ID+`"}` || len(first.signed) != 1 {
		t.Fatalf("the verification delivery: %+v", first)
	}
	w.publish("alarm", `{"n":1,"text":"风扇"}`)
	w.publish("ignored", `2`)
	w.publish("notice", `3`)
	if _, _, err := w.log.Publish(context.Background(), "", []events.Draft{{Type: "alarm", Data: []byte(`4`), To: events.Target{IP: netip.MustParseAddr("127.0.0.2")}}}, time.Now()); err != nil {
		t.Fatal(err)
	}
	w.publish("alarm", `5`)
	testdeps.WaitFor(t, "the events delivered", func() bool {
		return len(taken(r.deliveries()[1:])) >= 3
	})
	got := taken(r.deliveries()[1:])
	want := []string{`alarm={"n":1,"text":"风扇"}`, `notice=3`, `alarm=5`}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("delivered %q, want %q", got, want)
	}
	for _, d := range r.deliveries()[1:] {
		if len(d.signed) != 1 || !strings.HasPrefix(d.id, "msg_"+v.ID+"_") {
			t.Errorf("delivery %s signed by %v", d.id, d.signed)
		}
	}
	// Each batch taken is timed from its oldest event's publish, once
	// the pusher has read its answer.
	timed := fmt.Sprintf(`northd_push_delivery_seconds_count{subsystem="nms"} %d`+"\n", len(r.deliveries())-1)
	testdeps.WaitFor(t, timed, func() bool {
		var out strings.Builder
		w.set.WritePrometheus(&out)
		return strings.Contains(out.String(), timed)
	})
}

// A receiver that fails, times out, rate-limits and redirects gets every
// event at least once, in order, each batch again with its webhook-id
// until a 2xx takes it.
func TestRetriesKeepOrderAndIDs(t *testing.T) {
	w := newWorld(t, func(o *push.Options) { o.Timeout = 2 * time.Second })
	r := newReceiver(t)
	other := newReceiver(t) // the redirects' target: must see nothing
	w.login("north-1", loopback)
	script := map[int]int{2: 500, 3: 429, 4: 301, 5: 400, 6: -1, 8: 503, 9: 302}
	r.answer = func(n int, req *http.Request) (int, http.Header) {
		switch script[n] {
		case 0:
			return 200, nil
		case -1: // no answer: the attempt times out
			<-req.Context().Done()
			return 500, nil
		case 429:
			return 429, http.Header{"Retry-After": {"0"}}
		case 301, 302:
			return script[n], http.Header{"Location": {other.url("/elsewhere")}}
		default:
			return script[n], nil
		}
	}
	_, secret := w.subscribe(push.Owner{Username: "north-1", IP: loopback}, r.url("/hook"))
	r.trust(secret)
	// The first event alone in its batch, which meets the failures; the
	// other nineteen, published meanwhile, make the next batch.
	w.publish("t", "1")
	testdeps.WaitFor(t, "the first attempt", func() bool { return len(r.deliveries()) >= 2 })
	for i := 2; i <= 20; i++ {
		w.publish("t", strconv.Itoa(i))
	}
	testdeps.WaitFor(t, "every event taken", func() bool { return len(taken(r.deliveries())) >= 21 })
	all := r.deliveries()
	got := taken(all)[1:] // after the verification
	var want []string
	for i := 1; i <= 20; i++ {
		want = append(want, "t="+strconv.Itoa(i))
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("taken %q, want %q", got, want)
	}
	// A failed batch comes again with the same id and the same events,
	// signed anew.
	for i := 1; i+1 < len(all); i++ {
		if all[i].status != 200 && (all[i+1].id != all[i].id || string(all[i+1].body) != string(all[i].body)) {
			t.Errorf("after a failure, delivery %d was %s %s, then %s %s", i, all[i].id, all[i].body, all[i+1].id, all[i+1].body)
		}
		if len(all[i].signed) != 1 {
			t.Errorf("delivery %d not signed: %q", i, all[i].signature)
		}
	}
	if n := len(other.deliveries()); n != 0 {
		t.Errorf("a redirect was followed %d times", n)
	}
	if len(all) != 10 || len(all[6].events) != 1 || len(all[9].events) != 19 {
		t.Errorf("%d deliveries, want the verification, 6 attempts of the first event and 3 of the rest", len(all))
	}
	var out strings.Builder
	w.set.WritePrometheus(&out)
	for _, series := range []string{`outcome="server_error"} 2`, `outcome="rate_limited"} 1`, `outcome="redirect"} 2`, `outcome="client_error"} 1`, `outcome="timeout"} 1`} {
		if !strings.Contains(out.String(), series) {
			t.Errorf("metrics lack %s:\n%s", series, out.String())
		}
	}
}

// 410 Gone ends the subscription.
func TestGoneEndsTheSubscription(t *testing.T) {
	w := newWorld(t, nil)
	r := newReceiver(t)
	w.login("north-1", loopback)
	owner := push.Owner{Username: "north-1", IP: loopback}
	r.answer = func(n int, req *http.Request) (int, http.Header) {
		if n == 1 {
			return 200, nil
		}
		return 410, nil
	}
	w.subscribe(owner, r.url("/hook"))
	w.publish("t", "1")
	testdeps.WaitFor(t, "the subscription to end", func() bool { return len(w.push.List(owner)) == 0 })
	w.publish("t", "2")
	w.publish("t", "3")
	if n := len(r.deliveries()); n != 2 {
		t.Errorf("%d deliveries, want the verification and the one answered 410", n)
	}
}

// A logged-out north server's subscription pauses; when it logs in again,
// delivery goes on from where it stopped.
func TestLogoutPausesAndLoginResumes(t *testing.T) {
	w := newWorld(t, nil)
	r := newReceiver(t)
	token := w.login("north-1", loopback)
	owner := push.Owner{Username: "north-1", IP: loopback}
	w.subscribe(owner, r.url("/hook"))
	w.publish("t", "1")
	testdeps.WaitFor(t, "the first event", func() bool { return len(r.deliveries()) == 2 })
	if _, err := w.store.Logout(token, time.Now()); err != nil {
		t.Fatal(err)
	}
	w.publish("t", "2")
	testdeps.WaitFor(t, "the subscription to pause", func() bool { return w.push.List(owner)[0].State == "paused" })
	if n := len(r.deliveries()); n != 2 {
		t.Fatalf("%d deliveries while logged out", n)
	}
	w.login("north-1", loopback)
	testdeps.WaitFor(t, "delivery after the login", func() bool { return len(r.deliveries()) == 3 })
	if got := taken(r.deliveries()[2:]); len(got) != 1 || got[0] != "t=2" {
		t.Errorf("after the login: %q, want t=2", got)
	}
}

// A rotated secret: both sign until the overlap ends.
func TestRotatedSecretsBothSign(t *testing.T) {
	w := newWorld(t, nil)
	r := newReceiver(t)
	w.login("north-1", loopback)
	owner := push.Owner{Username: "north-1", IP: loopback}
	v, secret := w.subscribe(owner, r.url("/hook"))
	r.trust(secret)
	newSecret, err := w.push.Rotate(context.Background(), owner, v.ID)
	if err != nil || newSecret == secret {
		t.Fatalf("Rotate: %q, %v", newSecret, err)
	}
	r.trust(newSecret)
	w.publish("t", "1")
	testdeps.WaitFor(t, "a delivery", func() bool { return len(r.deliveries()) == 2 })
	if d := r.deliveries()[1]; strings.Join(d.signed, ",") != "0,1" {
		t.Errorf("after a rotation signed by keys %v, want the old and the new", d.signed)
	}
	if _, err := w.push.Rotate(context.Background(), push.Owner{Username: "north-2", IP: loopback}, v.ID); err != push.ErrNotFound {
		t.Errorf("another north server rotating it: %v, want ErrNotFound", err)
	}
}

// Failing past DisableAfter disables; enabled again, it goes on from its
// cursor.
func TestDisabledThenEnabled(t *testing.T) {
	w := newWorld(t, func(o *push.Options) { o.DisableAfter = 50 * time.Millisecond })
	r := newReceiver(t)
	w.login("north-1", loopback)
	owner := push.Owner{Username: "north-1", IP: loopback}
	var failing sync.Mutex
	down := true
	r.answer = func(n int, req *http.Request) (int, http.Header) {
		failing.Lock()
		defer failing.Unlock()
		if n > 1 && down {
			return 500, nil
		}
		return 200, nil
	}
	v, _ := w.subscribe(owner, r.url("/hook"))
	w.publish("t", "1")
	testdeps.WaitFor(t, "the subscription to be disabled", func() bool { return w.push.List(owner)[0].State == "disabled" })
	failing.Lock()
	down = false
	failing.Unlock()
	w.publish("t", "2")
	if _, err := w.push.Enable(context.Background(), owner, v.ID); err != nil {
		t.Fatal(err)
	}
	testdeps.WaitFor(t, "both events taken", func() bool { return strings.Join(taken(r.deliveries()[1:]), " ") == "t=1 t=2" })
	if _, err := w.push.Enable(context.Background(), owner, v.ID); err != push.ErrNotDisabled {
		t.Errorf("enabling an active subscription: %v", err)
	}
}

// Where a subscription may point.
func TestCreateRefuses(t *testing.T) {
	w := newWorld(t, nil)
	r := newReceiver(t)
	w.login("north-1", loopback)
	owner := push.Owner{Username: "north-1", IP: loopback}
	for _, url := range []string{
		"http://127.0.0.2/hook",       // not the login ip
		"http://localhost/hook",       // a name
		"ftp://127.0.0.1/hook",        // not http
		"http://u:p@127.0.0.1:1/hook", // credentials
	} {
		if _, _, err := w.push.Create(context.Background(), owner, url, nil); err == nil {
			t.Errorf("%s was accepted", url)
		}
	}
	// A url that does not take the verification is refused.
	r.answer = func(int, *http.Request) (int, http.Header) { return 404, nil }
	if _, _, err := w.push.Create(context.Background(), owner, r.url("/nope"), nil); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("a url answering 404 to the verification: %v", err)
	}
	r.answer = nil
	for i := 0; i < 3; i++ {
		w.subscribe(owner, r.url("/hook"))
	}
	if _, _, err := w.push.Create(context.Background(), owner, r.url("/hook"), nil); err != push.ErrTooMany {
		t.Errorf("a fourth subscription with PerNorthServer 3: %v, want ErrTooMany", err)
	}
	// Refused before its verification: nothing reached the url.
	if n := len(r.deliveries()); n != 4 {
		t.Errorf("the url got %d requests, want 4: the one answered 404 and three verifications", n)
	}
}

// An instance that dies with a delivery in flight never moves the cursor:
// the instance that takes the lease over posts the same batch again, with
// the same webhook-id (at least once), and goes on in order.
func TestACrashedDeliveryIsPostedAgainWithItsID(t *testing.T) {
	w := newWorld(t, func(o *push.Options) { o.LeaseTTL = 300 * time.Millisecond; o.SyncEvery = 20 * time.Millisecond })
	r := newReceiver(t)
	w.login("north-1", loopback)
	inFlight := make(chan struct{})
	r.answer = func(n int, req *http.Request) (int, http.Header) {
		if n == 2 {
			close(inFlight)
			<-req.Context().Done() // the sender is gone
			return 500, nil
		}
		return 200, nil
	}
	w.subscribe(push.Owner{Username: "north-1", IP: loopback}, r.url("/hook"))
	w.publish("t", "1")
	<-inFlight
	w.crash()
	w.push.Wait(context.Background())
	w.otherInstance()
	testdeps.WaitFor(t, "the batch posted again", func() bool { return len(r.deliveries()) >= 3 })
	w.publish("t", "2")
	testdeps.WaitFor(t, "the next event", func() bool { return len(taken(r.deliveries())) >= 3 })
	all := r.deliveries()
	if all[1].id != all[2].id || string(all[1].body) != string(all[2].body) || all[2].status != 200 {
		t.Errorf("the crashed delivery %s %s, then %s %s (%d): want the same id and events", all[1].id, all[1].body, all[2].id, all[2].body, all[2].status)
	}
	if got := taken(all[1:]); strings.Join(got, " ") != "t=1 t=2" {
		t.Errorf("taken %q, want t=1 t=2", got)
	}
}

// A subscription whose cursor the log has trimmed past (no instance
// delivered for a while, or its receiver was down) is told so by a reset event leading its next delivery, never
// silently, and goes on from the oldest event kept.
func TestACursorBehindTheLogGetsAReset(t *testing.T) {
	w := newWorldRetaining(t, 3, func(o *push.Options) { o.LeaseTTL = 300 * time.Millisecond; o.SyncEvery = 20 * time.Millisecond })
	r := newReceiver(t)
	w.login("north-1", loopback)
	w.subscribe(push.Owner{Username: "north-1", IP: loopback}, r.url("/hook"))
	w.publish("t", "1")
	testdeps.WaitFor(t, "the first event", func() bool { return len(r.deliveries()) == 2 })
	// No instance delivers while the log moves on.
	w.crash()
	w.push.Wait(context.Background())
	for i := 2; i <= 7; i++ { // 2, 3 and 4 trimmed away
		w.publish("t", strconv.Itoa(i))
	}
	w.otherInstance()
	testdeps.WaitFor(t, "the delivery after the trim", func() bool { return len(r.deliveries()) == 3 })
	d := r.deliveries()[2]
	if len(d.events) != 4 || d.events[0].Type != "reset" {
		t.Fatalf("after the trim: %s, want a reset and then t=5 t=6 t=7", d.body)
	}
	var reset struct{ Oldest string }
	if err := json.Unmarshal(d.events[0].Data, &reset); err != nil || reset.Oldest != d.events[1].ID {
		t.Errorf("the reset names %q as the oldest kept, the next event is %s", reset.Oldest, d.events[1].ID)
	}
	if got := strings.Join(taken([]delivery{d})[1:], " "); got != "t=5 t=6 t=7" {
		t.Errorf("after the reset: %q, want t=5 t=6 t=7", got)
	}
}

// brokenList is a store whose List fails while broken is set: Redis down,
// or records sealed by a key this instance lacks.
type brokenList struct {
	push.Store
	broken atomic.Bool
	lists  atomic.Int64
}

func (b *brokenList) List(ctx context.Context) ([]*push.Record, error) {
	b.lists.Add(1)
	if b.broken.Load() {
		return nil, errors.New("sealed by key 0badc0de, which -push-secret-key-file does not hold")
	}
	return b.Store.List(ctx)
}

// Subscriptions that cannot be read are said once in the log, not every
// turn, and once again when they can; a north server asking for one
// meanwhile is told to retry, not that it does not exist.
func TestUnreadableSubscriptionsAreSaidOnce(t *testing.T) {
	w := newWorld(t, nil)
	subs := &brokenList{Store: pushmemory.New()}
	subs.broken.Store(true)
	var logged testdeps.SyncBuffer
	o := w.o
	o.SyncEvery = time.Millisecond
	ctx, stop := context.WithCancel(w.ctx)
	p := push.New(ctx, o, w.hub, w.store, subs, metrics.NewSet(), `subsystem="nms"`, slog.New(slog.NewTextHandler(&logged, nil)))
	t.Cleanup(func() { stop(); p.Wait(context.Background()) })

	testdeps.WaitFor(t, "ten turns of the sync", func() bool { return subs.lists.Load() >= 10 })
	owner := push.Owner{Username: "north-1", IP: loopback}
	if _, err := p.Enable(context.Background(), owner, "sub_1"); !errors.Is(err, events.ErrUnavailable) {
		t.Errorf("Enable while the subscriptions cannot be read: %v, want ErrUnavailable", err)
	}
	subs.broken.Store(false)
	testdeps.WaitFor(t, "the log to say they are read again", func() bool { return strings.Contains(logged.String(), "read again") })
	if n := strings.Count(logged.String(), "cannot read the webhook subscriptions"); n != 1 || !strings.Contains(logged.String(), "0badc0de") {
		t.Errorf("said %d times, want once with the cause:\n%s", n, logged.String())
	}
	if _, err := p.Enable(context.Background(), owner, "sub_1"); err != push.ErrNotFound {
		t.Errorf("Enable of a subscription that is not there: %v, want ErrNotFound", err)
	}
}

// The instance that takes a failing subscription over counts its
// failing time from the first failure on the one before: a rolling
// restart more often than -push-disable-after does not keep it alive.
func TestFailingTimeOutlivesAHandover(t *testing.T) {
	w := newWorld(t, func(o *push.Options) {
		o.LeaseTTL, o.SyncEvery = 300*time.Millisecond, 20*time.Millisecond
		o.Backoff = func(int) time.Duration { return time.Hour } // one failure each
	})
	r := newReceiver(t)
	w.login("north-1", loopback)
	owner := push.Owner{Username: "north-1", IP: loopback}
	r.answer = func(n int, req *http.Request) (int, http.Header) {
		if n == 1 {
			return 200, nil // the verification
		}
		return 500, nil
	}
	w.subscribe(owner, r.url("/hook"))
	w.publish("t", "1")
	testdeps.WaitFor(t, "the first failure", func() bool { return !w.push.List(owner)[0].FailingSince.IsZero() })
	first := w.push.List(owner)[0].FailingSince
	w.crash()
	w.push.Wait(context.Background())
	b := w.otherInstance()
	testdeps.WaitFor(t, "the other instance's first attempt", func() bool {
		l := b.List(owner)
		return len(l) == 1 && !l[0].LastAttempt.IsZero() && !l[0].FailingSince.IsZero()
	})
	v := b.List(owner)[0]
	if !v.FailingSince.Equal(first) || !v.LastAttempt.After(first) {
		t.Errorf("the other instance fails since %v (its attempt at %v), want since %v", v.FailingSince, v.LastAttempt, first)
	}
}

// posted is the data of every event posted after the verification, each
// attempt's events in turn, answered or not.
func posted(ds []delivery) []string {
	var out []string
	for _, d := range ds[1:] {
		for _, e := range d.events {
			out = append(out, string(e.Data))
		}
	}
	return out
}

// A rate slower than the lease lasts: each batch waits for its turn longer
// than -push-lease, and is still posted once, and the cursor moves on (the
// lease is renewed after the wait, just before the POST, not before it).
func TestASlowRateLongerThanTheLeaseStillMovesOn(t *testing.T) {
	w := newWorld(t, func(o *push.Options) { o.LeaseTTL, o.Rate, o.Batch = time.Second, 0.8, 1 })
	r := newReceiver(t)
	w.login("north-1", loopback)
	r.answer = func(int, *http.Request) (int, http.Header) { return 204, nil }
	owner := push.Owner{Username: "north-1", IP: loopback}
	w.subscribe(owner, r.url("/hook"))
	for i := 1; i <= 3; i++ {
		w.publish("t", strconv.Itoa(i))
	}
	testdeps.WaitFor(t, "three posts", func() bool { return len(r.deliveries()) >= 4 })
	all := r.deliveries()
	if got := strings.Join(posted(all), " "); got != "1 2 3" {
		t.Fatalf("the receiver got %s, want 1 2 3, each once", got)
	}
	last := all[3].events[0].ID
	testdeps.WaitFor(t, "the cursor at the last event", func() bool { return w.push.List(owner)[0].Cursor == last })
}

// leaseDown is a store whose Lease does not answer while down is set, as
// a store this instance cannot reach (or an instance stalled) does.
type leaseDown struct {
	push.Store
	down atomic.Bool
}

func (l *leaseDown) Lease(ctx context.Context, id, holder string, ttl time.Duration) (bool, error) {
	if l.down.Load() {
		return false, errors.New("store unreachable")
	}
	return l.Store.Lease(ctx, id, holder, ttl)
}

// Two instances on one store never post a batch at once, even to a
// receiver that answers nothing: an attempt ends within the lease it was
// made under, before the other instance may take it. Each attempt's
// instance loses its way to the store as the attempt begins, so that the
// lease passes to the other, which posts the batch again.
func TestTwoInstancesNeverPostABatchAtOnce(t *testing.T) {
	w := newWorld(t, func(o *push.Options) { o.LeaseTTL, o.SyncEvery = time.Second, 20*time.Millisecond })
	r := newReceiver(t)
	w.login("north-1", loopback)
	w.subscribe(push.Owner{Username: "north-1", IP: loopback}, r.url("/hook"))
	w.crash() // two instances of their own instead
	w.push.Wait(context.Background())
	type instance struct {
		p     *push.Pusher
		set   *metrics.Set
		store *leaseDown
	}
	var both [2]instance
	ctx, stop := context.WithCancel(context.Background())
	for i := range both {
		both[i].set, both[i].store = metrics.NewSet(), &leaseDown{Store: w.subs}
		both[i].p = push.New(ctx, w.o, w.hub, w.store, both[i].store, both[i].set, `subsystem="nms"`, slog.New(slog.DiscardHandler))
	}
	t.Cleanup(func() {
		stop()
		for _, in := range both {
			in.p.Wait(context.Background())
		}
	})
	var inFlight, overlaps atomic.Int32
	r.answer = func(n int, req *http.Request) (int, http.Header) {
		if inFlight.Add(1) > 1 {
			overlaps.Add(1)
		}
		for _, in := range both {
			v := in.p.All()
			in.store.down.Store(len(v) == 1 && v[0].Delivering)
		}
		<-req.Context().Done() // never answers: the sender gives up
		inFlight.Add(-1)
		return 500, nil
	}
	w.publish("t", "1")
	timedOut := func(set *metrics.Set) bool {
		var out strings.Builder
		set.WritePrometheus(&out)
		return !strings.Contains(out.String(), `northd_push_attempts_total{subsystem="nms",outcome="timeout"} 0`)
	}
	testdeps.WaitFor(t, "an attempt from each instance, or two at once", func() bool {
		return overlaps.Load() > 0 || timedOut(both[0].set) && timedOut(both[1].set)
	})
	if n := overlaps.Load(); n > 0 {
		t.Errorf("%d POSTs of the batch began while another was in flight", n)
	}
	all := r.deliveries()[1:] // after the verification
	for _, d := range all {
		if d.id != all[0].id || len(d.events) != 1 {
			t.Errorf("attempt %s %s, want the one batch again", d.id, d.body)
		}
	}
}

// A batch taken over by another instance is posted again with the same
// events under the same webhook-id, though more were published meanwhile:
// a batch's range is fixed at its first attempt.
func TestATakenOverBatchKeepsItsEventsAndID(t *testing.T) {
	w := newWorld(t, func(o *push.Options) { o.LeaseTTL, o.SyncEvery = time.Second, 20*time.Millisecond })
	r := newReceiver(t)
	w.login("north-1", loopback)
	inFlight := make(chan struct{})
	r.answer = func(n int, req *http.Request) (int, http.Header) {
		if n == 2 {
			close(inFlight)
			<-req.Context().Done() // the sender crashes meanwhile
			return 500, nil
		}
		return 200, nil
	}
	v, _ := w.subscribe(push.Owner{Username: "north-1", IP: loopback}, r.url("/hook"))
	w.publish("t", "1")
	<-inFlight
	w.publish("t", "2")
	w.crash()
	w.push.Wait(context.Background())
	w.otherInstance()
	testdeps.WaitFor(t, "both events taken", func() bool { return len(taken(r.deliveries())) >= 3 })
	all := r.deliveries()
	id1 := "msg_" + v.ID + "_" + all[1].events[0].ID
	for i, want := range []struct{ id, body string }{{id1, "1"}, {id1, "1"}} {
		d := all[1+i]
		if d.id != want.id || strings.Join(posted([]delivery{{}, d}), " ") != want.body {
			t.Errorf("post %d: %s %s, want %s with event %s", 1+i, d.id, d.body, want.id, want.body)
		}
	}
	if got := strings.Join(taken(all[1:]), " "); got != "t=1 t=2" {
		t.Errorf("taken %q, want t=1 t=2", got)
	}
}

// Three rotations: the newest secret and the one before sign, no more.
func TestRotationKeepsTwoSecrets(t *testing.T) {
	w := newWorld(t, nil)
	r := newReceiver(t)
	w.login("north-1", loopback)
	owner := push.Owner{Username: "north-1", IP: loopback}
	v, secret := w.subscribe(owner, r.url("/hook"))
	r.trust(secret)
	for i := 0; i < 3; i++ {
		s, err := w.push.Rotate(context.Background(), owner, v.ID)
		if err != nil {
			t.Fatal(err)
		}
		r.trust(s)
	}
	w.publish("t", "1")
	testdeps.WaitFor(t, "a delivery", func() bool { return len(r.deliveries()) == 2 })
	d := r.deliveries()[1]
	if strings.Join(d.signed, ",") != "2,3" || len(strings.Fields(d.signature)) != 2 {
		t.Errorf("after three rotations signed by keys %v (%d signatures), want the last two", d.signed, len(strings.Fields(d.signature)))
	}
}

// Enabled again, a subscription's -push-disable-after runs from its next
// failure, not from the failures before it was disabled.
func TestEnabledFailingOnceIsNotDisabledAgain(t *testing.T) {
	var enabled atomic.Bool
	backedOff := make(chan struct{}, 1)
	w := newWorld(t, func(o *push.Options) {
		o.DisableAfter = 50 * time.Millisecond
		o.Backoff = func(int) time.Duration {
			if !enabled.Load() {
				return time.Millisecond
			}
			select { // a failure after the enable that did not disable
			case backedOff <- struct{}{}:
			default:
			}
			return time.Hour
		}
	})
	r := newReceiver(t)
	w.login("north-1", loopback)
	owner := push.Owner{Username: "north-1", IP: loopback}
	r.answer = func(n int, req *http.Request) (int, http.Header) {
		if n == 1 {
			return 200, nil // the verification
		}
		return 500, nil
	}
	v, _ := w.subscribe(owner, r.url("/hook"))
	w.publish("t", "1")
	testdeps.WaitFor(t, "the subscription to be disabled", func() bool { return w.push.List(owner)[0].State == "disabled" })
	enabled.Store(true)
	if _, err := w.push.Enable(context.Background(), owner, v.ID); err != nil {
		t.Fatal(err)
	}
	testdeps.WaitFor(t, "the failure after the enable", func() bool {
		return len(backedOff) == 1 || w.push.List(owner)[0].State == "disabled"
	})
	if st := w.push.List(owner)[0].State; st != "active" {
		t.Errorf("after one failure once enabled: %s, want active", st)
	}
}

// A batch whose events the log trimmed before it was taken over is not
// posted again under its id with other events: the next batch, under its
// own id, starts with the reset that names the gap.
func TestATakenOverBatchTrimmedAwayIsNotReplaced(t *testing.T) {
	w := newWorldRetaining(t, 3, func(o *push.Options) { o.LeaseTTL, o.SyncEvery = time.Second, 20*time.Millisecond })
	r := newReceiver(t)
	w.login("north-1", loopback)
	inFlight := make(chan struct{})
	r.answer = func(n int, req *http.Request) (int, http.Header) {
		if n == 2 {
			close(inFlight)
			<-req.Context().Done() // the sender crashes meanwhile
			return 500, nil
		}
		return 200, nil
	}
	v, _ := w.subscribe(push.Owner{Username: "north-1", IP: loopback}, r.url("/hook"))
	w.publish("t", "1")
	<-inFlight
	w.crash()
	w.push.Wait(context.Background())
	for i := 2; i <= 7; i++ { // 1 to 4 trimmed away
		w.publish("t", strconv.Itoa(i))
	}
	w.otherInstance()
	testdeps.WaitFor(t, "the delivery after the trim", func() bool { return len(r.deliveries()) >= 3 })
	all := r.deliveries()
	d := all[2]
	if d.id == all[1].id || len(d.events) != 4 || d.events[0].Type != "reset" || d.id != "msg_"+v.ID+"_"+d.events[3].ID {
		t.Errorf("after %s %s, the next post %s %s: want a reset and t=5 t=6 t=7 under the id of t=7", all[1].id, all[1].body, d.id, d.body)
	}
}

// An event to an ip that no one held is for the next north server to log
// in there: its webhook receives it, and that of a later holder under
// another username does not, though both subscribed from the ip.
func TestAnEventToAnUnheldIPGoesToTheNextLoginOnly(t *testing.T) {
	w := newWorld(t, nil)
	ip := loopback // a webhook goes to its owner's ip
	logout := func(token [16]byte) {
		t.Helper()
		if _, err := w.store.Logout(token, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	r1, r2 := newReceiver(t), newReceiver(t)
	token := w.login("north-2", ip)
	w.subscribe(push.Owner{Username: "north-2", IP: ip}, r2.url("/hook"))
	logout(token)
	token = w.login("north-1", ip)
	w.subscribe(push.Owner{Username: "north-1", IP: ip}, r1.url("/hook"))
	logout(token)
	// As publishing addresses it (events.Target): the next login.
	_, live, tenure, err := w.store.Holder(context.Background(), ip, time.Now())
	if err != nil || live {
		t.Fatalf("Holder: live %v, %v", live, err)
	}
	to := events.Target{IP: ip, NextLogin: tenure.Login + 1}
	if _, _, err := w.log.Publish(context.Background(), "", []events.Draft{{Type: "t", Data: []byte(`"for the next"`), To: to}}, time.Now()); err != nil {
		t.Fatal(err)
	}
	w.publish("t", `"for all"`)
	received := func(r *receiver) []string {
		var got []string
		for _, e := range taken(r.deliveries()) {
			if strings.HasPrefix(e, "t=") {
				got = append(got, e)
			}
		}
		return got
	}
	// Each receives what is its in order: up to the event for all.
	upToAll := func(r *receiver) func() bool {
		return func() bool { got := received(r); return len(got) > 0 && got[len(got)-1] == `t="for all"` }
	}
	token = w.login("north-1", ip)
	testdeps.WaitFor(t, "north-1's deliveries", upToAll(r1))
	if got := received(r1); len(got) != 2 || got[0] != `t="for the next"` || got[1] != `t="for all"` {
		t.Errorf("north-1, the next to log in, received %q", got)
	}
	logout(token)
	w.login("north-2", ip)
	testdeps.WaitFor(t, "north-2's deliveries", upToAll(r2))
	if got := received(r2); len(got) != 1 || got[0] != `t="for all"` {
		t.Errorf("north-2, a later holder, received %q", got)
	}
}
