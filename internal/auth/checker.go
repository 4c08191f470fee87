package auth

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
)

// passwordChecker checks passwords in a child process, `northd
// check-passwords`, which runs at the lowest priority (SCHED_IDLE, or nice
// 19). A check is tens of milliseconds of CPU by design; in the serving
// process it would hold a Go processor for that long, since Go preempts a
// goroutine only every 10 ms, and cached logins and every other route would
// wait behind it (p99 20 ms on one CPU in a storm of wrong passwords). In a
// process of its own the kernel preempts it the moment a request needs the
// CPU. The cost: on a CPU kept busy by other work, checks wait; the queue
// below bounds how many, and cached logins never wait for the child.
//
// There is no in-process fallback: the child is this very binary, which
// Linux names /proc/self/exe, and one way of checking is one way tested.
//
// Requests are multiplexed by id over the child's stdin and stdout
// (checkerproto.go). The handler asking writes the frame itself and then
// zeroes it, so no other goroutine ever reads the request's memory. If the
// child dies, the checks it held and those asked meanwhile are answered
// verdictDown, and it is started again after a backoff.
type passwordChecker struct {
	exe string
	log *slog.Logger

	// slots bound the checks outstanding (sent, or waiting to be): a
	// login beyond them is refused at once. free holds the free slots'
	// indexes.
	slots []checkSlot
	free  chan uint32

	mu      sync.Mutex // orders the frames on the child's stdin
	child   *checkerChild
	frame   []byte       // the frame being written, zeroed after each write
	running atomic.Value // *checkerChild, for stop and for tests
	up      atomic.Bool  // a child is running: c.child, for /metrics without c.mu

	quit     chan struct{} // closed by stop
	stopOnce sync.Once
	done     chan struct{} // closed when the supervisor has reaped the last child

	duration *metrics.PrometheusHistogram
	restarts *metrics.Counter
}

// checkSlot is one outstanding check. id is the request's id while the
// child holds it, and 0 otherwise; whoever swaps it to 0 (the reader with
// the child's verdict, or the one failing the checks of a dead child)
// sends the one verdict.
type checkSlot struct {
	id      atomic.Uint64
	seq     uint32 // the slot holder's: numbers its requests
	verdict chan checkVerdict
}

// checkerChild is one run of the child process.
type checkerChild struct {
	cmd     *exec.Cmd
	stdin   *os.File
	stdout  *os.File
	started time.Time
}

// checkerQueuePerWorker sizes the queue of logins waiting for a password
// check: a few checks' worth per processor of the child, so that a storm
// of wrong passwords is refused within a fraction of a second instead of
// queueing for minutes.
const checkerQueuePerWorker = 4

// Restarts of a child that died wait checkerMinBackoff, doubling up to
// checkerMaxBackoff while it keeps dying young (younger than
// checkerSteadyLife).
const (
	checkerMinBackoff = 100 * time.Millisecond
	checkerMaxBackoff = 10 * time.Second
	checkerSteadyLife = time.Minute
	// checkerHelloTimeout bounds how long a fresh child may take to say
	// hello: only a child that cannot start takes this long.
	checkerHelloTimeout = 10 * time.Second
)

// startPasswordChecker starts the child and returns once it has said
// hello, so that a northd whose checker cannot run does not start.
func startPasswordChecker(set *metrics.Set, log *slog.Logger, duration *metrics.PrometheusHistogram) (*passwordChecker, error) {
	exe, err := checkerExecutable()
	if err != nil {
		return nil, fmt.Errorf("cannot find this program to start the password checker: %w", err)
	}
	c := newPasswordChecker(exe, set, log, duration)
	child, err := c.spawn()
	if err != nil {
		return nil, err
	}
	go c.supervise(child)
	return c, nil
}

// newPasswordChecker is a checker of exe with no child yet.
func newPasswordChecker(exe string, set *metrics.Set, log *slog.Logger, duration *metrics.PrometheusHistogram) *passwordChecker {
	// The child runs with the same GOMAXPROCS (spawn).
	n := (1 + checkerQueuePerWorker) * runtime.GOMAXPROCS(0)
	c := &passwordChecker{
		exe:      exe,
		log:      log,
		slots:    make([]checkSlot, n),
		free:     make(chan uint32, n),
		quit:     make(chan struct{}),
		done:     make(chan struct{}),
		duration: duration,
		restarts: set.NewCounter(`northd_password_checker_restarts_total`),
	}
	for i := range c.slots {
		c.slots[i].verdict = make(chan checkVerdict, 1)
		c.free <- uint32(i)
	}
	set.NewGauge(`northd_password_checks_waiting`, func() float64 { return float64(n - len(c.free)) })
	set.NewGauge(`northd_password_checker_up`, func() float64 {
		if c.up.Load() {
			return 1
		}
		return 0
	})
	return c
}

// check asks the child whether password matches hash, and waits for the
// answer. It answers verdictBusy at once when the queue is full, and
// verdictDown when the child is not running. password is copied into the
// frame, zeroed once written: nothing keeps it after check returns.
func (c *passwordChecker) check(hash *passwordHash, password []byte) checkVerdict {
	if len(password) > maxCheckedPassword {
		return verdictMismatch
	}
	var i uint32
	select {
	case i = <-c.free:
	default:
		return verdictBusy
	}
	defer func() { c.free <- i }()
	s := &c.slots[i]
	s.seq = max(1, s.seq+1) // never id 0: that is the hello
	id := uint64(s.seq)<<32 | uint64(i)

	start := time.Now()
	c.mu.Lock()
	child := c.child
	if child == nil {
		c.mu.Unlock()
		return verdictDown
	}
	s.id.Store(id)
	c.frame = appendCheckRequest(c.frame[:0], id, hash, password)
	_, err := child.stdin.Write(c.frame)
	clear(c.frame)
	c.mu.Unlock()
	if err != nil {
		// The child cannot read: end it, and the supervisor answers
		// every check it held, this one included.
		child.cmd.Process.Kill()
	}
	v := <-s.verdict
	if v == verdictMatch || v == verdictMismatch {
		c.duration.UpdateDuration(start)
	}
	return v
}

// spawn starts a child and waits for its hello.
func (c *passwordChecker) spawn() (*checkerChild, error) {
	childIn, stdin, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("password checker: %w", err)
	}
	stdout, childOut, err := os.Pipe()
	if err != nil {
		childIn.Close()
		stdin.Close()
		return nil, fmt.Errorf("password checker: %w", err)
	}
	cmd := &exec.Cmd{
		Path:   c.exe,
		Args:   []string{"northd", CheckPasswordsCommand},
		Stdin:  childIn,
		Stdout: childOut,
		Stderr: &checkerStderr{log: c.log},
		// Only what it needs: the same number of processors as
		// northd, and none of northd's settings (the store URL).
		// madvdontneed=0: the heap the runtime gives back goes with
		// MADV_FREE, so that the next check reuses its pages instead
		// of faulting in and zeroing argon2id's 19 MiB anew; those
		// faults were kernel time that requests on the same CPU
		// waited for (auth-storm p99 pinned: 12-19 ms with, 2.7 ms
		// without).
		Env: []string{"GOMAXPROCS=" + strconv.Itoa(runtime.GOMAXPROCS(0)), "GODEBUG=madvdontneed=0"},
	}
	err = cmd.Start()
	childIn.Close()
	childOut.Close()
	if err != nil {
		stdin.Close()
		stdout.Close()
		return nil, fmt.Errorf("cannot start the password checker %s: %w", c.exe, err)
	}
	child := &checkerChild{cmd: cmd, stdin: stdin, stdout: stdout, started: time.Now()}
	if err := child.hello(); err != nil {
		child.end()
		return nil, fmt.Errorf("the password checker %s did not start: %w", c.exe, err)
	}
	c.mu.Lock()
	c.child = child
	c.mu.Unlock()
	c.up.Store(true)
	c.running.Store(child)
	c.log.Info("password checker started", "checker_pid", cmd.Process.Pid)
	return child, nil
}

// hello reads the child's first reply.
func (ch *checkerChild) hello() error {
	ch.stdout.SetReadDeadline(time.Now().Add(checkerHelloTimeout))
	defer ch.stdout.SetReadDeadline(time.Time{})
	var b [checkReplyLen]byte
	if _, err := io.ReadFull(ch.stdout, b[:]); err != nil {
		return fmt.Errorf("no hello: %w", err)
	}
	if id, v := parseCheckReply(b[:]); id != 0 || v != checkProtocolVersion {
		return fmt.Errorf("it speaks another protocol (hello %d, version %d; want 0, %d)", id, v, checkProtocolVersion)
	}
	return nil
}

// end kills the child and reaps it.
func (ch *checkerChild) end() {
	ch.stdin.Close()
	ch.cmd.Process.Kill()
	ch.cmd.Wait()
	ch.stdout.Close()
}

// supervise reads the verdicts of each child in turn; when one dies it
// answers the checks that child held, and starts another after a backoff,
// until stop.
func (c *passwordChecker) supervise(child *checkerChild) {
	defer close(c.done)
	backoff := checkerMinBackoff
	for {
		if child != nil {
			err := c.readVerdicts(child)
			c.up.Store(false)
			c.mu.Lock()
			c.child = nil
			c.mu.Unlock()
			c.failOutstanding()
			child.end()
			select {
			case <-c.quit:
				return
			default:
			}
			if time.Since(child.started) >= checkerSteadyLife {
				backoff = checkerMinBackoff
			}
			c.log.Error("password checker stopped; logins that need a password check get 503 until it is restarted",
				"checker_pid", child.cmd.Process.Pid, "exit", child.cmd.ProcessState.String(), "err", err, "restart_in", backoff)
		}
		timer := time.NewTimer(backoff)
		select {
		case <-c.quit:
			timer.Stop()
			return
		case <-timer.C:
		}
		backoff = min(2*backoff, checkerMaxBackoff)
		var err error
		if child, err = c.spawn(); err != nil {
			c.log.Error("password checker not restarted; trying again", "err", err, "restart_in", backoff)
			continue
		}
		c.restarts.Inc()
		select {
		case <-c.quit:
			// stop may have looked for the child before spawn
			// stored it: end it, and the loop tears it down.
			child.cmd.Process.Kill()
		default:
		}
	}
}

// readVerdicts hands each of child's verdicts to the check waiting for
// it, until the child's stdout ends.
func (c *passwordChecker) readVerdicts(child *checkerChild) error {
	var b [checkReplyLen]byte
	for {
		if _, err := io.ReadFull(child.stdout, b[:]); err != nil {
			return err
		}
		id, v := parseCheckReply(b[:])
		i := uint32(id)
		// Id 0 is the hello's, never a request's: after the hello it
		// would match a free slot.
		if id == 0 || i >= uint32(len(c.slots)) || v > verdictRefused {
			return fmt.Errorf("the password checker answered garbage (id %#x, verdict %d)", id, v)
		}
		if v == verdictRefused {
			c.log.Error("the password checker could not read a hash from the users file; the login gets 503")
			v = verdictDown
		}
		if s := &c.slots[i]; s.id.CompareAndSwap(id, 0) {
			s.verdict <- v
		}
	}
}

// failOutstanding answers verdictDown to every check the child held. No
// check can be sent meanwhile: the child is marked gone first.
func (c *passwordChecker) failOutstanding() {
	for i := range c.slots {
		s := &c.slots[i]
		if id := s.id.Load(); id != 0 && s.id.CompareAndSwap(id, 0) {
			s.verdict <- verdictDown
		}
	}
}

// stop ends the child and the supervisor. Checks still waiting, and any
// asked afterwards, are answered verdictDown. It is called once every
// handler has returned, or after the shutdown timeout, when some may still
// wait: they then answer 503 and return, and none of them has memory the
// child could still read.
func (c *passwordChecker) stop() {
	c.stopOnce.Do(func() {
		close(c.quit)
		if child, ok := c.running.Load().(*checkerChild); ok {
			// Ends readVerdicts; the supervisor answers the
			// outstanding checks and reaps the child.
			child.stdin.Close()
			child.cmd.Process.Kill()
		}
		<-c.done
	})
}

// checkerStderr logs what the child writes on its stderr: the reason it
// could not lower its priority, or a crash.
type checkerStderr struct {
	log *slog.Logger
}

func (w *checkerStderr) Write(p []byte) (int, error) {
	const most = 4 << 10 // a crash's stack is long; its start says enough
	line := bytes.TrimSpace(p[:min(len(p), most)])
	if len(line) > 0 {
		w.log.Warn("password checker says", "stderr", string(line))
	}
	return len(p), nil
}
