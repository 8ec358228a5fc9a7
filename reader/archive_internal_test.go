package reader

import (
	"runtime"
	"testing"
)

// The buffers for stored block bytes outlive collections (a sync.Pool's
// do not, and a fresh buffer is a page fault per 4 KiB of it), up to the
// budget's bytes of them, the largest kept.
func TestStoredBytesBuffersAreKeptAcrossCollections(t *testing.T) {
	s := spares{budget: 1 << 20} // below minSpares: minSpares holds
	b := s.get(300 << 10)
	if len(b) != 300<<10 || cap(b) > 300<<10+300<<10/8 {
		t.Fatalf("got %d bytes (capacity %d), want %d and at most an eighth more", len(b), cap(b), 300<<10)
	}
	s.put(b)
	runtime.GC()
	runtime.GC()
	c := s.get(200 << 10)
	if &c[0] != &b[0] {
		t.Error("a buffer put back was not reused after two collections")
	}
	s.put(c)
	if c := s.get(cap(b) + 1); &c[0] == &b[0] || len(c) != cap(b)+1 {
		t.Error("a buffer too small was handed out")
	}
	for range 100 {
		s.put(make([]byte, 1<<20))
	}
	if s.held > minSpares {
		t.Errorf("%d bytes kept, want at most %d", s.held, minSpares)
	}
	big := make([]byte, 4<<20)
	s.put(big)
	c = s.get(3 << 20)
	if &c[0] != &big[0] {
		t.Error("a larger buffer was not kept in place of smaller ones")
	}
	s.put(c)                   // the budget is full again
	s.put(make([]byte, 1<<10)) // smaller than all kept
	for _, k := range s.bufs {
		if cap(k) == 1<<10 {
			t.Error("a buffer smaller than all those kept was kept over the budget")
		}
	}
}

// A buffer larger than the whole budget (a block of hundreds of MiB) is
// not kept, and does not push the others out; a load takes the smallest
// kept buffer that fits, leaving the large ones for large blocks.
func TestSparesKeepTheirBuffersForTheBlocksTheyFit(t *testing.T) {
	s := spares{budget: minSpares}
	small, large := make([]byte, 1<<20), make([]byte, 8<<20)
	s.put(large)
	s.put(small)
	s.put(make([]byte, minSpares+1))
	if len(s.bufs) != 2 {
		t.Fatalf("%d buffers kept after one over the budget came back, want the 2 there were", len(s.bufs))
	}
	if b := s.get(100 << 10); &b[0] != &small[0] {
		t.Error("a small load did not take the smallest buffer that fits")
	}
	if b := s.get(5 << 20); &b[0] != &large[0] {
		t.Error("a large load did not find the large buffer")
	}
}
