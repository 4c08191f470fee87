package push

import (
	"context"

	"github.com/VictoriaMetrics/metrics"
)

type pushMetrics struct {
	attempts       [outcomeCount]*metrics.Counter
	attemptSeconds *metrics.Histogram
	// deliverySeconds is publish to 2xx of each batch's oldest event,
	// retries and pauses included: how late a north server learns.
	deliverySeconds *metrics.Histogram
	disabled        *metrics.Counter
	ended           *metrics.Counter
}

func newPushMetrics(set *metrics.Set, label string, p *Pusher) pushMetrics {
	var m pushMetrics
	for o := outcome(0); o < outcomeCount; o++ {
		m.attempts[o] = set.NewCounter(`northd_push_attempts_total{` + label + `,outcome="` + outcomeNames[o] + `"}`)
	}
	m.attemptSeconds = set.NewHistogram(`northd_push_attempt_seconds{` + label + `}`)
	m.deliverySeconds = set.NewHistogram(`northd_push_delivery_seconds{` + label + `}`)
	m.disabled = set.NewCounter(`northd_push_disabled_total{` + label + `}`)
	m.ended = set.NewCounter(`northd_push_gone_total{` + label + `}`)
	for st := State(0); st < stateCount; st++ {
		set.NewGauge(`northd_push_subscriptions{`+label+`,state="`+st.String()+`"}`, func() float64 {
			n := 0
			for _, s := range p.all() {
				s.mu.Lock()
				if s.state == st && !s.disabled || st == Disabled && s.disabled {
					n++
				}
				s.mu.Unlock()
			}
			return float64(n)
		})
	}
	set.NewGauge(`northd_push_lag_events{`+label+`}`, func() float64 {
		head, err := p.hub.Now(context.Background())
		if err != nil {
			return 0
		}
		lag := uint64(0)
		for _, s := range p.all() {
			s.mu.Lock()
			if s.cursor.Epoch == head.Epoch && head.Seq > s.cursor.Seq {
				lag += head.Seq - s.cursor.Seq
			}
			s.mu.Unlock()
		}
		return float64(lag)
	})
	return m
}
