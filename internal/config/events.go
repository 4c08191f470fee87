package config

import (
	"flag"
	"time"
)

// Events are the flags of the event log and of the streams that deliver
// it (internal/events).
type Events struct {
	Retention       int           // events kept per subsystem
	LogBytes        int           // and at most this many bytes of them, in memory
	MaxBytes        int           // largest event data
	Heartbeat       time.Duration // comment on idle streams, token check
	Retry           time.Duration // the reconnection delay streams ask of clients
	WriteTimeout    time.Duration // a stream client that takes no write for this long is dropped
	Queue           int           // events a live stream may fall behind before it is dropped
	MaxStreams      int           // streams per subsystem on this instance
	StreamsPerToken int
	AdminTokenFile  string // secrets a publisher presents on a public admin listener
}

func addEventFlags(fs *flag.FlagSet, cfg *Config) {
	e := &cfg.Events
	fs.IntVar(&e.Retention, "event-retention", 100_000, "events kept per subsystem for north servers to resume from (memory: lost on restart; Redis: the stream's MAXLEN ~)")
	fs.IntVar(&e.LogBytes, "event-log-bytes", 256<<20, "with the memory event log, most `bytes` of events kept per subsystem; the oldest go first")
	fs.IntVar(&e.MaxBytes, "event-max-bytes", 64<<10, "largest event data in `bytes`; a larger one is refused 400")
	fs.DurationVar(&e.Heartbeat, "event-heartbeat", 15*time.Second, "a comment on every event stream this often, so that balancers keep it and gone clients are found; a stream whose token ended closes within one")
	fs.DurationVar(&e.Retry, "event-retry", 2*time.Second, "the reconnection delay an event stream asks of its client (the stream's retry: field)")
	fs.DurationVar(&e.WriteTimeout, "event-write-timeout", 10*time.Second, "an event stream whose client takes no data for this long is closed; it resumes from its last id")
	fs.IntVar(&e.Queue, "event-queue", 4096, "events a stream may fall behind once caught up before it is closed as too slow; it resumes from its last id")
	fs.IntVar(&e.MaxStreams, "event-max-streams", 10_000, "most event streams open per subsystem on this instance; the next gets 503")
	fs.IntVar(&e.StreamsPerToken, "event-streams-per-token", 4, "most event streams open on one token; the next gets 429")
	fs.StringVar(&e.AdminTokenFile, "admin-token-file", "", "`file` of secrets, one per line, one of which every request to the admin listener (publishing, listings, /metrics, pprof) must present as Authorization: Bearer; required with -admin-public")
}

func checkEventConfig(cfg *Config) error {
	e := cfg.Events
	for _, c := range []struct {
		name string
		v    int
	}{{"-event-retention", e.Retention}, {"-event-log-bytes", e.LogBytes}, {"-event-max-bytes", e.MaxBytes}, {"-event-queue", e.Queue}, {"-event-max-streams", e.MaxStreams}, {"-event-streams-per-token", e.StreamsPerToken}} {
		if c.v <= 0 {
			return Usagef("%s must be positive, not %d", c.name, c.v)
		}
	}
	for _, c := range []struct {
		name string
		v    time.Duration
	}{{"-event-heartbeat", e.Heartbeat}, {"-event-retry", e.Retry}, {"-event-write-timeout", e.WriteTimeout}} {
		if c.v <= 0 {
			return Usagef("%s must be positive, not %v", c.name, c.v)
		}
	}
	if e.MaxBytes > e.LogBytes {
		return Usagef("-event-max-bytes %d is more than -event-log-bytes %d: one event would not fit in the log", e.MaxBytes, e.LogBytes)
	}
	if cfg.AdminPublic && e.AdminTokenFile == "" {
		return Usagef("-admin-public needs -admin-token-file: on a public admin listener only a caller presenting one of its secrets may publish events or read the listings, /metrics and pprof")
	}
	return nil
}
