package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"northd/internal/config"
	"northd/internal/events"
	"northd/internal/store"
	"northd/internal/wire"
)

// publishing is POST /north/events on the admin listener: the subsystems'
// own software publishing events for their north servers.
type publishing struct {
	subsystems []*subsystem
	maxData    int
	published  map[string]*typeCounters // by subsystem
}

// A batch holds at most this many events, and its body at most
// maxBatchBytes (each event's data is bounded by -event-max-bytes too).
const (
	maxBatch      = 1000
	maxBatchBytes = 8 << 20
	// maxIdempotencyKey bounds the Idempotency-Key header.
	maxIdempotencyKey = 255
)

func newPublishing(cfg config.Config, subsystems []*subsystem, set *metrics.Set) *publishing {
	p := &publishing{subsystems: subsystems, maxData: cfg.Events.MaxBytes, published: make(map[string]*typeCounters)}
	for _, s := range subsystems {
		p.published[s.name] = &typeCounters{set: set, label: subsystemLabel(s.name), byType: make(map[string]*metrics.Counter)}
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

// publishRequest is one event as a publisher sends it.
type publishRequest struct {
	Type *string         `json:"type"`
	Data json.RawMessage `json:"data"`
	To   *struct {
		IP       string `json:"ip"`
		Username string `json:"username"`
	} `json:"to"`
}

// publishError is a 4xx with the sentence a publisher can act on.
func publishError(w http.ResponseWriter, status int, code int, description string) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(wire.AppendFailureBody(nil, code, false, description))
}

func (p *publishing) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s, status, problem := p.subsystem(r.URL.Query().Get("subsystem"))
	if s == nil {
		publishError(w, status, 1, problem)
		return
	}
	key := r.Header.Get("Idempotency-Key")
	if len(key) > maxIdempotencyKey {
		publishError(w, http.StatusBadRequest, 1, fmt.Sprintf("Idempotency-Key is %d bytes; at most %d", len(key), maxIdempotencyKey))
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBatchBytes))
	if err != nil {
		if _, tooLarge := errors.AsType[*http.MaxBytesError](err); tooLarge {
			publishError(w, http.StatusRequestEntityTooLarge, 1, fmt.Sprintf("the body is larger than %d bytes; publish fewer events at a time", maxBatchBytes))
			return
		}
		publishError(w, http.StatusBadRequest, 1, "the body could not be read: "+err.Error())
		return
	}
	drafts, batch, problem := p.decode(body)
	if problem != "" {
		publishError(w, http.StatusBadRequest, 1, problem)
		return
	}
	if err := addressHolders(r.Context(), s.store, drafts); err != nil {
		s.log.Warn("publishing events failed: the token store did not say who holds an ip", "subsystem", s.name, "err", err)
		w.Header().Set("Retry-After", "1")
		publishError(w, http.StatusServiceUnavailable, 4, "the token store is unavailable, and with it who holds the ips events are addressed to; retry after the Retry-After seconds, with the same Idempotency-Key")
		return
	}
	ids, replayed, err := s.events.Log().Publish(r.Context(), key, drafts, time.Now())
	if err != nil {
		s.log.Warn("publishing events failed", "subsystem", s.name, "err", err)
		w.Header().Set("Retry-After", "1")
		publishError(w, http.StatusServiceUnavailable, 4, "the event log is unavailable; retry after the Retry-After seconds, with the same Idempotency-Key")
		return
	}
	if !replayed {
		for i := range drafts {
			p.published[s.name].inc(drafts[i].Type)
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
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
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

// subsystem is the one ?subsystem= names, or the only one served.
func (p *publishing) subsystem(name string) (*subsystem, int, string) {
	if name == "" {
		if len(p.subsystems) == 1 {
			return p.subsystems[0], 0, ""
		}
		return nil, http.StatusBadRequest, "this instance serves several subsystems (" + subsystemNameList(p.subsystems) + "): name one with ?subsystem=NAME"
	}
	for _, s := range p.subsystems {
		if s.name == name {
			return s, 0, ""
		}
	}
	return nil, http.StatusNotFound, fmt.Sprintf("no subsystem here is named %q (this instance serves %s)", name, subsystemNameList(p.subsystems))
}

// decode reads one event object, or a JSON array of them (a batch), and
// checks each; problem names the first thing wrong, and where.
func (p *publishing) decode(body []byte) (drafts []events.Draft, batch bool, problem string) {
	body = bytes.TrimSpace(body)
	var reqs []publishRequest
	switch {
	case len(body) == 0:
		return nil, false, `the body is empty: send {"type": "...", "data": ...}, or an array of such objects`
	case body[0] == '[':
		batch = true
		if err := strictUnmarshal(body, &reqs); err != nil {
			return nil, true, "the body is not a JSON array of events: " + err.Error()
		}
		if len(reqs) == 0 || len(reqs) > maxBatch {
			return nil, true, fmt.Sprintf("a batch holds 1 to %d events, not %d", maxBatch, len(reqs))
		}
	default:
		reqs = make([]publishRequest, 1)
		if err := strictUnmarshal(body, &reqs[0]); err != nil {
			return nil, false, `the body is not a JSON event object {"type": "...", "data": ..., "to": {...}}: ` + err.Error()
		}
	}
	drafts = make([]events.Draft, len(reqs))
	for i, r := range reqs {
		where := ""
		if batch {
			where = fmt.Sprintf("event %d: ", i)
		}
		d, problem := p.draft(r)
		if problem != "" {
			return nil, batch, where + problem
		}
		drafts[i] = d
	}
	return drafts, batch, ""
}

func strictUnmarshal(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("more than one JSON value")
	}
	return nil
}

func (p *publishing) draft(r publishRequest) (events.Draft, string) {
	var d events.Draft
	switch {
	case r.Type == nil || *r.Type == "":
		return d, "type is required: name what happened, such as \"alarm.raised\""
	case len(*r.Type) > events.MaxTypeLen:
		return d, fmt.Sprintf("type is %d bytes; at most %d", len(*r.Type), events.MaxTypeLen)
	case !events.ValidType(*r.Type):
		return d, "type may hold letters, digits and . _ : / - only"
	case *r.Type == events.ResetType:
		return d, "type \"reset\" is the stream's own, telling a client to resynchronise; name the event otherwise"
	}
	d.Type = *r.Type
	data := r.Data
	if len(data) == 0 {
		data = json.RawMessage("null")
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, data); err != nil {
		return d, "data is not valid JSON: " + err.Error()
	}
	if compact.Len() > p.maxData {
		return d, fmt.Sprintf("data is %d bytes of JSON; at most %d (-event-max-bytes)", compact.Len(), p.maxData)
	}
	d.Data = compact.Bytes()
	if r.To != nil {
		if r.To.IP == "" && r.To.Username == "" {
			return d, `to names no north server: give {"ip": "..."} or {"username": "..."}, or leave "to" out to address every one`
		}
		if r.To.IP != "" {
			// Read as a login's ip is, so that the two compare equal.
			ip, ok := wire.ParseIP([]byte(r.To.IP))
			if !ok {
				return d, fmt.Sprintf("to.ip %q is not an IP address", r.To.IP)
			}
			d.To.IP = ip
		}
		if len(r.To.Username) > wire.MaxUsernameLen {
			return d, fmt.Sprintf("to.username is %d bytes; usernames are at most %d", len(r.To.Username), wire.MaxUsernameLen)
		}
		d.To.Username = r.To.Username
	}
	return d, ""
}
