package writer

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"arc/codec"
)

// FuzzCreateRoundTrip packs trees that a fuzzed script builds out of
// repeats, near-repeats, zero runs and fresh bytes, the material every
// dedup layer works on (whole files, content-defined chunks, long-distance
// segments, holes), with a block and frame size that cut through them, and
// requires every file to read back byte for byte. setting picks the level
// and chunk size (1 KiB chunks, 4 KiB at fast, none at high, the default).
func FuzzCreateRoundTrip(f *testing.F) {
	// Four files: fresh bytes; fresh bytes around a long repeat of the
	// first; a near-repeat of the first; a copy of it.
	f.Add([]byte{4,
		4, 128, 1, // f0: 32 KiB fresh
		4, 32, 2, //  f1: 8 KiB fresh
		3, 0, 251, // f2: f0 with every 251st byte changed
		1, 0, 0, 255, // f3: f0's first 16 KiB
		0, 0, // f0: nothing
		1, 0, 16, 190, // f1: 12 KiB of f0 from 1 KiB on
		2, 40, // f2: 10 KiB of zeros
		1, 0, 0, 255, // f3: the rest of f0 (to 32 KiB)
	}, uint8(0))
	f.Add([]byte{2, 4, 200, 7, 4, 1, 9, 0, 0, 1, 0, 3, 100, 2, 200}, uint8(1))
	f.Add([]byte{3, 4, 255, 3, 3, 0, 97, 1, 0, 10, 200}, uint8(2))
	f.Add([]byte{2, 4, 64, 5, 1, 0, 0, 255, 2, 8, 4, 16, 6}, uint8(3))
	f.Fuzz(func(t *testing.T, script []byte, setting uint8) {
		files := treeOf(script)
		if len(files) == 0 {
			return
		}
		src := t.TempDir()
		writeTree(t, src, files)
		o := small()
		settings := []struct {
			level codec.Level
			chunk int
		}{{codec.LevelDefault, 1 << 10}, {codec.LevelFast, 4 << 10}, {codec.LevelHigh, -1}, {codec.LevelDefault, 0}}
		s := settings[int(setting)%len(settings)]
		o.Codec.Level, o.ChunkSize = s.level, s.chunk
		res, err := Create(context.Background(), filepath.Join(t.TempDir(), "a"), []string{src}, o)
		if err != nil {
			t.Fatal(err)
		}
		a := readBack(t, res.Volumes, 0)
		for p, want := range files {
			if got := a.content[p]; !bytes.Equal(got, want) {
				t.Errorf("%s: %d bytes read back differ from the %d packed (first difference at %d)", p, len(got), len(want), firstDiff(got, want))
			}
		}
	})
}

// treeOf runs script: its first byte says how many files (1 to 8); then
// each step appends to the current file, which moves on after each one:
//
//	0 n:      n (1-255) fresh bytes from the script
//	1 f o l:  l*64 bytes of file f from offset o*64 (a repeat, clipped)
//	2 l:      l*256 zero bytes (a run that may become a hole)
//	3 f b:    file f again with every b-th byte changed (a near-repeat)
//	4 l s:    l*256 pseudo-random bytes from seed s (fresh, incompressible)
//
// Files stay under 512 KiB each.
func treeOf(script []byte) map[string][]byte {
	if len(script) == 0 {
		return nil
	}
	n := int(script[0])%8 + 1
	files := make([][]byte, n)
	r := script[1:]
	next := func() int {
		if len(r) == 0 {
			return -1
		}
		b := r[0]
		r = r[1:]
		return int(b)
	}
	for i := 0; len(r) > 0; i = (i + 1) % n {
		op, cur := next(), &files[i]
		switch op % 5 {
		case 0:
			k := next()
			k = min(max(k, 1), len(r))
			*cur = append(*cur, r[:k]...)
			r = r[k:]
		case 1:
			from, off, l := files[max(next(), 0)%n], max(next(), 0)*64, max(next(), 0)*64
			if off < len(from) {
				*cur = append(*cur, from[off:min(len(from), off+l)]...)
			}
		case 2:
			*cur = append(*cur, make([]byte, max(next(), 0)*256)...)
		case 3:
			from, step := files[max(next(), 0)%n], max(next(), 1)
			c := bytes.Clone(from)
			for j := 0; j < len(c); j += step {
				c[j] ^= 0x5a
			}
			*cur = append(*cur, c...)
		case 4:
			l, x := max(next(), 0)*256, uint64(max(next(), 0))*0x9e3779b97f4a7c15|1
			for j := 0; j < l; j++ {
				x ^= x << 13
				x ^= x >> 7
				x ^= x << 17
				*cur = append(*cur, byte(x))
			}
		}
		if len(*cur) > 512<<10 {
			*cur = (*cur)[:512<<10]
		}
	}
	tree := map[string][]byte{}
	for i, c := range files {
		// Two directories, so that path order and the stream order differ.
		tree[fmt.Sprintf("d%d/f%02d", i%2, i)] = c
	}
	return tree
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}
