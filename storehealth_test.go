package main

import (
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"northd/internal/testdeps"
)

// A login whose store call times out gets 503, but says nothing about the
// store as a whole: /readyz stays 200, so a balancer does not take every
// instance sharing the store out of rotation for one slow answer. Redis's
// CLIENT PAUSE … WRITE holds the login's script while PING still answers.
func TestSlowStoreCallKeepsInstanceReady(t *testing.T) {
	redis := testdeps.StartRedis(t)
	listen, _, _, _ := startRun(t, "-listen", "alarms=127.0.0.1:0", "-admin", "off", "-store", redis.URL(), "-store-timeout", "100ms")
	base := "http://" + listen[0]
	client := clientFrom("127.0.0.1")
	waitFor(t, "/readyz 200 once the store answered", func() bool { return call(t, client, "GET", base+"/readyz", "", "").status == 200 })

	redis.CLI("CLIENT", "PAUSE", "20000", "WRITE")
	a := call(t, client, "POST", base+"/north/login", "", `{"username":"n","password":"p","ip":"192.0.2.1"}`)
	if a.status != 503 || a.body != `{"code": 4, "token": "", "description": "the token store is unavailable; retry after the Retry-After seconds"}` {
		t.Fatalf("login while the store holds writes: %d %q", a.status, a.body)
	}
	if r := call(t, client, "GET", base+"/readyz", "", ""); r.status != 200 || r.body != "ready\n" {
		t.Errorf("/readyz after one slow store call: %d %q, want 200 ready", r.status, r.body)
	}
	redis.CLI("CLIENT", "UNPAUSE")
	loginToken(t, client, base, `{"username":"n","password":"p","ip":"192.0.2.1"}`)
}

// A store that hangs is declared down by the probes, with their own
// deadline, however long -store-timeout is; from then on requests get 503
// at once instead of waiting it out, and the first probe that answers
// brings the instance back.
func TestHungStoreIsDeclaredDownByProbes(t *testing.T) {
	redis := testdeps.StartRedis(t)
	listen, _, logs, _ := startRun(t, "-listen", "alarms=127.0.0.1:0", "-admin", "off", "-store", redis.URL(), "-store-timeout", "1h")
	base := "http://" + listen[0]
	client := clientFrom("127.0.0.1")
	client.Timeout = time.Minute // a request that waited out the hour fails here
	waitFor(t, "/readyz 200 once the store answered", func() bool { return call(t, client, "GET", base+"/readyz", "", "").status == 200 })
	token := loginToken(t, client, base, `{"username":"n","password":"p","ip":"192.0.2.1"}`)

	redis.Pause()
	waitFor(t, "/readyz 503 while the store hangs", func() bool {
		r := call(t, client, "GET", base+"/readyz", "", "")
		return r.status == 503 && r.body == "store unavailable: this instance cannot reach -store\n"
	})
	if a := call(t, client, "GET", base+"/north/verify", token, ""); a.status != 503 || a.header.Get("Retry-After") != "1" {
		t.Errorf("verify while the store is down: %d %v %q", a.status, a.header, a.body)
	}
	if a := call(t, client, "POST", base+"/north/login", "", `{"username":"n","password":"p","ip":"192.0.2.2"}`); a.status != 503 {
		t.Errorf("login while the store is down: %d %q", a.status, a.body)
	}
	redis.Resume()
	waitFor(t, "/readyz 200 after the store answered again", func() bool { return call(t, client, "GET", base+"/readyz", "", "").status == 200 })
	if a := call(t, client, "GET", base+"/north/verify", token, ""); a.status != 200 {
		t.Errorf("the token from before the hang: %d %q", a.status, a.body)
	}
	if n := strings.Count(logs.String(), "store unreachable"); n != 1 {
		t.Errorf("the hang was logged %d times, want once:\n%s", n, logs)
	}
}

// readinessStore connects to a real Redis without starting the probes,
// which the tests below drive by hand.
func readinessStore(t *testing.T, redis *testdeps.Redis) *redisStore {
	t.Helper()
	cfg := config{StoreTimeout: time.Second, RegistryMax: 10, TokenTTL: time.Hour}
	s, err := newRedisStore(redis.URL(), cfg, metrics.NewSet(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.close)
	return s
}

// A new instance is not ready until a probe has answered and loaded the
// scripts, which a restarted Redis has forgotten.
func TestStoreReadyOnlyAfterAProbeLoadedTheScripts(t *testing.T) {
	redis := testdeps.StartRedis(t)
	s := readinessStore(t, redis)
	if s.up.Load() {
		t.Fatal("the store is ready before any probe answered")
	}
	redis.CLI("SCRIPT", "FLUSH")
	s.probed(s.probe(t.Context()))
	if !s.up.Load() {
		t.Fatal("the store is not ready after a probe answered")
	}
	for name, src := range map[string]string{"login": loginScriptSource, "logout": logoutScriptSource} {
		sum := sha1.Sum([]byte(src))
		if got := strings.TrimSpace(redis.CLI("SCRIPT", "EXISTS", hex.EncodeToString(sum[:]))); got != "1" {
			t.Errorf("the %s script is not loaded after the probe: SCRIPT EXISTS says %q", name, got)
		}
	}
}

// Readiness follows the probes: a failed call made for a request leaves
// it as it is, two failed probes in a row do too, the third declares the
// store down (and calls then fail without reaching it), and one probe that
// answers brings it back.
func TestStoreReadinessFollowsProbesNotRequests(t *testing.T) {
	s := readinessStore(t, testdeps.StartRedis(t))
	s.probed(nil)
	slow := errors.New("context deadline exceeded")
	for range 5 {
		s.failed(slow)
	}
	if !s.up.Load() {
		t.Fatal("failed request calls took the store out of readiness")
	}
	for i := 1; i <= 3; i++ {
		s.probed(slow)
		if want := i < 3; s.up.Load() != want {
			t.Fatalf("after %d failed probes in a row: ready=%v, want %v", i, s.up.Load(), want)
		}
	}
	if _, _, err := s.call(t.Context()); !errors.Is(err, errStoreUnavailable) {
		t.Errorf("a call while the store is down: %v, want errStoreUnavailable at once", err)
	}
	s.probed(nil)
	if !s.up.Load() {
		t.Fatal("a probe that answered did not bring the store back")
	}
	if _, cancel, err := s.call(t.Context()); err != nil {
		t.Errorf("a call after the store came back: %v", err)
	} else {
		cancel()
	}
	// Failures that do not follow one another do not add up.
	for range 4 {
		s.probed(slow)
		s.probed(slow)
		s.probed(nil)
	}
	if !s.up.Load() {
		t.Error("failed probes that never came three in a row declared the store down")
	}
}
