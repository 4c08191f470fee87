package main

import (
	"encoding/base64"
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Lines as Centrifugo v6.9.1 sent them on /connection/uni_sse (the build
// names itself "0.0.0 OSS" when built without its release flags): the
// stream opens with a CRLF, then the connect push, publications (the very
// first of the channel carried its epoch), {} pings, and a disconnect push
// before the end.
const (
	cfConnectFresh = `data: {"connect":{"client":"7bf74294-daab-43fa-87cf-cdb621bea13d","version":"0.0.0 OSS","subs":{"load":{"recoverable":true,"epoch":"sfqtnPEZ","positioned":true}},"expires":true,"ttl":600,"ping":25,"session":"7eabf7bb-3400-4838-a6a3-673ec91f02dd"}}`
	cfConnect      = `data: {"connect":{"client":"3ad9fff5-d3b4-4539-9ee8-ff06ab52a359","version":"0.0.0 OSS","subs":{"load":{"recoverable":true,"epoch":"sfqtnPEZ","offset":22205,"positioned":true}},"expires":true,"ttl":600,"ping":25,"session":"3fb91ccc-f14d-4270-a505-5a71b52fa336"}}`
	cfFirstPub     = `data: {"channel":"load","pub":{"data":{"t":123,"n":0},"offset":1,"epoch":"sfqtnPEZ"}}`
	cfPub          = `data: {"channel":"load","pub":{"data":{"t":1796357341090895882,"n":0},"offset":22206}}`
	cfPubNext      = `data: {"channel":"load","pub":{"data":{"t":1796357341090895882,"n":1},"offset":22207}}`
	cfPing         = `data: {}`
	cfExpired      = `data: {"disconnect":{"code":3005,"reason":"connection expired"}}`
	cfBadToken     = `data: {"disconnect":{"code":3500,"reason":"invalid token"}}`
)

func TestParseCentrifugoLine(t *testing.T) {
	for _, c := range []struct {
		line    string
		want    streamLine
		wantErr string // a prefix of the error
	}{
		{line: "\r", want: streamLine{}},
		{line: "", want: streamLine{}},
		{line: cfPing, want: streamLine{}},
		{line: cfConnectFresh + "\r", want: streamLine{kind: lineConnected, seq: 0, epoch: []byte("sfqtnPEZ")}},
		{line: cfConnect, want: streamLine{kind: lineConnected, seq: 22205, epoch: []byte("sfqtnPEZ")}},
		{line: cfFirstPub, want: streamLine{kind: lineEvent, seq: 1, t: 123, epoch: []byte("sfqtnPEZ")}},
		{line: cfPub, want: streamLine{kind: lineEvent, seq: 22206, t: 1796357341090895882}},
		{line: cfPubNext + "\r", want: streamLine{kind: lineEvent, seq: 22207, t: 1796357341090895882, n: 1}},
		{line: cfExpired, want: streamLine{kind: lineClosed, why: "disconnect 3005: connection expired"}},
		{line: cfBadToken, want: streamLine{kind: lineClosed, why: "disconnect 3500: invalid token"}},
		// What the stream must not carry.
		{line: `data: {"channel":"load","pub":{"data":{"t":5,"n":0}}}`, wantErr: "a publication without an offset (is history on for channel load?)"},
		{line: `data: {"channel":"load","pub":{"data":{"t":"5"},"offset":3}}`, wantErr: "a publication whose t is not a number"},
		{line: `data: {"channel":"load","pub":{"data":{"t":5,"n":-1},"offset":3}}`, wantErr: "a publication whose n is not a number"},
		{line: `data: {"channel":"load","pub":{"data":{"t":5},"offset":3}}`, want: streamLine{kind: lineEvent, seq: 3, t: 5, n: -1}},
		{line: `data: {"channel":"load","pub":{"data":{"t":99999999999999999999,"n":0},"offset":3}}`, wantErr: "a publication whose t is not a number"},
		{line: `data: {"channel":"load","pub":{"data":{"t":5,"n":0`, wantErr: "a publication cut short"},
		{line: `data: {"channel":"load","pub":{"data":{"t":5},"offset":3,"epoch":"abc`, wantErr: "a publication's epoch cut short"},
		{line: `data: {"channel":"other","pub":{"data":{"t":5},"offset":3}}`, wantErr: "a push loadtest did not ask for"},
		{line: `data: {"connect":{"client":"x","version":"0.0.0 OSS","expires":true,"ttl":600,"ping":25,"session":"y"}}`, wantErr: "the connect push has no subscription to load"},
		{line: `data: {"connect":`, wantErr: "a push that is not JSON"},
		{line: `data: {"connect":null}`, wantErr: "a push neither connect nor disconnect"},
		{line: "event: ping", wantErr: "not a data line"},
		{line: ": comment", wantErr: "not a data line"},
	} {
		got, err := parseCentrifugoLine([]byte(c.line))
		if c.wantErr != "" {
			if err == nil || !strings.HasPrefix(err.Error(), c.wantErr) {
				t.Errorf("%q: error %v, want %q", c.line, err, c.wantErr)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("%q: %+v, %v; want %+v", c.line, got, err, c.want)
		}
	}
}

func FuzzParseCentrifugoLine(f *testing.F) {
	for _, l := range []string{cfConnectFresh, cfConnect, cfFirstPub, cfPub, cfPing, cfExpired, "\r", `data: {"channel":"load","pub":{"data":{"t":5}}}`} {
		f.Add([]byte(l))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		l, err := parseCentrifugoLine(line)
		if err != nil {
			return
		}
		switch l.kind {
		case lineEvent:
			// What it read is in the line, where it read it.
			if !strings.Contains(string(line), fmt.Sprintf(`"offset":%d`, l.seq)) || !strings.Contains(string(line), fmt.Sprintf(`"data":{"t":%d`, l.t)) {
				t.Errorf("%q read as offset %d, t %d", line, l.seq, l.t)
			}
		case lineConnected, lineClosed, lineOther:
		default:
			t.Errorf("%q: kind %d", line, l.kind)
		}
	})
}

// Any publication Centrifugo writes reads back as written.
func FuzzCentrifugoPubRoundTrip(f *testing.F) {
	f.Add(int64(1796357341090895882), int64(22206), "sfqtnPEZ", 0)
	f.Add(int64(1), int64(1), "", 7)
	f.Fuzz(func(t *testing.T, ts, offset int64, epoch string, n int) {
		if ts <= 0 || offset < 0 || n < 0 || strings.Trim(epoch, "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz") != "" {
			return // Centrifugo's epochs are letters and digits
		}
		line := fmt.Sprintf(`data: {"channel":"load","pub":{"data":{"t":%d,"n":%d},"offset":%d`, ts, n, offset)
		want := streamLine{kind: lineEvent, seq: offset, t: ts, n: int64(n)}
		if epoch != "" {
			line += `,"epoch":"` + epoch + `"`
			want.epoch = []byte(epoch)
		}
		got, err := parseCentrifugoLine([]byte(line + "}}"))
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("%q: %+v, %v; want %+v", line, got, err, want)
		}
	})
}

// A stream checks Centrifugo's offsets as northd's seqs, from the
// connect push's offset on, the first event included.
func TestCentrifugoStreamChecks(t *testing.T) {
	// The publisher numbers its events from 0 as Centrifugo's offsets
	// here go on from 22206, unless n says otherwise.
	pubN := func(offset, n int) string {
		return fmt.Sprintf(`data: {"channel":"load","pub":{"data":{"t":1,"n":%d},"offset":%d}}`, n, offset)
	}
	pub := func(offset int, epoch string) string {
		l := fmt.Sprintf(`data: {"channel":"load","pub":{"data":{"t":1,"n":%d},"offset":%d`, max(offset-22206, 0), offset)
		if epoch != "" {
			l += `,"epoch":"` + epoch + `"`
		}
		return l + "}}"
	}
	for _, c := range []struct {
		name     string
		lines    []string
		received int64
		problem  string
	}{
		{"in order", []string{"\r", cfConnect, "", pub(22206, ""), cfPing, pub(22207, "sfqtnPEZ")}, 2, ""},
		{"a gap", []string{cfConnect, pub(22206, ""), pub(22208, "")}, 1, "seq 22208 after 22206: a gap or a duplicate"},
		{"a duplicate", []string{cfConnect, pub(22206, ""), pub(22206, "")}, 1, "seq 22206 after 22206: a gap or a duplicate"},
		{"the first event missed", []string{cfConnect, pub(22207, "")}, 0, "seq 22207 after 22205: a gap or a duplicate"},
		{"an event before connect", []string{pub(1, "")}, 0, "event 1 before the connect push"},
		{"two connects", []string{cfConnect, cfConnect}, 0, "a second connect push"},
		{"a new epoch", []string{cfConnect, pub(22206, "other")}, 0, `epoch "other" after "sfqtnPEZ": the server's history began anew`},
		{"disconnected", []string{cfConnect, pub(22206, ""), cfExpired}, 1, "the server ended the stream: disconnect 3005: connection expired"},
		{"not a push", []string{cfConnect, "retry: 100"}, 0, `not a data line: "retry: 100"`},
		// Offsets one after another that carry the same event twice.
		{"the same event twice", []string{cfConnect, pubN(22206, 3), pubN(22207, 3)}, 1, "event 22207 is number 3, which came before: the same event twice"},
		{"an event not published", []string{cfConnect, pubN(22206, 64)}, 0, "event 22206 is number 64, beyond the 64 this run publishes"},
		{"an event without a number", []string{cfConnect, `data: {"channel":"load","pub":{"data":{"t":1},"offset":22206}}`}, 0, "event 22206 carries no publisher's number"},
	} {
		s := &eventStream{parse: parseCentrifugoLine, needsConnect: true, hist: newHist(), connected: make(chan struct{})}
		s.expect(10)
		for _, l := range c.lines {
			if !s.take([]byte(l), 5, true) {
				break
			}
		}
		s.flush()
		if s.received.Load() != c.received || s.err() != c.problem {
			t.Errorf("%s: received %d, problem %q; want %d, %q", c.name, s.received.Load(), s.err(), c.received, c.problem)
		}
	}
}

// The connection token: HS256, and exactly the claims Centrifugo reads
// (sub, exp, channels), as the jwt library reads them back.
func TestCentrifugoToken(t *testing.T) {
	secret := []byte("test-only-secret")
	token, err := centrifugoToken(secret, "stream-7", time.Unix(4102444800, 0))
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("token %q: want three parts", token)
	}
	for i, want := range []string{`{"alg":"HS256","typ":"JWT"}`, `{"channels":["load"],"sub":"stream-7","exp":4102444800}`} {
		if b, err := base64.RawURLEncoding.DecodeString(parts[i]); err != nil || string(b) != want {
			t.Errorf("part %d: %s, %v; want %s", i, b, err, want)
		}
	}
	var claims centrifugoClaims
	parsed, err := jwt.ParseWithClaims(token, &claims, func(*jwt.Token) (any, error) { return secret, nil }, jwt.WithValidMethods([]string{"HS256"}))
	if err != nil || !parsed.Valid {
		t.Fatalf("parse: %v", err)
	}
	if claims.Subject != "stream-7" || claims.ExpiresAt.Unix() != 4102444800 || !reflect.DeepEqual(claims.Channels, []string{"load"}) {
		t.Errorf("claims %+v", claims)
	}
	if _, err := jwt.ParseWithClaims(token, &centrifugoClaims{}, func(*jwt.Token) (any, error) { return []byte("another"), nil }); err == nil {
		t.Error("a token checked with another secret passed")
	}
}

// loadtest reads its secrets from the configuration Centrifugo runs with.
func TestReadCentrifugoConfig(t *testing.T) {
	s, err := readCentrifugoConfig("../bench/peers/centrifugo/config.json")
	if err != nil {
		t.Fatal(err)
	}
	if string(s.hmacSecret) != "benchmark-only-hmac-secret-loopback-never-deploy" || s.apiKey != "benchmark-only-api-key-loopback-never-deploy" {
		t.Errorf("secrets %q, %q", s.hmacSecret, s.apiKey)
	}
	bad := t.TempDir() + "/config.json"
	for body, want := range map[string]string{
		`{"client":{"token":{"hmac_secret_key":"x"}}}`: "give client.token.hmac_secret_key",
		`{"http_api":{"key":"x"}}`:                     "give client.token.hmac_secret_key",
		`{`:                                            "unexpected end of JSON input",
	} {
		if err := os.WriteFile(bad, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := readCentrifugoConfig(bad); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want %q", body, err, want)
		}
	}
}

// The publishers' bodies, byte for byte, and the server API's answers as
// Centrifugo v6.9.1 gave them.
func TestCentrifugoPublish(t *testing.T) {
	if got := string(appendCentrifugoBatch(nil, 10, 2, 123)); got != `{"commands":[{"publish":{"channel":"load","data":{"t":123,"n":10}}},{"publish":{"channel":"load","data":{"t":123,"n":11}}}]}` {
		t.Errorf("batch %s", got)
	}
	if got := string(appendCentrifugoPublish([]byte("old"), 4, 1, 123)); got != `old{"channel":"load","data":{"t":123,"n":4}}` {
		t.Errorf("publish %s", got)
	}
	for _, c := range []struct {
		status int
		body   string
		n      int
		ok     bool
	}{
		{200, `{"replies":[{"publish":{"offset":2,"epoch":"sfqtnPEZ"}},{"publish":{"offset":3,"epoch":"sfqtnPEZ"}}]}`, 2, true},
		{200, `{"replies":[{"publish":{"offset":5,"epoch":"sfqtnPEZ"}}]}`, 2, false},
		{200, `{"replies":[{"error":{"code":102,"message":"unknown channel"}},{"publish":{"offset":4,"epoch":"sfqtnPEZ"}}]}`, 2, false},
		{401, ``, 1, false},
	} {
		if err := checkCentrifugoBatch(c.status, []byte(c.body), c.n); (err == nil) != c.ok {
			t.Errorf("batch answer %d %s for %d: %v", c.status, c.body, c.n, err)
		}
	}
	for _, c := range []struct {
		status int
		body   string
		ok     bool
	}{
		{200, `{"result":{"offset":1,"epoch":"sfqtnPEZ"}}`, true},
		{200, `{"error":{"code":102,"message":"unknown channel"}}`, false},
		{401, ``, false},
	} {
		if err := checkCentrifugoPublish(c.status, []byte(c.body), 1); (err == nil) != c.ok {
			t.Errorf("publish answer %d %s: %v", c.status, c.body, err)
		}
	}
}
