package main

import (
	"fmt"
	"math"
	"strings"
)

var mountName = map[string]string{
	"arcmount":      "arcmount",
	"squashfuse_ll": "squashfuse_ll",
	"archivemount":  "archivemount",
	"restic":        "restic mount",
}

var treeTitle = map[string]string{
	"go":   "Go toolchains tree",
	"many": "Many small files",
}

func (d *data) markdown() string {
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	m := d.meta
	quick := m["mode"] == "quick"
	w("# arc: benchmark results\n\n")
	if quick {
		w("> **Quick run** (`make bench-quick`): a small tree, %s run(s) per figure. For the real comparison see `make bench`.\n\n", m["runs"])
	}
	w("Measured by `make %s` (bench/bench.sh; this file and the charts are written by bench/report from %s, nothing typed in by hand).\n\n",
		map[bool]string{true: "bench-quick", false: "bench"}[quick], "`"+d.rawName+"`")
	w("- date: %s; arc commit %s\n", m["date"], m["commit"])
	w("- machine: %s, %s cores, %s RAM, kernel %s (%s)\n", m["cpu"], m["cores"], m["ram"], m["kernel"], m["os"])
	w("- load average (1/5/15 min) at start: %s; at end: %s\n", m["load_start"], m["load_end"])
	w("- GPU: %s\n", m["gpu"])
	w("- every figure is the **median of %s run(s)**; every run's value is under \"All runs\" below\n", m["runs"])
	for _, t := range d.trees {
		w("- %s tree: `%s`, %s bytes of file content in %s files\n", t.id, t.path, thousands(t.bytes), thousands(t.files))
	}
	if s := m["elapsed_s"]; s != "" {
		w("- the whole run took %.0f s (%s)\n", num(s), d.phaseSummary())
	}
	w("\n![archive size against pack speed](chart-pack.svg)\n\n![read throughput through the mount](chart-read.svg)\n\n")

	for i, t := range d.trees {
		title := treeTitle[t.id]
		if i == 0 {
			title += " (main table)"
		}
		w("## %s: %s MB, %s files\n\n", title, fmt.Sprintf("%.0f", t.bytes/1e6), thousands(t.files))
		d.table(&b, t)
		w("\n")
	}
	w("How to read the tables:\n\n")
	w("- arc rows show `value (r×)` with r = arc's value / the best peer's value in this run, per column; the last row names that peer. For sizes, times, latencies and memory below 1 is better for arc; for MB/s above 1 is.\n")
	w("- size: bytes of the archive (borg and restic: the repository, without their cache); ratio: file content / size.\n")
	w("- pack and extract: wall time of the command, the tree (pack) or the archive (extract) in the page cache; extract writes to %s. Peak RSS: the largest single process of the command (GNU time -v).\n", orDash(m["extract_to"]))
	w("- mount: the tool named in the mount column; time from starting it until the tree's root lists; read cold/warm: `tar -cf - . | wc -c` of the whole tree through the mount after `sync; echo 3 > /proc/sys/vm/drop_caches`, then again (MB/s of file content); 4 KiB: bench/randread on a fresh mount after dropping caches (%s reads, open+pread+close each, fixed seed), then the same reads again; FUSE RSS: VmHWM of the process serving the mount over the run; RSS at mount: its VmHWM as soon as the root lists.\n", m["randread_n"])
	w("- archivemount: every open decompresses the tar from its start, so a whole-tree read would take hours: only mount time and %s random reads are measured.\n", m["slow_randread_n"])
	w("\n")

	if len(d.fails) > 0 {
		w("## Failures and checks that did not pass\n\n")
		for _, f := range d.fails {
			w("- %s\n", f)
		}
		w("\n")
	}
	w("## Skipped\n\n")
	if len(d.skipped) == 0 {
		w("Nothing.\n")
	}
	for _, s := range d.skipped {
		w("- %s\n", s)
	}
	w("\n## Commands\n\n`$SRC` is the tree, `$OUT` an empty folder for the archive, `$X` an empty folder to extract into, `$MNT` the mount point. Set-up commands (borg init, restic init) are not timed.\n\n")
	for _, t := range d.tools {
		for _, c := range d.cmds[t.id] {
			w("- %s, %s: `%s`\n", t.label, c[0], c[1])
		}
	}
	w("\n## Versions\n\n")
	for _, v := range d.versions {
		w("- %s\n", v)
	}
	w("\n## All runs\n\nEach run's value, in run order, with the 1-minute load average at the start of each run.\n\n")
	d.allRuns(&b)
	return b.String()
}

func (d *data) phaseSummary() string {
	var s []string
	for _, p := range d.phases {
		s = append(s, fmt.Sprintf("%s %s %.0f s", p[0], p[1], num(p[2])))
	}
	return strings.Join(s, ", ")
}

func (d *data) table(b *strings.Builder, tr tree) {
	w := func(format string, a ...any) { fmt.Fprintf(b, format, a...) }
	columns := columnsFor(tr.id)
	w("| tool | mount |")
	for _, c := range columns {
		w(" %s |", c.head)
	}
	w("\n|---|---|%s\n", strings.Repeat("---:|", len(columns)))
	for _, t := range d.tools {
		w("| %s | %s |", esc(t.label), orDash(mountName[t.mount]))
		for _, c := range columns {
			v := c.get(d, tr, t.id)
			cell := fmtv(c.format, v)
			if t.kind == "arc" && c.compare && cell != "–" {
				if bv, _ := d.best(c, tr); !math.IsNaN(bv) && bv != 0 {
					cell += fmt.Sprintf(" (%.2f×)", v/bv)
				}
			}
			w(" %s |", cell)
		}
		w("\n")
	}
	w("| *best peer* | |")
	for _, c := range columns {
		if !c.compare {
			w(" |")
			continue
		}
		bv, who := d.best(c, tr)
		if math.IsNaN(bv) {
			w(" – |")
			continue
		}
		w(" %s (%s) |", fmtv(c.format, bv), esc(who))
	}
	w("\n")
}

func (d *data) allRuns(b *strings.Builder) {
	metrics := []string{"size_b", "pack_s", "pack_rss_kib", "extract_s", "extract_rss_kib", "mount_s", "mount_rss_kib",
		"cold_s", "warm_s", "tar_bytes", "rcold50_ms", "rcold99_ms", "rwarm50_ms", "rwarm99_ms", "rcold_n", "fuse_rss_kib"}
	phases := []string{"pack", "extract", "mount"}
	for _, tr := range d.trees {
		fmt.Fprintf(b, "%s tree:\n\n| tool | figure | runs |\n|---|---|---|\n", tr.id)
		for _, t := range d.tools {
			for _, m := range metrics {
				v := d.vals[key{tr.id, t.id, m}]
				if len(v) == 0 {
					continue
				}
				s := make([]string, len(v))
				for i, x := range v {
					s[i] = fmt.Sprintf("%.6g", x)
				}
				fmt.Fprintf(b, "| %s | %s | %s |\n", esc(t.label), m, strings.Join(s, " / "))
			}
			for _, p := range phases {
				if l := d.loads[key{tr.id, t.id, p}]; len(l) > 0 {
					fmt.Fprintf(b, "| %s | load at %s start | %s |\n", esc(t.label), p, strings.Join(l, " / "))
				}
			}
		}
		fmt.Fprintln(b)
	}
}

// fmtv formats v; the format "sig" keeps three significant digits without an exponent (sizes of
// the quick trees are fractions of a MB).
func fmtv(format string, v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "–"
	}
	if format == "sig" {
		switch a := math.Abs(v); {
		case a >= 100:
			format = "%.0f"
		case a >= 10:
			format = "%.1f"
		case a >= 1:
			format = "%.2f"
		default:
			format = "%.3f"
		}
	}
	return fmt.Sprintf(format, v)
}

func esc(s string) string { return strings.ReplaceAll(s, "|", `\|`) }

func orDash(s string) string {
	if s == "" {
		return "–"
	}
	return s
}

// thousands writes an integer with comma separators: 848,453,823.
func thousands(v float64) string {
	s := fmt.Sprintf("%.0f", v)
	var out []byte
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	return string(out)
}
