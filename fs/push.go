package fs

import (
	"io"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"arc/format"
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
// the directories above wait on a stack for the walk to come back. The
// first files of each step are stored by the handler of the request the
// walk is waiting on, before its reply (pushHere), so that the walk does
// not race the workers for them.
//
// Only inodes the kernel already has (listed by READDIRPLUS or looked up)
// are stored into, and nothing past a file's size. A file whose read fails
// (damage) is left alone: its own READ then fails with EIO as before, and
// the files after it are still pushed. Pushed pages live in the kernel's
// page cache, which the kernel bounds and may drop (a dropped page is read
// again the ordinary way); the process keeps maxSpareBufs chunk buffers.
//
// The walk is followed by the READs that still reach us: a READ at offset
// 0 of a file not pushed yet means the walk got there first or the window
// is spent (the push goes on after that file). A walk that reads from the
// page cache sends nothing, so every quarter window the push leaves one
// small file unstored (the first it meets), a beacon: the walk's READ of
// it says the walk has come that far, and the window is refilled from
// there (beaconLocked). A tree with no small file has no beacons.
// Without beacons the push, faster than the walk, stopped at the window's
// end until the walk caught up with it, then ran at its heels, the walk
// waiting on the listings and stores in progress. Only a READ refills the
// window: a listing moves the push to the directory listed with what is
// left of it, so that a walker that lists and reads nothing (find, du,
// ls -R after a tar) gets at most the rest of one window, and nothing at
// all once no READ came for walkIdle (the walk is over). A job that a
// walk left (it stopped, or went elsewhere) is dropped when the push
// begins one that is not below it.
// Random access (one file here, one there) does not start a push.
//
// Ahead into subdirectories: once the walk has listed a directory (tar,
// cp -r and rsync go into directories; cat d/* does not), the push goes
// where the walk goes, depth first in listing order, into each
// subdirectory where the listing has it, and back to the rest of the
// directory above. The kernel has a subdirectory's entries only once they
// are listed, so a worker lists it itself, through the mount (listAhead:
// READDIRPLUS gives the kernel the entries, and the kernel keeps the
// listing, see rawFS.OpenDir), before its files are pushed. The walk then
// finds both the listing and the files in the kernel's caches and sends
// nothing but the READs of beacons while the push keeps ahead, so on two
// CPUs the push and the walk run side by side instead of taking turns
// (bench/README.md). The push knows its place in the walk's order
// (pastLocked), so that a READ or a listing behind it does not pull it
// back. Listings count against the window (listCost, entryCost): while a
// worker has a directory open the mount is busy, so after a walk that
// stops halfway an unmount fails for as long as the push goes on listing,
// up to a few tenths of a second; Server.Unmount stops the push first.
const (
	pushWindow = 64 << 20 // file bytes pushed ahead of the last READ that reached us
	pushChunk  = 1 << 20  // bytes per store message (a multiple of the page size)
	// pushFileMax: bytes of any one file pushed ahead. A large file costs
	// the walk few round trips per byte anyway (the kernel reads it ahead
	// in large READs), and pushing all of it would decode and cache the
	// whole file for a walker that may read only its head (file *).
	pushFileMax = 8 << 20
	pageSize    = 4096
	// hereBytes: file bytes pushHere stores before the reply that the walk
	// waits on.
	hereBytes = 256 << 10
	// maxSpareBufs: chunk buffers kept for reuse, one per worker and one
	// for the handler in pushHere.
	maxSpareBufs = maxPushWorkers + 1
	// maxPushWorkers: goroutines pushing at once, at most (see workers).
	maxPushWorkers = 2
	// seqGap: how far in dirents a READ may follow the previous one for
	// the two to count as a walk (files read from the kernel's cache,
	// empty ones and subdirectories send no READ).
	seqGap = 4
)

// pushJob is the rest of one file, then the regular files of directory
// dir from dirent next up to end, until budget is spent.
type pushJob struct {
	file    bool // the job has a file piece: fileIno from fileOff
	fileIno uint32
	fileOff int64
	fileTo  int64 // where that file's push ends; 0: pushEnd's choice
	dir     bool  // the job has a directory: dirIno
	dirIno  uint32
	next    uint32
	end     uint32
	budget  int64
	// list: the kernel does not have dir's entries yet; a worker reads
	// the listing through the mount before anything of dir is pushed.
	list bool
}

// A beacon is a file the push left unstored for the walk to read: its READ
// says the walk has come as far as where the push was when it left it,
// with spent of the window used, and the window is refilled from there.
type beacon struct {
	ino   uint32
	spent int64
}

const (
	// beaconEvery: the window used between two beacons. A quarter: the
	// push, once the walk reads a beacon, has three quarters of a window
	// left before it stops, time for the walk to reach the next one.
	beaconEvery = pushWindow / 4
	// beaconMax: the largest file left as a beacon. The walk's READ of it
	// is one round trip, the whole file.
	beaconMax = 16 << 10
	// maxBeacons bounds the beacons remembered: a walk that passes one
	// by (it reads only some files) leaves it for the next to refill.
	maxBeacons = 8
)

// dropFile forgets the job's file piece.
func (j *pushJob) dropFile() { j.file, j.fileTo = false, 0 }

func (j *pushJob) pending() bool {
	return j.file || j.dir && j.next < j.end && j.budget > 0
}

// maxScan bounds the dirents pickLocked looks at under the lock.
const maxScan = 1024

// listCost and entryCost are what a listing read ahead counts against the
// push window: listCost bounds the listings ahead of the walk (256 per
// window, a few hundredths of a second of listing on the 2-core
// benchmark machine), entryCost is about what the kernel keeps of each
// entry.
const (
	listCost  = pushWindow / 256
	entryCost = 256
)

// walkIdle: a walk that sent no READ for this long has ended, as far as
// the listings after it go (walkingLocked). A walk the push keeps ahead
// of sends a READ at each beacon (about every quarter window) or when it
// catches up, at least once a window: a quarter of a second at the speed
// of a cold tar of the Go toolchains tree on the 2-core benchmark
// machine.
const walkIdle = time.Second

// maxTaken bounds the directories remembered as pushed in one walk; past
// it they are forgotten, and one the walk lists again is pushed again.
const maxTaken = 1 << 16

// maxSuspended bounds the directories whose push waits while the walk is
// in a subdirectory (the depth of the tree, in practice).
const maxSuspended = 256

type pusher struct {
	f *FS

	mu      sync.Mutex
	off     bool // disabled (Options.NoPushAhead)
	paused  bool // stopped for an unmount (pause)
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
	// lastRead: when a READ last reached us, as now gives it (see
	// walkingLocked).
	lastRead atomic.Int64
	epoch    time.Time // what now counts from

	bufs [][]byte // spare chunk buffers, for reuse (takeBufLocked)

	// workers: goroutines pushing at once (see workers).
	workers int

	// spent: the window used since the mount (files pushed, listings
	// read), never reset; lastBeacon: spent when the last beacon was
	// left; beacons: those the walk has not read yet, oldest first.
	spent      int64
	lastBeacon int64
	beacons    []beacon

	// mnt: the mount point, where workers list the directories the
	// push goes into ahead of the walk, and mntDev its device; "" until
	// mounted (no look-ahead).
	mnt    string
	mntDev uint64
	// listing: a worker is reading a listing through the mount (one at a
	// time: the others wait for the directory it lists), into dents, the
	// getdents buffer of whichever worker lists: workers come and go
	// with the work, about once per directory of a walk.
	listing bool
	dents   []byte
	// taken: directories the push went into during this walk (it lists
	// and pushes each once); see takeListing.
	taken map[uint32]struct{}
	// deep: the walk lists directories (tar, cp -r, rsync; not cat d/*):
	// the push goes into subdirectories ahead of it.
	deep bool
	// listTid: the thread of the worker listing now (listAhead), whose
	// requests are not the walk's; 0: none. Atomic: every listing
	// request asks (lister), without the lock.
	listTid atomic.Uint32

	// here: a handler is in pushHere (one at a time, see there)
	here atomic.Bool

	stored     atomic.Int64 // bytes the kernel took, for tests
	hereStored atomic.Int64 // of stored, what pushHere stored, for tests
}

// onRead is called for each READ served from [off, off+got) of file ino,
// before the reply: when the READ shows the walk at the push's heels, the
// next files are stored before the walk gets the reply (see pushHere).
func (p *pusher) onRead(ino uint32, off int64, got int) {
	now := p.now()
	prev := time.Duration(p.lastRead.Swap(int64(now)))
	if p.steer(ino, off, got, now-prev < walkIdle) {
		// The kernel holds this READ's pages locked until the reply.
		p.pushHere(ino, off+(int64(got)+pageSize-1)&^(pageSize-1))
	}
}

// steer follows the walk by READ of file ino at off and says whether it
// is waiting on the push; recent: the READ before it came less than
// walkIdle before (a beacon read later is no walk's).
func (p *pusher) steer(ino uint32, off int64, got int, recent bool) bool {
	if off != 0 {
		return false
	}
	// The directory and dirent the kernel found the file by.
	dir, d, ok := p.f.where(ino)
	if !ok || ino == 0 {
		return false
	}
	x := p.f.idx
	size := int64(x.Inodes.Size[ino])
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stoppedLocked() {
		return false
	}
	// In dirent order after the file read before it, or the first file
	// read in the directory just listed while a walk is on.
	seq := p.lastValid && p.lastDir == dir && p.lastDirent < d && d-p.lastDirent <= seqGap ||
		p.walk && p.listedValid && p.listed == dir
	p.lastDir, p.lastDirent, p.lastValid = dir, d, true
	if p.cur.dir && p.cur.dirIno == dir && d >= p.cur.next && d < p.cur.end {
		// The walk overtook the push: go on after the file it reads
		// (the walk listed this directory: the kernel has its entries).
		p.cur.next, p.cur.budget, p.walk = d+1, pushWindow, true
		p.freshWindowLocked()
		p.cur.list = false // the walk listed it
		p.cur.dropFile()   // the rest of a file the walk passed
		if !seq {
			// Not plainly the walk's next file: no reason to hold
			// this reply for the push.
			p.start()
		}
		return seq
	}
	if p.beaconLocked(ino, recent) {
		// Behind the push: the walk need not wait for it.
		p.walk = true
		return false
	}
	if p.cur.dir && p.cur.dirIno == dir && d < p.cur.next && p.cur.pending() {
		// A file the push skipped or is storing right now: it is ahead.
		p.walk = true
		return false
	}
	for i := len(p.suspended) - 1; i >= 0; i-- {
		j := p.suspended[i]
		if j.dirIno != dir {
			continue
		}
		if d+1 >= j.next && d < j.end {
			// Back from a subdirectory: what was pushed below is done.
			p.cur = j
			p.cur.next, p.cur.budget, p.walk = max(d+1, j.next), pushWindow, true
			p.freshWindowLocked()
			p.cur.list = false
			p.suspended = p.suspended[:i]
			return true
		}
	}
	if p.running > 0 && p.pastLocked(dir, d) {
		// The push, listing ahead, went on beyond this file: one it is
		// storing now, or could not store.
		p.walk = true
		return false
	}
	p.walk = seq
	if !seq {
		return false
	}
	_, e := x.Children(dir)
	next := d + 1
	if p.cur.dir && p.cur.dirIno == dir && (p.cur.pending() || p.running > 0) {
		next = max(next, p.cur.next) // what the job pushed stays pushed
	} else {
		// The walk is somewhere the push has not been, or has long
		// left: a walk of its own.
		p.forgetWalkLocked()
		p.deep = false
	}
	p.takeLocked(dir)
	p.begin(pushJob{dir: true, dirIno: dir, next: next, end: e, budget: pushWindow})
	if rest := (int64(got) + pageSize - 1) &^ (pageSize - 1); rest < size {
		p.cur.file, p.cur.fileIno, p.cur.fileOff = true, ino, rest
	}
	return true
}

// beaconLocked says whether file ino is a beacon the push left, read
// by the walk (recent: while it goes on), and if so refills the window
// from where the push was when it left it (the walk is there now) and
// starts the push again where the window had stopped it. The beacons
// left before it go too: the walk is past them. A beacon read once the
// walk is over, or with no push going on, is no walk's: all are dropped.
func (p *pusher) beaconLocked(ino uint32, recent bool) bool {
	i := slices.IndexFunc(p.beacons, func(b beacon) bool { return b.ino == ino })
	if i < 0 {
		return false
	}
	b := p.beacons[i]
	if !recent || !p.walk || !p.cur.dir {
		p.beacons = p.beacons[:0]
		return false
	}
	p.beacons = append(p.beacons[:0], p.beacons[i+1:]...)
	p.cur.budget = max(p.cur.budget, b.spent+pushWindow-p.spent)
	p.popLocked()
	p.start()
	return true
}

// freshWindowLocked starts the beacons afresh where the window was
// refilled from the walk's own place: those left behind it are passed.
func (p *pusher) freshWindowLocked() {
	p.beacons = p.beacons[:0]
	p.lastBeacon = p.spent
}

// leaveBeaconLocked says whether the push leaves file ino (size bytes)
// unstored as a beacon, and if so remembers it. Not a file with hardlinks:
// the walk may read it by another name, somewhere else.
func (p *pusher) leaveBeaconLocked(ino uint32, size int64) bool {
	if size > beaconMax || p.spent-p.lastBeacon < beaconEvery || p.f.idx.Nlink[ino] > 1 {
		return false
	}
	if len(p.beacons) == maxBeacons {
		p.beacons = append(p.beacons[:0], p.beacons[1:]...)
	}
	p.beacons = append(p.beacons, beacon{ino, p.spent})
	p.lastBeacon = p.spent
	return true
}

// forgetWalkLocked forgets what the push knows of the walk it followed:
// the directories it went into and the beacons it left.
func (p *pusher) forgetWalkLocked() {
	clear(p.taken)
	p.freshWindowLocked()
}

// begin makes j the current job. The jobs of the directories above j's
// wait on the stack for the walk to come back to them: the current one,
// if it is such a directory's and has files left, and those already
// there. Any other job is dropped: it belongs to where a walk was before
// (one that stopped, or went elsewhere), and nobody will come back to it.
func (p *pusher) begin(j pushJob) {
	above := p.above(j.dirIno)
	kept := p.suspended[:0]
	for _, s := range p.suspended {
		if slices.Contains(above, s.dirIno) {
			kept = append(kept, s)
		}
	}
	p.suspended = kept
	if p.cur.dir && p.cur.dirIno != j.dirIno && p.cur.next < p.cur.end && slices.Contains(above, p.cur.dirIno) {
		if len(p.suspended) == maxSuspended {
			p.suspended = append(p.suspended[:0], p.suspended[1:]...)
		}
		p.cur.dropFile()
		p.suspended = append(p.suspended, p.cur)
	}
	p.cur = j
}

// above gives the archive inodes of the directories above dir, as the
// kernel found them, innermost first.
func (p *pusher) above(dir uint32) []uint32 {
	var inos []uint32
	p.f.up(dir, func(parent, _ uint32) { inos = append(inos, parent) })
	return inos
}

// onListed is called when the kernel has taken in the whole listing of
// directory dir: while a walk is on, it reads that directory's files next,
// and the kernel has their inodes now, so the push can start before the
// walk's first READ there.
func (p *pusher) onListed(dir uint32, caller uint32) {
	if p.takeListing(dir, caller) {
		p.pushHere(0, 0)
	}
}

// takeListing makes directory dir's files the push's current job if a
// walk is on, and says whether it did.
func (p *pusher) takeListing(dir uint32, caller uint32) bool {
	s, e := p.f.idx.Children(dir)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stoppedLocked() || !p.walkingLocked() || p.lister(caller) {
		return false
	}
	// A walk that lists directories goes into them: the push may too.
	p.deep = true
	if s == e {
		return false
	}
	for i := range p.suspended {
		if p.suspended[i].dirIno == dir {
			p.suspended[i].list = false // the walk listed it
		}
	}
	if j := &p.cur; j.dir && j.dirIno == dir && j.list {
		// The walk got here before the push listed it: the walk's
		// listing will do, and the walk waits on its reply. A listing
		// does not refill the window (only a READ does): a walker that
		// lists and reads nothing (find, du, ls -R) must not have the
		// tree pushed.
		j.list = false
		return j.budget > 0
	}
	if p.holdsLocked(dir) {
		return false
	}
	if parent, d, ok := p.f.where(dir); ok && dir != 0 && p.running > 0 && p.pastLocked(parent, d) {
		return false // the push listed it ahead and went on
	}
	// What is left of the window since the last READ, as above; none
	// left, nothing changes.
	budget := p.cur.budget
	if !p.cur.dir || budget <= 0 {
		return false
	}
	if _, ok := p.taken[dir]; ok {
		// Taken before, and no longer on the push's way down: an
		// earlier walk's, or the kernel forgot the listing the push
		// read. This is a walk of its own.
		p.forgetWalkLocked()
	}
	p.takeLocked(dir)
	p.begin(pushJob{dir: true, dirIno: dir, next: s, end: e, budget: budget})
	return true
}

// walkingLocked says whether a walk is on: the last READ at offset 0 was
// one (walk), and a READ reached us less than walkIdle ago. A listing
// after that (ls, find, du after a tar ended) is not the walk's.
func (p *pusher) walkingLocked() bool {
	return p.walk && p.now()-time.Duration(p.lastRead.Load()) < walkIdle
}

// now is the pusher's clock: monotonic, from its epoch.
func (p *pusher) now() time.Duration { return time.Since(p.epoch) }

// holdsLocked says whether directory ino is where the push is or on its
// way back up: its listing is being read or its files pushed.
func (p *pusher) holdsLocked(ino uint32) bool {
	if p.cur.dir && p.cur.dirIno == ino && p.cur.pending() {
		return true
	}
	for _, j := range p.suspended {
		if j.dirIno == ino {
			return true
		}
	}
	return false
}

// takeLocked records that the push went into directory ino.
func (p *pusher) takeLocked(ino uint32) {
	if p.taken == nil || len(p.taken) >= maxTaken {
		p.taken = map[uint32]struct{}{}
	}
	p.taken[ino] = struct{}{}
}

// start runs push goroutines, up to p.workers.
func (p *pusher) start() {
	for p.running < p.workers && p.cur.pending() && !p.stoppedLocked() {
		p.running++
		go p.run()
	}
}

// stoppedLocked says whether the push is off or paused.
func (p *pusher) stoppedLocked() bool { return p.off || p.paused }

// pause stops the push and waits for its workers to end (on: before an
// unmount), or lets it go on again (off).
func (p *pusher) pause(on bool) {
	p.mu.Lock()
	p.paused = on
	p.mu.Unlock()
	for deadline := time.Now().Add(time.Second); on && time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		p.mu.Lock()
		idle := p.running == 0
		p.mu.Unlock()
		if idle {
			return
		}
	}
}

// workers is how many goroutines push at once where the mount may use
// ncpu CPUs. Two share the copying into the kernel where there are CPUs
// to spare.
// On two CPUs, which the walk and the handlers of its requests share
// already, one: the push keeps ahead of the walk with one, and a second
// only started and stopped again (it found nothing to do while the other
// listed a directory), which cost arcmount about 0.2 s of CPU time in a
// cold tar of the Go toolchains tree (bench/README.md).
func workers(ncpu int) int {
	if ncpu <= 2 {
		return 1
	}
	return maxPushWorkers
}

// lister says whether thread tid is a worker listing ahead (listAhead).
func (p *pusher) lister(tid uint32) bool {
	return tid != 0 && tid == p.listTid.Load()
}

// onOpendir records the directory a walk may read next, unless a worker
// opened it to list it ahead.
func (p *pusher) onOpendir(ino uint32, caller uint32) {
	p.mu.Lock()
	if !p.lister(caller) {
		p.listed, p.listedValid = ino, true
	}
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

// pick is a piece of work for the push: [from, to) of file ino, or, with
// list, the listing of directory ino to read through the mount.
type pick struct {
	ino      uint32
	from, to int64
	list     bool
}

// pickLocked takes the next piece of work off the current job: a file to
// push and where its push ends, or, where canList (a worker, never a
// handler: see listAhead), a directory to list.
func (p *pusher) pickLocked(canList bool) (pick, bool) {
	j := &p.cur
	if j.file {
		k := pick{ino: j.fileIno, from: j.fileOff, to: j.fileTo}
		j.dropFile()
		if k.to == 0 {
			k.to = p.pushEnd(k.ino, k.from)
		}
		p.spendLocked(k.to - k.from)
		return k, true
	}
	x := p.f.idx
	// The lock is held: look at a bounded number of dirents per call (in
	// a huge directory the kernel may know few of them), and let the next
	// READ of the walk start the push again.
	for scanned := 0; scanned < maxScan; scanned++ {
		p.popLocked()
		if !j.dir || j.next >= j.end || j.budget <= 0 {
			break
		}
		if j.list {
			if !canList || p.listing {
				return pick{}, false
			}
			p.listing = true
			return pick{ino: j.dirIno, list: true}, true
		}
		d := j.next
		j.next++
		ino := x.Dirents.Inode[d]
		mode := x.Inodes.Mode[ino] & format.ModeType
		if mode == format.ModeDir && p.mnt != "" {
			// A walk goes into a subdirectory where it meets it, and
			// so does the push, listing it first if need be; but not
			// so deep that it could not find its way back up (the walk
			// lists those itself).
			if _, ok := p.taken[ino]; ok || len(p.suspended) >= maxSuspended {
				continue
			}
			if !p.deep {
				// The walk has not listed a directory yet: it may be
				// one that does not go into them (cat d/*). Wait here
				// for it to list this one, or to read on past it.
				j.next = d
				break
			}
			s, e := x.Children(ino)
			if s == e || !p.f.holds(ino) {
				continue // empty, or the kernel does not have it
			}
			// A listing counts against the window too, so that a tree
			// of small directories is not listed far ahead: it keeps
			// the mount busy, and the kernel keeps what it lists.
			p.takeLocked(ino)
			p.spendLocked(listCost + int64(e-s)*entryCost)
			p.begin(pushJob{dir: true, dirIno: ino, next: s, end: e, budget: j.budget, list: true})
			continue
		}
		size := int64(x.Inodes.Size[ino])
		if mode != format.ModeReg || size == 0 {
			continue
		}
		if !p.f.holds(ino) {
			continue // the kernel does not have it
		}
		if p.leaveBeaconLocked(ino, size) {
			continue
		}
		to := p.pushEnd(ino, 0)
		p.spendLocked(to)
		return pick{ino: ino, to: to}, true
	}
	return pick{}, false
}

// popLocked goes back up from a directory whose push is done to the one
// above, as a walk does, while there is window left, with what is left
// of it (one window for the whole walk: a suspended job's own budget is
// stale).
func (p *pusher) popLocked() {
	for j := &p.cur; !j.pending() && j.budget > 0 && len(p.suspended) > 0; {
		k, left := len(p.suspended)-1, j.budget
		p.cur, p.suspended = p.suspended[k], p.suspended[:k]
		p.cur.budget = left
	}
}

// pastLocked says whether the push has gone past dirent d of directory
// dir (an archive inode) in the order a walk takes (depth first, in
// listing order): the dirents on the way down from the root, compared
// level by level. Only where the push went into dir: one it passed by
// (not listed, the kernel forgot it) is still the walk's to steer.
func (p *pusher) pastLocked(dir, d uint32) bool {
	if _, ok := p.taken[dir]; !ok || !p.cur.dir {
		return false // a directory the push did not go into is not behind it
	}
	_, a, ok := p.f.lineage(dir)
	_, b, ok2 := p.f.lineage(p.cur.dirIno)
	return ok && ok2 && slices.Compare(append(a, d), append(b, p.cur.next)) < 0
}

// pushHere stores the current job's next files, up to hereBytes, in the
// caller's goroutine, then starts the workers for what follows. The caller
// is the handler of a request the walk waits on (the last READDIRPLUS of a
// listing, a READ that caught up with the push): the walk then finds its
// next files in the page cache when the reply wakes it. Left to the
// workers, those files race the walk, which the reply wakes at once while
// a worker still has to be scheduled, and the walk's own READs for them
// cost a round trip each (the walk waited 131 µs a READ on the 2-core
// benchmark machine): a cold tar of the Go toolchains tree sent 4,900
// READs before, 940 after, and its handlers spent about 100 µs a
// directory here.
//
// A store waits for pages that a READ not yet answered holds locked, so a
// handler must never wait on one that only handlers can answer: only one
// handler pushes at a time (two could wait on each other's READ), and
// none stores its own READ's pages, [0, ownEnd) of inode own (ownEnd 0:
// no READ of its own; a hardlink later in the directory is the same
// inode). The other handlers never wait on this one, so the READ whose
// pages it waits for is answered, or waits in the kernel for a background
// slot that the other READs free: this needs max_background of 2 or more
// (the kernel's default is 12; see fuse.MountOptions.MaxBackground).
func (p *pusher) pushHere(own uint32, ownEnd int64) {
	if !p.here.CompareAndSwap(false, true) {
		p.mu.Lock()
		p.start()
		p.mu.Unlock()
		return
	}
	defer p.here.Store(false)
	var buf []byte
	for left := int64(hereBytes); left > 0; {
		p.mu.Lock()
		k, ok := p.pickLocked(false)
		ino, from, to := k.ino, k.from, k.to
		if !ok || p.stoppedLocked() {
			p.mu.Unlock()
			break
		}
		if ino == own && from < ownEnd {
			p.putBackLocked(ino, from, to)
			p.mu.Unlock()
			break
		}
		cut := (from + left + pageSize - 1) &^ (pageSize - 1)
		if cut < to {
			// A large file: the rest of it is the workers' next piece.
			p.putBackLocked(ino, cut, to)
			to = cut
		}
		if buf == nil {
			buf = p.takeBufLocked()
		}
		p.mu.Unlock()
		n := p.push(ino, from, to, buf)
		p.hereStored.Add(n)
		if n < to-from {
			// Damaged (or gone): nothing more of this file.
			p.mu.Lock()
			if j := &p.cur; j.file && j.fileIno == ino && j.fileOff == to {
				j.dropFile() // (putBackLocked gave its budget back already)
			}
			p.mu.Unlock()
		}
		left -= to - from
	}
	p.mu.Lock()
	p.start()
	p.putBufLocked(buf)
	p.mu.Unlock()
}

// putBackLocked makes [from, to) of file ino the current job's next piece,
// where the job has no file piece of its own; pickLocked took its budget.
func (p *pusher) putBackLocked(ino uint32, from, to int64) {
	j := &p.cur
	if j.file {
		return
	}
	j.file, j.fileIno, j.fileOff, j.fileTo = true, ino, from, to
	p.spendLocked(-(to - from))
}

// spendLocked takes n bytes off the current job's window (n < 0: gives
// them back) and counts them in spent, which beacons measure by.
func (p *pusher) spendLocked(n int64) {
	p.cur.budget -= n
	p.spent += n
}

// takeBufLocked hands out a chunk buffer, a spare one if there is one.
func (p *pusher) takeBufLocked() []byte {
	if k := len(p.bufs); k > 0 {
		b := p.bufs[k-1]
		p.bufs = p.bufs[:k-1]
		return b
	}
	return make([]byte, pushChunk)
}

// putBufLocked keeps buf (if any) as a spare, up to maxSpareBufs.
func (p *pusher) putBufLocked(buf []byte) {
	if buf != nil && len(p.bufs) < maxSpareBufs {
		p.bufs = append(p.bufs, buf)
	}
}

func (p *pusher) run() {
	var buf []byte
	for {
		p.mu.Lock()
		k, ok := p.pickLocked(true)
		if !ok || p.stoppedLocked() {
			if k.list {
				p.listing = false
			}
			p.running--
			p.putBufLocked(buf)
			p.mu.Unlock()
			return
		}
		if k.list {
			mnt, dev := p.mnt, p.mntDev
			if p.dents == nil {
				p.dents = make([]byte, 32<<10)
			}
			dents := p.dents
			p.mu.Unlock()
			ok := p.listAhead(mnt, dev, k.ino, dents)
			p.mu.Lock()
			p.listing = false
			if !ok {
				// Passed by: the walk's own listing steers the push.
				delete(p.taken, k.ino)
			}
			if p.cur.dir && p.cur.dirIno == k.ino {
				p.cur.list = false
			}
			p.start() // the workers that found nothing to do meanwhile
			p.mu.Unlock()
			continue
		}
		if buf == nil {
			buf = p.takeBufLocked()
		}
		p.mu.Unlock()
		p.push(k.ino, k.from, k.to, buf)
	}
}

// listAhead reads the listing of directory ino through the mount at mnt,
// so that the kernel has its entries (they come with READDIRPLUS) and
// the push can store into its files before the walk gets there; buf is
// for getdents. Only workers list: the requests this sends are answered
// by handlers, which must never wait on one another (see pushHere). A
// listing that fails (no permission, unmounted) leaves the kernel
// without those entries, and the push passes them by.
func (p *pusher) listAhead(mnt string, dev uint64, ino uint32, buf []byte) bool {
	names, _, ok := p.f.lineage(ino)
	if !ok {
		return false // a directory the kernel never found
	}
	path := filepath.Join(append([]string{mnt}, names...)...)
	// The requests of this thread are the push's, not the walk's (the
	// kernel names the calling thread in each).
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	p.listTid.Store(uint32(syscall.Gettid()))
	defer p.listTid.Store(0)
	fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0)
	if err != nil {
		return false
	}
	defer syscall.Close(fd)
	// Only this mount's directory ino: not whatever another mount over
	// ours, or a path renamed in the kernel's cache, leads to.
	var st syscall.Stat_t
	if syscall.Fstat(fd, &st) != nil || st.Dev != dev || st.Ino != nodeID(ino) {
		return false
	}
	for {
		n, err := syscall.Getdents(fd, buf)
		if n == 0 {
			return true
		}
		if n < 0 || err != nil {
			return false
		}
	}
}

// viewer is what an Archive offers to push without copying
// (*reader.Archive has it): see reader.Archive.View.
type viewer interface {
	View(ino uint32, off int64, max int) (data []byte, release func(), err error)
}

// push stores file ino's content from offset from up to to into the
// kernel's cache, a chunk at a time, until to or an error, and
// says how many bytes the kernel took. A store the
// kernel refuses for another reason than a forgotten inode (unmounted)
// ends the whole job. Chunks end on page boundaries (or at the end of
// the file): the kernel takes a partly stored page as not there.
func (p *pusher) push(ino uint32, from, to int64, buf []byte) (stored int64) {
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
				return stored // damaged: its READ will say so
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
				return stored // damaged: its READ will say so
			}
			data = buf[:got]
		}
		errno := p.f.store(ino, off, data)
		if release != nil {
			release()
		}
		if errno != 0 {
			if errno != syscall.ENOENT {
				p.mu.Lock()
				p.cur, p.suspended = pushJob{}, nil
				p.mu.Unlock()
			}
			return stored
		}
		off += int64(len(data))
		stored += int64(len(data))
		p.stored.Add(int64(len(data)))
	}
	return stored
}
