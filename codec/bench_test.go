package codec

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// benchData is real data: $ARC_BENCH_DATA if set, else the go command and a slice of the standard
// library's sources and archives from the running toolchain, 16 MiB.
func benchData(b *testing.B) []byte {
	b.Helper()
	if f := os.Getenv("ARC_BENCH_DATA"); f != "" {
		data, err := os.ReadFile(f)
		if err != nil {
			b.Fatal(err)
		}
		return data
	}
	var data []byte
	root := runtime.GOROOT()
	for _, p := range []string{filepath.Join(root, "bin", "go"), filepath.Join(root, "src", "net"), filepath.Join(root, "pkg", "tool")} {
		filepath.WalkDir(p, func(path string, d os.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() && len(data) < 16<<20 {
				if b, err := os.ReadFile(path); err == nil {
					data = append(data, b...)
				}
			}
			return nil
		})
	}
	if len(data) < 1<<20 {
		b.Skip("no toolchain files to read")
	}
	return data[:min(len(data), 16<<20)]
}

var benchOptions = []Options{
	{"lz4x", LevelFast}, {"lz4x", LevelDefault}, {"lz4x", LevelHigh}, {"lz4x", LevelMax},
	{"lz4", LevelDefault}, {"lz4", LevelMax}, {"zstd", LevelDefault},
}

// BenchmarkEncode reports compression speed and, as "ratio", raw/stored.
func BenchmarkEncode(b *testing.B) {
	data := benchData(b)
	for _, bs := range []int{128 << 10, 1 << 20, 16 << 20} {
		for _, o := range benchOptions {
			b.Run(fmt.Sprintf("%dK/%s-%s", bs>>10, o.Codec, o.Level), func(b *testing.B) {
				e, _ := NewEncoder(o)
				b.SetBytes(int64(len(data)))
				var stored int
				for b.Loop() {
					stored = 0
					for off := 0; off < len(data); off += bs {
						_, s := e.Encode(data[off:min(off+bs, len(data))])
						stored += len(s)
					}
				}
				b.ReportMetric(float64(len(data))/float64(stored), "ratio")
			})
		}
	}
}

// BenchmarkDecode reports decompression speed.
func BenchmarkDecode(b *testing.B) {
	data := benchData(b)
	for _, bs := range []int{128 << 10, 1 << 20, 16 << 20} {
		for _, o := range benchOptions {
			b.Run(fmt.Sprintf("%dK/%s-%s", bs>>10, o.Codec, o.Level), func(b *testing.B) {
				e, _ := NewEncoder(o)
				d := NewDecoder()
				type blk struct {
					id     uint8
					n      int
					stored []byte
				}
				var blocks []blk
				for off := 0; off < len(data); off += bs {
					raw := data[off:min(off+bs, len(data))]
					id, s := e.Encode(raw)
					blocks = append(blocks, blk{id, len(raw), append([]byte(nil), s...)})
				}
				dst := make([]byte, bs)
				b.SetBytes(int64(len(data)))
				for b.Loop() {
					for _, k := range blocks {
						if err := d.Decode(k.id, dst[:k.n], k.stored); err != nil {
							b.Fatal(err)
						}
					}
				}
			})
		}
	}
}

// BenchmarkFarSeeds reports the cost of level high's far seeds alone (the
// pass that runs on every block of 4 MiB and more, before either parse).
func BenchmarkFarSeeds(b *testing.B) {
	data := benchData(b)
	m := newMatcher(*levels[LevelHigh].Far)
	b.SetBytes(int64(len(data)))
	var cover int
	for b.Loop() {
		cover = m.farSeeds(data, MaxOffsetLZ4X)
		m.seed.drop()
	}
	b.ReportMetric(float64(cover)/float64(len(data)), "cover")
}
