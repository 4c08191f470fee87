package eventshttp

import (
	"bytes"
	"io"
	"log/slog"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"northd/internal/events/memory"
	storememory "northd/internal/store/memory"
)

// Events are counted by type for the first 100 types of a subsystem, and
// the rest under type="other": a publisher inventing types cannot grow
// the metrics without bound. Each answer names the events' ids.
func TestPublishCountsAtMostAHundredTypes(t *testing.T) {
	set := metrics.NewSet()
	targets := []Target{
		{Name: "a", Label: `subsystem="a"`, Store: storememory.New(storememory.Options{Max: 10, TokenTTL: time.Hour}), Events: memory.New(memory.Options{Retention: 1000})},
		{Name: "b", Label: `subsystem="b"`, Store: storememory.New(storememory.Options{Max: 10, TokenTTL: time.Hour}), Events: memory.New(memory.Options{Retention: 1000})},
	}
	h := Publish(targets, 1024, set, slog.New(slog.NewTextHandler(io.Discard, nil)))
	answer := regexp.MustCompile(`^\{"code":0,"events":\[\{"id":"[^"]+","seq":1\},\{"id":"[^"]+","seq":2\}\]\}\n$`)
	for i := range 102 {
		typ := "t" + strconv.Itoa(i)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("POST", "/north/events?subsystem=b", strings.NewReader(`[{"type":"`+typ+`"},{"type":"`+typ+`"}]`)))
		if w.Code != 202 || (i == 0 && !answer.MatchString(w.Body.String())) {
			t.Fatalf("publishing %s: %d %q", typ, w.Code, w.Body)
		}
	}
	var b bytes.Buffer
	set.WritePrometheus(&b)
	for _, want := range []string{
		`northd_events_published_total{subsystem="b",type="t0"} 2`,
		`northd_events_published_total{subsystem="b",type="t99"} 2`,
		`northd_events_published_total{subsystem="b",type="other"} 4`,
	} {
		if !strings.Contains("\n"+b.String(), "\n"+want+"\n") {
			t.Errorf("the metrics lack %s:\n%s", want, b.String())
		}
	}
	if strings.Contains(b.String(), `type="t100"`) || strings.Contains(b.String(), `subsystem="a"`) {
		t.Errorf("counted past the hundredth type, or in the subsystem not published to:\n%s", b.String())
	}
}
