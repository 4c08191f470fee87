package main

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"
)

// closedHeader is set by the transport on a response after which the server
// closed the connection (the raw path checks it; net/http reports it as
// Response.Close).
const closedHeader = "X-Loadtest-Closed"

// caseTransport is the HTTP client's RoundTripper under vegeta's attacker.
// It takes the case index off each request and puts it on the response, and
// sends the cases net/http cannot send (reqCase.raw) over a fresh TCP
// connection of their own, so they run at the same constant rate and are
// verified and counted like the rest.
type caseTransport struct {
	inner   http.RoundTripper
	cases   []reqCase
	timeout time.Duration
	dialer  net.Dialer
}

func newHTTPClient(cases []reqCase, client string, connections int, timeout time.Duration) *http.Client {
	dialer := net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}
	var inner http.RoundTripper = &http.Transport{
		DialContext:         dialer.DialContext,
		MaxIdleConns:        0,
		MaxIdleConnsPerHost: connections,
		MaxConnsPerHost:     connections,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		ForceAttemptHTTP2:   false,
	}
	if client == "fasthttp" {
		inner = newFastTransport(connections, timeout)
	}
	return &http.Client{
		Timeout:   timeout,
		Transport: &caseTransport{inner: inner, cases: cases, timeout: timeout, dialer: dialer},
		// The contract has no redirects: a redirect is answered as is
		// and fails its verification.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

func (t *caseTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	tag := req.Header.Get(caseHeader)
	ci, err := strconv.Atoi(tag)
	if err != nil || ci < 0 || ci >= len(t.cases) {
		return nil, errors.New("loadtest: request without a valid case tag")
	}
	// The request is vegeta's own, made for this one hit.
	index := req.Header.Get(indexHeader)
	req.Header.Del(caseHeader)
	req.Header.Del(indexHeader)
	req.Header.Del("X-Vegeta-Seq")
	var resp *http.Response
	if raw := t.cases[ci].raw; raw != nil {
		resp, err = t.rawRoundTrip(req, raw)
	} else {
		resp, err = t.inner.RoundTrip(req)
	}
	if err != nil {
		return nil, &taggedError{tag: tag, err: err}
	}
	resp.Header.Set(caseHeader, tag)
	if index != "" {
		resp.Header.Set(indexHeader, index)
	}
	if resp.Close {
		resp.Header.Set(closedHeader, "1")
	}
	// net/http's body is read after RoundTrip returns: a failure then is
	// the case's too.
	resp.Body = &taggedBody{ReadCloser: resp.Body, tag: tag}
	return resp, nil
}

// taggedBody tags the errors of reading a response body with its case.
type taggedBody struct {
	io.ReadCloser
	tag string
}

func (b *taggedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && err != io.EOF {
		err = &taggedError{tag: b.tag, err: err}
	}
	return n, err
}

// rawRoundTrip writes raw to a new connection to the request's host, reads
// one response, and for a response that announces Connection: close checks
// that the server really closes the connection.
func (t *caseTransport) rawRoundTrip(req *http.Request, raw []byte) (*http.Response, error) {
	conn, err := t.dialer.DialContext(req.Context(), "tcp", req.URL.Host)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	deadline := time.Now().Add(t.timeout)
	if d, ok := req.Context().Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	conn.SetDeadline(deadline)
	// Write and read at once: a server may answer (413) before it has read
	// the whole body.
	werr := make(chan error, 1)
	go func() {
		_, err := conn.Write(raw)
		werr <- err
	}()
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		return nil, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	if resp.Close {
		// The server said it closes: it must, now. Anything but EOF
		// within the deadline leaves resp.Close unset, which the verifier
		// counts.
		var one [1]byte
		if _, rerr := br.Read(one[:]); rerr != io.EOF {
			resp.Close = false
		}
	}
	conn.Close()
	if err := <-werr; err != nil && resp.StatusCode < 400 {
		// A refusal may stop reading the body; only a success must
		// have taken it all.
		return nil, err
	}
	return resp, nil
}
