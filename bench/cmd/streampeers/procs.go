package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"northd/bench/internal/benchutil"
)

// startTimeout is generous: a server that takes this long to listen on a
// shared machine is broken, not slow.
const startTimeout = 30 * time.Second

// outputKept is how much of the end of a process's output is kept: far
// more than the lines an error quotes.
const outputKept = 64 << 10

// proc is a process the driver started, in a process group of its own so
// that stopping it stops whatever it started too.
type proc struct {
	name   string
	c      command
	cmd    *exec.Cmd
	exited chan struct{}
	mu     sync.Mutex
	log    *tailBuffer // the end of its output, for when it fails
	forget func()      // takes it off undo
}

// startProc starts c. taskset execs the program, so the pid is the
// program's own: what loadtest's -pid and -store-pid read CPU time from.
func startProc(name string, c command) (*proc, error) {
	p := &proc{name: name, c: c, exited: make(chan struct{}), log: newTailBuffer(outputKept)}
	p.cmd = exec.Command(c.argv[0], c.argv[1:]...)
	p.cmd.Env = append(os.Environ(), c.env...)
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	p.cmd.Stderr = p.cmd.Stdout
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %v", name, err)
	}
	p.forget = undo.add(p.kill)
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			p.mu.Lock()
			p.log.Write(append(sc.Bytes(), '\n'))
			p.mu.Unlock()
		}
		io.Copy(io.Discard, out)
		p.cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

func (p *proc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := strings.TrimSpace(p.log.String())
	if len(s) > 2000 {
		s = "…" + s[len(s)-2000:]
	}
	return s
}

// waitFor polls ready until it holds, p exits or startTimeout passes.
func (p *proc) waitFor(what string, ready func() bool) error {
	deadline := time.Now().Add(startTimeout)
	for !ready() {
		select {
		case <-p.exited:
			return fmt.Errorf("%s exited before %s: %s\n%s", p.name, what, p.cmd.ProcessState, p.output())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not %s after %v: %s", p.name, what, startTimeout, p.output())
		}
	}
	return nil
}

// waitListening waits until every address accepts a connection.
func (p *proc) waitListening(addrs ...string) error {
	return p.waitFor("listening on "+strings.Join(addrs, " and "), func() bool {
		for _, a := range addrs {
			c, err := net.DialTimeout("tcp", a, time.Second)
			if err != nil {
				return false
			}
			c.Close()
		}
		return true
	})
}

// stop ends p's process group (kill) and takes it off undo.
func (p *proc) stop() {
	p.kill()
	p.forget()
}

// kill ends p's process group: SIGTERM, SIGKILL after 10 s. It may be
// called more than once.
func (p *proc) kill() {
	select {
	case <-p.exited:
		return
	default:
	}
	syscall.Kill(-p.pid(), syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		syscall.Kill(-p.pid(), syscall.SIGKILL)
		<-p.exited
	}
}

func (p *proc) alive() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

func addr(port int) string { return "127.0.0.1:" + strconv.Itoa(port) }

// redisServer is a throwaway redis-server and its directory.
type redisServer struct {
	*proc
	port      int
	dir       string
	forgetDir func()
}

func (s *redisServer) addr() string { return addr(s.port) }

// startRedis starts redis-server on a free port and waits for its "Ready
// to accept connections" line.
func startRedis(pin pinning) (*redisServer, error) {
	var lastErr error
	for range 3 {
		port, err := benchutil.FreePort()
		if err != nil {
			return nil, err
		}
		dir, err := os.MkdirTemp("", "northd-bench-redis-")
		if err != nil {
			return nil, err
		}
		// Registered before the process, so undone after it.
		forgetDir := undo.add(func() { os.RemoveAll(dir) })
		p, err := startProc("redis-server", redisCommand(pin, port, dir))
		if err != nil {
			os.RemoveAll(dir)
			forgetDir()
			return nil, err
		}
		s := &redisServer{proc: p, port: port, dir: dir, forgetDir: forgetDir}
		if lastErr = p.waitFor("ready", func() bool { return strings.Contains(p.output(), "Ready to accept connections") }); lastErr == nil {
			return s, nil
		}
		s.stop()
	}
	return nil, fmt.Errorf("redis-server did not start: %v", lastErr)
}

// stop ends redis-server and removes its directory.
func (s *redisServer) stop() {
	s.proc.stop()
	os.RemoveAll(s.dir)
	s.forgetDir()
}

// startServer starts the command build makes for free ports, waiting
// until it listens on every address it was given; a port taken meanwhile
// makes the server exit, and it is tried again on others.
func startServer(name string, ports int, build func(ports []int) command) (*proc, []int, error) {
	var lastErr error
	for range 3 {
		ps := make([]int, ports)
		for i := range ps {
			var err error
			if ps[i], err = benchutil.FreePort(); err != nil {
				return nil, nil, err
			}
		}
		p, err := startProc(name, build(ps))
		if err != nil {
			return nil, nil, err
		}
		addrs := make([]string, len(ps))
		for i, port := range ps {
			addrs[i] = addr(port)
		}
		if lastErr = p.waitListening(addrs...); lastErr == nil {
			return p, ps, nil
		}
		p.stop()
	}
	return nil, nil, lastErr
}

// undoList is what the driver must undo when it ends, interrupted or not:
// the processes still running, the directories to remove.
type undoList struct {
	mu   sync.Mutex
	next int
	fns  map[int]func()
	done bool
}

// undo is the driver's: main runs it at the end, the signal handler on
// Ctrl-C.
var undo = &undoList{fns: map[int]func(){}}

// add registers f and returns what takes it off again (once f has run).
func (u *undoList) add(f func()) (remove func()) {
	u.mu.Lock()
	defer u.mu.Unlock()
	id := u.next
	u.next++
	u.fns[id] = f
	return func() {
		u.mu.Lock()
		defer u.mu.Unlock()
		delete(u.fns, id)
	}
}

// run undoes everything registered, the newest first, once.
func (u *undoList) run() {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.done {
		return
	}
	u.done = true
	for id := u.next - 1; id >= 0; id-- {
		if f, ok := u.fns[id]; ok {
			f()
		}
	}
}
