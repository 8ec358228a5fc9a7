package codec

import (
	"arc/format"
	"bytes"
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
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
// far parse runs, gains so much that the near one does not run, and its
// lz4x block is kept; where nothing repeats from more than 64 KiB back,
// the sample keeps the far parse from running, and the block is standard
// LZ4. Either way high is smaller than default.
func TestHighTakesTheFarWindowWhereRepeatsAreFar(t *testing.T) {
	if testing.Short() {
		t.Skip("16 MiB blocks")
	}
	for _, tc := range []struct {
		name    string
		src     []byte
		want    uint8
		farRuns bool
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
		if ran := high.far != nil; ran != tc.farRuns {
			t.Errorf("%s: far parse ran: %t, want %t", tc.name, ran, tc.farRuns)
		}
		if ran := high.near.base != baseGap; ran == tc.farRuns {
			t.Errorf("%s: near parse ran: %t, want %t", tc.name, ran, !tc.farRuns)
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

// TestFarCoverSeesOnlyFarRepeats checks the sample behind level high's
// far gate: repeats from more than 64 KiB back count (up to 256 bytes
// each), nearer ones and unrepeated bytes do not.
func TestFarCoverSeesOnlyFarRepeats(t *testing.T) {
	random := corpus(t, false)["random-256K"]
	piece := random[:200<<10]
	tab := make([]uint32, 1<<14)
	for _, tc := range []struct {
		name     string
		src      []byte
		min, max float64
	}{
		{"random", random, 0, 0},
		{"repeat 32 KiB back", slices.Concat(piece[:32<<10], piece[:32<<10]), 0, 0},
		{"repeat 200 KiB back", slices.Concat(piece, piece), 100, 256},
		{"repeat 64 KiB - 1 back", slices.Concat(piece[:maxOffsetLZ4], piece[:maxOffsetLZ4]), 0, 0},
	} {
		got := farCover(tc.src, tab)
		if got < tc.min || got > tc.max {
			t.Errorf("%s: cover %.1f, want %g..%g", tc.name, got, tc.min, tc.max)
		}
	}
	// The smallest tables stay in range (-tags purego checks the index).
	for _, n := range []int{1, 2} {
		if got := farCover(slices.Concat(piece, piece), make([]uint32, n)); got < 0 || got > 256 {
			t.Errorf("%d-entry table: cover %.1f", n, got)
		}
	}
}
