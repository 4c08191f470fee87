package push

import (
	"context"
	"net/netip"
	"sync"
	"time"

	"northd/internal/events"
)

// Store keeps a subsystem's subscriptions, their cursors and who delivers
// for each: this process's (MemoryStore), or shared by every instance
// (push/redis), where a lease makes one instance at a time deliver for a
// subscription, and the next take over when it dies.
type Store interface {
	// Create adds r with its cursor, unless its north server holds
	// perOwner subscriptions already or the subsystem max (ErrTooMany).
	Create(ctx context.Context, r *Record, cursor events.ID, perOwner, max int) error
	// Update replaces r's settings (secrets, disabled); false when it
	// is gone.
	Update(ctx context.Context, r *Record) (bool, error)
	// Delete removes a subscription, its cursor and its lease.
	Delete(ctx context.Context, id string) (bool, error)
	// List is every subscription of the subsystem.
	List(ctx context.Context) ([]*Record, error)
	// Cursor is the last event delivered (or passed over) for id, and
	// the end of its pending batch (the zero ID: none), which Pending
	// fixed before its first attempt.
	Cursor(ctx context.Context, id string) (cursor, pending events.ID, found bool, err error)
	// Pending records end as the last event of id's next batch, unless
	// one is recorded already, and answers the end recorded, only while
	// holder holds its lease and the cursor is still from (or behind it,
	// in from's epoch: the store lost the later cursor, which it puts
	// back, dropping what was recorded for the older one): every attempt
	// of the batch, on any instance, posts the events up to it under the
	// same webhook-id.
	Pending(ctx context.Context, id, holder string, from, end events.ID) (events.ID, bool, error)
	// Lease takes, or renews, the right to deliver for id for ttl, for
	// holder; false while another holds it.
	Lease(ctx context.Context, id, holder string, ttl time.Duration) (bool, error)
	// Advance moves id's cursor from from to to, only while holder
	// holds its lease and the cursor is still from (or behind it, as for
	// Pending), and clears its
	// pending batch and its failing time: a 2xx took the batch. The
	// cursor's check fences an instance that stalled past its lease
	// while another delivered and let the lease lapse: renewing it, the
	// stalled one would otherwise move the cursor back to its own.
	Advance(ctx context.Context, id, holder string, from, to events.ID) (bool, error)
	// Failing records that id's deliveries fail since since, unless a
	// failure since the last Advance is recorded already, and answers
	// the time recorded, only while holder holds its lease: the
	// -push-disable-after clock goes on across a lease handover.
	Failing(ctx context.Context, id, holder string, since time.Time) (time.Time, bool, error)
	// ClearFailing forgets id's failing time, whoever holds its lease:
	// its north server enabled it again, and -push-disable-after runs
	// from its next failure.
	ClearFailing(ctx context.Context, id string) error
}

// Record is a subscription as a store keeps it.
type Record struct {
	ID       string     `json:"id"`
	Username string     `json:"username"`
	IP       netip.Addr `json:"ip"`
	URL      string     `json:"url"`
	Types    []string   `json:"types"`
	Created  time.Time  `json:"created"`
	Secrets  []Secret   `json:"secrets"` // the newest first
	Disabled bool       `json:"disabled"`
}

// Secret is a signing key; an old one signs until Until, after a rotation.
type Secret struct {
	Key   []byte    `json:"key"`
	Until time.Time `json:"until,omitzero"`
}

// MemoryStore keeps subscriptions in this process, gone when it stops.
// Its leases work as the shared store's do, though one process holds them
// all: the two pass one conformance suite (push/pushtest).
type MemoryStore struct {
	mu      sync.Mutex
	records map[string]*Record
	cursors map[string]events.ID
	leases  map[string]lease
	failing map[string]time.Time
	pending map[string]events.ID
}

type lease struct {
	holder string
	until  time.Time
}

// NewMemoryStore is an empty MemoryStore.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{records: map[string]*Record{}, cursors: map[string]events.ID{}, leases: map[string]lease{}, failing: map[string]time.Time{}, pending: map[string]events.ID{}}
}

func (m *MemoryStore) Create(_ context.Context, r *Record, cursor events.ID, perOwner, max int) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	mine := 0
	for _, o := range m.records {
		if o.Username == r.Username && o.IP == r.IP {
			mine++
		}
	}
	if mine >= perOwner || len(m.records) >= max {
		return ErrTooMany
	}
	c := *r
	m.records[r.ID] = &c
	m.cursors[r.ID] = cursor
	return nil
}

func (m *MemoryStore) Update(_ context.Context, r *Record) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.records[r.ID] == nil {
		return false, nil
	}
	c := *r
	m.records[r.ID] = &c
	return true, nil
}

func (m *MemoryStore) Delete(_ context.Context, id string) (bool, error) {
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

func (m *MemoryStore) List(context.Context) ([]*Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]*Record, 0, len(m.records))
	for _, r := range m.records {
		c := *r
		out = append(out, &c)
	}
	return out, nil
}

func (m *MemoryStore) Cursor(_ context.Context, id string) (events.ID, events.ID, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, found := m.cursors[id]
	return c, m.pending[id], found, nil
}

func (m *MemoryStore) Pending(_ context.Context, id, holder string, from, end events.ID) (events.ID, bool, error) {
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

func (m *MemoryStore) Lease(_ context.Context, id, holder string, ttl time.Duration) (bool, error) {
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

func (m *MemoryStore) Advance(_ context.Context, id, holder string, from, to events.ID) (bool, error) {
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

func (m *MemoryStore) Failing(_ context.Context, id, holder string, since time.Time) (time.Time, bool, error) {
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

func (m *MemoryStore) ClearFailing(_ context.Context, id string) error {
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
func (m *MemoryStore) holds(id, holder string) bool {
	l, held := m.leases[id]
	return held && l.holder == holder && time.Now().Before(l.until)
}
