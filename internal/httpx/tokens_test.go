package httpx

import (
	"encoding/hex"
	"net/netip"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp"

	"northd/internal/store"
	"northd/internal/store/memory"
	"northd/internal/wire"
)

// downStore answers no Verify, as a shared store that does not answer in
// time.
type downStore struct{ store.Store }

func (downStore) Verify([16]byte, time.Time, []byte) (store.Token, error) {
	return store.Token{}, store.ErrUnavailable
}

// header is the value of the response header written as name, byte for
// byte: SetCanonical keeps a name as given, which Peek would not find.
func header(r *fasthttp.Response, name string) string {
	for k, v := range r.Header.All() {
		if string(k) == name {
			return string(v)
		}
	}
	return ""
}

func checks(set *metrics.Set, name string) *Checks {
	var c Checks
	for p := wire.BearerOK; p < wire.BearerProblemCount; p++ {
		c[p] = set.NewCounter(`checks{case="` + name + `",result="` + p.Reason() + `"}`)
	}
	return &c
}

// Live lets a live token through with its north server, and answers
// every other request with its refusal, counting each outcome once.
func TestLiveAnswersEachRefusal(t *testing.T) {
	now := time.Now()
	st := memory.New(memory.Options{Max: 10, TokenTTL: time.Hour})
	token, _, err := st.Login(netip.MustParseAddr("192.0.2.7"), []byte("north-7"), [16]byte{1: 7}, now, false)
	if err != nil {
		t.Fatal(err)
	}
	live := "Bearer " + hex.EncodeToString(token[:])
	set := metrics.NewSet()
	for _, tt := range []struct {
		name          string
		st            store.Store
		authorization []string
		ok            bool
		status        int
		retryAfter    string
		wwwAuth       string
		body          string
	}{
		{"live", st, []string{live}, true, 200, "", "", ""},
		{"none", st, nil, false, 401, "", `Bearer realm="northd"`, `{"code": 2, "description": "send the token from /north/login as Authorization: Bearer TOKEN"}`},
		{"two headers", st, []string{live, live}, false, 400, "", `Bearer realm="northd", error="invalid_request"`, `{"code": 1, "description": "send one Authorization header, not several"}`},
		{"unknown", st, []string{"Bearer " + hex.EncodeToString(make([]byte, 16))}, false, 401, "", `Bearer realm="northd", error="invalid_token"`, `{"code": 2, "description": "the token is not valid: it was never issued here, or a newer login replaced it, or it was logged out; log in again"}`},
		{"store down", downStore{}, []string{live}, false, 503, "1", "", `{"code": 4, "description": "the token store is unavailable; retry after the Retry-After seconds"}`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := checks(set, tt.name)
			down := set.NewCounter(`down{case="` + tt.name + `"}`)
			var req fasthttp.Request
			for _, a := range tt.authorization {
				req.Header.Add("Authorization", a)
			}
			ctx := new(fasthttp.RequestCtx)
			ctx.Init(&req, nil, nil) // ctx.Time() is now
			buf := GetUsername()
			defer PutUsername(buf)
			got, v, ok := Tokens{Store: tt.st, StoreUnavailable: down}.Live(ctx, c, buf[:0])
			if ok != tt.ok || ctx.Response.StatusCode() != tt.status || string(ctx.Response.Header.Peek("Retry-After")) != tt.retryAfter ||
				header(&ctx.Response, "WWW-Authenticate") != tt.wwwAuth || string(ctx.Response.Body()) != tt.body {
				t.Fatalf("Live: %v, %d Retry-After %q WWW-Authenticate %q %s\nwant %v, %d Retry-After %q WWW-Authenticate %q %s", ok,
					ctx.Response.StatusCode(), ctx.Response.Header.Peek("Retry-After"), header(&ctx.Response, "WWW-Authenticate"), ctx.Response.Body(),
					tt.ok, tt.status, tt.retryAfter, tt.wwwAuth, tt.body)
			}
			if !tt.ok && string(ctx.Response.Header.ContentType()) != "application/json; charset=utf-8" {
				t.Errorf("Content-Type %q", ctx.Response.Header.ContentType())
			}
			if ok && (got != token || string(v.Username) != "north-7" || v.IP != netip.MustParseAddr("192.0.2.7")) {
				t.Errorf("Live let %x through as %q at %v", got, v.Username, v.IP)
			}
			var counted uint64
			for _, n := range c {
				counted += n.Get()
			}
			if wantDown := tt.status == 503; (down.Get() == 1) != wantDown || counted+down.Get() != 1 {
				t.Errorf("counted %d checks and %d store failures, want one of them", counted, down.Get())
			}
		})
	}
}
