package recovery

import (
	"fmt"
	"os"
	"sync"

	"arc/format"
)

// maxHeld bounds the volume files a volumeFiles keeps open at once, and
// less where the process's limit of open files leaves less room.
const maxHeld = 64

// heldBudget is how many files each of share volumeFiles may hold open:
// what the limit of open files leaves room for, 1 to maxHeld.
func heldBudget(share int) int { return format.DescriptorBudget(share, 1, maxHeld) }

// volumeFiles reads the volumes at paths, opening each as it is read and
// keeping at most max open (the least recently used idle one closed
// first). The parity of one stripe spans volumes across the whole archive,
// so encoding and repair read from all of them; an archive of thousands
// of volumes must not take a descriptor for each, which a limit of open
// files refuses (20,000 volumes is 2 TB at the default volume size).
// Safe for concurrent use.
type volumeFiles struct {
	paths []string
	max   int
	mu    sync.Mutex
	freed *sync.Cond // a file released: one may be closed now
	open  map[int]*heldFile
	clock uint64
}

type heldFile struct {
	f    *os.File
	refs int
	last uint64
}

// newVolumeFiles reads paths holding at most limit open (heldBudget's),
// at least one.
func newVolumeFiles(paths []string, limit int) *volumeFiles {
	v := &volumeFiles{paths: paths, max: max(1, limit), open: map[int]*heldFile{}}
	v.freed = sync.NewCond(&v.mu)
	return v
}

// ReadAt reads len(p) bytes of volume i at off (io.ReaderAt's contract).
func (v *volumeFiles) ReadAt(i int, p []byte, off int64) (int, error) {
	h, err := v.acquire(i)
	if err != nil {
		return 0, err
	}
	defer v.release(h)
	n, err := h.f.ReadAt(p, off)
	if err != nil {
		err = fmt.Errorf("read %s at %d: %w", v.paths[i], off, err)
	}
	return n, err
}

func (v *volumeFiles) acquire(i int) (*heldFile, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.clock++
	for {
		if h, ok := v.open[i]; ok {
			h.refs++
			h.last = v.clock
			return h, nil
		}
		// At the budget, a file in use by every reader (as many as
		// the workers) waits for one of them: each reader holds one
		// file at a time, so one is always given back.
		if len(v.open) < v.max || v.closeIdleLocked() {
			break
		}
		v.freed.Wait()
	}
	f, err := format.OpenFile(v.paths[i])
	for format.TooManyOpen(err) && len(v.open) > 0 {
		// The rest of the process took what the budget counted on:
		// give back one held here, once one is idle, and try again.
		for !v.closeIdleLocked() {
			v.freed.Wait()
		}
		f, err = format.OpenFile(v.paths[i])
	}
	if err != nil {
		return nil, err
	}
	h := &heldFile{f: f, refs: 1, last: v.clock}
	v.open[i] = h
	return h, nil
}

func (v *volumeFiles) release(h *heldFile) {
	v.mu.Lock()
	h.refs--
	v.mu.Unlock()
	v.freed.Broadcast()
}

// closeIdleLocked closes the least recently used file nobody is reading,
// and says whether there was one.
func (v *volumeFiles) closeIdleLocked() bool {
	victim, best := -1, (*heldFile)(nil)
	for i, h := range v.open {
		if h.refs == 0 && (best == nil || h.last < best.last) {
			victim, best = i, h
		}
	}
	if best == nil {
		return false
	}
	best.f.Close()
	delete(v.open, victim)
	return true
}

// Close closes every file held; reads must have ended.
func (v *volumeFiles) Close() {
	v.mu.Lock()
	defer v.mu.Unlock()
	for i, h := range v.open {
		h.f.Close()
		delete(v.open, i)
	}
}
