package fs

import (
	"io"
	"sync"
	"sync/atomic"
	"syscall"

	"arc/format"

	gofs "github.com/hanwen/go-fuse/v2/fs"
)

// Push-ahead: a walk that reads a directory's files one after the other
// (tar, cp -r, rsync) pays one FUSE round trip per file, however small,
// because the kernel's read-ahead never crosses files; on a cold cache
// those round trips, not the disk or the decoder, are what a whole-tree
// read spends its time on (53,000 READs for the Go toolchains tree). Once
// a walk shows itself (two files of one directory read from offset 0 in
// dirent order, close together), background goroutines store the content
// of the files that follow into the kernel's page cache themselves
// (FUSE_NOTIFY_STORE), up to pushWindow bytes ahead, so that the kernel
// serves their reads without asking us. While the walk goes on, each
// directory it lists is pushed as soon as the kernel has its entries, and
// the directories above wait on a stack for the walk to come back.
//
// Only inodes the kernel already has (listed by READDIRPLUS or looked up)
// are stored into, and nothing past a file's size. A file whose read fails
// (damage) is left alone: its own READ then fails with EIO as before, and
// the files after it are still pushed. Pushed pages live in the kernel's
// page cache, which the kernel bounds and may drop (a dropped page is read
// again the ordinary way); the process keeps pushWorkers chunk buffers.
//
// The walk is followed by the READs that still reach us: a READ at offset
// 0 of a file not pushed yet means the walk got there first (the push
// skips ahead of it) or the window is spent (it starts again from there).
// Random access (one file here, one there) does not start a push.
const (
	pushWindow = 64 << 20 // file bytes pushed ahead of the last READ that reached us
	pushChunk  = 1 << 20  // bytes per store message (a multiple of the page size)
	// pushFileMax: bytes of any one file pushed ahead. A large file costs
	// the walk few round trips per byte anyway (the kernel reads it ahead
	// in large READs), and pushing all of it would decode and cache the
	// whole file for a walker that may read only its head (file *).
	pushFileMax = 8 << 20
	pageSize    = 4096
	// pushWorkers: goroutines pushing at once.
	pushWorkers = 2
	// overtakeSkip: files left to the walk's own READs when it overtakes
	// the push, so that the push is ahead again at once.
	overtakeSkip = 2
	// seqGap: how far in dirents a READ may follow the previous one for
	// the two to count as a walk (files read from the kernel's cache,
	// empty ones and subdirectories send no READ).
	seqGap = 4
)

// pushJob is the rest of one file, then the regular files of directory
// dir from dirent next up to end, until budget is spent.
type pushJob struct {
	file    *gofs.Inode
	fileIno uint32
	fileOff int64
	dir     *gofs.Inode
	dirIno  uint32
	next    uint32
	end     uint32
	budget  int64
}

func (j *pushJob) pending() bool {
	return j.file != nil || j.dir != nil && j.next < j.end && j.budget > 0
}

// maxScan bounds the dirents pickLocked looks at under the lock.
const maxScan = 1024

// maxSuspended bounds the directories whose push waits while the walk is
// in a subdirectory (the depth of the tree, in practice).
const maxSuspended = 64

type pusher struct {
	f *FS

	mu      sync.Mutex
	off     bool // disabled
	running int  // goroutines pushing
	cur     pushJob
	// suspended: jobs of the directories above the current one, the
	// innermost last; the walk returns to them after a subdirectory.
	suspended []pushJob
	// the last file read from offset 0: its directory and dirent
	lastDir, lastDirent uint32
	lastValid           bool
	// walk: the last READ at offset 0 started or steered a push; listed:
	// the directory opened last (a walk lists a directory, then reads it)
	walk        bool
	listed      uint32
	listedValid bool

	bufs [][]byte // chunk buffers of goroutines that ended, for reuse

	stored atomic.Int64 // bytes the kernel took, for tests
}

// onRead is called for each READ served from [off, off+got) of n.
func (p *pusher) onRead(n *node, off int64, got int) {
	if off != 0 {
		return
	}
	name, parent := n.Parent()
	if parent == nil {
		return
	}
	pn, ok := parent.Operations().(*node)
	if !ok {
		return
	}
	x := n.fs.idx
	d, ok := x.Lookup(pn.ino, []byte(name))
	if !ok {
		return
	}
	size := int64(x.Inodes.Size[n.ino])
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.off {
		return
	}
	// In dirent order after the file read before it, or the first file
	// read in the directory just listed while a walk is on.
	seq := p.lastValid && p.lastDir == pn.ino && p.lastDirent < d && d-p.lastDirent <= seqGap ||
		p.walk && p.listedValid && p.listed == pn.ino
	p.lastDir, p.lastDirent, p.lastValid = pn.ino, d, true
	if p.cur.dir != nil && p.cur.dirIno == pn.ino && d >= p.cur.next && d < p.cur.end {
		// The walk overtook the push: go on after the file it reads.
		p.cur.next, p.cur.budget, p.walk = min(d+1+overtakeSkip, p.cur.end), pushWindow, true
		p.start()
		return
	}
	if p.cur.dir != nil && p.cur.dirIno == pn.ino && d < p.cur.next && p.cur.pending() {
		// A file the push skipped or is storing right now: it is ahead.
		p.walk = true
		return
	}
	for i := len(p.suspended) - 1; i >= 0; i-- {
		if j := p.suspended[i]; j.dirIno == pn.ino && d+1 >= j.next && d < j.end {
			// Back from a subdirectory: what was pushed below is done.
			p.cur = j
			p.cur.next, p.cur.budget, p.walk = max(d+1, j.next), pushWindow, true
			p.suspended = p.suspended[:i]
			p.start()
			return
		}
	}
	p.walk = seq
	if !seq {
		return
	}
	_, e := x.Children(pn.ino)
	p.begin(pushJob{dir: parent, dirIno: pn.ino, next: d + 1, end: e, budget: pushWindow})
	if rest := (int64(got) + pageSize - 1) &^ (pageSize - 1); rest < size {
		p.cur.file, p.cur.fileIno, p.cur.fileOff = &n.Inode, n.ino, rest
	}
	p.start()
}

// begin makes j the current job; the current one, if it is another
// directory's and has files left, waits on the stack.
func (p *pusher) begin(j pushJob) {
	if p.cur.dir != nil && p.cur.dirIno != j.dirIno && p.cur.next < p.cur.end {
		if len(p.suspended) == maxSuspended {
			p.suspended = append(p.suspended[:0], p.suspended[1:]...)
		}
		p.cur.file = nil
		p.suspended = append(p.suspended, p.cur)
	}
	p.cur = j
}

// onListed is called when the kernel has taken in the whole listing of
// directory n: while a walk is on, it reads that directory's files next,
// and the kernel has their inodes now, so the push can start before the
// walk's first READ there.
func (p *pusher) onListed(n *node) {
	s, e := n.fs.idx.Children(n.ino)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.off || !p.walk || s == e || p.cur.dir != nil && p.cur.dirIno == n.ino {
		return
	}
	p.begin(pushJob{dir: &n.Inode, dirIno: n.ino, next: s, end: e, budget: pushWindow})
	p.start()
}

// start runs push goroutines, up to pushWorkers: two share the copying
// into the kernel, so that a walk reading from the page cache rarely
// catches up with the push.
func (p *pusher) start() {
	for p.running < pushWorkers && p.cur.pending() {
		p.running++
		go p.run()
	}
}

// onOpendir records the directory a walk may read next.
func (p *pusher) onOpendir(ino uint32) {
	p.mu.Lock()
	p.listed, p.listedValid = ino, true
	p.mu.Unlock()
}

// pushEnd is where a push of file ino from offset from stops: at most
// pushFileMax bytes on, on a page boundary, or the file's end.
func (p *pusher) pushEnd(ino uint32, from int64) int64 {
	size := int64(p.f.idx.Inodes.Size[ino])
	if end := from + pushFileMax; end < size {
		return end &^ (pageSize - 1)
	}
	return size
}

// pickLocked takes the next file to push off the current job, and where
// its push ends.
func (p *pusher) pickLocked() (in *gofs.Inode, ino uint32, from, to int64, ok bool) {
	j := &p.cur
	if j.file != nil {
		in, ino, from = j.file, j.fileIno, j.fileOff
		j.file = nil
		to = p.pushEnd(ino, from)
		j.budget -= to - from
		return in, ino, from, to, true
	}
	x := p.f.idx
	for !j.pending() && j.budget > 0 && len(p.suspended) > 0 {
		// Done here: go on in the directory above, as a walk does, with
		// what is left of the window (one window for the whole walk: a
		// suspended job's own budget is stale).
		k, left := len(p.suspended)-1, j.budget
		p.cur, p.suspended = p.suspended[k], p.suspended[:k]
		p.cur.budget = left
	}
	// The lock is held: look at a bounded number of dirents per call (in
	// a huge directory the kernel may know few of them), and let the next
	// READ of the walk start the push again.
	for scanned := 0; j.dir != nil && j.next < j.end && j.budget > 0 && scanned < maxScan; scanned++ {
		d := j.next
		j.next++
		ino := x.Dirents.Inode[d]
		size := int64(x.Inodes.Size[ino])
		if x.Inodes.Mode[ino]&format.ModeType != format.ModeReg || size == 0 {
			continue
		}
		c := j.dir.GetChild(string(x.Name(d)))
		if c == nil {
			continue // the kernel does not have it
		}
		to := p.pushEnd(ino, 0)
		j.budget -= to
		return c, ino, 0, to, true
	}
	return nil, 0, 0, 0, false
}

func (p *pusher) run() {
	var buf []byte
	for {
		p.mu.Lock()
		in, ino, from, to, ok := p.pickLocked()
		if !ok || p.off {
			p.running--
			if buf != nil && len(p.bufs) < pushWorkers {
				p.bufs = append(p.bufs, buf)
			}
			p.mu.Unlock()
			return
		}
		if buf == nil {
			if k := len(p.bufs); k > 0 {
				buf, p.bufs = p.bufs[k-1], p.bufs[:k-1]
			}
		}
		p.mu.Unlock()
		if buf == nil {
			buf = make([]byte, pushChunk)
		}
		p.push(in, ino, from, to, buf)
	}
}

// viewer is what an Archive offers to push without copying
// (*reader.Archive has it): see reader.Archive.View.
type viewer interface {
	View(ino uint32, off int64, max int) (data []byte, release func(), err error)
}

// push stores file ino's content from offset from up to to into the
// kernel's cache of in, a chunk at a time, until to or an error. A store the
// kernel refuses for another reason than a forgotten inode (unmounted)
// ends the whole job. Chunks end on page boundaries (or at the end of
// the file): the kernel takes a partly stored page as not there.
func (p *pusher) push(in *gofs.Inode, ino uint32, from, to int64, buf []byte) {
	size := int64(p.f.idx.Inodes.Size[ino])
	v, _ := p.f.ar.(viewer)
	for off := from; off < to; {
		want := int(min(int64(len(buf)), to-off))
		var data []byte
		var release func()
		if v != nil {
			// Straight from the decoded block where it holds a page or
			// more of the file (or its end).
			d, rel, err := v.View(ino, off, want)
			if err != nil {
				return // damaged: its READ will say so
			}
			n := len(d)
			if off+int64(n) < size {
				n &^= pageSize - 1
			}
			if n > 0 {
				data, release = d[:n], rel
			} else if rel != nil {
				rel()
			}
		}
		if data == nil {
			got, err := p.f.ar.ReadAt(ino, buf[:want], off)
			if got < want || (err != nil && err != io.EOF) {
				return // damaged: its READ will say so
			}
			data = buf[:got]
		}
		errno := in.WriteCache(off, data)
		if release != nil {
			release()
		}
		if errno != 0 {
			if errno != syscall.ENOENT {
				p.mu.Lock()
				p.cur, p.suspended = pushJob{}, nil
				p.mu.Unlock()
			}
			return
		}
		off += int64(len(data))
		p.stored.Add(int64(len(data)))
	}
}
