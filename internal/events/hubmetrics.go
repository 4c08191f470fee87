package events

import (
	"context"
	"time"

	"github.com/VictoriaMetrics/metrics"
)

// hubMetrics are a hub's series, under its subsystem's label.
type hubMetrics struct {
	opened, delivered             *metrics.Counter
	slowDropped, tokenEnded       *metrics.Counter
	gone                          *metrics.Counter
	resumeHit, resumeReset        *metrics.Counter
	refusedPerToken, refusedTotal *metrics.Counter
	latency                       *metrics.Histogram
}

func newHubMetrics(set *metrics.Set, label string, h *Hub) hubMetrics {
	set.NewGauge(`northd_event_streams_open{`+label+`}`, func() float64 { return float64(h.StreamsOpen()) })
	set.NewGauge(`northd_event_polls_waiting{`+label+`}`, func() float64 { return float64(h.PollsWaiting()) })
	set.NewGauge(`northd_event_log_length{`+label+`}`, func() float64 {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		st, err := h.log.Stats(ctx)
		if err != nil {
			return 0
		}
		return float64(st.Len)
	})
	return hubMetrics{
		opened:          set.NewCounter(`northd_event_streams_opened_total{` + label + `}`),
		delivered:       set.NewCounter(`northd_events_delivered_total{` + label + `}`),
		slowDropped:     set.NewCounter(`northd_event_streams_closed_total{` + label + `,why="slow"}`),
		tokenEnded:      set.NewCounter(`northd_event_streams_closed_total{` + label + `,why="token_ended"}`),
		gone:            set.NewCounter(`northd_event_streams_closed_total{` + label + `,why="write_failed"}`),
		resumeHit:       set.NewCounter(`northd_event_resumes_total{` + label + `,result="hit"}`),
		resumeReset:     set.NewCounter(`northd_event_resumes_total{` + label + `,result="reset"}`),
		refusedPerToken: set.NewCounter(`northd_event_streams_refused_total{` + label + `,why="per_token"}`),
		refusedTotal:    set.NewCounter(`northd_event_streams_refused_total{` + label + `,why="max_streams"}`),
		latency:         set.NewHistogram(`northd_event_delivery_seconds{` + label + `}`),
	}
}
