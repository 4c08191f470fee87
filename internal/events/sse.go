package events

import (
	"bytes"
	"strconv"
	"time"

	"northd/internal/wire"
)

// The stream's framing is the text/event-stream format of the WHATWG HTML
// standard, section "Server-sent events": fields "id", "event", "data" and
// "retry", one per line, an empty line ending each event, and lines that
// start with a colon ignored (comments, the heartbeat).

// AppendFrame appends one event's frame: its id, its type and data, one
// "data:" line for each line of data (a reader joins them with "\n"). Line
// ends in data, "\r\n", "\r" or "\n", become line breaks of the frame, as
// the standard reads them; id and typ must have none.
func AppendFrame(dst, id, typ, data []byte) []byte {
	if len(id) > 0 {
		dst = append(dst, "id: "...)
		dst = append(dst, id...)
		dst = append(dst, '\n')
	}
	if len(typ) > 0 {
		dst = append(dst, "event: "...)
		dst = append(dst, typ...)
		dst = append(dst, '\n')
	}
	for {
		dst = append(dst, "data: "...)
		i := bytes.IndexAny(data, "\r\n")
		if i < 0 {
			dst = append(dst, data...)
			break
		}
		dst = append(dst, data[:i]...)
		dst = append(dst, '\n')
		if data[i] == '\r' && i+1 < len(data) && data[i+1] == '\n' {
			i++
		}
		data = data[i+1:]
	}
	return append(dst, '\n', '\n')
}

// AppendRetry appends a "retry:" field: how long a client waits before it
// reconnects, from then on.
func AppendRetry(dst []byte, d time.Duration) []byte {
	dst = append(dst, "retry: "...)
	dst = strconv.AppendInt(dst, d.Milliseconds(), 10)
	return append(dst, '\n', '\n')
}

// Heartbeat is the comment sent on an idle stream, so that balancers keep
// the connection and a client that has gone is found.
var Heartbeat = []byte(": heartbeat\n\n")

// AppendEventJSON appends ev as every receiver reads it:
// {"id","seq","type","time","subsystem","data"}.
func AppendEventJSON(dst []byte, ev *Event, subsystem string) []byte {
	dst = append(dst, `{"id":"`...)
	dst = ev.ID.Append(dst)
	dst = append(dst, `","seq":`...)
	dst = strconv.AppendUint(dst, ev.ID.Seq, 10)
	dst = append(dst, `,"type":`...)
	dst = wire.AppendJSONString(dst, []byte(ev.Type))
	dst = append(dst, `,"time":"`...)
	dst = ev.Time.UTC().AppendFormat(dst, time.RFC3339Nano)
	dst = append(dst, `","subsystem":`...)
	dst = wire.AppendJSONString(dst, []byte(subsystem))
	dst = append(dst, `,"data":`...)
	dst = append(dst, ev.Data...)
	return append(dst, '}')
}

// AppendEventFrame appends ev's frame: its id, its type, and its JSON as
// the data, without allocating when the JSON is on one line, as published
// data always is (a raw XADD's may not be, and is split as data lines).
func AppendEventFrame(dst []byte, ev *Event, subsystem string) []byte {
	start := len(dst)
	dst = append(dst, "id: "...)
	dst = ev.ID.Append(dst)
	dst = append(dst, "\nevent: "...)
	dst = append(dst, ev.Type...)
	dst = append(dst, "\ndata: "...)
	at := len(dst)
	dst = AppendEventJSON(dst, ev, subsystem)
	if bytes.IndexAny(dst[at:], "\r\n") >= 0 {
		data := bytes.Clone(dst[at:])
		var id [64]byte
		return AppendFrame(dst[:start], ev.ID.Append(id[:0]), []byte(ev.Type), data)
	}
	return append(dst, '\n', '\n')
}

// ResetType is the type of the event a stream starts with when the events
// after the client's last id are no longer kept: it must resynchronise.
const ResetType = "reset"

// AppendResetJSON appends the reset event's data: the oldest id the log
// still keeps, from which the stream goes on, and why.
func AppendResetJSON(dst []byte, oldest ID) []byte {
	dst = append(dst, `{"oldest":"`...)
	dst = oldest.Append(dst)
	return append(dst, `","reason":"the events after your last id are no longer kept; resynchronise, then go on from here"}`...)
}
