// Package chunk cuts content into content-defined chunks (FastCDC:
// gear hash, normalised chunk sizes) and keeps a compact table of the chunks
// stored so far, keyed by BLAKE3-256.
//
// Boundaries depend only on the content and the parameters, so an insertion
// or deletion changes the chunks around it and no others. Algorithm is the
// versioned name recorded in archives: any change to the cut rule or the gear
// table must get a new name.
package chunk

import (
	"encoding/binary"
	"fmt"
	"math/bits"

	"arc/writer/gear"
)

// Algorithm names this package's cut rule: cuts at gear.Samples positions of
// the continuous 64-byte gear hash (gear's table), FastCDC normalisation
// level 2. Any change to the rule or the table must get a new name.
const Algorithm = "fastcdc-gearsample64-norm2-v2"

// Params are the chunk size bounds; Avg must be a power of two.
type Params struct{ Min, Avg, Max int }

// NewParams derives min = avg/4 and max = avg×4 from avg, as the --chunk-size
// flag promises.
func NewParams(avg int) (Params, error) {
	p := Params{Min: avg / 4, Avg: avg, Max: avg * 4}
	return p, p.Validate()
}

// MaxSampleBits is the coarsest sampling Cuts can work from: a cut needs
// at least as many clear top bits as a sample has.
func (p Params) MaxSampleBits() uint { return uint(bits.TrailingZeros(uint(p.Avg))) - 2 }

// Validate checks the bounds.
func (p Params) Validate() error {
	if p.Avg < 1024 || p.Avg > 64<<20 || bits.OnesCount(uint(p.Avg)) != 1 {
		return fmt.Errorf("chunk size %d must be a power of two from 1 KiB to 64 MiB", p.Avg)
	}
	if p.Min < 64 || p.Min > p.Avg || p.Max < p.Avg {
		return fmt.Errorf("chunk bounds min %d avg %d max %d out of order", p.Min, p.Avg, p.Max)
	}
	return nil
}

// Cuts returns the end of every chunk of n bytes whose gear samples (taken
// with at most MaxSampleBits bits) are given, appended to dst. Below the
// average size a stricter mask (two more clear bits than the average's)
// makes a cut less likely, above it a looser one (two fewer) more likely:
// chunk sizes cluster around Avg. A chunk reaching Max is cut there.
func (p Params) Cuts(n int, samples []gear.Sample, dst []uint32) []uint32 {
	b := uint(bits.TrailingZeros(uint(p.Avg)))
	strict := ^uint64(0) << (64 - (b + 2))
	loose := ^uint64(0) << (64 - (b - 2))
	last := 0
	for _, s := range samples {
		pos := int(s.Pos)
		for pos-last > p.Max {
			last += p.Max
			dst = append(dst, uint32(last))
		}
		d := pos - last
		if d < p.Min {
			continue
		}
		m := loose
		if d < p.Avg {
			m = strict
		}
		if s.Hash&m == 0 {
			last = pos
			dst = append(dst, uint32(pos))
		}
	}
	for n-last > p.Max {
		last += p.Max
		dst = append(dst, uint32(last))
	}
	if n > last {
		dst = append(dst, uint32(n))
	}
	return dst
}

// Key identifies a chunk: its BLAKE3-256.
type Key [32]byte

// Table maps chunk keys to the stream offset where the chunk's bytes lie
// contiguously. It is open-addressed over flat arrays (no Go map entry or
// string per chunk): SlotBytes a slot, kept at most 3/4 full.
//
// Its memory is bounded: it doubles only while the old and the new arrays
// together fit the bound it was made with. At that size a new chunk takes
// the place of the one in its home slot (recent data is what later data
// repeats most: a new release of what came before), or goes unrecorded
// where that slot is empty, so that the table never fills further and
// every lookup still ends at an empty slot. Replacing a key leaves its
// slot occupied, so the other keys probing past it are still found.
type Table struct {
	keys     []Key
	offs     []uint64 // offset+1; 0 marks an empty slot
	n        int
	maxSlots int   // the most slots the bound allows (a power of two)
	lost     int64 // chunks replaced or left unrecorded at the bound
}

// SlotBytes is the memory of one slot of a Table.
const SlotBytes = 40 // a Key and an offset

const minSlots = 1024

// NewTable returns an empty table whose arrays never take more than
// maxBytes, counting the moment they double; at least minSlots slots
// whatever maxBytes says. maxBytes <= 0 means no bound.
func NewTable(maxBytes int64) *Table {
	t := &Table{keys: make([]Key, minSlots), offs: make([]uint64, minSlots), maxSlots: minSlots}
	switch {
	case maxBytes <= 0:
		t.maxSlots = 1 << 62
	default:
		// Doubling to s slots holds s/2 + s at once: 3/2 × s × SlotBytes.
		for s := int64(t.maxSlots) * 2; s <= maxBytes/(SlotBytes*3/2); s *= 2 {
			t.maxSlots = int(s)
		}
	}
	return t
}

// Len is the number of chunks in the table.
func (t *Table) Len() int { return t.n }

// Bytes is the memory of the table's arrays now.
func (t *Table) Bytes() int64 { return int64(len(t.keys)) * SlotBytes }

// Lost is how many chunks the table has given up at its bound: taken an
// older chunk's place or gone unrecorded (none while the table was merely
// filled up to it).
func (t *Table) Lost() int64 { return t.lost }

func (t *Table) slot(k *Key) int {
	return int(binary.LittleEndian.Uint64(k[:8]) & uint64(len(t.keys)-1))
}

// Get returns the stream offset of chunk k.
func (t *Table) Get(k *Key) (uint64, bool) {
	mask := len(t.keys) - 1
	for i := t.slot(k); ; i = (i + 1) & mask {
		if t.offs[i] == 0 {
			return 0, false
		}
		if t.keys[i] == *k {
			return t.offs[i] - 1, true
		}
	}
}

// Put records chunk k at stream offset off, keeping the first offset if k
// is already known. At the bound it replaces the chunk in k's home slot.
func (t *Table) Put(k *Key, off uint64) {
	if (t.n+1)*4 > len(t.keys)*3 {
		if len(t.keys) < t.maxSlots {
			t.grow()
		} else {
			t.replace(k, off)
			return
		}
	}
	mask := len(t.keys) - 1
	for i := t.slot(k); ; i = (i + 1) & mask {
		if t.offs[i] == 0 {
			t.keys[i], t.offs[i] = *k, off+1
			t.n++
			return
		}
		if t.keys[i] == *k {
			return
		}
	}
}

func (t *Table) replace(k *Key, off uint64) {
	if _, ok := t.Get(k); ok {
		return
	}
	t.lost++
	if i := t.slot(k); t.offs[i] != 0 {
		t.keys[i], t.offs[i] = *k, off+1
	}
}

func (t *Table) grow() {
	old := *t
	t.keys = make([]Key, 2*len(old.keys))
	t.offs = make([]uint64, 2*len(old.offs))
	t.n = 0
	for i, o := range old.offs {
		if o != 0 {
			t.Put(&old.keys[i], o-1)
		}
	}
}
