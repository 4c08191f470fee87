package admin

import (
	"net/http"
	"strconv"
	"strings"

	"northd/internal/httpx"
	"northd/internal/store"
)

// /north/servers answers in pages: a registry of 65,536 north servers is
// megabytes of JSON, which no one wants in one response.
const (
	defaultServersPage = 100
	maxServersPage     = 10000
)

// NorthServers answers GET /north/servers: the first page of every
// subsystem, or with ?subsystem=NAME that subsystem's alone. A page's
// "next" is a cursor into its own subsystem, so ?after= goes with
// ?subsystem= (which may be left out where one subsystem is served).
func NorthServers(subsystems []Subsystem) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		limit := defaultServersPage
		if v := q.Get("limit"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > maxServersPage {
				httpx.WriteFailure(w, http.StatusBadRequest, 1, "limit must be a whole number from 1 to "+strconv.Itoa(maxServersPage))
				return
			}
			limit = n
		}
		selected := subsystems
		if name := q.Get("subsystem"); name != "" {
			selected = nil
			for _, s := range subsystems {
				if s.Name == name {
					selected = []Subsystem{s}
				}
			}
			if selected == nil {
				httpx.WriteFailure(w, http.StatusNotFound, 1, httpx.NoSuchSubsystem(name, names(subsystems)))
				return
			}
		}
		var after store.Cursor
		if v := q.Get("after"); v != "" {
			if len(selected) != 1 {
				httpx.WriteFailure(w, http.StatusBadRequest, 1, "after= continues the pages of one subsystem: give subsystem=NAME with it (this instance serves "+strings.Join(names(subsystems), ", ")+")")
				return
			}
			var err error
			if after, err = store.ParseCursor(v); err != nil {
				httpx.WriteFailure(w, http.StatusBadRequest, 1, err.Error())
				return
			}
		}
		type subsystemReport struct {
			Name         string              `json:"name"`
			Listen       string              `json:"listen"`
			NorthServers []store.NorthServer `json:"north_servers"`
			Count        int                 `json:"count"`
			Next         string              `json:"next,omitempty"` // ?after= for the next page
		}
		report := struct {
			Subsystems []subsystemReport `json:"subsystems"`
		}{Subsystems: []subsystemReport{}}
		for _, s := range selected {
			sr := subsystemReport{Name: s.Name, Listen: s.ListenAddr()}
			// With a shared store, the whole fleet's view.
			page, err := s.Store.Page(r.Context(), after, limit)
			if err != nil { // store.ErrUnavailable, the only error a store returns
				w.Header().Set("Retry-After", "1")
				httpx.WriteFailure(w, http.StatusServiceUnavailable, 4, "the token store is unavailable; retry after the Retry-After seconds")
				return
			}
			sr.NorthServers, sr.Count = page.NorthServers, page.Count
			if page.Next != (store.Cursor{}) {
				sr.Next = page.Next.String()
			}
			report.Subsystems = append(report.Subsystems, sr)
		}
		writeIndented(w, report)
	})
}
