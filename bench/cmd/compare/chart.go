package main

import (
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"

	"northd/bench/internal/benchutil"
)

// chart draws the median requests/s of every server on the routes rts as
// grouped bars, each labelled with its value, and saves it as a PNG. A
// server that did not run a route has no bar there.
func (r *results) chart(path string, rts []route) error {
	p := plot.New()
	p.Title.Text = "requests/s (median of rounds), higher is better"
	if r.o.parallel {
		p.Title.Text += "; parallel: servers and wrk on every CPU"
	}
	p.Y.Label.Text = "requests/s"
	p.Y.Min = 0
	p.Legend.Top = true
	p.Legend.Left = false

	names := make([]string, len(rts))
	for i, rt := range rts {
		names[i] = rt.title
	}
	// The servers that ran any of rts, each with its colour in every
	// chart of the report (by its place among all the servers).
	var servers []*running
	var colours []int
	for i, s := range r.servers {
		for _, rt := range rts {
			if len(r.runs[rt.name][s.spec.name]) > 0 {
				servers, colours = append(servers, s), append(colours, i)
				break
			}
		}
	}
	n := len(servers)
	width := vg.Points(float64(min(90, 440/max(1, n*len(rts)))))
	var top float64
	for i, s := range servers {
		vals := make(plotter.Values, len(rts))
		labels := plotter.XYLabels{}
		for j, rt := range rts {
			vals[j] = benchutil.Median(field(r.runs[rt.name][s.spec.name], rps))
			top = max(top, vals[j])
		}
		bars, err := plotter.NewBarChart(vals, width)
		if err != nil {
			return err
		}
		bars.Color = plotutil.Color(colours[i])
		bars.LineStyle.Width = 0
		bars.Offset = vg.Length(float64(i)-float64(n-1)/2) * width
		p.Add(bars)
		p.Legend.Add(s.spec.name, bars)

		// value labels just above each bar
		for j := range rts {
			labels.XYs = append(labels.XYs, plotter.XY{X: float64(j), Y: vals[j]})
			label := benchutil.Kilo(vals[j])
			if vals[j] == 0 {
				label = "" // not run there
			}
			labels.Labels = append(labels.Labels, label)
		}
		l, err := plotter.NewLabels(labels)
		if err != nil {
			return err
		}
		for k := range l.TextStyle {
			l.TextStyle[k].Font.Size = vg.Points(7)
			l.TextStyle[k].XAlign = -0.5
			l.TextStyle[k].YAlign = 0
		}
		l.Offset.X = bars.Offset
		l.Offset.Y = vg.Points(1)
		p.Add(l)
	}
	p.Y.Max = top * 1.35 // room for the legend
	p.NominalX(names...)
	return p.Save(vg.Points(720), vg.Points(380), path)
}
