// Command floor is the fastest server the northd contract allows on
// fasthttp: one handler that answers each route with a constant body (the
// login token is a constant too), no router, no JSON decoding, no
// registry. It is the ceiling for anything built on fasthttp; bench/ runs
// it beside northd with the same GOMAXPROCS and CPU.
//
//	floor -listen 127.0.0.1:8081
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"

	"github.com/valyala/fasthttp"
)

// The login token is a constant, but of the form the contract requires (a
// UUID version 4: digit 13 is 4, digit 17 is 8), so that make compare's
// check of the contract passes.
var (
	homeBody     = []byte(`<meta http-equiv="Content-Type" content="text/html; charset=utf-8"><h1>Home Page</h1>`)
	loginBody    = []byte(`{"code": 0, "token": "00000000000040008000000000000000", "description": "success"}`)
	notFoundBody = []byte(`<h1>404 Not Found</h1>`)
	contentHTML  = []byte("text/html; charset=utf-8")
	contentJSON  = []byte("application/json; charset=utf-8")
	cacheControl = []byte("Cache-Control")
	noStore      = []byte("no-store")
)

func handle(ctx *fasthttp.RequestCtx) {
	ctx.Response.Header.SetCanonical(cacheControl, noStore)
	switch string(ctx.Path()) {
	case "/":
		ctx.Response.Header.SetContentTypeBytes(contentHTML)
		ctx.Response.SetBodyRaw(homeBody)
	case "/north/login":
		ctx.Response.Header.SetContentTypeBytes(contentJSON)
		ctx.Response.SetBodyRaw(loginBody)
	default:
		ctx.SetStatusCode(fasthttp.StatusNotFound)
		ctx.Response.Header.SetContentTypeBytes(contentHTML)
		ctx.Response.SetBodyRaw(notFoundBody)
	}
}

func main() {
	listen := flag.String("listen", "127.0.0.1:8081", "address to serve on")
	reduceMemory := flag.Bool("reduce-memory", false, "fasthttp ReduceMemoryUsage")
	timeout := flag.Duration("timeout", 0, "ReadTimeout, WriteTimeout and IdleTimeout (0: none, fasthttp's default); "+
		"-timeout 10s sets them as northd does by default, to see what the per-request deadlines cost")
	readBuf := flag.Int("read-buffer-size", 0, "fasthttp ReadBufferSize (0: its default, 4096)")
	writeBuf := flag.Int("write-buffer-size", 0, "fasthttp WriteBufferSize (0: its default, 4096)")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile to this file until SIGINT or SIGTERM")
	flag.Parse()
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "floor:", err)
			os.Exit(1)
		}
		pprof.StartCPUProfile(f)
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
		go func() {
			<-sig
			pprof.StopCPUProfile()
			f.Close()
			os.Exit(0)
		}()
	}
	s := &fasthttp.Server{
		Handler:                      handle,
		NoDefaultServerHeader:        true,
		NoDefaultContentType:         true,
		DisablePreParseMultipartForm: true,
		ReduceMemoryUsage:            *reduceMemory,
		ReadTimeout:                  *timeout,
		WriteTimeout:                 *timeout,
		IdleTimeout:                  *timeout,
		ReadBufferSize:               *readBuf,
		WriteBufferSize:              *writeBuf,
	}
	fmt.Fprintf(os.Stderr, "floor listening on %s\n", *listen)
	if err := s.ListenAndServe(*listen); err != nil {
		fmt.Fprintln(os.Stderr, "floor:", err)
		os.Exit(1)
	}
}
