package main

import (
	"testing"

	"github.com/valyala/fasthttp"
)

// BenchmarkAuth measures what credentials and tokens add to a request, on
// the handler: a login answered from the credential cache against an
// open-mode login, and a verification against the home page.
func BenchmarkAuth(b *testing.B) {
	body := []byte(`{"username": "alice", "password": "secret", "ip": "192.0.2.7"}`)
	users, open := authSubsystem(b), startSubsystem(b, testConfig(b), nullListener{})
	login := handlerCtx(b, post("/north/login", string(body)))
	users.routes()(login)
	m := tokenIn.FindSubmatch(login.Response.Body())
	if m == nil {
		b.Fatalf("login: %q", login.Response.Body())
	}
	verify := handlerCtx(b, "GET /north/verify HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "+string(m[1])+"\r\n\r\n")
	home := handlerCtx(b, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	otherIP := []byte(`{"username": "alice", "password": "secret", "ip": "192.0.2.8"}`)
	for _, bc := range []struct {
		name string
		h    fasthttp.RequestHandler
		ctx  *fasthttp.RequestCtx
		body []byte
	}{
		{"LoginOpen", open.routes(), handlerCtx(b, post("/north/login", string(otherIP))), otherIP},
		{"LoginCached", users.routes(), handlerCtx(b, post("/north/login", string(otherIP))), otherIP},
		{"Verify", users.routes(), verify, nil},
		{"Home", users.routes(), home, nil},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if bc.body != nil {
					bc.ctx.Request.SetBody(bc.body) // the login handler zeroes it
				}
				bc.ctx.Response.Reset()
				bc.h(bc.ctx)
			}
			if bc.ctx.Response.StatusCode() != 200 {
				b.Fatalf("status %d %q", bc.ctx.Response.StatusCode(), bc.ctx.Response.Body())
			}
		})
	}
}
