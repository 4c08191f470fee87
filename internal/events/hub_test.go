package events_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"northd/internal/events"
	"northd/internal/events/memory"
	"northd/internal/testdeps"
)

var hubOptions = events.HubOptions{
	Subsystem:    "nms",
	Heartbeat:    time.Hour,
	Retry:        time.Second,
	DrainRetry:   250 * time.Millisecond,
	WriteTimeout: time.Minute,
	Queue:        1000,
	MaxStreams:   100,
	MaxPerToken:  100,
	CacheEvents:  10,
	CacheBytes:   1 << 20,
	TokenLive:    func([16]byte, time.Time) bool { return true },
}

// startHub runs a hub over log until the test ends.
func startHub(t *testing.T, log events.Log, o events.HubOptions) (*events.Hub, *metrics.Set) {
	return startHubB(t, log, o)
}

func startHubB(t testing.TB, log events.Log, o events.HubOptions) (*events.Hub, *metrics.Set) {
	set := metrics.NewSet()
	h := events.NewHub(log, o, set, `subsystem="nms"`, slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); h.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return h, set
}

// testStream is the client end of a stream the hub serves over loopback.
type testStream struct {
	t  *testing.T
	r  *bufio.Reader
	c  net.Conn
	st *events.Stream
}

func openTestStream(t *testing.T, h *events.Hub, spec events.StreamSpec) *testStream {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	st, err := h.Open(spec, []byte("HEAD\n\n"))
	if err != nil {
		t.Fatal(err)
	}
	go st.Serve(server)
	client.SetReadDeadline(time.Now().Add(2 * time.Minute)) // only a hang reaches it
	s := &testStream{t: t, r: bufio.NewReader(client), c: client, st: st}
	if line, _ := s.r.ReadString('\n'); line != "HEAD\n" {
		t.Fatalf("stream starts %q, want the head", line)
	}
	s.r.ReadString('\n')
	return s
}

// nextData reads up to the next data: line and returns its event type and
// the event's seq and data.
func (s *testStream) next() (typ string, seq uint64, data string) {
	s.t.Helper()
	for {
		line, err := s.r.ReadString('\n')
		if err != nil {
			s.t.Fatalf("stream ended: %v", err)
		}
		if v, ok := strings.CutPrefix(line, "event: "); ok {
			typ = strings.TrimSpace(v)
		}
		if v, ok := strings.CutPrefix(line, "data: "); ok {
			var ev struct {
				Seq  uint64          `json:"seq"`
				Data json.RawMessage `json:"data"`
			}
			if err := json.Unmarshal([]byte(v), &ev); err != nil {
				s.t.Fatalf("data %q: %v", v, err)
			}
			return typ, ev.Seq, string(ev.Data)
		}
	}
}

func publishTo(t *testing.T, log events.Log, to events.Target, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		if _, _, err := log.Publish(context.Background(), "", []events.Draft{{Type: "t", Data: []byte(strconv.Itoa(i)), To: to}}, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
}

var (
	ipA = netip.MustParseAddr("192.0.2.1")
	ipB = netip.MustParseAddr("192.0.2.2")
)

// A stream that none of many events is for stays caught up, its cursor
// moved on by the hub: when one for it comes, after the cache and the log
// have let the others go, it gets it, and no reset.
func TestIdleStreamSkipsEventsForOthersWithoutAReset(t *testing.T) {
	log := memory.New(memory.Options{Retention: 50})
	o := hubOptions
	o.CacheEvents = 30
	h, _ := startHub(t, log, o)
	// What b has received, the hub has read.
	b := openTestStream(t, h, events.StreamSpec{Token: [16]byte{9}, IP: ipB})
	publishTo(t, log, events.Target{}, 1)
	if _, seq, _ := b.next(); seq != 1 {
		t.Fatalf("b got seq %d, want 1", seq)
	}
	a := openTestStream(t, h, events.StreamSpec{Token: [16]byte{1}, IP: ipA, Username: []byte("a")})
	// Once its writer has left it: a writer at work when the others'
	// events pass reads them itself, and one starved by a busy machine
	// for 50 of them would read a reset.
	testdeps.WaitFor(t, "a's writer to leave it idle", a.st.Idle)
	want := uint64(2)
	for _, burst := range []int{20, 20, 20, 20, 20, 20, 20, 20, 20, 20} {
		publishTo(t, log, events.Target{IP: ipB}, burst)
		for i := 0; i < burst; i++ {
			if _, seq, _ := b.next(); seq != want {
				t.Fatalf("b got seq %d, want %d", seq, want)
			}
			want++
		}
	}
	publishTo(t, log, events.Target{IP: ipA}, 1)
	if typ, seq, _ := a.next(); typ != "t" || seq != want {
		t.Fatalf("a got %s %d, want t %d with no reset", typ, seq, want)
	}
}

// A stream that resumes from further back than the cache reads the log,
// in order, then goes on live from the cache.
func TestStreamCatchesUpFromTheLogThenLive(t *testing.T) {
	log := memory.New(memory.Options{Retention: 1000})
	h, _ := startHub(t, log, hubOptions)
	publishTo(t, log, events.Target{}, 500)
	st, err := log.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	s := openTestStream(t, h, events.StreamSpec{Token: [16]byte{1}, IP: ipA, After: events.ID{Epoch: st.Head.Epoch, Seq: 3}, Resume: true})
	for want := uint64(4); want <= 500; want++ {
		if _, seq, _ := s.next(); seq != want {
			t.Fatalf("seq %d, want %d", seq, want)
		}
	}
	publishTo(t, log, events.Target{}, 1)
	if _, seq, _ := s.next(); seq != 501 {
		t.Fatalf("live: seq %d, want 501", seq)
	}
}

// A reader that takes nothing is dropped once it falls Queue events
// behind; the other streams go on.
func TestReaderThatTakesNothingIsDropped(t *testing.T) {
	log := memory.New(memory.Options{Retention: 100_000})
	o := hubOptions
	o.Queue = 50
	o.CacheEvents = 100_000
	o.CacheBytes = 1 << 30
	h, set := startHub(t, log, o)
	stuck := openTestStream(t, h, events.StreamSpec{Token: [16]byte{1}, IP: ipA})
	fine := openTestStream(t, h, events.StreamSpec{Token: [16]byte{2}, IP: ipB})
	big := []byte(`"` + strings.Repeat("x", 16<<10) + `"`)
	delivered := 0
	for i := 0; i < 5000 && h.StreamsOpen() == 2; i++ {
		if _, _, err := log.Publish(context.Background(), "", []events.Draft{{Type: "t", Data: big}}, time.Now()); err != nil {
			t.Fatal(err)
		}
		fine.next()
		delivered++
	}
	testdeps.WaitFor(t, "the stuck stream to be dropped", func() bool { return h.StreamsOpen() == 1 })
	var out strings.Builder
	set.WritePrometheus(&out)
	if !strings.Contains(out.String(), `northd_event_streams_closed_total{subsystem="nms",why="slow"} 1`) {
		t.Errorf("metrics:\n%s", out.String())
	}
	// Its connection is closed: reading what it was sent ends.
	stuck.c.SetReadDeadline(time.Now().Add(2 * time.Minute))
	if _, err := io.Copy(io.Discard, stuck.r); err != nil {
		t.Errorf("the dropped stream: %v, want its end", err)
	}
	publishTo(t, log, events.Target{}, 1)
	if _, seq, _ := fine.next(); seq != uint64(delivered+1) {
		t.Errorf("the other stream: seq %d, want %d", seq, delivered+1)
	}
}

func TestShutdownSendsAFinalRetry(t *testing.T) {
	log := memory.New(memory.Options{Retention: 10})
	h, _ := startHub(t, log, hubOptions)
	s := openTestStream(t, h, events.StreamSpec{Token: [16]byte{1}, IP: ipA})
	h.Shutdown(context.Background())
	rest, err := io.ReadAll(s.r)
	if err != nil || string(rest) != "retry: 250\n\n" {
		t.Errorf("after Shutdown the stream got %q, %v; want a final retry and its end", rest, err)
	}
	if _, err := h.Open(events.StreamSpec{Token: [16]byte{2}}, nil); err != events.ErrShuttingDown {
		t.Errorf("Open after Shutdown: %v, want ErrShuttingDown", err)
	}
}

// A stream opened before the hub has read where the log is, with events
// published before the hub starts from there, gets them: the hub wakes
// it when it starts, since it will not wake it for those.
func TestStreamOpenedBeforeTheHubStarts(t *testing.T) {
	log := memory.New(memory.Options{Retention: 50})
	set := metrics.NewSet()
	h := events.NewHub(log, hubOptions, set, `subsystem="nms"`, slog.New(slog.DiscardHandler))
	s := openTestStream(t, h, events.StreamSpec{Token: [16]byte{1}, IP: ipA})
	testdeps.WaitFor(t, "the stream's writer to leave it idle", s.st.Idle)
	publishTo(t, log, events.Target{}, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); h.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	if typ, seq, _ := s.next(); typ != "t" || seq != 1 {
		t.Fatalf("got %s %d, want t 1", typ, seq)
	}
}

// A stream whose writes block, a client that takes nothing, is dropped
// after WriteTimeout, and its place on the token is free again.
func TestStreamWhoseWritesBlockIsDropped(t *testing.T) {
	o := hubOptions
	o.WriteTimeout = 10 * time.Millisecond
	o.MaxPerToken = 1
	h, set := startHub(t, memory.New(memory.Options{Retention: 10}), o)
	server, client := net.Pipe() // a write waits for a read, which never comes
	defer client.Close()
	st, err := h.Open(events.StreamSpec{Token: [16]byte{1}, IP: ipA}, []byte("HEAD\n\n"))
	if err != nil {
		t.Fatal(err)
	}
	go st.Serve(server)
	testdeps.WaitFor(t, "the blocked stream to be dropped", func() bool { return h.StreamsOpen() == 0 })
	var out strings.Builder
	set.WritePrometheus(&out)
	if !strings.Contains(out.String(), `northd_event_streams_closed_total{subsystem="nms",why="write_failed"} 1`) {
		t.Errorf("metrics:\n%s", out.String())
	}
	if _, err := h.Open(events.StreamSpec{Token: [16]byte{1}, IP: ipA}, nil); err != nil {
		t.Errorf("a stream on the token after the drop: %v, want its place free", err)
	}
}

// A long poll holds a place under MaxPerToken and MaxStreams as a stream
// does, until it ends.
func TestLongPollsCountUnderTheStreamLimits(t *testing.T) {
	o := hubOptions
	o.MaxPerToken = 2
	o.MaxStreams = 3
	h, set := startHub(t, memory.New(memory.Options{Retention: 10}), o)
	a, b := [16]byte{1}, [16]byte{2}
	if err := h.BeginPoll(a); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Open(events.StreamSpec{Token: a, IP: ipA}, nil); err != nil {
		t.Fatal(err)
	}
	if err := h.BeginPoll(a); err != events.ErrTooManyForToken {
		t.Errorf("a third on token a: %v, want ErrTooManyForToken", err)
	}
	if _, err := h.Open(events.StreamSpec{Token: a, IP: ipA}, nil); err != events.ErrTooManyForToken {
		t.Errorf("a stream after a poll and a stream on token a: %v, want ErrTooManyForToken", err)
	}
	if err := h.BeginPoll(b); err != nil {
		t.Fatal(err)
	}
	if err := h.BeginPoll(b); err != events.ErrTooManyStreams {
		t.Errorf("a fourth on the hub: %v, want ErrTooManyStreams", err)
	}
	if n := h.PollsWaiting(); n != 2 {
		t.Errorf("polls waiting: %d, want 2", n)
	}
	h.EndPoll(a)
	if err := h.BeginPoll(a); err != nil {
		t.Errorf("a poll on token a after one ended: %v, want its place free", err)
	}
	var out strings.Builder
	set.WritePrometheus(&out)
	for _, want := range []string{
		`northd_event_polls_waiting{subsystem="nms"} 2`,
		`northd_event_streams_refused_total{subsystem="nms",why="per_token"} 2`,
		`northd_event_streams_refused_total{subsystem="nms",why="max_streams"} 1`,
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("no %s in:\n%s", want, out.String())
		}
	}
}

// An event for the next login at an ip no one held (NextLogin) is not
// passed over by a stream or poll still open on an earlier token there:
// the stream closes before it, the poll answers what came before it, so
// that the north server, logging in again, resumes from before it and
// gets it. Another ip's reader passes over it as over any event not its.
func TestAnOutlivedReaderStopsBeforeTheNextLoginsEvent(t *testing.T) {
	log := memory.New(memory.Options{Retention: 100})
	h, set := startHub(t, log, hubOptions)
	old := events.Tenure{Login: 3, Prev: 0}
	st := openTestStream(t, h, events.StreamSpec{Token: [16]byte{1}, IP: ipA, Username: []byte("a"), Tenure: old})
	other := openTestStream(t, h, events.StreamSpec{Token: [16]byte{2}, IP: ipB, Username: []byte("b"), Tenure: old})
	publishTo(t, log, events.Target{}, 1)                      // 1: to all
	publishTo(t, log, events.Target{IP: ipA, NextLogin: 4}, 1) // 2: for the login after a's
	publishTo(t, log, events.Target{}, 1)                      // 3: to all
	if _, seq, _ := st.next(); seq != 1 {
		t.Fatalf("a got seq %d, want 1", seq)
	}
	st.c.SetReadDeadline(time.Now().Add(2 * time.Minute))
	if rest, err := io.ReadAll(st.r); err != nil || strings.Contains(string(rest), "data: ") {
		t.Errorf("after seq 1, a's stream: %q, %v; want its end, with no event past the next login's", rest, err)
	}
	for _, want := range []uint64{1, 3} {
		if _, seq, _ := other.next(); seq != want {
			t.Fatalf("b got seq %d, want %d", seq, want)
		}
	}
	var out strings.Builder
	set.WritePrometheus(&out)
	if !strings.Contains(out.String(), `northd_event_streams_closed_total{subsystem="nms",why="token_ended"} 1`) {
		t.Errorf("metrics:\n%s", out.String())
	}

	first := events.ID{Epoch: "", Seq: 1}
	stats, _ := log.Stats(context.Background())
	first.Epoch = stats.Head.Epoch
	for _, c := range []struct {
		name   string
		reader events.Reader
		body   string
		next   uint64
	}{
		{"a poll on a's earlier token", events.Reader{IP: ipA, Username: []byte("a"), Tenure: old}, "", 1},
		{"a poll of the next login", events.Reader{IP: ipA, Username: []byte("a"), Tenure: events.Tenure{Login: 4, Prev: 0}}, "2 3 ", 3},
		{"a poll at another ip", events.Reader{IP: ipB, Username: []byte("b"), Tenure: old}, "3 ", 3},
	} {
		body, polled, err := h.Poll(context.Background(), first, false, time.Hour, &c.reader, 10, 1<<20, nil)
		var seqs strings.Builder
		var evs []struct{ Seq uint64 }
		json.Unmarshal([]byte("["+strings.TrimSuffix(string(body), ",")+"]"), &evs)
		for _, e := range evs {
			seqs.WriteString(strconv.FormatUint(e.Seq, 10) + " ")
		}
		if err != nil || seqs.String() != c.body || polled.Next.Seq != c.next {
			t.Errorf("%s: %q next %v, %v; want %q next seq %d", c.name, seqs.String(), polled.Next, err, c.body, c.next)
		}
	}
}
