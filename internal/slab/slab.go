// Package slab hands out fixed-size byte buffers carved from large anonymous
// mappings outside the Go heap, and keeps released buffers for reuse.
//
// Why: a block cache or a pipeline that holds hundreds of MiB of 1 MiB
// buffers, allocated on the Go heap, touches fresh pages for nearly every
// buffer (the heap grows, and sync.Pool drops its contents at each GC), and
// every first touch of a 4 KiB page is a fault. On the virtual machines we
// run on that measured about 18 µs a fault, which made decoding a block
// into a fresh buffer cost more than the decoding. Slabs are 2 MiB-aligned
// and advised for transparent huge pages, so a 1 MiB buffer costs at most
// one fault, and a buffer is faulted in only once for the life of the pool.
//
// A pool that keeps growing maps its next slab ahead and has it faulted in
// by a thread at idle priority (warm): on those machines the first touch of
// memory the guest had given back to the host costs about 1 ms a MiB even
// in huge pages, and a cold random read through the mount paid it while
// its reader waited (bench/README.md). That slab, max(8 MiB, the buffer
// size), is memory beyond the buffers handed out and those Idle counts,
// until the pool stops growing (Trim).
package slab

import (
	"runtime"
	"sync"

	"golang.org/x/sys/unix"
)

const hugePage = 2 << 20

// Pool hands out buffers of one size.
type Pool struct {
	size int
	per  int // buffers per slab

	mu   sync.Mutex
	free [][]byte // put back, pages in memory
	// cold: put back, pages given back to the system (Trim); reused
	// after the free ones, each faulted in again.
	cold [][]byte
	maps [][]byte // whole mappings, for Close
	// ahead: the next slab, mapped before it is needed (aheadMap: its
	// whole mapping); warming: the mapping warm is faulting in (the one
	// ahead, or carved since), nil once it is done; warmed: slabs warm
	// faulted in.
	ahead, aheadMap []byte
	warming         []byte
	warmed          int
	out             int  // buffers handed out and not yet put back
	heapy           bool // mapping failed once, or closed: the Go heap from now on
	// closed: Close was called; the slabs go once the last buffer is back
	// (unmapped: they went, but for the one warming, which warm unmaps).
	closed, unmapped bool
}

// New returns a pool of size-byte buffers.
func New(size int) *Pool {
	slab := max(8<<20, size)
	return &Pool{size: size, per: slab / size}
}

// Get returns a buffer of Size bytes with unspecified contents.
func (p *Pool) Get() []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.out++
	if n := len(p.free); n > 0 {
		b := p.free[n-1]
		p.free = p.free[:n-1]
		return b
	}
	if n := len(p.cold); n > 0 {
		b := p.cold[n-1]
		p.cold = p.cold[:n-1]
		return b
	}
	if !p.heapy && p.grow() {
		b := p.free[len(p.free)-1]
		p.free = p.free[:len(p.free)-1]
		return b
	}
	p.heapy = true
	return make([]byte, p.size)
}

// grow carves one more slab into buffers: the one mapped ahead, or a new
// one. From the second on the pool is growing, and the slab after it is
// mapped now and faulted in at idle priority (warm), one at a time.
func (p *Pool) grow() bool {
	s, m := p.ahead, p.aheadMap
	p.ahead, p.aheadMap = nil, nil
	if s == nil {
		var ok bool
		if s, m, ok = p.mapSlab(); !ok {
			return false
		}
	}
	p.maps = append(p.maps, m)
	for i := p.per - 1; i >= 0; i-- {
		p.free = append(p.free, s[i*p.size:(i+1)*p.size:(i+1)*p.size])
	}
	if len(p.maps) >= 2 && p.warming == nil { // (a closed pool grows no more)
		if next, m, ok := p.mapSlab(); ok {
			p.ahead, p.aheadMap, p.warming = next, m, m
			go p.warm(next)
		}
	}
	return true
}

// mapSlab maps one slab, 2 MiB-aligned inside a slightly larger mapping
// (m, what Munmap takes).
func (p *Pool) mapSlab() (s, m []byte, ok bool) {
	want := p.per * p.size
	m, err := unix.Mmap(-1, 0, want+hugePage, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
	if err != nil {
		return nil, nil, false
	}
	start := 0
	if r := int(uintptrOf(m) % hugePage); r != 0 {
		start = hugePage - r
	}
	s = m[start : start+want : start+want]
	_ = unix.Madvise(s, unix.MADV_HUGEPAGE)
	return s, m, true
}

// warm faults slab s in (MADV_POPULATE_WRITE, which writes nothing) on a
// thread of its own at SCHED_IDLE, so that only a CPU with nothing else
// to do pays for it, and the Get that reaches s finds its pages there.
// A huge page at a time: the advice holds the process's memory map while
// it faults, and a thread at idle priority may be preempted inside it.
// Where the policy or the advice is refused (an old kernel), or where the
// goroutine runs on the process's main thread (which does not end with a
// goroutine locked to it, and would keep the policy), s is left to be
// faulted in by its first use, as without warm. A pool whose slabs went
// meanwhile (unmapLocked) left s's mapping for warm to unmap: faulting in
// memory unmapped under it could fault in whatever was mapped there next.
func (p *Pool) warm(s []byte) {
	runtime.LockOSThread()
	ok := unix.Gettid() != unix.Getpid()
	if !ok {
		runtime.UnlockOSThread()
	} else {
		// Never unlocked: the thread ends with the goroutine, and its
		// policy with it.
		attr := unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: unix.SCHED_IDLE}
		ok = unix.SchedSetAttr(0, &attr, 0) == nil
		for off := 0; ok && off < len(s); off += hugePage {
			ok = unix.Madvise(s[off:min(off+hugePage, len(s))], unix.MADV_POPULATE_WRITE) == nil
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if ok {
		p.warmed++
	}
	if p.unmapped {
		unix.Munmap(p.warming)
	}
	p.warming = nil
}

// Put returns a buffer got from Get. Buffers of another size are ignored.
func (p *Pool) Put(b []byte) {
	if cap(b) != p.size {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.out--
	if p.closed {
		if p.out == 0 {
			p.unmapLocked()
		}
		return
	}
	p.free = append(p.free, b[:p.size])
}

// Idle is the bytes of the buffers put back whose pages are still in
// memory.
func (p *Pool) Idle() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.free) * p.size
}

// Trim gives the pages of the buffers put back, past keep bytes of them,
// back to the system (a buffer of the Go heap, after a failed mapping, is
// left to the collector instead), and says how many bytes of them it gave
// back. The buffers stay the pool's: a Get takes them last, and faults
// their pages in again. A pool with buffers to spare is not growing: the
// slab mapped ahead, which Idle does not count, is unmapped too (unless
// warm is still faulting it in); the next growth maps another.
func (p *Pool) Trim(keep int) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := max(0, len(p.free)-keep/p.size)
	if n == 0 {
		return 0
	}
	if m := p.aheadMap; m != nil && !p.warmingLocked(m) {
		unix.Munmap(m)
		p.ahead, p.aheadMap = nil, nil
	}
	// The oldest first: Get takes the newest.
	for _, b := range p.free[:n] {
		if p.mapped(b) {
			_ = unix.Madvise(b, unix.MADV_DONTNEED)
			p.cold = append(p.cold, b)
		}
	}
	rest := copy(p.free, p.free[n:])
	clear(p.free[rest:]) // no heap buffer kept alive by a stale slot
	p.free = p.free[:rest]
	return n * p.size
}

// mapped says whether b lies in one of the pool's mappings.
func (p *Pool) mapped(b []byte) bool {
	a := uintptrOf(b)
	for _, m := range p.maps {
		if s := uintptrOf(m); a >= s && a < s+uintptr(len(m)) {
			return true
		}
	}
	return false
}

// Outstanding is how many buffers are out (got and not yet put back).
func (p *Pool) Outstanding() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out
}

// Close unmaps the slabs once every buffer is back: now, or at the Put
// that brings back the last one (unmapping memory in use would crash its
// holder). A Get after Close gets its buffer from the Go heap.
func (p *Pool) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed, p.heapy = true, true
	if p.out == 0 {
		p.unmapLocked()
	}
}

// warmingLocked says whether warm is faulting mapping m in: m must stay
// mapped until it is done.
func (p *Pool) warmingLocked(m []byte) bool {
	return p.warming != nil && &m[0] == &p.warming[0]
}

// unmapLocked unmaps the slabs, but for the one warm is faulting in:
// warm unmaps that one when it is done.
func (p *Pool) unmapLocked() {
	unmap := func(m []byte) {
		if !p.warmingLocked(m) {
			unix.Munmap(m)
		}
	}
	for _, m := range p.maps {
		unmap(m)
	}
	if p.aheadMap != nil {
		unmap(p.aheadMap)
	}
	p.maps, p.free, p.cold, p.ahead, p.aheadMap = nil, nil, nil, nil, nil
	p.unmapped = true
}
