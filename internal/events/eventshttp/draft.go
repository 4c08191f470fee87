package eventshttp

import (
	"bytes"
	"encoding/json"
	"fmt"

	"northd/internal/events"
	"northd/internal/httpx"
	"northd/internal/wire"
)

// publishRequest is one event as a publisher sends it.
type publishRequest struct {
	Type *string         `json:"type"`
	Data json.RawMessage `json:"data"`
	To   *struct {
		IP       string `json:"ip"`
		Username string `json:"username"`
	} `json:"to"`
}

// decode reads one event object, or a JSON array of them (a batch), and
// checks each, its data at most maxData bytes; problem names the first
// thing wrong, and where.
func decode(body []byte, maxData int) (drafts []events.Draft, batch bool, problem string) {
	body = bytes.TrimSpace(body)
	var reqs []publishRequest
	switch {
	case len(body) == 0:
		return nil, false, `the body is empty: send {"type": "...", "data": ...}, or an array of such objects`
	case body[0] == '[':
		batch = true
		if err := httpx.StrictUnmarshal(body, &reqs); err != nil {
			return nil, true, "the body is not a JSON array of events: " + err.Error()
		}
		if len(reqs) == 0 || len(reqs) > maxBatch {
			return nil, true, fmt.Sprintf("a batch holds 1 to %d events, not %d", maxBatch, len(reqs))
		}
	default:
		reqs = make([]publishRequest, 1)
		if err := httpx.StrictUnmarshal(body, &reqs[0]); err != nil {
			return nil, false, `the body is not a JSON event object {"type": "...", "data": ..., "to": {...}}: ` + err.Error()
		}
	}
	drafts = make([]events.Draft, len(reqs))
	for i, r := range reqs {
		where := ""
		if batch {
			where = fmt.Sprintf("event %d: ", i)
		}
		d, problem := draft(r, maxData)
		if problem != "" {
			return nil, batch, where + problem
		}
		drafts[i] = d
	}
	return drafts, batch, ""
}

// draft is the one rule for an event a publisher sends: its type
// (events.ValidType, and not the stream's own "reset"), its data and whom
// it is to.
func draft(r publishRequest, maxData int) (events.Draft, string) {
	var d events.Draft
	switch {
	case r.Type == nil || *r.Type == "":
		return d, "type is required: name what happened, such as \"alarm.raised\""
	case len(*r.Type) > events.MaxTypeLen:
		return d, fmt.Sprintf("type is %d bytes; at most %d", len(*r.Type), events.MaxTypeLen)
	case !events.ValidType(*r.Type):
		return d, "type may hold letters, digits and . _ : / - only"
	case *r.Type == events.ResetType:
		return d, "type \"reset\" is the stream's own, telling a client to resynchronise; name the event otherwise"
	}
	d.Type = *r.Type
	data := r.Data
	if len(data) == 0 {
		data = json.RawMessage("null")
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, data); err != nil {
		return d, "data is not valid JSON: " + err.Error()
	}
	if compact.Len() > maxData {
		return d, fmt.Sprintf("data is %d bytes of JSON; at most %d (-event-max-bytes)", compact.Len(), maxData)
	}
	d.Data = compact.Bytes()
	if r.To != nil {
		if r.To.IP == "" && r.To.Username == "" {
			return d, `to names no north server: give {"ip": "..."} or {"username": "..."}, or leave "to" out to address every one`
		}
		if r.To.IP != "" {
			// Read as a login's ip is, so that the two compare equal.
			ip, ok := wire.ParseIP([]byte(r.To.IP))
			if !ok {
				return d, fmt.Sprintf("to.ip %q is not an IP address", r.To.IP)
			}
			d.To.IP = ip
		}
		if len(r.To.Username) > wire.MaxUsernameLen {
			return d, fmt.Sprintf("to.username is %d bytes; usernames are at most %d", len(r.To.Username), wire.MaxUsernameLen)
		}
		d.To.Username = r.To.Username
	}
	return d, ""
}
