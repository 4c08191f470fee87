package main

import (
	"bytes"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// CPUUsage is how busy the machine and the two processes were during a
// run: per-CPU busy fractions from /proc/stat (whatever was not idle,
// softirq included: on loopback much of the network work is there), and the
// server's and this tool's CPU time per second of wall time, in cores.
type CPUUsage struct {
	Busy     map[string]float64 `json:"busy"`
	Server   float64            `json:"server,omitempty"`
	Loadtest float64            `json:"loadtest"`
}

type cpuSnapshot struct {
	at     time.Time
	cpus   map[string]uint64 // name -> idle + iowait, in USER_HZ ticks
	server time.Duration     // server process CPU time (-1: unknown)
	self   time.Duration
}

func takeCPUSnapshot(serverPID int) cpuSnapshot {
	s := cpuSnapshot{at: time.Now(), cpus: map[string]uint64{}, server: -1}
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
	if serverPID > 0 {
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", serverPID)); err == nil {
			// Fields after the command, which may hold spaces.
			if i := bytes.LastIndexByte(b, ')'); i > 0 {
				f := strings.Fields(string(b[i+1:]))
				if len(f) > 12 {
					u, _ := strconv.ParseUint(f[11], 10, 64)
					st, _ := strconv.ParseUint(f[12], 10, 64)
					s.server = time.Duration(u+st) * time.Second / 100 // USER_HZ
				}
			}
		}
	}
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		s.self = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	return s
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
	fmt.Fprintf(&sb, "| loadtest %.2f cores", u.Loadtest)
	return sb.String()
}
