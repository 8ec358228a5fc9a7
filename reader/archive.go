// Package reader opens an arc archive (any of its volumes), validates its
// volume set, footer and index, and reads file content through a cache of
// decoded blocks. It also extracts archives and verifies them.
//
// Damage is local: a block that fails its checksum or lies in a missing
// volume makes reads that touch it fail with an error wrapping ErrDamaged,
// and every other file stays readable.
package reader

import (
	"errors"
	"fmt"
	"io"
	"math/bits"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"

	"arc/cache"
	"arc/codec"
	"arc/format"
	"arc/internal/bytesize"
)

// ErrDamaged is wrapped by every error caused by damage to the archive's
// data: a block that does not decode or fails its checksum, or a missing volume.
var ErrDamaged = errors.New("archive damaged")

// BlockError reports one damaged block.
type BlockError struct {
	Block  uint32
	Frame  uint32
	Volume string // path of the volume holding (the start of) the block, or the missing one
	// LastVolume: the last volume the block's stored bytes reach, where
	// they go on past Volume and the damage is not one volume's (a
	// checksum that fails cannot say which piece is bad); else "".
	LastVolume string
	Err        error
}

func (e *BlockError) Error() string {
	if e.LastVolume != "" {
		return fmt.Sprintf("block %d (frame %d, volumes %s to %s): %v", e.Block, e.Frame, e.Volume, e.LastVolume, e.Err)
	}
	return fmt.Sprintf("block %d (frame %d, volume %s): %v", e.Block, e.Frame, e.Volume, e.Err)
}

// Unwrap gives both the cause and ErrDamaged to errors.Is.
func (e *BlockError) Unwrap() []error { return []error{ErrDamaged, e.Err} }

// Options tune reading.
type Options struct {
	CacheSize int64 // bytes of decoded blocks to keep; 0 = DefaultCacheSize
	Prefetch  int   // frames past the current one that read-ahead may reach (see touch); 0 = default (2), <0 = off
	Workers   int   // prefetch decode workers; 0 = GOMAXPROCS
	Logf      func(format string, args ...any)
	// DecodeBatch, when set, decodes prefetch batches in one call (a GPU
	// engine): srcs[i] holds block i's stored bytes with codec ids[i], to be
	// decoded into dsts[i] (exactly the raw size); errs[i] reports block i.
	// The reader still reads the stored bytes and checks every checksum.
	// Demand misses always decode on the CPU, one block, lowest latency.
	// SetDecodeBatch sets it after Open.
	DecodeBatch DecodeBatchFunc
	// DecodeBatchBytes is how many raw bytes Verify hands DecodeBatch per
	// call (gpu.Engine.DecodeCallBytes); 0 means 256 MiB.
	DecodeBatchBytes int

	streamIndexFrom uint64 // tests: streamIndexFrom's value (0: the const)
}

// DecodeBatchFunc is Options.DecodeBatch.
type DecodeBatchFunc func(ids []uint8, dsts, srcs [][]byte) (errs []error)

// DefaultCacheSize is the cache's bound where Options.CacheSize is 0.
const DefaultCacheSize = 512 << 20

// minCacheBlocks is the fewest of the archive's largest blocks the cache
// holds, whatever Options.CacheSize says. One read may need two (a file
// whose extents take turns between two blocks, as segment dedup makes
// them) and read-ahead the next ones; a cache of one 16 MiB block decoded
// both for every read: 12 s for a 1.2 MB file against 0.4 s (2026-12-07).
const minCacheBlocks = 4

// CacheSize is the cache's bound: Options.CacheSize, or more where that
// held fewer than minCacheBlocks of the archive's largest blocks.
func (a *Archive) CacheSize() int64 { return a.opt.CacheSize }

const defaultPrefetch = 2

// Archive is an open archive. All methods are safe for concurrent use.
type Archive struct {
	opt    Options
	idx    *format.Index
	footer format.Footer
	layout format.Layout
	vols   *volumeSet
	cache  *cache.Cache
	// decodeBatch: opt.DecodeBatch, or what SetDecodeBatch set since.
	decodeBatch atomic.Pointer[DecodeBatchFunc]

	decoders sync.Pool // *codec.Decoder
	scratch  spares    // for stored block bytes

	seq     seqTracker
	parents struct {
		once sync.Once
		of   []uint32
	}
}

// Open opens the archive that the volume at path belongs to (NAME.001 or
// any other NAME.NNN; a bare NAME finds NAME.001).
func Open(path string, opt Options) (*Archive, error) {
	if opt.CacheSize <= 0 {
		opt.CacheSize = DefaultCacheSize
	}
	if opt.Prefetch == 0 {
		opt.Prefetch = defaultPrefetch
	}
	if opt.Workers <= 0 {
		opt.Workers = runtime.GOMAXPROCS(0)
	}
	if opt.Logf == nil {
		opt.Logf = func(string, ...any) {}
	}
	vs, footer, err := openVolumes(path)
	if err != nil {
		return nil, err
	}
	a := &Archive{opt: opt, footer: footer, layout: vs.layout, vols: vs}
	a.decoders.New = func() any { return codec.NewDecoder() }
	for _, n := range vs.missingList() {
		opt.Logf("arc: volume %s is missing: its blocks will read as damaged", vs.name(n))
	}
	for _, n := range vs.damagedList() {
		opt.Logf("arc: volume %v", vs.damaged[n])
	}
	if err := a.readIndex(); err != nil {
		vs.close()
		return nil, err
	}
	// By what the blocks cost the cache: their buffers, a power of two
	// (four 9 MiB blocks take 64 MiB, not 36).
	if least := minCacheBlocks * cache.Cost(int(a.idx.MaxBlockRaw())); opt.CacheSize < least {
		opt.Logf("arc: a cache of %s holds fewer than %d of this archive's blocks (up to %s each): it holds %s, so that reads do not decode the same blocks over and over",
			bytesize.Format(opt.CacheSize), minCacheBlocks, bytesize.Format(a.idx.MaxBlockRaw()), bytesize.Format(least))
		opt.CacheSize = least
		a.opt.CacheSize = least
	}
	a.scratch.budget = int(opt.CacheSize / 16) // of the cache's size as held
	cfg := cache.Config{
		MaxBytes: opt.CacheSize,
		Size:     func(b uint32) int { return int(a.idx.Blocks.RawSize[b]) },
		Load:     a.loadBlock,
		Workers:  opt.Workers,
	}
	if opt.DecodeBatch != nil {
		a.decodeBatch.Store(&opt.DecodeBatch)
		cfg.LoadBatch = a.loadBatch
	}
	a.cache, err = cache.New(cfg)
	if err != nil {
		vs.close()
		return nil, err
	}
	return a, nil
}

// readIndex reads, checks and decodes the index the footer points at.
func (a *Archive) readIndex() error {
	f := a.footer
	// Errors name the volumes that hold the index.
	first, _ := a.layout.Locate(int64(f.IndexOffset))
	last, _ := a.layout.Locate(int64(f.IndexOffset + max(f.IndexSize, 1) - 1))
	where := a.vols.name(first)
	if last != first {
		where += " to " + a.vols.name(last)
	}
	stored := make([]byte, f.IndexSize)
	if err := a.vols.readStream(int64(f.IndexOffset), stored); err != nil {
		return fmt.Errorf("%s: reading the index: %w", where, err)
	}
	if sum := codec.Checksum(stored); sum != f.IndexChecksum {
		return fmt.Errorf("%s: index checksum %016x, footer says %016x: %w", where, sum, f.IndexChecksum, format.ErrCorrupt)
	}
	idx, err := decodeIndex(stored, f.IndexRawSize, a.opt.streamIndexFrom)
	if err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	if idx.DataSize() != f.IndexOffset {
		return fmt.Errorf("%s: %w: blocks hold %d stored bytes but the index starts at %d", where, format.ErrCorrupt, idx.DataSize(), f.IndexOffset)
	}
	a.idx = idx
	return nil
}

// streamIndexFrom is the decompressed size from which an index is decoded
// as it is decompressed rather than from one buffer. Streaming keeps the
// whole decompressed index from being held beside its tables, but costs
// the decoder's window (8 MiB, the writer's) and a copy, so it pays only
// for large indexes. Measured on mounts here (time until the mount lists,
// medians of alternating runs): a million files (101.7 MiB decompressed)
// 0.77 s streamed against 0.90 s, peak RSS 243 MiB against 293; the Go
// toolchains tree (14.5 MiB) 0.32 s streamed against 0.28 s. It also
// bounds what a hostile footer and frame can make Open reserve up front:
// below it, the content size the frame declares (DecompressIndex); from
// it on, the window (at most 64 MiB; OpenIndex).
const streamIndexFrom = 32 << 20

// decodeIndex decompresses and decodes a stored index whose footer claims
// rawSize bytes, streaming it from streamFrom bytes (0: streamIndexFrom).
func decodeIndex(stored []byte, rawSize, streamFrom uint64) (*format.Index, error) {
	if streamFrom == 0 {
		streamFrom = streamIndexFrom
	}
	if rawSize < streamFrom {
		raw, err := codec.DecompressIndex(stored, rawSize)
		if err != nil {
			return nil, err
		}
		return format.DecodeOwnedIndex(raw)
	}
	zr, err := codec.OpenIndex(stored, rawSize)
	if err != nil {
		return nil, err
	}
	defer zr.Close()
	idx, err := format.DecodeIndexFrom(zr, rawSize, zr.Alloc)
	if err != nil {
		return nil, err
	}
	if err := zr.End(); err != nil {
		return nil, err
	}
	return idx, nil
}

// Close releases the volume files and the cache.
func (a *Archive) Close() error {
	a.cache.Close()
	return a.vols.close()
}

// Index returns the validated index; callers must not modify it.
func (a *Archive) Index() *format.Index { return a.idx }

// Footer returns the archive's footer.
func (a *Archive) Footer() format.Footer { return a.footer }

// VolumeSize is the split size of the set (0: one volume).
func (a *Archive) VolumeSize() int64 { return a.layout.VolumeSize }

// Volumes returns the paths of volumes 1..N, missing ones included.
func (a *Archive) Volumes() []string {
	out := make([]string, a.vols.count)
	for i := range out {
		out[i] = a.vols.name(uint32(i + 1))
	}
	return out
}

// MissingVolumes returns the paths of the volumes absent at open.
func (a *Archive) MissingVolumes() []string {
	var out []string
	for _, n := range a.vols.missingList() {
		out = append(out, a.vols.name(n))
	}
	return out
}

// StrayVolumes returns the files named like volumes past the archive's
// last one (whose footer ends the set): they were left out.
func (a *Archive) StrayVolumes() []string { return a.vols.strays }

// DamagedVolumes returns what is wrong with each volume that is present
// but damaged as a whole (a header that does not parse, a short file), in
// volume order. Their blocks are still read, and checked one by one.
func (a *Archive) DamagedVolumes() []error {
	var out []error
	for _, n := range a.vols.damagedList() {
		out = append(out, a.vols.damaged[n])
	}
	return out
}

// CacheStats returns the block cache's counters.
func (a *Archive) CacheStats() cache.Stats { return a.cache.Stats() }

// loadBlock reads block b's stored bytes (across volumes if need be),
// decodes them into dst and checks the raw checksum.
func (a *Archive) loadBlock(b uint32, dst []byte) error {
	x := a.idx
	off := int64(x.BlockStoredOff[b])
	n := int(x.Blocks.StoredSize[b])
	id := x.Blocks.Codec[b]
	var src []byte
	if id == format.CodecRaw && n == len(dst) {
		src = dst // raw: read straight into place
	} else {
		src = a.scratch.get(n)
		defer a.scratch.put(src)
	}
	if err := a.vols.readStream(off, src); err != nil {
		return a.blockError(b, err)
	}
	if &src[0] != &dst[0] {
		if err := a.decode(id, dst, src); err != nil {
			return a.blockError(b, err)
		}
	}
	if sum := codec.Checksum(dst); sum != x.Blocks.Sum[b] {
		return a.blockError(b, fmt.Errorf("checksum %016x, index says %016x", sum, x.Blocks.Sum[b]))
	}
	return nil
}

// errDecoderPanic is the error of a block whose decoder panicked.
var errDecoderPanic = errors.New("decoder panicked")

// decode decodes one block with a pooled decoder. A panic (a decoder bug
// met on hostile bytes) becomes the block's error: a read must fail, not
// end the process (a mount, verify); the decoder it hit is not reused.
func (a *Archive) decode(id uint8, dst, src []byte) (err error) {
	dec := a.decoders.Get().(*codec.Decoder)
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %v", errDecoderPanic, r)
			return
		}
		a.decoders.Put(dec)
	}()
	return dec.Decode(id, dst, src)
}

// decodeBatchGuarded runs the batch decoder on one batch; a panic fails every
// block of it, as decode does for one.
func (a *Archive) decodeBatchGuarded(ids []uint8, dsts, srcs [][]byte) (errs []error) {
	defer func() {
		if r := recover(); r != nil {
			errs = make([]error, len(ids))
			for i := range errs {
				errs[i] = fmt.Errorf("%w (batch): %v", errDecoderPanic, r)
			}
		}
	}()
	return (*a.decodeBatch.Load())(ids, dsts, srcs)
}

// SetDecodeBatch makes f the decoder of the prefetch batches asked for from
// now on, as if it had been Options.DecodeBatch; nil changes nothing.
// Verify runs that have started keep their way of decoding. A mount sets
// its GPU engine this way once the engine has built its kernels, so that
// the archive serves reads from the start.
func (a *Archive) SetDecodeBatch(f DecodeBatchFunc) {
	if f != nil {
		a.decodeBatch.Store(&f)
		a.cache.SetLoadBatch(a.loadBatch)
	}
}

// loadBatch reads the stored bytes of several blocks, has the batch
// decoder decode them together and checks each result like loadBlock
// does.
func (a *Archive) loadBatch(keys []uint32, dsts [][]byte) []error {
	x := a.idx
	errs := make([]error, len(keys))
	ids := make([]uint8, len(keys))
	srcs := make([][]byte, len(keys))
	var todo []int
	for i, b := range keys {
		ids[i] = x.Blocks.Codec[b]
		srcs[i] = make([]byte, x.Blocks.StoredSize[b])
		if err := a.vols.readStream(int64(x.BlockStoredOff[b]), srcs[i]); err != nil {
			errs[i] = a.blockError(b, err)
			continue
		}
		todo = append(todo, i)
	}
	if len(todo) == 0 {
		return errs
	}
	tIDs, tDsts, tSrcs := make([]uint8, len(todo)), make([][]byte, len(todo)), make([][]byte, len(todo))
	for j, i := range todo {
		tIDs[j], tDsts[j], tSrcs[j] = ids[i], dsts[i], srcs[i]
	}
	derrs := a.decodeBatchGuarded(tIDs, tDsts, tSrcs)
	for j, i := range todo {
		b := keys[i]
		if j < len(derrs) && derrs[j] != nil {
			errs[i] = a.blockError(b, derrs[j])
		} else if sum := codec.Checksum(dsts[i]); sum != x.Blocks.Sum[b] {
			errs[i] = a.blockError(b, fmt.Errorf("checksum %016x, index says %016x", sum, x.Blocks.Sum[b]))
		}
	}
	return errs
}

// blockError wraps err as damage of block b, naming the volume that
// caused it (a missing one, a short one), or else the volumes the block's
// stored bytes lie in: any of them may hold the bad bytes.
func (a *Archive) blockError(b uint32, err error) error {
	vol, _ := a.layout.Locate(int64(a.idx.BlockStoredOff[b]))
	last := vol
	if end := a.idx.BlockStoredOff[b+1]; end > a.idx.BlockStoredOff[b] {
		last, _ = a.layout.Locate(int64(end) - 1)
	}
	var ve *volumeError
	if errors.As(err, &ve) {
		vol, last, err = ve.vol, ve.vol, ve.err
	}
	be := &BlockError{Block: b, Frame: a.idx.FrameOf(b), Volume: a.vols.name(vol), Err: err}
	if last != vol {
		be.LastVolume = a.vols.name(last)
	}
	return be
}

// errNotFile is returned by ReadAt for inodes that are not regular files.
var errNotFile = errors.New("not a regular file")

// fileSize returns a regular file's size or an error for other inodes.
func (a *Archive) fileSize(ino uint32) (int64, error) {
	if int(ino) >= a.idx.Inodes.Count() {
		return 0, fmt.Errorf("inode %d: no such inode", ino)
	}
	if a.idx.Inodes.Mode[ino]&format.ModeType != format.ModeReg {
		return 0, fmt.Errorf("inode %d: %w", ino, errNotFile)
	}
	return int64(a.idx.Inodes.Size[ino]), nil
}

var _ io.ReaderAt = (*fileReader)(nil)

// fileReader adapts one file of the archive to io.ReaderAt.
type fileReader struct {
	a   *Archive
	ino uint32
}

func (r *fileReader) ReadAt(p []byte, off int64) (int, error) { return r.a.ReadAt(r.ino, p, off) }

// File returns an io.ReaderAt over regular file inode ino.
func (a *Archive) File(ino uint32) io.ReaderAt { return &fileReader{a, ino} }

// spares keeps buffers for stored block bytes from one load to the next,
// up to budget bytes of them. Not a sync.Pool: that drops its buffers
// within two collections, and a fresh buffer of a few hundred KiB is a page
// fault per 4 KiB on first use, about 13 µs each on the virtual machines
// we run on (a cold tar through arcmount took 5,000 such faults in pread
// before this).
type spares struct {
	mu     sync.Mutex
	bufs   [][]byte
	held   int // bytes of bufs' capacity
	budget int // Open: a sixteenth of the cache, at least minSpares
}

const minSpares = 16 << 20

// maxSpareBufs bounds the buffers kept whatever their size (the search
// for one that fits is linear).
const maxSpareBufs = 64

// get returns a buffer of n bytes: the smallest kept one that fits, so
// that a large one stays for the large blocks.
func (s *spares) get(n int) []byte {
	s.mu.Lock()
	if k := s.smallestLocked(n); k >= 0 {
		b := s.bufs[k]
		s.bufs = slices.Delete(s.bufs, k, k+1)
		s.held -= cap(b)
		s.mu.Unlock()
		return b[:n]
	}
	s.mu.Unlock()
	// An eighth more at most, so that a kept buffer also fits the
	// slightly larger blocks that follow (stored sizes vary).
	step := 1 << max(0, bits.Len(uint(n))-4)
	return make([]byte, n, (n+step-1)/step*step)
}

// put keeps b for a later get where the budget allows, dropping smaller
// buffers for it if need be (loads of the largest blocks then find one).
func (s *spares) put(b []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	budget := max(s.budget, minSpares)
	if cap(b) > budget {
		return // larger than all the spares may hold: it keeps none out
	}
	for (s.held+cap(b) > budget || len(s.bufs) >= maxSpareBufs) && len(s.bufs) > 0 {
		k := s.smallestLocked(0)
		if cap(s.bufs[k]) >= cap(b) {
			return // b is the smallest: it goes
		}
		s.held -= cap(s.bufs[k])
		s.bufs = slices.Delete(s.bufs, k, k+1)
	}
	if s.held+cap(b) <= budget && len(s.bufs) < maxSpareBufs {
		s.bufs = append(s.bufs, b)
		s.held += cap(b)
	}
}

// smallestLocked gives the index of the smallest kept buffer of at least
// n bytes, -1 if none.
func (s *spares) smallestLocked(n int) int {
	k := -1
	for i, b := range s.bufs {
		if cap(b) >= n && (k < 0 || cap(b) < cap(s.bufs[k])) {
			k = i
		}
	}
	return k
}
