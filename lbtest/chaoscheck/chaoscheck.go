// Package chaoscheck holds a fault-injection run of northd's push (lbtest's
// TestChaos) to its promise, per webhook subscription and per event
// stream:
//
//   - every event addressed to it is delivered, or falls inside a gap that
//     a reset names (lost);
//   - order is kept (reordered);
//   - no id ever carries two different events (reused);
//   - no event reaches a north server it was not addressed to (leaked);
//   - a duplicate is allowed only under the same webhook-id (webhooks) or
//     the same event id (streams) (duplicated).
//
// It is written apart from the code under test on purpose: it imports
// nothing of northd, and works only from what the harness recorded, as a
// north server and an operator see it: what the producers published, to
// whom, and the ids the publishes answered; who logged in and out at each
// ip, and when; and what each receiver got (each webhook delivery's
// headers and body, each stream frame). Only docs/north-servers.md's wire contract is
// assumed: events and deliveries as JSON, webhook signatures as Standard
// Webhooks says, and ids as EPOCH-SEQ, ordered by SEQ within an epoch.
package chaoscheck

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// NorthServer is one north server: a username at an ip.
type NorthServer struct{ Username, IP string }

func (n NorthServer) String() string { return n.Username + "@" + n.IP }

// Target is a publish's "to": Username or IP, or neither for every north
// server.
type Target struct{ Username, IP string }

func (t Target) String() string {
	switch {
	case t.Username != "":
		return "username " + t.Username
	case t.IP != "":
		return "ip " + t.IP
	}
	return "all"
}

// Publish is one POST /north/events a producer sent, of one event whose
// data is {"k": Key}, a key no other publish carries.
type Publish struct {
	Key      string
	To       Target
	Sent     time.Time // the POST went out
	Answered time.Time // its answer came, or the producer gave up on it
	ID       string    // the id a 202 answered; "" when not acknowledged
}

// Transition is a login or a logout at an ip, as the harness made it:
// Holder is who holds the ip once it is done ("" after a logout). The
// request went out at Start and was answered at End.
type Transition struct {
	IP         string
	Holder     string
	Start, End time.Time
}

// Frame is one event as a stream received it, or as it stood in a
// webhook delivery's body.
type Frame struct {
	ID, Type string
	Key      string // its data's k, for the producers' events
	Oldest   string // a reset's data's oldest
	At       time.Time
}

// Stream is one north server's event stream, resumed with Last-Event-ID
// over every reconnection, and over logouts and logins. From Opened (its
// first answer 200) on it expects every event addressed to it.
type Stream struct {
	NorthServer
	Opened time.Time
	Frames []Frame
}

// Delivery is one webhook POST as its receiver got it, with the status the
// receiver answered (0: it never answered).
type Delivery struct {
	WebhookID, Timestamp, Signature string
	Body                            []byte
	Status                          int
	At                              time.Time
}

// Subscription is one webhook subscription and what its receiver got.
// From Created (its 201) on it expects every event addressed to it; when
// the receiver answered 410, at Ended, it ends and expects nothing more.
type Subscription struct {
	NorthServer
	Name       string
	Secret     string // whsec_…, from the 201
	Created    time.Time
	Ended      time.Time
	Deliveries []Delivery
}

// Run is everything a run recorded.
type Run struct {
	Publishes   []Publish
	Transitions []Transition
	Streams     []Stream
	Subs        []Subscription
}

// Report is what Check found. Examples holds the first few breaches of
// each kind, described for whoever debugs them.
type Report struct {
	Published, Unacknowledged   int // publishes answered 202, and not
	Deliveries, StreamEvents    int // webhook POSTs and stream frames received
	Resets                      int // resets received, on streams and webhooks
	Redelivered                 int // allowed duplicates (same webhook-id or event id)
	Lost, Reordered, Reused     int
	Leaked, Duplicated, BadSign int
	Examples                    map[string][]string
}

// Breaches is the number of breaches of every kind.
func (r *Report) Breaches() int {
	return r.Lost + r.Reordered + r.Reused + r.Leaked + r.Duplicated + r.BadSign
}

const examplesPerKind = 5

func (r *Report) breach(kind string, count *int, format string, args ...any) {
	*count++
	if r.Examples == nil {
		r.Examples = map[string][]string{}
	}
	if len(r.Examples[kind]) < examplesPerKind {
		r.Examples[kind] = append(r.Examples[kind], fmt.Sprintf(format, args...))
	}
}

// Summary is one line of totals.
func (r *Report) Summary() string {
	return fmt.Sprintf("%d events published (%d more unacknowledged), %d webhook deliveries, %d stream events, %d resets, %d allowed redeliveries; lost %d, reordered %d, reused %d, leaked %d, duplicated %d, bad signatures %d",
		r.Published, r.Unacknowledged, r.Deliveries, r.StreamEvents, r.Resets, r.Redelivered, r.Lost, r.Reordered, r.Reused, r.Leaked, r.Duplicated, r.BadSign)
}

// Details lists the examples of each kind of breach.
func (r *Report) Details() string {
	var b strings.Builder
	kinds := make([]string, 0, len(r.Examples))
	for k := range r.Examples {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	for _, k := range kinds {
		fmt.Fprintf(&b, "%s, the first:\n", k)
		for _, e := range r.Examples[k] {
			fmt.Fprintf(&b, "  %s\n", e)
		}
	}
	return b.String()
}

// channel is a stream or a subscription: what it took, in order.
type channel struct {
	name   string
	ns     NorthServer
	start  time.Time
	ended  time.Time // a subscription's 410
	frames []Frame   // events it took, resets included, in arrival order
	batch  []string  // each frame's webhook-id; "" on a stream
	webhk  bool
	// reached: the keys that reached it, taken or not (a webhook answered
	// 5xx reached its receiver all the same).
	reached map[string]bool
	took    map[string]bool
}

type id struct {
	epoch string
	seq   int64
	ok    bool
}

func parseID(s string) id {
	i := strings.LastIndexByte(s, '-')
	if i < 0 {
		return id{}
	}
	n, err := strconv.ParseInt(s[i+1:], 10, 64)
	return id{s[:i], n, err == nil}
}

type event struct {
	Type string          `json:"type"`
	ID   string          `json:"id"`
	Data json.RawMessage `json:"data"`
}

func frameOf(e event, at time.Time) Frame {
	f := Frame{ID: e.ID, Type: e.Type, At: at}
	var d struct {
		K      string `json:"k"`
		Oldest string `json:"oldest"`
	}
	json.Unmarshal(e.Data, &d)
	f.Key, f.Oldest = d.K, d.Oldest
	return f
}

// FrameOf reads one event's JSON (a stream frame's data) as a Frame.
func FrameOf(data []byte, at time.Time) (Frame, error) {
	var e event
	if err := json.Unmarshal(data, &e); err != nil {
		return Frame{}, err
	}
	return frameOf(e, at), nil
}

// signed reports whether d carries a signature of its body under secret.
func signed(d Delivery, secret string) bool {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil || len(key) == 0 {
		return false
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(d.WebhookID + "." + d.Timestamp + "."))
	mac.Write(d.Body)
	return slices.Contains(strings.Fields(d.Signature), "v1,"+base64.StdEncoding.EncodeToString(mac.Sum(nil)))
}

// Check holds run to the rules.
func Check(run Run) *Report {
	r := &Report{}
	pubs := map[string]*Publish{}
	idKey := map[string]string{} // event id → the key it carried first
	reusedIDs := map[string]bool{}
	carry := func(evID, key, where string) {
		if evID == "" || key == "" {
			return
		}
		if k, ok := idKey[evID]; !ok {
			idKey[evID] = key
		} else if k != key && !reusedIDs[evID] {
			reusedIDs[evID] = true
			r.breach("reused", &r.Reused, "id %s carried event %s, then event %s (%s)", evID, k, key, where)
		}
	}
	for i := range run.Publishes {
		p := &run.Publishes[i]
		pubs[p.Key] = p
		if p.ID == "" {
			r.Unacknowledged++
			continue
		}
		r.Published++
		carry(p.ID, p.Key, fmt.Sprintf("both answered to publishes, the second sent at %s", stamp(p.Sent)))
	}
	// An epoch's first sight orders epochs, which ids do not.
	firstSeen := map[string]time.Time{}
	seen := func(e string, at time.Time) {
		if t, ok := firstSeen[e]; !ok || at.Before(t) {
			firstSeen[e] = at
		}
	}
	for _, p := range run.Publishes {
		if p.ID != "" {
			seen(parseID(p.ID).epoch, p.Answered)
		}
	}

	var chans []*channel
	for _, s := range run.Streams {
		c := &channel{name: "stream of " + s.NorthServer.String(), ns: s.NorthServer, start: s.Opened, reached: map[string]bool{}, took: map[string]bool{}}
		for _, f := range s.Frames {
			r.StreamEvents++
			c.frames = append(c.frames, f)
			c.batch = append(c.batch, "")
			c.reached[f.Key], c.took[f.Key] = true, true
			carry(f.ID, f.Key, c.name)
		}
		chans = append(chans, c)
	}
	for _, s := range run.Subs {
		c := &channel{name: "subscription " + s.Name + " of " + s.NorthServer.String(), ns: s.NorthServer, start: s.Created, ended: s.Ended, webhk: true, reached: map[string]bool{}, took: map[string]bool{}}
		batches := map[string]string{} // webhook-id → its events' keys
		for _, d := range s.Deliveries {
			r.Deliveries++
			if !signed(d, s.Secret) {
				r.breach("bad signature", &r.BadSign, "%s: delivery %s at %s carries signature %q, not one of its body under the subscription's secret", c.name, d.WebhookID, stamp(d.At), d.Signature)
				continue
			}
			var evs []event
			if err := json.Unmarshal(d.Body, &evs); err != nil {
				r.breach("bad signature", &r.BadSign, "%s: delivery %s is not a JSON array of events: %q", c.name, d.WebhookID, d.Body)
				continue
			}
			if !s.Ended.IsZero() && d.At.After(s.Ended) {
				r.breach("leaked", &r.Leaked, "%s: delivery %s at %s, after the receiver answered 410 at %s", c.name, d.WebhookID, stamp(d.At), stamp(s.Ended))
			}
			keys := make([]string, len(evs))
			for i, e := range evs {
				f := frameOf(e, d.At)
				keys[i] = f.Type + ":" + f.Key
				carry(f.ID, f.Key, c.name+", delivery "+d.WebhookID)
				c.reached[f.Key] = true
			}
			joined := strings.Join(keys, ",")
			if prev, ok := batches[d.WebhookID]; ok && prev != joined {
				r.breach("reused", &r.Reused, "%s: webhook-id %s carried [%s], then [%s]", c.name, d.WebhookID, prev, joined)
			}
			batches[d.WebhookID] = joined
			if d.Status < 200 || d.Status > 299 {
				continue // the receiver did not take it: it comes again
			}
			for _, e := range evs {
				f := frameOf(e, d.At)
				c.frames = append(c.frames, f)
				c.batch = append(c.batch, d.WebhookID)
				c.took[f.Key] = true
			}
		}
		chans = append(chans, c)
	}

	type reset struct {
		last, oldest id
		at           time.Time
	}
	resets := map[*channel][]reset{}
	for _, c := range chans {
		var last id
		firstAt := map[string]int{} // key → index of its first frame
		var latest *Publish         // of the events taken so far, the one sent last
		for i, f := range c.frames {
			if f.Type == "reset" {
				r.Resets++
				o := parseID(f.Oldest)
				if o.ok {
					seen(o.epoch, f.At)
				}
				resets[c] = append(resets[c], reset{last, o, f.At})
				last = parseID(f.ID)
				continue
			}
			last = parseID(f.ID)
			p := pubs[f.Key]
			if p == nil {
				if f.Type != "subscription.verify" {
					r.breach("leaked", &r.Leaked, "%s: event %s of type %q, data key %q, which no producer published", c.name, f.ID, f.Type, f.Key)
				}
				continue
			}
			if j, ok := firstAt[f.Key]; ok {
				first := c.frames[j]
				sameBatch := false
				for k := j; k < i; k++ {
					if c.frames[k].Key == f.Key && c.batch[k] == c.batch[i] {
						sameBatch = true
					}
				}
				switch {
				case c.webhk && sameBatch, !c.webhk && first.ID == f.ID:
					r.Redelivered++
				case c.webhk:
					r.breach("duplicated", &r.Duplicated, "%s: event %s (id %s) taken under webhook-id %s, then again under %s", c.name, f.Key, f.ID, c.batch[j], c.batch[i])
				default:
					r.breach("duplicated", &r.Duplicated, "%s: event %s came as id %s, then again as id %s", c.name, f.Key, first.ID, f.ID)
				}
				continue
			}
			firstAt[f.Key] = i
			if p.ID == "" {
				continue // unacknowledged: its place in the order is unknown
			}
			if latest != nil && p.Answered.Before(latest.Sent) {
				r.breach("reordered", &r.Reordered, "%s: event %s (id %s, answered %s) came after %s (id %s, sent %s, once %s was answered)", c.name, p.Key, f.ID, stamp(p.Answered), latest.Key, latest.ID, stamp(latest.Sent), p.Key)
			}
			if latest == nil || p.Sent.After(latest.Sent) {
				latest = p
			}
		}
	}
	// inGap: the event of id e, answered at answered, falls inside the
	// gap reset g names: after the id received before it, and before the
	// oldest id it names (ids of a later epoch count as after; of an
	// earlier, as before), and published before the reset came.
	later := func(a, b id) bool { // a's epoch first seen after b's
		return firstSeen[a.epoch].After(firstSeen[b.epoch])
	}
	inGap := func(e id, answered time.Time, g reset) bool {
		if !e.ok || !answered.Before(g.at) {
			return false
		}
		after := !g.last.ok || (e.epoch == g.last.epoch && e.seq > g.last.seq) || (e.epoch != g.last.epoch && later(e, g.last))
		before := !g.oldest.ok || (e.epoch == g.oldest.epoch && e.seq < g.oldest.seq) || (e.epoch != g.oldest.epoch && later(g.oldest, e))
		return after && before
	}

	// Who a publish could be addressed to: the sets of north servers one
	// of which the server must have picked. Most have one; one to an ip
	// sent while that ip changed hands has a candidate for each holder it
	// may have seen (the harness cannot know which the server saw first).
	var universe []NorthServer
	inUniverse := map[NorthServer]bool{}
	for _, c := range chans {
		if !inUniverse[c.ns] {
			inUniverse[c.ns] = true
			universe = append(universe, c.ns)
		}
	}
	byIP := map[string][]Transition{}
	for _, t := range run.Transitions {
		byIP[t.IP] = append(byIP[t.IP], t)
	}
	for ip := range byIP {
		sort.Slice(byIP[ip], func(i, j int) bool { return byIP[ip][i].Start.Before(byIP[ip][j].Start) })
	}
	far := time.Unix(1<<40, 0)
	options := func(p *Publish) [][]NorthServer {
		switch {
		case p.To.Username != "":
			var o []NorthServer
			for _, n := range universe {
				if n.Username == p.To.Username {
					o = append(o, n)
				}
			}
			return [][]NorthServer{o}
		case p.To.IP == "":
			return [][]NorthServer{universe}
		}
		a, b := p.Sent, p.Answered
		if p.ID == "" {
			b = far // unacknowledged: it may have been carried out later
		}
		ts := byIP[p.To.IP]
		var out [][]NorthServer
		added := map[string]bool{}
		// State k holds from transition k-1's start to transition k's end.
		for k := 0; k <= len(ts); k++ {
			from, to := time.Time{}, far
			holder := ""
			if k > 0 {
				from, holder = ts[k-1].Start, ts[k-1].Holder
			}
			if k < len(ts) {
				to = ts[k].End
			}
			if to.Before(a) || from.After(b) {
				continue
			}
			// Held by no one: the next north server to log in there.
			for j := k; holder == "" && j < len(ts); j++ {
				holder = ts[j].Holder
			}
			if added[holder] {
				continue
			}
			added[holder] = true
			if holder == "" {
				out = append(out, nil)
			} else {
				out = append(out, []NorthServer{{holder, p.To.IP}})
			}
		}
		return out
	}
	// A north server logged out at the end has its events still waiting
	// for its next login: it only owes those that came before one it took.
	outAtEnd := func(n NorthServer) bool {
		ts := byIP[n.IP]
		return len(ts) == 0 || ts[len(ts)-1].Holder != n.Username
	}
	// lastSent: of the acknowledged events c took, when the last was sent.
	lastSent := map[*channel]time.Time{}
	for _, c := range chans {
		for _, f := range c.frames {
			if q := pubs[f.Key]; q != nil && q.ID != "" && q.Sent.After(lastSent[c]) {
				lastSent[c] = q.Sent
			}
		}
	}
	// owes: c must have taken p.
	owes := func(c *channel, p *Publish) bool {
		if p.ID == "" || p.Sent.Before(c.start) {
			return false
		}
		if !c.ended.IsZero() || outAtEnd(c.ns) {
			if !lastSent[c].After(p.Answered) {
				return false
			}
		}
		e := parseID(p.ID)
		for _, g := range resets[c] {
			if inGap(e, p.Answered, g) {
				return false
			}
		}
		return true
	}
	byNS := map[NorthServer][]*channel{}
	for _, c := range chans {
		byNS[c.ns] = append(byNS[c.ns], c)
	}
	for i := range run.Publishes {
		p := &run.Publishes[i]
		reached := map[NorthServer]bool{}
		for _, c := range chans {
			if c.reached[p.Key] {
				reached[c.ns] = true
			}
		}
		// Pick the option that explains the most: every north server it
		// reached inside it, then the fewest missing.
		best, bestLeaks, bestLost := []NorthServer(nil), -1, 0
		var bestMissing []*channel
		for _, o := range options(p) {
			in := map[NorthServer]bool{}
			for _, n := range o {
				in[n] = true
			}
			leaks := 0
			for n := range reached {
				if !in[n] {
					leaks++
				}
			}
			var missing []*channel
			for _, n := range o {
				for _, c := range byNS[n] {
					if !c.took[p.Key] && owes(c, p) {
						missing = append(missing, c)
					}
				}
			}
			if bestLeaks < 0 || leaks < bestLeaks || (leaks == bestLeaks && len(missing) < bestLost) {
				best, bestLeaks, bestLost, bestMissing = o, leaks, len(missing), missing
			}
		}
		in := map[NorthServer]bool{}
		for _, n := range best {
			in[n] = true
		}
		for _, c := range chans {
			if c.reached[p.Key] && !in[c.ns] {
				r.breach("leaked", &r.Leaked, "%s got event %s (id %s) published to %s at %s–%s, addressed to %v", c.name, p.Key, p.ID, p.To, stamp(p.Sent), stamp(p.Answered), names(options(p)))
			}
		}
		for _, c := range bestMissing {
			r.breach("lost", &r.Lost, "%s never took event %s (id %s) published to %s at %s–%s, and no reset names it (%s)", c.name, p.Key, p.ID, p.To, stamp(p.Sent), stamp(p.Answered), around(c, p, pubs))
		}
	}
	return r
}

// around describes what c took around p: the last event before it and
// the first after it, in publish order.
func around(c *channel, p *Publish, pubs map[string]*Publish) string {
	var before, after string
	var bt, at time.Time
	for _, f := range c.frames {
		q := pubs[f.Key]
		switch {
		case f.Type == "reset":
		case q == nil || q.ID == "":
		case q.Answered.Before(p.Sent) && (before == "" || q.Sent.After(bt)):
			before, bt = f.ID, q.Sent
		case q.Sent.After(p.Answered) && (after == "" || q.Sent.Before(at)):
			after, at = f.ID, q.Sent
		}
	}
	return fmt.Sprintf("it took %q before it and %q after; %d resets", before, after, countResets(c))
}

func countResets(c *channel) int {
	n := 0
	for _, f := range c.frames {
		if f.Type == "reset" {
			n++
		}
	}
	return n
}

func names(opts [][]NorthServer) string {
	var s []string
	for _, o := range opts {
		if len(o) == 0 {
			s = append(s, "no one")
			continue
		}
		var ns []string
		for _, n := range o {
			ns = append(ns, n.String())
		}
		s = append(s, strings.Join(ns, "+"))
	}
	return strings.Join(s, " or ")
}

func stamp(t time.Time) string { return t.Format("15:04:05.000") }
