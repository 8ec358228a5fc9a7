package chunk

import (
	"bytes"
	"math/rand"
	"testing"

	"arc/writer/gear"
)

func chunks(p Params, data []byte) [][]byte {
	var out [][]byte
	last := 0
	for _, end := range p.Cuts(len(data), gear.Samples(data, p.MaxSampleBits(), nil), nil) {
		out = append(out, data[last:end])
		last = int(end)
	}
	return out
}

func random(seed int64, n int) []byte {
	b := make([]byte, n)
	rand.New(rand.NewSource(seed)).Read(b)
	return b
}

func TestChunkSizesStayInBoundsAndNearTheAverage(t *testing.T) {
	p, err := NewParams(8 << 10)
	if err != nil {
		t.Fatal(err)
	}
	cs := chunks(p, random(1, 8<<20))
	for i, c := range cs[:len(cs)-1] {
		if len(c) < p.Min || len(c) > p.Max {
			t.Fatalf("chunk %d has %d bytes, outside [%d,%d]", i, len(c), p.Min, p.Max)
		}
	}
	mean := (8 << 20) / len(cs)
	if mean < p.Avg/2 || mean > p.Avg*2 {
		t.Fatalf("mean chunk %d bytes for average %d", mean, p.Avg)
	}
}

// An edit changes only the chunks around it: every chunk of the old content
// far from the edit is found again in the new content.
func TestBoundariesAreStableUnderInsertionsAndDeletions(t *testing.T) {
	p, _ := NewParams(4 << 10)
	old := random(2, 2<<20)
	edits := map[string][]byte{
		"insert 100 bytes in the middle": append(append(append([]byte(nil), old[:1<<20]...), random(3, 100)...), old[1<<20:]...),
		"delete 5000 bytes":              append(append([]byte(nil), old[:700<<10]...), old[700<<10+5000:]...),
		"prepend one byte":               append([]byte{42}, old...),
	}
	before := map[string]bool{}
	for _, c := range chunks(p, old) {
		before[string(c)] = true
	}
	for name, data := range edits {
		t.Run(name, func(t *testing.T) {
			after := chunks(p, data)
			lost := 0
			for _, c := range after {
				if !before[string(c)] {
					lost++
				}
			}
			if lost > 3 {
				t.Fatalf("%d of %d chunks changed, want at most 3 around the edit", lost, len(after))
			}
		})
	}
}

func TestCutIsDeterministicAndCoversTheInput(t *testing.T) {
	p, _ := NewParams(1 << 10)
	data := random(4, 300<<10)
	a, b := chunks(p, data), chunks(p, data)
	if len(a) != len(b) || !bytes.Equal(bytes.Join(a, nil), data) {
		t.Fatal("chunks differ between runs or do not cover the input")
	}
	for _, n := range []int{0, 1, p.Min, p.Min + 1, p.Max, p.Max + 1, 3*p.Max + 5} {
		cs := chunks(p, make([]byte, n))
		if len(bytes.Join(cs, nil)) != n {
			t.Fatalf("chunks of %d zero bytes cover %d", n, len(bytes.Join(cs, nil)))
		}
		for _, c := range cs {
			if len(c) == 0 || len(c) > p.Max {
				t.Fatalf("zero input of %d bytes: a chunk of %d bytes", n, len(c))
			}
		}
	}
}

func TestTableFindsWhatWasPutAcrossGrowth(t *testing.T) {
	tab := NewTable(0)
	r := rand.New(rand.NewSource(5))
	keys := make([]Key, 10000)
	for i := range keys {
		r.Read(keys[i][:])
		tab.Put(&keys[i], uint64(i)*7)
	}
	tab.Put(&keys[3], 999) // the first offset is kept
	if tab.Len() != len(keys) {
		t.Fatalf("len %d", tab.Len())
	}
	for i := range keys {
		if off, ok := tab.Get(&keys[i]); !ok || off != uint64(i)*7 {
			t.Fatalf("key %d: %d %v", i, off, ok)
		}
	}
	var missing Key
	missing[0] = 1
	if _, ok := tab.Get(&missing); ok {
		t.Fatal("found a key never put")
	}
}

// TestTableStaysWithinItsBound: a table made with a bound never takes
// more, counting the moment it doubles; once full, new chunks take older
// ones' places (the latest ones are found), every lookup still ends, and
// Full counts what was lost.
func TestTableStaysWithinItsBound(t *testing.T) {
	for _, bound := range []int64{1, 100 << 10, 1 << 20, 5 << 20} {
		tab := NewTable(bound)
		r := rand.New(rand.NewSource(int64(bound)))
		keys := make([]Key, 200000)
		peak := tab.Bytes()
		for i := range keys {
			r.Read(keys[i][:])
			before := tab.Bytes()
			tab.Put(&keys[i], uint64(i))
			if after := tab.Bytes(); after != before && before+after > peak {
				peak = before + after // the old arrays and the new, side by side
			}
		}
		floor := int64(minSlots * SlotBytes)
		if peak > bound && tab.Bytes() > floor {
			t.Errorf("bound %d: the table took %d bytes while doubling", bound, peak)
		}
		if bound >= 1<<20 && tab.Bytes()*2*3/2 <= bound {
			t.Errorf("bound %d: stopped at %d bytes where doubling once more fits", bound, tab.Bytes())
		}
		lost := tab.Lost()
		if lost == 0 || tab.Len() >= len(tab.keys) {
			t.Fatalf("bound %d: lost %d, %d chunks in %d slots", bound, lost, tab.Len(), len(tab.keys))
		}
		if int64(len(keys)-tab.Len()) > lost {
			t.Errorf("bound %d: %d chunks unaccounted for (%d in the table, %d lost)", bound, int64(len(keys)-tab.Len())-lost, tab.Len(), lost)
		}
		// The last chunk put is in its home slot unless that slot was
		// empty at the bound; most recent chunks are found.
		found := 0
		for i := len(keys) - 100; i < len(keys); i++ {
			if off, ok := tab.Get(&keys[i]); ok {
				if off != uint64(i) {
					t.Fatalf("bound %d: key %d at %d", bound, i, off)
				}
				found++
			}
		}
		if found < 50 {
			t.Errorf("bound %d: %d of the last 100 chunks found", bound, found)
		}
		var missing Key
		missing[0] = 1
		if _, ok := tab.Get(&missing); ok {
			t.Fatal("found a key never put")
		}
	}
}

// A table filled up to its bound without giving up a chunk is not full:
// create must not say chunks were lost when none were.
func TestTableFilledToItsBoundLosesNothing(t *testing.T) {
	tab := NewTable(1) // the floor: 1,024 slots, 768 chunks
	r := rand.New(rand.NewSource(9))
	var k Key
	for range 768 {
		r.Read(k[:])
		tab.Put(&k, 1)
	}
	if lost := tab.Lost(); lost != 0 || tab.Len() != 768 {
		t.Fatalf("768 chunks in 1,024 slots: lost %d, len %d", lost, tab.Len())
	}
	r.Read(k[:])
	tab.Put(&k, 2)
	if lost := tab.Lost(); lost != 1 {
		t.Fatalf("one more: lost %d", lost)
	}
}

func TestParamsRejectBadSizes(t *testing.T) {
	for _, avg := range []int{0, 100, 512, 3000, 128 << 20} {
		if _, err := NewParams(avg); err == nil {
			t.Errorf("avg %d accepted", avg)
		}
	}
}

func BenchmarkCut(b *testing.B) {
	p, _ := NewParams(32 << 10)
	data := random(6, 8<<20)
	b.SetBytes(int64(len(data)))
	for i := 0; i < b.N; i++ {
		chunks(p, data)
	}
}
