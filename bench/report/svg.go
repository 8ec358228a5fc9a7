package main

import (
	"fmt"
	"html"
	"math"
	"strings"
)

// The charts are plain SVG written here (no chart library): a scatter of archive size against pack
// speed, and bars of read throughput through the mount.

const (
	arcColor  = "#c0392b"
	arcLight  = "#eba59d"
	peerColor = "#34495e"
	peerLight = "#a9b7c6"
	font      = `font-family="sans-serif"`
)

type svg struct{ b strings.Builder }

func newSVG(w, h int) *svg {
	s := &svg{}
	s.f(`<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" %s font-size="12">`+"\n", w, h, w, h, font)
	s.f(`<rect width="%d" height="%d" fill="white"/>`+"\n", w, h)
	return s
}

func (s *svg) f(format string, a ...any) { fmt.Fprintf(&s.b, format, a...) }

func (s *svg) text(x, y float64, anchor, extra, t string) {
	s.f(`<text x="%.1f" y="%.1f" text-anchor="%s"%s>%s</text>`+"\n", x, y, anchor, extra, html.EscapeString(t))
}

func (s *svg) line(x1, y1, x2, y2 float64, stroke string) {
	s.f(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s"/>`+"\n", x1, y1, x2, y2, stroke)
}

func (s *svg) end() string { s.f("</svg>\n"); return s.b.String() }

// logTicks are 1, 2, 5 × 10^k between lo and hi.
func logTicks(lo, hi float64) []float64 {
	var t []float64
	for e := math.Floor(math.Log10(lo)); e <= math.Ceil(math.Log10(hi)); e++ {
		for _, m := range []float64{1, 2, 5} {
			v := m * math.Pow(10, e)
			if v >= lo && v <= hi {
				t = append(t, v)
			}
		}
	}
	return t
}

// linTicks are about n round steps from 0 to hi.
func linTicks(hi float64, n int) []float64 {
	raw := hi / float64(n)
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step := mag
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*mag >= raw {
			step = m * mag
			break
		}
	}
	var t []float64
	// up to the first tick at or above hi, so that the axis holds every value
	for v := 0.0; ; v += step {
		t = append(t, v)
		if v >= hi-step/1e6 {
			break
		}
	}
	return t
}

type box struct{ x0, y0, x1, y1 float64 }

func (a box) overlaps(b box) bool { return a.x0 < b.x1 && b.x0 < a.x1 && a.y0 < b.y1 && b.y0 < a.y1 }

// packChart: one point per tool, x = pack speed (MB/s of file content, log scale), y = archive size.
func (d *data) packChart(treeID string) string {
	tr, _ := d.tree(treeID)
	type pt struct {
		label string
		arc   bool
		speed float64
		mb    float64
	}
	var pts []pt
	for _, t := range d.tools {
		s, sz := d.median(treeID, t.id, "pack_s"), d.median(treeID, t.id, "size_b")
		if math.IsNaN(s) || math.IsNaN(sz) || s <= 0 {
			continue
		}
		pts = append(pts, pt{t.label, t.kind == "arc", tr.bytes / 1e6 / s, sz / 1e6})
	}
	const W, H, L, R, T, B = 760, 460, 70, 30, 50, 60
	s := newSVG(W, H)
	s.text(W/2, 22, "middle", ` font-size="15" font-weight="bold"`,
		fmt.Sprintf("%s (%.0f MB, %s files): archive size vs pack speed", treeTitle[treeID], tr.bytes/1e6, thousands(tr.files)))
	s.text(W/2, 40, "middle", ` fill="#555"`, fmt.Sprintf("median of %s run(s), %s cores; lower right is better", d.meta["runs"], d.meta["cores"]))
	if len(pts) == 0 {
		s.text(W/2, H/2, "middle", "", "no pack figures in this run")
		return s.end()
	}
	lo, hi, top := math.Inf(1), 0.0, 0.0
	for _, p := range pts {
		lo, hi, top = math.Min(lo, p.speed), math.Max(hi, p.speed), math.Max(top, p.mb)
	}
	lo, hi = lo/1.5, hi*1.5
	yt := linTicks(top*1.1, 5)
	ymax := yt[len(yt)-1]
	px := func(v float64) float64 {
		return L + (math.Log(v)-math.Log(lo))/(math.Log(hi)-math.Log(lo))*(W-L-R)
	}
	py := func(v float64) float64 { return H - B - v/ymax*(H-T-B) }
	for _, v := range logTicks(lo, hi) {
		s.line(px(v), T, px(v), H-B, "#e5e5e5")
		s.text(px(v), H-B+16, "middle", "", fmt.Sprintf("%g", v))
	}
	for _, v := range yt {
		s.line(L, py(v), W-R, py(v), "#e5e5e5")
		s.text(L-6, py(v)+4, "end", "", fmt.Sprintf("%g", v))
	}
	s.line(L, H-B, W-R, H-B, "#333")
	s.line(L, T, L, H-B, "#333")
	s.text((L+W-R)/2, H-18, "middle", "", "pack speed, MB/s of file content (log scale)")
	s.f(`<text transform="translate(18,%d) rotate(-90)" text-anchor="middle">archive size, MB</text>`+"\n", (T+H-B)/2)
	var placed []box
	for _, p := range pts {
		x, y := px(p.speed), py(p.mb)
		placed = append(placed, box{x - 5, y - 5, x + 5, y + 5})
	}
	for _, p := range pts {
		x, y := px(p.speed), py(p.mb)
		col := peerColor
		if p.arc {
			col = arcColor
		}
		s.f(`<circle cx="%.1f" cy="%.1f" r="5" fill="%s"/>`+"\n", x, y, col)
		wd := 6.6 * float64(len(p.label))
		// try right, left, above, below; keep the first spot that overlaps nothing placed
		cands := []struct {
			b      box
			anchor string
			tx, ty float64
		}{
			{box{x + 8, y - 9, x + 8 + wd, y + 4}, "start", x + 8, y + 4},
			{box{x - 8 - wd, y - 9, x - 8, y + 4}, "end", x - 8, y + 4},
			{box{x - wd/2, y - 22, x + wd/2, y - 9}, "middle", x, y - 10},
			{box{x - wd/2, y + 8, x + wd/2, y + 21}, "middle", x, y + 19},
			{box{x + 8, y + 4, x + 8 + wd, y + 17}, "start", x + 8, y + 17},
			{box{x + 8, y - 22, x + 8 + wd, y - 9}, "start", x + 8, y - 9},
		}
		c := cands[0]
		for _, k := range cands {
			free := k.b.x0 >= L && k.b.x1 <= W-2 && k.b.y0 >= T-10
			for _, q := range placed {
				if free && k.b.overlaps(q) {
					free = false
				}
			}
			if free {
				c = k
				break
			}
		}
		placed = append(placed, c.b)
		weight := ""
		if p.arc {
			weight = ` font-weight="bold"`
		}
		s.text(c.tx, c.ty, c.anchor, fmt.Sprintf(` fill="%s"%s`, col, weight), p.label)
	}
	return s.end()
}

// readChart: per mounted tool, the whole tree read through the mount, cold and warm, in MB/s.
func (d *data) readChart(treeID string) string {
	tr, _ := d.tree(treeID)
	type row struct {
		label      string
		arc        bool
		cold, warm float64
	}
	var rows []row
	var missing []string
	for _, t := range d.tools {
		if t.mount == "" {
			continue
		}
		r := row{fmt.Sprintf("%s (%s)", t.label, mountName[t.mount]), t.kind == "arc",
			tr.bytes / 1e6 / d.median(treeID, t.id, "cold_s"), tr.bytes / 1e6 / d.median(treeID, t.id, "warm_s")}
		if math.IsNaN(r.cold) && math.IsNaN(r.warm) {
			missing = append(missing, r.label)
			continue
		}
		rows = append(rows, r)
	}
	const W, L, R, T, bar, gap = 760, 250, 100, 62, 14, 14
	H := T + len(rows)*(2*bar+gap) + 60
	if len(missing) > 0 {
		H += 18
	}
	s := newSVG(W, H)
	s.text(W/2, 22, "middle", ` font-size="15" font-weight="bold"`,
		fmt.Sprintf("%s: reading the whole tree through the mount", treeTitle[treeID]))
	s.text(W/2, 40, "middle", ` fill="#555"`,
		fmt.Sprintf("tar of %.0f MB in %s files, MB/s; cold = after dropping the page cache; median of %s run(s); longer is better",
			tr.bytes/1e6, thousands(tr.files), d.meta["runs"]))
	top := 0.0
	for _, r := range rows {
		for _, v := range []float64{r.cold, r.warm} {
			if !math.IsNaN(v) && !math.IsInf(v, 0) {
				top = math.Max(top, v)
			}
		}
	}
	if top == 0 {
		s.text(W/2, float64(H)/2, "middle", "", "no read figures in this run")
		return s.end()
	}
	xt := linTicks(top*1.05, 5)
	xmax := xt[len(xt)-1]
	px := func(v float64) float64 { return L + v/xmax*(W-L-R) }
	bottom := float64(T + len(rows)*(2*bar+gap))
	for _, v := range xt {
		s.line(px(v), T-6, px(v), bottom, "#e5e5e5")
		s.text(px(v), bottom+16, "middle", "", fmt.Sprintf("%g", v))
	}
	s.text((L+W-R)/2, bottom+34, "middle", "", "MB/s of file content")
	y := float64(T)
	for _, r := range rows {
		dark, light := peerColor, peerLight
		weight := ""
		if r.arc {
			dark, light, weight = arcColor, arcLight, ` font-weight="bold"`
		}
		s.text(L-8, y+bar+4, "end", weight, r.label)
		for i, v := range []float64{r.cold, r.warm} {
			col, name := dark, "cold"
			if i == 1 {
				col, name = light, "warm"
			}
			by := y + float64(i*bar)
			if math.IsNaN(v) || math.IsInf(v, 0) {
				s.text(L+4, by+bar-3, "start", ` fill="#777" font-size="11"`, name+": not measured")
				continue
			}
			s.f(`<rect x="%d" y="%.1f" width="%.1f" height="%d" fill="%s"/>`+"\n", L, by, px(v)-L, bar-1, col)
			s.text(px(v)+4, by+bar-3, "start", ` font-size="11"`, fmt.Sprintf("%s %.0f", name, v))
		}
		y += 2*bar + gap
	}
	s.line(L, T-6, L, bottom, "#333")
	if len(missing) > 0 {
		s.text(W/2, float64(H)-8, "middle", ` fill="#555" font-size="11"`,
			"not shown (whole-tree read not measured): "+strings.Join(missing, ", "))
	}
	return s.end()
}
