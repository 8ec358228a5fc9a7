package fs

import (
	"arc/internal/slab"

	"github.com/hanwen/go-fuse/v2/fuse"
)

// A READ is answered from the block cache itself where it can be: the
// reply is the list of the decoded blocks' pieces that hold the range, and
// go-fuse writes it to the kernel with one writev from there (a result
// with Slices is written vectored when splicing is off, as it is here).
// Copying into the buffer go-fuse hands out would cost a memmove of every
// byte and, worse on the virtual machines we run on, page faults: go-fuse
// keeps its buffers in a sync.Pool per size, which every collection
// empties, so a large READ often lands in fresh pages: in a cold tar of the
// Go toolchains tree a third of arcmount's page faults were there, at about
// 13 µs a fault. Served from the cache (and the stored bytes' buffers kept,
// reader.spares), the tar took 2,000 faults fewer of about 17,000, and cold
// random 4 KiB reads (bench/randread, ten rounds taking turns) a p99 of
// 2.06 ms instead of 2.59 (medians).

// maxViews bounds the vectors of one reply (writev takes at most 1,024,
// two of them go-fuse's headers) and maxPieces the pieces viewed for it.
// A READ of 1 MiB of a large binary of the Go toolchains tree came in up
// to about 1,000 pieces (deduplicated chunks of about a KiB, seldom next to
// each other in a block; those that are make one vector). Past either, the
// READ is copied into a buffer of ours (bufResult).
const (
	maxViews  = 1000
	maxPieces = 4096
)

// viewResult is a READ's reply as pieces of decoded blocks, pinned in the
// cache until go-fuse has written it (Done).
type viewResult struct {
	views    [][]byte
	releases []func()
	size     int
}

// viewRead gathers the pieces of file ino's [off, off+want) (want > 0,
// inside the file); nil where a piece cannot be viewed (a hole, damage,
// too many pieces): the caller copies instead, and reports damage as a
// copy does.
func viewRead(v viewer, ino uint32, off int64, want int) *viewResult {
	r := &viewResult{}
	for r.size < want {
		data, release, err := v.View(ino, off+int64(r.size), want-r.size)
		if err != nil || len(data) == 0 || len(r.releases) == maxPieces {
			if release != nil {
				release()
			}
			r.Done()
			return nil
		}
		r.releases = append(r.releases, release)
		r.size += len(data)
		if k := len(r.views) - 1; k >= 0 && follows(r.views[k], data) {
			// The next bytes of the same decoded block: one vector.
			r.views[k] = r.views[k][:len(r.views[k])+len(data)]
			continue
		}
		if len(r.views) == maxViews {
			r.Done()
			return nil
		}
		r.views = append(r.views, data)
	}
	return r
}

// follows says whether b is the bytes right after a in a's own buffer.
func follows(a, b []byte) bool {
	return cap(a)-len(a) >= len(b) && len(b) > 0 && &a[:len(a)+1][len(a)] == &b[0]
}

// Slices is what go-fuse writes, vectored.
func (r *viewResult) Slices() ([][]byte, fuse.Status) { return r.views, fuse.OK }

// Bytes copies the pieces into buf, for a writer that cannot take them
// vectored.
func (r *viewResult) Bytes(buf []byte) ([]byte, fuse.Status) {
	buf = buf[:0]
	for _, v := range r.views {
		buf = append(buf, v...)
	}
	return buf, fuse.OK
}

func (r *viewResult) Size() int { return r.size }

// Done unpins the blocks; go-fuse calls it once the reply is written, or
// dropped.
func (r *viewResult) Done() {
	for _, rel := range r.releases {
		rel()
	}
	r.views, r.releases = nil, nil
}

// bufResult is a READ's reply copied into a buffer of pool, which takes
// it back once go-fuse has written the reply. It is written vectored
// too: go-fuse calls Done on a result that is not right after taking its
// Bytes, before the reply is written, and the buffer must not be reused
// before.
type bufResult struct {
	data []byte
	pool *slab.Pool
}

func (r *bufResult) Slices() ([][]byte, fuse.Status)    { return [][]byte{r.data}, fuse.OK }
func (r *bufResult) Bytes([]byte) ([]byte, fuse.Status) { return r.data, fuse.OK }
func (r *bufResult) Size() int                          { return len(r.data) }

func (r *bufResult) Done() {
	if r.data != nil {
		r.pool.Put(r.data)
		r.data = nil
	}
}
