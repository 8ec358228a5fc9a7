package reader

import (
	"container/heap"
	"slices"
	"sync/atomic"

	"arc/cache"
	"arc/format"
)

// A blockPlan is what an extraction knows ahead of time about the blocks
// its files read: each file's blocks, and, for each block, the files that
// read it, in the order the files are written. It decides which decoded
// blocks stay in the cache and which blocks are decoded ahead, in place
// of the cache's least-recently-used order and the read-ahead that
// guesses at sequential runs (touch).
//
// Which blocks stay: deduplication makes later files read blocks decoded
// long before (the Go toolchains tree: up to 257 MiB of decoded blocks
// still needed by files further on), so when they do not all fit, the
// choice decides how often a block is decoded again. The plan follows
// Belady's rule: while the blocks held pass the budget, the one needed
// again farthest ahead goes. Simulated over the Go toolchains tree's
// write order, least-recently-used decodes 3.5 times the blocks' size in
// a 128 MiB cache and 12 times in 64 MiB; farthest-first 1.9 and 5.5
// times. A block goes as soon as the last file that reads it is written,
// whatever the budget.
//
// What is decoded ahead: the blocks no file has read yet, in stream
// order (the order the files are written in), up to a window, so that
// the workers find them decoded (on the prefetch workers or a GPU's
// batches). The guessing read-ahead asked for up to two whole frames
// past every run it saw, whether or not they fitted beside the blocks
// kept for later files, and a small cache evicted those for them.
//
// feed runs in the goroutine that hands the files out, in their order;
// done in the workers that write them, in any order.
type blockPlan struct {
	x *format.Index
	// job j reads blocks[start[j]:start[j+1]], each once, ascending.
	start  []int32
	blocks []uint32
	// users[userStart[b]:userStart[b+1]] are the jobs that read block b,
	// ascending; fed[b] counts those handed out so far.
	userStart []int32
	users     []int32
	fed       []int32
	// left counts, for each block, the jobs that read it and are not
	// written yet; done lets the block go at 0 and adds its size to
	// freed, which feed takes off held.
	left  []atomic.Int32
	freed atomic.Int64

	// budget: the bytes that held and the read-ahead together keep to.
	budget int64
	// held: the bytes of the blocks handed out with a job and not let go
	// yet (decoded, or being decoded, in the cache); in says which (nIn
	// of them; a block whose last reader was handed out stays in, its
	// bytes taken off through freed).
	held int64
	in   []bool
	nIn  int
	// far has an entry for each use handed out of a block read again
	// later, most of them outdated once it is read again: rebuilt from
	// in when it grows past a few times nIn.
	far nextUses

	// The read-ahead: blocks below ahead that no job handed out has read
	// yet were asked for, pending bytes of them; window bounds pending.
	ahead   uint32
	pending int64
	window  int64
}

// newBlockPlan plans the blocks of the regular files inos, written in
// that order, for a cache of cacheSize bytes that decodes up to window
// bytes of blocks ahead (0: none).
func newBlockPlan(x *format.Index, inos []uint32, cacheSize, window int64) *blockPlan {
	nb := x.Blocks.Count()
	p := &blockPlan{
		x:         x,
		start:     make([]int32, 1, len(inos)+1),
		userStart: make([]int32, nb+1),
		fed:       make([]int32, nb),
		left:      make([]atomic.Int32, nb),
		in:        make([]bool, nb),
		window:    min(window, cacheSize/16),
	}
	p.budget = cacheSize - p.window
	for _, ino := range inos {
		p.blocks = appendFileBlocks(p.blocks, x, ino)
		p.start = append(p.start, int32(len(p.blocks)))
	}
	for _, b := range p.blocks {
		p.userStart[b+1]++
		p.left[b].Add(1)
	}
	for b := range nb {
		p.userStart[b+1] += p.userStart[b]
	}
	p.users = make([]int32, len(p.blocks))
	for j := range inos {
		for _, b := range p.jobBlocks(j) {
			p.users[p.userStart[b]+p.fed[b]] = int32(j)
			p.fed[b]++
		}
	}
	clear(p.fed)
	return p
}

// appendFileBlocks appends the blocks whose bytes regular file ino holds,
// each once, ascending.
func appendFileBlocks(out []uint32, x *format.Index, ino uint32) []uint32 {
	from := len(out)
	s, end := x.FileExtents(ino)
	for i := s; i < end; i++ {
		off, n := x.Extents.Off[i], x.Extents.Len[i]
		if off == format.Hole || n == 0 {
			continue
		}
		for b := x.BlockAt(off); ; b++ {
			out = append(out, b)
			if x.BlockRawOff[b+1] >= off+n {
				break
			}
		}
	}
	mine := out[from:]
	slices.Sort(mine)
	return out[:from+len(slices.Compact(mine))]
}

func (p *blockPlan) jobBlocks(j int) []uint32 { return p.blocks[p.start[j]:p.start[j+1]] }

// size is what block b counts in the cache.
func (p *blockPlan) size(b uint32) int64 {
	return cache.Cost(int(p.x.BlockRawOff[b+1] - p.x.BlockRawOff[b]))
}

// feed is called before job j is handed out, after every job before
// it: its blocks count as held from now on, and the plan settles
// within its budget.
func (p *blockPlan) feed(j int, drop func(b uint32), prefetch func(keys []uint32)) {
	p.held -= p.freed.Swap(0)
	for _, b := range p.jobBlocks(j) {
		if !p.in[b] {
			if p.fed[b] == 0 && b < p.ahead {
				p.pending -= p.size(b) // asked for ahead
			}
			p.in[b] = true
			p.nIn++
			p.held += p.size(b)
		}
		p.fed[b]++
		if next, again := p.nextUse(b); again {
			heap.Push(&p.far, nextUse{job: next, block: b})
		}
	}
	if p.far.Len() > 4*p.nIn+1024 {
		p.far = p.far[:0]
		for b, in := range p.in {
			if next, ok := p.nextUse(uint32(b)); in && ok {
				p.far = append(p.far, nextUse{job: next, block: uint32(b)})
			}
		}
		heap.Init(&p.far)
	}
	p.settle(drop, prefetch)
}

// settle lets go (drop) of the blocks needed again farthest ahead while
// what is held and read ahead passes the budget, but none that a job
// handed out and not written yet reads (it would be decoded again for
// that job, in the cache unaccounted); then it asks for the blocks next
// in the stream (prefetch) up to the window. What the files being
// written read together can pass the budget (a large file reads many
// blocks of earlier copies): the cache then evicts on its own, least
// recently used first. Holding the next files back until the ones being
// written were done kept the extraction closer to the budget (peak RSS
// 151 against 169-173 MiB with a 64 MiB cache on the Go toolchains tree)
// but took 6-33% longer (two runs each with 64 and 128 MiB).
func (p *blockPlan) settle(drop func(b uint32), prefetch func(keys []uint32)) {
	p.held -= p.freed.Swap(0)
	var busy []nextUse
	for p.held+p.pending > p.budget && p.far.Len() > 0 {
		u := heap.Pop(&p.far).(nextUse)
		if next, ok := p.nextUse(u.block); !ok || next != u.job || !p.in[u.block] {
			continue // outdated: read since, or let go
		}
		if p.reading(u.block) {
			busy = append(busy, u)
			continue
		}
		p.in[u.block] = false
		p.nIn--
		p.held -= p.size(u.block)
		drop(u.block)
	}
	for _, u := range busy {
		heap.Push(&p.far, u)
	}
	p.readAhead(prefetch)
}

// readAhead asks for the blocks after the last asked for that a job
// reads and none handed out has, while they fit in the window and beside
// what is held, a frame's worth at a time (a GPU decodes a frame's
// blocks in one batch).
func (p *blockPlan) readAhead(prefetch func(keys []uint32)) {
	x := p.x
	nb := uint32(len(p.fed))
	var keys []uint32
	frame := uint32(0)
	for p.ahead < nb {
		b := p.ahead
		if p.fed[b] == 0 && p.userStart[b] < p.userStart[b+1] {
			n := p.size(b)
			if p.pending+n > p.window || p.held+p.pending+n > p.budget {
				break
			}
			if f := x.FrameOf(b); len(keys) > 0 && f != frame {
				prefetch(keys)
				keys = nil
			}
			frame = x.FrameOf(b)
			keys = append(keys, b)
			p.pending += n
		}
		p.ahead++
	}
	if len(keys) > 0 {
		prefetch(keys)
	}
}

// nextUse is the first job not handed out yet that reads block b.
func (p *blockPlan) nextUse(b uint32) (int32, bool) {
	i := p.userStart[b] + p.fed[b]
	if i == p.userStart[b+1] {
		return 0, false
	}
	return p.users[i], true
}

// reading reports whether a job handed out and not written yet reads
// block b.
func (p *blockPlan) reading(b uint32) bool {
	users := p.userStart[b+1] - p.userStart[b]
	written := users - p.left[b].Load()
	return p.fed[b] > written
}

// done is called once job j is written: the blocks no job still to be
// written reads are let go (drop).
func (p *blockPlan) done(j int, drop func(b uint32)) {
	for _, b := range p.jobBlocks(j) {
		if p.left[b].Add(-1) == 0 {
			drop(b)
			p.freed.Add(p.size(b))
		}
	}
}

// nextUses is a max-heap of blocks by the job that reads them next.
type nextUse struct {
	job   int32
	block uint32
}

type nextUses []nextUse

func (h nextUses) Len() int           { return len(h) }
func (h nextUses) Less(i, k int) bool { return h[i].job > h[k].job }
func (h nextUses) Swap(i, k int)      { h[i], h[k] = h[k], h[i] }
func (h *nextUses) Push(x any)        { *h = append(*h, x.(nextUse)) }
func (h *nextUses) Pop() any {
	old := *h
	u := old[len(old)-1]
	*h = old[:len(old)-1]
	return u
}
