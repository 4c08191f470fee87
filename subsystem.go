package northd

import (
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp"
)

// pushQueueLen bounds the logins waiting for the push hook. When the hook
// falls this far behind, further logins are not pushed (and are counted as
// drops) rather than slowing logins down or growing memory.
const pushQueueLen = 16384

// pushBatchWindow is how long the push hook's goroutine waits for more
// logins after the first of a batch: at most one wake-up per window. At
// 1 ms the wake-ups cost a busy login path ~25% (BenchmarkHandler/Login,
// 340 against 285 ns); at 10 ms they cost nothing measurable, and a login
// still reaches the hook within 10 ms. 16384 queued logins per window
// allow 1.6 million logins/s per subsystem before any is dropped.
const pushBatchWindow = 10 * time.Millisecond

// PushedLogin is what the push hook learns of one valid login: where the
// north server is and the token it was given.
type PushedLogin struct {
	IP    netip.Addr
	Token [16]byte
}

// Subsystem is one login endpoint on its own port with its own registry of
// north servers, the seed's "subsystem" whose request handler records the
// north server and pushes data to it.
type Subsystem struct {
	addr        string // listen address as configured
	registry    *Registry
	proxies     trustedProxies
	maxBodySize int
	rejections  *rejectionBodies
	log         *slog.Logger
	metrics     *subsystemMetrics
	server      *fasthttp.Server
	listener    net.Listener

	// draining is shared by every subsystem of the process: set when
	// shutdown begins, it turns /readyz to 503.
	draining  *atomic.Bool
	openConns atomic.Int64

	pushMu       sync.Mutex
	pushPending  []PushedLogin
	pushWake     chan struct{} // capacity 1: "there is a batch"
	pushStop     chan struct{}
	pushStopOnce sync.Once
	pushDone     chan struct{}
	pushHook     func(PushedLogin)
}

func newSubsystem(cfg Config, addr string, ln net.Listener, draining *atomic.Bool, set *metrics.Set, log *slog.Logger) *Subsystem {
	s := &Subsystem{
		addr:        addr,
		registry:    NewRegistry(cfg.RegistryMax),
		proxies:     trustedProxies(cfg.TrustedProxies),
		maxBodySize: cfg.MaxBodySize,
		rejections:  newRejectionBodies(cfg.MaxBodySize),
		log:         log,
		draining:    draining,
		pushWake:    make(chan struct{}, 1),
		pushStop:    make(chan struct{}),
		pushDone:    make(chan struct{}),
	}
	s.pushHook = noPushTarget
	s.metrics = newSubsystemMetrics(set, s)
	s.listener = newConnListener(ln, cfg, &s.openConns, log)
	s.server = &fasthttp.Server{
		Handler:                      s.routes(),
		ErrorHandler:                 s.handleRequestError,
		ExpectHandler:                s.handleExpect,
		Logger:                       fasthttpLogger{log: log, subsystem: addr},
		NoDefaultServerHeader:        true,
		NoDefaultContentType:         true,
		DisablePreParseMultipartForm: true,
		CloseOnShutdown:              true,
		MaxRequestBodySize:           cfg.MaxBodySize,
		ReadTimeout:                  cfg.ReadTimeout,
		WriteTimeout:                 cfg.WriteTimeout,
		IdleTimeout:                  cfg.IdleTimeout,
		Concurrency:                  cfg.MaxConns,
		ReduceMemoryUsage:            cfg.ReduceMemory,
	}
	return s
}

// Addr is the address the subsystem listens on, with the real port when
// it was configured as 0.
func (s *Subsystem) Addr() string { return s.listener.Addr().String() }

// Registry is the subsystem's registry of north servers.
func (s *Subsystem) Registry() *Registry { return s.registry }

// Pushed reports how many logins the push hook has handled.
func (s *Subsystem) Pushed() uint64 { return s.metrics.pushCalls.Get() }

// push hands a login to the push hook without waiting for it. Logins
// queue in a batch under a short lock; the hook's goroutine is woken only
// when a batch starts, so a busy server does not pay a wake-up per login.
func (s *Subsystem) push(ip netip.Addr, token [16]byte) {
	s.pushMu.Lock()
	if len(s.pushPending) >= pushQueueLen {
		s.pushMu.Unlock()
		s.metrics.pushDrops.Inc()
		return
	}
	s.pushPending = append(s.pushPending, PushedLogin{IP: ip, Token: token})
	first := len(s.pushPending) == 1
	s.pushMu.Unlock()
	if first {
		select {
		case s.pushWake <- struct{}{}:
		default: // already woken
		}
	}
}

// runPushHook feeds queued logins to the hook until stopPushHook, then
// hands over what is still queued and returns.
func (s *Subsystem) runPushHook() {
	defer close(s.pushDone)
	var batch []PushedLogin
	window := time.NewTimer(pushBatchWindow)
	defer window.Stop()
	for {
		var stopping bool
		select {
		case <-s.pushWake:
			// Let the batch fill for a moment: logins arriving
			// meanwhile join it without waking this goroutine.
			window.Reset(pushBatchWindow)
			select {
			case <-window.C:
			case <-s.pushStop:
				stopping = true
			}
		case <-s.pushStop:
			stopping = true
		}
		s.pushMu.Lock()
		batch, s.pushPending = s.pushPending, batch[:0]
		s.pushMu.Unlock()
		for _, l := range batch {
			s.pushHook(l)
		}
		s.metrics.pushCalls.Add(len(batch))
		if stopping {
			return
		}
	}
}

// stopPushHook waits for the hook to handle every queued login. Call it
// once no more logins can arrive; calls after the first just wait.
func (s *Subsystem) stopPushHook() {
	s.pushStopOnce.Do(func() { close(s.pushStop) })
	<-s.pushDone
}

// noPushTarget is the default push hook: there is nowhere to push to yet,
// so a login is only counted, by runPushHook (northd_push_calls_total).
func noPushTarget(PushedLogin) {}
