package codec

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"

	"arc/format"
)

// levelStream returns n bytes of word-like text in which 256 KiB pieces
// come back, lightly changed, more than 64 KiB later: blocks where far
// matches pay (farFrac 1) or hardly exist (farFrac 0).
func levelStream(n int, seed uint64, farFrac float64) []byte {
	r := rand.New(rand.NewPCG(seed, 7))
	words := []string{"func", "return", "err", "nil", "if", "for", "range", "byte", "int", "src", "dst", ":=", "(", ")", "{", "}", "\n\t", "len", "make", "0x9E37", "case", "struct"}
	var b []byte
	for len(b) < n {
		if len(b) > 1<<20 && r.Float64() < farFrac {
			from := r.IntN(len(b) - 256<<10)
			piece := bytes.Clone(b[from : from+256<<10])
			for k := 0; k < 64; k++ {
				piece[r.IntN(len(piece))] = byte(r.Uint32())
			}
			b = append(b, piece...)
			continue
		}
		for k := 0; k < 20000; k++ {
			b = append(b, words[r.IntN(len(words))]...)
			b = append(b, ' ')
			if r.IntN(8) == 0 {
				b = strconv.AppendUint(b, r.Uint64N(1<<20), 10)
			}
		}
	}
	return b[:n]
}

// TestOtherLevelsUnchanged pins the output of levels fast, default and
// max: changes to one level must not move the others. (fast and default:
// the output of commit 03b970e; max: the hash-chain parse, 2026-12-04.)
func TestOtherLevelsUnchanged(t *testing.T) {
	c := corpus(t, false)
	var names []string
	for n := range c {
		if !strings.Contains(n, "/") { // not the Go installation's files
			names = append(names, n)
		}
	}
	slices.Sort(names)
	inputs := [][]byte{levelStream(9<<20, 1, 0.5), levelStream(2<<20, 2, 0)}
	for _, n := range names {
		inputs = append(inputs, c[n])
	}
	for _, l := range []Level{LevelFast, LevelDefault, LevelMax} {
		e, _ := NewEncoder(Options{Codec: "lz4x", Level: l})
		h := sha256.New()
		for _, src := range inputs {
			id, st := e.Encode(src)
			h.Write([]byte{id})
			h.Write(st)
		}
		if got := fmt.Sprintf("%x", h.Sum(nil)[:8]); got != goldenLevels[l] {
			t.Errorf("level %s: output hash %s, want %s", l, got, goldenLevels[l])
		}
	}
}

var goldenLevels = map[Level]string{LevelFast: "1e031554f32d153a", LevelDefault: "c26b2ce22084c4bd", LevelMax: "e41e0f7224cfe3c9"}

// nearOnly returns n bytes of random 32 KiB chunks, each repeated once
// right after itself: repeats, none of them beyond 64 KiB.
func nearOnly(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 9))
	b := make([]byte, 0, n+64<<10)
	chunk := make([]byte, 32<<10)
	for len(b) < n {
		for i := range chunk {
			chunk[i] = byte(r.Uint32())
		}
		b = append(append(b, chunk...), chunk...)
	}
	return b[:n]
}

// TestHighTakesTheFarWindowWhereRepeatsAreFar checks level high's choice
// per block: where 256 KiB pieces come back from megabytes before, the
// seeds cover much of the block, the far parse runs alone and its lz4x
// block is kept; where nothing repeats from more than 64 KiB back, the
// near parse runs alone and the block is standard LZ4. Either way high is
// smaller than default.
func TestHighTakesTheFarWindowWhereRepeatsAreFar(t *testing.T) {
	if testing.Short() {
		t.Skip("16 MiB blocks")
	}
	for _, tc := range []struct {
		name string
		src  []byte
		want uint8
		far  bool // the far parse runs, not the near one
	}{
		{"far repeats", levelStream(16<<20, 3, 1), format.CodecLZ4X, true},
		{"near repeats", nearOnly(16<<20, 3), format.CodecLZ4, false},
	} {
		src := tc.src
		high, _ := NewEncoder(Options{Codec: "lz4x", Level: LevelHigh})
		def, _ := NewEncoder(Options{Codec: "lz4x", Level: LevelDefault})
		id, stored := high.Encode(src)
		_, base := def.Encode(src)
		t.Logf("%s: codec %d, %d bytes (default %d)", tc.name, id, len(stored), len(base))
		if id != tc.want {
			t.Errorf("%s: codec %d, want %d", tc.name, id, tc.want)
		}
		// A matcher's base moves on past each block it parsed.
		if ran := high.far.base != baseGap; ran != tc.far {
			t.Errorf("%s: far parse ran: %t, want %t", tc.name, ran, tc.far)
		}
		if ran := high.near.base != baseGap; ran == tc.far {
			t.Errorf("%s: near parse ran: %t, want %t", tc.name, ran, !tc.far)
		}
		if len(stored) >= len(base) {
			t.Errorf("%s: high stored %d bytes, default %d", tc.name, len(stored), len(base))
		}
		dst := make([]byte, len(src))
		if err := NewDecoder().Decode(id, dst, stored); err != nil || !bytes.Equal(dst, src) {
			t.Fatalf("%s: round trip failed: %v", tc.name, err)
		}
	}
}

// TestFarSeedsFindOnlyFarRepeats checks the seeds behind level high's far
// parse and its gate: a repeat from more than 64 KiB back is found whole
// (from its first byte to where the last literals begin), nearer ones and
// unrepeated bytes not at all; every seed is a true repeat, and seeds come
// in order without overlapping.
func TestFarSeedsFindOnlyFarRepeats(t *testing.T) {
	random := corpus(t, false)["random-256K"]
	piece := random[:200<<10]
	for _, tc := range []struct {
		name     string
		src      []byte
		min, max int
	}{
		{"random", random, 0, 0},
		{"repeat 32 KiB back", slices.Concat(piece[:32<<10], piece[:32<<10]), 0, 0},
		{"repeat 200 KiB back", slices.Concat(piece, piece), len(piece) - lastLiterals, len(piece) - lastLiterals},
		{"repeat 64 KiB - 1 back", slices.Concat(piece[:maxOffsetLZ4], piece[:maxOffsetLZ4]), 0, 0},
		{"two far repeats", slices.Concat(piece, random[200<<10:], piece[:80<<10], piece[100<<10:]), 180<<10 - lastLiterals, 180<<10 - lastLiterals},
	} {
		for _, tabLog := range []int{20, 0, 1} { // the smallest tables stay in range (-tags purego checks)
			p := *levels[LevelHigh].Far
			p.FarLog = tabLog
			m := newMatcher(p)
			got := m.farSeeds(tc.src, MaxOffsetLZ4X)
			if tabLog == 20 && (got < tc.min || got > tc.max) {
				t.Errorf("%s: seeds cover %d bytes, want %d..%d", tc.name, got, tc.min, tc.max)
			}
			end, sum := 0, 0
			for _, sd := range m.seed.seeds {
				if sd.s < end || sd.e <= sd.s || sd.off <= maxOffsetLZ4 || sd.s < sd.off || sd.e > len(tc.src)-lastLiterals ||
					!bytes.Equal(tc.src[sd.s:sd.e], tc.src[sd.s-sd.off:sd.e-sd.off]) {
					t.Fatalf("%s, table 2^%d: bad seed %+v after %d", tc.name, tabLog, sd, end)
				}
				end, sum = sd.e, sum+sd.e-sd.s
			}
			if sum != got {
				t.Errorf("%s, table 2^%d: cover %d, seeds sum to %d", tc.name, tabLog, got, sum)
			}
		}
	}
}
