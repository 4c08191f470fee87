package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strconv"
	"testing"
)

// loadtest events against a real northd: every event verified on every
// stream, in each mode. Small and short: this checks the tool, not speed.
func TestEventsAgainstNorthd(t *testing.T) {
	n := startNorthd(t, "-admin", "127.0.0.1:0")
	for _, c := range []struct {
		mode string
		args []string
	}{
		{"latency", []string{"-streams", "5", "-rate", "500", "-batch", "5", "-duration", "1s"}},
		{"fanout", []string{"-streams", "5", "-events", "300", "-batch", "100"}},
	} {
		t.Run(c.mode, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			args := append([]string{"events", "-target", "http://" + n.Listen[0], "-admin", n.Admin, "-mode", c.mode}, c.args...)
			if code := run(context.Background(), args, &stdout, &stderr); code != 0 {
				t.Fatalf("exit %d\n%s%s", code, stdout.String(), stderr.String())
			}
			var r EventsReport
			if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
				t.Fatalf("report %q: %v", stdout.String(), err)
			}
			if r.Published == 0 || r.Delivered != int64(r.Published)*5 || len(r.Problems) != 0 {
				t.Errorf("published %d, delivered %d to 5 streams, problems %v", r.Published, r.Delivered, r.Problems)
			}
			if (c.mode == "latency") != (r.Latency != nil) {
				t.Errorf("latency %+v in mode %s", r.Latency, c.mode)
			}
		})
	}
}

// A stream that sees a gap fails the run.
func TestEventStreamReaderFindsAGap(t *testing.T) {
	s := &eventStream{hist: newHist()}
	for _, seq := range []int{7, 8, 10} {
		line := []byte(`data: {"id":"e-` + strconv.Itoa(seq) + `","seq":` + strconv.Itoa(seq) + `,"type":"load","time":"x","subsystem":"s","data":{"t":1,"n":0}}`)
		s.take(line, 2, true)
	}
	if s.received.Load() != 2 || s.err() != "seq 10 after 8: a gap or a duplicate" {
		t.Errorf("received %d, problem %q", s.received.Load(), s.err())
	}
}

// loadtest webhooks against a real northd: receivers checking signatures,
// order and completeness, one hanging beside them.
func TestWebhooksAgainstNorthd(t *testing.T) {
	n := startNorthd(t, "-admin", "127.0.0.1:0", "-push-allow", "127.0.0.0/8", "-push-timeout", "1s")
	var stdout, stderr bytes.Buffer
	args := []string{"webhooks", "-target", "http://" + n.Listen[0], "-admin", n.Admin, "-receivers", "3", "-hanging", "1", "-rate", "200", "-batch", "5", "-duration", "1s"}
	if code := run(context.Background(), args, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d\n%s%s", code, stdout.String(), stderr.String())
	}
	var r WebhooksReport
	if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
		t.Fatalf("report %q: %v", stdout.String(), err)
	}
	if r.Published == 0 || r.Delivered != int64(r.Published)*3 || r.Latency == nil || len(r.Problems) != 0 {
		t.Errorf("published %d, delivered %d to 3 receivers, problems %v", r.Published, r.Delivered, r.Problems)
	}
}
