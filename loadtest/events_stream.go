package main

// One stream of loadtest events, whichever server sends it: opened on a
// connection of its own, read in whole reads, each line handed to the
// peer's parser, the events checked one after another.

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// lineKind is what a line of a stream is, to the checks.
type lineKind int

const (
	lineOther     lineKind = iota // blank, comment, retry, ping: nothing to check
	lineEvent                     // an event: its seq (or offset) and the publisher's t
	lineConnected                 // the server's connect push: the stream is live from seq on
	lineClosed                    // the server ended the stream, saying why
)

// streamLine is one parsed line. Epoch, when the server sends one, is a
// slice of the line, valid only while the line is.
type streamLine struct {
	kind  lineKind
	seq   int64 // event: its seq or offset; connected: the last one before the stream began
	t     int64 // event: the publisher's send time in Unix ns (0: none)
	n     int64 // event: the publisher's number for it, 0 up (-1: none)
	epoch []byte
	why   string // closed: the server's reason
}

// lineParser parses one line of a stream (without its '\n'); an error is a
// line the stream must not carry.
type lineParser func(line []byte) (streamLine, error)

// eventStream is one north server's stream, checking as it reads that the
// seqs come one after another, each once.
type eventStream struct {
	conn  net.Conn
	parse lineParser
	// needsConnect: the server says when the stream is live, with the
	// last seq before it (Centrifugo's connect push), so the very first
	// event is checked too; northd's streams are live once its metrics
	// count them, and their first seq is taken as it comes.
	needsConnect bool

	// The reading goroutine's own.
	started bool
	last    int64
	epoch   string
	// seen holds a bit for each publisher's number taken: every event
	// published comes once, whatever seq the server gives it.
	seen []uint64
	// The events taken since the last flush, and their publish-to-receive
	// time while it stays the same: a batch's events carry one t and are
	// read at one now, so a read of 100 of them is one histogram record,
	// not a hundred, which at 1,000 streams made this tool slower than
	// the server it measures.
	runNs, runN int64

	received  atomic.Int64
	mu        sync.Mutex
	hist      *hdrhistogram.Histogram // publish-to-receive, ns
	problem   string
	connected chan struct{} // closed at the connect push (needsConnect)
	ended     chan struct{} // closed when reading stops
}

// dialStream sends request (a whole HTTP/1.1 request) on a connection of
// its own to host and reads the response's head: 200 and an event stream,
// or an error saying what came instead.
func dialStream(host string, request []byte, parse lineParser, needsConnect bool) (*eventStream, *http.Response, error) {
	conn, err := net.DialTimeout("tcp", host, 10*time.Second)
	if err != nil {
		return nil, nil, err
	}
	if _, err := conn.Write(request); err != nil {
		conn.Close()
		return nil, nil, err
	}
	conn.SetReadDeadline(time.Now().Add(time.Minute))
	br := bufio.NewReaderSize(conn, 64<<10)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		conn.Close()
		return nil, nil, fmt.Errorf("no response to the stream's request: %v", err)
	}
	conn.SetReadDeadline(time.Time{})
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		b := make([]byte, 512)
		n, _ := resp.Body.Read(b)
		conn.Close()
		return nil, nil, fmt.Errorf("the stream was refused: %s %s %q", resp.Status, resp.Header.Get("Content-Type"), b[:n])
	}
	s := &eventStream{conn: conn, parse: parse, needsConnect: needsConnect, hist: newHist(),
		connected: make(chan struct{}), ended: make(chan struct{})}
	return s, resp, nil
}

// read reads the stream's body until it ends, measuring publish-to-receive
// from the publisher's time in each event when timed.
func (s *eventStream) read(resp *http.Response, timed bool) {
	defer close(s.ended)
	body := resp.Body // de-chunked, where the server chunks (Centrifugo)
	// Whole reads scanned for their lines: at 10,000 events/s to 100
	// streams, a read call per line, or decoding each event, would make
	// this tool the bottleneck, not the server.
	buf := make([]byte, 256<<10)
	have := 0
	for {
		n, err := body.Read(buf[have:])
		if n == 0 && err != nil {
			s.fail("the stream ended: " + err.Error())
			return
		}
		have += n
		now := time.Now().UnixNano()
		chunk := buf[:have]
		for {
			end := bytes.IndexByte(chunk, '\n')
			if end < 0 {
				break
			}
			line := chunk[:end]
			chunk = chunk[end+1:]
			if !s.take(line, now, timed) {
				return
			}
		}
		s.flush()
		have = copy(buf, chunk) // a line read in part waits for the rest
		if have == len(buf) {
			s.fail("a line longer than 256 KiB")
			return
		}
	}
}

// take checks one line of the stream, read at now; false once the stream
// has failed.
func (s *eventStream) take(line []byte, now int64, timed bool) bool {
	l, err := s.parse(line)
	if err != nil {
		s.fail(err.Error())
		return false
	}
	switch l.kind {
	case lineConnected:
		if s.started {
			s.fail("a second connect push")
			return false
		}
		s.started, s.last, s.epoch = true, l.seq, string(l.epoch)
		close(s.connected)
	case lineClosed:
		s.fail("the server ended the stream: " + l.why)
		return false
	case lineEvent:
		switch {
		case s.needsConnect && !s.started:
			s.fail(fmt.Sprintf("event %d before the connect push", l.seq))
			return false
		case s.started && l.seq != s.last+1:
			s.fail(fmt.Sprintf("seq %d after %d: a gap or a duplicate", l.seq, s.last))
			return false
		case l.epoch != nil && s.epoch != "" && string(l.epoch) != s.epoch:
			s.fail(fmt.Sprintf("epoch %q after %q: the server's history began anew", l.epoch, s.epoch))
			return false
		}
		s.started, s.last = true, l.seq
		switch {
		case l.n < 0:
			s.fail(fmt.Sprintf("event %d carries no publisher's number", l.seq))
			return false
		case l.n >= int64(len(s.seen))*64:
			s.fail(fmt.Sprintf("event %d is number %d, beyond the %d this run publishes", l.seq, l.n, len(s.seen)*64))
			return false
		case s.seen[l.n/64]&(1<<(l.n%64)) != 0:
			s.fail(fmt.Sprintf("event %d is number %d, which came before: the same event twice", l.seq, l.n))
			return false
		}
		s.seen[l.n/64] |= 1 << (l.n % 64)
		ns := int64(0)
		if timed {
			if l.t == 0 {
				s.fail(fmt.Sprintf("event %d carries no publisher's time", l.seq))
				return false
			}
			ns = max(now-l.t, 1)
		}
		if s.runN > 0 && ns != s.runNs {
			s.flush()
		}
		s.runNs, s.runN = ns, s.runN+1
	}
	return true
}

// flush records the events taken since the last flush, their time when
// measured, and only then counts them received: a run that has seen every
// event received has every one in the histograms.
func (s *eventStream) flush() {
	if s.runN == 0 {
		return
	}
	if s.runNs > 0 {
		s.mu.Lock()
		s.hist.RecordValues(min(s.runNs, histMax), s.runN)
		s.mu.Unlock()
	}
	s.received.Add(s.runN)
	s.runN = 0
}

// expect sizes the stream's record of the publisher's numbers for a run
// that publishes at most events, before it reads any.
func (s *eventStream) expect(events int) {
	s.seen = make([]uint64, (events+63)/64)
}

// missing is the first of the publisher's numbers below published that
// the stream has not taken, or -1 when it took them all.
func (s *eventStream) missing(published int) int {
	for i, w := range s.seen {
		if w == ^uint64(0) || i*64 >= published {
			continue
		}
		for b := range 64 {
			if n := i*64 + b; n < published && w&(1<<b) == 0 {
				return n
			}
		}
	}
	return -1
}

func (s *eventStream) fail(p string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.problem == "" {
		s.problem = p
	}
}

func (s *eventStream) err() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.problem
}

// awaitConnected waits for every stream's connect push, failing on the
// first stream that ended instead or at the deadline.
func awaitConnected(streams []*eventStream, deadline time.Time) error {
	timeout := time.NewTimer(time.Until(deadline))
	defer timeout.Stop()
	for i, s := range streams {
		select {
		case <-s.connected:
		case <-s.ended:
			return fmt.Errorf("stream %d ended before its connect push: %s", i, s.err())
		case <-timeout.C:
			return errors.New("not every stream had its connect push within a minute")
		}
	}
	return nil
}

// leadingNumber reads the decimal number b starts with, as JSON writes
// one (no leading zero), refusing one past an int64, and returns the rest
// of b. Nineteen digits fit a uint64 whatever they are, so the overflow
// check waits for the end rather than dividing at every digit, which was
// a tenth of this tool's CPU at 1,000 streams.
func leadingNumber(b []byte) (int64, []byte, bool) {
	n, digits := uint64(0), 0
	for ; digits < len(b) && b[digits]-'0' <= 9; digits++ {
		if digits == 19 {
			return 0, b, false
		}
		n = n*10 + uint64(b[digits]-'0')
	}
	if digits == 0 || (digits > 1 && b[0] == '0') || n > math.MaxInt64 {
		return 0, b, false
	}
	return int64(n), b[digits:], true
}

// numberAfter reads the decimal number that follows key in b.
func numberAfter(b []byte, key string) (int64, bool) {
	i := bytes.Index(b, []byte(key))
	if i < 0 {
		return 0, false
	}
	n, _, ok := leadingNumber(b[i+len(key):])
	return n, ok
}
