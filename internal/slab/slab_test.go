package slab

import (
	"fmt"
	"os"
	"sync"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

func TestBuffersAreDistinctSizedAndReused(t *testing.T) {
	p := New(1 << 20)
	seen := map[*byte]bool{}
	var bufs [][]byte
	for i := 0; i < 20; i++ { // more than one slab
		b := p.Get()
		if len(b) != 1<<20 || cap(b) != 1<<20 {
			t.Fatalf("buffer %d: len %d cap %d", i, len(b), cap(b))
		}
		if seen[&b[0]] {
			t.Fatalf("buffer %d handed out twice", i)
		}
		seen[&b[0]] = true
		b[0], b[len(b)-1] = byte(i), byte(i) // writable end to end
		bufs = append(bufs, b)
	}
	for i, b := range bufs {
		if b[0] != byte(i) || b[len(b)-1] != byte(i) {
			t.Fatalf("buffer %d overlaps another", i)
		}
		p.Put(b)
	}
	if b := p.Get(); !seen[&b[0]] {
		t.Fatal("a put-back buffer was not reused")
	}
}

func TestSlabsAreHugePageAligned(t *testing.T) {
	p := New(1 << 20)
	b := p.Get()
	first := uintptrOf(b)
	for i := 1; i < p.per; i++ {
		p.Get()
	}
	if p.heapy {
		t.Skip("anonymous mappings unavailable")
	}
	// The first buffer handed out is the start of the slab.
	if first%hugePage != 0 {
		t.Fatalf("slab at %#x is not 2 MiB-aligned", first)
	}
}

func TestConcurrentGetPut(t *testing.T) {
	p := New(64 << 10)
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 500; i++ {
				b := p.Get()
				b[0] = byte(g)
				if b[0] != byte(g) {
					t.Error("buffer shared between goroutines")
				}
				p.Put(b)
			}
		}(g)
	}
	wg.Wait()
	p.Close()
	if len(p.maps) != 0 {
		t.Fatal("Close with every buffer back left mappings")
	}
}

// Close keeps the slabs while buffers are out (their holders still use
// them) and unmaps them when the last one comes back; a Get after Close
// takes nothing from them.
func TestCloseUnmapsTheSlabsWhenTheLastBufferIsBack(t *testing.T) {
	p := New(1 << 20)
	var bufs [][]byte
	for range 8 {
		bufs = append(bufs, p.Get())
	}
	if len(p.maps) == 0 {
		t.Skip("no mapping here: the pool fell back to the heap")
	}
	for _, b := range bufs[2:] {
		p.Put(b)
	}
	p.Close()
	bufs[0][0], bufs[1][0] = 1, 1 // must not fault
	if len(p.maps) == 0 {
		t.Fatal("Close unmapped buffers still in use")
	}
	late := p.Get() // after Close: from the heap
	p.Put(bufs[0])
	p.Put(late)
	if len(p.maps) == 0 {
		t.Fatal("a buffer is still out, but its slab was unmapped")
	}
	p.Put(bufs[1])
	if len(p.maps) != 0 || p.Outstanding() != 0 {
		t.Errorf("every buffer is back after Close, yet %d mappings are kept (%d buffers out)", len(p.maps), p.Outstanding())
	}
}

// Trim gives the pages of idle buffers past keep bytes back to the system,
// and keeps the buffers: later Gets take them (after the idle ones) with
// their pages faulted in afresh, as zeros, and map nothing new.
func TestTrimGivesIdlePagesBackAndKeepsTheBuffers(t *testing.T) {
	const size = 1 << 20
	p := New(size)
	defer p.Close()
	var bufs [][]byte
	for i := range 8 {
		b := p.Get()
		for j := range b {
			b[j] = byte(i + 1)
		}
		bufs = append(bufs, b)
	}
	if len(p.maps) == 0 {
		t.Skip("no mapping here: the pool fell back to the heap")
	}
	maps := len(p.maps)
	for _, b := range bufs {
		p.Put(b)
	}
	if got := p.Idle(); got != 8*size {
		t.Fatalf("Idle = %d after 8 buffers came back, want %d", got, 8*size)
	}
	if got := p.Trim(2 * size); got != 6*size {
		t.Fatalf("Trim(2 MiB) gave back %d bytes, want %d", got, 6*size)
	}
	if got := p.Idle(); got != 2*size {
		t.Fatalf("Idle = %d after Trim(2 MiB), want %d", got, 2*size)
	}
	zeroed := 0
	seen := map[*byte]bool{}
	for range 8 {
		b := p.Get()
		if seen[&b[0]] {
			t.Fatal("a buffer handed out twice")
		}
		seen[&b[0]] = true
		if b[0] == 0 && b[size-1] == 0 {
			zeroed++
		}
	}
	if zeroed != 6 || len(p.maps) != maps {
		t.Errorf("after Trim, %d of 8 buffers came back zeroed (want the 6 trimmed) and %d mappings (want %d)", zeroed, len(p.maps), maps)
	}
}

// A pool that has grown twice maps its next slab ahead and has it faulted
// in (warm); the Get past its slabs hands that slab out.
func TestAGrowingPoolMapsItsNextSlabAhead(t *testing.T) {
	p := New(1 << 20)
	defer p.Close()
	for range p.per {
		p.Get()
	}
	if p.heapy {
		t.Skip("anonymous mappings unavailable")
	}
	if p.ahead != nil {
		t.Fatal("a pool that grew once mapped a slab ahead")
	}
	for range p.per {
		p.Get()
	}
	p.mu.Lock()
	ahead := p.ahead
	p.mu.Unlock()
	if ahead == nil {
		t.Fatal("a pool that grew twice mapped no slab ahead")
	}
	if b := p.Get(); &b[0] != &ahead[0] {
		t.Fatal("the Get past the pool's slabs did not take the slab mapped ahead")
	}
}

// A pool that trims its idle buffers is not growing: it gives back the
// slab it had mapped ahead as well, and maps another when it grows again.
func TestTrimGivesBackTheSlabMappedAhead(t *testing.T) {
	p := New(1 << 20)
	defer p.Close()
	var bufs [][]byte
	for range 2 * p.per {
		bufs = append(bufs, p.Get())
	}
	if p.heapy {
		t.Skip("anonymous mappings unavailable")
	}
	waitFor := func(done func() bool) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
			p.mu.Lock()
			ok := done()
			p.mu.Unlock()
			if ok {
				return
			}
			if time.Now().After(deadline) {
				t.Fatal("warm did not finish in 10 s")
			}
		}
	}
	waitFor(func() bool { return p.warming == nil })
	ahead := p.ahead
	if ahead == nil {
		t.Fatal("a pool that grew twice mapped no slab ahead")
	}
	for _, b := range bufs {
		p.Put(b)
	}
	if got, want := p.Trim(0), 2*p.per*p.size; got != want {
		t.Fatalf("Trim(0) gave back %d bytes of idle buffers, want %d", got, want)
	}
	if p.ahead != nil || p.aheadMap != nil || mapped(ahead) {
		t.Fatal("after Trim the slab mapped ahead is still mapped")
	}
	for range 2*p.per + 1 { // past the two slabs: the pool grows again
		p.Get()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ahead == nil {
		t.Error("the pool grew again but mapped no slab ahead")
	}
}

// warm faults the whole slab in, and says so.
func TestWarmFaultsTheSlabIn(t *testing.T) {
	p := New(1 << 20)
	defer p.Close()
	s, m, ok := p.mapSlab()
	if !ok {
		t.Skip("anonymous mappings unavailable")
	}
	p.ahead, p.aheadMap, p.warming = s, m, m
	done := make(chan struct{})
	go func() { // warm locks its thread at idle priority: not the test's
		defer close(done)
		p.warm(s)
	}()
	<-done
	if p.warming != nil {
		t.Fatal("warm is done but the slab is still marked warming")
	}
	if p.warmed == 0 {
		t.Skip("SCHED_IDLE or MADV_POPULATE_WRITE refused here (or warm ran on the main thread)")
	}
	vec, err := mincore(s)
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range vec {
		if v&1 == 0 {
			t.Fatalf("page %d of the slab warm faulted in is not in memory", i)
		}
	}
}

// A pool whose slabs go (Close with every buffer back) while warm is
// still faulting one in leaves that one mapped until warm is done with it,
// whether it was still ahead or already carved, and warm then unmaps it.
func TestASlabWarmingWhenThePoolClosesIsUnmappedByWarm(t *testing.T) {
	for _, carved := range []bool{false, true} {
		t.Run(fmt.Sprintf("carved %v", carved), func(t *testing.T) {
			p := New(1 << 20)
			s, m, ok := p.mapSlab()
			if !ok {
				t.Skip("anonymous mappings unavailable")
			}
			p.ahead, p.aheadMap, p.warming = s, m, m
			if carved {
				p.grow() // takes the slab ahead (and maps none: grown once)
				for range p.per {
					p.Put(p.Get())
				}
			}
			p.Close()
			if !mapped(s) {
				t.Fatal("Close unmapped a slab being faulted in")
			}
			done := make(chan struct{})
			go func() { // warm locks its thread at idle priority: not the test's
				defer close(done)
				p.warm(s)
			}()
			<-done
			if mapped(s) || p.aheadMap != nil || p.warming != nil {
				t.Fatal("warm, done after Close, left the slab mapped")
			}
		})
	}
}

// mincore says, a byte per page of b, whether the page is in memory (bit
// 0); it fails with ENOMEM where b is not mapped.
func mincore(b []byte) ([]byte, error) {
	vec := make([]byte, (len(b)+os.Getpagesize()-1)/os.Getpagesize())
	if _, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)), uintptr(unsafe.Pointer(&vec[0]))); errno != 0 {
		return nil, errno
	}
	return vec, nil
}

// mapped says whether b's pages are mapped.
func mapped(b []byte) bool {
	_, err := mincore(b)
	return err == nil
}
