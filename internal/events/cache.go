package events

// cache is a hub's newest events, each encoded once: as its stream frame
// and as its JSON, for every stream and long poll to copy. It is a ring
// bounded in events and in bytes; what falls out is read from the log.
type cache struct {
	epoch    string
	first    uint64 // the seq of the oldest entry, or head.Seq+1 with none
	head     ID     // the last event the hub has read
	ring     []cached
	start, n int
	bytes    int
	maxBytes int
}

type cached struct {
	seq       uint64
	to        Target
	typ       string
	published int64  // unix nanoseconds
	frame     []byte // "id: …\nevent: …\ndata: {…}\n\n"
	json      []byte // the event's JSON, in the same allocation
}

func (c *cache) init(events, bytes int) {
	c.ring = make([]cached, max(events, 1))
	c.maxBytes = bytes
}

// reset empties the cache, the hub having read up to head.
func (c *cache) reset(head ID) {
	clear(c.ring)
	c.epoch, c.head, c.first = head.Epoch, head, head.Seq+1
	c.start, c.n, c.bytes = 0, 0, 0
}

// add appends ev, the event after c.head, evicting the oldest as needed.
func (c *cache) add(ev *Event, subsystem string) {
	if ev.ID.Epoch != c.epoch || ev.ID.Seq != c.head.Seq+1 {
		// The first event of a log that had none, or after a
		// reset: the cache starts at it.
		c.reset(ID{ev.ID.Epoch, ev.ID.Seq - 1})
	}
	buf := AppendEventFrame(make([]byte, 0, encodedSize(ev, subsystem)), ev, subsystem)
	frameLen := len(buf)
	buf = AppendEventJSON(buf, ev, subsystem)
	size := len(buf)
	for c.n > 0 && (c.n == len(c.ring) || c.bytes+size > c.maxBytes) {
		old := &c.ring[c.start]
		c.bytes -= len(old.frame) + len(old.json)
		*old = cached{}
		c.start = (c.start + 1) % len(c.ring)
		c.n--
		c.first++
	}
	c.ring[(c.start+c.n)%len(c.ring)] = cached{
		seq: ev.ID.Seq, to: ev.To, typ: ev.Type, published: ev.Time.UnixNano(),
		frame: buf[:frameLen:frameLen], json: buf[frameLen:],
	}
	c.n++
	c.bytes += size
	c.head = ev.ID
}

// encodedSize is what ev's frame and JSON take together, so that add
// allocates them once: grown from nothing they took seven allocations,
// most of a busy hub's garbage and so of its GCs, which the streams' tail
// latency waits behind. The frame holds the id twice and the type twice,
// the JSON each once more; the subsystem and the data come once in each;
// the fixed text with five seqs of up to 20 digits is under 320 bytes. A
// type or subsystem that needs escaping only grows it.
func encodedSize(ev *Event, subsystem string) int {
	return 3*(len(ev.ID.Epoch)+len(ev.Type)) + 2*(len(subsystem)+len(ev.Data)) + 320
}

// covers reports whether every event after cursor is in the cache (or
// is yet to come to it).
func (c *cache) covers(cursor ID) bool {
	return cursor.Epoch == c.epoch && cursor.Seq+1 >= c.first && cursor.Seq <= c.head.Seq
}

// appended is what an append of the events after a cursor did.
type appended struct {
	cursor ID    // the last event passed over, appended or not
	n      int   // events appended
	oldest int64 // the first appended event's publish time, unix ns; 0 when none
	reset  bool  // led by a reset event: the log no longer kept the cursor
	// outlived: it stopped before an event for a later login at the
	// reader's ip (Reader.Outlived).
	outlived bool
}

// appendAfter appends, up to about limit bytes and at most maxEvents, the
// frames (or the JSON objects, each followed by a comma) of the events
// after cursor that r wants. The cache must cover cursor.
func (c *cache) appendAfter(dst []byte, cursor ID, r *Reader, limit, maxEvents int, asJSON bool) ([]byte, appended) {
	a := appended{cursor: cursor}
	for i := int(cursor.Seq + 1 - c.first); i < c.n && len(dst) < limit && a.n < maxEvents; i++ {
		e := &c.ring[(c.start+i)%len(c.ring)]
		if r.Outlived(e.to) {
			a.outlived = true
			break
		}
		a.cursor.Seq = e.seq
		if !r.Wants(e.to, e.typ) {
			continue
		}
		if asJSON {
			dst = append(append(dst, e.json...), ',')
		} else {
			dst = append(dst, e.frame...)
		}
		if a.n == 0 {
			a.oldest = e.published
		}
		a.n++
	}
	return dst, a
}
