package reader

import (
	"fmt"
	"io"
	"math/rand/v2"
	"testing"
)

// BenchmarkSequentialRead reads a 64 MiB file of 1 MiB blocks in 128 KiB
// requests (the kernel's FUSE read size) with a cache that holds it all
// (warm after the first pass) and with one a quarter of its size.
func BenchmarkSequentialRead(b *testing.B) {
	data := randBytes(64<<20, 1)
	ar := buildArchive(b, b.TempDir(), "arc", []entry{reg("f", data)}, buildOpts{blockSize: 1 << 20, frameBlocks: 16})
	for _, tc := range []struct {
		name  string
		cache int64
	}{{"warm", 128 << 20}, {"cache quarter", 16 << 20}} {
		b.Run(tc.name, func(b *testing.B) {
			a := openBuiltWith(b, ar, Options{CacheSize: tc.cache})
			ino := inodeOf(b, a, "f")
			p := make([]byte, 128<<10)
			b.SetBytes(int64(len(data)))
			for i := 0; i < b.N; i++ {
				for off := int64(0); off < int64(len(data)); off += int64(len(p)) {
					if _, err := a.ReadAt(ino, p, off); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}

// BenchmarkRandomRead4K reads 4 KiB at random offsets of a warm file.
func BenchmarkRandomRead4K(b *testing.B) {
	data := randBytes(16<<20, 1)
	ar := buildArchive(b, b.TempDir(), "arc", []entry{reg("f", data)}, buildOpts{blockSize: 1 << 20, frameBlocks: 16})
	a := openBuiltWith(b, ar, Options{})
	ino := inodeOf(b, a, "f")
	p := make([]byte, 4096)
	r := rand.New(rand.NewPCG(1, 2))
	b.SetBytes(4096)
	for i := 0; i < b.N; i++ {
		if _, err := a.ReadAt(ino, p, r.Int64N(int64(len(data)-4096))); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReadFragmented reads, warm, a 16 MiB file made of repeats of
// 97–596 bytes of an earlier file (segment deduplication's extents) in
// 1 MiB requests, as the mount's push-ahead does: repeats alternating
// between two neighbouring blocks, and each from another block.
func BenchmarkReadFragmented(b *testing.B) {
	const blockSize, blocks = 1 << 20, 16
	for _, spread := range []bool{false, true} {
		b.Run(fmt.Sprintf("spread=%v", spread), func(b *testing.B) {
			base, mix, want := fragmented(blockSize, blocks, 48_000, spread)
			ar := buildArchive(b, b.TempDir(), "arc", []entry{base, mix}, buildOpts{blockSize: blockSize, frameBlocks: 16})
			a := openBuiltWith(b, ar, Options{CacheSize: 64 << 20})
			ino := inodeOf(b, a, "mix")
			p := make([]byte, 1<<20)
			b.SetBytes(int64(len(want)))
			for b.Loop() {
				for off := int64(0); off < int64(len(want)); off += int64(len(p)) {
					if _, err := a.ReadAt(ino, p, off); err != nil && err != io.EOF {
						b.Fatal(err)
					}
				}
			}
		})
	}
}
