// Command randread measures the latency of small reads at random offsets of random files under a
// mount: each sample opens a file, preads -size bytes at a random offset and closes it, timed as
// one operation (what a user's tool pays on a cold lookup). The file list comes from the source
// tree (-list), not from walking the mount, so that listing does not warm the mount before a cold
// run. A fixed seed picks the same files and offsets for every filesystem compared.
//
// Output: one line "randread: n=N p50=…ms p90=…ms p99=…ms max=…ms mean=…ms".
package main

import (
	"flag"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"time"
)

type file struct {
	rel  string
	size int64
}

func main() {
	list := flag.String("list", "", "source tree whose regular files (relative paths, sizes) are sampled")
	root := flag.String("root", "", "mount point holding the same tree")
	n := flag.Int("n", 2000, "number of reads")
	size := flag.Int("size", 4096, "bytes per read")
	seed := flag.Uint64("seed", 1, "random seed")
	flag.Parse()
	if *list == "" || *root == "" {
		fmt.Fprintln(os.Stderr, "usage: randread -list SRC -root MNT [-n 2000] [-size 4096] [-seed 1]")
		os.Exit(2)
	}
	if err := run(*list, *root, *n, *size, *seed); err != nil {
		fmt.Fprintln(os.Stderr, "randread:", err)
		os.Exit(1)
	}
}

func run(list, root string, n, size int, seed uint64) error {
	var files []file
	err := filepath.WalkDir(list, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if info.Size() == 0 {
			return nil
		}
		rel, err := filepath.Rel(list, p)
		if err != nil {
			return err
		}
		files = append(files, file{rel, info.Size()})
		return nil
	})
	if err != nil {
		return fmt.Errorf("listing %s: %w", list, err)
	}
	if len(files) == 0 {
		return fmt.Errorf("no non-empty regular files under %s", list)
	}
	r := rand.New(rand.NewPCG(seed, 0x72616e64))
	buf := make([]byte, size)
	lat := make([]time.Duration, 0, n)
	for i := 0; i < n; i++ {
		f := files[r.IntN(len(files))]
		var off int64
		if f.size > int64(size) {
			off = r.Int64N(f.size - int64(size) + 1)
		}
		want := min(int64(size), f.size-off)
		p := filepath.Join(root, f.rel)
		t0 := time.Now()
		h, err := os.Open(p)
		if err != nil {
			return err
		}
		got, err := h.ReadAt(buf, off)
		h.Close()
		d := time.Since(t0)
		if int64(got) != want {
			return fmt.Errorf("%s: read %d bytes at %d, want %d: %v", p, got, off, want, err)
		}
		lat = append(lat, d)
	}
	slices.Sort(lat)
	var sum time.Duration
	for _, d := range lat {
		sum += d
	}
	q := func(p float64) float64 {
		i := int(p*float64(len(lat))+0.5) - 1
		i = max(0, min(i, len(lat)-1))
		return ms(lat[i])
	}
	fmt.Printf("randread: n=%d p50=%.3fms p90=%.3fms p99=%.3fms max=%.3fms mean=%.3fms\n",
		len(lat), q(0.50), q(0.90), q(0.99), ms(lat[len(lat)-1]), ms(sum/time.Duration(len(lat))))
	return nil
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }
