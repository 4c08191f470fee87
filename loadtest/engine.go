package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync/atomic"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
	vegeta "github.com/tsenart/vegeta/v12/lib"
	"github.com/tsenart/vegeta/v12/lib/plot"
)

// schedulePacer is vegeta's constant pacer, remembering when the attack
// began so each result's intended send time is known: the n-th request
// (Seq n) is due at began + (n+1)/rate. Latency counted from that instant
// rather than from when the request actually left corrects for coordinated
// omission: a stall in the server (or in this tool) that delays sending is
// charged to every request it delayed.
//
// It also keeps the schedule more precisely than time.Sleep can: the Go
// runtime's timers on Linux wake up to a millisecond late when the process
// is idle, which would add up to a millisecond to every latency. So the
// pacer does its own waiting on a high-resolution timer and hands vegeta a
// zero wait. A send due within sendSlack is sent at once rather than slept
// for: at high rates that saves the sender two system calls a request.
type schedulePacer struct {
	vegeta.ConstantPacer
	sleeper *preciseSleeper
	began   atomic.Pointer[time.Time]
}

func (p *schedulePacer) Pace(elapsed time.Duration, hits uint64) (time.Duration, bool) {
	b := p.began.Load()
	if b == nil {
		t := time.Now().Add(-elapsed)
		p.began.Store(&t)
		b = &t
	}
	wait, stop := p.ConstantPacer.Pace(elapsed, hits)
	if stop || wait <= sendSlack {
		return 0, stop
	}
	p.sleeper.sleep(time.Until(b.Add(elapsed + wait)))
	return 0, false
}

// sendSlack is how early the pacer may send a request rather than sleep
// until it is due. An early send is never charged as latency.
const sendSlack = 100 * time.Microsecond

// due is when the request with sequence number seq should have been sent.
func (p *schedulePacer) due(seq uint64) time.Time {
	interval := p.Per.Nanoseconds() / int64(p.Freq)
	return p.began.Load().Add(time.Duration(int64(seq+1) * interval))
}

// Latencies are recorded in nanoseconds from 1 ns to 1 hour, 3 significant
// digits.
const histMax = int64(time.Hour)

func newHist() *hdrhistogram.Histogram { return hdrhistogram.New(1, histMax, 3) }

// stepStats accumulates the verified results of one constant-rate attack.
type stepStats struct {
	name          string
	rateRequested int
	duration      time.Duration
	requests      uint64
	failed        uint64
	errors        map[string]uint64
	codes         map[int]uint64
	cases         map[string]uint64
	latency       *hdrhistogram.Histogram // corrected: from the due time
	service       *hdrhistogram.Histogram // from the actual send
	earliest      time.Time
	latest        time.Time
	maxLag        time.Duration // worst delay of a send behind its due time
	tokens        int           // distinct tokens added during the step
	cpu           *CPUUsage
	// per case: latency from the due time, service time, status codes
	// and failures by kind (auth-storm judges its two cases apart; the
	// report has them whenever a scenario has several)
	caseLatency map[string]*hdrhistogram.Histogram
	caseService map[string]*hdrhistogram.Histogram
	caseCodes   map[string]map[int]uint64
	caseErrors  map[string]map[string]uint64
}

func newStepStats(name string, rate int, dur time.Duration) *stepStats {
	return &stepStats{name: name, rateRequested: rate, duration: dur,
		errors: map[string]uint64{}, codes: map[int]uint64{}, cases: map[string]uint64{},
		latency: newHist(), service: newHist(),
		caseLatency: map[string]*hdrhistogram.Histogram{}, caseService: map[string]*hdrhistogram.Histogram{},
		caseCodes: map[string]map[int]uint64{}, caseErrors: map[string]map[string]uint64{}}
}

// addCase counts one result of a case: its status (0: no response), the
// kind of failure ("" when right) and its latencies.
func (s *stepStats) addCase(name string, code int, kind string, lat, svc time.Duration) {
	h := s.caseLatency[name]
	if h == nil {
		h = newHist()
		s.caseLatency[name] = h
		s.caseService[name] = newHist()
		s.caseCodes[name] = map[int]uint64{}
		s.caseErrors[name] = map[string]uint64{}
	}
	record(h, lat)
	record(s.caseService[name], svc)
	s.caseCodes[name][code]++
	if kind != "" {
		s.caseErrors[name][kind]++
	}
}

func record(h *hdrhistogram.Histogram, d time.Duration) {
	v := max(int64(d), 1)
	if v > histMax {
		v = histMax
	}
	h.RecordValue(v)
}

// errorCount is the number of responses that failed verification.
func (s *stepStats) errorCount() uint64 { return s.failed }

// correctnessErrors counts the failures that are wrong answers rather than
// missing ones.
func (s *stepStats) correctnessErrors() uint64 {
	var n uint64
	for k, c := range s.errors {
		if !transportKinds[kindOf(k)] {
			n += c
		}
	}
	return n
}

func kindOf(caseKind string) string {
	for i := len(caseKind) - 1; i >= 0; i-- {
		if caseKind[i] == '/' {
			return caseKind[i+1:]
		}
	}
	return caseKind
}

// achievedRate is requests per second between the first and the last send,
// as vegeta computes it.
func (s *stepStats) achievedRate() float64 {
	span := s.latest.Sub(s.earliest)
	if s.requests < 2 || span <= 0 {
		return float64(s.requests)
	}
	return float64(s.requests-1) / span.Seconds()
}

// engine runs constant-rate attacks of one scenario with one HTTP client,
// verifying every response.
type engine struct {
	cfg      *config
	sc       *scenario
	client   *http.Client
	verifier *verifier
	plot     *plot.Plot // nil: no plot
	progress *progress  // nil: no progress bar
	pid      int        // the server's pid, 0 when unknown
}

func newEngine(cfg *config, sc *scenario) *engine {
	e := &engine{
		cfg:      cfg,
		sc:       sc,
		client:   newHTTPClient(sc.cases, cfg.client, cfg.connections, cfg.timeout),
		verifier: &verifier{cases: sc.cases, tokens: newTokenSet()},
	}
	if cfg.out != "" {
		e.plot = plot.New(plot.Title("northd loadtest: " + sc.name + " (latency from due time, ms)"))
	}
	if cfg.progress {
		e.progress = &progress{w: os.Stderr}
	}
	e.pid, _ = targetPID(cfg)
	return e
}

// attack sends rate requests a second for dur, verifying each response,
// and returns the step's figures. Cancelling ctx stops the attack early.
func (e *engine) attack(ctx context.Context, name string, rate int, dur time.Duration) *stepStats {
	st := newStepStats(name, rate, dur)
	pacer := &schedulePacer{ConstantPacer: vegeta.ConstantPacer{Freq: rate, Per: time.Second}, sleeper: newPreciseSleeper()}
	defer pacer.sleeper.close()
	atk := vegeta.NewAttacker(
		vegeta.Client(e.client),
		vegeta.Workers(uint64(e.cfg.workers)),
		vegeta.MaxWorkers(uint64(e.cfg.maxWorkers)),
		vegeta.MaxBody(1<<20),
	)
	stop := context.AfterFunc(ctx, func() { atk.Stop() })
	defer stop()
	if e.progress != nil {
		e.progress.start(name, dur)
		defer e.progress.finish()
	}
	e.verifier.tokens.reserve(int(float64(rate)*dur.Seconds()*e.sc.loginShare()*1.05) + 1024)
	tokens0 := e.verifier.tokens.Len()
	cpu0 := takeCPUSnapshot(e.pid, e.cfg.storePID)
	for r := range atk.Attack(e.sc.targeter(e.cfg.targets), pacer, dur, name) {
		caseName, kind := e.verifier.verify(r)
		st.requests++
		st.cases[caseName]++
		if r.Code != 0 {
			st.codes[int(r.Code)]++
		}
		if kind != "" {
			st.failed++
			st.errors[caseName+"/"+kind]++
		}
		lag := r.Timestamp.Sub(pacer.due(r.Seq))
		if lag > st.maxLag {
			st.maxLag = lag
		}
		lat := r.Latency + max(lag, 0)
		record(st.latency, lat)
		record(st.service, r.Latency)
		st.addCase(caseName, int(r.Code), kind, lat, r.Latency)
		if st.earliest.IsZero() || r.Timestamp.Before(st.earliest) {
			st.earliest = r.Timestamp
		}
		if r.Timestamp.After(st.latest) {
			st.latest = r.Timestamp
		}
		if e.plot != nil {
			pr := vegeta.Result{Attack: r.Attack, Seq: r.Seq, Timestamp: r.Timestamp, Latency: lat}
			if kind != "" {
				pr.Error = kind
			}
			e.plot.Add(&pr)
		}
		if e.progress != nil {
			e.progress.add(kind != "")
		}
	}
	st.tokens = e.verifier.tokens.Len() - tokens0
	st.cpu = takeCPUSnapshot(e.pid, e.cfg.storePID).usageSince(cpu0)
	return st
}

// progress draws a one-line progress bar on a terminal.
type progress struct {
	w        io.Writer
	requests atomic.Uint64
	errors   atomic.Uint64
	done     chan struct{}
	stopped  chan struct{}
}

func (p *progress) add(failed bool) {
	p.requests.Add(1)
	if failed {
		p.errors.Add(1)
	}
}

func (p *progress) start(name string, dur time.Duration) {
	p.requests.Store(0)
	p.errors.Store(0)
	p.done = make(chan struct{})
	p.stopped = make(chan struct{})
	began := time.Now()
	go func() {
		defer close(p.stopped)
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-p.done:
				fmt.Fprint(p.w, "\r\033[K")
				return
			case <-tick.C:
			}
			el := time.Since(began)
			frac := min(el.Seconds()/dur.Seconds(), 1)
			const width = 30
			bar := make([]byte, width)
			for i := range bar {
				bar[i] = ' '
				if float64(i) < frac*width {
					bar[i] = '='
				}
			}
			fmt.Fprintf(p.w, "\r\033[K%s [%s] %3.0f%% %s/%s %d requests, %d errors",
				name, bar, frac*100, el.Truncate(time.Second), dur, p.requests.Load(), p.errors.Load())
		}
	}()
}

func (p *progress) finish() {
	close(p.done)
	<-p.stopped
}

// isTerminal reports whether f is a character device (a terminal).
func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
