package reader

import (
	"errors"
	"fmt"
	"runtime"
	"sort"
	"sync"

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
	DamagedVolumes []error  // present volumes damaged as a whole: header, length (see Archive.DamagedVolumes)
	StrayVolumes   []string // files named past the last volume, left out (not damage)
	AffectedFiles  []string // paths of files whose extents touch a damaged block, sorted
}

// Intact reports whether nothing is wrong.
func (r *VerifyReport) Intact() bool {
	return r.IndexOK && len(r.Damaged) == 0 && len(r.MissingVolumes) == 0 && len(r.DamagedVolumes) == 0
}

// Verify decodes and checks every block (bypassing the cache) and re-reads
// the index. Damage is reported in the VerifyReport, not as an error; the
// error is for Verify itself failing.
func (a *Archive) Verify(opt VerifyOptions) (*VerifyReport, error) {
	if opt.Workers <= 0 {
		opt.Workers = runtime.GOMAXPROCS(0)
	}
	rep := &VerifyReport{MissingVolumes: a.MissingVolumes(), DamagedVolumes: a.DamagedVolumes(), StrayVolumes: a.StrayVolumes()}
	rep.IndexErr = a.checkIndex()
	rep.IndexOK = rep.IndexErr == nil

	x := a.idx
	n := uint32(x.Blocks.Count())
	// With a batch decoder (a GPU engine) each worker takes a run of
	// blocks at once, of up to call raw bytes (or one block larger than
	// that); a few workers keep reading ahead of the device. Without one,
	// a block at a time.
	call, workers := 0, opt.Workers
	if a.decodeBatch.Load() != nil && n > 0 {
		call = a.opt.DecodeBatchBytes
		if call <= 0 {
			call = verifyBatchBytes
		}
		// Each worker holds a call's decoded bytes and its stored ones;
		// with calls of 256 MiB (the default) three take up to about 1.5
		// GiB, with larger calls (a GPU engine's two slots: 512 MiB, more
		// with several GPUs) two, one reading while one decodes.
		workers = min(workers, max(2, 3*verifyBatchBytes/call))
	}
	// claim gives the next run of blocks, [lo, hi): sized by the blocks'
	// own raw sizes, so that no run of a hostile index (a 1-byte block,
	// then 256 MiB ones) holds more than a call.
	var claimMu sync.Mutex
	var cursor uint32
	// limit: a block that could not be read for the process's limit of
	// open files, which is no damage: the verify stops with it.
	var limit error
	claim := func() (lo, hi uint32, total int) {
		claimMu.Lock()
		defer claimMu.Unlock()
		if limit != nil {
			return cursor, cursor, 0
		}
		lo, hi = cursor, cursor
		for hi < n && (hi == lo || total+int(x.Blocks.RawSize[hi]) <= call) {
			total += int(x.Blocks.RawSize[hi])
			hi++
		}
		cursor = hi
		return lo, hi, total
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var buf []byte
			var keys []uint32
			var dsts [][]byte
			for {
				lo, hi, total := claim()
				if lo == hi {
					return
				}
				if cap(buf) < total {
					buf = make([]byte, total)
				}
				keys, dsts = keys[:0], dsts[:0]
				off := 0
				for b := lo; b < hi; b++ {
					raw := int(x.Blocks.RawSize[b])
					keys = append(keys, b)
					dsts = append(dsts, buf[off:off+raw:off+raw])
					off += raw
				}
				var errs []error
				if call == 0 || total > call {
					// One block at a time, or one larger than a call:
					// the CPU's.
					errs = []error{a.loadBlock(lo, dsts[0])}
				} else {
					errs = a.loadBatch(keys, dsts)
				}
				mu.Lock()
				for i, b := range keys {
					rep.Blocks++
					rep.StoredBytes += int64(x.Blocks.StoredSize[b])
					rep.RawBytes += int64(len(dsts[i]))
					if err := errs[i]; format.TooManyOpen(err) {
						claimMu.Lock()
						if limit == nil {
							limit = err
						}
						claimMu.Unlock()
					} else if err != nil {
						var be *BlockError
						if !errors.As(err, &be) {
							be = &BlockError{Block: b, Frame: x.FrameOf(b), Err: err}
						}
						rep.Damaged = append(rep.Damaged, be)
					}
					if opt.Progress != nil {
						opt.Progress(int64(x.Blocks.StoredSize[b]))
					}
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if limit != nil {
		return nil, limit
	}
	sort.Slice(rep.Damaged, func(i, j int) bool { return rep.Damaged[i].Block < rep.Damaged[j].Block })
	rep.AffectedFiles = a.affectedFiles(rep.Damaged)
	return rep, nil
}

// verifyBatchBytes is the raw bytes of one batch handed to
// Options.DecodeBatch by Verify unless Options.DecodeBatchBytes says: a
// device decodes fast only with hundreds of blocks in one launch
// (gpu/BENCHMARKS.md).
const verifyBatchBytes = 256 << 20

// checkIndex re-reads the stored index and checks it against the footer,
// and checks that the padding between index and footer (if any) is zero:
// no byte of the archive goes unchecked.
func (a *Archive) checkIndex() error {
	f := a.footer
	stored := make([]byte, f.IndexSize)
	if err := a.vols.readStream(int64(f.IndexOffset), stored); err != nil {
		return fmt.Errorf("index: %w", err)
	}
	if sum := codec.Checksum(stored); sum != f.IndexChecksum {
		return fmt.Errorf("index checksum %016x, footer says %016x: %w", sum, f.IndexChecksum, format.ErrCorrupt)
	}
	end := f.IndexOffset + f.IndexSize
	// ParseFooter guarantees end ≤ StreamSize − FooterSize; the footer
	// starts the next volume only when fewer than FooterSize bytes are left.
	pad := f.StreamSize - format.FooterSize - end
	var want uint64
	if a.layout.VolumeSize > 0 {
		if r := uint64(a.layout.Payload()) - end%uint64(a.layout.Payload()); r < format.FooterSize {
			want = r
		}
	}
	if pad != want {
		return fmt.Errorf("%w: %d bytes between the index and the footer, want %d", format.ErrCorrupt, pad, want)
	}
	if pad > 0 {
		p := make([]byte, pad)
		if err := a.vols.readStream(int64(end), p); err != nil {
			return fmt.Errorf("padding before the footer: %w", err)
		}
		for i, c := range p {
			if c != 0 {
				return fmt.Errorf("%w: padding byte at stream offset %d is %#02x, want 0", format.ErrCorrupt, end+uint64(i), c)
			}
		}
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
	// The extent rows touching a damaged block, ascending. Inodes may share
	// extent runs (docs/FORMAT.md), so checking each file's run extent by
	// extent would take files × extents steps on a hostile index; one pass
	// over the extents and a search per file take extents + files.
	var touched []uint64
	for i := range x.Extents.Count() {
		off := x.Extents.Off[i]
		if off != format.Hole && hit(x.BlockAt(off), x.BlockAt(off+x.Extents.Len[i]-1)) {
			touched = append(touched, uint64(i))
		}
	}
	ni := x.Inodes.Count()
	affected := make([]bool, ni)
	for ino := range ni {
		if x.Inodes.Mode[ino]&format.ModeType != format.ModeReg {
			continue
		}
		s, e := x.FileExtents(uint32(ino))
		j := sort.Search(len(touched), func(j int) bool { return touched[j] >= s })
		affected[ino] = j < len(touched) && touched[j] < e
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
