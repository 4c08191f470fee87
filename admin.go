package main

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/pprof"
	"strconv"

	"github.com/VictoriaMetrics/metrics"
)

// /north/servers answers in pages: a registry of 65,536 north servers is
// megabytes of JSON, which no one wants in one response.
const (
	defaultServersPage = 100
	maxServersPage     = 10000
)

// adminHandler serves the operator's endpoints on the admin listener, which
// is never one of the public subsystem ports.
func adminHandler(set *metrics.Set, subsystems []*subsystem, withPprof bool) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		set.WritePrometheus(w)
		metrics.WriteProcessMetrics(w)
	})
	mux.HandleFunc("GET /north/servers", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		limit := defaultServersPage
		if v := q.Get("limit"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > maxServersPage {
				http.Error(w, "limit must be a whole number from 1 to "+strconv.Itoa(maxServersPage), http.StatusBadRequest)
				return
			}
			limit = n
		}
		after := q.Get("after")
		type subsystemReport struct {
			Name         string              `json:"name"`
			Listen       string              `json:"listen"`
			NorthServers []northServerReport `json:"north_servers"`
			Count        int                 `json:"count"`
			Next         string              `json:"next,omitempty"` // ?after= for the next page
		}
		report := struct {
			Subsystems []subsystemReport `json:"subsystems"`
		}{Subsystems: []subsystemReport{}}
		for _, s := range subsystems {
			sr := subsystemReport{Name: s.name, Listen: s.listenAddr()}
			var err error
			if s.store != nil {
				// The whole fleet's view, from the shared store.
				sr.NorthServers, sr.Count, sr.Next, err = s.store.northServers(r.Context(), s.keys, after, limit)
				if errors.Is(err, errStoreUnavailable) {
					http.Error(w, "the store is unavailable; retry", http.StatusServiceUnavailable)
					return
				}
			} else {
				var cursor, next pageCursor
				if after != "" {
					cursor, err = parsePageCursor(after)
				}
				if err == nil {
					sr.NorthServers, next = s.registry.page(cursor, limit)
					sr.Count = s.registry.count()
					if next.lastLogin != 0 {
						sr.Next = next.String()
					}
				}
			}
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			report.Subsystems = append(report.Subsystems, sr)
		}
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(report)
	})
	if withPprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return mux
}
