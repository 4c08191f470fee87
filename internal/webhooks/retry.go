package webhooks

import (
	"net/http"
	"strconv"
	"time"
)

// schedule is the wait after each failed attempt in a row, then hourly:
// soon enough for a receiver that restarts, sparse enough for one that is
// down for a day.
var schedule = []time.Duration{5 * time.Second, 30 * time.Second, 2 * time.Minute, 10 * time.Minute, 30 * time.Minute, time.Hour}

// Backoff is the wait after the attempt-th failure in a row (from 1), with
// ±20% jitter from rnd (uniform in [0, 1)), so that subscriptions failing
// together do not all come back at once.
func Backoff(attempt int, rnd func() float64) time.Duration {
	d := schedule[len(schedule)-1]
	if attempt >= 1 && attempt <= len(schedule) {
		d = schedule[attempt-1]
	}
	return time.Duration(float64(d) * (0.8 + 0.4*rnd()))
}

// maxRetryAfter bounds what a receiver's Retry-After may ask: past it, the
// schedule's hourly retries take over.
const maxRetryAfter = time.Hour

// RetryAfter reads a Retry-After header, in seconds or as an HTTP date,
// at most an hour; false without one that parses.
func RetryAfter(h http.Header, now time.Time) (time.Duration, bool) {
	v := h.Get("Retry-After")
	if v == "" {
		return 0, false
	}
	var d time.Duration
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs < 0 {
			return 0, false
		}
		d = time.Duration(min(secs, int64(maxRetryAfter/time.Second))) * time.Second
	} else if at, err := http.ParseTime(v); err == nil {
		d = max(at.Sub(now), 0)
	} else {
		return 0, false
	}
	return min(d, maxRetryAfter), true
}
