// Package eventshttp is the events' HTTP face: GET /north/events on a
// subsystem's port, a north server's stream or long poll (Stream), and POST
// /north/events on the admin listener, the subsystems' own software
// publishing (Publish). The answers they refuse with are here, beside the
// handlers that send them.
package eventshttp

import (
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"

	"northd/internal/events"
	"northd/internal/httpx"
	"northd/internal/netx"
	"northd/internal/store"
	"northd/internal/wire"
)

// maxPollWait bounds a long poll's wait=; an answer holds at most
// maxPollEvents events and about maxPollBytes bytes of them.
const (
	maxPollWait   = 60 * time.Second
	maxPollEvents = 1000
	maxPollBytes  = 1 << 20
)

var (
	headerLastEventID = []byte("Last-Event-ID")
	argAfter          = []byte("after")
	argWait           = []byte("wait")
)

// Answers of GET /north/events that are not a stream.
var (
	badEventIDBody    = wire.AppendFailureBody(nil, 1, false, "Last-Event-ID (or after=) is not an event id: send the id of an event received before, or none to start from now")
	badWaitBody       = wire.AppendFailureBody(nil, 1, false, "wait must be a duration from 0s to 60s, such as wait=30s")
	tooManyForToken   = wire.AppendFailureBody(nil, 3, false, "too many event streams and long polls are open on this token; close one, or wait the Retry-After seconds")
	tooManyStreams    = wire.AppendFailureBody(nil, 4, false, "this instance has as many event streams and long polls open as it may; retry after the Retry-After seconds, on this instance or another")
	shuttingDownBody  = wire.AppendFailureBody(nil, 4, false, "this instance is shutting down; reconnect, to another instance, after the Retry-After seconds")
	eventLogDownBody  = wire.AppendFailureBody(nil, 4, false, "the event log is unavailable; retry after the Retry-After seconds")
	retryAfterStreams = []byte("5")
)

// StreamOptions are what GET /north/events uses.
type StreamOptions struct {
	Tokens httpx.Tokens
	Checks *httpx.Checks // route="events"
	Hub    *events.Hub   // the subsystem's events, fanned out to its streams
	// Retry is the reconnection delay a stream asks its client to keep
	// (-event-retry).
	Retry time.Duration
	// UserTimeout is how long a stream's written data may wait for its
	// client's ack before the kernel ends the connection
	// (-event-write-timeout): a client that takes no data for this long
	// is dropped, even when what it did not take fitted in the send
	// buffer.
	UserTimeout time.Duration
	Log         *slog.Logger
}

// Stream answers GET /north/events, with the bearer token of a north
// server: a text/event-stream of the events addressed to it, from the one
// after Last-Event-ID (or ?after=) on; or, with ?wait=, a long poll
// answering them as JSON.
func Stream(o StreamOptions) fasthttp.RequestHandler {
	head := streamHead(o.Retry)
	return func(ctx *fasthttp.RequestCtx) {
		buf := httpx.GetUsername()
		defer httpx.PutUsername(buf)
		token, v, ok := o.Tokens.Live(ctx, o.Checks, buf[:0])
		if !ok {
			return
		}

		// The header is the stream's own progress, sent by a
		// reconnecting client; after= is where a client chose to
		// start.
		rawAfter := ctx.Request.Header.PeekBytes(headerLastEventID)
		if len(rawAfter) == 0 {
			rawAfter = ctx.QueryArgs().PeekBytes(argAfter)
		}
		var after events.ID
		resume := len(rawAfter) > 0
		if resume {
			var err error
			if after, err = events.ParseID(string(rawAfter)); err != nil {
				httpx.AnswerJSON(ctx, fasthttp.StatusBadRequest, badEventIDBody)
				return
			}
		}
		if ctx.QueryArgs().Has("wait") {
			if !resume && ctx.QueryArgs().Has("after") {
				// after= empty is the "next" of a poll answered
				// before the hub had read any event: from the
				// oldest event kept, so that none published in
				// between is missed.
				resume = true
			}
			o.poll(ctx, token, after, resume, v)
			return
		}
		st, err := o.Hub.Open(events.StreamSpec{Token: token, IP: v.IP, Username: v.Username, Tenure: events.Tenure(v.Tenure), After: after, Resume: resume}, head)
		if err != nil {
			answerRefused(ctx, err)
			return
		}
		// The stream leaves fasthttp: no read, write or idle timeout
		// meant for short requests applies to it (the hub keeps its
		// own write timeout), and the server keeps the connection open
		// after this returns (KeepHijackedConns).
		ctx.HijackSetNoResponse(true)
		ctx.Hijack(func(c net.Conn) {
			if u, ok := c.(interface{ UnsafeConn() net.Conn }); ok {
				// Written only: the request's read buffer can go.
				c = u.UnsafeConn()
			}
			// A heartbeat to a client that vanished (no FIN, no RST)
			// still goes into the send buffer, past any write
			// deadline, and TCP would retry it for about 15 minutes,
			// the stream holding its place under the limits all
			// along. The kernel ends the connection once a write
			// waits for its ack as long as a write may take, and the
			// next heartbeat's write fails.
			if err := netx.SetUserTimeout(c, o.UserTimeout); err != nil {
				o.Log.Warn("cannot bound how long an event stream waits for its client's acks; a vanished client is found only by TCP's retransmission timeout", "err", err)
			}
			st.Serve(c)
		})
	}
}

// streamHead is the start of every event stream's response: no length
// and no chunks, the body ends when the connection does; and the
// reconnection delay the client is asked to keep.
func streamHead(retry time.Duration) []byte {
	head := []byte("HTTP/1.1 200 OK\r\n" +
		"Content-Type: text/event-stream; charset=utf-8\r\n" +
		"Cache-Control: no-store\r\n" +
		"X-Accel-Buffering: no\r\n" +
		"Connection: close\r\n\r\n")
	return events.AppendRetry(head, retry)
}

// answerRefused answers a stream, or a long poll, that the hub refused
// with err.
func answerRefused(ctx *fasthttp.RequestCtx, err error) {
	ctx.Response.Header.SetCanonical(httpx.HeaderRetryAfter, retryAfterStreams)
	switch err {
	case events.ErrTooManyForToken:
		httpx.AnswerJSON(ctx, fasthttp.StatusTooManyRequests, tooManyForToken)
	case events.ErrTooManyStreams:
		httpx.AnswerJSON(ctx, fasthttp.StatusServiceUnavailable, tooManyStreams)
	case events.ErrShuttingDown:
		httpx.AnswerJSON(ctx, fasthttp.StatusServiceUnavailable, shuttingDownBody)
	default: // the log did not answer
		ctx.Response.Header.SetCanonical(httpx.HeaderRetryAfter, httpx.RetryAfterOne)
		httpx.AnswerJSON(ctx, fasthttp.StatusServiceUnavailable, eventLogDownBody)
	}
}

// poll answers a long poll: {"code":0,"events":[…],"next":"ID"}, at once
// when there are events after after, or when the first comes within
// wait=, or empty when none did.
func (o StreamOptions) poll(ctx *fasthttp.RequestCtx, token [16]byte, after events.ID, resume bool, v store.Token) {
	wait, err := time.ParseDuration(string(ctx.QueryArgs().PeekBytes(argWait)))
	if err != nil || wait < 0 || wait > maxPollWait {
		httpx.AnswerJSON(ctx, fasthttp.StatusBadRequest, badWaitBody)
		return
	}
	if wait > 0 {
		// A waiting poll holds its connection as a stream does: it
		// counts under -event-streams-per-token and
		// -event-max-streams with the streams.
		if err := o.Hub.BeginPoll(token); err != nil {
			answerRefused(ctx, err)
			return
		}
		defer o.Hub.EndPoll(token)
	}
	body := append(make([]byte, 0, 4096), `{"code":0,"events":[`...)
	at := len(body)
	body, polled, err := o.Hub.Poll(ctx, after, !resume, wait, &events.Reader{IP: v.IP, Username: v.Username, Tenure: events.Tenure(v.Tenure)}, maxPollEvents, maxPollBytes, body)
	if err != nil {
		ctx.Response.Header.SetCanonical(httpx.HeaderRetryAfter, httpx.RetryAfterOne)
		httpx.AnswerJSON(ctx, fasthttp.StatusServiceUnavailable, eventLogDownBody)
		return
	}
	if polled.Outlived && len(body) == at {
		// Its token ended before the next event, which is a later
		// login's: as a stream closes, the poll says the token is
		// over, rather than answering nothing at once, again and
		// again, without waiting.
		o.Tokens.Refuse(ctx, o.Checks, wire.BearerUnknown)
		return
	}
	if len(body) > at {
		body = body[:len(body)-1] // the last event's comma
	}
	body = append(body, `],"next":"`...)
	if polled.Next != (events.ID{}) {
		// Else "": no event read yet, and after= empty goes on from
		// the oldest kept.
		body = polled.Next.Append(body)
	}
	body = append(body, `","reset":`...)
	body = strconv.AppendBool(body, polled.Reset)
	body = append(body, '}')
	ctx.Response.Header.SetContentTypeBytes(httpx.ContentTypeJSON)
	ctx.Response.SetBody(body)
}
