package redisconn

import (
	"bytes"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/VictoriaMetrics/metrics"

	"northd/internal/testdeps"
)

// unwatched connects to a real Redis without starting the probes, which
// the tests below drive by hand.
func unwatched(t *testing.T, redis *testdeps.Redis, set *metrics.Set) *Conn {
	t.Helper()
	c, err := Open(redis.URL(), set, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// A new connection is not ready until a probe has answered and loaded the
// scripts registered, which a restarted Redis has forgotten.
func TestReadyOnlyAfterAProbeLoadedTheScripts(t *testing.T) {
	redis := testdeps.StartRedis(t)
	c := unwatched(t, redis, metrics.NewSet())
	scripts := []string{"return 1", "return redis.call('PING')"}
	c.LoadOnProbe(scripts...)
	c.LoadOnProbe(scripts[0]) // a second user of the same script
	if c.Ready() {
		t.Fatal("ready before any probe answered")
	}
	redis.CLI("SCRIPT", "FLUSH")
	c.probed(c.probe(t.Context()))
	if !c.Ready() {
		t.Fatal("not ready after a probe answered")
	}
	for _, src := range scripts {
		sum := sha1.Sum([]byte(src))
		if got := strings.TrimSpace(redis.CLI("SCRIPT", "EXISTS", hex.EncodeToString(sum[:]))); got != "1" {
			t.Errorf("%q is not loaded after the probe: SCRIPT EXISTS says %q", src, got)
		}
	}
}

// Readiness follows the probes: failed calls made for requests leave it
// as it is, two failed probes in a row do too, the third declares the
// store down, and one probe that answers brings it back. Every failure,
// probe or call, is counted in northd_store_errors_total.
func TestReadinessFollowsProbesNotCalls(t *testing.T) {
	set := metrics.NewSet()
	c := unwatched(t, testdeps.StartRedis(t), set)
	wantMetrics(t, set, "before any probe", "northd_store_errors_total 0", "northd_store_up 0")
	c.probed(nil)
	wantMetrics(t, set, "after a probe answered", "northd_store_up 1")
	slow := errors.New("context deadline exceeded")
	for range 5 {
		c.CountFailedCall()
	}
	if !c.Ready() || c.Down() {
		t.Fatal("failed request calls took the store out of readiness")
	}
	for i := 1; i <= 3; i++ {
		c.probed(slow)
		if want := i < 3; c.Ready() != want || c.Down() == want {
			t.Fatalf("after %d failed probes in a row: ready=%v down=%v, want ready=%v", i, c.Ready(), c.Down(), want)
		}
	}
	wantMetrics(t, set, "after 5 failed calls and 3 failed probes", "northd_store_errors_total 8", "northd_store_up 0")
	c.probed(nil)
	if !c.Ready() || c.Down() {
		t.Fatal("a probe that answered did not bring the store back")
	}
	// Failures that do not follow one another do not add up.
	for range 4 {
		c.probed(slow)
		c.probed(slow)
		c.probed(nil)
	}
	if !c.Ready() {
		t.Error("failed probes that never came three in a row declared the store down")
	}
}

// wantMetrics checks that set's exposition holds each of lines.
func wantMetrics(t *testing.T, set *metrics.Set, when string, lines ...string) {
	t.Helper()
	var b bytes.Buffer
	set.WritePrometheus(&b)
	for _, l := range lines {
		if !strings.Contains("\n"+b.String(), "\n"+l+"\n") {
			t.Errorf("%s: the metrics lack %q:\n%s", when, l, b.String())
		}
	}
}

// Without scripts registered, a probe is a PING: the connection is ready
// once Redis answers one.
func TestReadyWithoutScripts(t *testing.T) {
	c := unwatched(t, testdeps.StartRedis(t), metrics.NewSet())
	c.probed(c.probe(t.Context()))
	if !c.Ready() {
		t.Fatal("not ready after a probe answered")
	}
}
