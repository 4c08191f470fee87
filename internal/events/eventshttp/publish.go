package eventshttp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"northd/internal/events"
	"northd/internal/httpx"
	"northd/internal/store"
)

// A batch holds at most this many events, and its body at most
// maxBatchBytes (each event's data is bounded by -event-max-bytes too).
const (
	maxBatch      = 1000
	maxBatchBytes = 8 << 20
	// maxIdempotencyKey bounds the Idempotency-Key header.
	maxIdempotencyKey = 255
)

// Target is a subsystem events are published to.
type Target struct {
	Name string
	// Label is the label its metrics carry, such as subsystem="alarms".
	Label  string
	Store  store.Store // who holds an ip, for events addressed to one
	Events events.Log
}

// publishing is POST /north/events on the admin listener: the subsystems'
// own software publishing events for their north servers.
type publishing struct {
	targets   []Target
	maxData   int
	published []*typeCounters // by target
	log       *slog.Logger
}

// Publish answers POST /north/events?subsystem=NAME on the admin listener:
// one event object, or a JSON array of them, appended to the log of the
// target named (or of the only one), each event's data at most maxData
// bytes of JSON (-event-max-bytes). set counts them by type.
func Publish(targets []Target, maxData int, set *metrics.Set, log *slog.Logger) http.Handler {
	p := &publishing{targets: targets, maxData: maxData, published: make([]*typeCounters, len(targets)), log: log}
	for i, t := range targets {
		p.published[i] = &typeCounters{set: set, label: t.Label, byType: make(map[string]*metrics.Counter)}
	}
	return p
}

// typeCounters count events published by type, for at most maxTypeLabels
// types; the rest are counted as "other", so that a publisher inventing
// types cannot grow the metrics without bound.
type typeCounters struct {
	set    *metrics.Set
	label  string
	mu     sync.Mutex
	byType map[string]*metrics.Counter
}

const maxTypeLabels = 100

func (c *typeCounters) inc(typ string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	counter := c.byType[typ]
	if counter == nil {
		name := typ
		if len(c.byType) >= maxTypeLabels {
			name = "other"
		}
		if counter = c.byType[name]; counter == nil {
			counter = c.set.NewCounter(`northd_events_published_total{` + c.label + `,type=` + strconv.Quote(name) + `}`)
			c.byType[name] = counter
		}
		if name == typ {
			c.byType[typ] = counter
		}
	}
	counter.Inc()
}

func (p *publishing) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ti, status, problem := p.target(r.URL.Query().Get("subsystem"))
	if ti < 0 {
		httpx.WriteFailure(w, status, 1, problem)
		return
	}
	t := p.targets[ti]
	key := r.Header.Get("Idempotency-Key")
	if len(key) > maxIdempotencyKey {
		httpx.WriteFailure(w, http.StatusBadRequest, 1, fmt.Sprintf("Idempotency-Key is %d bytes; at most %d", len(key), maxIdempotencyKey))
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBatchBytes))
	if err != nil {
		if _, tooLarge := errors.AsType[*http.MaxBytesError](err); tooLarge {
			httpx.WriteFailure(w, http.StatusRequestEntityTooLarge, 1, fmt.Sprintf("the body is larger than %d bytes; publish fewer events at a time", maxBatchBytes))
			return
		}
		httpx.WriteFailure(w, http.StatusBadRequest, 1, "the body could not be read: "+err.Error())
		return
	}
	drafts, batch, problem := decode(body, p.maxData)
	if problem != "" {
		httpx.WriteFailure(w, http.StatusBadRequest, 1, problem)
		return
	}
	if err := addressHolders(r.Context(), t.Store, drafts); err != nil {
		p.log.Warn("publishing events failed: the token store did not say who holds an ip", "subsystem", t.Name, "err", err)
		w.Header().Set("Retry-After", "1")
		httpx.WriteFailure(w, http.StatusServiceUnavailable, 4, "the token store is unavailable, and with it who holds the ips events are addressed to; retry after the Retry-After seconds, with the same Idempotency-Key")
		return
	}
	ids, replayed, err := t.Events.Publish(r.Context(), key, drafts, time.Now())
	if err != nil {
		p.log.Warn("publishing events failed", "subsystem", t.Name, "err", err)
		w.Header().Set("Retry-After", "1")
		httpx.WriteFailure(w, http.StatusServiceUnavailable, 4, "the event log is unavailable; retry after the Retry-After seconds, with the same Idempotency-Key")
		return
	}
	if !replayed {
		for i := range drafts {
			p.published[ti].inc(drafts[i].Type)
		}
	} else {
		w.Header().Set("Idempotent-Replayed", "true")
	}
	answer := []byte(`{"code":0,`)
	if batch {
		answer = append(answer, `"events":[`...)
		for i, id := range ids {
			if i > 0 {
				answer = append(answer, ',')
			}
			answer = appendPublished(append(answer, '{'), id)
			answer = append(answer, '}')
		}
		answer = append(answer, ']')
	} else {
		answer = appendPublished(answer, ids[0])
	}
	answer = append(answer, "}\n"...)
	w.Header().Set("Content-Type", httpx.JSONType)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusAccepted)
	w.Write(answer)
}

// addressHolders makes each draft to an ip alone an event for the north
// server that holds the ip now: its username, or, when no one holds it,
// the next login there (events.Target). Without it an event would go to
// whoever held the ip when reading, such as a later north server of
// another username.
func addressHolders(ctx context.Context, st store.Store, drafts []events.Draft) error {
	resolved := make(map[netip.Addr]events.Target)
	for i := range drafts {
		to := &drafts[i].To
		if !to.IP.IsValid() || to.Username != "" {
			continue
		}
		if t, ok := resolved[to.IP]; ok {
			*to = t
			continue
		}
		username, live, tenure, err := st.Holder(ctx, to.IP, time.Now())
		if err != nil {
			return err
		}
		if live {
			to.Username = username
		} else {
			to.NextLogin = tenure.Login + 1
		}
		resolved[to.IP] = *to
	}
	return nil
}

func appendPublished(dst []byte, id events.ID) []byte {
	dst = append(dst, `"id":"`...)
	dst = id.Append(dst)
	dst = append(dst, `","seq":`...)
	return strconv.AppendUint(dst, id.Seq, 10)
}

// target is the index of the one ?subsystem= names, or of the only one
// served; or -1 with the status and the sentence to answer.
func (p *publishing) target(name string) (int, int, string) {
	if name == "" {
		if len(p.targets) == 1 {
			return 0, 0, ""
		}
		return -1, http.StatusBadRequest, "this instance serves several subsystems (" + strings.Join(p.names(), ", ") + "): name one with ?subsystem=NAME"
	}
	for i, t := range p.targets {
		if t.Name == name {
			return i, 0, ""
		}
	}
	return -1, http.StatusNotFound, httpx.NoSuchSubsystem(name, p.names())
}

// names are the targets' names, for a person to choose from.
func (p *publishing) names() []string {
	names := make([]string, len(p.targets))
	for i, t := range p.targets {
		names[i] = t.Name
	}
	return names
}
