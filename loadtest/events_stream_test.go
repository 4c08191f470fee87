package main

import (
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
	line := func(seq, t int) []byte {
		return []byte(`data: {"id":"e-` + strconv.Itoa(seq) + `","seq":` + strconv.Itoa(seq) + `,"type":"load","time":"x","subsystem":"s","data":{"t":` + strconv.Itoa(t) + `,"n":0}}`)
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
