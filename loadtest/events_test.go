package main

import (
	"bytes"
	"context"
	"encoding/json"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
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
	s := &eventStream{parse: parseNorthdLine, hist: newHist()}
	s.expect(20)
	for _, seq := range []int{7, 8, 10} {
		line := []byte(`data: {"id":"e-` + strconv.Itoa(seq) + `","seq":` + strconv.Itoa(seq) + `,"type":"load","time":"x","subsystem":"s","data":{"t":1,"n":` + strconv.Itoa(seq) + `}}`)
		s.take(line, 2, true)
	}
	s.flush()
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

// The report's derived figures on a synthetic run, and its JSON names,
// which other tools read.
func TestEventsReportFigures(t *testing.T) {
	r := &EventsReport{Peer: "centrifugo", Mode: "latency", Streams: 100, Published: 2990, Delivered: 299000, AskedRate: 1000,
		PublishSeconds: 3.01, PublishesLate: 4, ServerCPUSeconds: 2.5, ServerWrites: 14950, ServerRSSBytes: 52428800,
		Latency: &Quantiles{P50: 0.001, P99: 0.004, P999: 0.008, Max: 0.02}}
	r.derive(3 * time.Second)
	if r.PublishedShare != 0.9966666666666667 || r.WritesPerDelivery != 0.05 || r.DeliveredPerCPUSecond != 119600 {
		t.Errorf("share %v, writes per delivery %v, delivered per CPU-second %v; want 0.9966666666666667, 0.05, 119600",
			r.PublishedShare, r.WritesPerDelivery, r.DeliveredPerCPUSecond)
	}
	b, _ := json.Marshal(r)
	var fields map[string]any
	if err := json.Unmarshal(b, &fields); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"peer": "centrifugo", "asked_rate": 1000.0, "publish_seconds": 3.01, "published_share": 0.9966666666666667,
		"publishes_late": 4.0, "server_writes": 14950.0, "writes_per_delivery": 0.05, "server_rss_bytes": 52428800.0,
		"delivered_per_cpu_second": 119600.0, "published": 2990.0, "delivered": 299000.0}
	for k, v := range want {
		if fields[k] != v {
			t.Errorf("%s: %v, want %v", k, fields[k], v)
		}
	}
	q := fields["publish_to_receive_seconds"].(map[string]any)
	for k, v := range map[string]float64{"p50": 0.001, "p99": 0.004, "p99.9": 0.008, "max": 0.02} {
		if q[k] != v {
			t.Errorf("publish_to_receive_seconds.%s: %v, want %v", k, q[k], v)
		}
	}
}

func TestProcIOField(t *testing.T) {
	// /proc/<pid>/io as Linux writes it.
	io := []byte("rchar: 323934931\nwchar: 323929600\nsyscr: 632687\nsyscw: 632675\nread_bytes: 0\nwrite_bytes: 323932160\ncancelled_write_bytes: 0\n")
	for _, c := range []struct {
		field string
		n     int64
		ok    bool
	}{{"syscw", 632675, true}, {"syscr", 632687, true}, {"read_bytes", 0, true}, {"sysc", 0, false}, {"nope", 0, false}} {
		if n, ok := procIOField(io, c.field); n != c.n || ok != c.ok {
			t.Errorf("%s: %d, %v; want %d, %v", c.field, n, ok, c.n, c.ok)
		}
	}
}

func FuzzProcIOField(f *testing.F) {
	f.Add([]byte("syscr: 632687\nsyscw: 632675\n"), "syscw")
	f.Fuzz(func(t *testing.T, b []byte, field string) {
		if n, ok := procIOField(b, field); ok && !strings.Contains(string(b), field+": "+strconv.FormatInt(n, 10)) {
			t.Errorf("%q: %s read as %d", b, field, n)
		}
	})
}

func TestParseNorthdLine(t *testing.T) {
	for _, c := range []struct {
		line    string
		want    streamLine
		wantErr bool
	}{
		{`data: {"id":"bd9f6db4ed22-1","seq":1,"type":"load","time":"2026-12-04T04:09:01.091384993Z","subsystem":"45585","data":{"t":1796357341090895882,"n":0}}`, streamLine{kind: lineEvent, seq: 1, t: 1796357341090895882}, false},
		{`data: {"id":"bd9f6db4ed22-2","seq":2,"type":"other","time":"2026-12-04T04:09:01.091384993Z","subsystem":"45585","data":{}}`, streamLine{kind: lineEvent, seq: 2, n: -1}, false},
		{`data: {"id":"bd9f6db4ed22-3","seq":3,"type":"load","time":"2026-12-04T04:09:01.091384993Z","subsystem":"45585","data":{"t":7,"n":12}}`, streamLine{kind: lineEvent, seq: 3, t: 7, n: 12}, false},
		{`data: {"id":"bd9f6db4ed22-4","seq":4,"type":"load","time":"2026-12-04T04:09:01.091384993Z","subsystem":"45585","data":{"t":07,"n":12}}`, streamLine{kind: lineEvent, seq: 4, n: -1}, false},
		{`data: {"id":"bd9f6db4ed22-5","seq":5,"type":"load","time":"2026-12-04T04:09:01.091384993Z","subsystem":"45585","data":{"t":,"n":12}}`, streamLine{kind: lineEvent, seq: 5, n: -1}, false},
		{`data: {"id":"bd9f6db4ed22-6","seq":6,"type":"load","time":"2026-12-04T04:09:01.091384993Z","subsystem":"45585","data":{"n":1,"t":2}}`, streamLine{kind: lineEvent, seq: 6, n: -1}, false},
		{`data: {"id":"bd9f6db4ed22-7","seq":7,"type":"load","time":"2026-12-04T04:09:01.091384993Z","subsystem":"45585","data":{"t":99999999999999999999,"n":1}}`, streamLine{kind: lineEvent, seq: 7, n: -1}, false},
		{`id: bd9f6db4ed22-1`, streamLine{}, false},
		{`retry: 3000`, streamLine{}, false},
		{`: heartbeat`, streamLine{}, false},
		{``, streamLine{}, false},
		{`data: {"id":"x","type":"load"}`, streamLine{}, true},
	} {
		got, err := parseNorthdLine([]byte(c.line))
		if (err != nil) != c.wantErr || !reflect.DeepEqual(got, c.want) {
			t.Errorf("%q: %+v, %v; want %+v (error: %v)", c.line, got, err, c.want, c.wantErr)
		}
	}
}

var publisherDataShape = regexp.MustCompile(`"data":\{"t":[1-9][0-9]*,"n":[0-9]*\}\}$`)

func FuzzParseNorthdLine(f *testing.F) {
	f.Add([]byte(`data: {"id":"bd9f6db4ed22-1","seq":1,"type":"load","time":"2026-12-04T04:09:01.091384993Z","subsystem":"45585","data":{"t":1796357341090895882,"n":0}}`))
	f.Fuzz(func(t *testing.T, line []byte) {
		l, err := parseNorthdLine(line)
		if err == nil && l.kind == lineEvent && !strings.Contains(string(line), `"seq":`+strconv.FormatInt(l.seq, 10)) {
			t.Errorf("%q read as seq %d", line, l.seq)
		}
		// A t read is the publisher's, {"t":T,"n":N} ending the line.
		if err == nil && l.t != 0 && !publisherDataShape.MatchString(string(line)) {
			t.Errorf("%q read as t %d", line, l.t)
		} else if err == nil && l.t != 0 && !strings.Contains(string(line), `"data":{"t":`+strconv.FormatInt(l.t, 10)+`,"n":`) {
			t.Errorf("%q read as t %d", line, l.t)
		}
	})
}
