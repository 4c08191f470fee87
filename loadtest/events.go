package main

// loadtest events: north servers streaming their events while producers
// publish, every event verified on every stream. See loadtest/README.md,
// "Events".

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"northd/contract"
)

// eventsConfig is loadtest events' command line.
type eventsConfig struct {
	target, admin string
	mode          string
	streams       int
	rate          int
	batch         int
	duration      time.Duration
	events        int
	pid, storePID int
	out           string
}

// EventsReport is what loadtest events writes (-out) and prints.
type EventsReport struct {
	Mode      string     `json:"mode"`
	Streams   int        `json:"streams"`
	Published int        `json:"published"`
	Delivered int64      `json:"delivered"` // events received, over every stream
	Seconds   float64    `json:"seconds"`
	Latency   *Quantiles `json:"publish_to_receive_seconds,omitempty"`
	// ServerCPUSeconds is northd's CPU time over the run; DeliveredPerCPUSecond
	// divides the deliveries by it: events per second per core.
	ServerCPUSeconds      float64 `json:"server_cpu_seconds,omitempty"`
	StoreCPUSeconds       float64 `json:"store_cpu_seconds,omitempty"`
	DeliveredPerCPUSecond float64 `json:"delivered_per_cpu_second,omitempty"`
	// Idle streams: northd's RSS and Go heap in use per stream.
	RSSPerStream  float64  `json:"rss_bytes_per_stream,omitempty"`
	HeapPerStream float64  `json:"heap_bytes_per_stream,omitempty"`
	Problems      []string `json:"problems,omitempty"`
}

func runEvents(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg := eventsConfig{}
	fs := flag.NewFlagSet("loadtest events", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.target, "target", "http://127.0.0.1:8000", "the subsystem's base `URL`")
	fs.StringVar(&cfg.admin, "admin", "127.0.0.1:9100", "northd's admin `address`, where events are published")
	fs.StringVar(&cfg.mode, "mode", "latency", "latency: -streams streams while -rate events/s are published for -duration, each event's publish-to-receive time measured; fanout: -events events published in batches of -batch as fast as they go, to -streams streams; idle: RSS and heap per idle stream")
	fs.IntVar(&cfg.streams, "streams", 100, "north servers, each with its own stream")
	fs.IntVar(&cfg.rate, "rate", 10000, "latency: events published per second")
	fs.IntVar(&cfg.batch, "batch", 10, "events per publish (latency: sent every batch/rate seconds)")
	fs.DurationVar(&cfg.duration, "duration", 10*time.Second, "latency: how long to publish")
	fs.IntVar(&cfg.events, "events", 20000, "fanout: events to publish")
	fs.IntVar(&cfg.pid, "pid", 0, "northd's process id, for its CPU time and RSS (with-server.sh passes it)")
	fs.IntVar(&cfg.storePID, "store-pid", 0, "the redis-server's process id, for its CPU time (with-server.sh passes it for {redis})")
	fs.StringVar(&cfg.out, "out", "", "write the JSON report to this `file`")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if cfg.streams <= 0 || cfg.rate <= 0 || cfg.batch <= 0 || cfg.batch > 1000 || cfg.events <= 0 || cfg.duration <= 0 {
		fmt.Fprintln(stderr, "loadtest events: -streams, -rate, -events and -duration must be positive, -batch 1 to 1000")
		return 2
	}
	cfg.target = strings.TrimRight(cfg.target, "/")
	r, err := eventsRun(ctx, cfg)
	if err != nil {
		fmt.Fprintln(stderr, "loadtest events:", err)
		return 1
	}
	return writeStreamReport("loadtest events", cfg.out, r, r.Problems, stdout, stderr)
}

// eventStream is one north server's stream, checking as it reads that the
// seqs come one after another, each once.
type eventStream struct {
	conn      net.Conn
	lastSeq   atomic.Uint64
	received  atomic.Int64
	mu        sync.Mutex
	hist      *hdrhistogram.Histogram // publish-to-receive, ns
	problem   string
	firstSeen chan struct{}
}

func eventsRun(ctx context.Context, cfg eventsConfig) (*EventsReport, error) {
	client := &http.Client{Timeout: time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	u, err := url.Parse(cfg.target)
	if err != nil {
		return nil, err
	}
	r := &EventsReport{Mode: cfg.mode, Streams: cfg.streams}
	rssBefore, heapBefore := int64(0), 0.0
	if cfg.mode == "idle" {
		if rssBefore, err = readRSS(cfg.pid); err != nil {
			return nil, fmt.Errorf("idle needs -pid: %v", err)
		}
		heapBefore = adminMetric(client, cfg.admin, "go_memstats_heap_inuse_bytes")
	}
	streams := make([]*eventStream, cfg.streams)
	for i := range streams {
		s, err := openEventStream(client, cfg.target, u.Host, i)
		if err != nil {
			return nil, fmt.Errorf("stream %d: %v", i, err)
		}
		defer s.conn.Close()
		streams[i] = s
		go s.read(cfg.mode == "latency")
	}
	if cfg.mode == "idle" {
		// The streams are open once northd counts them all.
		deadline := time.Now().Add(time.Minute)
		for adminMetricPrefix(client, cfg.admin, "northd_event_streams_open{") < float64(cfg.streams) {
			if time.Now().After(deadline) {
				return nil, errors.New("northd did not report every stream open within a minute")
			}
			time.Sleep(100 * time.Millisecond)
		}
		rss, err := readRSS(cfg.pid)
		if err != nil {
			return nil, err
		}
		heap := adminMetric(client, cfg.admin, "go_memstats_heap_inuse_bytes")
		r.RSSPerStream = float64(rss-rssBefore) / float64(cfg.streams)
		r.HeapPerStream = (heap - heapBefore) / float64(cfg.streams)
		return r, nil
	}
	// Each stream is open once northd counts it: an event published
	// before would not be its.
	deadline := time.Now().Add(time.Minute)
	for adminMetricPrefix(client, cfg.admin, "northd_event_streams_open{") < float64(cfg.streams) {
		if time.Now().After(deadline) {
			return nil, errors.New("northd did not report every stream open within a minute")
		}
		time.Sleep(50 * time.Millisecond)
	}

	cpuBefore, storeBefore := procCPU(cfg.pid), procCPU(cfg.storePID)
	start := time.Now()
	switch cfg.mode {
	case "latency":
		interval := time.Duration(float64(time.Second) * float64(cfg.batch) / float64(cfg.rate))
		next := time.Now()
		for end := start.Add(cfg.duration); time.Now().Before(end) && ctx.Err() == nil; {
			if err := publishBatch(client, cfg.admin, cfg.batch, r.Published); err != nil {
				return nil, err
			}
			r.Published += cfg.batch
			next = next.Add(interval)
			if d := time.Until(next); d > 0 {
				time.Sleep(d)
			}
		}
	case "fanout":
		for r.Published < cfg.events && ctx.Err() == nil {
			n := min(cfg.batch, cfg.events-r.Published)
			if err := publishBatch(client, cfg.admin, n, r.Published); err != nil {
				return nil, err
			}
			r.Published += n
		}
	default:
		return nil, fmt.Errorf("-mode %q: want latency, fanout or idle", cfg.mode)
	}
	// Every stream receives every event, or the run failed.
	deadline = time.Now().Add(time.Minute)
	for _, s := range streams {
		for s.received.Load() < int64(r.Published) && time.Now().Before(deadline) && s.err() == "" {
			time.Sleep(10 * time.Millisecond)
		}
	}
	r.Seconds = time.Since(start).Seconds()
	if cpu := procCPU(cfg.pid); cpu >= 0 && cpuBefore >= 0 {
		r.ServerCPUSeconds = (cpu - cpuBefore).Seconds()
	}
	if cpu := procCPU(cfg.storePID); cpu >= 0 && storeBefore >= 0 {
		r.StoreCPUSeconds = (cpu - storeBefore).Seconds()
	}
	hist := newHist()
	for i, s := range streams {
		r.Delivered += s.received.Load()
		if p := s.err(); p != "" {
			r.Problems = append(r.Problems, fmt.Sprintf("stream %d: %s", i, p))
		} else if got := s.received.Load(); got != int64(r.Published) {
			r.Problems = append(r.Problems, fmt.Sprintf("stream %d received %d of %d events", i, got, r.Published))
		}
		s.mu.Lock()
		hist.Merge(s.hist)
		s.mu.Unlock()
	}
	if cfg.mode == "latency" {
		q := quantiles(hist)
		r.Latency = &q
	}
	if r.ServerCPUSeconds > 0 {
		r.DeliveredPerCPUSecond = float64(r.Delivered) / r.ServerCPUSeconds
	}
	return r, nil
}

// openEventStream logs north server i in (its own ip) and opens its stream.
func openEventStream(client *http.Client, target, host string, i int) (*eventStream, error) {
	body := fmt.Sprintf(`{"username":"stream-%d","password":"loadtest","ip":"10.%d.%d.%d"}`, i, 100+i>>16, i>>8&255, i&255)
	resp, err := client.Post(target+"/north/login", "application/json", strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	answer, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	token, err := contract.LoginToken(string(answer))
	if err != nil {
		return nil, fmt.Errorf("login: %d %s", resp.StatusCode, answer)
	}
	conn, err := net.DialTimeout("tcp", host, 10*time.Second)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(conn, "GET /north/events HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n\r\n", host, token)
	return &eventStream{conn: conn, hist: newHist()}, nil
}

// read reads the stream until it ends, checking each event's seq follows
// the last, and measuring publish-to-receive from the publisher's time in
// the event's data when timed.
func (s *eventStream) read(timed bool) {
	br := bufio.NewReaderSize(s.conn, 64<<10)
	status, err := br.ReadString('\n')
	if err != nil || !strings.Contains(status, " 200 ") {
		s.fail(fmt.Sprintf("the stream was refused: %q %v", status, err))
		return
	}
	// Whole reads scanned for their data lines: at 10,000 events/s to
	// 100 streams, a read call per line, or decoding each event, would
	// make this tool the bottleneck, not northd.
	buf := make([]byte, 256<<10)
	have := 0
	for {
		n, err := br.Read(buf[have:])
		if n == 0 && err != nil {
			return
		}
		have += n
		now := time.Now().UnixNano()
		chunk := buf[:have]
		for {
			end := bytes.IndexByte(chunk, '\n')
			if end < 0 {
				break
			}
			line := chunk[:end]
			chunk = chunk[end+1:]
			if !s.take(line, now, timed) {
				return
			}
		}
		have = copy(buf, chunk) // a line read in part waits for the rest
		if have == len(buf) {
			s.fail("a line longer than 256 KiB")
			return
		}
	}
}

// take checks one line of the stream, read at now; false once the stream
// has failed.
func (s *eventStream) take(line []byte, now int64, timed bool) bool {
	data, ok := bytes.CutPrefix(line, []byte("data: "))
	if !ok {
		return true
	}
	seq, ok1 := numberAfter(data, `"seq":`)
	t, ok2 := numberAfter(data, `"data":{"t":`)
	if !ok1 || (timed && !ok2) {
		s.fail(fmt.Sprintf("event data %q", data))
		return false
	}
	if last := s.lastSeq.Load(); last != 0 && uint64(seq) != last+1 {
		s.fail(fmt.Sprintf("seq %d after %d: a gap or a duplicate", seq, last))
		return false
	}
	s.lastSeq.Store(uint64(seq))
	if timed {
		s.mu.Lock()
		s.hist.RecordValue(max(now-t, 1))
		s.mu.Unlock()
	}
	s.received.Add(1)
	return true
}

// numberAfter reads the decimal number that follows key in b.
func numberAfter(b []byte, key string) (int64, bool) {
	i := bytes.Index(b, []byte(key))
	if i < 0 {
		return 0, false
	}
	b = b[i+len(key):]
	n, digits := int64(0), 0
	for ; digits < len(b) && b[digits] >= '0' && b[digits] <= '9'; digits++ {
		n = n*10 + int64(b[digits]-'0')
	}
	return n, digits > 0
}

func (s *eventStream) fail(p string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.problem == "" {
		s.problem = p
	}
}

func (s *eventStream) err() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.problem
}

// publishBatch publishes n events in one request, each carrying the send
// time and its number.
func publishBatch(client *http.Client, admin string, n, first int) error {
	var b strings.Builder
	b.WriteByte('[')
	t := time.Now().UnixNano()
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"type":"load","data":{"t":%d,"n":%d}}`, t, first+i)
	}
	b.WriteByte(']')
	resp, err := client.Post("http://"+admin+"/north/events", "application/json", strings.NewReader(b.String()))
	if err != nil {
		return err
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 202 {
		return fmt.Errorf("publish: %d %s", resp.StatusCode, body)
	}
	return nil
}

// adminMetric reads one series from northd's /metrics; 0 when absent.
func adminMetric(client *http.Client, admin, series string) float64 {
	return adminMetricPrefix(client, admin, series+" ")
}

// adminMetricPrefix sums the series whose line starts with prefix.
func adminMetricPrefix(client *http.Client, admin, prefix string) float64 {
	resp, err := client.Get("http://" + admin + "/metrics")
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	sum := 0.0
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if line, ok := strings.CutPrefix(sc.Text(), prefix); ok {
			f := strings.Fields(line)
			v, _ := strconv.ParseFloat(f[len(f)-1], 64)
			sum += v
		}
	}
	return sum
}
