package memory

import (
	"testing"

	"northd/internal/events"
	"northd/internal/events/eventstest"
)

func TestConformance(t *testing.T) {
	eventstest.Run(t, func(t *testing.T, o eventstest.Options) events.Log {
		return New(Options{Retention: o.Retention, MaxBytes: 64 << 20})
	})
}
