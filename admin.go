package main

import (
	"encoding/json"
	"net/http"
	"net/http/pprof"
	"strconv"

	"github.com/VictoriaMetrics/metrics"
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
		limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
		type subsystemReport struct {
			Name         string              `json:"name"`
			Listen       string              `json:"listen"`
			NorthServers []northServerReport `json:"north_servers"`
			Count        int                 `json:"count"`
		}
		report := struct {
			Subsystems []subsystemReport `json:"subsystems"`
		}{Subsystems: []subsystemReport{}}
		for _, s := range subsystems {
			sr := subsystemReport{Name: s.name, Listen: s.listenAddr()}
			if s.store != nil {
				// The whole fleet's view, from the shared store.
				var err error
				if sr.NorthServers, sr.Count, err = s.store.northServers(r.Context(), s.keys, limit); err != nil {
					http.Error(w, "the store is unavailable: "+err.Error(), http.StatusServiceUnavailable)
					return
				}
			} else {
				sr.NorthServers = s.registry.appendNewestFirst([]northServerReport{}, limit)
				sr.Count = s.registry.count()
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
