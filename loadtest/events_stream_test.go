package main

import (
	"bytes"
	"context"
	"net"
	"strconv"
	"testing"
)

func TestLeadingNumber(t *testing.T) {
	for _, c := range []struct {
		in   string
		n    int64
		rest string
		ok   bool
	}{
		{"0", 0, "", true},
		{"7,", 7, ",", true},
		{"1764806400123456789}", 1764806400123456789, "}", true},
		{"9223372036854775807", 9223372036854775807, "", true},
		{"9223372036854775808", 0, "9223372036854775808", false},   // past int64
		{"9999999999999999999", 0, "9999999999999999999", false},   // 19 digits past int64
		{"10000000000000000000", 0, "10000000000000000000", false}, // 20 digits
		{"007", 0, "007", false},                                   // JSON writes no leading zero
		{"", 0, "", false},
		{"-1", 0, "-1", false},
		{"x1", 0, "x1", false},
		{"12/3", 12, "/3", true},
		{"4:", 4, ":", true},
	} {
		n, rest, ok := leadingNumber([]byte(c.in))
		if n != c.n || string(rest) != c.rest || ok != c.ok {
			t.Errorf("leadingNumber(%q) = %d, %q, %v; want %d, %q, %v", c.in, n, rest, ok, c.n, c.rest, c.ok)
		}
	}
}

// leadingNumber agrees with strconv on the digits it takes.
func FuzzLeadingNumber(f *testing.F) {
	for _, s := range []string{"0", "12,", "9223372036854775807", "9223372036854775808", "007", "", "1e5", "99999999999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		digits := 0
		for digits < len(s) && s[digits] >= '0' && s[digits] <= '9' {
			digits++
		}
		want, err := strconv.ParseInt(s[:digits], 10, 64)
		wantOK := err == nil && (digits == 1 || s[0] != '0')
		n, rest, ok := leadingNumber([]byte(s))
		if ok != wantOK || (ok && (n != want || string(rest) != s[digits:])) || (!ok && (n != 0 || string(rest) != s)) {
			t.Fatalf("leadingNumber(%q) = %d, %q, %v; strconv: %d, %v", s, n, rest, ok, want, err)
		}
	})
}

// The events of one read that share a publish-to-receive time are one
// record of the histogram, and are counted received once recorded.
func TestEventStreamRecordsARunOnce(t *testing.T) {
	s := &eventStream{parse: parseNorthdLine, hist: newHist()}
	s.expect(6)
	line := func(seq, t int) []byte {
		return []byte(`data: {"id":"e-` + strconv.Itoa(seq) + `","seq":` + strconv.Itoa(seq) + `,"type":"load","time":"x","subsystem":"s","data":{"t":` + strconv.Itoa(t) + `,"n":` + strconv.Itoa(seq-1) + `}}`)
	}
	for seq := 1; seq <= 5; seq++ {
		s.take(line(seq, 1000), 3000, true) // 2,000 ns each
	}
	if got := s.received.Load(); got != 0 {
		t.Errorf("%d received before the run ended, want 0", got)
	}
	s.take(line(6, 2000), 3000, true) // 1,000 ns: a new run
	if got := s.received.Load(); got != 5 {
		t.Errorf("%d received once the run ended, want 5", got)
	}
	s.flush()
	if got := s.received.Load(); got != 6 {
		t.Errorf("%d received, want 6", got)
	}
	// 5 of 6 at 2,000 ns: the median is 2,000, the lowest 1,000.
	if n, p50, low := s.hist.TotalCount(), s.hist.ValueAtPercentile(50), s.hist.Min(); n != 6 || p50 != 2000 || low != 1000 {
		t.Errorf("histogram: %d values, median %d ns, lowest %d ns; want 6, 2000, 1000", n, p50, low)
	}
}

// missing names the first of the publisher's numbers a stream never took.
func TestEventStreamMissing(t *testing.T) {
	for _, c := range []struct {
		taken     []int64
		published int
		want      int
	}{
		{nil, 0, -1},
		{nil, 3, 0},
		{[]int64{0, 1, 2}, 3, -1},
		{[]int64{0, 2}, 3, 1},
		{[]int64{0, 1, 2, 3}, 3, -1}, // 3 is beyond what was published: not asked about
		{[]int64{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63, 65}, 66, 64},
	} {
		s := &eventStream{}
		s.expect(130)
		for _, n := range c.taken {
			s.seen[n/64] |= 1 << (n % 64)
		}
		if got := s.missing(c.published); got != c.want {
			t.Errorf("taken %v of %d published: missing %d, want %d", c.taken, c.published, got, c.want)
		}
	}
}

// A stream the server ends says so, rather than leaving the run to wait
// for events that cannot come.
func TestEventStreamThatEndsSaysSo(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		c.Read(make([]byte, 1024))
		c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\nretry: 2000\n\n"))
		c.Close()
	}()
	s, resp, err := dialStream(ln.Addr().String(), []byte("GET /north/events HTTP/1.1\r\nHost: x\r\n\r\n"), parseNorthdLine, false)
	if err != nil {
		t.Fatal(err)
	}
	defer s.conn.Close()
	s.read(resp, true)
	if got := s.err(); got != "the stream ended: EOF" {
		t.Errorf("problem %q, want %q", got, "the stream ended: EOF")
	}
}

// A latency run too short for one batch publishes nothing, and would
// verify nothing: it is refused.
func TestEventsRefusesARunOfNoBatch(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"events", "-rate", "5", "-batch", "10", "-duration", "1s"}, &stdout, &stderr)
	want := "loadtest events: -rate 5 for -duration 1s is 5 events, not one batch of 10: publish for longer\n"
	if code != 2 || stderr.String() != want {
		t.Errorf("exit %d, %q; want 2, %q", code, stderr.String(), want)
	}
}
