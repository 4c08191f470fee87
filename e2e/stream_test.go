package e2e

import (
	"bufio"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"northd/internal/testdeps"
)

// sseStream is a test's own reader of a text/event-stream, written from
// the WHATWG HTML standard rather than shared with the server.
type sseStream struct {
	t    *testing.T
	conn net.Conn
	r    *bufio.Reader
	head string // the response's status line and headers
}

// sseFrame is one block of fields up to an empty line.
type sseFrame struct {
	id, event, data, retry string
	comments               []string
	hasID                  bool
}

// openStream asks for GET /north/events with token and, when not empty,
// Last-Event-ID, and returns the stream, or the refusal's status and body.
func openStream(t *testing.T, addr, token, lastID string) (*sseStream, int, string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	req := "GET /north/events HTTP/1.1\r\nHost: northd\r\nAccept: text/event-stream\r\nAuthorization: Bearer " + token + "\r\n"
	if lastID != "" {
		req += "Last-Event-ID: " + lastID + "\r\n"
	}
	req += "\r\n"
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	// Only a hang reaches this: tests wait for what they expect.
	c.SetReadDeadline(time.Now().Add(2 * time.Minute))
	s := &sseStream{t: t, conn: c, r: bufio.NewReader(c)}
	var head strings.Builder
	for {
		line, err := s.r.ReadString('\n')
		if err != nil {
			t.Fatalf("reading the response head: %v (read %q)", err, head.String())
		}
		head.WriteString(line)
		if line == "\r\n" {
			break
		}
	}
	s.head = head.String()
	status, _ := strconv.Atoi(strings.Fields(s.head)[1])
	if status != 200 {
		var length int
		for _, l := range strings.Split(s.head, "\r\n") {
			if v, ok := strings.CutPrefix(strings.ToLower(l), "content-length: "); ok {
				length, _ = strconv.Atoi(v)
			}
		}
		body := make([]byte, length)
		io.ReadFull(s.r, body)
		c.Close()
		testdeps.CheckRawAnswer(t, req, append([]byte(s.head), body...))
		return nil, status, string(body)
	}
	testdeps.CheckRawAnswer(t, req, []byte(s.head)) // the head: the stream's events are checked as they come
	return s, 200, ""
}

// streamOpened is openStream for a stream that must open: the test fails,
// saying which stream, unless it is answered 200.
func streamOpened(t *testing.T, which, addr, token, lastID string) *sseStream {
	t.Helper()
	s, status, body := openStream(t, addr, token, lastID)
	if status != 200 {
		t.Fatalf("%s: %d %s", which, status, body)
	}
	return s
}

// next reads the next block; io.EOF once the server closed the stream.
func (s *sseStream) next() (sseFrame, error) {
	var f sseFrame
	var data []string
	for {
		line, err := s.r.ReadString('\n')
		if err != nil {
			return f, err
		}
		line = strings.TrimSuffix(line, "\n")
		if line == "" {
			f.data = strings.Join(data, "\n")
			if len(data) > 0 {
				testdeps.CheckEvent(s.t, f.event, []byte(f.data))
			}
			return f, nil
		}
		if c, ok := strings.CutPrefix(line, ":"); ok {
			f.comments = append(f.comments, c)
			continue
		}
		name, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch name {
		case "id":
			f.id, f.hasID = value, true
		case "event":
			f.event = value
		case "data":
			data = append(data, value)
		case "retry":
			f.retry = value
		default:
			s.t.Errorf("unknown field %q in line %q", name, line)
		}
	}
}

// nextEvent reads up to the next block with data, failing on a close.
func (s *sseStream) nextEvent() sseFrame {
	s.t.Helper()
	for {
		f, err := s.next()
		if err != nil {
			s.t.Fatalf("stream ended before the next event: %v", err)
		}
		if f.data != "" || f.event != "" {
			return f
		}
	}
}

// closed reads blocks until the server closes the stream, and
// returns the retry: it sent last, failing if an event comes instead.
func (s *sseStream) closed() (lastRetry string) {
	s.t.Helper()
	for {
		f, err := s.next()
		if err != nil {
			return lastRetry
		}
		if f.event != "" || f.data != "" {
			s.t.Fatalf("an event came while waiting for the stream to close: %+v", f)
		}
		if f.retry != "" {
			lastRetry = f.retry
		}
	}
}

// eventJSON is an event as a receiver reads it from data:.
type eventJSON struct {
	ID        string          `json:"id"`
	Seq       uint64          `json:"seq"`
	Type      string          `json:"type"`
	Time      time.Time       `json:"time"`
	Subsystem string          `json:"subsystem"`
	Data      json.RawMessage `json:"data"`
}

func decodeEvent(t *testing.T, f sseFrame) eventJSON {
	t.Helper()
	var ev eventJSON
	if err := json.Unmarshal([]byte(f.data), &ev); err != nil {
		t.Fatalf("data %q: %v", f.data, err)
	}
	if ev.ID != f.id || ev.Type != f.event {
		t.Fatalf("frame id %q event %q, but its data says id %q type %q", f.id, f.event, ev.ID, ev.Type)
	}
	return ev
}

// publish POSTs body to the admin listener's /north/events.
func publish(t *testing.T, admin, query, body string, header ...string) testdeps.Answer {
	t.Helper()
	req, err := http.NewRequest("POST", "http://"+admin+"/north/events"+query, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	a, err := testdeps.Send(t, http.DefaultClient, req)
	if err != nil {
		t.Fatalf("publishing %s: %v", body, err)
	}
	return a
}

// published publishes one event and returns its id.
func published(t *testing.T, admin, body string) string {
	t.Helper()
	a := publish(t, admin, "", body)
	var r struct {
		Code int    `json:"code"`
		ID   string `json:"id"`
		Seq  uint64 `json:"seq"`
	}
	if a.Status != 202 || json.Unmarshal([]byte(a.Body), &r) != nil || r.ID == "" || !strings.HasSuffix(r.ID, "-"+strconv.FormatUint(r.Seq, 10)) {
		t.Fatalf("publish %s: %d %q", body, a.Status, a.Body)
	}
	return r.ID
}

// pollAll long-polls token's events from the oldest kept (after= an id of
// no epoch, so a reset leads) and returns the data of each event, in
// order; "reset" for the reset.
func pollAll(t *testing.T, addr, token string) []string {
	t.Helper()
	a := testdeps.Call(t, http.DefaultClient, "GET", "http://"+addr+"/north/events?after=zz-0&wait=0", token, "")
	var got struct {
		Events []struct {
			Type string          `json:"type"`
			Data json.RawMessage `json:"data"`
		} `json:"events"`
	}
	if a.Status != 200 || json.Unmarshal([]byte(a.Body), &got) != nil {
		t.Fatalf("long poll: %d %s", a.Status, a.Body)
	}
	var data []string
	for _, e := range got.Events {
		if e.Type == "reset" {
			data = append(data, "reset")
			continue
		}
		data = append(data, string(e.Data))
	}
	return data
}

// hookReceiver takes webhooks, keeping the bodies whose Standard Webhooks
// signature checks out under secret (set once known, by know). Beside its
// own check, testdeps.CheckWebhook has each request verified by the
// specification's reference library and validated against the document,
// failing t: the subscription.verify, which comes before its secret is
// known, as far as it can then, and by its signature in know.
type hookReceiver struct {
	t        *testing.T
	mu       sync.Mutex
	secret   string
	bodies   []string
	bad      int
	verifies []hookRequest // taken before the secret was known
}

type hookRequest struct {
	r    *http.Request
	body []byte
}

func (h *hookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.secret == "" {
		if err := testdeps.CheckWebhook(r, body); err != nil {
			h.t.Error(err)
		}
		h.verifies = append(h.verifies, hookRequest{r.Clone(context.Background()), body})
	} else if err := testdeps.CheckWebhook(r, body, h.secret); err != nil {
		h.t.Error(err)
	}
	if h.secret != "" {
		key, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(h.secret, "whsec_"))
		mac := hmac.New(sha256.New, key)
		mac.Write([]byte(r.Header.Get("webhook-id") + "." + r.Header.Get("webhook-timestamp") + "." + string(body)))
		if r.Header.Get("webhook-signature") != "v1,"+base64.StdEncoding.EncodeToString(mac.Sum(nil)) {
			h.bad++
			w.WriteHeader(401)
			return
		}
	}
	h.bodies = append(h.bodies, string(body))
	w.WriteHeader(204)
}

// know sets the secret the subscribe answered, and has the verifications
// taken before it verified by it.
func (h *hookReceiver) know(secret string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.secret = secret
	for _, v := range h.verifies {
		if err := testdeps.CheckWebhook(v.r, v.body, secret); err != nil {
			h.t.Errorf("the verification, with the secret the subscribe answered: %v", err)
		}
	}
}

func (h *hookReceiver) got() ([]string, int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.bodies...), h.bad
}
