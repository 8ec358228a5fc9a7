package fs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"

	"arc/format"
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

// Through a real mount: every READ's buffer is back in the pool once the
// reads are done, whether the READ was answered, failed (damage) or was
// one of many at once.
func TestEveryReadGivesItsBufferBack(t *testing.T) {
	es := []entry{
		{path: "big", mode: format.ModeReg | 0o644, data: bigData(3<<20, 1), mtime: mtime},
		{path: "bad", mode: format.ModeReg | 0o644, data: bigData(5000, 2), mtime: mtime},
	}
	for i := range 20 {
		es = append(es, entry{path: fmt.Sprintf("f%02d", i), mode: format.ModeReg | 0o644, data: bigData(20000+i, int64(i+3)), mtime: mtime})
	}
	a := build(es)
	d, ok := a.idx.Lookup(0, []byte("bad"))
	if !ok {
		t.Fatal("no bad")
	}
	a.mu.Lock()
	a.damaged[a.idx.Dirents.Inode[d]] = true
	a.mu.Unlock()
	dir, srv, fsys := mountServer(t, a, Options{NoPushAhead: true})
	var wg sync.WaitGroup
	for _, e := range es {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, err := os.ReadFile(filepath.Join(dir, e.path))
			switch {
			case e.path == "bad" && !errors.Is(err, syscall.EIO):
				t.Errorf("damaged file: %v, want EIO", err)
			case e.path != "bad" && (err != nil || string(got) != e.data):
				t.Errorf("%s: %d bytes, %v; want its %d bytes", e.path, len(got), err, len(e.data))
			}
		}()
	}
	wg.Wait()
	if err := srv.Unmount(); err != nil {
		t.Fatal(err)
	}
	srv.Wait()
	if n := fsys.readBufs.Outstanding(); n != 0 {
		t.Errorf("%d READ buffers never given back", n)
	}
	if fsys.reads.Load() == 0 {
		t.Error("no READ reached the filesystem")
	}
}
