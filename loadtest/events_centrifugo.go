package main

// loadtest events against Centrifugo (v6, its unidirectional SSE
// transport), the peer northd's streams are compared with: each stream a
// uni_sse connection whose connection token subscribes it, server-side,
// to the one channel; events published through the server API. The
// configuration is bench/peers/centrifugo/config.json, whose secrets
// loadtest reads (-centrifugo-config), so that there is one copy of them.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/valyala/fasthttp"
)

// centrifugoChannel is the channel every stream is subscribed to and
// every event published in; the configuration keeps its history (each
// publication then carries its offset, which the streams check as they
// check northd's seqs).
const centrifugoChannel = "load"

// centrifugoSecrets are what loadtest needs of Centrifugo's configuration.
type centrifugoSecrets struct {
	hmacSecret []byte // signs the connection tokens (HS256)
	apiKey     string // the server API's X-API-Key
}

// readCentrifugoConfig takes the secrets from a Centrifugo v6 configuration
// file (JSON).
func readCentrifugoConfig(path string) (centrifugoSecrets, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return centrifugoSecrets{}, err
	}
	var c struct {
		Client struct {
			Token struct {
				HMACSecretKey string `json:"hmac_secret_key"`
			} `json:"token"`
		} `json:"client"`
		HTTPAPI struct {
			Key string `json:"key"`
		} `json:"http_api"`
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return centrifugoSecrets{}, fmt.Errorf("%s: %v", path, err)
	}
	if c.Client.Token.HMACSecretKey == "" || c.HTTPAPI.Key == "" {
		return centrifugoSecrets{}, fmt.Errorf("%s: give client.token.hmac_secret_key (the streams' tokens are signed with it) and http_api.key (events are published with it)", path)
	}
	return centrifugoSecrets{hmacSecret: []byte(c.Client.Token.HMACSecretKey), apiKey: c.HTTPAPI.Key}, nil
}

// centrifugoClaims are a connection token's claims: the user, its expiry,
// and the channels the server subscribes the connection to.
type centrifugoClaims struct {
	Channels []string `json:"channels"`
	jwt.RegisteredClaims
}

// centrifugoToken is the connection token of user, valid until exp,
// subscribing its connection to the channel.
func centrifugoToken(secret []byte, user string, exp time.Time) (string, error) {
	claims := centrifugoClaims{
		Channels:         []string{centrifugoChannel},
		RegisteredClaims: jwt.RegisteredClaims{Subject: user, ExpiresAt: jwt.NewNumericDate(exp)},
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(secret)
}

type centrifugoPeer struct {
	host          string
	secrets       centrifugoSecrets
	tokensExpire  time.Time
	single        bool // batches of one: /api/publish rather than /api/batch
	publishClient *fasthttp.HostClient
}

func newCentrifugoPeer(cfg eventsConfig, host string, secrets centrifugoSecrets) *centrifugoPeer {
	return &centrifugoPeer{
		host: host, secrets: secrets,
		// A uni_sse connection cannot refresh its token: it must outlive
		// the run.
		tokensExpire:  time.Now().Add(cfg.duration + time.Hour),
		single:        cfg.batch == 1,
		publishClient: newPublishClient(host, cfg.publishers),
	}
}

// openStream opens stream i: a uni_sse connection of user stream-i, its
// connect request (the token) in the URL, as a browser's EventSource
// sends it.
func (p *centrifugoPeer) openStream(i int) (*eventStream, *http.Response, error) {
	token, err := centrifugoToken(p.secrets.hmacSecret, "stream-"+strconv.Itoa(i), p.tokensExpire)
	if err != nil {
		return nil, nil, err
	}
	connect, _ := json.Marshal(struct {
		Token string `json:"token"`
	}{token})
	req := "GET /connection/uni_sse?cf_connect=" + url.QueryEscape(string(connect)) + " HTTP/1.1\r\nHost: " + p.host + "\r\n\r\n"
	return dialStream(p.host, []byte(req), parseCentrifugoLine, true)
}

// awaitStreams waits for every stream's connect push: it lists the
// server-side subscription, so each stream is in the channel from then
// on. (Centrifugo has no northd /metrics to count them.)
func (p *centrifugoPeer) awaitStreams(streams []*eventStream, deadline time.Time) error {
	return awaitConnected(streams, deadline)
}

// heapInUse: Centrifugo reports no Go heap where loadtest can read it.
func (p *centrifugoPeer) heapInUse() (float64, bool) { return 0, false }

func (p *centrifugoPeer) newPublisher() eventPublisher {
	headers := []string{"X-API-Key", p.secrets.apiKey}
	uri := "http://" + p.host
	if p.single {
		return newHTTPPublisher(p.publishClient, uri+"/api/publish", headers, appendCentrifugoPublish, checkCentrifugoPublish)
	}
	return newHTTPPublisher(p.publishClient, uri+"/api/batch", headers, appendCentrifugoBatch, checkCentrifugoBatch)
}

// appendCentrifugoBatch appends a server API batch of n publish commands,
// the events numbered from first, each with the send time t. The batch is
// run in order (its "parallel" left false), as northd's array is.
func appendCentrifugoBatch(b []byte, first, n int, t int64) []byte {
	b = append(b, `{"commands":[`...)
	for i := range n {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"publish":{"channel":"`+centrifugoChannel+`","data":`...)
		b = appendEventData(b, t, first+i)
		b = append(b, "}}"...)
	}
	return append(b, "]}"...)
}

// appendCentrifugoPublish appends the one publish of a batch of one.
func appendCentrifugoPublish(b []byte, first, _ int, t int64) []byte {
	b = append(b, `{"channel":"`+centrifugoChannel+`","data":`...)
	b = appendEventData(b, t, first)
	return append(b, '}')
}

// checkCentrifugoBatch: every command of the batch has its publish reply
// and none an error ({"replies":[{"publish":{"offset":2,...}},...]}).
func checkCentrifugoBatch(status int, body []byte, n int) error {
	if status != 200 || bytes.Contains(body, []byte(`"error":`)) || bytes.Count(body, []byte(`{"publish":{`)) != n {
		return fmt.Errorf("publish: %d %.300s (want %d publish replies and no error)", status, body, n)
	}
	return nil
}

// checkCentrifugoPublish: {"result":{"offset":1,...}} and no error.
func checkCentrifugoPublish(status int, body []byte, _ int) error {
	if status != 200 || !bytes.HasPrefix(body, []byte(`{"result":`)) || bytes.Contains(body, []byte(`"error":`)) {
		return fmt.Errorf("publish: %d %.300s", status, body)
	}
	return nil
}

var (
	centrifugoData      = []byte("data: ")
	centrifugoPubPrefix = []byte(`{"channel":"` + centrifugoChannel + `","pub":{"data":{"t":`)
	centrifugoPing      = []byte("{}")
	centrifugoConnect   = []byte(`{"connect":`)
	centrifugoClose     = []byte(`{"disconnect":`)
	centrifugoOffset    = []byte(`"offset":`)
	centrifugoEpoch     = []byte(`"epoch":"`)
)

// parseCentrifugoLine reads a line of a uni_sse stream. Centrifugo v6 sends
// blank lines and data lines only, one JSON push each: the connect push,
// publications of the channel, {} as a ping, and a disconnect push before
// it ends the stream. A publication is scanned, not decoded (there are a
// million a second at 10,000 events/s to 100 streams); the rare pushes are
// decoded.
func parseCentrifugoLine(line []byte) (streamLine, error) {
	line = bytes.TrimSuffix(line, []byte("\r"))
	if len(line) == 0 {
		return streamLine{}, nil
	}
	data, ok := bytes.CutPrefix(line, centrifugoData)
	if !ok {
		return streamLine{}, fmt.Errorf("not a data line: %.200q", line)
	}
	if rest, ok := bytes.CutPrefix(data, centrifugoPubPrefix); ok {
		return parseCentrifugoPub(rest, data)
	}
	switch {
	case bytes.Equal(data, centrifugoPing):
		return streamLine{}, nil
	case bytes.HasPrefix(data, centrifugoConnect), bytes.HasPrefix(data, centrifugoClose):
		return parseCentrifugoPush(data)
	}
	return streamLine{}, fmt.Errorf("a push loadtest did not ask for: %.200q", data)
}

// parseCentrifugoPub reads a publication from rest, what follows the
// publisher's "t": (the t, its n, the rest of its flat data object, then
// the publication's fields).
func parseCentrifugoPub(rest, data []byte) (streamLine, error) {
	t, rest, ok := leadingNumber(rest)
	if !ok {
		return streamLine{}, fmt.Errorf("a publication whose t is not a number: %.200q", data)
	}
	n := int64(-1)
	if after, ok := bytes.CutPrefix(rest, []byte(`,"n":`)); ok {
		if n, rest, ok = leadingNumber(after); !ok {
			return streamLine{}, fmt.Errorf("a publication whose n is not a number: %.200q", data)
		}
	}
	end := bytes.IndexByte(rest, '}')
	if end < 0 {
		return streamLine{}, fmt.Errorf("a publication cut short: %.200q", data)
	}
	fields := rest[end+1:]
	offset, ok := numberAfter(fields, string(centrifugoOffset))
	if !ok {
		return streamLine{}, fmt.Errorf("a publication without an offset (is history on for channel %s?): %.200q", centrifugoChannel, data)
	}
	l := streamLine{kind: lineEvent, seq: offset, t: t, n: n}
	if i := bytes.Index(fields, centrifugoEpoch); i >= 0 {
		e := fields[i+len(centrifugoEpoch):]
		j := bytes.IndexByte(e, '"')
		if j < 0 {
			return streamLine{}, fmt.Errorf("a publication's epoch cut short: %.200q", data)
		}
		l.epoch = e[:j]
	}
	return l, nil
}

// parseCentrifugoPush decodes a connect or disconnect push.
func parseCentrifugoPush(data []byte) (streamLine, error) {
	var push struct {
		Connect *struct {
			Subs map[string]struct {
				Offset int64  `json:"offset"`
				Epoch  string `json:"epoch"`
			} `json:"subs"`
		} `json:"connect"`
		Disconnect *struct {
			Code   int    `json:"code"`
			Reason string `json:"reason"`
		} `json:"disconnect"`
	}
	if err := json.Unmarshal(data, &push); err != nil {
		return streamLine{}, fmt.Errorf("a push that is not JSON: %.200q", data)
	}
	switch {
	case push.Disconnect != nil:
		return streamLine{kind: lineClosed, why: fmt.Sprintf("disconnect %d: %s", push.Disconnect.Code, push.Disconnect.Reason)}, nil
	case push.Connect != nil:
		sub, ok := push.Connect.Subs[centrifugoChannel]
		if !ok {
			return streamLine{}, fmt.Errorf("the connect push has no subscription to %s (the token's channels claim): %.200q", centrifugoChannel, data)
		}
		return streamLine{kind: lineConnected, seq: sub.Offset, epoch: []byte(sub.Epoch)}, nil
	}
	return streamLine{}, fmt.Errorf("a push neither connect nor disconnect: %.200q", data)
}
