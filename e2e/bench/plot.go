package bench

import (
	"fmt"
	"image/color"
	"io"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// WriteLatencyPlot draws p50 and p99 latency against offered load for every
// target and keep-alive setting of steps, as SVG. Fixed-rate steps are
// placed at their offered rate, saturation steps at their throughput.
func WriteLatencyPlot(w io.Writer, steps []LoadStep) error {
	p := plot.New()
	p.Title.Text = "Admission latency vs offered load (TLS, 127.0.0.1)"
	p.X.Label.Text = "offered load (requests/s; last point: saturation throughput)"
	p.Y.Label.Text = "latency (ms, log scale)"
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	p.Legend.Top = true
	p.Legend.Left = true
	p.Add(plotter.NewGrid())

	type series struct {
		target    string
		keepAlive bool
	}
	colors := map[string]color.Color{
		"irsa-webhook": color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff},
		"floor":        color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff},
	}
	var order []series
	seen := map[series]bool{}
	for _, s := range steps {
		k := series{s.Target, s.KeepAlive}
		if !seen[k] {
			seen[k] = true
			order = append(order, k)
		}
	}
	for _, k := range order {
		for _, q := range []struct {
			name string
			get  func(LoadStep) float64
			dash []vg.Length
		}{
			{"p99", func(s LoadStep) float64 { return s.P99.Seconds() * 1000 }, nil},
			{"p50", func(s LoadStep) float64 { return s.P50.Seconds() * 1000 }, []vg.Length{vg.Points(4), vg.Points(3)}},
		} {
			var pts plotter.XYs
			for _, s := range steps {
				if s.Target != k.target || s.KeepAlive != k.keepAlive || s.OK == 0 {
					continue
				}
				x := float64(s.Rate)
				if s.Rate == 0 {
					x = s.Throughput
				}
				if y := q.get(s); y > 0 && x > 0 {
					pts = append(pts, plotter.XY{X: x, Y: y})
				}
			}
			if len(pts) == 0 {
				continue
			}
			line, points, err := plotter.NewLinePoints(pts)
			if err != nil {
				return fmt.Errorf("plot %s: %w", k.target, err)
			}
			c := colors[k.target]
			if c == nil {
				c = color.Black
			}
			line.Color, points.Color = c, c
			line.Dashes = q.dash
			if !k.keepAlive {
				line.Width = vg.Points(0.6)
				points.Shape = draw.BoxGlyph{}
			} else {
				line.Width = vg.Points(1.6)
				points.Shape = draw.CircleGlyph{}
			}
			p.Add(line, points)
			ka := "keep-alive"
			if !k.keepAlive {
				ka = "new connection each"
			}
			p.Legend.Add(fmt.Sprintf("%s %s, %s", k.target, q.name, ka), line, points)
		}
	}
	wt, err := p.WriterTo(9*vg.Inch, 5.5*vg.Inch, "svg")
	if err != nil {
		return fmt.Errorf("render plot: %w", err)
	}
	_, err = wt.WriteTo(w)
	return err
}
