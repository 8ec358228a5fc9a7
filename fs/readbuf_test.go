package fs

import (
	"testing"

	"arc/internal/slab"
)

func TestReadReplyGivesItsBufferBackOnceWritten(t *testing.T) {
	pool := slab.New(maxIO)
	defer pool.Close()
	r := &bufResult{pool.Get()[:100], pool}
	// Vectored, so that go-fuse keeps it until the reply is written
	// instead of calling Done as soon as it took the bytes.
	if vecs, _ := r.Slices(); len(vecs) != 1 || len(vecs[0]) != 100 {
		t.Fatalf("Slices gave %d vectors, want one of 100 bytes", len(vecs))
	}
	if pool.Outstanding() != 1 {
		t.Fatalf("%d buffers out before Done, want 1", pool.Outstanding())
	}
	r.Done()
	r.Done() // go-fuse calls it once; twice must not give it back twice
	if pool.Outstanding() != 0 {
		t.Errorf("%d buffers out after Done, want 0", pool.Outstanding())
	}
}

// A burst of READs at once leaves at most maxIdleReadBufs of buffers
// holding memory once they are done.
func TestReadBuffersKeptIdleAreBounded(t *testing.T) {
	pool := slab.New(maxIO)
	defer pool.Close()
	var rs []*bufResult
	for range 2 * maxIdleReadBufs / maxIO {
		rs = append(rs, &bufResult{pool.Get(), pool})
	}
	for _, r := range rs {
		r.Done()
	}
	if idle := pool.Idle(); idle > maxIdleReadBufs {
		t.Errorf("%d bytes of READ buffers idle in memory, want at most %d", idle, maxIdleReadBufs)
	}
}
