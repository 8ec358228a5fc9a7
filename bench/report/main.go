// Command report turns the raw figures that bench/bench.sh records (one tab-separated line per
// measurement) into RESULTS.md and two SVG charts: archive size against pack speed, and read
// throughput through the mount, cold and warm. Every figure shown is the median of the runs; the
// per-run values are listed at the end of RESULTS.md. No figure is typed in by hand: what is not in
// the raw file is shown as "–".
//
// Usage: report -in bench/results/bench-DATE.tsv -out DIR
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

func main() {
	in := flag.String("in", "", "raw figures written by bench/bench.sh")
	out := flag.String("out", "bench", "folder for RESULTS.md, chart-pack.svg and chart-read.svg")
	name := flag.String("name", "", "how RESULTS.md names the raw file (default: -in)")
	flag.Parse()
	if *in == "" {
		fmt.Fprintln(os.Stderr, "usage: report -in RAW.tsv -out DIR")
		os.Exit(2)
	}
	if *name == "" {
		*name = *in
	}
	if err := run(*in, *name, *out); err != nil {
		fmt.Fprintln(os.Stderr, "report:", err)
		os.Exit(1)
	}
}

func run(in, name, out string) error {
	f, err := os.Open(in)
	if err != nil {
		return err
	}
	defer f.Close()
	d, err := parse(f)
	if err != nil {
		return fmt.Errorf("%s: %w", in, err)
	}
	d.rawName = name
	files := map[string]string{
		"RESULTS.md":     d.markdown(),
		"chart-pack.svg": d.packChart("go"),
		"chart-read.svg": d.readChart("go"),
	}
	for name, body := range files {
		p := filepath.Join(out, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			return err
		}
		fmt.Println("report: wrote", p)
	}
	return nil
}

// data is everything the raw file says, in the order it says it.
type data struct {
	rawName  string
	meta     map[string]string
	trees    []tree
	tools    []tool
	cmds     map[string][][2]string // tool → (phase, command)
	vals     map[key][]float64      // (tree, tool, metric) → one value per run, in run order
	loads    map[key][]string       // (tree, tool, phase) → load average at each run's start
	fails    []string
	phases   [][3]string // tree, phase, seconds
	skipped  []string
	versions []string
}

type key struct{ tree, tool, metric string }

type tree struct {
	id, path     string
	bytes, files float64
}

type tool struct{ id, label, kind, mount string }

func parse(f *os.File) (*data, error) {
	d := &data{meta: map[string]string{}, cmds: map[string][][2]string{}, vals: map[key][]float64{}, loads: map[key][]string{}}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for n := 1; sc.Scan(); n++ {
		l := strings.Split(sc.Text(), "\t")
		need := func(k int) error {
			if len(l) < k {
				return fmt.Errorf("line %d: %q has %d fields, want %d", n, l[0], len(l), k)
			}
			return nil
		}
		var err error
		switch l[0] {
		case "meta":
			if err = need(3); err == nil {
				d.meta[l[1]] = l[2]
			}
		case "tree":
			if err = need(5); err == nil {
				d.trees = append(d.trees, tree{id: l[1], path: l[2], bytes: num(l[3]), files: num(l[4])})
			}
		case "tool":
			if err = need(5); err == nil {
				d.tools = append(d.tools, tool{id: l[1], label: l[2], kind: l[3], mount: l[4]})
			}
		case "cmd":
			if err = need(4); err == nil {
				d.cmds[l[1]] = append(d.cmds[l[1]], [2]string{l[2], l[3]})
			}
		case "val":
			if err = need(6); err == nil {
				k := key{l[1], l[2], l[3]}
				d.vals[k] = append(d.vals[k], num(l[5]))
			}
		case "load":
			if err = need(6); err == nil {
				k := key{l[1], l[2], l[3]}
				d.loads[k] = append(d.loads[k], l[5])
			}
		case "fail":
			if err = need(5); err == nil {
				d.fails = append(d.fails, fmt.Sprintf("%s tree, %s, %s: %s", l[1], l[2], l[3], strings.TrimSpace(l[4])))
			}
		case "phase":
			if err = need(4); err == nil {
				d.phases = append(d.phases, [3]string{l[1], l[2], l[3]})
			}
		case "skip":
			if err = need(2); err == nil {
				d.skipped = append(d.skipped, l[1])
			}
		case "version":
			if err = need(2); err == nil {
				d.versions = append(d.versions, strings.TrimPrefix(l[1], "- "))
			}
		case "":
		default:
			err = fmt.Errorf("line %d: unknown record %q", n, l[0])
		}
		if err != nil {
			return nil, err
		}
	}
	return d, sc.Err()
}

func num(s string) float64 {
	var v float64
	if _, err := fmt.Sscan(s, &v); err != nil {
		return nan
	}
	return v
}

func (d *data) tree(id string) (tree, bool) {
	for _, t := range d.trees {
		if t.id == id {
			return t, true
		}
	}
	return tree{}, false
}

// median of the runs of one metric; nan when there are none.
func (d *data) median(tr, tool, metric string) float64 {
	return median(d.vals[key{tr, tool, metric}])
}
