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
// run: per-CPU busy fractions from /proc/stat (user, system, irq and
// softirq: on loopback much of the network work is softirq), and the
// server's and this tool's CPU time per second of wall time, in cores.
type CPUUsage struct {
	Busy     map[string]float64 `json:"busy"`
	Server   float64            `json:"server,omitempty"`
	Loadtest float64            `json:"loadtest"`
}

type cpuSnapshot struct {
	at     time.Time
	cpus   map[string][2]uint64 // name -> busy, total jiffies
	server time.Duration        // server process CPU time (-1: unknown)
	self   time.Duration
}

func takeCPUSnapshot(serverPID int) cpuSnapshot {
	s := cpuSnapshot{at: time.Now(), cpus: map[string][2]uint64{}, server: -1}
	if b, err := os.ReadFile("/proc/stat"); err == nil {
		for line := range bytes.Lines(b) {
			f := strings.Fields(string(line))
			if len(f) < 8 || !strings.HasPrefix(f[0], "cpu") || f[0] == "cpu" {
				continue
			}
			var total, idle uint64
			for i, v := range f[1:] {
				n, _ := strconv.ParseUint(v, 10, 64)
				if i >= 7 { // guest time is already in user
					break
				}
				total += n
				if i == 3 || i == 4 { // idle, iowait
					idle += n
				}
			}
			s.cpus[f[0]] = [2]uint64{total - idle, total}
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
	for name, v := range s.cpus {
		if b, ok := before.cpus[name]; ok && v[1] > b[1] {
			u.Busy[name] = float64(v[0]-b[0]) / float64(v[1]-b[1])
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
