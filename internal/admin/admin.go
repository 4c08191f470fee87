// Package admin is the admin listener's face: the operator's views of
// every subsystem (its north servers, its webhook subscriptions), the
// metrics, the token the listener asks for (-admin-token-file) and the
// write deadline of each answer. It knows a subsystem by Subsystem alone;
// the routes that mount its handlers are northd's.
package admin

import (
	"encoding/json"
	"net/http"

	"github.com/VictoriaMetrics/metrics"

	"northd/internal/httpx"
	"northd/internal/push"
	"northd/internal/store"
)

// Subsystem is what the admin listener shows of one subsystem.
type Subsystem struct {
	Name string
	// ListenAddr is the address it listens on, with the real port.
	ListenAddr func() string
	Store      store.Store  // its tokens and north servers
	Push       *push.Pusher // its webhooks; nil with webhooks off
}

// Metrics answers GET /metrics: set's series, then the process's.
func Metrics(set *metrics.Set) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		set.WritePrometheus(w)
		metrics.WriteProcessMetrics(w)
	})
}

// Subscriptions answers GET /north/subscriptions on the admin listener:
// every subsystem's webhook subscriptions with their state, cursor, lag,
// last attempt and last error (never a secret).
func Subscriptions(subsystems []Subsystem) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		type report struct {
			Name          string      `json:"name"`
			Webhooks      bool        `json:"webhooks"` // -push-allow lists a network
			Subscriptions []push.View `json:"subscriptions"`
		}
		out := struct {
			Subsystems []report `json:"subsystems"`
		}{Subsystems: []report{}}
		for _, s := range subsystems {
			r := report{Name: s.Name, Webhooks: s.Push != nil, Subscriptions: []push.View{}}
			if s.Push != nil {
				r.Subscriptions = append(r.Subscriptions, s.Push.All()...)
			}
			out.Subsystems = append(out.Subsystems, r)
		}
		writeIndented(w, out)
	})
}

// writeIndented answers v as indented JSON, for a person to read.
func writeIndented(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", httpx.JSONType)
	w.Header().Set("Cache-Control", "no-store")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// names are the subsystems' names, for a person to choose from.
func names(subsystems []Subsystem) []string {
	names := make([]string, len(subsystems))
	for i, s := range subsystems {
		names[i] = s.Name
	}
	return names
}
