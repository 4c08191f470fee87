package events

import (
	"net/netip"
	"testing"
	"time"
)

func TestAppendFrame(t *testing.T) {
	for _, c := range []struct {
		name          string
		id, typ, data string
		want          string
	}{
		{"one line", "e1-7", "alarm", `{"a":1}`, "id: e1-7\nevent: alarm\ndata: {\"a\":1}\n\n"},
		{"no id, no type", "", "", "x", "data: x\n\n"},
		{"empty data", "e1-1", "t", "", "id: e1-1\nevent: t\ndata: \n\n"},
		{"LF lines", "e-2", "t", "a\nb\n\nc", "id: e-2\nevent: t\ndata: a\ndata: b\ndata: \ndata: c\n\n"},
		{"CRLF and CR", "e-3", "t", "a\r\nb\rc", "id: e-3\nevent: t\ndata: a\ndata: b\ndata: c\n\n"},
		{"trailing newline", "e-4", "t", "a\n", "id: e-4\nevent: t\ndata: a\ndata: \n\n"},
		{"UTF-8 as is", "e-5", "t", "北向 ☃ \u2028", "id: e-5\nevent: t\ndata: 北向 ☃ \u2028\n\n"},
		{"a colon and spaces", "e-6", "t", ": not a comment  ", "id: e-6\nevent: t\ndata: : not a comment  \n\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := string(AppendFrame([]byte("> "), []byte(c.id), []byte(c.typ), []byte(c.data))); got != "> "+c.want {
				t.Errorf("got  %q\nwant %q", got, "> "+c.want)
			}
		})
	}
}

func TestAppendRetryAndHeartbeat(t *testing.T) {
	if got := string(AppendRetry(nil, 2500*time.Millisecond)); got != "retry: 2500\n\n" {
		t.Errorf("AppendRetry = %q", got)
	}
	if string(Heartbeat) != ": heartbeat\n\n" {
		t.Errorf("Heartbeat = %q", Heartbeat)
	}
}

func TestAppendEventFrame(t *testing.T) {
	at := time.Date(2026, 11, 28, 18, 0, 0, 123456789, time.FixedZone("CST", 8*3600))
	for _, c := range []struct {
		name string
		ev   Event
		want string
	}{
		{"object", Event{ID: ID{"ab12", 42}, Type: "alarm.raised", Time: at, Data: []byte(`{"level":"major","text":"风扇故障"}`)},
			"id: ab12-42\nevent: alarm.raised\ndata: {\"id\":\"ab12-42\",\"seq\":42,\"type\":\"alarm.raised\",\"time\":\"2026-11-28T10:00:00.123456789Z\",\"subsystem\":\"nms\\u003c1\\u003e\",\"data\":{\"level\":\"major\",\"text\":\"风扇故障\"}}\n\n"},
		{"targeted, null", Event{ID: ID{"z", 1}, Type: "t", Time: at, To: Target{IP: netip.MustParseAddr("192.0.2.1")}, Data: []byte(`null`)},
			"id: z-1\nevent: t\ndata: {\"id\":\"z-1\",\"seq\":1,\"type\":\"t\",\"time\":\"2026-11-28T10:00:00.123456789Z\",\"subsystem\":\"nms\\u003c1\\u003e\",\"data\":null}\n\n"},
		// A raw XADD's data may span lines; the frame splits it.
		{"multi-line data", Event{ID: ID{"z", 2}, Type: "t", Time: at, Data: []byte("{\n \"a\": 1\n}")},
			"id: z-2\nevent: t\ndata: {\"id\":\"z-2\",\"seq\":2,\"type\":\"t\",\"time\":\"2026-11-28T10:00:00.123456789Z\",\"subsystem\":\"nms\\u003c1\\u003e\",\"data\":{\ndata:  \"a\": 1\ndata: }}\n\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := string(AppendEventFrame([]byte("> "), &c.ev, "nms<1>")); got != "> "+c.want {
				t.Errorf("got  %q\nwant %q", got, "> "+c.want)
			}
		})
	}
}

func TestAppendEventFrameAllocatesNothing(t *testing.T) {
	ev := Event{ID: ID{"ab12", 42}, Type: "alarm.raised", Time: time.Now(), Data: []byte(`{"level":"major"}`)}
	buf := make([]byte, 0, 1024)
	if n := testing.AllocsPerRun(100, func() { buf = AppendEventFrame(buf[:0], &ev, "nms") }); n != 0 {
		t.Errorf("AppendEventFrame: %v allocs/op, want 0", n)
	}
}

func TestAppendResetJSON(t *testing.T) {
	want := `{"oldest":"k9-1001","reason":"the events after your last id are no longer kept; resynchronise, then go on from here"}`
	if got := string(AppendResetJSON(nil, ID{"k9", 1001})); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

func TestParseID(t *testing.T) {
	for _, c := range []struct {
		in   string
		want ID
		ok   bool
	}{
		{"ab12-42", ID{"ab12", 42}, true},
		{"Z-0", ID{"Z", 0}, true},
		{"a-18446744073709551615", ID{"a", 1<<64 - 1}, true},
		{"a-18446744073709551616", ID{}, false},
		{"-1", ID{}, false},
		{"a-", ID{}, false},
		{"a-+1", ID{}, false},
		{"a-01", ID{}, false},
		{"0-00", ID{}, false},
		{"a-1-2", ID{}, false},
		{"a_b-1", ID{}, false},
		{"123456789012345678901234567890123-1", ID{}, false},
		{"ab12", ID{}, false},
		{"", ID{}, false},
	} {
		got, err := ParseID(c.in)
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("ParseID(%q) = %v, %v; want %v, ok %v", c.in, got, err, c.want, c.ok)
		}
	}
}

func FuzzParseID(f *testing.F) {
	for _, s := range []string{"ab12-42", "a-0", "-", "a--1", "a-1e3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := ParseID(s)
		if err != nil {
			return
		}
		if id.String() != s {
			t.Fatalf("ParseID(%q) = %v, which prints as %q", s, id, id.String())
		}
	})
}

func TestTargetMatches(t *testing.T) {
	ip := netip.MustParseAddr("192.0.2.1")
	other := netip.MustParseAddr("192.0.2.2")
	for _, c := range []struct {
		to   Target
		want bool
	}{
		{Target{}, true},
		{Target{IP: ip}, true},
		{Target{IP: other}, false},
		{Target{Username: "north-1"}, true},
		{Target{Username: "north-2"}, false},
		{Target{IP: ip, Username: "north-1"}, true},
		{Target{IP: ip, Username: "north-2"}, false},
		// The reader's tenure holds the logins after 4 up to 7: the
		// next login after publishing is its for 5 to 7.
		{Target{IP: ip, NextLogin: 4}, false},
		{Target{IP: ip, NextLogin: 5}, true},
		{Target{IP: ip, NextLogin: 7}, true},
		{Target{IP: ip, NextLogin: 8}, false},
		{Target{IP: other, NextLogin: 6}, false},
	} {
		if got := c.to.Matches(ip, []byte("north-1"), Tenure{Login: 7, Prev: 4}); got != c.want {
			t.Errorf("%+v.Matches(192.0.2.1, north-1, logins 5 to 7) = %v, want %v", c.to, got, c.want)
		}
	}
}

func TestReaderWants(t *testing.T) {
	ip := netip.MustParseAddr("192.0.2.1")
	all := Reader{IP: ip, Username: []byte("north-1")}
	some := Reader{IP: ip, Username: []byte("north-1"), Types: []string{"alarm.raised", "alarm.cleared"}}
	for _, c := range []struct {
		r    *Reader
		to   Target
		typ  string
		want bool
	}{
		{&all, Target{}, "anything", true},
		{&all, Target{IP: netip.MustParseAddr("192.0.2.2")}, "anything", false},
		{&some, Target{}, "alarm.cleared", true},
		{&some, Target{}, "alarm", false},
		{&some, Target{Username: "north-2"}, "alarm.raised", false},
	} {
		if got := c.r.Wants(c.to, c.typ); got != c.want {
			t.Errorf("%+v.Wants(%+v, %q) = %v, want %v", c.r, c.to, c.typ, got, c.want)
		}
	}
}
