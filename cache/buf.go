package cache

import (
	"math/bits"
	"sync"
	"sync/atomic"

	"arc/internal/slab"
)

// Buf is one decoded block, shared by the cache and its readers through a
// reference count: the bytes stay valid until the holder calls Release, and
// the buffer is recycled once the last reference is gone.
type Buf struct {
	data []byte
	refs atomic.Int32
	pool *bufPool
	key  uint32
	tier tier
	// The cache's load clocks when the block was loaded (see
	// Cache.staleLocked): all loads, and prefetch loads only.
	loaded, prefetched int64
}

// Bytes returns the block's decoded bytes; valid until Release.
func (b *Buf) Bytes() []byte { return b.data }

// Key returns the block key the buffer holds.
func (b *Buf) Key() uint32 { return b.key }

// Release drops the caller's reference (one Get gave). Using Bytes after
// Release is a bug.
func (b *Buf) Release() {
	b.pool.lent.Add(-1)
	b.unref()
}

// unref drops a reference, the cache's own or a caller's; the last one
// puts the buffer back.
func (b *Buf) unref() {
	switch n := b.refs.Add(-1); {
	case n == 0:
		b.pool.put(b)
	case n < 0:
		panic("cache: Buf released more often than acquired")
	}
}

func (b *Buf) cost() int64 { return int64(cap(b.data)) }

// bufPool recycles decoded-block buffers in power-of-two size classes, so
// that a steady stream of equal-size blocks allocates nothing. Classes of
// slabMin and up come from slab pools (huge-page mappings outside the Go
// heap, kept for reuse): filling a cache from the heap faults in a fresh
// page every 4 KiB, which cost more than decoding the block into it.
//
// The buffers put back are bounded too, across the slab classes: a cache
// whose blocks move from one size class to another (a hostile index may
// give blocks any size up to format.MaxBlockSize) would otherwise keep the
// most that each class ever held. Past idleMax bytes, put gives the pages
// of the other classes' idle buffers back to the system, then those of
// its own class beyond idleMax (slab.Pool.Trim).
type bufPool struct {
	classes   [40]sync.Pool
	slabMu    sync.Mutex
	slabs     [40]*slab.Pool
	idleMax   int // 0: no bound
	recycled  atomic.Int64
	allocated atomic.Int64
	// lent: the references Get handed out and Release has not taken back
	// (Stats.Lent), so that tests can tell a reader that forgot one: its
	// block could never be recycled, and would outlive the cache's bound.
	lent atomic.Int64
}

const slabMin = 64 << 10

func (p *bufPool) slab(c int) *slab.Pool {
	p.slabMu.Lock()
	defer p.slabMu.Unlock()
	if p.slabs[c] == nil {
		p.slabs[c] = slab.New(1 << c)
	}
	return p.slabs[c]
}

// close releases the slab mappings whose buffers are all back.
func (p *bufPool) close() {
	p.slabMu.Lock()
	defer p.slabMu.Unlock()
	for _, s := range p.slabs {
		if s != nil {
			s.Close()
		}
	}
}

func sizeClass(n int) int {
	if n <= 1 {
		return 0
	}
	return bits.Len(uint(n - 1))
}

// classCap is the capacity of the buffer that holds n bytes.
func classCap(n int) int { return 1 << sizeClass(n) }

// Cost is what a block of n bytes takes of a cache's MaxBytes: the buffer
// it is held in, n rounded up to its size class (a power of two).
func Cost(n int) int64 { return int64(classCap(n)) }

func (p *bufPool) get(n int) *Buf {
	c := sizeClass(n)
	if c < len(p.classes) && 1<<c >= slabMin {
		// The slab keeps released buffers itself; a Buf header is cheap.
		p.allocated.Add(1)
		return &Buf{data: p.slab(c).Get()[:n], pool: p}
	}
	if c < len(p.classes) {
		if v := p.classes[c].Get(); v != nil {
			b := v.(*Buf)
			b.data = b.data[:n]
			b.refs.Store(0)
			p.recycled.Add(1)
			return b
		}
	}
	p.allocated.Add(1)
	return &Buf{data: make([]byte, n, 1<<c), pool: p}
}

func (p *bufPool) put(b *Buf) {
	c := sizeClass(cap(b.data))
	if c >= len(p.classes) || cap(b.data) != 1<<c {
		return
	}
	if 1<<c >= slabMin {
		// Never into the sync.Pool: a collection would drop the buffer
		// and leak its slab memory.
		p.slab(c).Put(b.data[:cap(b.data)])
		b.data = nil
		p.trim(c)
		return
	}
	p.classes[c].Put(b)
}

// trim holds the idle slab buffers to idleMax bytes, class c's last (a
// buffer of it was just put back: it is the one in use).
func (p *bufPool) trim(c int) {
	if p.idleMax <= 0 {
		return
	}
	p.slabMu.Lock()
	defer p.slabMu.Unlock()
	idle := 0
	for _, s := range p.slabs {
		if s != nil {
			idle += s.Idle()
		}
	}
	if idle <= p.idleMax {
		return
	}
	for i, s := range p.slabs {
		if s != nil && i != c {
			idle -= s.Trim(0)
		}
	}
	if idle > p.idleMax {
		p.slabs[c].Trim(p.idleMax)
	}
}
