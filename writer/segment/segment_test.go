package segment

import (
	"bytes"
	"fmt"
	"math/rand"
	"testing"
)

// stream simulates the writer: literal runs are appended, references copy
// earlier stream bytes. Every placed file must come back exactly.
type stream struct {
	t     *testing.T
	x     *Index
	bytes []byte
}

func (s *stream) place(data []byte) (matched int) {
	s.t.Helper()
	var got []byte
	err := s.x.Place(data, Samples(data, s.x.cfg.SampleBits, nil),
		func(run []byte) error {
			s.bytes = append(s.bytes, run...)
			got = append(got, run...)
			return nil
		},
		func(off, n uint64) error {
			if off+n > uint64(len(s.bytes)) {
				s.t.Fatalf("reference [%d,+%d) beyond the stream of %d bytes", off, n, len(s.bytes))
			}
			got = append(got, s.bytes[off:off+n]...)
			matched += int(n)
			return nil
		})
	if err != nil {
		s.t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		s.t.Fatalf("placed data does not reconstruct (%d bytes, want %d)", len(got), len(data))
	}
	if s.x.End() != uint64(len(s.bytes)) {
		s.t.Fatalf("index end %d, stream %d", s.x.End(), len(s.bytes))
	}
	return matched
}

func random(seed int64, n int) []byte {
	b := make([]byte, n)
	rand.New(rand.NewSource(seed)).Read(b)
	return b
}

func mutate(p []byte, seed int64, every int) []byte {
	q := append([]byte(nil), p...)
	r := rand.New(rand.NewSource(seed))
	for i := r.Intn(every); i < len(q); i += every/2 + r.Intn(every) {
		q[i] ^= 0xFF
	}
	return q
}

func testConfig() Config {
	c := DefaultConfig()
	c.TableBits = 14
	c.MinLen = 256
	return c
}

func TestRepeatsAreFoundAndReconstruct(t *testing.T) {
	base := random(1, 1<<20)
	cases := []struct {
		name       string
		second     []byte
		minMatched float64 // share of the second file placed as references
	}{
		{"identical copy", base, 0.99},
		{"shifted by 1000 bytes", append(random(2, 1000), base...), 0.95},
		{"one byte changed every ~8 KiB", mutate(base, 3, 8192), 0.90},
		{"middle replaced", append(append(append([]byte(nil), base[:400<<10]...), random(4, 200<<10)...), base[600<<10:]...), 0.75},
		{"unrelated data", random(5, 1<<20), 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := &stream{t: t, x: New(testConfig())}
			if m := s.place(base); m != 0 {
				t.Fatalf("first file matched %d bytes against an empty stream", m)
			}
			m := s.place(c.second)
			share := float64(m) / float64(len(c.second))
			if share < c.minMatched {
				t.Fatalf("matched %.3f of the second file, want ≥ %.2f", share, c.minMatched)
			}
			if c.minMatched == 0 && m != 0 {
				t.Fatalf("unrelated data matched %d bytes", m)
			}
		})
	}
}

func TestShortRepeatsStayLiteral(t *testing.T) {
	s := &stream{t: t, x: New(testConfig())}
	a := random(6, 64<<10)
	s.place(a)
	// Pieces of 100 bytes of a, separated by fresh bytes: below MinLen.
	var b []byte
	for i := 0; i < 100; i++ {
		b = append(b, a[i*500:i*500+100]...)
		b = append(b, random(int64(100+i), 300)...)
	}
	if m := s.place(b); m != 0 {
		t.Fatalf("matched %d bytes in repeats shorter than MinLen", m)
	}
}

// A repeat shorter than MinLen is taken only when it starts near where the
// previous reference ended: a reader decodes those blocks anyway.
func TestShortRepeatsNearThePreviousReferenceAreTaken(t *testing.T) {
	c := testConfig()
	c.SampleBits = 3 // dense sampling: every 200-byte piece holds samples
	c.MinLen, c.NearMin, c.NearDist = 512, 128, 4096
	s := &stream{t: t, x: New(c)}
	base := random(20, 64<<10)
	s.place(base)
	var second []byte
	second = append(second, base[:1024]...)       // long: a reference ending at 1024
	second = append(second, random(21, 300)...)   // fresh
	second = append(second, base[1324:1524]...)   // short, 300 bytes after it: taken
	second = append(second, random(22, 300)...)   // fresh
	second = append(second, base[40000:40200]...) // short, far from 1524: literal
	second = append(second, random(23, 300)...)   // fresh
	m := s.place(second)
	if m < 1024+200 || m > 1024+200+8 {
		t.Fatalf("matched %d bytes, want the 1024-byte repeat and the near 200-byte one (1224, give or take a chance byte)", m)
	}
	c.NearMin = 0 // off: only MinLen counts
	s = &stream{t: t, x: New(c)}
	s.place(base)
	if m := s.place(second); m > 1024+8 {
		t.Fatalf("with NearMin off matched %d bytes, want only the 1024-byte repeat", m)
	}
}

func TestHistoryLimitDropsOldCandidates(t *testing.T) {
	c := testConfig()
	c.History = 1 << 20
	c.chunk = 64 << 10
	s := &stream{t: t, x: New(c)}
	old := random(7, 256<<10)
	s.place(old)
	s.place(random(8, 4<<20)) // pushes old out of the retained history
	if m := s.place(old); m != 0 {
		t.Fatalf("matched %d bytes against history that should have been dropped", m)
	}
	recent := random(9, 256<<10)
	s.place(recent)
	if m := s.place(recent); m < len(recent)*9/10 {
		t.Fatalf("recent data matched only %d of %d bytes", m, len(recent))
	}
}

func TestSamplesAreContentDefined(t *testing.T) {
	data := random(10, 256<<10)
	a := Samples(data, 7, nil)
	b := Samples(append(random(11, 333), data...), 7, nil)
	// Past the first window, the shifted copy samples the same content.
	set := map[uint64]bool{}
	for _, s := range b {
		set[s.Hash] = true
	}
	missing := 0
	for _, s := range a[1:] {
		if !set[s.Hash] {
			missing++
		}
	}
	if missing > 0 {
		t.Fatalf("%d of %d samples not found in the shifted copy", missing, len(a))
	}
	if n := len(a); n < (256<<10)/256 || n > (256<<10)/64 {
		t.Fatalf("%d samples in 256 KiB at one in 128", n)
	}
}

func TestCommonPrefixAndSuffix(t *testing.T) {
	for n := 0; n < 40; n++ {
		for d := 0; d <= n; d++ {
			a, b := bytes.Repeat([]byte{7}, n), bytes.Repeat([]byte{7}, n)
			if d < n {
				b[d] = 8
			}
			if got := commonPrefix(a, b); got != d {
				t.Fatal(fmt.Sprintf("prefix n=%d d=%d got %d", n, d, got))
			}
			a2, b2 := bytes.Repeat([]byte{7}, n), bytes.Repeat([]byte{7}, n)
			if d < n {
				b2[n-1-d] = 8
			}
			if got := commonSuffix(a2, b2); got != d {
				t.Fatal(fmt.Sprintf("suffix n=%d d=%d got %d", n, d, got))
			}
		}
	}
}

func BenchmarkSamples(b *testing.B) {
	data := random(12, 8<<20)
	b.SetBytes(int64(len(data)))
	var dst []Sample
	for i := 0; i < b.N; i++ {
		dst = Samples(data, 7, dst[:0])
	}
}
