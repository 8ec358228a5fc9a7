package gear

import (
	"math/rand/v2"
	"reflect"
	"testing"
)

// onePass is the definition of Samples, written plainly: every position
// from the warm-th byte on whose rolling hash has its top bits clear.
func onePass(data []byte, bits uint) []Sample {
	mask := ^uint64(0) << (64 - bits)
	var out []Sample
	var h uint64
	for i, b := range data {
		h = h<<1 + table[b]
		if i >= warm-1 && h&mask == 0 {
			out = append(out, Sample{uint32(i + 1), h})
		}
	}
	return out
}

func TestSamplesAreTheDefinition(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	data := make([]byte, 3<<20)
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	// Low-entropy stretches too, where equal hashes repeat.
	for i := 1 << 20; i < 1<<20+200000; i++ {
		data[i] = "abcab"[i%5]
	}
	lengths := []int{0, 1, 30, 31, 32, 63, 64, 65, 1000, 100003, len(data)}
	for _, n := range lengths {
		for _, bits := range []uint{1, 4, 7, 13} {
			got := Samples(data[:n], bits, nil)
			want := onePass(data[:n], bits)
			if len(got) == 0 && len(want) == 0 {
				continue
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("%d bytes, %d bits: %d samples, want %d", n, bits, len(got), len(want))
			}
		}
	}
}

func BenchmarkSamples(b *testing.B) {
	data := make([]byte, 16<<20)
	r := rand.New(rand.NewPCG(3, 4))
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	b.SetBytes(int64(len(data)))
	var dst []Sample
	for b.Loop() {
		dst = Samples(data, 7, dst[:0])
	}
}
