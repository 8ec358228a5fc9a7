// Command manyfiles generates the many-small-files benchmark tree of issue 3: by default
// 1,000,000 regular files in a 100 × 100 directory fan-out (100 files per leaf directory), with
// small, compressible, deterministic contents (a fixed seed), so that mount-ready time and RSS
// measure the index, not the data.
//
// It writes into DIR.tmp and renames it to DIR when done, so a half-generated tree never looks
// complete.
package main

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
)

var words = []string{
	"alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india",
	"juliet", "kilo", "lima", "mike", "november", "oscar", "papa", "quebec", "romeo",
	"sierra", "tango", "uniform", "victor", "whiskey", "xray", "yankee", "zulu", "\n",
}

func main() {
	out := flag.String("o", "/work/benchdata/million", "output directory (must not exist)")
	n := flag.Int("n", 1_000_000, "number of files")
	perDir := flag.Int("per-dir", 100, "files per leaf directory")
	fanout := flag.Int("fanout", 100, "leaf directories per top-level directory")
	maxSize := flag.Int("max-size", 1024, "largest file size in bytes (sizes are uniform in [0, max])")
	seed := flag.Uint64("seed", 1, "random seed")
	workers := flag.Int("workers", 2, "parallel writers")
	flag.Parse()
	if err := run(*out, *n, *perDir, *fanout, *maxSize, *seed, *workers); err != nil {
		fmt.Fprintln(os.Stderr, "manyfiles:", err)
		os.Exit(1)
	}
}

func run(out string, n, perDir, fanout, maxSize int, seed uint64, workers int) error {
	if _, err := os.Lstat(out); err == nil {
		return fmt.Errorf("%s already exists", out)
	}
	tmp := out + ".tmp"
	if err := os.RemoveAll(tmp); err != nil {
		return err
	}
	leaves := (n + perDir - 1) / perDir
	jobs := make(chan int)
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 0, maxSize+16)
			for leaf := range jobs {
				if err := writeLeaf(tmp, leaf, n, perDir, fanout, maxSize, seed, buf); err != nil {
					errs <- err
					for range jobs {
					}
					return
				}
			}
		}()
	}
	for leaf := 0; leaf < leaves; leaf++ {
		jobs <- leaf
	}
	close(jobs)
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	if err := os.Rename(tmp, out); err != nil {
		return err
	}
	fmt.Printf("manyfiles: %s: %d files in %d leaf directories\n", out, n, leaves)
	return nil
}

// writeLeaf writes one leaf directory; each leaf has its own generator so the tree does not
// depend on how leaves are spread over workers.
func writeLeaf(root string, leaf, n, perDir, fanout, maxSize int, seed uint64, buf []byte) error {
	dir := filepath.Join(root, fmt.Sprintf("d%03d", leaf/fanout), fmt.Sprintf("e%03d", leaf%fanout))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	r := rand.New(rand.NewPCG(seed, uint64(leaf)))
	for i := 0; i < perDir; i++ {
		idx := leaf*perDir + i
		if idx >= n {
			break
		}
		size := r.IntN(maxSize + 1)
		buf = buf[:0]
		for len(buf) < size {
			buf = append(buf, words[r.IntN(len(words))]...)
			buf = append(buf, ' ')
		}
		name := filepath.Join(dir, fmt.Sprintf("f%07d.txt", idx))
		if err := os.WriteFile(name, buf[:size], 0o644); err != nil {
			return err
		}
	}
	return nil
}
