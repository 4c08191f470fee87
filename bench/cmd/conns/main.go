// Command conns measures what an idle keep-alive connection costs a
// server in resident memory: it starts each server, reads its VmRSS, opens
// -n connections that each make one request and then stay open and idle,
// reads VmRSS again, and reports the difference per connection.
//
// Run it from the repository root through `make bench-conns`, which builds
// the servers and raises the open-files limit first.
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

type server struct {
	name, about string
	argv        func(bin string, port int) []string
}

var servers = []server{
	{"northd", "northd, defaults", func(bin string, port int) []string {
		return []string{filepath.Join(bin, "northd"), "-listen", addr(port), "-admin", "off", "-log-level", "warn"}
	}},
	{"northd -reduce-memory", "northd -reduce-memory (fasthttp ReduceMemoryUsage)", func(bin string, port int) []string {
		return []string{filepath.Join(bin, "northd"), "-listen", addr(port), "-admin", "off", "-log-level", "warn", "-reduce-memory"}
	}},
	{"floor", "bench/peers/floor, fasthttp defaults", func(bin string, port int) []string {
		return []string{filepath.Join(bin, "floor"), "-listen", addr(port)}
	}},
	{"floor -reduce-memory", "bench/peers/floor with ReduceMemoryUsage", func(bin string, port int) []string {
		return []string{filepath.Join(bin, "floor"), "-listen", addr(port), "-reduce-memory"}
	}},
	{"floor, 1 KiB buffers", "bench/peers/floor -read-buffer-size 1024 -write-buffer-size 1024", func(bin string, port int) []string {
		return []string{filepath.Join(bin, "floor"), "-listen", addr(port), "-read-buffer-size", "1024", "-write-buffer-size", "1024"}
	}},
	{"nethttp", "bench/peers/nethttp, net/http defaults", func(bin string, port int) []string {
		return []string{filepath.Join(bin, "nethttp"), "-listen", addr(port)}
	}},
}

func addr(port int) string { return "127.0.0.1:" + strconv.Itoa(port) }

func main() {
	n := flag.Int("n", 8000, "idle keep-alive connections per server")
	bin := flag.String("bin", "bin/bench", "directory with the northd, floor and nethttp binaries")
	out := flag.String("out", "bench/results", "directory for the report")
	procs := flag.Int("gomaxprocs", 1, "GOMAXPROCS for the servers")
	flag.Parse()

	var rows []row
	for _, s := range servers {
		r, err := measure(s, *bin, *n, *procs)
		if err != nil {
			fmt.Fprintf(os.Stderr, "conns: %s: %v\n", s.name, err)
			os.Exit(1)
		}
		fmt.Printf("%-22s %6d connections: RSS %7.1f MiB → %7.1f MiB, %5.2f KiB per connection\n",
			s.name, r.conns, float64(r.before)/1024, float64(r.after)/1024, r.perConn())
		rows = append(rows, r)
	}
	if err := report(*out, rows, *n, *procs); err != nil {
		fmt.Fprintln(os.Stderr, "conns:", err)
		os.Exit(1)
	}
}

type row struct {
	server
	conns         int
	before, after int64 // VmRSS, KiB
}

func (r row) perConn() float64 { return float64(r.after-r.before) / float64(r.conns) }

func measure(s server, bin string, n, procs int) (row, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return row{}, err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	argv := s.argv(bin, port)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), "GOMAXPROCS="+strconv.Itoa(procs))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return row{}, err
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	defer func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
	}()
	if err := waitListening(port, exited); err != nil {
		return row{}, err
	}
	// Warm the server: a few hundred requests on a few connections, so
	// the baseline includes its pools and first goroutines.
	for range 4 {
		c, err := dialAndAsk(port, 100)
		if err != nil {
			return row{}, err
		}
		c.Close()
	}
	time.Sleep(500 * time.Millisecond)
	pid := cmd.Process.Pid
	before, err := vmRSS(pid)
	if err != nil {
		return row{}, err
	}

	conns := make([]net.Conn, n)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	next := make(chan int)
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				c, err := dialAndAsk(port, 1)
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = fmt.Errorf("connection %d: %v", i, err)
					}
					mu.Unlock()
					continue
				}
				conns[i] = c
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	}()
	if firstErr != nil {
		return row{}, fmt.Errorf("%v (raise the open-files limit: ulimit -n)", firstErr)
	}
	// Let the server settle: its goroutines park, its GC may run.
	time.Sleep(2 * time.Second)
	select {
	case <-exited:
		return row{}, errors.New("server exited")
	default:
	}
	after, err := vmRSS(pid)
	if err != nil {
		return row{}, err
	}
	return row{server: s, conns: n, before: before, after: after}, nil
}

// dialAndAsk opens a keep-alive connection and makes k GET / requests on
// it, reading each whole response.
func dialAndAsk(port, k int) (net.Conn, error) {
	c, err := net.DialTimeout("tcp", addr(port), 5*time.Second)
	if err != nil {
		return nil, err
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReaderSize(c, 1024)
	for range k {
		if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: bench\r\n\r\n"); err != nil {
			c.Close()
			return nil, err
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			c.Close()
			return nil, err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Close {
			c.Close()
			return nil, fmt.Errorf("status %d, close %v", resp.StatusCode, resp.Close)
		}
	}
	c.SetDeadline(time.Time{})
	return c, nil
}

func waitListening(port int, exited chan struct{}) error {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return errors.New("server exited at start")
		default:
		}
		if c, err := net.DialTimeout("tcp", addr(port), time.Second); err == nil {
			c.Close()
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return errors.New("server not listening after 10s")
}

// vmRSS reads VmRSS (KiB) from /proc/<pid>/status.
func vmRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(v)
			if len(f) > 0 {
				return strconv.ParseInt(f[0], 10, 64)
			}
		}
	}
	return 0, errors.New("no VmRSS in /proc/<pid>/status")
}

func report(dir string, rows []row, n, procs int) error {
	host, _ := os.Hostname()
	if host == "" {
		host = "host"
	}
	date := time.Now().Format("2006-01-02")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	path := filepath.Join(dir, date+"-"+host+"-conns.md")
	var b strings.Builder
	fmt.Fprintf(&b, "# RSS per idle keep-alive connection: %s on %s\n\n", date, host)
	fmt.Fprintf(&b, "Made by `make bench-conns` from the repository root: each server (GOMAXPROCS=%d) is warmed with 400 requests, "+
		"then %d connections each make one `GET /` and stay open and idle; the server's VmRSS (/proc/<pid>/status) "+
		"is read before them and 2 s after the last one. Target: ≤ 6 KiB per connection.\n\n", procs, n)
	fmt.Fprintf(&b, "| server | connections | RSS before | RSS with them open | per connection | ≤ 6 KiB |\n|---|--:|--:|--:|--:|:-:|\n")
	for _, r := range rows {
		met := "no"
		if r.perConn() <= 6 {
			met = "yes"
		}
		fmt.Fprintf(&b, "| %s | %d | %.1f MiB | %.1f MiB | **%.2f KiB** | %s |\n", r.name, r.conns,
			float64(r.before)/1024, float64(r.after)/1024, r.perConn(), met)
	}
	fmt.Fprintf(&b, "\nMachine: %d CPUs, %s, %s.\n", runtime.NumCPU(), kernel(), goVersion())
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		return err
	}
	fmt.Printf("\nconns: wrote %s\n", path)
	return nil
}

func kernel() string {
	b, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	return "Linux " + strings.TrimSpace(string(b))
}

func goVersion() string {
	out, err := exec.Command("go", "version").Output()
	if err != nil {
		return runtime.Version()
	}
	return strings.TrimSpace(string(out))
}
