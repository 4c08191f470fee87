package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"strings"
	"time"
)

// holdStreams logs n north servers in to r (each with its own ip) and
// keeps one event stream open for each, reading and discarding what comes
// (heartbeats), until compare ends: the streams are open while r is
// measured, so that a comparison with a build that has none shows what
// they cost the requests.
func holdStreams(r *running, n int) (stop func(), err error) {
	var conns []net.Conn
	stop = func() {
		for _, c := range conns {
			c.Close()
		}
	}
	for i := 0; i < n; i++ {
		body := fmt.Sprintf(`{"username":"stream-%d","password":"pw","ip":"10.77.%d.%d"}`, i, i/250, i%250+1)
		resp, err := r.client.Post(r.baseURL()+"/north/login", "application/json", strings.NewReader(body))
		if err != nil {
			stop()
			return nil, fmt.Errorf("login %d: %v", i, err)
		}
		answer, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		_, rest, ok := strings.Cut(string(answer), `"token": "`)
		if !ok || len(rest) < 32 {
			stop()
			return nil, fmt.Errorf("login %d: %d %s", i, resp.StatusCode, answer)
		}
		c, err := net.DialTimeout("tcp", addr(r.port), 5*time.Second)
		if err != nil {
			stop()
			return nil, err
		}
		conns = append(conns, c)
		fmt.Fprintf(c, "GET /north/events HTTP/1.1\r\nHost: northd\r\nAuthorization: Bearer %s\r\n\r\n", rest[:32])
		br := bufio.NewReader(c)
		status, err := br.ReadString('\n')
		if err != nil || !strings.Contains(status, " 200 ") {
			stop()
			return nil, fmt.Errorf("stream %d: %q %v (a northd without events?)", i, status, err)
		}
		go io.Copy(io.Discard, br)
	}
	return stop, nil
}
