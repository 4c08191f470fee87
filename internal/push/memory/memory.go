// Package memory keeps a subsystem's webhook subscriptions, their cursors
// and delivery leases in this process alone, lost on restart, for a northd
// that runs on its own (-store memory). push/redis is the shared one, for
// many instances; both keep to push.Store and pass push/pushtest.
package memory

import (
	"context"
	"sync"
	"time"

	"northd/internal/events"
	"northd/internal/push"
)

// Store keeps subscriptions in this process, gone when it stops.
// Its leases work as the shared store's do, though one process holds them
// all: the two pass one conformance suite (push/pushtest).
type Store struct {
	mu      sync.Mutex
	records map[string]*push.Record
	cursors map[string]events.ID
	leases  map[string]lease
	failing map[string]time.Time
	pending map[string]events.ID
}

type lease struct {
	holder string
	until  time.Time
}

var _ push.Store = (*Store)(nil)

// New is an empty Store.
func New() *Store {
	return &Store{records: map[string]*push.Record{}, cursors: map[string]events.ID{}, leases: map[string]lease{}, failing: map[string]time.Time{}, pending: map[string]events.ID{}}
}

func (m *Store) Create(_ context.Context, r *push.Record, cursor events.ID, perOwner, max int) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	mine := 0
	for _, o := range m.records {
		if o.Username == r.Username && o.IP == r.IP {
			mine++
		}
	}
	if mine >= perOwner || len(m.records) >= max {
		return push.ErrTooMany
	}
	c := *r
	m.records[r.ID] = &c
	m.cursors[r.ID] = cursor
	return nil
}

func (m *Store) Update(_ context.Context, r *push.Record) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.records[r.ID] == nil {
		return false, nil
	}
	c := *r
	m.records[r.ID] = &c
	return true, nil
}

func (m *Store) Delete(_ context.Context, id string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, found := m.records[id]
	delete(m.records, id)
	delete(m.cursors, id)
	delete(m.leases, id)
	delete(m.failing, id)
	delete(m.pending, id)
	return found, nil
}

func (m *Store) List(context.Context) ([]*push.Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]*push.Record, 0, len(m.records))
	for _, r := range m.records {
		c := *r
		out = append(out, &c)
	}
	return out, nil
}

func (m *Store) Cursor(_ context.Context, id string) (events.ID, events.ID, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, found := m.cursors[id]
	return c, m.pending[id], found, nil
}

func (m *Store) Pending(_ context.Context, id, holder string, from, end events.ID) (events.ID, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.holds(id, holder) || m.cursors[id] != from && !behind(m.cursors[id], from) {
		return events.ID{}, false, nil
	}
	if m.cursors[id] != from { // see behind
		m.cursors[id] = from
		delete(m.pending, id)
	}
	if e, found := m.pending[id]; found {
		return e, true, nil
	}
	m.pending[id] = end
	return end, true, nil
}

func (m *Store) Lease(_ context.Context, id, holder string, ttl time.Duration) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, found := m.records[id]; !found {
		return false, nil
	}
	now := time.Now()
	if l, held := m.leases[id]; held && l.holder != holder && now.Before(l.until) {
		return false, nil
	}
	m.leases[id] = lease{holder, now.Add(ttl)}
	return true, nil
}

func (m *Store) Advance(_ context.Context, id, holder string, from, to events.ID) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.holds(id, holder) || m.cursors[id] != from && !behind(m.cursors[id], from) {
		return false, nil
	}
	m.cursors[id] = to
	delete(m.failing, id)
	delete(m.pending, id)
	return true, nil
}

func (m *Store) Failing(_ context.Context, id, holder string, since time.Time) (time.Time, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.holds(id, holder) {
		return time.Time{}, false, nil
	}
	if t, found := m.failing[id]; found {
		return t, true, nil
	}
	m.failing[id] = since
	return since, true, nil
}

func (m *Store) ClearFailing(_ context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.failing, id)
	return nil
}

// behind reports whether the cursor stored is before the cursor from, in
// from's epoch (or the zero cursor): a shared store that came back with
// older data holds such a cursor, and the holder's own, which the store
// took before it lost it, is then the truth (a memory store never loses
// one, but keeps to the rule the shared one does).
func behind(stored, from events.ID) bool {
	if stored.IsZero() {
		return !from.IsZero()
	}
	return stored.Epoch == from.Epoch && stored.Seq < from.Seq
}

// holds reports whether holder holds id's lease now; under m.mu.
func (m *Store) holds(id, holder string) bool {
	l, held := m.leases[id]
	return held && l.holder == holder && time.Now().Before(l.until)
}
