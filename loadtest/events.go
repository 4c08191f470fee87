package main

// loadtest events: streams verified event by event while events are
// published, against northd or, for comparison, Centrifugo. See
// loadtest/README.md, "Events".

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// eventsConfig is loadtest events' command line.
type eventsConfig struct {
	peer             string
	target, admin    string
	centrifugoConfig string
	mode             string
	streams          int
	rate             int
	batch            int
	duration         time.Duration
	events           int
	publishers       int
	pid, storePID    int
	out              string
}

// EventsReport is what loadtest events writes (-out) and prints. Its
// field names are read by other tools (bench's stream comparison): add
// fields, rename none.
type EventsReport struct {
	Peer      string     `json:"peer"` // northd or centrifugo
	Mode      string     `json:"mode"`
	Streams   int        `json:"streams"`
	Published int        `json:"published"`
	Delivered int64      `json:"delivered"` // events received, over every stream
	Seconds   float64    `json:"seconds"`
	Latency   *Quantiles `json:"publish_to_receive_seconds,omitempty"`
	// The publisher (latency mode): the events a second asked, how long
	// publishing lasted, the share of the events asked over -duration
	// that the server took, and the batches sent more than one interval
	// after they were due (the publishers all busy).
	AskedRate      int     `json:"asked_rate,omitempty"`
	PublishSeconds float64 `json:"publish_seconds"`
	PublishedShare float64 `json:"published_share,omitempty"`
	PublishesLate  int     `json:"publishes_late"`
	// ServerCPUSeconds is the server's CPU time over the run;
	// DeliveredPerCPUSecond divides the deliveries by it: events per
	// second per core.
	ServerCPUSeconds      float64 `json:"server_cpu_seconds,omitempty"`
	StoreCPUSeconds       float64 `json:"store_cpu_seconds,omitempty"`
	DeliveredPerCPUSecond float64 `json:"delivered_per_cpu_second,omitempty"`
	// ServerWrites is the server's write system calls over the same part
	// (syscw in /proc/PID/io), WritesPerDelivery those per event
	// delivered: below 1 when the server writes several events at once.
	ServerWrites      int64   `json:"server_writes,omitempty"`
	WritesPerDelivery float64 `json:"writes_per_delivery,omitempty"`
	ServerRSSBytes    int64   `json:"server_rss_bytes,omitempty"` // at the end
	// Idle streams: the server's RSS (and northd's Go heap) per stream.
	RSSPerStream  float64  `json:"rss_bytes_per_stream,omitempty"`
	HeapPerStream float64  `json:"heap_bytes_per_stream,omitempty"`
	Problems      []string `json:"problems,omitempty"`
}

// eventsPeer is the server under test.
type eventsPeer interface {
	// openStream opens stream i: its response's head read, its body
	// to be read by the stream.
	openStream(i int) (*eventStream, *http.Response, error)
	// awaitStreams returns once the server holds every stream, so that
	// every event published from then on is theirs.
	awaitStreams(streams []*eventStream, deadline time.Time) error
	// newPublisher is one publishing connection.
	newPublisher() eventPublisher
	// heapInUse is the server's Go heap in use, when it says.
	heapInUse() (float64, bool)
}

func runEvents(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg := eventsConfig{}
	fs := flag.NewFlagSet("loadtest events", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.peer, "peer", "northd", "the server: northd, or centrifugo (v6, its uni_sse transport; see bench/peers/centrifugo)")
	fs.StringVar(&cfg.target, "target", "http://127.0.0.1:8000", "the subsystem's base `URL` (centrifugo: Centrifugo's)")
	fs.StringVar(&cfg.admin, "admin", "127.0.0.1:9100", "northd's admin `address`, where events are published (centrifugo: unused, events go to -target's server API)")
	fs.StringVar(&cfg.centrifugoConfig, "centrifugo-config", "", "centrifugo: the server's configuration `file` (bench/peers/centrifugo/config.json), for its token secret and API key")
	fs.StringVar(&cfg.mode, "mode", "latency", "latency: -streams streams while -rate events/s are published for -duration, each event's publish-to-receive time measured; fanout: -events events published in batches of -batch as fast as they go, to -streams streams; idle: RSS (and heap) per idle stream")
	fs.IntVar(&cfg.streams, "streams", 100, "streams, each its own north server (centrifugo: its own user)")
	fs.IntVar(&cfg.rate, "rate", 10000, "latency: events published per second")
	fs.IntVar(&cfg.batch, "batch", 10, "events per publish (latency: one due every batch/rate seconds)")
	fs.DurationVar(&cfg.duration, "duration", 10*time.Second, "latency: how long to publish")
	fs.IntVar(&cfg.events, "events", 20000, "fanout: events to publish")
	fs.IntVar(&cfg.publishers, "publishers", 8, "publishes in flight at most, each on a keep-alive connection of its own")
	fs.IntVar(&cfg.pid, "pid", 0, "the server's process id, for its CPU time, writes and RSS (default: the process listening on -target's port, when local)")
	fs.IntVar(&cfg.storePID, "store-pid", 0, "the redis-server's process id, for its CPU time (with-server.sh passes it for {redis})")
	fs.StringVar(&cfg.out, "out", "", "write the JSON report to this `file`")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if cfg.streams <= 0 || cfg.rate <= 0 || cfg.batch <= 0 || cfg.batch > 1000 || cfg.events <= 0 || cfg.duration <= 0 || cfg.publishers <= 0 || cfg.publishers > 256 {
		fmt.Fprintln(stderr, "loadtest events: -streams, -rate, -events and -duration must be positive, -batch 1 to 1000, -publishers 1 to 256")
		return 2
	}
	cfg.target = strings.TrimRight(cfg.target, "/")
	u, err := url.Parse(cfg.target)
	if err != nil || u.Host == "" {
		fmt.Fprintf(stderr, "loadtest events: -target %q: want a base URL, http://host:port\n", cfg.target)
		return 2
	}
	var peer eventsPeer
	switch cfg.peer {
	case "northd":
		peer = newNorthdPeer(cfg, u.Host)
	case "centrifugo":
		if cfg.centrifugoConfig == "" {
			fmt.Fprintln(stderr, "loadtest events: -peer centrifugo needs -centrifugo-config FILE (bench/peers/centrifugo/config.json), the configuration the server runs with")
			return 2
		}
		secrets, err := readCentrifugoConfig(cfg.centrifugoConfig)
		if err != nil {
			fmt.Fprintln(stderr, "loadtest events: -centrifugo-config:", err)
			return 2
		}
		peer = newCentrifugoPeer(cfg, u.Host, secrets)
	default:
		fmt.Fprintf(stderr, "loadtest events: -peer %q: want northd or centrifugo\n", cfg.peer)
		return 2
	}
	if cfg.mode != "latency" && cfg.mode != "fanout" && cfg.mode != "idle" {
		fmt.Fprintf(stderr, "loadtest events: -mode %q: want latency, fanout or idle\n", cfg.mode)
		return 2
	}
	if cfg.mode == "latency" && eventsPlan(cfg).total < cfg.batch {
		fmt.Fprintf(stderr, "loadtest events: -rate %d for -duration %v is %d events, not one batch of %d: publish for longer\n", cfg.rate, cfg.duration, eventsPlan(cfg).total, cfg.batch)
		return 2
	}
	if cfg.pid == 0 {
		if port := localPort(cfg.target); port > 0 {
			cfg.pid, _ = pidListeningOn(port)
		}
	}
	r, err := eventsRun(ctx, cfg, peer)
	if err != nil {
		fmt.Fprintln(stderr, "loadtest events:", err)
		return 1
	}
	return writeStreamReport("loadtest events", cfg.out, r, r.Problems, stdout, stderr)
}

func eventsRun(ctx context.Context, cfg eventsConfig, peer eventsPeer) (*EventsReport, error) {
	r := &EventsReport{Peer: cfg.peer, Mode: cfg.mode, Streams: cfg.streams}
	rssBefore, heapBefore := int64(0), 0.0
	if cfg.mode == "idle" {
		var err error
		if rssBefore, err = readRSS(cfg.pid); err != nil {
			return nil, fmt.Errorf("idle needs the server's -pid: %v", err)
		}
		heapBefore, _ = peer.heapInUse()
	}
	plan := eventsPlan(cfg)
	streams := make([]*eventStream, cfg.streams)
	for i := range streams {
		s, resp, err := peer.openStream(i)
		if err != nil {
			return nil, fmt.Errorf("stream %d: %v", i, err)
		}
		defer s.conn.Close()
		s.expect(plan.total)
		streams[i] = s
		go s.read(resp, cfg.mode == "latency")
	}
	if err := peer.awaitStreams(streams, time.Now().Add(time.Minute)); err != nil {
		return nil, err
	}
	if cfg.mode == "idle" {
		rss, err := readRSS(cfg.pid)
		if err != nil {
			return nil, err
		}
		r.ServerRSSBytes = rss
		r.RSSPerStream = float64(rss-rssBefore) / float64(cfg.streams)
		if heap, ok := peer.heapInUse(); ok {
			r.HeapPerStream = (heap - heapBefore) / float64(cfg.streams)
		}
		return r, nil
	}

	cpuBefore, storeBefore := procCPU(cfg.pid), procCPU(cfg.storePID)
	writesBefore, writesErr := readProcIO(cfg.pid, "syscw")
	workers := make([]eventPublisher, cfg.publishers)
	for i := range workers {
		workers[i] = peer.newPublisher()
	}
	sleeper := newPreciseSleeper()
	defer sleeper.close()
	start := time.Now()
	out, err := publishOpenLoop(ctx, plan, workers, realClock{sleeper})
	if err != nil {
		return nil, err
	}
	r.Published, r.PublishSeconds, r.PublishesLate = out.published, out.seconds, out.late
	// Every stream receives every event, or the run failed.
	deadline := time.Now().Add(time.Minute)
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
	if writes, err := readProcIO(cfg.pid, "syscw"); err == nil && writesErr == nil {
		r.ServerWrites = writes - writesBefore
	}
	r.ServerRSSBytes, _ = readRSS(cfg.pid)
	hist := newHist()
	for i, s := range streams {
		r.Delivered += s.received.Load()
		if p := s.err(); p != "" {
			r.Problems = append(r.Problems, fmt.Sprintf("stream %d: %s", i, p))
		} else if got := s.received.Load(); got != int64(r.Published) {
			r.Problems = append(r.Problems, fmt.Sprintf("stream %d received %d of %d events", i, got, r.Published))
		} else if n := s.missing(r.Published); n >= 0 {
			r.Problems = append(r.Problems, fmt.Sprintf("stream %d never received the event numbered %d", i, n))
		}
		s.mu.Lock()
		hist.Merge(s.hist)
		s.mu.Unlock()
	}
	if cfg.mode == "latency" {
		q := quantiles(hist)
		r.Latency = &q
		r.AskedRate = cfg.rate
	}
	r.derive(cfg.duration)
	return r, nil
}

// eventsPlan is what the run publishes: -events in fanout mode, -rate
// for -duration in latency mode, nothing in idle mode (an event then
// fails the stream that takes it).
func eventsPlan(cfg eventsConfig) publishPlan {
	switch cfg.mode {
	case "latency":
		return publishPlan{total: int(float64(cfg.rate) * cfg.duration.Seconds()), batch: cfg.batch, rate: cfg.rate, limit: cfg.duration}
	case "fanout":
		return publishPlan{total: cfg.events, batch: cfg.batch}
	}
	return publishPlan{batch: cfg.batch}
}

// derive computes the report's ratios from its counts; duration is the
// run's -duration (latency mode: what published_share is of).
func (r *EventsReport) derive(duration time.Duration) {
	if r.AskedRate > 0 {
		r.PublishedShare = float64(r.Published) / (float64(r.AskedRate) * duration.Seconds())
	}
	if r.ServerCPUSeconds > 0 {
		r.DeliveredPerCPUSecond = float64(r.Delivered) / r.ServerCPUSeconds
	}
	if r.ServerWrites > 0 && r.Delivered > 0 {
		r.WritesPerDelivery = float64(r.ServerWrites) / float64(r.Delivered)
	}
}
