package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"
)

// eventsReport is the JSON report loadtest events writes (-out).
type eventsReport struct {
	Peer                  string     `json:"peer"`
	Mode                  string     `json:"mode"`
	Streams               int        `json:"streams"`
	Published             int64      `json:"published"`
	Delivered             int64      `json:"delivered"`
	Seconds               float64    `json:"seconds"`
	Latency               *quantiles `json:"publish_to_receive_seconds,omitempty"`
	ServerCPUSeconds      float64    `json:"server_cpu_seconds"`
	StoreCPUSeconds       float64    `json:"store_cpu_seconds"`
	DeliveredPerCPUSecond float64    `json:"delivered_per_cpu_second"`
	RSSPerStream          float64    `json:"rss_bytes_per_stream"`
	AskedRate             float64    `json:"asked_rate"`
	PublishSeconds        float64    `json:"publish_seconds"`
	PublishedShare        float64    `json:"published_share"`
	PublishesLate         int64      `json:"publishes_late"`
	ServerWrites          int64      `json:"server_writes"`
	WritesPerDelivery     float64    `json:"writes_per_delivery"`
	ServerRSSBytes        int64      `json:"server_rss_bytes"`
	Problems              []string   `json:"problems,omitempty"`
}

// quantiles of publish-to-receive, in seconds.
type quantiles struct {
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p99.9"`
	Max  float64 `json:"max"`
}

// latency is the report's quantiles, zero when it has none.
func (r eventsReport) latency() quantiles {
	if r.Latency == nil {
		return quantiles{}
	}
	return *r.Latency
}

// runTimeout bounds one run of loadtest events: the run itself, the
// streams' opening and loadtest's own minute of waiting for the last
// deliveries, with room to spare on a shared machine.
func runTimeout(d time.Duration) time.Duration { return d + 3*time.Minute }

// runLoadtest runs loadtest events for r and reads its report. A run in
// which an event was lost, duplicated or out of order (loadtest exits 1
// and lists its problems) is an error that ends the comparison: a figure
// from a run that did not deliver everything is not a figure.
func runLoadtest(pin pinning, r loadRun) (eventsReport, command, error) {
	c := loadtestCommand(pin, r)
	os.Remove(r.out)
	p, err := startProc("loadtest events -peer "+r.peer, c)
	if err != nil {
		return eventsReport{}, c, err
	}
	defer p.stop()
	select {
	case <-p.exited:
	case <-time.After(runTimeout(r.duration)):
		return eventsReport{}, c, fmt.Errorf("loadtest events against %s did not end within %v: %s\n%s",
			r.peer, runTimeout(r.duration), c, lastLines(p.output(), 20))
	}
	code := p.cmd.ProcessState.ExitCode()
	rep, readErr := readReport(r.out)
	switch {
	case code == 0 && readErr == nil:
		return rep, c, nil
	case readErr == nil && len(rep.Problems) > 0:
		return rep, c, fmt.Errorf("loadtest events against %s found %d problems (every event must reach every stream once, in order); the run's report is %s:\n%s\ncommand: %s",
			r.peer, len(rep.Problems), r.out, problemList(rep.Problems, 20), c)
	default:
		return rep, c, fmt.Errorf("loadtest events against %s failed (exit status %d): %s\ncommand: %s",
			r.peer, code, lastLines(p.output(), 20), c)
	}
}

func readReport(path string) (eventsReport, error) {
	var rep eventsReport
	b, err := os.ReadFile(path)
	if err != nil {
		return rep, err
	}
	if err := json.Unmarshal(b, &rep); err != nil {
		return rep, fmt.Errorf("%s: %v", path, err)
	}
	return rep, nil
}

// problemList is the first n problems, one a line, and how many more.
func problemList(ps []string, n int) string {
	var b strings.Builder
	for i, p := range ps {
		if i == n {
			fmt.Fprintf(&b, "  … and %d more\n", len(ps)-n)
			break
		}
		fmt.Fprintf(&b, "  %s\n", p)
	}
	return strings.TrimRight(b.String(), "\n")
}

// lastLines is the last n lines of s (loadtest prints its JSON report on
// stdout before its error lines, which are the part that says what broke).
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
