package main

import (
	"encoding/json"
	"fmt"

	"northd/bench/internal/benchutil"
)

// The two servers compared, by the names loadtest events' -peer takes.
const (
	northd     = "northd"
	centrifugo = "centrifugo"
)

// peers are the servers in their order of the first round.
var peers = []string{northd, centrifugo}

// The engines: where each server keeps its events. memory is each
// server's own process; redis is a throwaway redis-server (northd's Redis
// Streams, Centrifugo's Redis engine).
const (
	memoryEngine = "memory"
	redisEngine  = "redis"
)

var engines = []string{memoryEngine, redisEngine}

// load is one publishing load: streams open, events published per second
// in batches of batch.
type load struct {
	streams, rate, batch int
}

// MarshalJSON writes the load's figures and title in the JSON file.
func (l load) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Streams int    `json:"streams"`
		Rate    int    `json:"rate"`
		Batch   int    `json:"batch"`
		Title   string `json:"title"`
	}{l.streams, l.rate, l.batch, l.title()})
}

// UnmarshalJSON reads a load as MarshalJSON writes it.
func (l *load) UnmarshalJSON(b []byte) error {
	var v struct{ Streams, Rate, Batch int }
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*l = load{streams: v.Streams, rate: v.Rate, batch: v.Batch}
	return nil
}

// name is the load's short name, for file names and JSON keys.
func (l load) name() string {
	return fmt.Sprintf("%ds-%dr-%db", l.streams, l.rate, l.batch)
}

// title is the load as the report and the chart say it.
func (l load) title() string {
	return fmt.Sprintf("%s streams, %s events/s, batches of %d", benchutil.Commas(float64(l.streams)), benchutil.Commas(float64(l.rate)), l.batch)
}

// shortTitle is the load on the chart's axis.
func (l load) shortTitle() string {
	return fmt.Sprintf("%s streams, %s/s", benchutil.Commas(float64(l.streams)), benchutil.Commas(float64(l.rate)))
}

// The loads of the issue: 100 streams at three rates in batches of 10, and
// 1,000 streams in batches of 100.
var defaultLoads = []load{
	{streams: 100, rate: 1000, batch: 10},
	{streams: 100, rate: 5000, batch: 10},
	{streams: 100, rate: 10000, batch: 10},
	{streams: 1000, rate: 1000, batch: 100},
}

// quickLoad is -quick's one load.
var quickLoad = defaultLoads[0]

// idleStreams are the idle streams each server holds for its RSS per stream.
const idleStreams = 1000

// orderOf is the servers' order in round (1, 2, …): as peers in odd rounds,
// reversed in even ones, so that neither server is always measured just
// after the other has loaded the machine.
func orderOf(round int) []string {
	if round%2 == 1 {
		return []string{peers[0], peers[1]}
	}
	return []string{peers[1], peers[0]}
}
