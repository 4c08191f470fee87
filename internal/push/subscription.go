package push

import (
	"context"
	"sync"
	"time"

	"northd/internal/events"
)

// State is where a subscription's deliveries stand.
type State uint8

const (
	Active   State = iota
	Paused         // its north server holds no live token: delivery waits for its next login
	Disabled       // failing longer than -push-disable-after: its north server may enable it again
	stateCount
)

var stateNames = [stateCount]string{"active", "paused", "disabled"}

func (s State) String() string { return stateNames[s] }

// Subscription is one north server's webhook: where its events go.
type Subscription struct {
	ID      string
	Owner   Owner
	URL     string
	Types   []string
	Created time.Time

	reader events.Reader
	ctx    context.Context // ends when the subscription does
	cancel context.CancelFunc
	wake   chan struct{} // an enable

	mu           sync.Mutex
	secrets      []signingKey // the newest first
	cursor       events.ID    // the last event delivered (or skipped, not being for it)
	state        State
	attempt      int       // failed attempts in a row
	failingSince time.Time // the first of them
	lastAttempt  time.Time
	lastStatus   int
	lastError    string
	deliveries   uint64 // batches taken
}

// signingKey is a secret's key; an old one signs until until, after a
// rotation.
type signingKey struct {
	key   []byte
	until time.Time
}

// View is a subscription as its north server and the operator see it:
// never its secret.
type View struct {
	ID           string    `json:"id"`
	Username     string    `json:"username"`
	IP           string    `json:"ip"`
	URL          string    `json:"url"`
	Types        []string  `json:"types"`
	State        string    `json:"state"`
	Cursor       string    `json:"cursor"`
	Lag          uint64    `json:"lag"` // events published after the cursor
	Created      time.Time `json:"created"`
	LastAttempt  time.Time `json:"last_attempt,omitzero"`
	LastStatus   int       `json:"last_status,omitempty"`
	LastError    string    `json:"last_error,omitempty"`
	FailingSince time.Time `json:"failing_since,omitzero"`
	Deliveries   uint64    `json:"deliveries"` // batches a 2xx took
}

func (s *Subscription) view(hub *events.Hub) View {
	head, _ := hub.Now(context.Background())
	s.mu.Lock()
	defer s.mu.Unlock()
	v := View{
		ID: s.ID, Username: s.Owner.Username, IP: s.Owner.IP.String(), URL: s.URL, Types: s.Types,
		State: s.state.String(), Cursor: s.cursor.String(), Created: s.Created,
		LastAttempt: s.lastAttempt, LastStatus: s.lastStatus, LastError: s.lastError,
		FailingSince: s.failingSince, Deliveries: s.deliveries,
	}
	if v.Types == nil {
		v.Types = []string{}
	}
	if head.Epoch == s.cursor.Epoch && head.Seq > s.cursor.Seq {
		v.Lag = head.Seq - s.cursor.Seq
	}
	return v
}

// keys are the keys that sign now: the newest, and an old one within
// its overlap.
func (s *Subscription) keys(now time.Time) [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	var keys [][]byte
	for _, k := range s.secrets {
		if k.until.IsZero() || now.Before(k.until) {
			keys = append(keys, k.key)
		}
	}
	return keys
}
