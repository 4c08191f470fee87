package e2e

import (
	"bufio"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"northd/internal/testdeps"
)

func TestEventStreamDeliversAndResumes(t *testing.T) {
	n := start(t, "-listen", "nms=127.0.0.1:0", "-admin", "127.0.0.1:0", "-event-retry", "1500ms")
	listen, admin := n.Listen, n.Admin
	token := loginAs(t, listen[0], "north-1", "192.0.2.10")
	s := streamOpened(t, "GET /north/events", listen[0], token, "")
	wantHead := "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\nCache-Control: no-store\r\nX-Accel-Buffering: no\r\nConnection: close\r\n\r\n"
	if s.head != wantHead {
		t.Errorf("head %q\nwant %q", s.head, wantHead)
	}
	if f, _ := s.next(); f.retry != "1500" || f.hasID || f.data != "" {
		t.Errorf("first block %+v, want retry: 1500 alone", f)
	}

	first := published(t, admin, `{"type":"alarm.raised","data":{"text":"风扇故障\nline 2","level":1}}`)
	published(t, admin, `{"type":"for.another","data":1,"to":{"ip":"192.0.2.99"}}`)
	published(t, admin, `{"type":"for.another.user","data":2,"to":{"username":"north-2"}}`)
	a := publish(t, admin, "?subsystem=nms", `[{"type":"by.ip","data":"x","to":{"ip":"192.0.2.10"}},{"type":"by.user","data":[1,2],"to":{"username":"north-1"}}]`)
	if a.Status != 202 {
		t.Fatalf("batch: %d %s", a.Status, a.Body)
	}
	epoch, _, _ := strings.Cut(first, "-")
	wantBatch := fmt.Sprintf(`{"code":0,"events":[{"id":"%s-4","seq":4},{"id":"%s-5","seq":5}]}`+"\n", epoch, epoch)
	if a.Body != wantBatch {
		t.Errorf("batch answer %q, want %q", a.Body, wantBatch)
	}

	for _, want := range []struct {
		seq  uint64
		typ  string
		data string
	}{{1, "alarm.raised", `{"text":"风扇故障\nline 2","level":1}`}, {4, "by.ip", `"x"`}, {5, "by.user", `[1,2]`}} {
		f := s.nextEvent()
		ev := decodeEvent(t, f)
		wantID := epoch + "-" + strconv.FormatUint(want.seq, 10)
		if ev.ID != wantID || ev.Seq != want.seq || ev.Type != want.typ || string(ev.Data) != want.data || ev.Subsystem != "nms" {
			t.Errorf("event %+v, want id %s type %s data %s subsystem nms", ev, wantID, want.typ, want.data)
		}
		if time.Since(ev.Time) > time.Hour || time.Until(ev.Time) > time.Hour {
			t.Errorf("event time %v is not now", ev.Time)
		}
	}

	// Gone, and back with the last id: the rest, no loss, no duplicate.
	s.conn.Close()
	for i := 6; i <= 9; i++ {
		published(t, admin, fmt.Sprintf(`{"type":"after.drop","data":%d}`, i))
	}
	s = streamOpened(t, "resume", listen[0], token, epoch+"-5")
	for i := uint64(6); i <= 9; i++ {
		if ev := decodeEvent(t, s.nextEvent()); ev.Seq != i || string(ev.Data) != strconv.FormatUint(i, 10) {
			t.Fatalf("after resuming: %+v, want seq %d", ev, i)
		}
	}
	// And live from there.
	published(t, admin, `{"type":"live","data":10}`)
	if ev := decodeEvent(t, s.nextEvent()); ev.Seq != 10 {
		t.Fatalf("live after resuming: %+v, want seq 10", ev)
	}
	for series, want := range map[string]float64{
		`northd_event_resumes_total{subsystem="nms",result="hit"}`:           1,
		`northd_events_published_total{subsystem="nms",type="alarm.raised"}`: 1,
		`northd_events_published_total{subsystem="nms",type="after.drop"}`:   4,
		`northd_event_log_length{subsystem="nms"}`:                           10,
	} {
		if v := testdeps.MetricValue(t, admin, series); v != want {
			t.Errorf("%s = %v, want %v", series, v, want)
		}
	}
	// The first stream may have been written an event or two after its
	// client closed it, before the write failed: at least.
	for series, least := range map[string]float64{
		`northd_events_delivered_total{subsystem="nms"}`:       8,
		`northd_event_delivery_seconds_count{subsystem="nms"}`: 2,
	} {
		if v := testdeps.MetricValue(t, admin, series); v < least {
			t.Errorf("%s = %v, want at least %v", series, v, least)
		}
	}
}

func TestEventStreamResetsWhenTrimmed(t *testing.T) {
	n := start(t, "-listen", "127.0.0.1:0", "-admin", "127.0.0.1:0", "-event-retention", "5")
	listen, admin := n.Listen, n.Admin
	token := loginAs(t, listen[0], "north-1", "192.0.2.10")
	var ids []string
	for i := 1; i <= 12; i++ {
		ids = append(ids, published(t, admin, fmt.Sprintf(`{"type":"t","data":%d}`, i)))
	}
	epoch, _, _ := strings.Cut(ids[0], "-")
	// Once the instance has read all twelve: a long poll from now
	// answers where it has read to. Before, it could still hold 3 to 5,
	// and send them, then the reset.
	testdeps.WaitFor(t, "the instance to read every event", func() bool {
		a := testdeps.Call(t, http.DefaultClient, "GET", "http://"+listen[0]+"/north/events?wait=0s", token, "")
		return strings.Contains(a.Body, `"next":"`+ids[11]+`"`)
	})
	s := streamOpened(t, "the stream", listen[0], token, ids[1])
	f := s.nextEvent()
	if f.event != "reset" || f.id != epoch+"-7" {
		t.Fatalf("first event %+v, want a reset with id %s-7", f, epoch)
	}
	var reset struct {
		Data struct {
			Oldest string `json:"oldest"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(f.data), &reset); err != nil || reset.Data.Oldest != epoch+"-8" {
		t.Fatalf("reset data %s: want oldest %s-8", f.data, epoch)
	}
	for i := uint64(8); i <= 12; i++ {
		if ev := decodeEvent(t, s.nextEvent()); ev.Seq != i {
			t.Fatalf("after the reset: %+v, want seq %d", ev, i)
		}
	}
	// An id of another epoch (another process's log) resets too.
	s2, _, _ := openStream(t, listen[0], token, "elsewhere-3")
	if f := s2.nextEvent(); f.event != "reset" {
		t.Fatalf("another epoch's id: first event %+v, want a reset", f)
	}
	if v := testdeps.MetricValue(t, admin, `northd_event_resumes_total{subsystem="`+testdeps.PortOf(listen[0])+`",result="reset"}`); v != 2 {
		t.Errorf("resumes reset = %v, want 2", v)
	}
}

func TestEventStreamEndsWithItsToken(t *testing.T) {
	n := start(t, "-listen", "127.0.0.1:0", "-admin", "127.0.0.1:0", "-event-heartbeat", "50ms", "-token-ttl", "3s")
	listen, admin := n.Listen, n.Admin
	addr := listen[0]
	for _, c := range []struct {
		name string
		end  func(token string)
	}{
		{"logout", func(token string) {
			if a := testdeps.Call(t, http.DefaultClient, "POST", "http://"+addr+"/north/logout", token, ""); a.Status != 200 {
				t.Fatalf("logout: %d %s", a.Status, a.Body)
			}
		}},
		{"a newer login", func(string) { loginAs(t, addr, "north-1", "192.0.2.10") }},
		{"expiry", func(string) {}},
	} {
		t.Run(c.name, func(t *testing.T) {
			token := loginAs(t, addr, "north-1", "192.0.2.10")
			s := streamOpened(t, "the stream", addr, token, "")
			c.end(token)
			s.closed()
			if _, status, body := openStream(t, addr, token, ""); status != 401 {
				t.Errorf("reconnecting with the ended token: %d %s, want 401", status, body)
			}
		})
	}
	if v := testdeps.MetricValue(t, admin, `northd_event_streams_closed_total{subsystem="`+testdeps.PortOf(addr)+`",why="token_ended"}`); v != 3 {
		t.Errorf("streams closed for their token = %v, want 3", v)
	}
}

func TestEventStreamLimits(t *testing.T) {
	n := start(t, "-listen", "127.0.0.1:0", "-admin", "127.0.0.1:0", "-event-streams-per-token", "1", "-event-max-streams", "2")
	listen := n.Listen
	addr := listen[0]
	t1 := loginAs(t, addr, "north-1", "192.0.2.1")
	t2 := loginAs(t, addr, "north-2", "192.0.2.2")
	t3 := loginAs(t, addr, "north-3", "192.0.2.3")
	if _, status, body := openStream(t, addr, t1, ""); status != 200 {
		t.Fatalf("first stream: %d %s", status, body)
	}
	_, status, body := openStream(t, addr, t1, "")
	if want := `{"code": 3, "description": "too many event streams and long polls are open on this token; close one, or wait the Retry-After seconds"}`; status != 429 || body != want {
		t.Errorf("a second stream on one token: %d %s, want 429 %s", status, body, want)
	}
	if _, status, body := openStream(t, addr, t2, ""); status != 200 {
		t.Fatalf("second token's stream: %d %s", status, body)
	}
	_, status, body = openStream(t, addr, t3, "")
	if want := `{"code": 4, "description": "this instance has as many event streams and long polls open as it may; retry after the Retry-After seconds, on this instance or another"}`; status != 503 || body != want {
		t.Errorf("a third stream with -event-max-streams 2: %d %s, want 503 %s", status, body, want)
	}
	if _, status, body := openStream(t, addr, "0123456789abcdef0123456789abcdef", ""); status != 401 {
		t.Errorf("an unknown token: %d %s, want 401", status, body)
	}
	if _, status, body := openStream(t, addr, t3, "not an id"); status != 400 {
		t.Errorf("a bad Last-Event-ID: %d %s, want 400", status, body)
	}
}

// A waiting long poll counts under -event-streams-per-token as a stream
// does: past it, a poll or a stream is answered 429 with Retry-After, and
// the place is free again once the poll is answered.
func TestLongPollsCountTowardTheTokenLimit(t *testing.T) {
	n := start(t, "-listen", "127.0.0.1:0", "-admin", "127.0.0.1:0", "-event-streams-per-token", "1", "-event-heartbeat", "50ms")
	listen, admin := n.Listen, n.Admin
	addr := listen[0]
	token := loginAs(t, addr, "north-1", "192.0.2.1")
	const refused = `{"code": 3, "description": "too many event streams and long polls are open on this token; close one, or wait the Retry-After seconds"}`
	s := streamOpened(t, "the stream", addr, token, "")
	a := testdeps.Call(t, http.DefaultClient, "GET", "http://"+addr+"/north/events?wait=5s", token, "")
	if a.Status != 429 || a.Body != refused || a.Header.Get("Retry-After") != "5" {
		t.Errorf("a long poll beside the stream: %d %s %v, want 429 %s with Retry-After: 5", a.Status, a.Body, a.Header, refused)
	}
	// wait=0 holds nothing, and answers.
	if a := testdeps.Call(t, http.DefaultClient, "GET", "http://"+addr+"/north/events?wait=0s", token, ""); a.Status != 200 {
		t.Errorf("a poll that does not wait, beside the stream: %d %s, want 200", a.Status, a.Body)
	}
	s.conn.Close() // found by a heartbeat's write
	open := `northd_event_streams_open{subsystem="` + testdeps.PortOf(addr) + `"}`
	testdeps.WaitFor(t, "the stream to close", func() bool { return testdeps.MetricValue(t, admin, open) == 0 })
	done := make(chan testdeps.Answer, 1)
	go func() {
		done <- testdeps.Call(t, http.DefaultClient, "GET", "http://"+addr+"/north/events?wait=60s", token, "")
	}()
	testdeps.WaitFor(t, "the long poll to wait", func() bool {
		return testdeps.MetricValue(t, admin, `northd_event_polls_waiting{subsystem="`+testdeps.PortOf(addr)+`"}`) == 1
	})
	if _, status, body := openStream(t, addr, token, ""); status != 429 || body != refused {
		t.Errorf("a stream beside a waiting long poll: %d %s, want 429 %s", status, body, refused)
	}
	published(t, admin, `{"type":"t","data":1}`)
	if a := <-done; a.Status != 200 || !strings.Contains(a.Body, `"seq":1,`) {
		t.Errorf("the waiting poll: %d %s, want seq 1", a.Status, a.Body)
	}
	testdeps.WaitFor(t, "the poll's place to be free", func() bool {
		return testdeps.MetricValue(t, admin, `northd_event_polls_waiting{subsystem="`+testdeps.PortOf(addr)+`"}`) == 0
	})
	if _, status, body := openStream(t, addr, token, ""); status != 200 {
		t.Errorf("a stream once the poll was answered: %d %s, want 200", status, body)
	}
}

func TestSlowStreamIsDropped(t *testing.T) {
	n := start(t, "-listen", "127.0.0.1:0", "-admin", "127.0.0.1:0", "-event-queue", "20", "-event-log-bytes", "4194304", "-event-max-bytes", "65536")
	listen, admin := n.Listen, n.Admin
	addr := listen[0]
	token := loginAs(t, addr, "north-1", "192.0.2.1")
	s := streamOpened(t, "the stream", addr, token, "")
	s.next() // the retry: the stream is live from here
	big := `{"type":"big","data":"` + strings.Repeat("x", 60000) + `"}`
	series := `northd_event_streams_closed_total{subsystem="` + testdeps.PortOf(addr) + `",why="slow"}`
	// A reader that reads nothing: the socket buffers fill, the stream
	// falls behind and is dropped. Bounded: 2,000 events of 60 kB.
	for i := 0; i < 2000 && testdeps.MetricValue(t, admin, series) == 0; i++ {
		published(t, admin, big)
	}
	testdeps.WaitFor(t, "the slow stream to be dropped", func() bool { return testdeps.MetricValue(t, admin, series) == 1 })
	testdeps.WaitFor(t, "no stream open", func() bool {
		return testdeps.MetricValue(t, admin, `northd_event_streams_open{subsystem="`+testdeps.PortOf(addr)+`"}`) == 0
	})
}

func TestPublishRefusesBadInput(t *testing.T) {
	n := start(t, "-listen", "a=127.0.0.1:0,b=127.0.0.1:0", "-admin", "127.0.0.1:0", "-event-max-bytes", "16")
	admin := n.Admin
	for _, c := range []struct {
		name, query, body string
		status            int
		description       string
	}{
		{"no subsystem named", "", `{"type":"t"}`, 400, "this instance serves several subsystems (a, b): name one with ?subsystem=NAME"},
		{"unknown subsystem", "?subsystem=c", `{"type":"t"}`, 404, `no subsystem here is named \"c\" (this instance serves a, b)`},
		{"empty", "?subsystem=a", ``, 400, `the body is empty: send {\"type\": \"...\", \"data\": ...}, or an array of such objects`},
		{"no type", "?subsystem=a", `{"data":1}`, 400, `type is required: name what happened, such as \"alarm.raised\"`},
		{"bad type", "?subsystem=a", `{"type":"a b"}`, 400, "type may hold letters, digits and . _ : / - only"},
		{"reset", "?subsystem=a", `{"type":"reset"}`, 400, `type \"reset\" is the stream's own, telling a client to resynchronise; name the event otherwise`},
		{"data too big", "?subsystem=a", `{"type":"t","data":"0123456789abcdef"}`, 400, "data is 18 bytes of JSON; at most 16 (-event-max-bytes)"},
		{"unknown field", "?subsystem=a", `{"type":"t","dta":1}`, 400, `the body is not a JSON event object {\"type\": \"...\", \"data\": ..., \"to\": {...}}: json: unknown field \"dta\"`},
		{"bad ip", "?subsystem=a", `{"type":"t","to":{"ip":"10.0.0"}}`, 400, `to.ip \"10.0.0\" is not an IP address`},
		{"empty to", "?subsystem=a", `{"type":"t","to":{}}`, 400, `to names no north server: give {\"ip\": \"...\"} or {\"username\": \"...\"}, or leave \"to\" out to address every one`},
		{"batch, second bad", "?subsystem=a", `[{"type":"t"},{"data":1}]`, 400, `event 1: type is required: name what happened, such as \"alarm.raised\"`},
		{"empty batch", "?subsystem=a", `[]`, 400, "a batch holds 1 to 1000 events, not 0"},
	} {
		t.Run(c.name, func(t *testing.T) {
			a := publish(t, admin, c.query, c.body)
			want := `{"code": 1, "description": "` + c.description + `"}`
			if a.Status != c.status || a.Body != want {
				t.Errorf("%d %s\nwant %d %s", a.Status, a.Body, c.status, want)
			}
		})
	}
}

func TestPublishIdempotencyKey(t *testing.T) {
	n := start(t, "-listen", "127.0.0.1:0", "-admin", "127.0.0.1:0")
	admin := n.Admin
	first := publish(t, admin, "", `{"type":"t","data":1}`, "Idempotency-Key", "k-1")
	again := publish(t, admin, "", `{"type":"t","data":1}`, "Idempotency-Key", "k-1")
	other := publish(t, admin, "", `{"type":"t","data":1}`, "Idempotency-Key", "k-2")
	if first.Status != 202 || again.Status != 202 || again.Body != first.Body || again.Header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("first %d %s, again %d %s %v: want the same answer, replayed", first.Status, first.Body, again.Status, again.Body, again.Header)
	}
	if !strings.Contains(first.Body, `"seq":1}`) || !strings.Contains(other.Body, `"seq":2}`) {
		t.Errorf("first %s, other key %s: want seqs 1 and 2", first.Body, other.Body)
	}
}

func TestPublishOnAPublicAdminNeedsASecret(t *testing.T) {
	secrets := testdeps.WriteUsersFile(t, "# publishers\n0123456789abcdef0123\n")
	n := start(t, "-listen", "127.0.0.1:0", "-admin", "127.0.0.1:0", "-admin-token-file", secrets)
	admin := n.Admin
	for _, c := range []struct {
		auth   string
		status int
	}{{"", 401}, {"Bearer wrong-secret-wrong-secret", 401}, {"Basic 0123456789abcdef0123", 401}, {"Bearer 0123456789abcdef0123", 202}, {"bearer 0123456789abcdef0123", 202}} {
		var a testdeps.Answer
		if c.auth == "" {
			a = publish(t, admin, "", `{"type":"t"}`)
		} else {
			a = publish(t, admin, "", `{"type":"t"}`, "Authorization", c.auth)
		}
		if a.Status != c.status {
			t.Errorf("Authorization %q: %d %s, want %d", c.auth, a.Status, a.Body, c.status)
		}
	}
}

func TestLongPoll(t *testing.T) {
	n := start(t, "-listen", "127.0.0.1:0", "-admin", "127.0.0.1:0")
	listen, admin := n.Listen, n.Admin
	addr := listen[0]
	token := loginAs(t, addr, "north-1", "192.0.2.1")
	id1 := published(t, admin, `{"type":"t","data":1}`)
	epoch, _, _ := strings.Cut(id1, "-")
	published(t, admin, `{"type":"t","data":2,"to":{"ip":"192.0.2.2"}}`)
	published(t, admin, `{"type":"t","data":3}`)
	a := testdeps.Call(t, http.DefaultClient, "GET", "http://"+addr+"/north/events?wait=30s&after="+id1, token, "")
	var got struct {
		Code   int         `json:"code"`
		Events []eventJSON `json:"events"`
		Next   string      `json:"next"`
		Reset  bool        `json:"reset"`
	}
	if err := json.Unmarshal([]byte(a.Body), &got); err != nil || a.Status != 200 || len(got.Events) != 1 || got.Events[0].Seq != 3 || got.Next != epoch+"-3" || got.Reset {
		t.Fatalf("long poll after %s: %d %s", id1, a.Status, a.Body)
	}
	// Nothing new: an empty answer once wait= ends, with the same next.
	a = testdeps.Call(t, http.DefaultClient, "GET", "http://"+addr+"/north/events?wait=10ms&after="+got.Next, token, "")
	if want := `{"code":0,"events":[],"next":"` + epoch + `-3","reset":false}`; a.Status != 200 || a.Body != want {
		t.Errorf("empty long poll: %d %s, want %s", a.Status, a.Body, want)
	}
	// A poll waiting is answered by the next event for it.
	done := make(chan testdeps.Answer, 1)
	go func() {
		done <- testdeps.Call(t, http.DefaultClient, "GET", "http://"+addr+"/north/events?wait=60s&after="+got.Next, token, "")
	}()
	testdeps.WaitFor(t, "the long poll to be waiting", func() bool {
		return testdeps.MetricValue(t, admin, `northd_token_checks_total{subsystem="`+testdeps.PortOf(addr)+`",route="events",result="valid"}`) == 3
	})
	published(t, admin, `{"type":"t","data":4}`)
	if a := <-done; !strings.Contains(a.Body, `"seq":4,`) {
		t.Errorf("waiting long poll: %d %s, want seq 4", a.Status, a.Body)
	}
	if a := testdeps.Call(t, http.DefaultClient, "GET", "http://"+addr+"/north/events?wait=2m", token, ""); a.Status != 400 {
		t.Errorf("wait=2m: %d %s, want 400", a.Status, a.Body)
	}
}

// A first poll to a log that holds no event answers an empty next, and
// after= empty goes on from the oldest event kept: a client that feeds
// each next back misses none published between its polls (the next was
// "-0" before, which after= refused with a 400).
func TestLongPollOnAnEmptyLogMissesNothing(t *testing.T) {
	n := start(t, "-listen", "127.0.0.1:0", "-admin", "127.0.0.1:0")
	addr := n.Listen[0]
	token := loginAs(t, addr, "north-1", "192.0.2.1")
	a := testdeps.Call(t, http.DefaultClient, "GET", "http://"+addr+"/north/events?wait=10ms", token, "")
	if want := `{"code":0,"events":[],"next":"","reset":false}`; a.Status != 200 || a.Body != want {
		t.Fatalf("first poll: %d %s, want %s", a.Status, a.Body, want)
	}
	id := published(t, n.Admin, `{"type":"t","data":1}`)
	a = testdeps.Call(t, http.DefaultClient, "GET", "http://"+addr+"/north/events?wait=30s&after=", token, "")
	if a.Status != 200 || !strings.Contains(a.Body, `"id":"`+id+`"`) || !strings.Contains(a.Body, `"next":"`+id+`"`) {
		t.Errorf("poll with the empty next: %d %s, want the event %s", a.Status, a.Body, id)
	}
}

func TestShutdownClosesStreamsWithARetry(t *testing.T) {
	n := start(t, "-listen", "127.0.0.1:0", "-admin", "127.0.0.1:0")
	listen := n.Listen
	token := loginAs(t, listen[0], "north-1", "192.0.2.1")
	s := streamOpened(t, "the stream", listen[0], token, "")
	s.next()
	done := make(chan error, 1)
	go func() { done <- n.Stop(t) }()
	if retry := s.closed(); retry != "250" {
		t.Errorf("the stream closed after retry: %q, want 250", retry)
	}
	if err := <-done; err != nil {
		t.Errorf("stop: %v", err)
	}
}

// A stream outlives the read, write and idle timeouts of short requests,
// which still close a connection that sends half a request.
func TestStreamOutlivesRequestTimeouts(t *testing.T) {
	n := start(t, "-listen", "127.0.0.1:0", "-admin", "127.0.0.1:0",
		"-read-timeout", "100ms", "-write-timeout", "100ms", "-idle-timeout", "100ms", "-event-heartbeat", "50ms")
	addr, admin := n.Listen[0], n.Admin
	token := loginAs(t, addr, "north-1", "192.0.2.1")
	s := streamOpened(t, "the stream", addr, token, "")
	// Half a request: closed by the read timeout while the stream lives.
	slow, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	io.WriteString(slow, "GET / HTTP/1.1\r\nHost: x\r\n")
	slow.SetReadDeadline(time.Now().Add(2 * time.Minute))
	answer, err := io.ReadAll(slow)
	if err != nil {
		t.Fatalf("the half request's connection: %v, want it closed by the server", err)
	}
	if len(answer) > 0 {
		testdeps.CheckRawAnswer(t, "", answer) // a request never read: answered before routing
	}
	// Twenty heartbeats (a second at least, ten times every timeout)
	// later, the stream still carries events.
	for beats := 0; beats < 20; {
		f, err := s.next()
		if err != nil {
			t.Fatalf("the stream ended after %d heartbeats: %v", beats, err)
		}
		if len(f.comments) > 0 {
			beats++
		}
	}
	published(t, admin, `{"type":"still","data":true}`)
	if ev := decodeEvent(t, s.nextEvent()); ev.Type != "still" {
		t.Fatalf("after the heartbeats: %+v", ev)
	}
}

// Over TLS, read by net/http's client (a close-delimited body, as the
// stream is): the stream works as over plain HTTP.
func TestEventStreamOverTLS(t *testing.T) {
	certFile, keyFile, roots := testdeps.SelfSignedCert(t, t.TempDir(), "stream")
	n := start(t, "-listen", "127.0.0.1:0", "-admin", "127.0.0.1:0", "-tls-cert", certFile, "-tls-key", keyFile)
	listen, admin := n.Listen, n.Admin
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
	base := "https://" + listen[0]
	token := testdeps.LoginToken(t, client, base, `{"username":"north-1","password":"pw","ip":"192.0.2.1"}`)
	req, _ := http.NewRequest("GET", base+"/north/events", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	testdeps.CheckAnswer(t, "GET", "/north/events", req.Header, resp.StatusCode, resp.Header, nil)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream; charset=utf-8" {
		t.Fatalf("%d %v", resp.StatusCode, resp.Header)
	}
	s := &sseStream{t: t, r: bufio.NewReader(resp.Body)}
	if f, _ := s.next(); f.retry != "2000" {
		t.Fatalf("first block %+v, want retry: 2000", f)
	}
	published(t, admin, `{"type":"over.tls","data":"ok"}`)
	if ev := decodeEvent(t, s.nextEvent()); ev.Type != "over.tls" || string(ev.Data) != `"ok"` {
		t.Fatalf("%+v", ev)
	}
}

// An event to an ip is for the north server that held it when it was
// published: the next holder of the ip, under another username, never
// reads it, and the one it was for still does after logging in again.
func TestEventToAnIPGoesToItsHolderThen(t *testing.T) {
	eachStore(t, testEventToAnIPGoesToItsHolderThen)
}

func testEventToAnIPGoesToItsHolderThen(t *testing.T, store ...string) {
	n := start(t, append([]string{"-listen", "127.0.0.1:0", "-admin", "127.0.0.1:0"}, store...)...)
	listen, admin := n.Listen, n.Admin
	addr := listen[0]
	first := loginAs(t, addr, "north-1", "192.0.2.5")
	published(t, admin, `{"type":"t","data":"for north-1","to":{"ip":"192.0.2.5"}}`)
	published(t, admin, `{"type":"t","data":"for all"}`)
	logoutToken(t, addr, first)
	second := loginAs(t, addr, "north-2", "192.0.2.5")
	if got, want := pollAll(t, addr, second), []string{"reset", `"for all"`}; !slices.Equal(got, want) {
		t.Errorf("north-2, the ip's next holder, got %q, want %q", got, want)
	}
	logoutToken(t, addr, second)
	again := loginAs(t, addr, "north-1", "192.0.2.5")
	if got, want := pollAll(t, addr, again), []string{"reset", `"for north-1"`, `"for all"`}; !slices.Equal(got, want) {
		t.Errorf("north-1, back at the ip, got %q, want %q", got, want)
	}
}

// An event to an ip that no one held is for the next north server to log
// in there, through its later logins too, and for no holder after it.
func TestEventToAnUnheldIPGoesToTheNextLogin(t *testing.T) {
	eachStore(t, testEventToAnUnheldIPGoesToTheNextLogin)
}

func testEventToAnUnheldIPGoesToTheNextLogin(t *testing.T, store ...string) {
	n := start(t, append([]string{"-listen", "127.0.0.1:0", "-admin", "127.0.0.1:0"}, store...)...)
	listen, admin := n.Listen, n.Admin
	addr := listen[0]
	before := loginAs(t, addr, "north-0", "192.0.2.5")
	logoutToken(t, addr, before)
	published(t, admin, `{"type":"t","data":"for the next","to":{"ip":"192.0.2.5"}}`)
	first := loginAs(t, addr, "north-1", "192.0.2.5")
	if got, want := pollAll(t, addr, first), []string{"reset", `"for the next"`}; !slices.Equal(got, want) {
		t.Errorf("north-1, the next to log in, got %q, want %q", got, want)
	}
	logoutToken(t, addr, first)
	again := loginAs(t, addr, "north-1", "192.0.2.5")
	if got, want := pollAll(t, addr, again), []string{"reset", `"for the next"`}; !slices.Equal(got, want) {
		t.Errorf("north-1, logged in again, got %q, want %q", got, want)
	}
	logoutToken(t, addr, again)
	second := loginAs(t, addr, "north-2", "192.0.2.5")
	if got, want := pollAll(t, addr, second), []string{"reset"}; !slices.Equal(got, want) {
		t.Errorf("north-2, a later holder, got %q, want %q", got, want)
	}
	// An ip never seen is just as free.
	published(t, admin, `{"type":"t","data":"for a new ip","to":{"ip":"192.0.2.6"}}`)
	third := loginAs(t, addr, "north-3", "192.0.2.6")
	if got, want := pollAll(t, addr, third), []string{"reset", `"for a new ip"`}; !slices.Equal(got, want) {
		t.Errorf("north-3, the first at a new ip, got %q, want %q", got, want)
	}
}
