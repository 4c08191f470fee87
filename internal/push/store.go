package push

import (
	"context"
	"net/netip"
	"time"

	"northd/internal/events"
)

// Store keeps a subsystem's subscriptions, their cursors and who delivers
// for each: this process's (push/memory), or shared by every instance
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
