package reader

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"arc/codec"
	"arc/format"
	"arc/writer"
)

// damageCase is one archive that FuzzDamagedArchiveNeverReadsWrongBytes
// damages: its volumes' bytes and what each regular file holds.
type damageCase struct {
	name    string
	volumes []string // base names, in order
	data    [][]byte // each volume's bytes
	files   map[string][]byte
}

// damageCases packs one small tree three ways (lz4 and lz4x at the
// default level, lz4x at max with far matches, zstd), in volumes of
// 64 KiB, frames of 256 KiB and blocks of 64 or 256 KiB, so that blocks
// and frames cross volumes and every block codec is there to be damaged.
func damageCases(f *testing.F) []damageCase {
	f.Helper()
	src := filepath.Join(f.TempDir(), "src")
	r := rand.New(rand.NewPCG(7, 11))
	words := strings.Fields("func return if else for range package import type struct interface map chan go defer select case switch var const nil true false err")
	text := func(n int) []byte {
		var b bytes.Buffer
		for b.Len() < n {
			fmt.Fprintf(&b, "%s %s(%d) {\n", words[r.IntN(len(words))], words[r.IntN(len(words))], r.IntN(1000))
		}
		return b.Bytes()[:n]
	}
	a := text(300 << 10)
	b := bytes.Clone(a) // a near-copy: far matches and chunk dedup
	for i := 0; i < 40; i++ {
		b[r.IntN(len(b))] ^= 0x20
	}
	random := make([]byte, 96<<10)
	for i := range random {
		random[i] = byte(r.Uint32())
	}
	files := map[string][]byte{
		"text/a.go":   a,
		"text/b.go":   b,
		"copy/a.go":   a, // whole-file dedup
		"bin/random":  random,
		"zeros":       make([]byte, 200<<10),
		"empty":       nil,
		"deep/x/y/z":  text(5000),
		"tail/short":  []byte("x"),
		"tail/medium": text(70 << 10),
	}
	for i := 0; i < 12; i++ {
		files[fmt.Sprintf("small/%02d.txt", i)] = text(500 + r.IntN(3000))
	}
	for p, d := range files {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(src, p)), 0o755); err != nil {
			f.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(src, p), d, 0o644); err != nil {
			f.Fatal(err)
		}
	}
	var cases []damageCase
	for _, c := range []struct {
		name      string
		codec     codec.Options
		blockSize int64
	}{
		{"default", codec.Options{Codec: "auto", Level: codec.LevelDefault}, 64 << 10},
		{"lz4x-max", codec.Options{Codec: "lz4x", Level: codec.LevelMax}, 256 << 10},
		{"zstd", codec.Options{Codec: "zstd", Level: codec.LevelDefault}, 64 << 10},
	} {
		res, err := writer.Create(context.Background(), filepath.Join(f.TempDir(), "arc"), []string{src}, writer.Options{
			VolumeSize: 64 << 10,
			FrameSize:  256 << 10,
			BlockSize:  c.blockSize,
			Codec:      c.codec,
			Workers:    2,
		})
		if err != nil {
			f.Fatal(err)
		}
		dc := damageCase{name: c.name, files: files}
		for _, v := range res.Volumes {
			d, err := os.ReadFile(v)
			if err != nil {
				f.Fatal(err)
			}
			dc.volumes = append(dc.volumes, filepath.Base(v))
			dc.data = append(dc.data, d)
		}
		cases = append(cases, dc)
	}
	return cases
}

// FuzzDamagedArchiveNeverReadsWrongBytes damages an archive (bytes flipped
// anywhere in its volumes, volumes cut short) and reads every file and
// verifies it. Whatever the damage, nothing panics, and a read either
// returns the file's exact bytes or fails: damage may cost files, never
// their content. And when Verify calls the archive intact, every file
// reads back whole.
//
// edits is read 5 bytes at a time: a position across the volumes (4 bytes,
// little-endian, modulo their size) and a byte to XOR there, or 0 to cut
// that volume short at that position.
func FuzzDamagedArchiveNeverReadsWrongBytes(f *testing.F) {
	cases := damageCases(f)
	total := func(c damageCase) int {
		n := 0
		for _, d := range c.data {
			n += len(d)
		}
		return n
	}
	edit := func(pos uint32, v byte) []byte {
		return append(binary.LittleEndian.AppendUint32(nil, pos), v)
	}
	for k, c := range cases {
		n := uint32(total(c))
		f.Add(uint8(k), []byte{})                                 // intact
		f.Add(uint8(k), edit(n/3, 0x40))                          // a byte of stored data
		f.Add(uint8(k), edit(n-20, 0x01))                         // the last volume's footer
		f.Add(uint8(k), edit(n-2000, 0xff))                       // the index
		f.Add(uint8(k), edit(uint32(len(c.data[0])+8), 1))        // the second volume's header
		f.Add(uint8(k), edit(n/2, 0))                             // a volume cut short
		f.Add(uint8(k), append(edit(n/5, 0x10), edit(n/4, 0)...)) // both
	}
	f.Fuzz(func(t *testing.T, which uint8, edits []byte) {
		c := cases[int(which)%len(cases)]
		vols := make([][]byte, len(c.data))
		for i, d := range c.data {
			vols[i] = bytes.Clone(d)
		}
		n := total(c)
		for k := 0; k+5 <= len(edits) && k < 8*5; k += 5 {
			pos := int(binary.LittleEndian.Uint32(edits[k:]) % uint32(n))
			v := 0
			for pos >= len(c.data[v]) {
				pos -= len(c.data[v])
				v++
			}
			if x := edits[k+4]; x != 0 {
				if pos < len(vols[v]) {
					vols[v][pos] ^= x
				}
			} else {
				vols[v] = vols[v][:min(pos, len(vols[v]))]
			}
		}
		dir := t.TempDir()
		for i, name := range c.volumes {
			if err := os.WriteFile(filepath.Join(dir, name), vols[i], 0o644); err != nil {
				t.Fatal(err)
			}
		}
		a, err := Open(filepath.Join(dir, c.volumes[0]), Options{CacheSize: 1 << 20, Workers: 2})
		if err != nil {
			return // refused whole: no wrong bytes either
		}
		defer a.Close()
		x := a.Index()
		var failed []string
		for p, want := range c.files {
			d, err := a.Resolve("/" + p)
			if err != nil {
				t.Fatalf("%s: %q is not in an index that passed its checks: %v", c.name, p, err)
			}
			ino := x.Dirents.Inode[d]
			if x.Inodes.Mode[ino]&format.ModeType != format.ModeReg {
				t.Fatalf("%s: %q is no longer a regular file", c.name, p)
			}
			got, err := readAll(a, ino, 50_000)
			if err != nil {
				failed = append(failed, p)
				continue
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("%s: %q read back %d bytes that differ from the %d packed, without an error", c.name, p, len(got), len(want))
			}
		}
		rep, err := a.Verify(VerifyOptions{Workers: 2})
		if err != nil {
			return
		}
		if rep.Intact() && len(failed) > 0 {
			t.Fatalf("%s: verify calls the archive intact, but %v failed to read", c.name, failed)
		}
	})
}
