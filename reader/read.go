package reader

import (
	"fmt"
	"io"
	"sync"

	"arc/cache"
	"arc/format"
)

// ReadAt reads regular file inode ino's content at off, with io.ReaderAt
// semantics (n < len(p) only with an error, io.EOF at the end). Holes read
// as zeros. Damage gives an error wrapping ErrDamaged (*BlockError).
func (a *Archive) ReadAt(ino uint32, p []byte, off int64) (int, error) {
	size, err := a.fileSize(ino)
	if err != nil {
		return 0, err
	}
	if off < 0 {
		return 0, fmt.Errorf("inode %d: negative offset %d", ino, off)
	}
	if off >= size {
		return 0, io.EOF
	}
	want := len(p)
	if rest := size - off; int64(want) > rest {
		want = int(rest)
	}
	x := a.idx
	start, end := x.FileExtents(ino)
	e, within := x.ExtentAt(start, end, uint64(off))
	var held heldBlocks
	defer held.release()
	done := 0
	for done < want && e < end {
		l := x.Extents.Len[e] - within
		take := want - done
		if uint64(take) > l {
			take = int(l)
		}
		dst := p[done : done+take]
		if o := x.Extents.Off[e]; o == format.Hole {
			clear(dst)
		} else if n, err := a.readUnique(o+within, dst, &held); err != nil {
			return done + n, err // the bytes before the damage are good
		}
		done += take
		e++
		within = 0
	}
	if done < len(p) {
		return done, io.EOF
	}
	return done, nil
}

// View returns regular file inode ino's bytes from offset off on, as far
// as they lie in one decoded block and at most max of them, without a
// copy: they alias the block cache and stay valid until release is
// called. It returns no bytes and no error where a copy is needed instead
// (a hole), and io.EOF at or past the end. Damage errors are ReadAt's.
func (a *Archive) View(ino uint32, off int64, max int) (data []byte, release func(), err error) {
	size, err := a.fileSize(ino)
	if err != nil {
		return nil, nil, err
	}
	if off < 0 {
		return nil, nil, fmt.Errorf("inode %d: negative offset %d", ino, off)
	}
	if off >= size || max <= 0 {
		return nil, nil, io.EOF
	}
	x := a.idx
	start, end := x.FileExtents(ino)
	e, within := x.ExtentAt(start, end, uint64(off))
	if e >= end {
		return nil, nil, io.EOF
	}
	o := x.Extents.Off[e]
	if o == format.Hole {
		return nil, nil, nil
	}
	u := o + within
	b := x.BlockAt(u)
	bs, be := x.BlockRawOff[b], x.BlockRawOff[b+1]
	n := min(x.Extents.Len[e]-within, be-u, uint64(max), uint64(size-off))
	a.touch(b)
	buf, err := a.cache.Get(b)
	if err != nil {
		a.opt.Logf("arc: %v", err)
		return nil, nil, err
	}
	if u+n == be && a.seq.sequential(b) {
		a.cache.Consumed(b) // as readUnique: the reference keeps it meanwhile
	}
	return buf.Bytes()[u-bs : u-bs+n], buf.Release, nil
}

// readUnique copies unique-stream bytes [u, u+len(dst)) through the cache;
// on a block's error it says how many bytes before that block it copied.
// The blocks it goes through stay in held for the caller's next extents.
func (a *Archive) readUnique(u uint64, dst []byte, held *heldBlocks) (int, error) {
	x := a.idx
	done := 0
	for done < len(dst) {
		b := x.BlockAt(u)
		bs := x.BlockRawOff[b]
		be := x.BlockRawOff[b+1]
		buf, err := a.hold(held, b)
		if err != nil {
			a.opt.Logf("arc: %v", err)
			return done, err
		}
		n := copy(dst[done:], buf.Bytes()[u-bs:])
		done += n
		u += uint64(n)
		if u == be && a.seq.sequential(b) {
			// A sequential reader is past this block: let it go first.
			a.cache.Consumed(b)
		}
	}
	return done, nil
}

// heldBlocks are the decoded blocks one read has gone through, each with
// a reference of its own, so that the next extents in them go straight
// to their bytes. Long-distance segments make extents as short as 128
// bytes (the Go toolchains tree: 666,330 extents for 43,634 files, 1.3
// KiB on average), and asking the cache and the sequence tracker for a
// block once per extent, two locks each, cost more than copying the
// bytes (BenchmarkReadFragmented).
type heldBlocks struct {
	n     int
	bytes int // buffer capacity of the blocks held
	keys  [heldMax]uint32
	bufs  [heldMax]*cache.Buf
	// last is the block the read went through last (any: there was one),
	// for hold to tell the sequence tracker of each change of block.
	last uint32
	any  bool
}

// A read holds at most heldMax blocks and heldMaxBytes of them, or its
// newest block alone where that is larger: a held block outlives its
// eviction, so each read in progress may keep this much more than the
// cache's bound (a single block, as before, where blocks are 4 MiB or
// more). A file's extents mostly alternate between the block of its new
// bytes and a few blocks of the earlier copies it repeats.
const (
	heldMax      = 4
	heldMaxBytes = 4 << 20
)

// hold returns block b from held, or through the cache and then keeps it
// in held, letting the oldest go when the bounds call for it. Each change
// of block is recorded for read-ahead (touch), held or not: the sequence
// tracker measures how far apart a run's blocks are in changes of block
// (runGap), and a file that alternates between the block of its new
// bytes and those of the copies it repeats makes many. Told of a held
// block's first use in a read only, it took more repeats from old blocks
// for runs: a whole-tree tar of the Go tree over a 64 MiB cache read
// 2,600-2,900 blocks ahead instead of 1,600-1,700, decoded 7,700-9,000
// in all instead of 6,100-6,700, and took 0.3-0.5 s longer. The cost is
// the tracker's lock at each change of block: going through short
// extents that alternate between two blocks (BenchmarkReadFragmented,
// spread=false) reads at about 4.5-5 GB/s instead of 7-10 (3 GB/s before
// reads held blocks).
func (a *Archive) hold(held *heldBlocks, b uint32) (*cache.Buf, error) {
	if !held.any || held.last != b {
		a.touch(b)
		held.last, held.any = b, true
	}
	for i := range held.n {
		if held.keys[i] == b {
			return held.bufs[i], nil
		}
	}
	buf, err := a.cache.Get(b)
	if err != nil {
		return nil, err
	}
	size := cap(buf.Bytes()) // what the cache counts
	for held.n > 0 && (held.n == heldMax || held.bytes+size > heldMaxBytes) {
		held.bytes -= cap(held.bufs[0].Bytes())
		held.bufs[0].Release()
		copy(held.keys[:], held.keys[1:held.n])
		copy(held.bufs[:], held.bufs[1:held.n])
		held.n--
		held.bufs[held.n] = nil
	}
	held.keys[held.n], held.bufs[held.n] = b, buf
	held.n++
	held.bytes += size
	return buf, nil
}

// release lets go of every block held.
func (h *heldBlocks) release() {
	for i := range h.n {
		h.bufs[i].Release()
		h.bufs[i] = nil
	}
	h.n, h.bytes = 0, 0
}

// touch records an access to block b and, when it continues a sequential
// run in the unique stream (one handle reading on, or files copied in
// path order), asks for the blocks after it. The window is as long as the
// run so far, up to the end of the frames opt.Prefetch after b's: a run
// that only looks sequential (files whose pieces deduplication spread
// over the archive, read one after another, land next to blocks read just
// before) stops early, and a window as long as the run wastes at most as
// many decodes as the run read. A run of one block asks nothing; while
// more of the latest read-ahead was evicted unread than was read (the
// cache's Payoff), a run must be minRunWhenWasted blocks long to ask.
//
// On the Go toolchains tree with a 64 MiB cache (its 336 decoded blocks
// take 336 MiB) a whole-tree tar through the mount decoded 7,030 blocks
// this way against 19,050 with whole frames asked on every block whose
// predecessor was among the last 64 entered.
func (a *Archive) touch(b uint32) {
	run := a.seq.enter(b)
	if run < 2 || a.opt.Prefetch < 0 || (run < minRunWhenWasted && a.cache.Payoff() < 0) {
		return
	}
	x := a.idx
	f := x.FrameOf(b)
	last := len(x.Frames) - 1
	if a.opt.Prefetch < last-int(f) { // (f + Prefetch may overflow)
		last = int(f) + a.opt.Prefetch
	}
	end := min(x.FrameFirstBlock[last+1], b+1+run)
	// A run asks once per window end: blocks entered later in the frame
	// would ask for the same blocks once the window is whole, and asking
	// again on every block cost a fifth of a mount's CPU in a whole-tree
	// read (most blocks are entered by many files). Once the cache has
	// dropped anything (evicted a block, or cut a read-ahead short for
	// room), every window is asked for again.
	if !a.seq.askWindow(f, end, a.cache.Dropped()) {
		return
	}
	// One request per frame: a batch decoder gets a frame at a time, CPU
	// workers spread frames over cores.
	for next := b + 1; next < end; {
		stop := min(x.FrameFirstBlock[x.FrameOf(next)+1], end)
		keys := make([]uint32, 0, stop-next)
		for k := next; k < stop; k++ {
			keys = append(keys, k)
		}
		if !a.cache.Prefetch(keys) {
			// The queue is full: let the run's next block ask again.
			a.seq.forgetFrame(f)
			return
		}
		next = stop
	}
}

// minRunWhenWasted is the run a read-ahead must follow while read-ahead
// is wasted (see touch).
const minRunWhenWasted = 8

// seqTracker remembers the last blocks entered and the runs they ended, to
// tell a sequential run from random access without per-handle state.
type seqTracker struct {
	mu     sync.Mutex
	recent [64]uint32 // a ring (see ringFind) of the blocks entered last
	runs   [64]uint32 // runs[i]: the length of the run recent[i] ended
	at     [64]uint64 // at[i]: count when recent[i] was entered last
	count  uint64     // changes of the block entered
	pos    int
	last   uint32
	any    bool
	// asked: a ring of the frames whose read-ahead was asked for last,
	// with the window's end (askedEnd), valid while the cache's drop
	// count stays askedGen.
	asked    [8]uint32
	askedEnd [8]uint32
	askedPos int
	askedGen uint64
}

// ringFind returns the slot of ring r that holds x, or -1. A ring keeps
// the last values added (ringAdd), each as value+1 so that a zero slot is
// empty.
func ringFind(r []uint32, x uint32) int {
	for i, v := range r {
		if v == x+1 {
			return i
		}
	}
	return -1
}

// ringAdd puts x into ring r at *pos, over the oldest value, and returns
// the slot it took.
func ringAdd(r []uint32, pos *int, x uint32) int {
	i := *pos
	r[i] = x + 1
	*pos = (i + 1) % len(r)
	return i
}

// askWindow reports whether a run in frame f should ask for read-ahead up
// to block end (exclusive): not when one of the last few asks was for f
// up to end or further and the cache has dropped nothing since (dropped
// is its count). A walk over deduplicated files moves between a few
// frames all the time.
func (s *seqTracker) askWindow(f, end uint32, dropped uint64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if dropped != s.askedGen {
		s.asked, s.askedGen = [len(s.asked)]uint32{}, dropped
	}
	i := ringFind(s.asked[:], f)
	if i >= 0 && s.askedEnd[i] >= end {
		return false
	}
	if i < 0 {
		i = ringAdd(s.asked[:], &s.askedPos, f)
	}
	s.askedEnd[i] = end
	return true
}

// forgetFrame lets the next run entering f ask again.
func (s *seqTracker) forgetFrame(f uint32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, v := range s.asked {
		if v == f+1 {
			s.asked[i] = 0
		}
	}
}

// enter records block b and returns the length of the run it continues:
// 1 + that of block b-1 when b-1 was entered within the last runGap
// changes of block, else 1; 0 when b is the latest block entered again
// (which records nothing). Block b then holds that run, whatever run it
// ended before.
func (s *seqTracker) enter(b uint32) uint32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.any && s.last == b {
		return 0
	}
	s.last, s.any = b, true
	s.count++
	run := uint32(1)
	if b > 0 {
		if i := ringFind(s.recent[:], b-1); i >= 0 && s.count-s.at[i] <= runGap {
			run = s.runs[i] + 1
		}
	}
	i := ringFind(s.recent[:], b)
	if i < 0 {
		i = ringAdd(s.recent[:], &s.pos, b)
	}
	s.runs[i] = run
	s.at[i] = s.count
	return run
}

// runGap is how many times the block entered may change between two
// blocks of a run: readers in parallel interleave their runs, while a
// walk over files whose pieces deduplication spread over the archive
// lands next to a block it entered long before. 64 lets 17 readers in
// turn keep their runs (TestParallelSequentialReadersAllReadAhead). On the
// Go tree's whole-tree tar with a 64 MiB cache (2026-12-06, two runs
// each), 16 and 64 decoded 5,432-5,496 and 6,139-6,210 blocks; without
// the bound, 15,212-17,210.
const runGap = 64

// sequential reports whether block b was reached by a sequential run of
// two blocks or more (or is the stream's first block).
func (s *seqTracker) sequential(b uint32) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if b == 0 {
		return true
	}
	i := ringFind(s.recent[:], b)
	return i >= 0 && s.runs[i] >= 2
}
