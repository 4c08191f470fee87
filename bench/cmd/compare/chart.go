package main

import (
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// chart draws the median requests/s of every server on every route as
// grouped bars, each labelled with its value, and saves it as a PNG.
func (r *results) chart(path string) error {
	p := plot.New()
	p.Title.Text = "requests/s (median of rounds), higher is better"
	p.Y.Label.Text = "requests/s"
	p.Y.Min = 0
	p.Legend.Top = true
	p.Legend.Left = false

	names := make([]string, len(r.routes))
	for i, rt := range r.routes {
		names[i] = rt.title
	}
	n := len(r.servers)
	width := vg.Points(float64(min(90, 440/max(1, n*len(r.routes)))))
	var top float64
	for i, s := range r.servers {
		vals := make(plotter.Values, len(r.routes))
		labels := plotter.XYLabels{}
		for j, rt := range r.routes {
			vals[j] = median(field(r.runs[rt.name][s.spec.name], rps))
			top = max(top, vals[j])
		}
		bars, err := plotter.NewBarChart(vals, width)
		if err != nil {
			return err
		}
		bars.Color = plotutil.Color(i)
		bars.LineStyle.Width = 0
		bars.Offset = vg.Length(float64(i)-float64(n-1)/2) * width
		p.Add(bars)
		p.Legend.Add(s.spec.name, bars)

		// value labels just above each bar
		for j := range r.routes {
			labels.XYs = append(labels.XYs, plotter.XY{X: float64(j), Y: vals[j]})
			labels.Labels = append(labels.Labels, kilo(vals[j]))
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
