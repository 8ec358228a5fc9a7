package writer

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"sync"

	"arc/format"
	"arc/internal/slab"
	"arc/writer/chunk"
	"arc/writer/segment"

	"github.com/zeebo/blake3"
	"golang.org/x/sync/semaphore"
	"golang.org/x/sys/unix"
)

// fileJob is one regular file on its way from a reader worker to the
// sequencer. Jobs reach the sequencer in path order.
type fileJob struct {
	node    int32
	data    []byte // whole content, for files up to wholeFileMax
	buf     []byte // where to read it: a region of the read ring, or nil
	whole   bool   // data holds the content
	hashed  bool   // sum is set
	sum     [32]byte
	held    int64 // read-ahead budget held by this job
	samples []segment.Sample
	chunks  []chunkInfo
	changed bool      // changed while read twice: the second read is kept
	stamp   fileStamp // for a file that grew out of being read whole
	err     error

	// From a tar stream: the entry, and for a file too large to hold,
	// the stream to copy it from, closing consumed once done.
	entry    *tarEntry
	stream   io.Reader
	consumed chan struct{}
	done     chan struct{}
}

type inodeKey struct{ dev, ino uint64 }

// chunkInfo is one content-defined chunk of a file: it ends at end and has
// the BLAKE3-256 key.
type chunkInfo struct {
	end uint32
	key chunk.Key
}

type dupKey struct {
	size int64
	sum  [32]byte
}

// hashChunks hashes the chunks of data that end at ends.
func hashChunks(data []byte, ends []uint32) []chunkInfo {
	out := make([]chunkInfo, len(ends))
	pos := uint32(0)
	for i, e := range ends {
		out[i] = chunkInfo{end: e, key: blake3.Sum256(data[pos:e])}
		pos = e
	}
	return out
}

// pack streams every regular file's content into the volumes, recording
// extents per file, and fills the block and frame tables.
func (p *packer) pack() error {
	// Stream order, hardlinks and dedup candidates.
	order := p.pathOrder()
	primary := map[inodeKey]int32{}
	sizeCount := map[int64]int{}
	var files []int32    // primaries, in stream order
	var links [][2]int32 // a later path of a hardlinked file, and its primary
	p.linkedNodes = map[inodeKey][]int32{}
	for _, i := range order {
		n := p.nodes.at(i)
		if n.nlink > 1 {
			k := inodeKey{n.dev, n.ino}
			if first, ok := primary[k]; ok {
				links = append(links, [2]int32{i, first})
				p.linkedNodes[k] = append(p.linkedNodes[k], i)
				continue
			}
			primary[k] = i
		}
		files = append(files, i)
		if !n.sparse && n.size > 0 {
			sizeCount[n.size]++
		}
		p.bytesTotal.Add(n.size)
	}
	p.filesTotal.Store(int64(len(files)))
	p.extStart = make([]uint32, p.nodes.len())
	p.extCount = make([]uint32, p.nodes.len())
	candidate := func(n *node) bool { return n.size > 0 && !n.sparse && sizeCount[n.size] > 1 }

	// The dispatcher hands jobs out in path order, holding read-ahead budget
	// so memory stays bounded whatever the tree holds; files read whole go
	// into the ring, whose regions that budget guards.
	ring := newReadRing(p.readAhead())
	defer ring.close() // run returns once no reader touches it
	defer p.deep.close()
	dispatch := func(ctx context.Context, budget *semaphore.Weighted, queue, work chan<- *fileJob) error {
		for _, i := range files {
			n := p.nodes.at(i)
			j := &fileJob{node: i, done: make(chan struct{})}
			if n.size > 0 && n.size <= p.opt.wholeMax && !n.sparse {
				j.buf, j.held = ring.take(int(n.size))
			}
			if j.held > 0 {
				if err := budget.Acquire(ctx, j.held); err != nil {
					return err
				}
			}
			if err := send(ctx, queue, j); err != nil {
				return err
			}
			if err := send(ctx, work, j); err != nil {
				return err
			}
		}
		return nil
	}
	read := func(ctx context.Context, j *fileJob) { p.readJob(ctx, j, candidate(p.nodes.at(j.node))) }
	if err := p.run(dispatch, read); err != nil {
		return err
	}

	// Hardlinks share the primary's content, and with it the size and
	// mtime the read found: the index takes the inode's row from whichever
	// path comes first breadth first, not necessarily the one read.
	// A path whose primary was skipped has no content to share: it is
	// left out too, and said so, path by path, in stream order.
	for _, lf := range links {
		l, first := lf[0], lf[1]
		p.extStart[l], p.extCount[l] = p.extStart[first], p.extCount[first]
		if p.nodes.at(first).skip {
			p.opt.warn(fmt.Errorf("%s: a hardlink of %s, which was skipped (skipped)", p.path(p.nodes.at(l)), p.path(p.nodes.at(first))))
			p.nodes.at(l).skip = true
			p.res.Skipped++
		}
		p.nodes.at(l).size, p.nodes.at(l).mtime = p.nodes.at(first).size, p.nodes.at(first).mtime
	}
	return nil
}

// readAhead is the budget of file bytes held between the readers and the
// sequencer: room for two of the largest files read whole, so that the read
// ring's largest hold (a file plus the ring's tail it skips) always fits.
func (p *packer) readAhead() int64 {
	ra := int64(readAhead)
	if p.opt.readAhead > 0 {
		ra = p.opt.readAhead
	}
	return max(ra, 2*p.opt.wholeMax)
}

// send puts j on ch unless ctx ends first.
func send(ctx context.Context, ch chan<- *fileJob, j *fileJob) error {
	select {
	case ch <- j:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// producer hands out the files to place, in stream order, on queue; those
// that need a reader's work (reading, hashing, sampling) also on work. It
// holds read-ahead budget for the bytes a job keeps in memory.
type producer func(ctx context.Context, budget *semaphore.Weighted, queue, work chan<- *fileJob) error

// run is the packing pipeline: the producer, three workers running prepare
// on jobs, the sequencer placing jobs in queue order, the compressors and
// the volume writer. On error it returns without waiting for the producer,
// which may be blocked in a read of its input: every send it makes gives up
// once the pipeline's context is done.
func (p *packer) run(produce producer, prepare func(context.Context, *fileJob)) error {
	ctx, cancel := context.WithCancel(p.ctx)
	defer cancel()

	// Compression and write-behind.
	bw := newBlockPipeline(ctx, p.opt, p.vw)
	st := &streamer{blockSize: p.opt.BlockSize, frameLeft: p.opt.FrameSize, frameSize: p.opt.FrameSize, emit: bw.submit, buffers: bw.rawBufs}

	budget := semaphore.NewWeighted(p.readAhead())
	work := make(chan *fileJob, 64)
	queue := make(chan *fileJob, 1024)
	var workers sync.WaitGroup
	for w := 0; w < 3; w++ {
		workers.Add(1)
		go func() {
			defer workers.Done()
			for {
				select {
				case j, ok := <-work:
					if !ok {
						return
					}
					prepare(ctx, j)
					close(j.done)
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	var perr error
	produced := make(chan struct{})
	go func() {
		defer close(produced)
		defer close(queue)
		defer close(work)
		perr = produce(ctx, budget, queue, work)
	}()

	err := func() error {
		for {
			var j *fileJob
			select {
			case next, ok := <-queue:
				if !ok {
					<-produced
					if perr != nil {
						return perr
					}
					return ctx.Err()
				}
				j = next
			case <-ctx.Done():
				return ctx.Err()
			}
			select {
			case <-j.done:
			case <-ctx.Done():
				return ctx.Err()
			}
			err := p.sequence(j, st)
			p.recycleSamples(j.samples)
			j.data, j.samples = nil, nil
			if j.held > 0 {
				budget.Release(j.held)
			}
			if err != nil {
				return err
			}
			p.filesDone.Add(1)
		}
	}()
	if err == nil {
		err = st.flush()
	}
	if err != nil {
		cancel()
		workers.Wait()
		if st.buf != nil {
			bw.rawBufs.Put(st.buf) // never submitted: give it back for abort's Close
			st.buf = nil
		}
		bw.abort()
		return err
	}
	workers.Wait()
	if err := bw.close(); err != nil {
		return err
	}
	p.blocks = bw.blocks
	p.frames = st.frames
	p.res.UniqueBytes = int64(st.off)
	if p.seg != nil {
		// Added to what copies thrown away took back (streamOnce).
		p.res.SegmentBytes += int64(p.seg.Matched)
		p.res.SegmentRefs += int64(p.seg.Refs)
	}
	p.res.StoredBytes = bw.stored
	return nil
}

// pathOrder lists regular files depth-first in name order: the order of the
// unique-data stream, so that a directory's files sit close together.
func (p *packer) pathOrder() []int32 {
	var out []int32
	var walk func(i int32)
	walk = func(i int32) {
		for _, c := range p.nodes.at(i).children {
			n := p.nodes.at(c)
			switch {
			case n.isReg():
				out = append(out, c)
			case n.isDir():
				walk(c)
			}
		}
	}
	walk(0)
	if p.opt.Order == OrderSimilar {
		similarOrder(p.nodes, out)
	}
	return out
}

// similarOrder sorts files so that likely-similar ones are neighbours: by
// extension, then base name (the same file in another version of a tree),
// then size, keeping path order among equals. Near-repeats that whole-file
// dedup leaves then fall inside one block, within the codec's window.
func similarOrder(nodes *nodeList, files []int32) {
	ext := func(name []byte) []byte {
		if i := bytes.LastIndexByte(name, '.'); i > 0 {
			return name[i:]
		}
		return nil
	}
	slices.SortStableFunc(files, func(a, b int32) int {
		na, nb := nodes.at(a), nodes.at(b)
		if c := bytes.Compare(ext(na.name), ext(nb.name)); c != 0 {
			return c
		}
		if c := bytes.Compare(na.name, nb.name); c != 0 {
			return c
		}
		return cmp.Compare(na.size, nb.size)
	})
}

// readJob runs on a reader worker: small files are read whole; large
// candidates are hashed by a streaming read (the sequencer reads them again
// and hashes what it stores, so a file that changed in between is never
// taken for a copy of another).
func (p *packer) readJob(ctx context.Context, j *fileJob, cand bool) {
	n := p.nodes.at(j.node)
	if j.held > 0 {
		snap, err := p.readSnapshot(n, p.opt.wholeMax, j.buf)
		if errors.Is(err, errGrown) {
			// Grew past what is read whole since the scan: the sequencer
			// streams it.
			n.size = snap.stamp.size
			j.stamp = snap.stamp
			return
		}
		if err != nil {
			j.err = err
			return
		}
		data := snap.data
		j.data, j.whole, j.changed = data, true, snap.changed
		n.size, n.mtime = int64(len(data)), snap.stamp.mtime
		if cand {
			j.sum, j.hashed = blake3.Sum256(data), true
		}
		// A copy of content some reader already hashed will almost surely be
		// placed as a whole-file duplicate: don't sample what won't be stored.
		if !(j.hashed && p.seen(dupKey{n.size, j.sum})) {
			j.chunks, j.samples = p.prepare(data)
		}
		return
	}
	if cand {
		f, _, err := p.openFile(n)
		if err != nil {
			j.err = err
			return
		}
		defer f.Close()
		h := blake3.New()
		// Gigabytes at times: a stop must not wait for the end, nor a
		// failure elsewhere in the pipeline (run's ctx).
		m, err := io.Copy(h, ctxReader{ctx, io.LimitReader(f, n.size)})
		if err != nil {
			j.err = err
			return
		}
		if p.opt.readHook != nil {
			p.opt.readHook(p.path(n), -1)
		}
		if m == n.size {
			copy(j.sum[:], h.Sum(nil))
			j.hashed = true
		}
	}
}

// seen reports whether a reader has hashed k before, recording it (as
// met, not placed: -1).
func (p *packer) seen(k dupKey) bool {
	p.dupMu.Lock()
	defer p.dupMu.Unlock()
	if _, ok := p.dups[k]; ok {
		return true
	}
	p.dups[k] = -1
	return false
}

// placed returns the node of the file whose placed content is k, if any.
func (p *packer) placed(k dupKey) (int32, bool) {
	p.dupMu.Lock()
	defer p.dupMu.Unlock()
	first, ok := p.dups[k]
	return first, ok && first >= 0
}

// placedAt records node as the file whose content k is placed; a later copy
// becomes a reference to its extents.
func (p *packer) placedAt(k dupKey, node int32) {
	p.dupMu.Lock()
	defer p.dupMu.Unlock()
	p.dups[k] = node
}

// fileStamp is what tells that a file changed: its size, mtime and ctime.
type fileStamp struct{ size, mtime, ctime int64 }

func stampOf(st *unix.Stat_t) fileStamp {
	return fileStamp{st.Size, nsOf(st.Mtim), nsOf(st.Ctim)}
}

// snapshot is a whole file as read, with the stamp it had then.
type snapshot struct {
	data    []byte
	stamp   fileStamp
	changed bool // it changed during both reads: data may mix versions
}

// errGrown says a file is now larger than the caller reads whole.
var errGrown = errors.New("grew past the whole-file limit")

// readSnapshot reads a whole regular file, into buf when it fits (else into
// new memory), and checks with fstat before and
// after that it did not change meanwhile; a file that did is read once more,
// and if it changes again, what the second read got is kept and flagged. It
// uses raw system calls: os.Open registers every descriptor with the
// runtime's poller, which costs a system call per file for nothing here.
func (p *packer) readSnapshot(n *node, max int64, buf []byte) (snapshot, error) {
	for attempt := 0; ; attempt++ {
		fd, before, err := p.openSource(n)
		if err != nil {
			return snapshot{}, err
		}
		var after unix.Stat_t
		if before.Size > max {
			unix.Close(fd)
			return snapshot{stamp: stampOf(&before)}, errGrown
		}
		// Growth during the read shows in the second fstat: reading just
		// the size saves a system call per file.
		if int64(cap(buf)) < before.Size {
			buf = make([]byte, before.Size) // grew since the scan
		}
		buf = buf[:before.Size]
		got, err := readFull(fd, buf)
		if err == nil && p.opt.readHook != nil {
			p.opt.readHook(p.path(n), attempt)
		}
		if err == nil {
			err = unix.Fstat(fd, &after)
		}
		unix.Close(fd)
		if err != nil {
			return snapshot{}, &os.PathError{Op: "read", Path: p.path(n), Err: err}
		}
		stable := int64(got) == before.Size && stampOf(&before) == stampOf(&after)
		if stable || attempt == 1 {
			return snapshot{data: buf[:got], stamp: stampOf(&after), changed: !stable}, nil
		}
	}
}

// readFull reads into buf until it is full or the file ends.
func readFull(fd int, buf []byte) (int, error) {
	got := 0
	for got < len(buf) {
		n, err := unix.Read(fd, buf[got:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return got, err
		}
		if n == 0 {
			break
		}
		got += n
	}
	return got, nil
}

// path is the source path of node n (nodePath): built on demand for one
// deep down, which keeps none, and for a tar stream's members, which keep
// none. Those are built on the sequencer alone, which appends them to
// p.nodes; the nodes of a scan are not appended to during the reads,
// which walk them without a lock.
func (p *packer) path(n *node) string {
	if n.path != "" || n.parent < 0 {
		return n.path
	}
	return nodePath(p.nodes, n)
}

// openFile opens the file of node n for a streamed read (openSource), and
// returns its stat.
func (p *packer) openFile(n *node) (*os.File, unix.Stat_t, error) {
	fd, st, err := p.openSource(n)
	if err != nil {
		return nil, st, err
	}
	return os.NewFile(uintptr(fd), p.path(n)), st, nil
}

// openSource opens the file of node n to read its content: the one the
// scan listed (openListed). One replaced since the scan by another of the
// same name (a save by an editor or a package manager: a new file renamed
// over the old) is read instead, as tar and rsync read what is there, when
// it is a regular file in the very directory the scan listed (opened by
// openListed, device and inode checked, so a directory swapped for a
// symlink still leads nowhere) and the old file had no other link. n then
// takes the new file's identity, metadata and xattrs. A hardlinked file
// (its other paths keep the old inode, and share its content) is read
// through another of its paths instead, where one still leads to it.
// Anything else stays errReplaced.
func (p *packer) openSource(n *node) (int, unix.Stat_t, error) {
	fd, st, err := p.openListed(n, 0)
	if n.nlink > 1 && (errors.Is(err, errReplaced) || errors.Is(err, fs.ErrNotExist)) {
		// The file the scan listed may still be at another of its paths:
		// read it there (the one inode, its content and metadata as
		// listed). The primary's path then holds the file's state at the
		// scan, as every other path of it does.
		for _, other := range p.linkedNodes[inodeKey{n.dev, n.ino}] {
			if fd, st, oerr := p.openListed(p.nodes.at(other), 0); oerr == nil {
				return fd, st, nil
			}
		}
		return fd, st, err
	}
	if !errors.Is(err, errReplaced) || n.nlink > 1 || n.parent < 0 || p.nodes.at(n.parent).implied {
		return fd, st, err
	}
	dir := p.nodes.at(n.parent)
	dfd, _, derr := p.openListed(dir, unix.O_DIRECTORY)
	if derr != nil {
		return -1, st, err
	}
	defer unix.Close(dfd)
	path := p.path(n)
	nfd, nst, nerr := openAt(dfd, string(n.name), path, 0, func(*unix.Stat_t) bool { return true })
	if nerr != nil {
		return -1, st, err
	}
	xs, xerr := readXattrsFd(nfd)
	if xerr != nil {
		p.opt.warn(fmt.Errorf("extended attributes of %s: %w", path, xerr))
	}
	n.setStat(&nst)
	n.setExtra(func(e *nodeExtra) { e.xattrs = xs })
	return nfd, nst, nil
}

// openListed opens node n as openListed (scan.go) does its path: one deep
// down (keeping no path) in its directory held in p.deep, its path built
// only for an error (it takes time in the depth).
func (p *packer) openListed(n *node, flags int) (int, unix.Stat_t, error) {
	if n.path != "" || n.parent < 0 {
		return openListed(n.path, flags, n.dev, n.ino)
	}
	fd, st, err := p.deep.openAt(p.nodes, n, flags, func(st *unix.Stat_t) bool { return st.Dev == n.dev && st.Ino == n.ino })
	if err != nil && !errors.Is(err, errReplaced) {
		// Not reached through the directories held (one swapped for a
		// symlink, gone, renamed): by its path, as before, so that what
		// openSource is told is what the path gives.
		return openListed(p.path(n), flags, n.dev, n.ino)
	}
	if err != nil {
		err = withPath(err, p.path(n))
	}
	return fd, st, err
}

// sequence places one file's content, in path order.
func (p *packer) sequence(j *fileJob, st *streamer) error {
	if j.entry != nil {
		// A tar entry joins the tree here, on the sequencer, which owns
		// the node slice while a stream is packed.
		if !p.addTarNode(j) {
			if j.consumed != nil {
				close(j.consumed) // the tar reader skips the content
			}
			return nil
		}
	}
	n := p.nodes.at(j.node)
	if j.err != nil {
		return p.unreadable(n, j.err)
	}
	if n.size == 0 {
		p.extStart[j.node], p.extCount[j.node] = uint32(len(p.extOff)), 0
		return nil
	}
	if j.hashed {
		k := dupKey{n.size, j.sum}
		if first, ok := p.placed(k); ok {
			p.extStart[j.node], p.extCount[j.node] = p.extStart[first], p.extCount[first]
			p.res.DupFiles++
			p.res.DupBytes += n.size
			p.res.InputBytes += n.size
			p.bytesDone.Add(n.size)
			return nil
		}
	}
	start := uint32(len(p.extOff))
	p.fileExt = int(start)
	size0 := n.size
	var err error
	var runs []dataRun // a held tar member's zero runs (archive/tar fills holes)
	if j.whole && j.entry != nil {
		least, tail := holesOf(j.entry)
		runs = zeroRuns(j.data, least, tail)
	}
	switch {
	case runs != nil:
		err = p.placeRuns(j.data, runs, st)
	case j.whole:
		if j.changed {
			p.opt.warn(fmt.Errorf("%s changed while being read, twice: stored the %d bytes of the second read", p.path(n), len(j.data)))
		}
		if len(j.data) > 0 {
			if j.samples == nil && j.chunks == nil {
				j.chunks, j.samples = p.prepare(j.data)
			}
			err = p.placeChunks(j.data, j.chunks, j.samples, st)
		}
		p.res.InputBytes += int64(len(j.data))
		p.bytesDone.Add(int64(len(j.data)))
	case j.stream != nil:
		err = p.streamTar(n, j.entry, j.stream, st)
		close(j.consumed)
	default:
		var sum [32]byte
		sum, err = p.streamFile(n, st, j.hashed)
		if err == nil && sum != j.sum {
			// Not the content the reader hashed: it changed in between.
			j.hashed = false
		}
	}
	if err != nil {
		if errors.Is(err, errSkipped) {
			return nil
		}
		return err
	}
	p.extStart[j.node], p.extCount[j.node] = start, uint32(len(p.extOff))-start
	if j.hashed && n.size == size0 {
		// Registered only once placed, so a later copy never points at a
		// file that was skipped part way.
		p.placedAt(dupKey{n.size, j.sum}, j.node)
	}
	return nil
}

// unreadable reports a file that could not be read: skipped with a warning,
// or fatal with --strict.
func (p *packer) unreadable(n *node, err error) error {
	err = fmt.Errorf("read %s: %w", p.path(n), unwrapPath(err))
	if p.opt.Strict {
		return err
	}
	p.opt.warn(fmt.Errorf("%w (skipped)", err))
	n.skip = true
	p.res.Skipped++
	return nil
}

func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// addExtent appends an extent to the current file's list, merging it with
// the file's previous extent when the two are contiguous in the stream.
func (p *packer) addExtent(off, n uint64) {
	if k := len(p.extOff); k > p.fileExt {
		prev := p.extOff[k-1]
		if (off == format.Hole && prev == format.Hole) || (off != format.Hole && prev != format.Hole && prev+p.extLen[k-1] == off) {
			p.extLen[k-1] += n
			return
		}
	}
	p.extOff = append(p.extOff, off)
	p.extLen = append(p.extLen, n)
}

// prepare computes what placing a file's bytes needs, off the sequencer:
// one pass of gear sampling, which gives both the segment samples and the
// chunk boundaries, then the chunks' hashes.
func (p *packer) prepare(data []byte) (chunks []chunkInfo, samples []segment.Sample) {
	if p.seg == nil && p.chunks == nil {
		return nil, nil
	}
	// A spare list with room for the expected count, so that it rarely
	// grows by appends.
	want := segment.ExpectedSamples(len(data), p.sampleBits)
	samples = segment.Samples(data, p.sampleBits, slices.Grow(p.spareSampleList(want), want))
	if p.chunks != nil && len(data) > p.chunkParams.Min {
		chunks = hashChunks(data, p.chunkParams.Cuts(len(data), samples, nil))
	}
	if p.seg == nil {
		p.recycleSamples(samples)
		samples = nil
	}
	return chunks, samples
}

// spareSampleList takes the smallest spare list with room for want
// samples, or else the largest (which the caller grows), or nil.
func (p *packer) spareSampleList(want int) []segment.Sample {
	p.samplesMu.Lock()
	defer p.samplesMu.Unlock()
	spares := p.spareSamples
	best := -1
	for i, l := range spares {
		if best < 0 {
			best = i
			continue
		}
		c, b := cap(l), cap(spares[best])
		if c >= want && (b < want || c < b) || b < want && c > b {
			best = i
		}
	}
	if best < 0 {
		return nil
	}
	l := spares[best]
	spares[best] = spares[len(spares)-1]
	p.spareSamples = spares[:len(spares)-1]
	return l
}

// recycleSamples keeps a placed file's sample list for another file, up
// to maxSpareSamples lists.
func (p *packer) recycleSamples(s []segment.Sample) {
	if cap(s) == 0 {
		return
	}
	p.samplesMu.Lock()
	if len(p.spareSamples) < maxSpareSamples {
		p.spareSamples = append(p.spareSamples, s[:0])
	}
	p.samplesMu.Unlock()
}

// maxSpareSamples bounds the idle sample lists kept for reuse (the lists
// of files between the readers and the sequencer are in use, not spare).
const maxSpareSamples = 64

// placeChunks places a file's bytes chunk by chunk: a chunk stored before
// becomes one reference to it; any other goes through place, and is
// recorded when it landed in the stream as one contiguous run.
func (p *packer) placeChunks(data []byte, chunks []chunkInfo, samples []segment.Sample, st *streamer) error {
	if len(chunks) == 0 {
		_, err := p.place(data, samples, st)
		return err
	}
	pos, si := 0, 0 // si: first sample not yet past the previous chunk
	for i := range chunks {
		c := &chunks[i]
		piece := data[pos:c.end]
		if off, ok := p.chunks.Get(&c.key); ok {
			for si < len(samples) && samples[si].Pos <= c.end {
				si++
			}
			p.addExtent(off, uint64(len(piece)))
			p.res.ChunkBytes += int64(len(piece))
			p.res.ChunkRefs++
		} else {
			start := st.off
			var sub []segment.Sample
			if p.seg != nil {
				sub = p.sampleBuf[:0]
				for ; si < len(samples) && samples[si].Pos <= c.end; si++ {
					if s := samples[si]; int(s.Pos) > pos {
						sub = append(sub, segment.Sample{Pos: s.Pos - uint32(pos), Hash: s.Hash})
					}
				}
				p.sampleBuf = sub
			}
			contiguous, err := p.place(piece, sub, st)
			if err != nil {
				return err
			}
			if contiguous {
				p.chunks.Put(&c.key, start)
			}
		}
		pos = int(c.end)
	}
	return nil
}

// place appends file bytes to the stream: through the long-distance segment
// index when it is on (repeats of earlier stream bytes become references),
// else as they are. contiguous reports that all of data was appended as one
// run (no references).
func (p *packer) place(data []byte, samples []segment.Sample, st *streamer) (contiguous bool, err error) {
	if p.seg == nil {
		p.addExtent(st.off, uint64(len(data)))
		return true, st.write(data)
	}
	refs := 0
	err = p.seg.Place(data, samples,
		func(run []byte) error {
			p.addExtent(st.off, uint64(len(run)))
			return st.write(run)
		},
		func(off, n uint64) error {
			refs++
			p.addExtent(off, n)
			return nil
		})
	return refs == 0, err
}

// streamFile copies a large or sparse file into the stream in block-sized
// reads; holes become hole extents. A file whose stamp moved during the copy
// is copied once more (the first copy's bytes stay in the stream,
// unreferenced; segment dedup makes most of the second copy references to
// them), and a second change is kept with a warning. With hash set it
// returns the BLAKE3-256 of the content stored.
func (p *packer) streamFile(n *node, st *streamer, hash bool) (sum [32]byte, err error) {
	for attempt := 0; ; attempt++ {
		var changed bool
		sum, changed, err = p.streamOnce(n, st, hash, attempt)
		if err != nil || !changed {
			return sum, err
		}
		if attempt == 1 {
			p.opt.warn(fmt.Errorf("%s changed while being read, twice: stored the %d bytes of the second read", p.path(n), n.size))
			return sum, nil
		}
		p.extOff, p.extLen = p.extOff[:p.fileExt], p.extLen[:p.fileExt]
	}
}

// streamOnce is one copy of streamFile's; changed reports that the file's
// stamp moved while it was read. Counters count the last copy only.
func (p *packer) streamOnce(n *node, st *streamer, hash bool, attempt int) (sum [32]byte, changed bool, err error) {
	f, before, err := p.openFile(n)
	if err != nil {
		return sum, false, p.skipAfter(n, err)
	}
	defer f.Close()
	var after unix.Stat_t
	size := before.Size
	runs := []dataRun{{0, size, false}}
	// Sparse as the file is now, not as the scan found it: one grown by a
	// hole since (or past the whole-file limit in its first read) is.
	if sparseStat(&before) {
		runs = dataRuns(int(f.Fd()), size)
	}
	var h *blake3.Hasher
	if hash {
		h = blake3.New()
	}
	buf := make([]byte, max(min(p.opt.BlockSize, size), 1))
	var stored, input, holes int64
	chunkBytes, chunkRefs := p.res.ChunkBytes, p.res.ChunkRefs
	var segMatched, segRefs uint64
	if p.seg != nil {
		segMatched, segRefs = p.seg.Matched, p.seg.Refs
	}
	defer func() {
		// A copy that is thrown away does not count as input, nor do the
		// references it made as dedup.
		if changed && attempt == 0 {
			p.res.InputBytes -= input
			p.res.HoleBytes -= holes
			p.bytesDone.Add(-input - holes)
			p.res.ChunkBytes, p.res.ChunkRefs = chunkBytes, chunkRefs
			if p.seg != nil {
				p.res.SegmentBytes -= int64(p.seg.Matched - segMatched)
				p.res.SegmentRefs -= int64(p.seg.Refs - segRefs)
			}
		}
	}()
	for _, r := range runs {
		if r.hole {
			p.addExtent(format.Hole, uint64(r.len))
			holes += r.len
			p.res.HoleBytes += r.len
			p.bytesDone.Add(r.len)
			stored += r.len
			continue
		}
		at := r.off
		for left := r.len; left > 0; {
			if err := p.ctx.Err(); err != nil {
				return sum, false, err
			}
			want := min(int64(len(buf)), left)
			m, err := f.ReadAt(buf[:want], at)
			if m > 0 {
				if werr := p.placeRead(buf[:m], h, st); werr != nil {
					return sum, false, werr
				}
				stored += int64(m)
				at += int64(m)
				left -= int64(m)
				input += int64(m)
			}
			if err == io.EOF {
				left = 0 // shrank: the stamp check below sees it
				break
			}
			if err != nil {
				return sum, false, p.skipAfter(n, err)
			}
		}
		if stored < r.off+r.len {
			break
		}
	}
	if p.opt.readHook != nil {
		p.opt.readHook(p.path(n), attempt)
	}
	var one [1]byte
	grown, _ := f.ReadAt(one[:], size)
	if err := unix.Fstat(int(f.Fd()), &after); err != nil {
		return sum, false, p.skipAfter(n, err)
	}
	n.size, n.mtime = stored, nsOf(after.Mtim)
	if h != nil {
		copy(sum[:], h.Sum(nil))
	}
	changed = stored != size || grown > 0 || stampOf(&before) != stampOf(&after)
	return sum, changed, nil
}

// placeRead places a piece of a streamed file just read, hashing it into h
// when h is set.
func (p *packer) placeRead(b []byte, h *blake3.Hasher, st *streamer) error {
	if h != nil {
		h.Write(b)
	}
	chunks, samples := p.prepare(b)
	err := p.placeChunks(b, chunks, samples, st)
	p.recycleSamples(samples)
	if err != nil {
		return err
	}
	p.res.InputBytes += int64(len(b))
	p.bytesDone.Add(int64(len(b)))
	return nil
}

// skipAfter handles a read error part way through a streamed file. Bytes
// already in the stream stay there (unreferenced) since blocks are already
// on their way to the volumes.
func (p *packer) skipAfter(n *node, err error) error {
	if err := p.unreadable(n, err); err != nil {
		return err
	}
	return errSkipped
}

// dataRun is a stretch of a file that is all data or all hole.
type dataRun struct {
	off, len int64
	hole     bool
}

// dataRuns maps a sparse file's data and holes with SEEK_DATA/SEEK_HOLE.
// On a filesystem without them the whole file is one data run.
func dataRuns(fd int, size int64) []dataRun {
	var runs []dataRun
	var pos int64
	for pos < size {
		data, err := unix.Seek(fd, pos, unix.SEEK_DATA)
		if err == unix.ENXIO || (err == nil && data >= size) {
			runs = append(runs, dataRun{pos, size - pos, true})
			break
		}
		if err != nil {
			return []dataRun{{0, size, false}}
		}
		if data > pos {
			runs = append(runs, dataRun{pos, data - pos, true})
		}
		hole, err := unix.Seek(fd, data, unix.SEEK_HOLE)
		if err != nil || hole > size {
			hole = size
		}
		runs = append(runs, dataRun{data, hole - data, false})
		pos = hole
	}
	return runs
}

// streamer cuts the unique-data stream into blocks, never across a frame
// boundary, and hands each full block to emit.
type streamer struct {
	blockSize, frameSize, frameLeft int64
	buf                             []byte
	limit                           int64
	off                             uint64
	frames                          []uint32
	frameBlocks                     uint32
	emit                            func([]byte) error
	buffers                         *slab.Pool
}

func (s *streamer) write(p []byte) error {
	for len(p) > 0 {
		if s.buf == nil {
			s.limit = min(s.blockSize, s.frameLeft)
			s.buf = s.buffers.Get()[:0]
		}
		n := copy(s.buf[len(s.buf):s.limit], p)
		s.buf = s.buf[:len(s.buf)+n]
		p = p[n:]
		s.off += uint64(n)
		if int64(len(s.buf)) == s.limit {
			if err := s.cut(); err != nil {
				return err
			}
		}
	}
	return nil
}

func (s *streamer) cut() error {
	b := s.buf
	s.buf = nil
	s.frameBlocks++
	s.frameLeft -= int64(len(b))
	if s.frameLeft == 0 {
		s.frames = append(s.frames, s.frameBlocks)
		s.frameBlocks, s.frameLeft = 0, s.frameSize
	}
	return s.emit(b)
}

func (s *streamer) flush() error {
	if len(s.buf) > 0 {
		if err := s.cut(); err != nil {
			return err
		}
	}
	if s.frameBlocks > 0 {
		s.frames = append(s.frames, s.frameBlocks)
		s.frameBlocks = 0
	}
	return nil
}

// ctxReader reads r until ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(b []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(b)
}
