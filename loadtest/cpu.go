package main

import (
	"bytes"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// CPUUsage is how busy the machine and the processes were during a
// run: per-CPU busy fractions from /proc/stat (whatever was not idle,
// softirq included: on loopback much of the network work is there), and the
// server's, its store's (-store-pid: the redis-server northd keeps its
// tokens in) and this tool's CPU time per second of wall time, in cores.
type CPUUsage struct {
	Busy     map[string]float64 `json:"busy"`
	Server   float64            `json:"server,omitempty"`
	Store    float64            `json:"store,omitempty"`
	Loadtest float64            `json:"loadtest"`
	// LoadtestCPUs is how busy, on average, the CPUs this tool may run
	// on (its affinity: LOADTEST_CPU) were, with anything: whatever
	// shares them (the -redis targets' Redis) leaves the sender less.
	LoadtestCPUs float64 `json:"loadtest_cpus_busy,omitempty"`
}

type cpuSnapshot struct {
	at     time.Time
	cpus   map[string]uint64 // name -> idle + iowait, in USER_HZ ticks
	server time.Duration     // server process CPU time (-1: unknown)
	store  time.Duration     // store process CPU time (-1: unknown)
	self   time.Duration
}

func takeCPUSnapshot(serverPID, storePID int) cpuSnapshot {
	s := cpuSnapshot{at: time.Now(), cpus: map[string]uint64{}, server: procCPU(serverPID), store: procCPU(storePID)}
	if b, err := os.ReadFile("/proc/stat"); err == nil {
		for line := range bytes.Lines(b) {
			f := strings.Fields(string(line))
			if len(f) < 8 || !strings.HasPrefix(f[0], "cpu") || f[0] == "cpu" {
				continue
			}
			idle, _ := strconv.ParseUint(f[4], 10, 64)
			iowait, _ := strconv.ParseUint(f[5], 10, 64)
			s.cpus[f[0]] = idle + iowait
		}
	}
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		s.self = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	return s
}

// procCPU is the CPU time (user and system, every thread, those gone
// too) of a process, or -1 when pid is 0 or cannot be read. It reads the
// process's CPU clock, kept in nanoseconds: /proc/PID/stat counts in ticks
// of 10 ms, which at 1,000 events/s, a tenth of a core for a few seconds,
// moved deliveries per CPU-second in steps of 8%.
func procCPU(pid int) time.Duration {
	if pid <= 0 {
		return -1
	}
	// clock_getcpuclockid(3) for another process: the scheduler's clock
	// (CPUCLOCK_SCHED, 2) of the whole process, its pid complemented
	// and shifted left three (the kernel's MAKE_PROCESS_CPUCLOCK).
	var ts unix.Timespec
	if err := unix.ClockGettime(int32(^pid<<3|2), &ts); err != nil {
		return -1
	}
	return time.Duration(ts.Nano())
}

// usageSince is the CPU use between two snapshots.
func (s cpuSnapshot) usageSince(before cpuSnapshot) *CPUUsage {
	wall := s.at.Sub(before.at).Seconds()
	if wall <= 0 {
		return nil
	}
	u := &CPUUsage{Busy: map[string]float64{}, Loadtest: (s.self - before.self).Seconds() / wall}
	// Busy is what was not idle, against the wall clock: the kernel
	// measures idle time exactly, but samples busy time at its ticks,
	// which misses most of a light, bursty load.
	for name, v := range s.cpus {
		if b, ok := before.cpus[name]; ok && v >= b {
			idle := float64(v-b) / 100 / wall // USER_HZ
			u.Busy[name] = min(max(1-idle, 0), 1)
		}
	}
	if s.server >= 0 && before.server >= 0 {
		u.Server = (s.server - before.server).Seconds() / wall
	}
	if s.store >= 0 && before.store >= 0 {
		u.Store = (s.store - before.store).Seconds() / wall
	}
	u.LoadtestCPUs = meanBusy(u.Busy, ownCPUs())
	return u
}

func (u *CPUUsage) String() string {
	if u == nil {
		return "unknown"
	}
	names := make([]string, 0, len(u.Busy))
	for n := range u.Busy {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool {
		a, _ := strconv.Atoi(strings.TrimPrefix(names[i], "cpu"))
		b, _ := strconv.Atoi(strings.TrimPrefix(names[j], "cpu"))
		return a < b
	})
	var sb strings.Builder
	for _, n := range names {
		fmt.Fprintf(&sb, "%s %.0f%% ", n, 100*u.Busy[n])
	}
	if u.Server > 0 {
		fmt.Fprintf(&sb, "| server %.2f cores ", u.Server)
	}
	if u.Store > 0 {
		fmt.Fprintf(&sb, "| store %.2f cores ", u.Store)
	}
	fmt.Fprintf(&sb, "| loadtest %.2f cores", u.Loadtest)
	return sb.String()
}

// meanBusy is the mean busy fraction of the named CPUs (0 when none is
// known).
func meanBusy(busy map[string]float64, cpus []string) float64 {
	var sum float64
	n := 0
	for _, c := range cpus {
		if b, ok := busy[c]; ok {
			sum += b
			n++
		}
	}
	if n == 0 {
		return 0
	}
	return sum / float64(n)
}

// ownCPUs are the CPUs this process may run on, as /proc/stat names them
// ("cpu1"), from /proc/self/status (nil when it cannot be read).
var ownCPUs = sync.OnceValue(func() []string {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return nil
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "Cpus_allowed_list:"); ok {
			ids, err := parseCPUList(strings.TrimSpace(v))
			if err != nil {
				return nil
			}
			names := make([]string, len(ids))
			for i, id := range ids {
				names[i] = "cpu" + strconv.Itoa(id)
			}
			return names
		}
	}
	return nil
})

// parseCPUList reads a CPU list as the kernel and taskset -c write it:
// "0-2,5" is 0, 1, 2 and 5.
func parseCPUList(s string) ([]int, error) {
	var ids []int
	for part := range strings.SplitSeq(s, ",") {
		lo, hi, isRange := strings.Cut(strings.TrimSpace(part), "-")
		a, err := strconv.Atoi(lo)
		if err != nil || a < 0 {
			return nil, fmt.Errorf("bad CPU list %q", s)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil || b < a || b-a > 1<<16 {
				return nil, fmt.Errorf("bad CPU list %q", s)
			}
		}
		for id := a; id <= b; id++ {
			ids = append(ids, id)
		}
	}
	return ids, nil
}
