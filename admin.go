package main

import (
	"net/http"
	"net/http/pprof"

	"github.com/VictoriaMetrics/metrics"
)

// adminHandler serves the operator's endpoints on the admin listener, which
// is never one of the public subsystem ports.
func adminHandler(set *metrics.Set, subsystems []*subsystem, publish http.Handler, withPprof bool) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("POST /north/events", publish)
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		set.WritePrometheus(w)
		metrics.WriteProcessMetrics(w)
	})
	mux.HandleFunc("GET /north/servers", func(w http.ResponseWriter, r *http.Request) {
		serveNorthServers(w, r, subsystems)
	})
	mux.HandleFunc("GET /north/subscriptions", func(w http.ResponseWriter, r *http.Request) {
		serveSubscriptions(w, subsystems)
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
