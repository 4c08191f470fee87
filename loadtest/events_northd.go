package main

// loadtest events against northd: each stream a north server logged in
// with its own ip, GET /north/events; events published on the admin
// listener, POST /north/events.

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"northd/contract"
)

type northdPeer struct {
	target, host, admin string
	client              *http.Client // logins and /metrics
	publishClient       *fasthttp.HostClient
	openedBefore        float64 // northd's count of streams opened, before this run's
}

func newNorthdPeer(cfg eventsConfig, host string) *northdPeer {
	p := &northdPeer{
		target: cfg.target, host: host, admin: cfg.admin,
		client:        &http.Client{Timeout: time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: 64}},
		publishClient: newPublishClient(cfg.admin, cfg.publishers),
	}
	p.openedBefore = adminMetricPrefix(p.client, p.admin, streamsOpenedMetric)
	return p
}

// streamsOpenedMetric counts the streams a northd has opened. The streams
// it counts open would not do: a run's streams closed by the load tool
// stay counted until northd's next heartbeat finds them gone.
const streamsOpenedMetric = "northd_event_streams_opened_total{"

// openStream logs north server i in (its own ip) and opens its stream.
func (p *northdPeer) openStream(i int) (*eventStream, *http.Response, error) {
	body := fmt.Sprintf(`{"username":"stream-%d","password":"loadtest","ip":"10.%d.%d.%d"}`, i, 100+i>>16, i>>8&255, i&255)
	resp, err := p.client.Post(p.target+"/north/login", "application/json", strings.NewReader(body))
	if err != nil {
		return nil, nil, err
	}
	answer, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	token, err := contract.LoginToken(string(answer))
	if err != nil {
		return nil, nil, fmt.Errorf("login: %d %s", resp.StatusCode, answer)
	}
	req := "GET /north/events HTTP/1.1\r\nHost: " + p.host + "\r\nAuthorization: Bearer " + token + "\r\n\r\n"
	return dialStream(p.host, []byte(req), parseNorthdLine, false)
}

// awaitStreams returns once northd counts every stream of this run
// opened: an event published before would not be theirs.
func (p *northdPeer) awaitStreams(streams []*eventStream, deadline time.Time) error {
	for adminMetricPrefix(p.client, p.admin, streamsOpenedMetric) < p.openedBefore+float64(len(streams)) {
		for i, s := range streams {
			if e := s.err(); e != "" {
				return fmt.Errorf("stream %d: %s", i, e)
			}
		}
		if time.Now().After(deadline) {
			return errors.New("northd did not count every stream opened within a minute")
		}
		time.Sleep(50 * time.Millisecond)
	}
	return nil
}

func (p *northdPeer) heapInUse() (float64, bool) {
	return adminMetric(p.client, p.admin, "go_memstats_heap_inuse_bytes"), true
}

func (p *northdPeer) newPublisher() eventPublisher {
	return newNorthdPublisher(p.publishClient, p.admin)
}

// northdPublishers are n publishing connections to northd's admin
// listener.
func northdPublishers(admin string, n int) []eventPublisher {
	client := newPublishClient(admin, n)
	workers := make([]eventPublisher, n)
	for i := range workers {
		workers[i] = newNorthdPublisher(client, admin)
	}
	return workers
}

func newNorthdPublisher(client *fasthttp.HostClient, admin string) eventPublisher {
	return newHTTPPublisher(client, "http://"+admin+"/north/events", nil, appendNorthdBatch, checkNorthdPublish)
}

// appendNorthdBatch appends the body of one publish: a JSON array of n
// events, numbered from first, each with the send time t.
func appendNorthdBatch(b []byte, first, n int, t int64) []byte {
	b = append(b, '[')
	for i := range n {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"type":"load","data":`...)
		b = appendEventData(b, t, first+i)
		b = append(b, '}')
	}
	return append(b, ']')
}

func checkNorthdPublish(status int, body []byte, _ int) error {
	if status != 202 {
		return fmt.Errorf("publish: %d %s", status, body)
	}
	return nil
}

// publisherData reads the t and n of the publisher's data,
// {"t":T,"n":N}, the last field of an event's JSON: read back from the
// line's end, as a search for it from the start, through the JSON's many
// quotes, was a fifth of this tool's CPU at 1,000 streams, which then
// read a batch slower than northd wrote it. Data of another shape has
// neither.
func publisherData(data []byte) (t, n int64, ok bool) {
	b, ok := bytes.CutSuffix(data, []byte("}}"))
	if !ok {
		return 0, -1, false
	}
	nDigits := trimDigits(b)
	if b, ok = bytes.CutSuffix(nDigits, []byte(`,"n":`)); !ok {
		return 0, -1, false
	}
	tDigits := trimDigits(b)
	if !bytes.HasSuffix(tDigits, []byte(`"data":{"t":`)) {
		return 0, -1, false
	}
	t, rest, okT := leadingNumber(b[len(tDigits):])
	n, restN, okN := leadingNumber(data[len(nDigits) : len(data)-2])
	if !okT || len(rest) != 0 || !okN || len(restN) != 0 {
		return 0, -1, false
	}
	return t, n, true
}

// trimDigits is b without the decimal digits it ends with.
func trimDigits(b []byte) []byte {
	i := len(b)
	for i > 0 && b[i-1]-'0' <= 9 {
		i--
	}
	return b[:i]
}

// parseNorthdLine reads a line of northd's stream: its events' data lines
// carry the seq and the publisher's data; the rest (id, event, retry,
// heartbeat comments, blank lines) needs no check.
func parseNorthdLine(line []byte) (streamLine, error) {
	data, ok := bytes.CutPrefix(line, []byte("data: "))
	if !ok {
		return streamLine{}, nil
	}
	seq, ok := numberAfter(data, `"seq":`)
	if !ok {
		return streamLine{}, fmt.Errorf("event data without a seq: %q", data)
	}
	t, n, _ := publisherData(data)
	return streamLine{kind: lineEvent, seq: seq, t: t, n: n}, nil
}

// adminMetric reads one series from northd's /metrics; 0 when absent.
func adminMetric(client *http.Client, admin, series string) float64 {
	return adminMetricPrefix(client, admin, series+" ")
}

// adminMetricPrefix sums the series whose line starts with prefix.
func adminMetricPrefix(client *http.Client, admin, prefix string) float64 {
	resp, err := client.Get("http://" + admin + "/metrics")
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	sum := 0.0
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if line, ok := strings.CutPrefix(sc.Text(), prefix); ok {
			f := strings.Fields(line)
			v, _ := strconv.ParseFloat(f[len(f)-1], 64)
			sum += v
		}
	}
	return sum
}
