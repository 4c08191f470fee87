package main

import (
	"fmt"
	"image/color"
	"math"
	"os"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

	"northd/bench/internal/benchutil"
)

// series is one server on one engine: a bar in every load's group.
type series struct {
	engine, peer string
	colour       color.Color
}

// chartSeries: northd in blues, Centrifugo in oranges, the memory engine
// dark and Redis light, so that a glance pairs the servers of an engine.
var chartSeries = []series{
	{memoryEngine, northd, color.RGBA{R: 0x1f, G: 0x4e, B: 0x9a, A: 0xff}},
	{memoryEngine, centrifugo, color.RGBA{R: 0xd9, G: 0x5f, B: 0x02, A: 0xff}},
	{redisEngine, northd, color.RGBA{R: 0x7f, G: 0xa8, B: 0xe0, A: 0xff}},
	{redisEngine, centrifugo, color.RGBA{R: 0xf5, G: 0xb0, B: 0x70, A: 0xff}},
}

func (s series) label() string {
	name := s.peer
	if s.peer == centrifugo {
		name = "Centrifugo"
	}
	return name + ", " + s.engine
}

// chart draws two panels into one PNG: the median p99 per load (lower is
// better) and the median deliveries per server CPU-second (higher is
// better), each a group of bars per load, one bar per server and engine.
func chart(path string, cs []comparison) error {
	var ls []load
	for _, c := range cs {
		if !containsLoad(ls, c.Load) {
			ls = append(ls, c.Load)
		}
	}
	value := func(s series, l load, f func(peerSummary) float64) float64 {
		for _, c := range cs {
			if c.Engine == s.engine && c.Load == l {
				if s.peer == northd {
					return f(c.Northd)
				}
				return f(c.Centrifugo)
			}
		}
		return 0
	}
	top, err := barPanel("p99 publish-to-receive, ms (median of rounds, log scale), lower is better", "ms", ls,
		func(s series, l load) float64 {
			return 1000 * value(s, l, func(p peerSummary) float64 { return p.P99 })
		},
		axis{log: true, format: func(x float64) string { return fmt.Sprintf("%.2f", x) }, tick: func(x float64) string { return fmt.Sprintf("%g", x) }})
	if err != nil {
		return err
	}
	bottom, err := barPanel("deliveries per server CPU-second (median of rounds), higher is better", "deliveries / CPU-s", ls,
		func(s series, l load) float64 {
			return value(s, l, func(p peerSummary) float64 { return p.DeliveredPerCPU })
		},
		axis{format: benchutil.Kilo, tick: benchutil.Kilo})
	if err != nil {
		return err
	}
	const w, h = 760, 820
	img := vgimg.New(vg.Points(w), vg.Points(h))
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: 2, Cols: 1, PadTop: vg.Points(6), PadBottom: vg.Points(6), PadX: vg.Points(6), PadY: vg.Points(18)}
	canvases := plot.Align([][]*plot.Plot{{top}, {bottom}}, tiles, dc)
	top.Draw(canvases[0][0])
	bottom.Draw(canvases[1][0])
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func containsLoad(ls []load, l load) bool {
	for _, x := range ls {
		if x == l {
			return true
		}
	}
	return false
}

// axis says how a panel's values read: format labels the bars, tick the
// axis; on a log axis the p99s of 100 and of 1,000 streams, a hundred
// times apart, are all readable.
type axis struct {
	log          bool
	format, tick func(float64) string
}

// barPanel is one panel: for each load a group of bars, one per series,
// each labelled with its value, no bar where a series did not run.
func barPanel(title, yLabel string, ls []load, value func(series, load) float64, ax axis) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = title
	p.Y.Label.Text = yLabel
	p.Legend.Top = true
	p.Legend.Left = false
	names := make([]string, len(ls))
	for i, l := range ls {
		names[i] = l.shortTitle()
	}
	vals := make([]plotter.Values, len(chartSeries))
	var highest, lowest float64
	for i, s := range chartSeries {
		vals[i] = make(plotter.Values, len(ls))
		for j, l := range ls {
			v := value(s, l)
			vals[i][j] = v
			highest = max(highest, v)
			if v > 0 && (lowest == 0 || v < lowest) {
				lowest = v
			}
		}
	}
	// A log axis cannot start at 0: the bars stand on the power of ten
	// below the lowest value instead.
	floor := 0.0
	logScale := ax.log && lowest > 0
	if logScale {
		floor = math.Pow(10, math.Floor(math.Log10(lowest)))
	}
	n := len(chartSeries)
	width := vg.Points(float64(min(40, 600/max(1, n*len(ls)))))
	for i, s := range chartSeries {
		heights := make(plotter.Values, len(ls))
		labels := plotter.XYLabels{}
		for j, v := range vals[i] {
			text, y := ax.format(v), v
			if v == 0 {
				text, y = "", max(floor, 0) // not run
			} else {
				heights[j] = v - floor
			}
			labels.XYs = append(labels.XYs, plotter.XY{X: float64(j), Y: y})
			labels.Labels = append(labels.Labels, text)
		}
		bars, err := plotter.NewBarChart(heights, width)
		if err != nil {
			return nil, err
		}
		offset := vg.Length(float64(i)-float64(n-1)/2) * width
		if logScale {
			ground := make(plotter.Values, len(ls))
			for j := range ground {
				ground[j] = floor
			}
			base, err := plotter.NewBarChart(ground, width)
			if err != nil {
				return nil, err
			}
			base.Offset = offset
			bars.StackOn(base) // not drawn itself: only where the bars start
		}
		bars.Offset = offset
		bars.Color = s.colour
		bars.LineStyle.Width = 0
		p.Add(bars)
		p.Legend.Add(s.label(), bars)
		l, err := plotter.NewLabels(labels)
		if err != nil {
			return nil, err
		}
		for k := range l.TextStyle {
			l.TextStyle[k].Font.Size = vg.Points(7)
			l.TextStyle[k].XAlign = -0.5
			l.TextStyle[k].YAlign = 0
		}
		l.Offset.X = offset
		l.Offset.Y = vg.Points(1)
		p.Add(l)
	}
	var ticker plot.Ticker = plot.DefaultTicks{}
	if logScale {
		p.Y.Scale = plot.LogScale{}
		ticker = plot.LogTicks{Prec: -1}
		p.Y.Min, p.Y.Max = floor, highest*6 // room for the legend
	} else {
		p.Y.Min, p.Y.Max = 0, max(highest, 1e-9)*1.4
	}
	p.Y.Tick.Marker = plot.TickerFunc(func(lo, hi float64) []plot.Tick {
		ts := ticker.Ticks(lo, hi)
		for i := range ts {
			if ts[i].Label != "" {
				ts[i].Label = ax.tick(ts[i].Value)
			}
		}
		return ts
	})
	p.NominalX(names...)
	return p, nil
}
