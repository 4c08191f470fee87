package netx

import (
	"net"
	"sync/atomic"
	"time"
)

// deadlineSlack is how much later than asked a connection's deadline may
// fall. fasthttp asks for a new deadline three times a request (idle, read,
// write), and each real one reads the clock twice and resets a runtime
// timer under a lock: on this project's machine a sixth of a pipelined
// login's CPU. serverConn instead notes what fasthttp asks for and brings
// the real deadline in line only when a read or write is about to happen
// and the real one is earlier than asked (it would cut the connection
// short) or later by more than the slack, and then arms it the slack
// later than asked. A busy connection then touches its timer about twice a
// second instead of three times a request, and a request fasthttp has
// already read whole never arms its read deadline at all.
//
// The price: a slow or idle client is cut off up to the slack late. This is
// nginx's lazy timer (NGX_TIMER_LAZY_DELAY, 300 ms) for the same reason.
const deadlineSlack = 500 * time.Millisecond

// lazyDeadline is one direction's deadline of a serverConn.
type lazyDeadline struct {
	asked atomic.Int64 // unix nanoseconds; 0 for none. Set from any goroutine.
	armed int64        // what the connection has; only the reader (or writer) touches it
}

// ask notes the deadline asked for, at the cost of a store.
func (d *lazyDeadline) ask(t time.Time) {
	if t.IsZero() {
		d.asked.Store(0)
		return
	}
	d.asked.Store(t.UnixNano())
}

// arm brings c's real read (or write) deadline within the slack of the one
// asked for, with a system call only when it is not.
func (d *lazyDeadline) arm(c net.Conn, read bool) error {
	asked := d.asked.Load()
	switch {
	case asked == d.armed && asked == 0:
		return nil
	case asked != 0 && d.armed >= asked && d.armed-asked <= int64(deadlineSlack):
		return nil
	}
	var t time.Time
	if d.armed = 0; asked != 0 {
		d.armed = asked + int64(deadlineSlack)
		t = time.Unix(0, d.armed)
	}
	if read {
		return c.SetReadDeadline(t)
	}
	return c.SetWriteDeadline(t)
}
