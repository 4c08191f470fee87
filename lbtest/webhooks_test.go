package lbtest

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"northd/internal/testdeps"
)

// A north server's webhook subscription, kept in Redis, is delivered by
// one instance at a time; killed (SIGKILL), that instance's deliveries
// move to the other within its lease, in order, with nothing lost. The
// secret it signs with is sealed in Redis by the key both instances have.
func TestWebhookDeliveryMovesWhenItsInstanceDies(t *testing.T) {
	testdeps.Need(t, "redis-server", "redis-server")
	redis := testdeps.StartRedis(t)
	keyFile := filepath.Join(t.TempDir(), "push-keys")
	if err := os.WriteFile(keyFile, []byte(strings.Repeat("5a", 32)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	extra := []string{"-push-allow", "127.0.0.0/8", "-push-lease", "2s", "-push-timeout", "900ms", "-push-secret-key-file", keyFile}
	instances := []*instance{{name: "a", plain: true, store: redis.URL(), extra: extra}, {name: "b", plain: true, store: redis.URL(), extra: extra}}
	startAll(t, instances)

	hook := &hookLog{}
	srv := httptest.NewServer(hook)
	defer srv.Close()
	token := login(t, http.DefaultClient, instances[0].listen, "north-1", "127.0.0.1")
	a := testdeps.Call(t, http.DefaultClient, "POST", "http://"+instances[0].listen+"/north/subscriptions", token, `{"url":"`+srv.URL+`/hook"}`)
	var created struct{ Secret string }
	if a.Status != 201 || json.Unmarshal([]byte(a.Body), &created) != nil {
		t.Fatalf("subscribe: %d %s", a.Status, a.Body)
	}
	hook.trust(created.Secret)
	stored := redis.CLI("EVAL", "local o = '' for _, k in ipairs(redis.call('KEYS', '*:subs')) do for _, v in ipairs(redis.call('HVALS', k)) do o = o .. v end end return o", "0")
	if strings.Contains(stored, strings.TrimPrefix(created.Secret, "whsec_")) || !strings.Contains(stored, `"sealed":"`) {
		t.Fatalf("Redis holds the subscription as %s: its secret in clear", stored)
	}

	pub := startPublisher(t, instances)
	defer func() {
		if pub != nil {
			pub.stop(t)
		}
	}()
	testdeps.WaitFor(t, "deliveries before the kill", func() bool { return hook.count() >= 50 })
	var holder, other *instance
	testdeps.WaitFor(t, "an instance to say it delivers", func() bool {
		for i, in := range instances {
			if deliversHere(t, in) {
				holder, other = in, instances[1-i]
				return true
			}
		}
		return false
	})
	atKill := hook.count()
	holder.n.Kill()
	testdeps.WaitFor(t, "deliveries from the other instance", func() bool { return hook.count() >= atKill+50 })
	published := pub.stop(t)
	pub = nil
	testdeps.WaitFor(t, fmt.Sprintf("all %d events delivered", published), func() bool { return hook.count() >= published })
	if !deliversHere(t, other) {
		t.Errorf("instance %s does not say it delivers after %s was killed", other.name, holder.name)
	}
	redelivered := hook.check(t, published)
	t.Logf("webhooks: %d events published, all delivered in order; instance %s killed after %d, %d delivered again by %s (at least once)", published, holder.name, atKill, redelivered, other.name)
}

// deliversHere reports whether in holds the subscription's lease.
func deliversHere(t *testing.T, in *instance) bool {
	a := testdeps.Call(t, http.DefaultClient, "GET", "http://"+in.adminAddr()+"/north/subscriptions", "", "")
	return strings.Contains(a.Body, `"delivering_here": true`)
}

// hookLog is the north server's receiver: it checks each delivery's
// signature with its own code and keeps the events' data in arrival order.
// Beside its own check, testdeps.CheckWebhook has each request verified by
// the specification's reference library and validated against the
// document: the verification, sent before its secret is known, as far as
// it can then, and by its signature in trust.
type hookLog struct {
	mu       sync.Mutex
	secret   string
	key      []byte
	data     []int
	bad      []string
	verifies []webhookRequest // taken before the secret was known
}

// webhookRequest is a request a receiver took before the subscribe's 201
// showed the secret to verify it by.
type webhookRequest struct {
	r    *http.Request
	body []byte
}

func (h *hookLog) trust(secret string) {
	key, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	h.mu.Lock()
	defer h.mu.Unlock()
	h.secret, h.key = secret, key
	for _, v := range h.verifies {
		if err := testdeps.CheckWebhook(v.r, v.body, secret); err != nil {
			h.bad = append(h.bad, "the verification, with the subscribe's secret: "+err.Error())
		}
	}
}

func (h *hookLog) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	h.mu.Lock()
	defer h.mu.Unlock()
	w.WriteHeader(204)
	if h.key == nil { // the verification
		if err := testdeps.CheckWebhook(r, body); err != nil {
			h.bad = append(h.bad, err.Error())
		}
		h.verifies = append(h.verifies, webhookRequest{r.Clone(context.Background()), body})
		return
	}
	if err := testdeps.CheckWebhook(r, body, h.secret); err != nil {
		h.bad = append(h.bad, err.Error())
	}
	mac := hmac.New(sha256.New, h.key)
	mac.Write([]byte(r.Header.Get("webhook-id") + "." + r.Header.Get("webhook-timestamp") + "."))
	mac.Write(body)
	if r.Header.Get("webhook-signature") != "v1,"+base64.StdEncoding.EncodeToString(mac.Sum(nil)) {
		h.bad = append(h.bad, r.Header.Get("webhook-id"))
		return
	}
	var evs []struct {
		Type string          `json:"type"`
		Data json.RawMessage `json:"data"`
	}
	json.Unmarshal(body, &evs)
	for _, e := range evs {
		n, err := strconv.Atoi(string(e.Data))
		if e.Type != "n" || err != nil {
			h.bad = append(h.bad, fmt.Sprintf("event %s %s", e.Type, e.Data))
			continue
		}
		h.data = append(h.data, n)
	}
}

// count is how many distinct events arrived.
func (h *hookLog) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	most := -1
	for _, n := range h.data {
		most = max(most, n)
	}
	return most + 1
}

// check verifies the events came in order with none missing: each is
// the next, or one seen before (a batch delivered again after the kill).
// It returns how many came again.
func (h *hookLog) check(t *testing.T, published int) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	next, again := 0, 0
	for i, n := range h.data {
		switch {
		case n == next:
			next++
		case n < next:
			again++
		default:
			t.Fatalf("event %d arrived after %d: %d lost or out of order (arrivals %v…)", n, next-1, n-next, h.data[max(0, i-3):min(len(h.data), i+3)])
		}
	}
	if next != published {
		t.Errorf("%d events delivered, %d published", next, published)
	}
	for _, b := range h.bad {
		t.Errorf("receiver: %s", b)
	}
	return again
}
