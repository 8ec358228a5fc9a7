package reader

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"

	"arc/format"
	"arc/internal/testtree"
)

// planIndex is an index of nb blocks of 1 KiB, perFrame to a frame, and
// one regular file (inode j) for each entry of files, reading one byte of
// each block listed.
func planIndex(nb, perFrame int, files [][]uint32) *format.Index {
	const bs = 1 << 10
	x := &format.Index{}
	x.Blocks.Codec = make([]uint8, nb)
	x.BlockRawOff = make([]uint64, nb+1)
	for b := range nb + 1 {
		x.BlockRawOff[b] = uint64(b * bs)
	}
	for first := 0; first < nb; first += perFrame {
		x.Frames = append(x.Frames, uint32(min(perFrame, nb-first)))
		x.FrameFirstBlock = append(x.FrameFirstBlock, uint32(first))
	}
	x.FrameFirstBlock = append(x.FrameFirstBlock, uint32(nb))
	for _, blocks := range files {
		x.Inodes.DataStart = append(x.Inodes.DataStart, uint64(len(x.Extents.Off)))
		x.Inodes.DataCount = append(x.Inodes.DataCount, uint32(len(blocks)))
		for _, b := range blocks {
			x.Extents.Off = append(x.Extents.Off, uint64(b)*bs)
			x.Extents.Len = append(x.Extents.Len, 1)
		}
	}
	return x
}

// planRun hands out the files of x in inode order through a plan of a
// cache of cacheBlocks blocks, each written (done) before the next is
// handed out unless it is in open, and records what the plan let go of
// to stay within its budget (settle) and what it asked for ahead.
type planRun struct {
	p        *blockPlan
	dropped  []uint32
	asked    [][]uint32
	settling bool
}

func newPlanRun(x *format.Index, cacheBlocks int, window int64) *planRun {
	inos := make([]uint32, len(x.Inodes.DataStart))
	for i := range inos {
		inos[i] = uint32(i)
	}
	return &planRun{p: newBlockPlan(x, inos, int64(cacheBlocks)<<10, window)}
}

func (r *planRun) run(open ...int) {
	for j := range len(r.p.start) - 1 {
		r.settling = true
		r.p.feed(j, r.drop, r.prefetch)
		r.settling = false
		if !slices.Contains(open, j) {
			r.p.done(j, r.drop)
		}
	}
}

func (r *planRun) drop(b uint32) {
	if r.settling { // not a block's last reader written
		r.dropped = append(r.dropped, b)
	}
}

func (r *planRun) prefetch(keys []uint32) { r.asked = append(r.asked, slices.Clone(keys)) }

func TestBlockPlanLetsGoOfTheBlockNeededFarthestAhead(t *testing.T) {
	// Two blocks fit. When file 3 brings block 2, blocks 0 and 1 are
	// held: block 1 is read next by file 4, block 0 by file 5, so block
	// 0 goes, although file 2 read it after file 1 read block 1 (least
	// recently used would let block 1 go, and decode it again at once).
	x := planIndex(3, 3, [][]uint32{{0}, {1}, {0}, {2}, {1}, {0}})
	r := newPlanRun(x, 2, 0)
	r.run()
	if want := []uint32{0}; !slices.Equal(r.dropped, want) {
		t.Errorf("let go of %v to stay within the budget; want %v", r.dropped, want)
	}
}

func TestBlockPlanKeepsTheBlocksOfFilesBeingWritten(t *testing.T) {
	x := planIndex(3, 3, [][]uint32{{0}, {1}, {0}, {2}, {1}, {0}})
	t.Run("the farthest is being read: the next goes", func(t *testing.T) {
		r := newPlanRun(x, 2, 0)
		r.run(2) // file 2, which reads block 0, is still being written
		if want := []uint32{1}; !slices.Equal(r.dropped, want) {
			t.Errorf("let go of %v; want %v", r.dropped, want)
		}
	})
	t.Run("all are being read: none goes", func(t *testing.T) {
		r := newPlanRun(x, 2, 0)
		r.run(1, 2)
		if len(r.dropped) != 0 {
			t.Errorf("let go of %v, which files being written read", r.dropped)
		}
	})
}

func TestBlockPlanLetsABlockGoOnceItsLastReaderIsWritten(t *testing.T) {
	x := planIndex(2, 2, [][]uint32{{0}, {0, 1}, {1}})
	p := newPlanRun(x, 8, 0).p
	var dropped []uint32
	drop := func(b uint32) { dropped = append(dropped, b) }
	for j := range 3 {
		p.feed(j, drop, func([]uint32) {})
	}
	for _, step := range []struct {
		done int
		want []uint32
	}{{1, nil}, {0, []uint32{0}}, {2, []uint32{0, 1}}} {
		p.done(step.done, drop)
		if !slices.Equal(dropped, step.want) {
			t.Fatalf("after file %d: let go of %v; want %v", step.done, dropped, step.want)
		}
	}
	if p.settle(drop, func([]uint32) {}); p.held != 0 {
		t.Errorf("%d bytes held after every file was written", p.held)
	}
}

func TestBlockPlanAsksAheadForTheBlocksNoFileHasReadYet(t *testing.T) {
	// Blocks 1 and 4 are read by no file (left out of the extraction).
	x := planIndex(6, 2, [][]uint32{{0}, {2}, {3}, {5}})
	for _, c := range []struct {
		name   string
		window int64
		want   [][]uint32 // asked for, a frame at a time
	}{
		{"a window of three blocks", 3 << 10, [][]uint32{{2, 3}, {5}}},
		{"a window of two blocks", 2 << 10, [][]uint32{{2, 3}, {5}}},
		{"a window of one block", 1 << 10, [][]uint32{{2}, {3}, {5}}},
		{"no window", 0, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := newPlanRun(x, 64, c.window)
			r.run()
			if !slices.EqualFunc(r.asked, c.want, slices.Equal) {
				t.Errorf("asked for %v; want %v", r.asked, c.want)
			}
		})
	}
}

// An extraction whose cache holds less than one block still writes every
// file whole.
func TestExtractWithACacheSmallerThanABlockRestoresTheTree(t *testing.T) {
	src, vol := packTree(t, testtree.Options{Seed: 5, Files: 40, LargeSize: 700 << 10, Dups: 6, NoXattrs: true})
	a, err := Open(vol, Options{CacheSize: 16 << 10}) // blocks of 64 KiB
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	dest := t.TempDir()
	root := os.Geteuid() == 0
	if _, err := a.Extract(dest, ExtractOptions{Workers: 8}); err != nil {
		t.Fatal(err)
	}
	if err := testtree.Compare(src, dest, testtree.CompareOptions{IgnoreOwner: !root}).Err(); err != nil {
		t.Fatal(err)
	}
	if st := a.CacheStats(); st.Items != 0 {
		t.Errorf("%d blocks left in the cache after the extraction", st.Items)
	}
}

// An extraction's read-ahead goes to a batch decoder (a GPU engine) a
// frame at a time, and what it decodes is checked: wrong bytes from it
// never reach a file.
func TestExtractReadsAheadThroughTheBatchDecoder(t *testing.T) {
	var entries []entry
	for i := range 200 {
		entries = append(entries, reg(fmt.Sprintf("f%03d", i), randBytes(3000, byte(i))))
	}
	b := buildArchive(t, t.TempDir(), "arc", entries, buildOpts{blockSize: 4096, frameBlocks: 8})
	for _, broken := range []bool{false, true} {
		var calls, blocks atomic.Int64
		a := openBuiltWith(t, b, Options{DecodeBatch: countingDecoder(broken, &calls, &blocks)})
		dest := t.TempDir()
		if _, err := a.Extract(dest, ExtractOptions{Workers: 4, NoSameOwner: true}); err != nil {
			t.Fatalf("broken=%v: %v", broken, err)
		}
		for _, e := range entries {
			got, err := os.ReadFile(filepath.Join(dest, e.path))
			if err != nil || !bytes.Equal(got, dataOf(e.segs)) {
				t.Fatalf("broken=%v: %s differs (%v)", broken, e.path, err)
			}
		}
		if calls.Load() == 0 || blocks.Load() <= calls.Load() {
			t.Errorf("broken=%v: %d batch calls for %d blocks; want batches of several", broken, calls.Load(), blocks.Load())
		}
	}
}
