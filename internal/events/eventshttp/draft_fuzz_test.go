package eventshttp

import (
	"bytes"
	"encoding/json"
	"regexp"
	"testing"

	"northd/internal/events"
)

// Whatever a publisher sends, decode answers drafts fit for the log or a
// sentence saying what is wrong, and never both.
func FuzzPublishDecode(f *testing.F) {
	for _, s := range []string{
		`{"type":"alarm.raised","data":{"level":"major"}}`,
		`[{"type":"a","data":1},{"type":"b","to":{"ip":"192.0.2.1","username":"n"}}]`,
		`{"type":"reset"}`, `[]`, `{"type":"a","data":{"x":`, `{"type":"a b"}`, `{"type":"a","to":{}}`,
		"  {\"type\":\"a\",\"data\":\"\xff\"}", `{"type":"a"} {"type":"b"}`, `{"type":"a","extra":1}`,
	} {
		f.Add([]byte(s))
	}
	const maxData = 1024
	f.Fuzz(func(t *testing.T, body []byte) {
		drafts, _, problem := decode(body, maxData)
		if (problem == "") == (len(drafts) == 0) {
			t.Fatalf("decode(%q): %d drafts and problem %q", body, len(drafts), problem)
		}
		for _, d := range drafts {
			var compact bytes.Buffer
			if !eventType.MatchString(d.Type) || d.Type == events.ResetType ||
				!json.Valid(d.Data) || json.Compact(&compact, d.Data) != nil || !bytes.Equal(compact.Bytes(), d.Data) || len(d.Data) > maxData {
				t.Fatalf("decode(%q) accepted %q with data %q", body, d.Type, d.Data)
			}
		}
	})
}

// eventType is the documented rule for an event's type, written apart from
// events.ValidType so that the fuzz test checks that rule, not itself.
var eventType = regexp.MustCompile(`^[A-Za-z0-9._:/-]{1,64}$`)
