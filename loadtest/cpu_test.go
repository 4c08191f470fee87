package main

import (
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestParseCPUList(t *testing.T) {
	for in, want := range map[string][]int{"0": {0}, "1": {1}, "0-1": {0, 1}, "0-2,5": {0, 1, 2, 5}, "3,1": {3, 1}} {
		got, err := parseCPUList(in)
		if err != nil || len(got) != len(want) {
			t.Errorf("parseCPUList(%q) = %v, %v; want %v", in, got, err, want)
			continue
		}
		for i := range want {
			if got[i] != want[i] {
				t.Errorf("parseCPUList(%q) = %v; want %v", in, got, want)
			}
		}
	}
	for _, bad := range []string{"", "a", "2-1", "-1", "1-", "1,,2"} {
		if _, err := parseCPUList(bad); err == nil {
			t.Errorf("parseCPUList(%q): no error", bad)
		}
	}
	// This process's own list reads (on Linux, where the tool runs).
	if _, err := os.Stat("/proc/self/status"); err == nil && len(ownCPUs()) == 0 {
		t.Error("ownCPUs: none read from /proc/self/status")
	}
}

func TestMeanBusy(t *testing.T) {
	busy := map[string]float64{"cpu0": 0.5, "cpu1": 1, "cpu2": 0.9}
	if got := meanBusy(busy, []string{"cpu1", "cpu2"}); got < 0.9499 || got > 0.9501 {
		t.Errorf("meanBusy = %v, want 0.95", got)
	}
	if got := meanBusy(busy, []string{"cpu7"}); got != 0 {
		t.Errorf("meanBusy of unknown CPUs = %v, want 0", got)
	}
	if got := meanBusy(busy, nil); got != 0 {
		t.Errorf("meanBusy of no CPUs = %v, want 0", got)
	}
}

// The store's CPU (redis-server's, -store-pid) is reported beside the
// server's when known.
func TestCPUUsageStore(t *testing.T) {
	u := &CPUUsage{Busy: map[string]float64{"cpu0": 0.6, "cpu1": 0.99}, Server: 0.55, Store: 0.31, Loadtest: 0.6}
	if s := u.String(); !strings.Contains(s, "server 0.55 cores | store 0.31 cores | loadtest 0.60 cores") {
		t.Errorf("String() = %q", s)
	}
	u.Store = 0
	if s := u.String(); strings.Contains(s, "store") {
		t.Errorf("String() without a store = %q", s)
	}
	// A snapshot of this very process as the "store": its CPU time
	// only grows.
	before := takeCPUSnapshot(0, os.Getpid())
	if before.store < 0 || before.server != -1 {
		t.Fatalf("snapshot: store %v, server %v", before.store, before.server)
	}
	after := before
	after.at = before.at.Add(time.Second)
	after.store = before.store + 250*time.Millisecond
	if u := after.usageSince(before); u == nil || u.Store < 0.2499 || u.Store > 0.2501 {
		t.Errorf("usageSince: %+v, want store 0.25 cores", u)
	}
}

// A step whose p99 missed while the sender's CPUs were saturated (by
// Redis sharing them, say) is marked sender-limited even though the
// sender's own CPU time was low.
func TestJudgeStepBusyCPUs(t *testing.T) {
	step := func(busy float64) *stepStats {
		st := newStepStats("ramp", 100, time.Second)
		t0 := time.Now()
		for i := range 101 {
			record(st.latency, 10*time.Millisecond)
			st.requests++
			at := t0.Add(time.Duration(i) * 10 * time.Millisecond)
			if i == 0 {
				st.earliest = at
			}
			st.latest = at
		}
		st.cpu = &CPUUsage{Loadtest: 0.3, LoadtestCPUs: busy}
		return st
	}
	held, why, limited := judgeStep(step(0.99), 2*time.Millisecond)
	if held || !strings.Contains(why, "p99") || !limited {
		t.Errorf("busy CPUs: held %v, why %q, sender-limited %v; want a p99 miss, sender-limited", held, why, limited)
	}
	if _, _, limited := judgeStep(step(0.5), 2*time.Millisecond); limited {
		t.Error("idle CPUs: sender-limited")
	}
}

// procCPU reads a process's CPU clock to the nanosecond: this process's
// agrees with what getrusage says it used, and moves between two reads a
// tick apart would not tell.
func TestProcCPUReadsTheProcessClock(t *testing.T) {
	if procCPU(0) != -1 || procCPU(-5) != -1 {
		t.Error("procCPU of no process: want -1")
	}
	before := procCPU(os.Getpid())
	x := 0
	for i := range 3_000_000 {
		x += i % 7
	}
	after := procCPU(os.Getpid())
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	rusage := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	if before <= 0 || after <= before || x == 0 {
		t.Fatalf("procCPU went from %v to %v over a busy loop", before, after)
	}
	if after%(10*time.Millisecond) == 0 {
		t.Errorf("procCPU %v is a whole number of 10 ms ticks: not the process's clock", after)
	}
	// getrusage adds up the same clock's user and system parts.
	if d := rusage - after; d < -10*time.Millisecond || d > 50*time.Millisecond {
		t.Errorf("procCPU %v, getrusage %v: they should agree", after, rusage)
	}
}
