package writer

import (
	"context"
	"fmt"
	"math/rand"
	"path/filepath"
	"testing"
)

func TestReadRingWrapsAndChargesTheSkippedTail(t *testing.T) {
	r := newReadRing(100)
	defer r.close()
	steps := []struct {
		n          int
		start      int // offset of the region in the ring
		held       int64
		afterwards int // head
	}{
		{30, 0, 30, 30},
		{40, 30, 40, 70},
		{30, 70, 30, 100}, // fits exactly
		{20, 0, 20, 20},
		{50, 20, 50, 70},
		{40, 0, 40 + 30, 40}, // does not fit before the end: skips 30
	}
	for i, s := range steps {
		region, held := r.take(s.n)
		if len(region) != s.n || cap(region) != s.n || &region[0] != &r.buf[s.start] || held != s.held || r.head != s.afterwards {
			t.Fatalf("step %d: take(%d) = len %d cap %d, held %d, head %d; want a region at %d, held %d, head %d",
				i, s.n, len(region), cap(region), held, r.head, s.start, s.held, s.afterwards)
		}
	}
}

// Many files read whole through a ring a few files long: the regions wrap
// around it many times while readers run ahead of the sequencer, and every
// file still comes back with its own content.
func TestFilesReadThroughASmallRingComeBackWhole(t *testing.T) {
	src := t.TempDir()
	rng := rand.New(rand.NewSource(7))
	files := map[string][]byte{}
	for i := 0; i < 120; i++ {
		files[fmt.Sprintf("d%d/f%03d", i%7, i)] = randBytes(int64(100+i), 1+rng.Intn(60<<10))
	}
	writeTree(t, src, files)
	o := small()
	o.wholeMax = 64 << 10
	o.readAhead = 150 << 10 // two or three files ahead
	res, err := Create(context.Background(), filepath.Join(t.TempDir(), "a"), []string{src}, o)
	if err != nil {
		t.Fatal(err)
	}
	a := readBack(t, res.Volumes, 0)
	a.holds(t, files)
}
