package writer

import "arc/internal/slab"

// readRing is the memory that files read whole are read into: one buffer of
// the read-ahead budget's size, handed out in dispatch order. The sequencer
// gives jobs back in the same order (it places files in the order they were
// dispatched), so the budget alone says which part of the ring is free: a
// job that holds its region's bytes of budget owns them until the sequencer
// releases it. The buffer lives outside the Go heap (internal/slab): reading
// every file into fresh heap memory made the heap churn through the whole
// tree's size, and each fresh 4 KiB page costs a fault (~15 µs on our VMs).
type readRing struct {
	pool *slab.Pool
	buf  []byte
	head int
}

func newReadRing(size int64) *readRing {
	p := slab.New(int(size))
	return &readRing{pool: p, buf: p.Get()}
}

// take returns n bytes for the next job and the budget the job must hold:
// n, plus the ring's tail when n does not fit before its end and the region
// starts over at the beginning. n must be at most half the ring.
func (r *readRing) take(n int) (region []byte, held int64) {
	held = int64(n)
	if r.head+n > len(r.buf) {
		held += int64(len(r.buf) - r.head)
		r.head = 0
	}
	region = r.buf[r.head : r.head+n : r.head+n]
	r.head += n
	return region, held
}

// close frees the ring; no reader may use a region after. It leaves the
// fields alone: a producer that has not yet seen the pipeline stop may still
// call take, which only computes a region it will never hand to a reader.
func (r *readRing) close() {
	r.pool.Put(r.buf)
	r.pool.Close()
}
