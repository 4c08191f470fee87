package main

// loadtest webhooks: receivers that check every delivery (signature,
// order, no gap) while producers publish. See loadtest/README.md,
// "Webhooks".

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"northd/contract"
)

// WebhooksReport is what loadtest webhooks writes and prints.
type WebhooksReport struct {
	Receivers        int        `json:"receivers"`
	Hanging          int        `json:"hanging"`
	Published        int        `json:"published"`
	Delivered        int64      `json:"delivered"` // events taken by the receivers that answer, each once
	Deliveries       int64      `json:"deliveries"`
	Seconds          float64    `json:"seconds"`
	Latency          *Quantiles `json:"publish_to_delivery_seconds,omitempty"`
	ServerCPUSeconds float64    `json:"server_cpu_seconds,omitempty"`
	// DeliveredPerCPUSecond is events taken per second of northd's CPU.
	DeliveredPerCPUSecond float64  `json:"delivered_per_cpu_second,omitempty"`
	Problems              []string `json:"problems,omitempty"`
}

// hookReceiver is one north server's webhook endpoint: it checks each
// delivery's Standard Webhooks signature with its own code, that the
// events' seqs follow one another, and takes a batch seen before (a
// redelivery) without counting it twice.
type hookReceiver struct {
	key      []byte
	hang     bool
	mu       sync.Mutex
	last     uint64
	ids      map[string]bool
	taken    atomic.Int64
	batches  atomic.Int64
	hist     *hdrhistogram.Histogram
	problem  string
	listener net.Listener
}

func (h *hookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h.hang {
		<-r.Context().Done() // never answers: northd's -push-timeout ends it
		return
	}
	body, _ := io.ReadAll(r.Body)
	now := time.Now().UnixNano()
	id, ts := r.Header.Get("webhook-id"), r.Header.Get("webhook-timestamp")
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.key != nil {
		mac := hmac.New(sha256.New, h.key)
		mac.Write([]byte(id + "." + ts + "."))
		mac.Write(body)
		if !strings.Contains(r.Header.Get("webhook-signature"), "v1,"+base64.StdEncoding.EncodeToString(mac.Sum(nil))) {
			h.fail("delivery " + id + ": bad signature")
			w.WriteHeader(401)
			return
		}
	}
	w.WriteHeader(204)
	if h.key == nil || h.ids[id] { // the verification, or a redelivery
		h.ids[id] = true
		return
	}
	h.ids[id] = true
	h.batches.Add(1)
	for _, line := range bytes.Split(bytes.Trim(body, "[]"), []byte(`},{"id"`)) {
		seq, ok1 := numberAfter(line, `"seq":`)
		t, ok2 := numberAfter(line, `"data":{"t":`)
		if !ok1 || !ok2 {
			h.fail(fmt.Sprintf("delivery %s: an event without seq or t: %.200s", id, line))
			return
		}
		if h.last != 0 && uint64(seq) != h.last+1 {
			h.fail(fmt.Sprintf("seq %d after %d: a gap, a duplicate or out of order", seq, h.last))
			return
		}
		h.last = uint64(seq)
		h.hist.RecordValue(max(now-t, 1))
		h.taken.Add(1)
	}
}

func (h *hookReceiver) fail(p string) {
	if h.problem == "" {
		h.problem = p
	}
}

func runWebhooks(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var target, admin, out string
	var receivers, hanging, rate, batch, pid int
	var duration time.Duration
	fs := flag.NewFlagSet("loadtest webhooks", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&target, "target", "http://127.0.0.1:8000", "the subsystem's base `URL`; northd must run with -push-allow 127.0.0.0/8")
	fs.StringVar(&admin, "admin", "127.0.0.1:9100", "northd's admin `address`, where events are published")
	fs.IntVar(&receivers, "receivers", 10, "receivers that answer, each a north server of its own on 127.0.0.(10+i)")
	fs.IntVar(&hanging, "hanging", 0, "receivers that never answer, beside them")
	fs.IntVar(&rate, "rate", 1000, "events published per second")
	fs.IntVar(&batch, "batch", 10, "events per publish")
	fs.DurationVar(&duration, "duration", 10*time.Second, "how long to publish")
	fs.IntVar(&pid, "pid", 0, "northd's process id, for its CPU time (with-server.sh passes it)")
	fs.IntVar(new(int), "store-pid", 0, "accepted from with-server.sh and unused")
	fs.StringVar(&out, "out", "", "write the JSON report to this `file`")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if receivers <= 0 || hanging < 0 || receivers+hanging > 200 || rate <= 0 || batch <= 0 || batch > 1000 || duration <= 0 {
		fmt.Fprintln(stderr, "loadtest webhooks: -receivers 1 to 200 with -hanging, -rate, -duration positive, -batch 1 to 1000")
		return 2
	}
	r, err := webhooksRun(ctx, strings.TrimRight(target, "/"), admin, receivers, hanging, rate, batch, duration, pid)
	if err != nil {
		fmt.Fprintln(stderr, "loadtest webhooks:", err)
		return 1
	}
	return writeStreamReport("loadtest webhooks", out, r, r.Problems, stdout, stderr)
}

// webhookPublishers is how many publishes may be in flight at once.
const webhookPublishers = 4

func webhooksRun(ctx context.Context, target, admin string, receivers, hanging, rate, batch int, duration time.Duration, pid int) (*WebhooksReport, error) {
	client := &http.Client{Timeout: time.Minute}
	r := &WebhooksReport{Receivers: receivers, Hanging: hanging}
	hooks := make([]*hookReceiver, receivers+hanging)
	for i := range hooks {
		ip := fmt.Sprintf("127.0.0.%d", 10+i)
		ln, err := net.Listen("tcp", ip+":0")
		if err != nil {
			return nil, err
		}
		h := &hookReceiver{hang: i >= receivers, ids: map[string]bool{}, hist: newHist(), listener: ln}
		srv := &http.Server{Handler: h}
		go srv.Serve(ln)
		defer srv.Close()
		hooks[i] = h
		// Its north server: logged in with the receiver's ip, then
		// subscribed to it. A hanging receiver answers the
		// verification: it hangs from then on.
		resp, err := client.Post(target+"/north/login", "application/json", strings.NewReader(fmt.Sprintf(`{"username":"hook-%d","password":"loadtest","ip":%q}`, i, ip)))
		if err != nil {
			return nil, err
		}
		answer, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		token, err := contract.LoginToken(string(answer))
		if err != nil {
			return nil, fmt.Errorf("login %s: %d %s", ip, resp.StatusCode, answer)
		}
		h.mu.Lock()
		h.hang = false
		h.mu.Unlock()
		req, _ := http.NewRequest("POST", target+"/north/subscriptions", strings.NewReader(`{"url":"http://`+ln.Addr().String()+`/hook"}`))
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err = client.Do(req)
		if err != nil {
			return nil, err
		}
		answer, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		var created struct{ Secret string }
		if resp.StatusCode != 201 || json.Unmarshal(answer, &created) != nil {
			return nil, fmt.Errorf("subscribe %s: %d %s (northd needs -push-allow 127.0.0.0/8)", ip, resp.StatusCode, answer)
		}
		key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(created.Secret, "whsec_"))
		if err != nil {
			return nil, err
		}
		h.mu.Lock()
		h.key, h.hang = key, i >= receivers
		h.mu.Unlock()
	}
	cpuBefore := procCPU(pid)
	start := time.Now()
	// Open-loop, as loadtest events publishes (events_publish.go).
	plan := publishPlan{total: int(float64(rate) * duration.Seconds()), batch: batch, rate: rate, limit: duration}
	sleeper := newPreciseSleeper()
	defer sleeper.close()
	published, err := publishOpenLoop(ctx, plan, northdPublishers(admin, webhookPublishers), realClock{sleeper})
	if err != nil {
		return nil, err
	}
	r.Published = published.published
	deadline := time.Now().Add(time.Minute)
	for _, h := range hooks[:receivers] {
		for h.taken.Load() < int64(r.Published) && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
	}
	r.Seconds = time.Since(start).Seconds()
	if cpu := procCPU(pid); cpu >= 0 && cpuBefore >= 0 {
		r.ServerCPUSeconds = (cpu - cpuBefore).Seconds()
	}
	hist := newHist()
	for i, h := range hooks[:receivers] {
		h.mu.Lock()
		if h.problem != "" {
			r.Problems = append(r.Problems, fmt.Sprintf("receiver %d: %s", i, h.problem))
		} else if got := h.taken.Load(); got != int64(r.Published) {
			r.Problems = append(r.Problems, fmt.Sprintf("receiver %d took %d of %d events", i, got, r.Published))
		}
		hist.Merge(h.hist)
		h.mu.Unlock()
		r.Delivered += h.taken.Load()
		r.Deliveries += h.batches.Load()
	}
	q := quantiles(hist)
	r.Latency = &q
	if r.ServerCPUSeconds > 0 {
		r.DeliveredPerCPUSecond = float64(r.Delivered) / r.ServerCPUSeconds
	}
	return r, nil
}
