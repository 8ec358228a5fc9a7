package reader

import (
	"runtime"
	"testing"
)

// The buffers for stored block bytes outlive collections (a sync.Pool's
// do not, and a fresh buffer is a page fault per 4 KiB of it), up to
// maxSpares of them, the largest kept.
func TestStoredBytesBuffersAreKeptAcrossCollections(t *testing.T) {
	var s spares
	b := s.get(300 << 10)
	if len(b) != 300<<10 {
		t.Fatalf("got %d bytes, want %d", len(b), 300<<10)
	}
	s.put(b)
	runtime.GC()
	runtime.GC()
	if c := s.get(200 << 10); &c[0] != &b[0] {
		t.Error("a buffer put back was not reused after two collections")
	} else {
		s.put(c)
	}
	if c := s.get(cap(b) + 1); &c[0] == &b[0] || len(c) != cap(b)+1 {
		t.Error("a buffer too small was handed out")
	}
	for range maxSpares + 4 {
		s.put(make([]byte, 1<<10))
	}
	if len(s.bufs) != maxSpares {
		t.Errorf("%d buffers kept, want at most %d", len(s.bufs), maxSpares)
	}
	if c := s.get(300 << 10); &c[0] != &b[0] {
		t.Error("the largest buffer was dropped for smaller ones")
	}
}
