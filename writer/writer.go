// Package writer packs directory trees into arc archives.
//
// The pipeline, each stage on its own goroutines and bounded in memory:
//
//	scan (parallel lstat, xattrs)
//	  → file readers (path order, a byte budget ahead of the sequencer;
//	    BLAKE3-256 of files that share their size with another)
//	  → sequencer (whole-file dedup, unique-data stream cut into frames and blocks)
//	  → compressors (one codec.Encoder per goroutine)
//	  → volume writer (blocks in stream order, then index and footer)
//
// A file is read once, but for one larger than what is read whole that
// shares its size with another: it is hashed first, and read again to be
// stored unless it is a duplicate. A file whose size no other file has
// cannot be a duplicate and is never hashed; the others are identified by
// size and BLAKE3-256, never by a 64-bit hash.
package writer

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"arc/codec"
	"arc/format"
	"arc/internal/exclude"
	"arc/writer/chunk"
	"arc/writer/segment"
)

// Options control Create. The zero value of a size means its default.
type Options struct {
	VolumeSize    int64 // bytes per volume file, header included; 0 = one volume
	FrameSize     int64 // unique-stream bytes per frame; default 16 MiB
	BlockSize     int64 // unique-stream bytes per block; default 1 MiB
	Codec         codec.Options
	Workers       int // compressors; 0 = GOMAXPROCS
	OneFileSystem bool
	// Exclude leaves out the paths its patterns match (and what lies below
	// a directory it leaves out, which is not read); nil leaves out none.
	Exclude *exclude.List
	// ExcludeCaches leaves out what a directory holds when it holds a
	// CACHEDIR.TAG file with the tag's signature
	// (https://bford.info/cachedir/), keeping the directory and the tag,
	// as tar's --exclude-caches does. Not for a tar stream.
	ExcludeCaches bool
	// ExcludeIfPresent leaves out what a directory holds when it holds an
	// entry of one of these names, keeping the directory and that entry
	// (a ".nobackup" marker, say), as tar's --exclude-tag and restic's
	// --exclude-if-present do. Not for a tar stream.
	ExcludeIfPresent []string
	Strict           bool // an unreadable source is fatal instead of skipped
	Force            bool // replace an existing archive of the same name
	// KeepLock leaves the archive's lock (format.LockArchive) held after a
	// successful Create, in Result.Unlock: the caller's next writes (its
	// recovery volumes) are then guarded too.
	KeepLock bool
	// Order lays out the unique-data stream: OrderPath (default) keeps a
	// directory's files together, OrderSimilar puts similar files together.
	Order string
	// ChunkSize is the average content-defined chunk size (a power of two;
	// min = avg/4, max = avg×4); 0 means the default, < 0 turns chunking off.
	ChunkSize int
	// ChunkMemory bounds the table of the chunks stored so far, in bytes
	// (counting the moment it doubles); 0 means 512 MiB. Once full, a new
	// chunk takes an older one's place: memory stays bounded on any input,
	// and dedup against data that old is what goes (Result.ChunksLost).
	ChunkMemory int64
	// Segments configures long-distance segment dedup; nil means the
	// level's choice: off at codec.LevelFast, which trades the smaller
	// archive for speed (its matching costs about a third of the CPU time
	// of a create), segment.DefaultConfig() at the others. MinLen < 0 turns
	// it off.
	Segments *segment.Config
	Warn     func(err error)
	Progress func(Progress)
	// BatchEncoder, when set, compresses the blocks in batches (a GPU
	// engine) instead of on the compressor goroutines, which then only
	// redo the batches it fails.
	BatchEncoder BatchEncoder

	// Tool names the program for the archive's parameters.
	Tool string

	// readHook, when set (by tests), runs after each read of a source
	// file and before its stamp is checked again (attempt -1: the hashing
	// read of a large file).
	readHook func(path string, attempt int)
	// dirHook, when set (by tests), runs before the scan opens a
	// directory to list it.
	dirHook func(path string)
	// scanHook, when set (by tests), runs after the scan of a tree and
	// before any of its files is read.
	scanHook func()
	// tarHook, when set (by tests), runs once a tar stream's last member
	// has joined the tree, before the index is written.
	tarHook func()
	// wholeMax is the largest file read whole; 0 means wholeFileMax.
	wholeMax int64
	// readAhead, when set (by tests), replaces the read-ahead budget and
	// the read ring's size (at least twice wholeMax).
	readAhead int64
}

// Progress is a snapshot of a running Create.
type Progress struct {
	Phase                 string // "scan", "pack", "index"
	FilesDone, FilesTotal int64
	BytesDone, BytesTotal int64
}

// Result describes a finished archive.
type Result struct {
	Volumes                                           []string
	Files, Dirs, Symlinks, Others, Hardlinks, Skipped int64
	Excluded                                          int64 // paths Exclude and ExcludeCaches left out (not counting what lies below a directory left out)
	InputBytes                                        int64 // regular-file bytes read (holes excluded)
	UniqueBytes                                       int64 // length of the unique-data stream
	DupFiles, DupBytes                                int64 // whole-file duplicates found and bytes they would have taken
	HoleBytes                                         int64 // bytes of sparse-file holes, stored as holes
	SegmentBytes, SegmentRefs                         int64 // repeats stored as references to earlier stream bytes
	ChunkBytes, ChunkRefs                             int64 // chunks stored before, placed as references
	// ChunksLost is how many chunks took an older one's place or went
	// unrecorded once the table of chunks reached Options.ChunkMemory
	// (ChunkTableBytes, holding ChunkTableLen chunks), so that a later
	// repeat of theirs may have been stored again.
	ChunkTableBytes, ChunksLost int64
	ChunkTableLen               int64
	StoredBytes                 int64 // compressed block data
	ArchiveBytes                int64 // all volume files together
	Elapsed                     time.Duration
	// Unlock releases the archive's lock held for Options.KeepLock (else
	// it does nothing).
	Unlock func()
	// Leftovers is what an earlier run on this archive, killed, left and
	// the lock's taking dealt with: the renames of its commit finished,
	// its temporary volumes removed (format.LockArchive).
	Leftovers format.Leftovers
}

// Stream orders.
const (
	OrderPath    = "path"
	OrderSimilar = "similar"
)

const (
	defaultFrameSize = 16 << 20
	defaultBlockSize = 1 << 20
	// maxLevelBlockSize is the default block at --level max.
	maxLevelBlockSize = 16 << 20
	defaultChunkSize  = 32 << 10
	// defaultChunkMemory holds 2^23 slots: 6.3 million chunks, about
	// 190 GiB of unique data at 32 KiB chunks, before the table is full.
	defaultChunkMemory = 512 << 20
	// MinBlockSize is the smallest block Create takes (format.MaxBlockSize
	// the largest).
	MinBlockSize = 64 << 10
	// wholeFileMax is the largest file a reader worker holds in memory; larger
	// ones are streamed by the sequencer in block-sized reads.
	wholeFileMax = 32 << 20
	// readAhead bounds the file bytes read ahead of the sequencer (and sizes
	// the read ring). Two of the largest files read whole: more only costs
	// memory, and fresh memory is not free (each page faults once).
	readAhead = 64 << 20
)

func (o *Options) normalize() error {
	frameDefault := o.FrameSize == 0
	if frameDefault {
		o.FrameSize = defaultFrameSize
	}
	if o.BlockSize == 0 {
		o.BlockSize = defaultBlockSize
		if o.Codec.Level == codec.LevelMax {
			// Max is for the smallest archive: whole frames as blocks let
			// the codecs' windows reach the near-duplicates of a tree (on
			// the Go toolchains tree, zstd max: 123.5 MB at 4 MiB blocks,
			// 111.7 MB at 16 MiB), at the price of decoding up to a frame
			// for a random read.
			o.BlockSize = min(maxLevelBlockSize, o.FrameSize)
		}
	}
	if o.BlockSize < MinBlockSize || o.BlockSize > format.MaxBlockSize {
		return fmt.Errorf("block size %d out of range (%d to %d)", o.BlockSize, MinBlockSize, format.MaxBlockSize)
	}
	if o.FrameSize < o.BlockSize || o.FrameSize%o.BlockSize != 0 {
		if frameDefault {
			// The user asked for the block size alone: say which size
			// to give as well.
			return fmt.Errorf("block size %d does not divide the default frame size %d: give a frame size that is a multiple of it", o.BlockSize, o.FrameSize)
		}
		return fmt.Errorf("frame size %d must be a multiple of the block size %d", o.FrameSize, o.BlockSize)
	}
	if o.VolumeSize != 0 && o.VolumeSize < format.MinVolumeSize {
		return fmt.Errorf("volume size %d is below the minimum of %d bytes", o.VolumeSize, format.MinVolumeSize)
	}
	if o.wholeMax == 0 {
		o.wholeMax = wholeFileMax
	}
	if o.Codec.Codec == "" {
		o.Codec.Codec = "auto"
	}
	if o.Codec.Level == 0 {
		o.Codec.Level = codec.LevelDefault
	}
	if err := o.Codec.Validate(); err != nil {
		return err
	}
	if o.Segments != nil {
		if err := o.Segments.Validate(); err != nil {
			return err
		}
	}
	if o.ChunkSize == 0 {
		o.ChunkSize = defaultChunkSize
	}
	if o.ChunkSize > 0 {
		if _, err := chunk.NewParams(o.ChunkSize); err != nil {
			return err
		}
	}
	switch {
	case o.ChunkMemory == 0:
		o.ChunkMemory = defaultChunkMemory
	case o.ChunkMemory < 0:
		return fmt.Errorf("chunk memory %d is negative", o.ChunkMemory)
	}
	switch o.Order {
	case "":
		o.Order = OrderPath
	case OrderPath, OrderSimilar:
	default:
		return fmt.Errorf("unknown order %q (want path or similar)", o.Order)
	}
	if o.Workers <= 0 {
		o.Workers = runtime.GOMAXPROCS(0)
	}
	if o.Tool == "" {
		o.Tool = "arc"
	}
	return nil
}

func (o *Options) warn(err error) {
	if o.Warn != nil {
		o.Warn(err)
	}
}

// Create packs sources into the archive out (volumes out.001, out.002, …).
func Create(ctx context.Context, out string, sources []string, opt Options) (*Result, error) {
	scanned := func(p *packer) error {
		// With --force, the archive replaced may lie inside a source:
		// its volumes are not packed into the new one.
		nodes, counts, err := scan(p.ctx, sources, archiveFiles(out), p.opt)
		if err != nil {
			return err
		}
		p.res.Skipped += counts.skipped
		p.res.Excluded += counts.excluded
		if p.opt.scanHook != nil {
			p.opt.scanHook()
		}
		p.nodes = nodes
		return nil
	}
	return create(ctx, out, opt, scanned, (*packer).pack)
}

// create makes an archive whose tree setup finds before any volume exists,
// and whose content pack places.
func create(ctx context.Context, out string, opt Options, setup, pack func(*packer) error) (*Result, error) {
	start := time.Now()
	if err := opt.normalize(); err != nil {
		return nil, err
	}
	// A missing output directory is said as such, before the lock file
	// is tried there.
	if _, err := existingVolumes(out); err != nil {
		return nil, err
	}
	// Held from the check for an existing archive to the last rename, or
	// handed to the caller with KeepLock.
	unlock, left, err := format.LockArchive(out)
	if err != nil {
		return nil, err
	}
	keep := false
	defer func() {
		if !keep {
			unlock()
		}
	}()
	existing, err := existingVolumes(out)
	if err != nil {
		return nil, err
	}
	// Recovery volumes without their archive are an archive's too: a new
	// one beside them would look covered by parity that is another's.
	rec, err := format.ListRecoveryVolumes(out)
	if err != nil {
		return nil, err
	}
	existing = append(existing, rec...)
	if len(existing) > 0 && !opt.Force {
		if f := left.Finished; len(f) > 0 {
			// The one word of them this run says: it ends here.
			return nil, fmt.Errorf("%s already exists (use --force to replace the archive): the renames of an earlier run that was killed while it gave its volumes their names were just finished (%d, %s ...)", existing[0], len(f), f[0])
		}
		return nil, fmt.Errorf("%s already exists (use --force to replace the archive)", existing[0])
	}
	// --force replaces files by renaming the new volumes over them and
	// removing the rest, which a directory refuses: found after the
	// whole tree was packed, it left the renames half done, for every
	// later run to fail on.
	for _, p := range existing {
		if st, err := os.Lstat(p); err == nil && st.IsDir() {
			return nil, fmt.Errorf("%s is a directory, which --force does not replace (it replaces an archive's volumes, files): move it away", p)
		}
		if err := format.Replaceable(p); err != nil {
			return nil, fmt.Errorf("%w: --force cannot replace the archive", err)
		}
	}

	p := &packer{opt: &opt, ctx: ctx, dups: map[dupKey]int32{}}
	p.res.Leftovers = left

	if opt.Segments == nil && opt.Codec.Level != codec.LevelFast || opt.Segments != nil && opt.Segments.MinLen >= 0 {
		p.segCfg = segment.DefaultConfig()
		if opt.Segments != nil {
			p.segCfg = *opt.Segments
		}
		p.seg = segment.New(p.segCfg)
		defer p.seg.Close()
		p.sampleBits = p.segCfg.SampleBits
	}
	if opt.ChunkSize >= 0 {
		p.chunkParams, _ = chunk.NewParams(opt.ChunkSize) // validated by normalize
		p.chunks = chunk.NewTable(opt.ChunkMemory)
		// Chunk cuts are found among the samples: sample at least as
		// densely as the cut rule needs.
		if p.seg == nil || p.chunkParams.MaxSampleBits() < p.sampleBits {
			p.sampleBits = p.chunkParams.MaxSampleBits()
		}
	}
	p.report("scan")
	if err := setup(p); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	vw, err := newVolumeWriter(out, opt.VolumeSize)
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			vw.abort()
		}
	}()
	p.vw = vw
	p.report("pack")
	stopProgress := p.startProgress()
	err = pack(p)
	stopProgress()
	if err != nil {
		return nil, err
	}
	p.releaseDedup()
	p.report("index")
	idx, err := p.buildIndex()
	if err != nil {
		return nil, err
	}
	p.nodes, p.extStart, p.extCount = nil, nil, nil // what idx was built from
	raw := format.EncodeIndex(idx)
	stored, err := codec.CompressIndex(raw)
	if err != nil {
		return nil, fmt.Errorf("compress index: %w", err)
	}
	foot := format.Footer{
		IndexOffset:   uint64(vw.pos),
		IndexSize:     uint64(len(stored)),
		IndexRawSize:  uint64(len(raw)),
		IndexChecksum: codec.Checksum(stored),
	}
	if _, err := vw.Write(stored); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	vols, err := vw.finish(foot)
	if vols == nil {
		return nil, err
	}
	ok = true
	// With --force, volumes of the replaced archive beyond the new count
	// would otherwise sit beside the new set. (Its recovery volumes are
	// the caller's: arcpack removes them, or writes new ones.)
	for _, e := range existing {
		if _, n, okName := format.ParseVolumeName(e); okName && n > uint32(len(vols)) {
			os.Remove(e)
		}
	}
	if err != nil {
		return nil, err
	}
	r := p.res
	if p.chunks != nil {
		r.ChunksLost = p.chunks.Lost()
		r.ChunkTableBytes, r.ChunkTableLen = p.chunks.Bytes(), int64(p.chunks.Len())
	}
	r.Volumes = vols
	r.ArchiveBytes = vw.bytes
	r.Elapsed = time.Since(start)
	r.Unlock = func() {}
	if opt.KeepLock {
		keep, r.Unlock = true, unlock
	}
	return &r, nil
}

// packer holds the state of one Create.
type packer struct {
	opt   *Options
	ctx   context.Context
	nodes *nodeList
	vw    *volumeWriter
	res   Result
	// linkedNodes: the nodes of each hardlinked file after its primary's
	// (set before the reads, read-only during them): the file is read
	// through one of their paths when its primary's path no longer leads
	// to it (openSource).
	linkedNodes map[inodeKey][]int32
	// deep: the directories of files deep down, held open for the reads
	// (deepdirs.go).
	deep deepDirs

	// file content, by node: extent range in exts
	extStart []uint32 // by node
	extCount []uint32
	extOff   []uint64
	extLen   []uint64

	blocks format.Blocks
	frames []uint32

	chunks      *chunk.Table // nil when chunking is off
	chunkParams chunk.Params
	seg         *segment.Index // nil when segment dedup is off
	segCfg      segment.Config
	sampleBits  uint // gear sampling shared by segments and chunks
	sampleBuf   []segment.Sample
	// spareSamples holds the sample lists of placed files for reuse:
	// sampling at 1 in 64 makes 16 bytes of list per 64 bytes read, and
	// fresh heap for them would cost faults (see readRing). Not a
	// sync.Pool, which drops its contents at every collection; at most
	// maxSpareSamples are kept.
	samplesMu    sync.Mutex
	spareSamples [][]segment.Sample
	fileExt      int      // first extent of the file being placed
	tar          *tarTree // set while a tar stream is packed
	// dups: the content hashes met, one map for two uses: a reader
	// skips sampling a copy of content some reader hashed (-1: met), and
	// the sequencer places a copy of placed content as a reference to
	// the extents of its first file (the node). One map of a million
	// files' hashes is 60 MB.
	dupMu sync.Mutex
	dups  map[dupKey]int32

	filesDone, bytesDone   atomic.Int64
	filesTotal, bytesTotal atomic.Int64
	phase                  atomic.Value
}

// releaseDedup lets go of what finding duplicates took, once the content
// is placed: the index of a tree of many files is built and encoded next,
// where such a tree's memory peaks, and the segment history alone holds up
// to 256 MiB. The tables stay known by what they were (dedupParam).
func (p *packer) releaseDedup() {
	if p.seg != nil {
		p.seg.Close()
	}
	p.dupMu.Lock()
	p.dups = nil
	p.dupMu.Unlock()
	p.samplesMu.Lock()
	p.spareSamples = nil
	p.samplesMu.Unlock()
	p.sampleBuf = nil
}

func (p *packer) report(phase string) {
	p.phase.Store(phase)
	if p.opt.Progress != nil {
		p.opt.Progress(p.snapshot())
	}
}

func (p *packer) snapshot() Progress {
	ph, _ := p.phase.Load().(string)
	return Progress{Phase: ph, FilesDone: p.filesDone.Load(), FilesTotal: p.filesTotal.Load(), BytesDone: p.bytesDone.Load(), BytesTotal: p.bytesTotal.Load()}
}

func (p *packer) startProgress() func() {
	if p.opt.Progress == nil {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				p.opt.Progress(p.snapshot())
			}
		}
	}()
	return func() { close(done); wg.Wait(); p.opt.Progress(p.snapshot()) }
}

// errSkipped marks a file left out because it could not be read.
var errSkipped = errors.New("skipped")

func timeNow() int64 { return time.Now().UnixNano() }
