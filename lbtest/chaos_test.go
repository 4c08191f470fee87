package lbtest

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"northd/internal/testdeps"
	"northd/lbtest/chaoscheck"
)

// TestChaos runs the push under faults and holds it to its promise with
// lbtest/chaoscheck, a checker written apart from northd. Each schedule:
// two northd instances on one real redis-server (AOF everysec, RDB
// snapshots), north servers at 127.0.0.2–4 each reading an event stream
// (resumed with Last-Event-ID over every reconnection) and subscribed to
// a webhook receiver of its own on its ip, two producers publishing events
// to all, to a username and to an ip, each with a key of its own; then a
// seeded random sequence of faults, one at a time while the producers
// publish: redis-server killed (-9) and started again from its AOF, or from
// an older RDB snapshot; the delivering instance killed and started again,
// or stopped (SIGSTOP) past its lease and continued; a receiver answering
// 5xx, hanging, answering past the lease, or 410 (the harness then
// subscribes again); a north server logging out, logging in again, or
// replaced at its ip by another username. At the end every ip's first
// north server logs in again, the producers stop, and the run waits for
// deliveries to settle (every owed event taken and nothing new for a
// while, or a generous bound).
//
// CHAOS_SCHEDULES sets how many schedules run (2 unless set: make test;
// make chaos runs more), CHAOS_SEED replays one. Each schedule prints its
// seed and faults, and the test prints the totals: events published,
// deliveries, and lost, reordered, reused, leaked and duplicated counts.
// It fails on any breach, listing the first few of each kind.
func TestChaos(t *testing.T) {
	testdeps.Need(t, "redis-server", "redis-server")
	testdeps.Need(t, "redis-cli", "redis-tools")
	schedules := 2
	if s := os.Getenv("CHAOS_SCHEDULES"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("CHAOS_SCHEDULES=%q: give a count of schedules, 1 or more", s)
		}
		schedules = n
	}
	base := uint64(time.Now().UnixNano())
	if s := os.Getenv("CHAOS_SEED"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("CHAOS_SEED=%q: give the seed a schedule printed", s)
		}
		base, schedules = n, 1
	}
	var total chaoscheck.Report
	var failed []string
	for i := range schedules {
		seed := base + uint64(i)
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			r := runSchedule(t, seed)
			t.Logf("seed %d: %s", seed, r.Summary())
			if r.Breaches() > 0 {
				failed = append(failed, strconv.FormatUint(seed, 10))
				t.Errorf("seed %d breaks the push's promise (replay: CHAOS_SEED=%d make chaos):\n%s", seed, seed, r.Details())
			}
			add(&total, r)
		})
	}
	t.Logf("chaos: %d schedules; %s", schedules, total.Summary())
	if len(failed) > 0 {
		t.Logf("schedules with breaches, by seed: %s", strings.Join(failed, " "))
	}
}

func add(to, r *chaoscheck.Report) {
	to.Published += r.Published
	to.Unacknowledged += r.Unacknowledged
	to.Deliveries += r.Deliveries
	to.StreamEvents += r.StreamEvents
	to.Resets += r.Resets
	to.Redelivered += r.Redelivered
	to.Lost += r.Lost
	to.Reordered += r.Reordered
	to.Reused += r.Reused
	to.Leaked += r.Leaked
	to.Duplicated += r.Duplicated
	to.BadSign += r.BadSign
}

const (
	chaosLease = 2 * time.Second // -push-lease: short, so that faults outlast it
	// chaosFaults is how many faults a schedule injects, one after the
	// other; between two, the producers get chaosBetween more events
	// answered.
	chaosFaults  = 6
	chaosBetween = 20
	// The settling at the end: done when every owed event was taken and
	// nothing new came for settleQuiet; or, events still missing, when
	// nothing new came for settleGiveUp (longer than the 30 s a second
	// failed attempt waits); or at settleMost.
	settleQuiet  = 3 * time.Second
	settleGiveUp = 45 * time.Second
	settleMost   = 3 * time.Minute
)

// The ips of the north servers, each first held by its own username;
// north-4 takes an ip over now and then. No one ever holds nobodyIP, and
// no one logs in as nobody: events to them go nowhere.
var (
	chaosIPs   = []string{"127.0.0.2", "127.0.0.3", "127.0.0.4"}
	chaosFirst = []string{"north-1", "north-2", "north-3"}
	chaosSpare = "north-4"
	nobodyIP   = "127.0.0.9"
	nobodyUser = "nobody"
)

// chaos is one schedule's world. rec guards every record the checker
// reads.
type chaos struct {
	t         *testing.T
	rng       *rand.Rand
	redis     *testdeps.Redis
	instances []*instance
	turn      atomic.Int64 // which instance a request tries first
	client    *http.Client

	rec         sync.Mutex
	publishes   []chaoscheck.Publish
	transitions []chaoscheck.Transition
	servers     []*northSrv
	holder      map[string]*northSrv // ip → who holds it, as the harness made it
	lastChange  time.Time            // when a receiver or a stream last got something
	acked       atomic.Int64
	notes       []string
	refused     []string // what testdeps.CheckWebhook found wrong in a delivery
}

// checkWebhook records what testdeps.CheckWebhook finds wrong in a
// request a receiver took: the test fails on it once the receivers are
// closed, never from their handlers, which may outlive it.
func (c *chaos) checkWebhook(r *http.Request, body []byte, secrets ...string) {
	if err := testdeps.CheckWebhook(r, body, secrets...); err != nil {
		c.rec.Lock()
		c.refused = append(c.refused, err.Error())
		c.rec.Unlock()
	}
}

func (c *chaos) note(format string, args ...any) {
	c.rec.Lock()
	defer c.rec.Unlock()
	if len(c.notes) < 20 {
		c.notes = append(c.notes, fmt.Sprintf(format, args...))
	}
}

// next is the instance to try next: they take turns.
func (c *chaos) next() *instance {
	return c.instances[int(c.turn.Add(1))%len(c.instances)]
}

func runSchedule(t *testing.T, seed uint64) *chaoscheck.Report {
	rng := rand.New(rand.NewPCG(seed, 0x6368616f73))
	redis := testdeps.StartRedis(t)
	var users strings.Builder
	users.WriteString(testdeps.TestUsersHeader)
	for _, u := range append(append([]string(nil), chaosFirst...), chaosSpare) {
		users.WriteString(u + ":" + testdeps.Bcrypt2ySecret + "\n")
	}
	extra := []string{"-users", testdeps.WriteUsersFile(t, users.String()), "-push-allow", "127.0.0.0/8",
		"-push-lease", chaosLease.String(), "-push-timeout", (chaosLease * 2 / 5).String(),
		// The retries of a receiver that failed come back within the
		// run's settling, not the schedule's minutes.
		"-push-max-backoff", "2s"}
	c := &chaos{t: t, rng: rng, redis: redis, client: &http.Client{Timeout: 5 * time.Second}, holder: map[string]*northSrv{}}
	for _, name := range []string{"a", "b"} {
		in := &instance{name: name, plain: true, store: redis.URL(), extra: extra}
		in.start(t)
		c.instances = append(c.instances, in)
	}
	t.Cleanup(func() {
		for _, in := range c.instances {
			in.n.Kill() // stopped by a fault or not
			if t.Failed() {
				t.Logf("northd %s, the end of its log (since its last start):\n%s", in.name, tail(in.n.Log(), 60))
			}
		}
	})
	for i, ip := range chaosIPs {
		c.login(c.server(chaosFirst[i], ip))
	}
	var fault strings.Builder
	stopProducers := c.startProducers(seed)
	c.awaitPublished(chaosBetween)
	for i := range chaosFaults {
		what := c.fault()
		fmt.Fprintf(&fault, "\n  %d. %s", i+1, what)
		t.Logf("seed %d, fault %d: %s", seed, i+1, what)
		c.awaitPublished(chaosBetween)
	}
	// Every ip's first north server logs in again, so that what waited
	// for it comes.
	for i, ip := range chaosIPs {
		first := c.server(chaosFirst[i], ip)
		if h := c.holderOf(ip); h != first {
			if h != nil {
				c.logout(h)
			}
			c.login(first)
		}
	}
	c.awaitPublished(chaosBetween)
	stopProducers()
	c.settle()
	for _, s := range c.servers {
		s.stream.close()
		s.recv.close()
	}
	c.rec.Lock()
	for i, e := range c.refused {
		if i == 20 {
			t.Errorf("seed %d: and %d more deliveries refused", seed, len(c.refused)-i)
			break
		}
		t.Errorf("seed %d: %s", seed, e)
	}
	c.rec.Unlock()
	r := chaoscheck.Check(c.run())
	t.Logf("seed %d, faults:%s", seed, fault.String())
	for _, n := range c.notes {
		t.Logf("seed %d, harness note: %s", seed, n)
	}
	return r
}

// settle waits for deliveries to end: see settleQuiet.
func (c *chaos) settle() {
	start := time.Now()
	for {
		r := chaoscheck.Check(c.run())
		c.rec.Lock()
		quiet := time.Since(c.lastChange)
		c.rec.Unlock()
		if (r.Lost == 0 && quiet > settleQuiet) || quiet > settleGiveUp || time.Since(start) > settleMost {
			return
		}
		time.Sleep(500 * time.Millisecond) // a poll of the records, not a wait for an event
	}
}

// run copies out everything recorded so far.
func (c *chaos) run() chaoscheck.Run {
	c.rec.Lock()
	defer c.rec.Unlock()
	r := chaoscheck.Run{Publishes: append([]chaoscheck.Publish(nil), c.publishes...), Transitions: append([]chaoscheck.Transition(nil), c.transitions...)}
	for _, s := range c.servers {
		st := chaoscheck.Stream{NorthServer: s.ns, Opened: s.stream.opened, Frames: append([]chaoscheck.Frame(nil), s.stream.frames...)}
		if !st.Opened.IsZero() {
			r.Streams = append(r.Streams, st)
		}
		for _, sub := range s.subs {
			cp := *sub
			cp.Deliveries = append([]chaoscheck.Delivery(nil), sub.Deliveries...)
			r.Subs = append(r.Subs, cp)
		}
	}
	return r
}

// awaitPublished waits until the producers have had n more events
// answered.
func (c *chaos) awaitPublished(n int64) {
	c.t.Helper()
	target := c.acked.Load() + n
	testdeps.WaitFor(c.t, fmt.Sprintf("%d more events published", n), func() bool { return c.acked.Load() >= target })
}

// fault injects one fault, picked by the schedule's seed, and says what it
// did.
func (c *chaos) fault() string {
	for {
		switch c.rng.IntN(11) {
		case 0:
			c.redis.SyncAOF()
			c.awaitPublished(5)
			c.redis.Kill()
			down := time.Duration(c.rng.IntN(1500)) * time.Millisecond
			time.Sleep(down) // the fault's length
			c.redis.Restart()
			return fmt.Sprintf("redis-server killed (-9), down %v, restarted from its AOF", down)
		case 1:
			c.redis.SaveSnapshot()
			n := int64(5 + c.rng.IntN(20))
			c.awaitPublished(n)
			c.redis.RestartFromSnapshot()
			return fmt.Sprintf("redis-server snapshot (SAVE), %d more events published, then killed (-9) and restarted from the snapshot", n)
		case 2:
			in := c.delivering()
			in.n.Kill()
			down := time.Duration(c.rng.IntN(1000)) * time.Millisecond
			time.Sleep(down) // the fault's length
			in.start(c.t)
			return fmt.Sprintf("instance %s (delivering) killed (-9), down %v, started again", in.name, down)
		case 3:
			in := c.delivering()
			stop := chaosLease + time.Duration(500+c.rng.IntN(1500))*time.Millisecond
			in.n.Signal(c.t, syscall.SIGSTOP)
			time.Sleep(stop) // the fault's length: past the lease
			in.n.Signal(c.t, syscall.SIGCONT)
			return fmt.Sprintf("instance %s (delivering) stopped (SIGSTOP) for %v, past its %v lease, then continued", in.name, stop, chaosLease)
		case 4, 5, 6, 7:
			s := c.loggedIn()
			if s == nil {
				continue
			}
			kind := []string{"5xx", "hang", "slow", "410"}[c.rng.IntN(4)]
			consumed := s.recv.inject(kind)
			select {
			case <-consumed:
			case <-time.After(patience):
				c.t.Fatalf("the receiver of %s got no delivery to answer %s within %v", s.ns, kind, patience)
			}
			if kind == "410" {
				c.subscribe(s)
				return fmt.Sprintf("receiver of %s answered 410 Gone; subscribed again", s.ns)
			}
			return fmt.Sprintf("receiver of %s: %s", s.ns, map[string]string{"5xx": "answered 500", "hang": "hung until northd gave up", "slow": "answered 204 after " + (chaosLease + 500*time.Millisecond).String() + ", past the lease"}[kind])
		case 8:
			s := c.loggedIn()
			if s == nil {
				continue
			}
			c.logout(s)
			return fmt.Sprintf("%s logged out", s.ns)
		case 9:
			var free []string
			for _, ip := range chaosIPs {
				if c.holderOf(ip) == nil {
					free = append(free, ip)
				}
			}
			if len(free) == 0 {
				continue
			}
			ip := free[c.rng.IntN(len(free))]
			var who []*northSrv
			for _, s := range c.servers {
				if s.ns.IP == ip {
					who = append(who, s)
				}
			}
			s := who[c.rng.IntN(len(who))]
			c.login(s)
			return fmt.Sprintf("%s logged in again", s.ns)
		case 10:
			ip := chaosIPs[c.rng.IntN(len(chaosIPs))]
			h := c.holderOf(ip)
			if h == nil {
				continue
			}
			other := chaosSpare
			if h.ns.Username == chaosSpare {
				other = chaosFirst[indexOf(chaosIPs, ip)]
			}
			c.logout(h)
			s := c.server(other, ip)
			c.login(s)
			return fmt.Sprintf("%s logged out and %s logged in at its ip", h.ns, s.ns)
		}
	}
}

func indexOf(list []string, s string) int {
	for i, v := range list {
		if v == s {
			return i
		}
	}
	return -1
}

// delivering is the instance that says it delivers for a subscription,
// or either when neither says so.
func (c *chaos) delivering() *instance {
	for _, in := range c.instances {
		a, err := testdeps.Try(c.t, c.client, "GET", "http://"+in.adminAddr()+"/north/subscriptions", "", "")
		if err != nil {
			continue
		}
		if strings.Contains(a.Body, `"delivering_here": true`) {
			return in
		}
	}
	return c.instances[c.rng.IntN(len(c.instances))]
}

func (c *chaos) holderOf(ip string) *northSrv {
	c.rec.Lock()
	defer c.rec.Unlock()
	return c.holder[ip]
}

// loggedIn picks a north server that holds its ip, or nil.
func (c *chaos) loggedIn() *northSrv {
	var in []*northSrv
	for _, ip := range chaosIPs {
		if h := c.holderOf(ip); h != nil {
			in = append(in, h)
		}
	}
	if len(in) == 0 {
		return nil
	}
	return in[c.rng.IntN(len(in))]
}

// northSrv is one north server: its stream, its receiver and its
// subscriptions (a new one after each 410).
type northSrv struct {
	ns     chaoscheck.NorthServer
	stream *chaosStream
	recv   *receiver
	subs   []*chaoscheck.Subscription // guarded by chaos.rec
	token  string
}

// server is the north server username@ip, made on first use.
func (c *chaos) server(username, ip string) *northSrv {
	c.rec.Lock()
	for _, s := range c.servers {
		if s.ns.Username == username && s.ns.IP == ip {
			c.rec.Unlock()
			return s
		}
	}
	c.rec.Unlock()
	s := &northSrv{ns: chaoscheck.NorthServer{Username: username, IP: ip}}
	s.recv = startReceiver(c, s)
	s.stream = &chaosStream{c: c, s: s, wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go s.stream.run()
	c.t.Cleanup(func() { s.stream.close(); s.recv.close() })
	c.rec.Lock()
	c.servers = append(c.servers, s)
	c.rec.Unlock()
	return s
}

// call sends one request to the instances in turn until one answers
// other than 503 or a failure to connect, within patience.
func (c *chaos) call(method, path, token, body string) (int, []byte, time.Time) {
	c.t.Helper()
	deadline := time.Now().Add(patience)
	for {
		a, err := testdeps.Try(c.t, c.client, method, "http://"+c.next().listen+path, token, body)
		if err == nil && a.Status != 503 {
			return a.Status, []byte(a.Body), time.Now()
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("%s %s: no instance answered within %v (last: %v)", method, path, patience, err)
		}
		time.Sleep(50 * time.Millisecond) // a client's pause before trying again
	}
}

// login logs s in at its ip, hands its stream the token, and subscribes
// it when it has no live subscription.
func (c *chaos) login(s *northSrv) {
	c.t.Helper()
	start := time.Now()
	st, body, end := c.call("POST", "/north/login", "", `{"username":"`+s.ns.Username+`","password":"secret","ip":"`+s.ns.IP+`"}`)
	var ans struct{ Token string }
	if st != 200 || json.Unmarshal(body, &ans) != nil || ans.Token == "" {
		c.t.Fatalf("login of %s: %d %s", s.ns, st, body)
	}
	c.rec.Lock()
	c.transitions = append(c.transitions, chaoscheck.Transition{IP: s.ns.IP, Holder: s.ns.Username, Start: start, End: end})
	c.holder[s.ns.IP] = s
	s.token = ans.Token
	live := len(s.subs) > 0 && s.subs[len(s.subs)-1].Ended.IsZero()
	c.rec.Unlock()
	s.stream.setToken(ans.Token)
	if !live {
		c.subscribe(s)
	}
}

func (c *chaos) logout(s *northSrv) {
	c.t.Helper()
	c.rec.Lock()
	token := s.token
	c.rec.Unlock()
	start := time.Now()
	st, body, end := c.call("POST", "/north/logout", token, "")
	if st != 200 {
		c.t.Fatalf("logout of %s: %d %s", s.ns, st, body)
	}
	s.stream.setToken("")
	c.rec.Lock()
	c.transitions = append(c.transitions, chaoscheck.Transition{IP: s.ns.IP, Start: start, End: end})
	delete(c.holder, s.ns.IP)
	s.token = ""
	c.rec.Unlock()
}

// subscribe makes a new subscription of s to its receiver, on a path of
// its own.
func (c *chaos) subscribe(s *northSrv) {
	c.t.Helper()
	c.rec.Lock()
	path := "/hook/" + strconv.Itoa(len(s.subs)+1)
	sub := &chaoscheck.Subscription{NorthServer: s.ns}
	s.subs = append(s.subs, sub) // its deliveries may come before the 201
	token := s.token
	c.rec.Unlock()
	st, body, end := c.call("POST", "/north/subscriptions", token, `{"url":"http://`+s.recv.addr+path+`"}`)
	var ans struct{ ID, Secret string }
	if st != 201 || json.Unmarshal(body, &ans) != nil {
		c.t.Fatalf("subscribe of %s: %d %s", s.ns, st, body)
	}
	c.rec.Lock()
	sub.Name, sub.Secret, sub.Created = ans.ID+" ("+path+")", ans.Secret, end
	early := s.recv.early[path]
	delete(s.recv.early, path)
	c.rec.Unlock()
	for _, e := range early {
		c.checkWebhook(e.r, e.body, ans.Secret)
	}
}

// startProducers starts two producers, each publishing one event at a
// time, with a key of its own, to all, to a username or to an ip, to the
// instances in turn. A publish not answered 202 is recorded as not
// acknowledged, and the next has a new key. It returns the stop.
func (c *chaos) startProducers(seed uint64) func() {
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for p := range 2 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(seed, uint64(p)))
			users := append(append([]string(nil), chaosFirst...), chaosSpare, nobodyUser)
			ips := append(append([]string(nil), chaosIPs...), nobodyIP)
			for n := 0; n < 20000; n++ {
				select {
				case <-stop:
					return
				default:
				}
				pub := chaoscheck.Publish{Key: fmt.Sprintf("s%d-p%d-%d", seed, p, n)}
				to := ""
				switch rng.IntN(10) {
				case 0, 1, 2, 3:
				case 4, 5, 6:
					pub.To.Username = users[rng.IntN(len(users))]
					to = `,"to":{"username":"` + pub.To.Username + `"}`
				default:
					pub.To.IP = ips[rng.IntN(len(ips))]
					to = `,"to":{"ip":"` + pub.To.IP + `"}`
				}
				pub.Sent = time.Now()
				a, err := testdeps.Try(c.t, c.client, "POST", "http://"+c.next().adminAddr()+"/north/events", "", `{"type":"chaos","data":{"k":"`+pub.Key+`"}`+to+`}`)
				if err == nil {
					var ans struct{ ID string }
					if a.Status == 202 && json.Unmarshal([]byte(a.Body), &ans) == nil {
						pub.ID = ans.ID
					}
				}
				pub.Answered = time.Now()
				c.rec.Lock()
				c.publishes = append(c.publishes, pub)
				c.rec.Unlock()
				if pub.ID != "" {
					c.acked.Add(1)
				}
				time.Sleep(20 * time.Millisecond) // the producer's pace, about 50 events a second each
			}
		})
	}
	return func() { close(stop); wg.Wait() }
}

// chaosStream is a north server's event stream, read as an EventSource
// does: reconnecting (to the instances in turn) with Last-Event-ID, across
// logouts and logins: while its north server is logged out it waits for
// the next token.
type chaosStream struct {
	c      *chaos
	s      *northSrv
	mu     sync.Mutex
	token  string
	last   string
	opened time.Time          // guarded by chaos.rec
	frames []chaoscheck.Frame // guarded by chaos.rec
	wake   chan struct{}
	stop   chan struct{}
	done   chan struct{}
	once   sync.Once
}

func (cs *chaosStream) setToken(token string) {
	cs.mu.Lock()
	cs.token = token
	cs.mu.Unlock()
	select {
	case cs.wake <- struct{}{}:
	default:
	}
}

func (cs *chaosStream) close() {
	cs.once.Do(func() { close(cs.stop) })
	<-cs.done
}

func (cs *chaosStream) run() {
	defer close(cs.done)
	for n := 0; n < 100000; n++ {
		cs.mu.Lock()
		token := cs.token
		cs.mu.Unlock()
		if token == "" {
			select {
			case <-cs.stop:
				return
			case <-cs.wake:
			}
			continue
		}
		cs.read(token)
		select {
		case <-cs.stop:
			return
		case <-cs.wake:
		case <-time.After(200 * time.Millisecond): // the reconnection delay
		}
	}
}

// read reads one connection's stream until it ends or goes silent past
// three heartbeats (an instance stopped, or killed without closing).
func (cs *chaosStream) read(token string) {
	in := cs.c.next()
	conn, err := net.DialTimeout("tcp", in.listen, 2*time.Second)
	if err != nil {
		return
	}
	defer conn.Close()
	ended := make(chan struct{})
	defer close(ended)
	go func() {
		select {
		case <-cs.stop:
		case <-ended:
		}
		conn.Close()
	}()
	cs.mu.Lock()
	last := cs.last
	cs.mu.Unlock()
	req := "GET /north/events HTTP/1.1\r\nHost: north\r\nAuthorization: Bearer " + token + "\r\n"
	if last != "" {
		req += "Last-Event-ID: " + last + "\r\n"
	}
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	req += "\r\n"
	io.WriteString(conn, req)
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, err := io.ReadAll(resp.Body)
		if err == nil {
			testdeps.CheckAnswerTo(cs.c.t, req, resp.StatusCode, resp.Header, b)
		}
		cs.mu.Lock()
		current := cs.token == token
		cs.mu.Unlock()
		if resp.StatusCode == 401 && current {
			cs.c.note("the stream of %s, logged in, got 401 on instance %s: %s", cs.s.ns, in.name, b)
		}
		return
	}
	testdeps.CheckAnswerTo(cs.c.t, req, resp.StatusCode, resp.Header, nil) // the stream's events are checked as they come
	cs.c.rec.Lock()
	if cs.opened.IsZero() {
		cs.opened = time.Now()
	}
	cs.c.rec.Unlock()
	r := bufio.NewReader(resp.Body)
	var id, event, data string
	for {
		conn.SetDeadline(time.Now().Add(5 * time.Second)) // heartbeats come every second
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimSuffix(line, "\n")
		switch {
		case line == "":
			if data != "" {
				testdeps.CheckEvent(cs.c.t, event, []byte(data))
				f, err := chaoscheck.FrameOf([]byte(data), time.Now())
				if err != nil || f.ID != id {
					cs.c.note("the stream of %s: frame id %q, data %q", cs.s.ns, id, data)
				}
				f.Type = event
				cs.c.rec.Lock()
				cs.frames = append(cs.frames, f)
				cs.c.lastChange = f.At
				cs.c.rec.Unlock()
				cs.mu.Lock()
				cs.last = id
				cs.mu.Unlock()
			}
			id, event, data = "", "", ""
		case strings.HasPrefix(line, "id: "):
			id = line[4:]
		case strings.HasPrefix(line, "event: "):
			event = line[7:]
		case strings.HasPrefix(line, "data: "):
			data = line[6:]
		}
	}
}

// receiver is a north server's webhook receiver, on its ip. It records
// every delivery as it came (the checker verifies signatures), and answers
// 204, or as the fault injected into it says, once.
type receiver struct {
	c     *chaos
	s     *northSrv
	addr  string
	srv   *http.Server
	fault string        // guarded by chaos.rec
	hit   chan struct{} // closed once the fault has been answered
	// by path, what came before the 201 showed the secret to verify it by
	// (the verification, deliveries on its heels); guarded by chaos.rec
	early map[string][]webhookRequest
}

func startReceiver(c *chaos, s *northSrv) *receiver {
	c.t.Helper()
	ln, err := net.Listen("tcp", s.ns.IP+":0")
	if err != nil {
		c.t.Fatal(err)
	}
	r := &receiver{c: c, s: s, addr: ln.Addr().String(), early: map[string][]webhookRequest{}}
	r.srv = &http.Server{Handler: r}
	go r.srv.Serve(ln)
	return r
}

func (r *receiver) close() { r.srv.Close() }

// inject makes the next delivery's answer the fault, and returns a
// channel closed once it has been answered.
func (r *receiver) inject(kind string) chan struct{} {
	r.c.rec.Lock()
	defer r.c.rec.Unlock()
	r.fault, r.hit = kind, make(chan struct{})
	return r.hit
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(req.Body, 1<<20))
	c := r.c
	if strings.Contains(string(body), `"type":"subscription.verify"`) {
		c.checkWebhook(req, body) // as far as it can be before the 201; again in subscribe
		c.rec.Lock()
		r.early[req.URL.Path] = append(r.early[req.URL.Path], webhookRequest{req.Clone(context.Background()), body})
		c.rec.Unlock()
		w.WriteHeader(204)
		return
	}
	at := time.Now()
	k, err := strconv.Atoi(strings.TrimPrefix(req.URL.Path, "/hook/"))
	c.rec.Lock()
	if err != nil || k < 1 || k > len(r.s.subs) {
		c.rec.Unlock()
		c.note("receiver of %s: a POST to %s", r.s.ns, req.URL.Path)
		w.WriteHeader(404)
		return
	}
	sub := r.s.subs[k-1]
	secret := sub.Secret
	if secret == "" {
		r.early[req.URL.Path] = append(r.early[req.URL.Path], webhookRequest{req.Clone(context.Background()), body})
	}
	fault, hit := r.fault, r.hit
	r.fault = ""
	sub.Deliveries = append(sub.Deliveries, chaoscheck.Delivery{
		WebhookID: req.Header.Get("webhook-id"), Timestamp: req.Header.Get("webhook-timestamp"),
		Signature: req.Header.Get("webhook-signature"), Body: body, At: at,
	})
	i := len(sub.Deliveries) - 1
	c.lastChange = at
	c.rec.Unlock()
	if secret != "" {
		c.checkWebhook(req, body, secret)
	}
	status := 204
	switch fault {
	case "5xx":
		status = 500
	case "hang":
		select {
		case <-req.Context().Done():
		case <-time.After(patience):
		}
		status = 0
	case "slow":
		time.Sleep(chaosLease + 500*time.Millisecond) // the fault: an answer past the lease
	case "410":
		status = 410
	}
	c.rec.Lock()
	sub.Deliveries[i].Status = status
	if status == 410 {
		sub.Ended = time.Now()
	}
	c.rec.Unlock()
	if fault != "" {
		close(hit)
	}
	if status == 0 {
		panic(http.ErrAbortHandler) // hang up without an answer
	}
	w.WriteHeader(status)
}

// tail is the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
