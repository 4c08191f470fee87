package redis

import (
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"northd/internal/store"
	"northd/internal/store/storetest"
	"northd/internal/testdeps"
)

// The store is ready only with its scripts loaded, by the connection's
// probes (redisconn), again after Redis restarted and forgot them; while
// the probes declare Redis down, a call made for a request fails at once
// instead of waiting out its deadline.
func TestStoreScriptsLoadedByTheProbesAndCallsRefusedWhileDown(t *testing.T) {
	redis := testdeps.StartRedis(t)
	sub := openSubsystem(t, redis, storetest.Options{Max: 10, TokenTTL: time.Hour}, "x")
	testdeps.WaitFor(t, "the store to be ready", sub.Ready)
	wantScriptsLoaded(t, redis, "once ready")
	if _, cancel, err := sub.c.call(t.Context()); err != nil {
		t.Fatalf("a call while the store answers: %v", err)
	} else {
		cancel()
	}

	redis.Kill()
	testdeps.WaitFor(t, "the probes to declare the store down", func() bool { return !sub.Ready() })
	if _, _, err := sub.c.call(t.Context()); !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("a call while the store is down: %v, want store.ErrUnavailable at once", err)
	}

	redis.Restart()
	testdeps.WaitFor(t, "the store to be ready again", sub.Ready)
	wantScriptsLoaded(t, redis, "after Redis restarted")
	if _, cancel, err := sub.c.call(t.Context()); err != nil {
		t.Errorf("a call after the store came back: %v", err)
	} else {
		cancel()
	}
}

// wantScriptsLoaded checks that redis holds the store's scripts.
func wantScriptsLoaded(t *testing.T, redis *testdeps.Redis, when string) {
	t.Helper()
	for name, src := range map[string]string{"login": loginScriptSource, "end user": endUserScriptSource, "logout": logoutScriptSource} {
		sum := sha1.Sum([]byte(src))
		if got := strings.TrimSpace(redis.CLI("SCRIPT", "EXISTS", hex.EncodeToString(sum[:]))); got != "1" {
			t.Errorf("%s, the %s script is not loaded: SCRIPT EXISTS says %q", when, name, got)
		}
	}
}

// A token past the expiry its record holds is not live, though its key
// may outlive it by the moments the login script took: logout says so,
// as verify does, and clears it. (The conformance suite's Expiry case
// failed 2 runs in 10 on a busy machine, when logout fell in that gap.)
func TestLogoutOfATokenPastItsRecordedExpiry(t *testing.T) {
	redis := testdeps.StartRedis(t)
	sub := openSubsystem(t, redis, storetest.Options{Max: 10, TokenTTL: time.Hour}, "x")
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
