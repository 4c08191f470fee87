// Package events is the event log a subsystem's software publishes to and
// its north servers receive from: the push the seed promised. An event log
// keeps one subsystem's events in publishing order; two implementations
// exist, events/memory (this process alone, a bounded ring) and
// events/redis (a Redis Stream per subsystem, shared by every instance),
// and both pass the one conformance suite, events/eventstest.
package events

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Log is one subsystem's events, oldest first; safe for concurrent use.
type Log interface {
	// Publish appends drafts, in order and all or none, at now (a log
	// may use its own clock instead), and returns their ids. A
	// non-empty idempotencyKey already given within IdempotencyWindow
	// returns that call's ids with replayed true and publishes nothing.
	Publish(ctx context.Context, idempotencyKey string, drafts []Draft, now time.Time) (ids []ID, replayed bool, err error)
	// Read appends to dst, in order, up to max events published after
	// after, waiting up to wait for the first when there is none yet
	// (wait 0: not at all), and returns where to read from next: the
	// last event's id, or after when none came. When events after after
	// are no longer kept (trimmed away, or after is of another epoch, or
	// ahead of the log) it reads from the oldest event kept instead and
	// says reset, never silently; next is then just before that oldest
	// event. A zero after reads from the oldest kept, without a reset.
	Read(ctx context.Context, after ID, max int, wait time.Duration, dst []Event) (events []Event, next ID, reset bool, err error)
	// Stats reports how many events are kept, the oldest kept, and the
	// last published (zero IDs for an empty log).
	Stats(ctx context.Context) (Stats, error)
	// Ready reports whether the log answers, for /readyz.
	Ready() bool
}

// IdempotencyWindow is how long a publish's Idempotency-Key is remembered.
const IdempotencyWindow = 24 * time.Hour

// ErrUnavailable is the error of every call the log could not complete in
// time: the request gets 503 and may be retried.
var ErrUnavailable = errors.New("event log unavailable")

// Draft is an event to publish: what the publisher says.
type Draft struct {
	Type string // ValidType
	Data []byte // one compact JSON value
	To   Target
}

// MaxTypeLen bounds an event's type, which names a metric label and an
// SSE "event:" line.
const MaxTypeLen = 64

// ValidType reports whether t may be an event's type: 1 to MaxTypeLen
// letters, digits and . _ : / -, which fit an SSE "event:" line, a metric
// label and a file name alike. It is the one rule for every caller: the
// publisher, a subscription's types, and an entry another producer wrote
// to a shared log.
func ValidType(t string) bool {
	if len(t) == 0 || len(t) > MaxTypeLen {
		return false
	}
	for _, c := range []byte(t) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == ':' || c == '/' || c == '-') {
			return false
		}
	}
	return true
}

// Event is a published event, as every reader of the log sees it.
type Event struct {
	ID   ID
	Type string
	Time time.Time // when it was published
	To   Target
	Data []byte // one compact JSON value
}

// Target is who an event is for: every north server of the subsystem (the
// zero Target), the one at an ip, or those logged in as a username.
//
// An event for the north server at an ip is for the one there when it was
// published: publishing names the username holding the ip then, or, when
// no one held it, the next login there (NextLogin), so that a later
// holder under another username never reads it. A Target with IP alone
// (an entry a producer wrote into the Redis stream without to_next_login)
// is for whoever holds the ip when it is read.
type Target struct {
	IP       netip.Addr
	Username string
	// NextLogin is, for an event to an ip no one held, the count of the
	// next login there: one more than the count of logins the token
	// store gave (store.Tenure). The tenure that login began is the
	// event's addressee; 0 for none.
	NextLogin uint64
}

// Tenure is a reader's place among the logins at its ip: its token's
// store.Tenure.
type Tenure struct {
	Login uint64 // the count at its token's login
	Prev  uint64 // the count at the last login there of the username before
}

// Matches reports whether the north server at ip logged in as username,
// in tenure, is one the event is for.
func (t Target) Matches(ip netip.Addr, username []byte, tenure Tenure) bool {
	if t.IP.IsValid() && t.IP != ip {
		return false
	}
	if t.NextLogin != 0 && (t.NextLogin <= tenure.Prev || t.NextLogin > tenure.Login) {
		// Another username's login, or one before publishing (a
		// stream open since an earlier token), was the next.
		return false
	}
	return t.Username == "" || t.Username == string(username)
}

// Reader is who reads events: the north server at IP logged in as
// Username, in Tenure, which wants the events addressed to it, of the
// Types it names (none: every type).
type Reader struct {
	IP       netip.Addr
	Username []byte
	Tenure   Tenure
	Types    []string
}

// Outlived reports whether an event addressed to to is for a login at r's
// ip after r's own: r's token had ended when it was published (no one held
// the ip), and the next login there, maybe r's north server's own, is owed
// it. A reader must not pass over such an event, as its cursor would then
// carry the next login's resume past it: a stream closes before it, as for
// a token that ended, and a poll answers what came before it. A token
// issued before tenures were kept (Login 0) outlives none.
func (r *Reader) Outlived(to Target) bool {
	return to.NextLogin != 0 && r.Tenure.Login != 0 && to.IP == r.IP && to.NextLogin > r.Tenure.Login
}

// Wants reports whether an event of type typ addressed to to is for r.
func (r *Reader) Wants(to Target, typ string) bool {
	if !to.Matches(r.IP, r.Username, r.Tenure) {
		return false
	}
	if len(r.Types) == 0 {
		return true
	}
	for _, t := range r.Types {
		if t == typ {
			return true
		}
	}
	return false
}

// ID says where an event is in its log: Seq counts the events the log has
// published, one more with each; Epoch names the log, and changes when a
// log starts again empty (a restarted memory log, a Redis that lost its
// data), so that an id from before is never taken for one of the same
// number after.
type ID struct {
	Epoch string // letters and digits, 1 to 32 of them
	Seq   uint64
}

// IsZero reports whether id is the zero ID, before every event.
func (id ID) IsZero() bool { return id == ID{} }

// String is the id as clients see it: "EPOCH-SEQ".
func (id ID) String() string { return string(id.Append(nil)) }

// Append appends String's form of id to dst.
func (id ID) Append(dst []byte) []byte {
	dst = append(dst, id.Epoch...)
	dst = append(dst, '-')
	return strconv.AppendUint(dst, id.Seq, 10)
}

// ParseID reads an id String wrote.
func ParseID(s string) (ID, error) {
	epoch, seq, ok := strings.Cut(s, "-")
	n, err := strconv.ParseUint(seq, 10, 64)
	// One spelling per id: no sign, no leading zero.
	if !ok || err != nil || !validEpoch(epoch) || seq[0] == '+' || (seq[0] == '0' && len(seq) > 1) {
		return ID{}, fmt.Errorf("%q is not an event id: ids are the \"id\" of an event received before", s)
	}
	return ID{epoch, n}, nil
}

func validEpoch(s string) bool {
	if len(s) == 0 || len(s) > 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
			return false
		}
	}
	return true
}

// Stats describes a log.
type Stats struct {
	Len    int // events kept
	Oldest ID  // the oldest kept
	Head   ID  // the last published
}
