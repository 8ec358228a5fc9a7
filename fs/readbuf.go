package fs

import (
	"arc/internal/slab"

	"github.com/hanwen/go-fuse/v2/fuse"
)

// A READ is answered from a buffer of ours, taken from a pool that keeps
// its buffers (slab), not from the one go-fuse hands out: go-fuse keeps
// those in a sync.Pool per size, which a collection or two empties, so a
// large READ often landed in fresh pages, a fault per 4 KiB at about 13 µs
// each on the virtual machines we run on (a third of arcmount's faults in
// a cold tar; bench/README.md has the measurements, and why the READs are
// not answered from the block cache itself).

// bufResult is a READ's reply in a buffer of pool, which takes it back
// once go-fuse has written the reply. It is written vectored (Slices):
// go-fuse calls Done on any other result as soon as it has taken its
// Bytes, before the reply is written, and the buffer must not be reused
// before that.
type bufResult struct {
	data []byte
	pool *slab.Pool
}

func (r *bufResult) Slices() ([][]byte, fuse.Status)    { return [][]byte{r.data}, fuse.OK }
func (r *bufResult) Bytes([]byte) ([]byte, fuse.Status) { return r.data, fuse.OK }
func (r *bufResult) Size() int                          { return len(r.data) }

// maxIdleReadBufs bounds the memory of the READ buffers kept idle: past
// it (after a burst of READs at once), their pages go back to the system.
const maxIdleReadBufs = 16 << 20

// Done gives the buffer back; go-fuse calls it once it has written the
// reply (or failed to), for a result that is not empty (FS.read keeps
// empty ones out of the pool).
func (r *bufResult) Done() {
	if r.data != nil {
		r.pool.Put(r.data)
		r.data = nil
		if r.pool.Idle() > maxIdleReadBufs {
			r.pool.Trim(maxIdleReadBufs)
		}
	}
}
