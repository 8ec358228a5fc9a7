package reader

import (
	"fmt"
	"io"
	"sort"
	"sync"

	"arc/format"
)

// prefixMinExtents: files with at least this many extents get a cached table
// of cumulative extent ends for binary search; smaller ones are scanned.
const prefixMinExtents = 32

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
	e, within := a.findExtent(ino, start, end, off)
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
		} else if err := a.readUnique(o+within, dst); err != nil {
			return done, err
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
	e, within := a.findExtent(ino, start, end, off)
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

// findExtent returns the extent of [start,end) holding file offset off and
// off's distance into it.
func (a *Archive) findExtent(ino uint32, start, end uint64, off int64) (uint64, uint64) {
	x := a.idx
	u := uint64(off)
	if end-start < prefixMinExtents {
		for e := start; e < end; e++ {
			if u < x.Extents.Len[e] {
				return e, u
			}
			u -= x.Extents.Len[e]
		}
		return end, 0
	}
	var ends []uint64
	if v, ok := a.prefix.Load(ino); ok {
		ends = v.([]uint64)
	} else {
		ends = make([]uint64, end-start)
		var sum uint64
		for i := range ends {
			sum += x.Extents.Len[start+uint64(i)]
			ends[i] = sum
		}
		a.prefix.Store(ino, ends)
	}
	i := sort.Search(len(ends), func(i int) bool { return ends[i] > u })
	if i == len(ends) {
		return end, 0
	}
	before := uint64(0)
	if i > 0 {
		before = ends[i-1]
	}
	return start + uint64(i), u - before
}

// readUnique copies unique-stream bytes [u, u+len(dst)) through the cache.
func (a *Archive) readUnique(u uint64, dst []byte) error {
	x := a.idx
	for len(dst) > 0 {
		b := x.BlockAt(u)
		bs := x.BlockRawOff[b]
		be := x.BlockRawOff[b+1]
		a.touch(b)
		buf, err := a.cache.Get(b)
		if err != nil {
			a.opt.Logf("arc: %v", err)
			return err
		}
		n := copy(dst, buf.Bytes()[u-bs:])
		buf.Release()
		dst = dst[n:]
		u += uint64(n)
		if u == be && a.seq.sequential(b) {
			// A sequential reader is past this block: let it go first.
			a.cache.Consumed(b)
		}
	}
	return nil
}

// touch records an access to block b and, when it continues a sequential
// run in the unique stream (block b-1 was read recently: one handle reading
// on, or files copied in path order), asks for the following frames.
func (a *Archive) touch(b uint32) {
	if !a.seq.enter(b) || a.opt.Prefetch < 0 {
		return
	}
	x := a.idx
	f := x.FrameOf(b)
	// A run asks once per frame it enters: the window it would ask for
	// from the frame's other blocks is the same frames, and checking them
	// again on every block cost a fifth of a mount's CPU in a whole-tree
	// read (most blocks are entered by many files). Once the cache has
	// dropped anything (evicted a block, or cut a read-ahead short for
	// room), every frame is asked for again.
	if !a.seq.askFrame(f, a.cache.Dropped()) {
		return
	}
	last := int(f) + a.opt.Prefetch
	if last >= len(x.Frames) {
		last = len(x.Frames) - 1
	}
	// One request per frame: a batch decoder gets a frame at a time, CPU
	// workers spread frames over cores.
	next := b + 1
	for fr := int(f); fr <= last; fr++ {
		stop := x.FrameFirstBlock[fr+1]
		if next >= stop {
			continue
		}
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

// seqTracker remembers the last blocks entered, to tell a sequential run
// from random access without per-handle state.
type seqTracker struct {
	mu     sync.Mutex
	recent [64]uint32 // a ring (see ringHas) of the blocks entered last
	pos    int
	last   uint32
	any    bool
	// asked: a ring of the frames whose read-ahead was asked for last,
	// valid while the cache's drop count stays askedGen.
	asked    [8]uint32
	askedPos int
	askedGen uint64
}

// ringHas reports whether ring r holds x. A ring keeps the last values
// added (ringAdd), each as value+1 so that a zero slot is empty.
func ringHas(r []uint32, x uint32) bool {
	for _, v := range r {
		if v == x+1 {
			return true
		}
	}
	return false
}

// ringAdd puts x into ring r at *pos, over the oldest value.
func ringAdd(r []uint32, pos *int, x uint32) {
	r[*pos] = x + 1
	*pos = (*pos + 1) % len(r)
}

// askFrame reports whether a run entering frame f should ask for its
// read-ahead: not when one of the last few asks was for f and the cache
// has dropped nothing since (dropped is its count). A walk over
// deduplicated files moves between a few frames all the time.
func (s *seqTracker) askFrame(f uint32, dropped uint64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if dropped != s.askedGen {
		s.asked, s.askedGen = [len(s.asked)]uint32{}, dropped
	}
	if ringHas(s.asked[:], f) {
		return false
	}
	ringAdd(s.asked[:], &s.askedPos, f)
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

// enter records block b and reports whether it continues a run: the block
// before it was entered recently. Re-entering the latest block records nothing.
func (s *seqTracker) enter(b uint32) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.any && s.last == b {
		return false
	}
	seq := b > 0 && ringHas(s.recent[:], b-1)
	s.last, s.any = b, true
	if !ringHas(s.recent[:], b) {
		ringAdd(s.recent[:], &s.pos, b)
	}
	return seq
}

// sequential reports whether block b was reached by a sequential run.
func (s *seqTracker) sequential(b uint32) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return b == 0 || ringHas(s.recent[:], b-1)
}
