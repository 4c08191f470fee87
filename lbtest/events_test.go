package lbtest

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"northd/internal/testdeps"
)

// streamClient is a north server reading its events through HAProxy as
// an EventSource does: when the stream ends it reconnects, after the
// retry: it was given, with Last-Event-ID.
type streamClient struct {
	tb           testing.TB
	front, token string
	opens        atomic.Int64 // streams opened (answered 200)
	mu           sync.Mutex
	data         []int  // the events' data, in arrival order
	last         string // the last id received
	problems     []string
	stop         chan struct{}
	done         chan struct{}
}

func startStream(t *testing.T, front string) *streamClient {
	t.Helper()
	// An ip of its own: the load logs in from 192.0.2.0/24, and a login
	// for the stream's ip would end its token, and the stream.
	token := login(t, http.DefaultClient, front, "streamer", "198.51.100.77")
	c := &streamClient{tb: t, front: front, token: token, stop: make(chan struct{}), done: make(chan struct{})}
	go c.run()
	t.Cleanup(func() { close(c.stop); <-c.done })
	testdeps.WaitFor(t, "the stream through HAProxy", func() bool { return c.opens.Load() >= 1 })
	return c
}

func (c *streamClient) problem(format string, args ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.problems) < 10 {
		c.problems = append(c.problems, fmt.Sprintf(format, args...))
	}
}

func (c *streamClient) run() {
	defer close(c.done)
	retry := 100 * time.Millisecond
	for {
		select {
		case <-c.stop:
			return
		default:
		}
		retry = c.once(retry)
		select {
		case <-c.stop:
			return
		case <-time.After(min(retry, time.Second)): // an EventSource's reconnection delay
		}
	}
}

// once reads one connection's stream until it ends, and returns the
// retry: it asked for.
func (c *streamClient) once(retry time.Duration) time.Duration {
	conn, err := net.DialTimeout("tcp", c.front, patience)
	if err != nil {
		c.problem("dial: %v", err)
		return retry
	}
	defer conn.Close()
	go func() { <-c.stop; conn.Close() }()
	c.mu.Lock()
	last := c.last
	c.mu.Unlock()
	req := "GET /north/events HTTP/1.1\r\nHost: north\r\nAuthorization: Bearer " + c.token + "\r\n"
	if last != "" {
		req += "Last-Event-ID: " + last + "\r\n"
	}
	req += "\r\n"
	io.WriteString(conn, req)
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return retry
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		testdeps.CheckAnswerTo(c.tb, req, resp.StatusCode, resp.Header, b)
		c.problem("GET /north/events: %d %s", resp.StatusCode, b)
		return retry
	}
	testdeps.CheckAnswerTo(c.tb, req, resp.StatusCode, resp.Header, nil) // the stream's events are checked as they come
	c.opens.Add(1)
	r := bufio.NewReader(resp.Body)
	var id, event, data string
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return retry
		}
		line = strings.TrimSuffix(line, "\n")
		switch {
		case line == "":
			if data != "" {
				testdeps.CheckEvent(c.tb, event, []byte(data))
				c.received(id, event, data)
			}
			id, event, data = "", "", ""
		case strings.HasPrefix(line, ":"):
		case strings.HasPrefix(line, "retry: "):
			if ms, err := strconv.Atoi(line[7:]); err == nil {
				retry = time.Duration(ms) * time.Millisecond
			}
		case strings.HasPrefix(line, "id: "):
			id = line[4:]
		case strings.HasPrefix(line, "event: "):
			event = line[7:]
		case strings.HasPrefix(line, "data: "):
			data = line[6:]
		}
	}
}

func (c *streamClient) received(id, event, data string) {
	var ev struct {
		ID   string          `json:"id"`
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal([]byte(data), &ev); err != nil || ev.ID != id {
		c.problem("event %s: data %q", id, data)
		return
	}
	if event != "n" {
		c.problem("event %s of type %q (a reset?): %s", id, event, data)
	}
	n, err := strconv.Atoi(string(ev.Data))
	if err != nil {
		c.problem("event %s: data %s", id, ev.Data)
	}
	c.mu.Lock()
	c.data = append(c.data, n)
	c.last = id
	c.mu.Unlock()
}

// expect waits until the stream has received n events and checks they are
// 0 to n-1, in order, each once.
func (c *streamClient) expect(t *testing.T, n int) {
	t.Helper()
	testdeps.WaitFor(t, fmt.Sprintf("the stream to receive all %d events", n), func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return len(c.data) >= n
	})
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, v := range c.data {
		if v != i {
			t.Errorf("event %d of the stream carried %d: lost or duplicated across the restarts (received %v…)", i, v, c.data[max(0, i-3):min(len(c.data), i+3)])
			break
		}
	}
	if len(c.data) != n {
		t.Errorf("the stream received %d events, %d were published", len(c.data), n)
	}
	for _, p := range c.problems {
		t.Errorf("stream: %s", p)
	}
}

// publisher publishes 0, 1, 2… to whichever instance's admin listener
// answers, each with its own Idempotency-Key, retried until a 202 takes it.
type publisher struct {
	tb        testing.TB
	instances []*instance
	count     atomic.Int64
	stopping  chan struct{}
	done      chan struct{}
	problems  []string
}

func startPublisher(tb testing.TB, instances []*instance) *publisher {
	p := &publisher{tb: tb, instances: instances, stopping: make(chan struct{}), done: make(chan struct{})}
	go p.run()
	return p
}

func (p *publisher) run() {
	defer close(p.done)
	client := &http.Client{Timeout: patience}
	for i, turn := 0, 0; ; i++ {
		select {
		case <-p.stopping:
			return
		default:
		}
		for tries := 0; ; tries++ {
			in := p.instances[turn%len(p.instances)]
			turn++
			req, _ := http.NewRequest("POST", "http://"+in.adminAddr()+"/north/events", strings.NewReader(`{"type":"n","data":`+strconv.Itoa(i)+`}`))
			req.Header.Set("Idempotency-Key", "n-"+strconv.Itoa(i))
			a, err := testdeps.Send(p.tb, client, req)
			if err == nil {
				if a.Status == 202 {
					break
				}
				if a.Status != 503 && len(p.problems) < 10 {
					p.problems = append(p.problems, fmt.Sprintf("publish %d: %d", i, a.Status))
				}
			}
			if tries > 10000 {
				p.problems = append(p.problems, fmt.Sprintf("publish %d: no instance took it", i))
				return
			}
			time.Sleep(10 * time.Millisecond) // a publisher's pause before trying the other instance
		}
		p.count.Add(1)
		time.Sleep(5 * time.Millisecond) // about 200 events a second: a steady trickle, bounded
	}
}

// stop ends publishing and returns how many events were published.
func (p *publisher) stop(t *testing.T) int {
	close(p.stopping)
	<-p.done
	for _, s := range p.problems {
		t.Errorf("publisher: %s", s)
	}
	return int(p.count.Load())
}

// streamHolderFirst is instances with the one serving the stream first.
func streamHolderFirst(t *testing.T, instances []*instance) []*instance {
	t.Helper()
	var holder int
	testdeps.WaitFor(t, "an instance to report the stream", func() bool {
		for i, in := range instances {
			if testdeps.MetricValue(t, in.adminAddr(), `northd_event_streams_open{subsystem="alarms"}`) == 1 {
				holder = i
				return true
			}
		}
		return false
	})
	return append([]*instance{instances[holder]}, append(append([]*instance(nil), instances[:holder]...), instances[holder+1:]...)...)
}

// login logs username in at addr from ip, and answers its token.
func login(t *testing.T, client *http.Client, addr, username, ip string) string {
	t.Helper()
	return testdeps.LoginToken(t, client, "http://"+addr, `{"username":"`+username+`","password":"p","ip":"`+ip+`"}`)
}
