package reader

import (
	"errors"
	"fmt"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"

	"arc/codec"
	"arc/format"
)

// VerifyOptions control Verify.
type VerifyOptions struct {
	// Progress receives stored bytes checked since its last call, from one
	// goroutine at a time; nil = none.
	Progress func(bytes int64)
	// Workers decoding blocks in parallel; 0 = GOMAXPROCS.
	Workers int
}

// VerifyReport is what Verify found.
type VerifyReport struct {
	Blocks         int64 // blocks checked
	StoredBytes    int64 // stored bytes read
	RawBytes       int64 // decoded bytes checked
	IndexOK        bool
	IndexErr       error
	Damaged        []*BlockError // sorted by block
	MissingVolumes []string
	AffectedFiles  []string // paths of files whose extents touch a damaged block, sorted
}

// Intact reports whether nothing is wrong.
func (r *VerifyReport) Intact() bool {
	return r.IndexOK && len(r.Damaged) == 0 && len(r.MissingVolumes) == 0
}

// Verify decodes and checks every block (bypassing the cache) and re-reads
// the index. Damage is reported in the VerifyReport, not as an error; the
// error is for Verify itself failing.
func (a *Archive) Verify(opt VerifyOptions) (*VerifyReport, error) {
	if opt.Workers <= 0 {
		opt.Workers = runtime.GOMAXPROCS(0)
	}
	rep := &VerifyReport{MissingVolumes: a.MissingVolumes()}
	rep.IndexErr = a.checkIndex()
	rep.IndexOK = rep.IndexErr == nil

	x := a.idx
	n := uint32(x.Blocks.Count())
	var next atomic.Uint32
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := 0; w < opt.Workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var dst []byte
			for {
				b := next.Add(1) - 1
				if b >= n {
					return
				}
				raw := int(x.Blocks.RawSize[b])
				if cap(dst) < raw {
					dst = make([]byte, raw)
				}
				err := a.loadBlock(b, dst[:raw])
				mu.Lock()
				rep.Blocks++
				rep.StoredBytes += int64(x.Blocks.StoredSize[b])
				rep.RawBytes += int64(raw)
				if err != nil {
					var be *BlockError
					if !errors.As(err, &be) {
						be = &BlockError{Block: b, Frame: x.FrameOf(b), Err: err}
					}
					rep.Damaged = append(rep.Damaged, be)
				}
				if opt.Progress != nil {
					opt.Progress(int64(x.Blocks.StoredSize[b]))
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	sort.Slice(rep.Damaged, func(i, j int) bool { return rep.Damaged[i].Block < rep.Damaged[j].Block })
	rep.AffectedFiles = a.affectedFiles(rep.Damaged)
	return rep, nil
}

// checkIndex re-reads the stored index and checks it against the footer.
func (a *Archive) checkIndex() error {
	f := a.footer
	stored := make([]byte, f.IndexSize)
	if err := a.vols.readStream(int64(f.IndexOffset), stored); err != nil {
		return fmt.Errorf("index: %w", err)
	}
	if sum := codec.Checksum(stored); sum != f.IndexChecksum {
		return fmt.Errorf("index checksum %016x, footer says %016x: %w", sum, f.IndexChecksum, format.ErrCorrupt)
	}
	return nil
}

// affectedFiles lists the paths of regular files with an extent touching a
// damaged block.
func (a *Archive) affectedFiles(damaged []*BlockError) []string {
	if len(damaged) == 0 {
		return nil
	}
	x := a.idx
	bad := make([]uint32, len(damaged))
	for i, d := range damaged {
		bad[i] = d.Block
	}
	// any damaged block in [lo, hi]?
	hit := func(lo, hi uint32) bool {
		i := sort.Search(len(bad), func(i int) bool { return bad[i] >= lo })
		return i < len(bad) && bad[i] <= hi
	}
	ni := x.Inodes.Count()
	affected := make([]bool, ni)
	for ino := 0; ino < ni; ino++ {
		if x.Inodes.Mode[ino]&format.ModeType != format.ModeReg {
			continue
		}
		s, e := x.FileExtents(uint32(ino))
		for i := s; i < e; i++ {
			off := x.Extents.Off[i]
			if off == format.Hole {
				continue
			}
			if hit(x.BlockAt(off), x.BlockAt(off+x.Extents.Len[i]-1)) {
				affected[ino] = true
				break
			}
		}
	}
	var out []string
	x.Walk(func(p []byte, d uint32) error {
		if affected[x.Dirents.Inode[d]] {
			out = append(out, string(p))
		}
		return nil
	})
	sort.Strings(out)
	return out
}
