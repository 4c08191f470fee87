package redis

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

	"northd/internal/store"
	"northd/internal/testdeps"
)

// readinessStore connects to a real Redis without starting the probes,
// which the tests below drive by hand.
func readinessStore(t *testing.T, redis *testdeps.Redis) *Client {
	t.Helper()
	s, err := Open(Options{URL: redis.URL(), CallTimeout: time.Second, Max: 10, TokenTTL: time.Hour}, metrics.NewSet(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
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
	if _, _, err := s.call(t.Context()); !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("a call while the store is down: %v, want store.ErrUnavailable at once", err)
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

// A token past the expiry its record holds is not live, though its key
// may outlive it by the moments the login script took: logout says so,
// as verify does, and clears it. (The conformance suite's Expiry case
// failed 2 runs in 10 on a busy machine, when logout fell in that gap.)
func TestLogoutOfATokenPastItsRecordedExpiry(t *testing.T) {
	redis := testdeps.StartRedis(t)
	s := readinessStore(t, redis)
	sub := s.Subsystem("x", metrics.NewSet(), `subsystem="x"`)
	token := [16]byte{7}
	key := "northd:{x}:tok:" + store.TokenDigest(token)
	redis.CLI("SET", key, "1000\n192.0.2.1\nalice", "PX", "60000") // expired in 1970, key alive a minute
	if v, err := sub.Verify(token, time.Now(), nil); err != nil || v.Result != store.Expired {
		t.Fatalf("verify: %+v, %v; want expired", v, err)
	}
	if ended, err := sub.Logout(token, time.Now()); err != nil || ended {
		t.Errorf("logout of an expired token: %v, %v; want false", ended, err)
	}
	if got := strings.TrimSpace(redis.CLI("EXISTS", key)); got != "0" {
		t.Errorf("the expired token's key is still there: EXISTS says %s", got)
	}
}
