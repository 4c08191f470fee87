package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// MemoryReport is the target process's resident memory over a run, read
// from /proc/<pid>/status (VmRSS).
type MemoryReport struct {
	PID     int         `json:"pid"`
	Samples []RSSSample `json:"samples"`
	// Warmup is how long after the start samples are left out of the
	// flatness check (the registry fills and pools grow meanwhile).
	Warmup float64 `json:"warmup"`
	// FirstAfterWarmup, MinAfterWarmup, MaxAfterWarmup and Last are RSS
	// in bytes.
	FirstAfterWarmup int64 `json:"first_after_warmup"`
	MinAfterWarmup   int64 `json:"min_after_warmup"`
	MaxAfterWarmup   int64 `json:"max_after_warmup"`
	Last             int64 `json:"last"`
	// Spread is (max - min) / min over the samples after the warmup;
	// Flat says Spread <= Tolerance.
	Spread    float64 `json:"spread"`
	Tolerance float64 `json:"tolerance"`
	Flat      bool    `json:"flat"`
}

// RSSSample is the RSS in bytes At seconds after the start.
type RSSSample struct {
	At  float64 `json:"at"`
	RSS int64   `json:"rss"`
}

func (m *MemoryReport) writeText(w io.Writer) {
	mib := func(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }
	flat := "FLAT"
	if !m.Flat {
		flat = "NOT FLAT"
	}
	fmt.Fprintf(w, "memory        pid %d RSS after %s warmup: first %s, min %s, max %s, last %s: spread %.1f%% (%s within %.0f%%)\n",
		m.PID, secs(m.Warmup), mib(m.FirstAfterWarmup), mib(m.MinAfterWarmup), mib(m.MaxAfterWarmup), mib(m.Last),
		100*m.Spread, flat, 100*m.Tolerance)
	var b strings.Builder
	for i, s := range m.Samples {
		if i > 0 && len(m.Samples) > 30 && i%(len(m.Samples)/30+1) != 0 && i != len(m.Samples)-1 {
			continue
		}
		fmt.Fprintf(&b, " %.0fs:%.1f", s.At, float64(s.RSS)/(1<<20))
	}
	fmt.Fprintf(w, "rss (MiB)    %s\n", b.String())
}

// rssSampler reads a process's RSS at a fixed period until stopped.
type rssSampler struct {
	pid     int
	mu      sync.Mutex
	samples []RSSSample
	done    chan struct{}
	stopped chan struct{}
}

func startRSSSampler(pid int, every time.Duration) *rssSampler {
	s := &rssSampler{pid: pid, done: make(chan struct{}), stopped: make(chan struct{})}
	began := time.Now()
	sample := func() {
		if rss, err := readRSS(pid); err == nil {
			s.mu.Lock()
			s.samples = append(s.samples, RSSSample{At: time.Since(began).Seconds(), RSS: rss})
			s.mu.Unlock()
		}
	}
	sample()
	go func() {
		defer close(s.stopped)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-s.done:
				sample()
				return
			case <-t.C:
				sample()
			}
		}
	}()
	return s
}

// stop ends sampling and judges flatness after warmup.
func (s *rssSampler) stop(warmup time.Duration, tolerance float64) *MemoryReport {
	close(s.done)
	<-s.stopped
	m := &MemoryReport{PID: s.pid, Samples: s.samples, Warmup: warmup.Seconds(), Tolerance: tolerance}
	for _, x := range s.samples {
		if x.At < warmup.Seconds() {
			continue
		}
		if m.FirstAfterWarmup == 0 {
			m.FirstAfterWarmup, m.MinAfterWarmup, m.MaxAfterWarmup = x.RSS, x.RSS, x.RSS
		}
		m.MinAfterWarmup = min(m.MinAfterWarmup, x.RSS)
		m.MaxAfterWarmup = max(m.MaxAfterWarmup, x.RSS)
	}
	if n := len(s.samples); n > 0 {
		m.Last = s.samples[n-1].RSS
	}
	if m.MinAfterWarmup > 0 {
		m.Spread = float64(m.MaxAfterWarmup-m.MinAfterWarmup) / float64(m.MinAfterWarmup)
		m.Flat = m.Spread <= tolerance
	}
	return m
}

// readRSS returns VmRSS of pid in bytes.
func readRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range bytes.Lines(b) {
		if rest, ok := bytes.CutPrefix(line, []byte("VmRSS:")); ok {
			f := strings.Fields(string(rest))
			if len(f) >= 1 {
				kb, err := strconv.ParseInt(f[0], 10, 64)
				return kb * 1024, err
			}
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
}

// localPort returns the port of a target URL when its host is a loopback
// address (or localhost), else 0.
func localPort(target string) int {
	u, err := url.Parse(target)
	if err != nil {
		return 0
	}
	host := u.Hostname()
	if host != "localhost" {
		ip := net.ParseIP(host)
		if ip == nil || !ip.IsLoopback() {
			return 0
		}
	}
	port, err := strconv.Atoi(u.Port())
	if err != nil {
		if u.Scheme == "http" {
			return 80
		}
		return 0
	}
	return port
}

// pidListeningOn finds the process with a listening TCP socket on port:
// the socket's inode from /proc/net/tcp{,6}, then the process holding it
// among /proc/*/fd. Only processes this user may inspect are found.
func pidListeningOn(port int) (int, error) {
	inodes := map[string]bool{}
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		fh, err := os.Open(f)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(fh)
		sc.Scan() // header
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			// sl local_address rem_address st ... inode (field 9)
			if len(fields) < 10 || fields[3] != "0A" {
				continue
			}
			_, hexPort, ok := strings.Cut(fields[1], ":")
			p, err := strconv.ParseUint(hexPort, 16, 16)
			if ok && err == nil && int(p) == port {
				inodes["socket:["+fields[9]+"]"] = true
			}
		}
		fh.Close()
	}
	if len(inodes) == 0 {
		return 0, fmt.Errorf("no listening socket on port %d", port)
	}
	procs, _ := filepath.Glob("/proc/[0-9]*")
	for _, p := range procs {
		fds, err := os.ReadDir(p + "/fd")
		if err != nil {
			continue
		}
		for _, fd := range fds {
			if link, err := os.Readlink(p + "/fd/" + fd.Name()); err == nil && inodes[link] {
				return strconv.Atoi(filepath.Base(p))
			}
		}
	}
	return 0, fmt.Errorf("no process found holding the listener on port %d", port)
}

// readProcIO returns one field of /proc/<pid>/io, e.g. syscw, the write
// system calls the process has made.
func readProcIO(pid int, field string) (int64, error) {
	if pid <= 0 {
		return 0, fmt.Errorf("no pid")
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid))
	if err != nil {
		return 0, err
	}
	n, ok := procIOField(b, field)
	if !ok {
		return 0, fmt.Errorf("no %s in /proc/%d/io", field, pid)
	}
	return n, nil
}

// procIOField reads "field: N" from the text of /proc/<pid>/io.
func procIOField(b []byte, field string) (int64, bool) {
	for line := range bytes.Lines(b) {
		if rest, ok := bytes.CutPrefix(line, []byte(field+": ")); ok {
			n, rest, ok := leadingNumber(rest)
			return n, ok && (len(rest) == 0 || string(rest) == "\n")
		}
	}
	return 0, false
}
