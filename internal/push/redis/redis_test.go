package redis

import (
	"io"
	"log/slog"
	"strconv"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"northd/internal/push"
	"northd/internal/push/pushtest"
	storeredis "northd/internal/store/redis"
	"northd/internal/testdeps"
)

// The Redis store passes the suite the memory store passes, against a
// real redis-server: each case has a subsystem of its own.
func TestConformance(t *testing.T) {
	redis := testdeps.StartRedis(t)
	c, err := storeredis.Open(storeredis.Options{URL: redis.URL(), CallTimeout: 30 * time.Second, Max: 10, TokenTTL: time.Hour},
		metrics.NewSet(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	n := 0
	pushtest.Run(t, func(*testing.T) push.Store {
		n++
		return New(c.Rueidis(), "case"+strconv.Itoa(n), 30*time.Second)
	})
}
