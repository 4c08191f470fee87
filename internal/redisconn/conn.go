// Package redisconn is northd's one connection to the shared Redis or
// Valkey (-store redis://…): it opens it from the -store URL (never
// printing its password), probes it so that /readyz and northd_store_up
// follow it, and closes it. The packages that keep their keys there, the
// token store (store/redis), the event logs (events/redis) and the
// webhook subscriptions (push/redis), all take this one Conn, so that
// every subsystem of an instance shares a single pipelined connection and
// one readiness. It knows none of their keys: a user registers the Lua
// scripts it needs loaded with LoadOnProbe.
package redisconn

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/redis/rueidis"
)

// Conn is the connection to the shared store, and whether it answers.
type Conn struct {
	client rueidis.Client
	log    *slog.Logger

	// up is what /readyz and northd_store_up report. It is false until
	// a probe has answered and the scripts are loaded, and false again
	// once downAfter probes in a row have failed. A request's own
	// failed call never changes it: one slow answer on a busy host must
	// not take every instance sharing the store out of rotation at once.
	up atomic.Bool
	// down is set with up cleared by failed probes (not at start): calls
	// made for requests then fail at once instead of each waiting out
	// its deadline.
	down         atomic.Bool
	failedProbes int // consecutive; Watch's own
	errors       *metrics.Counter

	mu      sync.Mutex
	scripts []string // LoadOnProbe's, under mu
}

// The connection's own timeouts, apart from -store-timeout (the deadline
// of one call made for a request, which each user of the Conn applies):
// rueidis tears down its shared, pipelined connection when a reply takes
// longer than ConnWriteTimeout, failing every call in flight on it, so it
// is sized in seconds, for a store that is gone rather than slow.
const (
	connTimeout = 5 * time.Second
	// probeInterval is how often the store is probed, so that /readyz
	// follows it.
	probeInterval = 250 * time.Millisecond
	probeTimeout  = time.Second
	// downAfter failed probes in a row declare the store down.
	downAfter = 3
)

// InvalidURLError is Open's error for a URL that cannot be used as it is
// written: the operator must change it, and retrying will not help.
type InvalidURLError struct{ reason string }

func (e *InvalidURLError) Error() string { return e.reason }

// Open connects to the store at storeURL: redis://, rediss:// or
// host:port,host:port for a cluster. Its metrics (northd_store_up,
// northd_store_errors_total) go in set. It is not Ready until Watch's
// first probe has answered.
func Open(storeURL string, set *metrics.Set, log *slog.Logger) (*Conn, error) {
	var opt rueidis.ClientOption
	switch {
	case strings.Contains(storeURL, "://"):
		var err error
		if opt, err = rueidis.ParseURL(storeURL); err != nil {
			return nil, &InvalidURLError{fmt.Sprintf("invalid -store %s: %s (want memory, redis://[user:pass@]host:port/db, rediss://… or host:port,host:port for a cluster)", redactedURL(storeURL), urlError(storeURL, err))}
		}
	default:
		// host:port,host:port for a cluster, checked with the flags.
		for _, a := range strings.Split(storeURL, ",") {
			opt.InitAddress = append(opt.InitAddress, strings.TrimSpace(a))
		}
	}
	// Verification must see a logout at once on every instance, so no
	// client-side cache: its invalidations arrive asynchronously.
	opt.DisableCache = true
	opt.Dialer.Timeout = connTimeout
	opt.ConnWriteTimeout = connTimeout
	opt.ClientName = "northd"
	client, err := rueidis.NewClient(opt)
	if err != nil {
		return nil, fmt.Errorf("cannot reach the store %s: %w (is it running? check -store)", redactedURL(storeURL), err)
	}
	c := &Conn{client: client, log: log, errors: set.NewCounter(`northd_store_errors_total`)}
	set.NewGauge(`northd_store_up`, func() float64 {
		if c.up.Load() {
			return 1
		}
		return 0
	})
	return c, nil
}

// Client is the connection itself, for the packages that keep their keys
// in the store. Each bounds its own calls by -store-timeout.
func (c *Conn) Client() rueidis.Client { return c.client }

// LoadOnProbe registers Lua scripts (their source) that the probes load
// while the store is not up, so that it is Ready only with them loaded:
// a restarted Redis has forgotten them. Register them before Watch, so
// that the first probe loads them; a script registered twice is loaded
// once.
func (c *Conn) LoadOnProbe(scripts ...string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, src := range scripts {
		if !slices.Contains(c.scripts, src) {
			c.scripts = append(c.scripts, src)
		}
	}
}

// Watch probes the store at once and then every probeInterval until ctx
// ends, so that Ready follows it.
func (c *Conn) Watch(ctx context.Context) {
	t := time.NewTicker(probeInterval)
	defer t.Stop()
	for {
		c.probed(c.probe(ctx))
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// probe asks the store whether it answers: a PING while it is up, and
// while it is not, the registered scripts' SCRIPT LOAD, so that it comes
// up with them loaded.
func (c *Conn) probe(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	if !c.up.Load() {
		c.mu.Lock()
		scripts := c.scripts
		c.mu.Unlock()
		if len(scripts) > 0 {
			for _, src := range scripts {
				if err := c.client.Do(ctx, c.client.B().ScriptLoad().Script(src).Build()).Error(); err != nil {
					return err
				}
			}
			return nil
		}
	}
	return c.client.Do(ctx, c.client.B().Ping().Build()).Error()
}

// probed notes a probe's outcome: the store is up after one that
// answered, and down after downAfter failed in a row.
func (c *Conn) probed(err error) {
	if err == nil {
		c.failedProbes = 0
		c.down.Store(false)
		if !c.up.Swap(true) {
			c.log.Info("store answers: serving logins and verifications")
		}
		return
	}
	c.errors.Inc()
	c.failedProbes++
	if c.failedProbes == downAfter {
		c.down.Store(true)
		c.up.Store(false)
		c.log.Error("store unreachable: logins and verifications get 503 and /readyz 503 until it answers", "err", err, "failed_probes", c.failedProbes)
	}
}

// Ready reports whether the store answers: false until a probe has
// answered with the scripts loaded, and again after downAfter probes in
// a row failed.
func (c *Conn) Ready() bool { return c.up.Load() }

// Down reports whether the probes declared the store down (not merely
// not yet up at start): a call made for a request should then fail at
// once rather than wait out its deadline.
func (c *Conn) Down() bool { return c.down.Load() }

// CountFailedCall counts, in northd_store_errors_total beside the failed
// probes, a call made for a request that did not complete. Whether the
// store is down is for the probes alone to say.
func (c *Conn) CountFailedCall() { c.errors.Inc() }

// Close ends the connection.
func (c *Conn) Close() { c.client.Close() }
