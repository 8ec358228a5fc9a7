// Package gear holds arc's rolling hash and the content-defined sampling
// built on it. A gear hash adds a random value per byte and shifts once a
// byte, so after 64 bytes a byte's contribution has shifted out and the hash
// depends on the last 64 bytes alone: the same content hashes the same
// wherever it lies. The table is part of the archive's reproducibility: the
// same seed must give the same table forever.
package gear

// Window is how many bytes a hash depends on.
const Window = 64

// warm is how many bytes must roll in before a position may be sampled.
const warm = 32

// table is the gear table of Samples.
var table = Table(0x9E3779B97F4A7C15)

// Table returns the 256-entry table generated from seed by splitmix64.
func Table(seed uint64) (g [256]uint64) {
	s := seed
	for i := range g {
		s += 0x9E3779B97F4A7C15
		z := s
		z = (z ^ z>>30) * 0xBF58476D1CE4E5B9
		z = (z ^ z>>27) * 0x94D049BB133111EB
		g[i] = z ^ z>>31
	}
	return
}

// Sample is a sampled position: Pos is the index just past the hashed
// window's last byte, Hash the gear hash there.
type Sample struct {
	Pos  uint32
	Hash uint64
}

// ExpectedSamples is room for the samples of n bytes: about one in 2^bits,
// and a little over, to spare most inputs a second allocation.
func ExpectedSamples(n int, bits uint) int { return n>>bits + n>>(bits+3) + 4 }

// Samples returns the positions of data whose hash has its top bits bits
// clear (about one in 2^bits), appended to dst. Both the segment matcher and
// the chunker work from these, so the bytes are hashed once.
func Samples(data []byte, bits uint, dst []Sample) []Sample {
	if dst == nil {
		dst = make([]Sample, 0, ExpectedSamples(len(data), bits))
	}
	mask := ^uint64(0) << (64 - bits)
	var h uint64
	head := min(len(data), warm-1)
	for _, b := range data[:head] {
		h = h<<1 + table[b]
	}
	for i := head; i < len(data); i++ {
		h = h<<1 + table[data[i]]
		if h&mask == 0 {
			dst = append(dst, Sample{uint32(i + 1), h})
		}
	}
	return dst
}
