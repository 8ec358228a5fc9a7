package cache

import (
	"math/bits"
	"sync"
	"sync/atomic"
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
}

// Bytes returns the block's decoded bytes; valid until Release.
func (b *Buf) Bytes() []byte { return b.data }

// Key returns the block key the buffer holds.
func (b *Buf) Key() uint32 { return b.key }

// Release drops the caller's reference. Using Bytes after Release is a bug.
func (b *Buf) Release() {
	switch n := b.refs.Add(-1); {
	case n == 0:
		b.pool.put(b)
	case n < 0:
		panic("cache: Buf released more often than acquired")
	}
}

func (b *Buf) cost() int64 { return int64(cap(b.data)) }

// bufPool recycles decoded-block buffers in power-of-two size classes, so
// that a steady stream of equal-size blocks allocates nothing.
type bufPool struct {
	classes   [40]sync.Pool
	recycled  atomic.Int64
	allocated atomic.Int64
}

func sizeClass(n int) int {
	if n <= 1 {
		return 0
	}
	return bits.Len(uint(n - 1))
}

// classCap is the capacity of the buffer that holds n bytes.
func classCap(n int) int { return 1 << sizeClass(n) }

func (p *bufPool) get(n int) *Buf {
	c := sizeClass(n)
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
	if c := sizeClass(cap(b.data)); c < len(p.classes) && cap(b.data) == 1<<c {
		p.classes[c].Put(b)
	}
}
