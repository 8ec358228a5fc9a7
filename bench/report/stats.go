package main

import (
	"math"
	"slices"
)

var nan = math.NaN()

// median of xs (the mean of the middle two for an even count); nan for none.
func median(xs []float64) float64 {
	var v []float64
	for _, x := range xs {
		if !math.IsNaN(x) {
			v = append(v, x)
		}
	}
	if len(v) == 0 {
		return nan
	}
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

// column is one figure of a results table: how to get it from the medians and which way is better.
type column struct {
	head        string
	get         func(d *data, tr tree, tool string) float64
	format      string
	lowerBetter bool
	compare     bool // shown against the best peer (false for columns that restate another)
}

func med(metric string) func(*data, tree, string) float64 {
	return func(d *data, tr tree, tool string) float64 { return d.median(tr.id, tool, metric) }
}

func scaled(metric string, k float64) func(*data, tree, string) float64 {
	return func(d *data, tr tree, tool string) float64 { return d.median(tr.id, tool, metric) * k }
}

// perSecond: the tree's file content in MB divided by the median seconds of metric.
func perSecond(metric string) func(*data, tree, string) float64 {
	return func(d *data, tr tree, tool string) float64 { return tr.bytes / 1e6 / d.median(tr.id, tool, metric) }
}

// columnsFor: the main (Go tree) table shows throughput in MB/s; the many-small-files table shows
// seconds (its bytes are few, the files many) and the serving process's memory right after mount.
func columnsFor(treeID string) []column {
	head := []column{
		{"size MB", scaled("size_b", 1e-6), "sig", true, true},
		{"ratio", func(d *data, tr tree, tool string) float64 { return tr.bytes / d.median(tr.id, tool, "size_b") }, "%.2f", false, false},
		{"pack s", med("pack_s"), "%.2f", true, true},
	}
	mid := []column{
		{"pack RSS MiB", scaled("pack_rss_kib", 1.0/1024), "%.0f", true, true},
		{"extract s", med("extract_s"), "%.2f", true, true},
		{"extract RSS MiB", scaled("extract_rss_kib", 1.0/1024), "%.0f", true, true},
		{"mount s", med("mount_s"), "%.3f", true, true},
	}
	tail := []column{
		{"4 KiB cold p50 ms", med("rcold50_ms"), "%.3f", true, true},
		{"4 KiB cold p99 ms", med("rcold99_ms"), "%.3f", true, true},
		{"4 KiB warm p50 ms", med("rwarm50_ms"), "%.3f", true, true},
		{"FUSE RSS MiB", scaled("fuse_rss_kib", 1.0/1024), "%.0f", true, true},
	}
	cols := append([]column{}, head...)
	if treeID == "many" {
		cols = append(cols, mid...)
		cols = append(cols,
			column{"RSS at mount MiB", scaled("mount_rss_kib", 1.0/1024), "%.0f", true, true},
			column{"read cold s", med("cold_s"), "%.2f", true, true},
			column{"read warm s", med("warm_s"), "%.2f", true, true})
	} else {
		cols = append(cols, column{"pack MB/s", perSecond("pack_s"), "%.0f", false, false})
		cols = append(cols, mid...)
		cols = append(cols,
			column{"read cold MB/s", perSecond("cold_s"), "%.0f", false, true},
			column{"read warm MB/s", perSecond("warm_s"), "%.0f", false, true})
	}
	return append(cols, tail...)
}

// best returns the best value of column c among the peers (not arc) and whose it is.
func (d *data) best(c column, tr tree) (float64, string) {
	bv, who := nan, ""
	for _, t := range d.tools {
		if t.kind == "arc" {
			continue
		}
		v := c.get(d, tr, t.id)
		if math.IsNaN(v) || math.IsInf(v, 0) {
			continue
		}
		if math.IsNaN(bv) || (c.lowerBetter && v < bv) || (!c.lowerBetter && v > bv) {
			bv, who = v, t.label
		}
	}
	return bv, who
}
