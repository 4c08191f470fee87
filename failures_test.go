package main

import (
	"testing"
	"time"
)

// Retry-After is whole seconds, rounded up, and at least 1: a client that
// waits as long is not refused again for the same failures.
func TestFailureWaitRoundsUpToRetryAfter(t *testing.T) {
	for _, tt := range []struct {
		wait time.Duration
		want int
	}{{6 * time.Second, 6}, {time.Millisecond, 1}, {0, 1}, {5500 * time.Millisecond, 6}} {
		if got := retryAfterSeconds(tt.wait); got != tt.want {
			t.Errorf("retryAfterSeconds(%v) = %d, want %d", tt.wait, got, tt.want)
		}
	}
}
