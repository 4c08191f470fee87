package events

import (
	"context"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
)

// Stream is one north server's open event stream. It is written by one
// goroutine at a time, the one that set writing, started when there is
// something to send and gone when there is not: an idle stream costs its
// connection and this struct.
type Stream struct {
	hub     *Hub
	token   [16]byte
	reader  Reader     // its north server: no Types, every event addressed to it
	connMu  sync.Mutex // conn is set by Serve, closed by drop
	conn    net.Conn
	resumed bool   // the client gave an id to resume from
	head    []byte // the response head, written first

	writing   atomic.Bool   // a goroutine owns the stream and writes it
	pending   atomic.Bool   // something new since the writer last looked
	live      atomic.Bool   // caught up once: from then on Queue bounds its lag
	sent      atomic.Uint64 // cursor.Seq, for the hub's lag check
	heartbeat atomic.Bool   // a heartbeat is due
	final     atomic.Bool   // shutting down: a last retry, then close
	dropped   atomic.Bool
	outlived  bool // its token ended: an event for a later login is next; owned by the writer
	cursor    ID   // the last event sent or skipped; owned by the writer
	buf       *[]byte
}

// StreamSpec is who opens a stream and where it starts.
type StreamSpec struct {
	Token    [16]byte
	IP       netip.Addr // the north server's, from its token
	Username []byte     // copied
	Tenure   Tenure     // its token's
	After    ID         // resume after this id; zero: from now on
	Resume   bool       // After was given
}

// maxWrite is about how much one write carries; a stream far behind
// catches up in writes of this size, reading the log maxEventsPerWrite
// events at a time.
const (
	maxWrite          = 64 << 10
	maxEventsPerWrite = 256
)

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, maxWrite+4096); return &b }}

// Open reserves a stream for spec, within the hub's bounds, with head the
// bytes of the response head to write first; Serve then sends it on its
// connection.
func (h *Hub) Open(spec StreamSpec, head []byte) (*Stream, error) {
	cursor := spec.After
	if !spec.Resume {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		now, err := h.Now(ctx)
		cancel()
		if err != nil {
			return nil, err
		}
		cursor = now
	}
	h.smu.Lock()
	defer h.smu.Unlock()
	if h.closing {
		return nil, ErrShuttingDown
	}
	if err := h.reserve(spec.Token); err != nil {
		return nil, err
	}
	s := &Stream{
		hub: h, token: spec.Token, reader: Reader{IP: spec.IP, Username: append([]byte(nil), spec.Username...), Tenure: spec.Tenure},
		resumed: spec.Resume, cursor: cursor, head: head,
	}
	s.sent.Store(s.cursor.Seq)
	// From now on: caught up from the start. A resumed stream is live
	// once it has caught up.
	s.live.Store(!spec.Resume)
	// Registered now, so that what comes before Serve moves its cursor
	// on too; the writer's until Serve first leaves it idle.
	s.writing.Store(true)
	h.streams[s] = struct{}{}
	h.m.opened.Inc()
	return s, nil
}

// reserve takes a place for a stream or a long poll on token, within
// MaxPerToken and MaxStreams; h.smu is held.
func (h *Hub) reserve(token [16]byte) error {
	switch {
	case h.perToken[token] >= h.o.MaxPerToken:
		h.m.refusedPerToken.Inc()
		return ErrTooManyForToken
	case h.reserved >= h.o.MaxStreams:
		h.m.refusedTotal.Inc()
		return ErrTooManyStreams
	}
	h.perToken[token]++
	h.reserved++
	return nil
}

// release gives back a place reserve took; h.smu is held.
func (h *Hub) release(token [16]byte) {
	h.reserved--
	if h.perToken[token]--; h.perToken[token] <= 0 {
		delete(h.perToken, token)
	}
}

// Serve sends the stream on conn, which it keeps: it writes what is due,
// leaves the stream idle and returns; the hub wakes it for what comes.
func (s *Stream) Serve(conn net.Conn) {
	s.connMu.Lock()
	s.conn = conn
	s.connMu.Unlock()
	if s.dropped.Load() {
		conn.Close() // closed before it was served
		return
	}
	s.run()
}

// wake has the stream's writer look at what is new: a new writer when none
// is at work, or the one at work once more before it stops (pending).
func (s *Stream) wake() {
	s.pending.Store(true)
	if s.writing.CompareAndSwap(false, true) {
		go s.run()
	}
}

// behind reports whether events the hub has read are still to be sent or
// skipped; only the writer may ask.
func (s *Stream) behind() bool {
	h := s.hub
	h.mu.RLock()
	head := h.cache.head
	h.mu.RUnlock()
	return s.cursor.Epoch == head.Epoch && s.cursor.Seq < head.Seq
}

// run writes while there is something to write; it owns the stream.
func (s *Stream) run() {
	h := s.hub
	for !s.dropped.Load() {
		s.pending.Store(false)
		if s.buf == nil {
			s.buf = bufPool.Get().(*[]byte)
		}
		buf := (*s.buf)[:0]
		buf = append(buf, s.head...)
		s.head = nil
		final := s.final.Load()
		beat := s.heartbeat.Swap(false)
		before := s.cursor
		buf, ok := s.fill(buf)
		if beat && len(buf) == 0 {
			buf = append(buf, Heartbeat...)
		}
		if final {
			buf = AppendRetry(buf, h.o.DrainRetry)
		}
		*s.buf = buf
		if len(buf) > 0 {
			s.conn.SetWriteDeadline(time.Now().Add(h.o.WriteTimeout))
			if _, err := s.conn.Write(buf); err != nil {
				s.drop(h.m.gone)
				return
			}
		}
		if final {
			s.drop(nil)
			return
		}
		if s.outlived {
			// What came before it is written; its client resumes
			// from there once it logs in again.
			s.drop(h.m.tokenEnded)
			return
		}
		behind := ok && s.behind()
		if ok && !behind && !s.live.Load() {
			s.live.Store(true)
		}
		if behind && s.cursor != before {
			continue // more to send, or to skip
		}
		bufPool.Put(s.buf)
		s.buf = nil
		s.writing.Store(false)
		if !ok || !s.pending.Load() || !s.writing.CompareAndSwap(false, true) {
			return
		}
	}
}

func (h *Hub) headEpoch() string {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.cache.head.Epoch
}

// fill appends the frames after the cursor for this stream, from the cache
// when it holds them, or else from the log, starting with a reset event
// when the log no longer keeps them. It reports false when the log could
// not be read; the stream tries again at the next wake or heartbeat.
func (s *Stream) fill(buf []byte) ([]byte, bool) {
	h := s.hub
	h.mu.RLock()
	if h.cache.covers(s.cursor) {
		var a appended
		buf, a = h.cache.appendAfter(buf, s.cursor, &s.reader, maxWrite, maxEventsPerWrite, false)
		h.mu.RUnlock()
		s.cursor, s.outlived = a.cursor, a.outlived
		if a.n > 0 && s.live.Load() {
			// Once per write, for its oldest event: the write's
			// worst. Per event it would cost a tenth of a busy
			// fan-out.
			h.m.latency.Update(float64(time.Now().UnixNano()-a.oldest) / 1e9)
		}
		s.delivered(a.n)
		return buf, true
	}
	h.mu.RUnlock()
	buf, a, err := h.appendFromLog(buf, s.cursor, &s.reader, maxEventsPerWrite, maxWrite, false)
	if err != nil {
		return buf, false
	}
	if s.resumed {
		s.resumed = false
		if a.reset {
			h.m.resumeReset.Inc()
		} else {
			h.m.resumeHit.Inc()
		}
	}
	s.cursor, s.outlived = a.cursor, a.outlived
	s.delivered(a.n)
	return buf, true
}

func (s *Stream) delivered(n int) {
	s.sent.Store(s.cursor.Seq)
	s.hub.m.delivered.Add(n)
	if s.resumed && n > 0 {
		s.resumed = false
		s.hub.m.resumeHit.Inc()
	}
}

// appendFromLog appends what the log holds after cursor that r wants, at
// most maxEvents and about limit bytes of dst, as frames or as JSON
// objects each followed by a comma, led by a reset when the log no longer
// keeps it.
func (h *Hub) appendFromLog(dst []byte, cursor ID, r *Reader, maxEvents, limit int, asJSON bool) ([]byte, appended, error) {
	a := appended{cursor: cursor}
	evs, next, reset, err := h.log.Read(context.Background(), cursor, maxEvents, 0, nil)
	if err != nil {
		return dst, a, err
	}
	if reset {
		oldest := ID{next.Epoch, next.Seq + 1}
		if len(evs) > 0 {
			oldest = evs[0].ID
		}
		// The reset carries the id just before the oldest kept: a
		// client that reconnects after it resumes at that oldest.
		reset := Event{ID: ID{oldest.Epoch, oldest.Seq - 1}, Type: ResetType, Time: time.Now(), Data: AppendResetJSON(nil, oldest)}
		if asJSON {
			dst = append(AppendEventJSON(dst, &reset, h.subsystem), ',')
		} else {
			dst = AppendEventFrame(dst, &reset, h.subsystem)
		}
		a.cursor, a.reset = reset.ID, true
	}
	for i := range evs {
		if len(dst) >= limit {
			return dst, a, nil // the rest next time
		}
		if r.Outlived(evs[i].To) {
			a.outlived = true
			return dst, a, nil
		}
		a.cursor = evs[i].ID
		if !r.Wants(evs[i].To, evs[i].Type) {
			continue
		}
		if asJSON {
			dst = append(AppendEventJSON(dst, &evs[i], h.subsystem), ',')
		} else {
			dst = AppendEventFrame(dst, &evs[i], h.subsystem)
		}
		if a.n == 0 {
			a.oldest = evs[i].Time.UnixNano()
		}
		a.n++
	}
	a.cursor = next
	return dst, a, nil
}

// drop closes the stream, once, counting it under c when not nil.
func (s *Stream) drop(c *metrics.Counter) {
	if !s.dropped.CompareAndSwap(false, true) {
		return
	}
	if c != nil {
		c.Inc()
	}
	s.connMu.Lock()
	if s.conn != nil {
		s.conn.Close()
	}
	s.connMu.Unlock()
	h := s.hub
	h.smu.Lock()
	delete(h.streams, s)
	h.release(s.token)
	closing := h.closing
	h.smu.Unlock()
	if closing {
		select {
		case h.gone <- struct{}{}:
		default:
		}
	}
}
