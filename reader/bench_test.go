package reader

import (
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
			a, err := Open(ar.volumes[0], Options{CacheSize: tc.cache})
			if err != nil {
				b.Fatal(err)
			}
			defer a.Close()
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
	a, err := Open(ar.volumes[0], Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer a.Close()
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
