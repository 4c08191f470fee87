package redis

import (
	"context"
	"io"
	"log/slog"
	"strconv"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"northd/internal/redisconn"
	"northd/internal/store"
	"northd/internal/store/storetest"
	"northd/internal/testdeps"
)

// The Redis store passes the suite the memory store passes, against a
// real redis-server: each case has a subsystem, and so keys, of its own.
func TestConformance(t *testing.T) {
	redis := testdeps.StartRedis(t)
	// The flood case need not reach the disk on each login.
	redis.CLI("CONFIG", "SET", "appendfsync", "no")
	n := 0
	storetest.Run(t, func(t *testing.T, o storetest.Options) store.Store {
		n++
		return openSubsystem(t, redis, o, "case"+strconv.Itoa(n))
	})
}

// openSubsystem is the subsystem named name within o's bounds, on a
// watched connection of its own to redis.
func openSubsystem(t *testing.T, redis *testdeps.Redis, o storetest.Options, name string) *Subsystem {
	t.Helper()
	set := metrics.NewSet()
	conn, err := redisconn.Open(redis.URL(), set, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() { cancel(); conn.Close() })
	s := New(conn, name, Options{CallTimeout: 30 * time.Second, Max: o.Max, MaxPerUser: o.MaxPerUser, TokenTTL: o.TokenTTL}, set, `subsystem="`+name+`"`)
	go conn.Watch(ctx)
	return s
}
