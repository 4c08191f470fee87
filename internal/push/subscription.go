package push

import (
	"context"
	"slices"
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

// Subscription is one north server's webhook on this instance: where its
// events go, and how its deliveries stand here.
type Subscription struct {
	ID      string
	Owner   Owner
	URL     string
	Types   []string
	Created time.Time

	reader events.Reader
	ctx    context.Context // ends when the subscription does, here
	cancel context.CancelFunc
	wake   chan struct{} // an enable

	mu           sync.Mutex
	secrets      []Secret  // the newest first
	disabled     bool      // failing past -push-disable-after, on whichever instance
	cursor       events.ID // the last event delivered (or skipped, not being for it)
	state        State     // Active or Paused, here
	holding      bool      // this instance holds the lease and delivers
	attempt      int       // failed attempts in a row
	failingSince time.Time // the first of them
	lastAttempt  time.Time
	lastStatus   int
	lastError    string
	deliveries   uint64 // batches taken
}

func newSubscription(r *Record) *Subscription {
	s := &Subscription{ID: r.ID, Owner: Owner{Username: r.Username, IP: r.IP}, URL: r.URL, Types: r.Types, Created: r.Created, wake: make(chan struct{}, 1)}
	s.reader = events.Reader{IP: r.IP, Username: []byte(r.Username), Types: r.Types}
	s.apply(r)
	return s
}

// apply takes r's settings, which may change: secrets and disabled. An
// enable, here or on another instance, forgets the failures before it.
func (s *Subscription) apply(r *Record) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.secrets = slices.Clone(r.Secrets)
	if s.disabled && !r.Disabled {
		s.failingSince, s.attempt = time.Time{}, 0
	}
	s.disabled = r.Disabled
}

// record is s as its store keeps it.
func (s *Subscription) record() *Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	return &Record{ID: s.ID, Username: s.Owner.Username, IP: s.Owner.IP, URL: s.URL, Types: s.Types, Created: s.Created,
		Secrets: slices.Clone(s.secrets), Disabled: s.disabled}
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
	Delivering   bool      `json:"delivering_here"` // this instance holds its lease
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
		State: s.state.String(), Delivering: s.holding, Created: s.Created,
		LastAttempt: s.lastAttempt, LastStatus: s.lastStatus, LastError: s.lastError,
		FailingSince: s.failingSince, Deliveries: s.deliveries,
	}
	if s.cursor != (events.ID{}) {
		// Else "" before the first event taken, as a long poll's next
		// is before the first event read: the zero id has no spelling
		// an after= takes.
		v.Cursor = s.cursor.String()
	}
	if s.disabled {
		v.State = Disabled.String()
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
		if k.Until.IsZero() || now.Before(k.Until) {
			keys = append(keys, k.Key)
		}
	}
	return keys
}
