package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// RampReport is the ramp's steps and its result.
type RampReport struct {
	SLO             float64 `json:"slo"`
	Step            int     `json:"step"`
	StepDuration    float64 `json:"step_duration"`
	HighestRateHeld int     `json:"highest_rate_held"` // 0: none held
	FirstRateFailed int     `json:"first_rate_failed"` // 0: none failed up to -max-rate
	FailedBecause   string  `json:"failed_because,omitempty"`
	// SenderLimited: at the failing step the sender fell behind its
	// schedule, used 90% of its CPUs, or its CPUs were 95% busy with
	// anything (Redis shares them in the -redis ramps),
	// so the limit found may be this tool's (or this machine's) rather
	// than the server's.
	SenderLimited bool       `json:"sender_limited"`
	Steps         []RampStep `json:"steps"`
}

// RampStep is one constant-rate step of a ramp.
type RampStep struct {
	RateRequested int               `json:"rate_requested"`
	Rate          float64           `json:"rate"`
	Requests      uint64            `json:"requests"`
	ErrorCount    uint64            `json:"error_count"`
	Errors        map[string]uint64 `json:"errors,omitempty"`
	Latency       Quantiles         `json:"latency"`
	ServiceTime   Quantiles         `json:"service_time"`
	MaxSendLag    float64           `json:"max_send_lag"`
	CPU           *CPUUsage         `json:"cpu,omitempty"`
	Held          bool              `json:"held"`
	Why           string            `json:"why,omitempty"`
}

// judgeStep says whether a ramp step held the SLO, and if not why.
// senderLimited says the sender could not keep its schedule or used
// (nearly) all of its CPUs: the limit then may be the tool's.
func judgeStep(st *stepStats, slo time.Duration) (held bool, why string, senderLimited bool) {
	p99 := time.Duration(st.latency.ValueAtQuantile(99))
	behind := st.achievedRate() < 0.95*float64(st.rateRequested)
	senderLimited = behind || (st.cpu != nil && (st.cpu.Loadtest >= 0.9*float64(runtime.GOMAXPROCS(0)) || st.cpu.LoadtestCPUs >= 0.95))
	switch {
	case st.requests == 0:
		return false, "no request sent", false
	case st.failed > 0:
		return false, fmt.Sprintf("%d errors", st.failed), senderLimited
	case p99 > slo:
		return false, fmt.Sprintf("p99 %s > %s", p99, slo), senderLimited
	case behind:
		return false, fmt.Sprintf("sender fell behind: %.0f/s sent", st.achievedRate()), true
	}
	return true, "", senderLimited
}

func runRamp(ctx context.Context, e *engine, rep *Report, stdout io.Writer) {
	cfg := e.cfg
	rr := &RampReport{SLO: cfg.slo.Seconds(), Step: cfg.step, StepDuration: cfg.duration.Seconds()}
	rep.SLO = cfg.slo.Seconds()
	var held, last *stepStats
	var correctness uint64
	cool := func() bool {
		select {
		case <-ctx.Done():
			return false
		case <-time.After(cfg.cool):
			return true
		}
	}
	var tryOnce func(rate, attempt int) bool
	try := func(rate int) bool {
		return tryOnce(rate, 0)
	}
	tryOnce = func(rate, attempt int) bool {
		name := fmt.Sprintf("ramp %d/s", rate)
		if attempt > 0 {
			name += fmt.Sprintf(" (again %d)", attempt)
		}
		st := e.attack(ctx, name, rate, cfg.duration)
		ok, why, behind := judgeStep(st, cfg.slo)
		correctness += st.correctnessErrors()
		rr.Steps = append(rr.Steps, RampStep{
			RateRequested: rate, Rate: st.achievedRate(), Requests: st.requests,
			ErrorCount: st.failed, Errors: st.errors,
			Latency: quantiles(st.latency), ServiceTime: quantiles(st.service),
			MaxSendLag: max(st.maxLag, 0).Seconds(), CPU: st.cpu, Held: ok, Why: why,
		})
		mark := "held"
		retry := !ok && st.failed == 0 && attempt < cfg.retries && ctx.Err() == nil
		switch {
		case retry:
			mark = "missed: " + why + "; running it again"
		case !ok:
			mark = "FAILED: " + why
		}
		q := quantiles(st.latency)
		fmt.Fprintf(stdout, "ramp %7d/s  sent %9.1f/s  p50 %-8s p99 %-8s p99.9 %-8s max %-8s errors %d  %s\n     cpu: %s\n",
			rate, st.achievedRate(), secs(q.P50), secs(q.P99), secs(q.P999), secs(q.Max), st.failed, mark, st.cpu)
		last = st
		if retry {
			rr.Steps[len(rr.Steps)-1].Why += " (run again)"
			if !cool() {
				return false
			}
			return tryOnce(rate, attempt+1)
		}
		if ok {
			held = st
			rr.HighestRateHeld = rate
		} else if rr.FirstRateFailed == 0 || rate < rr.FirstRateFailed {
			rr.FirstRateFailed, rr.FailedBecause, rr.SenderLimited = rate, why, behind
		}
		return ok
	}
	failed := 0
	for rate := cfg.rate; rate <= cfg.maxRate && ctx.Err() == nil; rate += cfg.step {
		if !try(rate) {
			failed = rate
			break
		}
		if !cool() {
			break
		}
	}
	// Narrow the gap between the last rate that held and the first that
	// failed.
	lo := rr.HighestRateHeld
	for i := 0; i < cfg.refine && failed > 0 && lo > 0 && failed-lo > 100 && ctx.Err() == nil; i++ {
		mid := (lo + failed) / 2 / 100 * 100
		if mid <= lo || !cool() {
			break
		}
		if try(mid) {
			lo = mid
		} else {
			failed = mid
		}
	}
	rep.Ramp = rr
	if held == nil {
		held = last
	}
	if held != nil {
		rep.fillFrom(held, e.verifier.tokens.Len())
	}
	rep.Passed = rr.HighestRateHeld > 0 && correctness == 0
	switch {
	case correctness > 0:
		rep.Verdict = fmt.Sprintf("FAIL: %d wrong responses during the ramp (see steps)", correctness)
	case rr.HighestRateHeld == 0:
		rep.Verdict = fmt.Sprintf("FAIL: not even %d/s held p99 <= %s with zero errors (%s)", cfg.rate, cfg.slo, rr.FailedBecause)
	default:
		limit := "no step failed up to -max-rate"
		if rr.FirstRateFailed > 0 {
			limit = fmt.Sprintf("%d/s failed: %s", rr.FirstRateFailed, rr.FailedBecause)
			if rr.SenderLimited {
				limit += "; the sender was at its limit (behind its schedule or its CPUs busy), so the limit found may be this tool's (or that of what shares its CPUs)"
			}
		}
		rep.Verdict = fmt.Sprintf("PASS: highest rate held %d/s with p99 <= %s and zero errors (%s)", rr.HighestRateHeld, cfg.slo, limit)
	}
	fmt.Fprintf(stdout, "highest rate that held: %d/s (p99 <= %s, zero errors)\n", rr.HighestRateHeld, cfg.slo)
}

// targetPID is the process to sample: -pid, or the one listening on the
// first target's port when that is local.
func targetPID(cfg *config) (int, error) {
	if cfg.pid > 0 {
		return cfg.pid, nil
	}
	port := localPort(cfg.targets[0])
	if port == 0 {
		return 0, errors.New("the target is not local and no -pid was given")
	}
	return pidListeningOn(port)
}

func runSoak(ctx context.Context, e *engine, rep *Report, stderr io.Writer) {
	cfg := e.cfg
	var sampler *rssSampler
	pid, err := targetPID(cfg)
	if err != nil {
		fmt.Fprintf(stderr, "loadtest: not sampling memory: %v\n", err)
	} else {
		sampler = startRSSSampler(pid, cfg.sample)
	}
	st := e.attack(ctx, "soak", cfg.rate, cfg.duration)
	rep.fillFrom(st, e.verifier.tokens.Len())
	rep.Passed = st.failed == 0 && st.requests > 0
	extra := "; memory not sampled"
	if sampler != nil {
		rep.Memory = sampler.stop(cfg.warmup, cfg.rssTolerance)
		if rep.Memory.Flat {
			extra = fmt.Sprintf("; RSS flat within %.0f%% after %s", 100*cfg.rssTolerance, cfg.warmup)
		} else {
			rep.Passed = false
			extra = fmt.Sprintf("; RSS NOT flat: spread %.1f%% after %s", 100*rep.Memory.Spread, cfg.warmup)
		}
	}
	rep.Verdict = verdict(rep.Passed, st, extra)
	if !rep.Passed && st.failed == 0 && st.requests > 0 {
		rep.Verdict = "FAIL" + extra
	}
}

// ConnsReport is what the conns scenario held open.
type ConnsReport struct {
	Idle      int `json:"idle"`        // asked for (-connections)
	Opened    int `json:"opened"`      // opened and answered one request
	Failed    int `json:"failed"`      // could not be opened or were answered wrongly
	OpenAtEnd int `json:"open_at_end"` // still open when the load ended
	// RSSBefore and RSSWithIdle are the server's RSS in bytes before
	// opening the connections and once they are all idle (0 when not
	// sampled).
	RSSBefore   int64 `json:"rss_before"`
	RSSWithIdle int64 `json:"rss_with_idle"`
}

// idleRequest is what each idle connection sends once, to be a real
// keep-alive connection rather than a bare TCP one.
const idleRequest = "GET / HTTP/1.1\r\nHost: loadtest\r\n\r\n"

func runConns(ctx context.Context, e *engine, rep *Report, idle int, stderr io.Writer) {
	cfg := e.cfg
	cr := &ConnsReport{Idle: idle}
	pid, perr := targetPID(cfg)
	if perr == nil {
		cr.RSSBefore, _ = readRSS(pid)
	}
	conns := make([]net.Conn, idle)
	var failed atomic.Int64
	var wg sync.WaitGroup
	next := atomic.Int64{}
	for range 64 {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= idle || ctx.Err() != nil {
					return
				}
				c, err := openIdle(cfg.targets[i%len(cfg.targets)], cfg.timeout)
				if err != nil {
					failed.Add(1)
					continue
				}
				conns[i] = c
			}
		})
	}
	wg.Wait()
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	}()
	cr.Failed = int(failed.Load())
	cr.Opened = idle - cr.Failed
	if cr.Failed > 0 {
		fmt.Fprintf(stderr, "loadtest: %d of %d idle connections could not be opened\n", cr.Failed, idle)
	}
	var sampler *rssSampler
	if perr == nil {
		cr.RSSWithIdle, _ = readRSS(pid)
		sampler = startRSSSampler(pid, cfg.sample)
	}
	st := e.attack(ctx, "conns", cfg.rate, cfg.duration)
	if sampler != nil {
		rep.Memory = sampler.stop(0, cfg.rssTolerance)
	}
	// Still open: a read finds nothing within a moment rather than EOF.
	var open atomic.Int64
	next.Store(0)
	for range 64 {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= idle {
					return
				}
				if c := conns[i]; c != nil {
					c.SetReadDeadline(time.Now().Add(5 * time.Millisecond))
					var b [1]byte
					if _, err := c.Read(b[:]); errors.Is(err, os.ErrDeadlineExceeded) {
						open.Add(1)
					}
				}
			}
		})
	}
	wg.Wait()
	cr.OpenAtEnd = int(open.Load())
	rep.Conns = cr
	rep.SLO = cfg.slo.Seconds()
	rep.fillFrom(st, e.verifier.tokens.Len())
	p99 := time.Duration(st.latency.ValueAtQuantile(99))
	rep.Passed = st.failed == 0 && st.requests > 0 && cr.Failed == 0 && p99 <= cfg.slo
	extra := fmt.Sprintf(" with %d idle connections held; p99 %s (SLO %s)", cr.Opened, p99, cfg.slo)
	rep.Verdict = verdict(rep.Passed, st, extra)
	if !rep.Passed && st.failed == 0 && st.requests > 0 {
		switch {
		case cr.Failed > 0:
			rep.Verdict = fmt.Sprintf("FAIL: %d idle connections could not be opened", cr.Failed)
		default:
			rep.Verdict = "FAIL: p99 over the SLO" + extra
		}
	}
}

// openIdle opens a keep-alive connection to target and has one GET /
// answered on it.
func openIdle(target string, timeout time.Duration) (net.Conn, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, err
	}
	c, err := net.DialTimeout("tcp", u.Host, timeout)
	if err != nil {
		return nil, err
	}
	c.SetDeadline(time.Now().Add(timeout))
	if _, err := io.WriteString(c, idleRequest); err != nil {
		c.Close()
		return nil, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		c.Close()
		return nil, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Close {
		c.Close()
		return nil, fmt.Errorf("idle connection: %s", resp.Status)
	}
	c.SetDeadline(time.Time{})
	return c, nil
}
