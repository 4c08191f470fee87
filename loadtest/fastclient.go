package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"
)

// fastTransport is an http.RoundTripper on fasthttp's client: vegeta still
// paces, times and collects every request, but each one costs the sender
// a fraction of the CPU of net/http's Transport (no per-connection
// goroutines to hand each request and response between), so one core can
// send several times the rate. -client picks it; net/http stays the
// default for its stricter reading of responses (it refuses, for one, a
// response with two Content-Length headers that fasthttp takes).
type fastTransport struct {
	client  *fasthttp.Client
	timeout time.Duration
}

func newFastTransport(connections int, timeout time.Duration) *fastTransport {
	return &fastTransport{
		timeout: timeout,
		client: &fasthttp.Client{
			MaxConnsPerHost:               connections,
			MaxIdleConnDuration:           90 * time.Second,
			ReadTimeout:                   timeout,
			WriteTimeout:                  timeout,
			MaxConnWaitTimeout:            timeout,
			NoDefaultUserAgentHeader:      true,
			DisableHeaderNamesNormalizing: false,
			DisablePathNormalizing:        true,
			MaxResponseBodySize:           1 << 20,
			// A request the server has answered is never retried:
			// every response is its own result.
			RetryIfErr: func(*fasthttp.Request, int, error) (bool, bool) { return false, false },
		},
	}
}

func (t *fastTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	freq := fasthttp.AcquireRequest()
	fresp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(freq)
	defer fasthttp.ReleaseResponse(fresp)

	freq.Header.SetMethod(req.Method)
	freq.SetRequestURI(req.URL.String())
	for k, vs := range req.Header {
		for _, v := range vs {
			freq.Header.Add(k, v)
		}
	}
	if req.Body != nil && req.Body != http.NoBody {
		body, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
		freq.SetBodyRaw(body)
	}
	if err := req.Context().Err(); err != nil {
		return nil, err
	}
	// Do, not DoDeadline, which spends a goroutine a request: the
	// client's read and write timeouts bound each request instead.
	if err := t.client.Do(freq, fresp); err != nil {
		if err == fasthttp.ErrTimeout {
			return nil, context.DeadlineExceeded
		}
		return nil, err
	}
	resp := &http.Response{
		StatusCode: fresp.StatusCode(),
		Status:     strconv.Itoa(fresp.StatusCode()) + " " + http.StatusText(fresp.StatusCode()),
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     make(http.Header, 8),
		Close:      fresp.ConnectionClose(),
		Request:    req,
	}
	for k, v := range fresp.Header.All() {
		resp.Header.Add(string(k), string(v))
	}
	body := bytes.Clone(fresp.Body())
	resp.ContentLength = int64(len(body))
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return resp, nil
}
