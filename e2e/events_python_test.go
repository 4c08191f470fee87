package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"

	"northd/internal/testdeps"
)

// A client that is not Go: the integrator's guide's Python
// (docs/north-servers.md), standard library only, reads the stream and
// resumes from its last id.
func TestPythonClientReadsAndResumes(t *testing.T) {
	python := testdeps.Need(t, "python3", "python3")
	script, err := os.ReadFile("testdata/events_client.py")
	if err != nil {
		t.Fatal(err)
	}
	guide, err := os.ReadFile("../docs/north-servers.md")
	if err != nil {
		t.Fatal(err)
	}
	fn, _, _ := strings.Cut(string(script[strings.Index(string(script), "import json"):]), "\n\n\nif __name__")
	if !strings.Contains(string(guide), fn) {
		t.Fatalf("docs/north-servers.md's Python no longer holds testdata/events_client.py's events():\n%s", fn)
	}

	n := start(t, "-listen", "nms=127.0.0.1:0", "-admin", "127.0.0.1:0")
	listen, admin := n.Listen, n.Admin
	base := "http://" + listen[0]
	token := loginAs(t, listen[0], "north-1", "192.0.2.10")
	run := func(count, last string, publish func()) []string {
		t.Helper()
		args := []string{"testdata/events_client.py", base, token, count}
		if last != "" {
			args = append(args, last)
		}
		cmd := exec.Command(python, args...)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer cmd.Wait()
		t.Cleanup(func() { cmd.Process.Kill() })
		if publish != nil {
			testdeps.WaitFor(t, "the Python client's stream", func() bool {
				return testdeps.MetricValue(t, admin, `northd_event_streams_open{subsystem="nms"}`) == 1
			})
			publish()
		}
		var lines []string
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines = append(lines, sc.Text())
		}
		return lines
	}
	type event struct {
		ID        string          `json:"id"`
		Seq       uint64          `json:"seq"`
		Type      string          `json:"type"`
		Subsystem string          `json:"subsystem"`
		Data      json.RawMessage `json:"data"`
	}
	decode := func(line string) (string, event) {
		var pair [2]json.RawMessage
		var kind string
		var ev event
		if json.Unmarshal([]byte(line), &pair) != nil || json.Unmarshal(pair[0], &kind) != nil || json.Unmarshal(pair[1], &ev) != nil {
			t.Fatalf("the client printed %q", line)
		}
		// Python prints JSON with spaces after , and :.
		var compact bytes.Buffer
		json.Compact(&compact, ev.Data)
		ev.Data = compact.Bytes()
		return kind, ev
	}

	var ids []string
	lines := run("3", "", func() {
		ids = append(ids, published(t, admin, `{"type":"alarm.raised","data":{"text":"风扇故障\nrack 7"}}`))
		ids = append(ids, published(t, admin, `{"type":"notice","data":"two\nlines"}`))
		ids = append(ids, published(t, admin, `{"type":"n","data":3}`))
	})
	want := []struct{ kind, data string }{{"alarm.raised", `{"text":"风扇故障\nrack 7"}`}, {"notice", `"two\nlines"`}, {"n", `3`}}
	if len(lines) != 3 {
		t.Fatalf("the client printed %q", lines)
	}
	for i, line := range lines {
		kind, ev := decode(line)
		if kind != want[i].kind || ev.Type != want[i].kind || ev.ID != ids[i] || string(ev.Data) != want[i].data || ev.Subsystem != "nms" {
			t.Errorf("event %d: %s %+v, want %s %s %s", i, kind, ev, want[i].kind, ids[i], want[i].data)
		}
	}
	ids = append(ids, published(t, admin, `{"type":"n","data":4}`), published(t, admin, `{"type":"n","data":5}`))
	lines = run("2", ids[2], nil)
	if len(lines) != 2 {
		t.Fatalf("resumed, the client printed %q", lines)
	}
	for i, line := range lines {
		if _, ev := decode(line); ev.ID != ids[3+i] {
			t.Errorf("resumed event %d: %+v, want %s", i, ev, ids[3+i])
		}
	}
}
