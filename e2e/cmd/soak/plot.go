package main

import (
	"fmt"
	"html"
	"strings"
)

// plot draws three panels over time, sharing the x axis: the webhook's
// resident memory, its goroutines, and the p99 latency of each sample.
func plot(samples []sample, title string) []byte {
	const (
		width, panelH, left, right, top, gap = 760, 150, 70, 20, 40, 40
	)
	panels := []struct {
		name, unit string
		value      func(sample) float64
		color      string
	}{
		{"webhook RSS", "MiB", func(s sample) float64 { return s.RSSBytes / (1 << 20) }, "#1f77b4"},
		{"webhook goroutines", "", func(s sample) float64 { return s.Goroutines }, "#2ca02c"},
		{"p99 latency per sample", "ms", func(s sample) float64 { return float64(s.P99.Microseconds()) / 1000 }, "#d62728"},
	}
	height := top + len(panels)*(panelH+gap) + 10
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="11">`+"\n", width, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/><text x="%d" y="20" font-size="13">irsa-webhook soak: %s</text>`+"\n", left, html.EscapeString(title))
	tMax := 1.0
	if n := len(samples); n > 0 {
		tMax = max(samples[n-1].At.Minutes(), 1e-9)
	}
	plotW := float64(width - left - right)
	for i, p := range panels {
		y0 := float64(top + i*(panelH+gap))
		vMax := 0.0
		for _, s := range samples {
			vMax = max(vMax, p.value(s))
		}
		if vMax == 0 {
			vMax = 1
		}
		vMax *= 1.1
		fmt.Fprintf(&b, `<text x="%d" y="%.0f">%s</text>`+"\n", left, y0-6, html.EscapeString(strings.TrimSpace(p.name+" ("+p.unit+")")))
		fmt.Fprintf(&b, `<rect x="%d" y="%.0f" width="%.0f" height="%d" fill="none" stroke="#999"/>`+"\n", left, y0, plotW, panelH)
		for _, f := range []float64{0, 0.5, 1} {
			y := y0 + float64(panelH)*(1-f)
			fmt.Fprintf(&b, `<text x="%d" y="%.0f" text-anchor="end">%.4g</text>`+"\n", left-5, y+4, vMax*f)
		}
		var pts []string
		for _, s := range samples {
			x := float64(left) + plotW*s.At.Minutes()/tMax
			y := y0 + float64(panelH)*(1-p.value(s)/vMax)
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x, y))
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="1.5" points="%s"/>`+"\n", p.color, strings.Join(pts, " "))
		fmt.Fprintf(&b, `<text x="%d" y="%.0f">0</text><text x="%.0f" y="%.0f" text-anchor="end">%.1f min</text>`+"\n",
			left, y0+float64(panelH)+14, float64(left)+plotW, y0+float64(panelH)+14, tMax)
	}
	b.WriteString("</svg>\n")
	return []byte(b.String())
}
