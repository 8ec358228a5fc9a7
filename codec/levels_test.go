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
// max (hashes of the output of commit 03b970e): changes to level high must
// not move them.
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

var goldenLevels = map[Level]string{LevelFast: "1e031554f32d153a", LevelDefault: "c26b2ce22084c4bd", LevelMax: "08c864005030290b"}
