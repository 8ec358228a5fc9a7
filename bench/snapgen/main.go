// Command snapgen makes issue 5's generated dedup case: a base tree of a
// given size, and later snapshots of it in which a share of the files is
// edited by inserting or deleting bytes in the middle.
//
//	snapgen -base DIR -size 1G -real /work/benchdata/distinct -seed 1
//	snapgen -from DIR -to DIR2 -edit 1 -seed 2
//
// The base holds real files copied from -real (when given) up to half the
// size, and generated text-like files (words from a seeded vocabulary, so
// they compress about as well as source code but never repeat each other)
// for the rest. A snapshot is a full copy of -from (no hardlinks), with
// -edit percent of the files, chosen by the seed, changed: half get 1–8 KiB
// of new bytes inserted at a random point in their middle half, half lose
// 1–8 KiB there.
package main

import (
	"flag"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"arc/internal/bytesize"
)

func main() {
	base := flag.String("base", "", "make a base tree in this directory")
	size := flag.String("size", "1G", "base tree size (K, M, G suffixes, powers of 1024)")
	real := flag.String("real", "", "directory of real files to take up to half the base from")
	from := flag.String("from", "", "make a snapshot of this tree...")
	to := flag.String("to", "", "...in this directory")
	edit := flag.Float64("edit", 1, "percent of files a snapshot edits")
	seed := flag.Uint64("seed", 1, "random seed")
	flag.Parse()
	var err error
	switch {
	case *base != "":
		var n int64
		if n, err = bytesize.Parse(*size); err == nil && n <= 0 {
			err = fmt.Errorf("-size %s: want a positive size", *size)
		}
		if err == nil {
			err = makeBase(*base, n, *real, *seed)
		}
	case *from != "" && *to != "":
		err = snapshot(*from, *to, *edit, *seed)
	default:
		err = fmt.Errorf("give -base DIR, or -from DIR -to DIR")
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "snapgen:", err)
		os.Exit(1)
	}
}

// makeBase fills dir with about size bytes.
func makeBase(dir string, size int64, real string, seed uint64) error {
	if _, err := os.Stat(dir); err == nil {
		return fmt.Errorf("%s exists", dir)
	}
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	var total int64
	if real != "" {
		// Real files in a stable order, up to half the size.
		var files []string
		err := filepath.WalkDir(real, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() {
				files = append(files, p)
			}
			return err
		})
		if err != nil {
			return err
		}
		sort.Strings(files)
		for _, p := range files {
			if total >= size/2 {
				break
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(real, p)
			if err := write(filepath.Join(dir, "real", rel), b); err != nil {
				return err
			}
			total += int64(len(b))
		}
	}
	vocab := vocabulary(rng, 4000)
	for i := 0; total < size; i++ {
		// Sizes from 1 KiB to 4 MiB, most of them small, as in source trees.
		n := int64(1<<10) << rng.IntN(13)
		n += rng.Int64N(n)
		n = min(n, size-total)
		path := filepath.Join(dir, "gen", fmt.Sprintf("d%03d", i%500), fmt.Sprintf("f%06d.txt", i))
		if err := write(path, text(rng, vocab, int(n))); err != nil {
			return err
		}
		total += n
	}
	return nil
}

// vocabulary makes n pseudo-words of 2 to 12 letters.
func vocabulary(rng *rand.Rand, n int) []string {
	words := make([]string, n)
	for i := range words {
		b := make([]byte, 2+rng.IntN(11))
		for j := range b {
			b[j] = byte('a' + rng.IntN(26))
		}
		words[i] = string(b)
	}
	return words
}

// text makes n bytes of lines of words, skewed towards frequent words, with
// numbers and indentation as code and logs have.
func text(rng *rand.Rand, vocab []string, n int) []byte {
	var b strings.Builder
	b.Grow(n + 64)
	for b.Len() < n {
		b.WriteString(strings.Repeat("\t", rng.IntN(4)))
		for w := 3 + rng.IntN(9); w > 0; w-- {
			// Squaring a uniform number favours the start of the list.
			f := rng.Float64()
			b.WriteString(vocab[int(f*f*float64(len(vocab)))])
			if rng.IntN(8) == 0 {
				b.WriteString(strconv.Itoa(rng.IntN(100000)))
			}
			b.WriteByte(' ')
		}
		b.WriteByte('\n')
	}
	return []byte(b.String()[:n])
}

func write(path string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

// snapshot copies from into to, editing edit percent of the files.
func snapshot(from, to string, edit float64, seed uint64) error {
	if _, err := os.Stat(to); err == nil {
		return fmt.Errorf("%s exists", to)
	}
	var files []string
	err := filepath.WalkDir(from, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			files = append(files, p)
		}
		return err
	})
	if err != nil {
		return err
	}
	sort.Strings(files)
	rng := rand.New(rand.NewPCG(seed, 0xed17))
	want := int(float64(len(files))*edit/100 + 0.5)
	chosen := map[int]bool{}
	for len(chosen) < want && len(chosen) < len(files) {
		chosen[rng.IntN(len(files))] = true
	}
	var inserted, deleted int64
	for i, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if chosen[i] && len(b) > 16 {
			at := len(b)/4 + rng.IntN(len(b)/2+1)
			k := 1<<10 + rng.IntN(7<<10)
			if i%2 == 0 {
				ins := make([]byte, k)
				for j := range ins {
					ins[j] = byte(' ' + rng.IntN(95))
				}
				b = append(b[:at:at], append(ins, b[at:]...)...)
				inserted += int64(k)
			} else {
				k = min(k, len(b)-at)
				b = append(b[:at:at], b[at+k:]...)
				deleted += int64(k)
			}
		}
		rel, _ := filepath.Rel(from, p)
		if err := write(filepath.Join(to, rel), b); err != nil {
			return err
		}
	}
	fmt.Printf("%d of %d files edited: %d bytes inserted, %d deleted\n", len(chosen), len(files), inserted, deleted)
	return nil
}
