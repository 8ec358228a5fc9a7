package reader

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"arc/format"
)

// spreadTree has "b" made of n pieces of 100 bytes, deduplicated: one in
// each of "a"'s n blocks.
func spreadTree(bs, n int) (entries []entry, b []byte) {
	a := randBytes(n*bs, 9)
	var segs []seg
	for k := range n {
		off := uint64(k*bs + 100)
		segs = append(segs, seg{ref: true, refOff: off, refLen: 100})
		b = append(b, a[off:off+100]...)
	}
	return []entry{reg("a", a), {path: "b", mode: format.ModeReg | 0o644, segs: segs}}, b
}

// TestSpreadKeepsToASmallCache checks that the blocks a read decodes
// beside its own are held to the cache's size, as read-ahead is: with a
// cache of two blocks, a read of pieces in eight of them decodes each
// once, as one after the other did, and the blocks held and being decoded
// stay within the cache's bound. (Unbounded, up to eight decoding at once
// in a cache of two evicted most of them before the read got to them, to
// decode them again: 9 to 15 loads for 8 blocks.)
func TestSpreadKeepsToASmallCache(t *testing.T) {
	const bs, n = 4096, 8
	entries, want := spreadTree(bs, n)
	bt := buildArchive(t, t.TempDir(), "s", entries, buildOpts{blockSize: bs})
	a, err := Open(bt.volumes[0], Options{Prefetch: -1, CacheSize: 2 * bs})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	var mu sync.Mutex
	loads := 0
	var over []string
	a.loadStarted = func(b uint32) {
		st := a.cache.Stats()
		mu.Lock()
		loads++
		if held := st.Bytes + int64(st.InFlight)*bs; held > st.MaxBytes {
			over = append(over, fmt.Sprintf("block %d: %d bytes held and %d blocks in flight", b, st.Bytes, st.InFlight))
		}
		mu.Unlock()
		time.Sleep(5 * time.Millisecond) // a decode takes a while: loads side by side meet
	}
	ino := inodeOf(t, a, "b")
	for i := range 3 {
		got := make([]byte, len(want))
		if k, err := a.ReadAt(ino, got, 0); k != len(want) || err != nil || !bytes.Equal(got, want) {
			t.Fatalf("ReadAt: %d bytes, %v", k, err)
		}
		a.spread.Wait()
		mu.Lock()
		if loads > n || len(over) > 0 {
			t.Errorf("read %d: %d loads for %d blocks; over the cache's bound of %d: %v", i, loads, n, 2*bs, over)
		}
		loads, over = 0, nil
		mu.Unlock()
	}
}

// TestCloseDuringSpreadingReads checks that reads may go on while the
// archive is closed (a load that passed the cache's check just before
// Close fails on the closed volumes, see TestALoadAfterCloseOpensNoVolume):
// the goroutines a read starts beside it are not added to the group that
// Close is waiting for (sync.WaitGroup: an Add from zero must happen
// before the Wait), which the race detector reports and which can panic.
func TestCloseDuringSpreadingReads(t *testing.T) {
	const bs, n = 4096, 8
	entries, want := spreadTree(bs, n)
	bt := buildArchive(t, t.TempDir(), "s", entries, buildOpts{blockSize: bs})
	for range 100 {
		a, err := Open(bt.volumes[0], Options{Prefetch: -1})
		if err != nil {
			t.Fatal(err)
		}
		a.loadStarted = func(uint32) { time.Sleep(50 * time.Microsecond) }
		ino := inodeOf(t, a, "b")
		var wg sync.WaitGroup
		for r := range 4 {
			wg.Go(func() {
				got := make([]byte, len(want))
				for i := range 20 {
					a.ReadAt(ino, got[:100*(n-r)], int64(100*((i+r)%n)))
				}
			})
		}
		time.Sleep(time.Duration(rand.IntN(300)) * time.Microsecond)
		a.Close()
		wg.Wait()
	}
}
