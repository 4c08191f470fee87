package requestmetrics

import (
	"bytes"
	"net"
	"strings"
	"testing"

	"github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp"
)

func answered(status int) *fasthttp.RequestCtx {
	ctx := new(fasthttp.RequestCtx)
	ctx.Init(&fasthttp.Request{}, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}, nil)
	ctx.SetStatusCode(status)
	return ctx
}

// Requests are counted by route and status, each series appearing at its
// first request; statuses northd does not answer go under "other"; an
// unread request has no duration; logins are counted apart.
func TestCounterSeries(t *testing.T) {
	set := metrics.NewSet()
	c := New(set, `subsystem="a"`, []string{"home", "login", "unreadable"})
	c.Observe(0, answered(200))
	c.Observe(0, answered(200))
	c.Observe(1, answered(418))
	c.ObserveUnread(2, answered(400))
	c.Login(answered(200))
	var b bytes.Buffer
	set.WritePrometheus(&b)
	for _, line := range []string{
		`northd_requests_total{subsystem="a",route="home",status="200"} 2`,
		`northd_requests_total{subsystem="a",route="login",status="other"} 1`,
		`northd_requests_total{subsystem="a",route="unreadable",status="400"} 1`,
		`northd_request_duration_seconds_count{subsystem="a"} 3`,
		`northd_request_duration_seconds_bucket{subsystem="a",le="+Inf"} 3`,
		`northd_logins_total{subsystem="a"} 1`,
	} {
		if !strings.Contains("\n"+b.String(), "\n"+line+"\n") {
			t.Errorf("no line %s in\n%s", line, b.String())
		}
	}
	if strings.Contains(b.String(), `route="home",status="404"`) {
		t.Error("a series listed before its first request")
	}
}

// Counting a request allocates nothing once its series is listed.
func TestObserveAllocatesNothing(t *testing.T) {
	c := New(metrics.NewSet(), `subsystem="a"`, []string{"home"})
	ctx := answered(200)
	c.Observe(0, ctx)
	if n := testing.AllocsPerRun(100, func() { c.Observe(0, ctx); c.Login(ctx) }); n != 0 {
		t.Errorf("Observe allocates %v times, want 0", n)
	}
}
