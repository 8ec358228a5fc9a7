package fs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"arc/format"

	"github.com/hanwen/go-fuse/v2/fuse"
)

// walkTree: directories of small and large files, one of them damaged,
// read the way tar reads them.
func walkTree() []entry {
	var es []entry
	for d := 0; d < 3; d++ {
		es = append(es, entry{path: fmt.Sprintf("d%d", d), mode: format.ModeDir | 0o755, mtime: mtime})
		for i := 0; i < 40; i++ {
			n := 1 + (i*7919+d*131)%9000 // odd sizes: partial last pages
			if i%13 == 5 {
				n = 2<<20 + 123 // more than one push chunk
			}
			es = append(es, entry{path: fmt.Sprintf("d%d/f%02d", d, i), mode: format.ModeReg | 0o644,
				data: bigData(n, int64(d*100+i)), mtime: mtime})
		}
		es = append(es, entry{path: fmt.Sprintf("d%d/sub/x", d), mode: format.ModeReg | 0o644, data: "x", mtime: mtime})
	}
	return es
}

// walk reads the tree depth first in listing order (as tar and cp -r
// do) and checks every file: the damaged one must fail with EIO.
func walk(t *testing.T, root string, es []entry, damaged string) {
	t.Helper()
	want := map[string]string{}
	for _, e := range es {
		want[e.path] = e.data
	}
	var visit func(rel string)
	visit = func(rel string) {
		ents, err := os.ReadDir(filepath.Join(root, rel))
		if err != nil {
			t.Fatal(err)
		}
		names := make([]string, 0, len(ents))
		for _, e := range ents {
			names = append(names, e.Name())
		}
		sort.Strings(names)
		for _, name := range names {
			p := filepath.Join(rel, name)
			st, err := os.Lstat(filepath.Join(root, p))
			if err != nil {
				t.Fatal(err)
			}
			if st.IsDir() {
				visit(p)
				continue
			}
			got, err := os.ReadFile(filepath.Join(root, p))
			switch {
			case p == damaged:
				if !errors.Is(err, syscall.EIO) {
					t.Errorf("%s (damaged): %v, want EIO", p, err)
				}
			case err != nil:
				t.Errorf("%s: %v", p, err)
			case string(got) != want[p]:
				t.Errorf("%s: %d bytes, not the archived %d", p, len(got), len(want[p]))
			}
		}
	}
	visit("")
}

func TestWalkIsPushedAheadAndReadsTheRightBytes(t *testing.T) {
	// As arcmount runs: with spare Ps (see cmd/arcmount's minProcs).
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(max(8, runtime.GOMAXPROCS(0))))
	es := walkTree()
	reads := map[bool]int64{}
	for _, off := range []bool{true, false} {
		a := build(es)
		d, _ := a.idx.Lookup(0, []byte("d1"))
		f, _ := a.idx.Lookup(a.idx.Dirents.Inode[d], []byte("f20"))
		a.damaged[a.idx.Dirents.Inode[f]] = true
		mnt, fsys := mountFS(t, a, Options{NoPushAhead: off})
		walk(t, mnt, es, "d1/f20")
		reads[off] = fsys.reads.Load()
		// Everything again, from the kernel's cache where it kept it.
		walk(t, mnt, es, "d1/f20")
	}
	t.Logf("READ requests for the walk: %d without push-ahead, %d with", reads[true], reads[false])
	// How many depends on how the push and the walk are scheduled; that
	// some READs were saved does not.
	if reads[false] >= reads[true] {
		t.Errorf("push-ahead saved no READs: %d with, %d without", reads[false], reads[true])
	}
}

// The push stores straight from the archive's decoded blocks where it
// can (View), and gives each back once stored: a view kept would pin its
// block beyond the cache's bound for the life of the mount.
func TestThePushReleasesEveryViewItStores(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(max(8, runtime.GOMAXPROCS(0))))
	es := walkTree()
	a := build(es)
	a.viewable = true
	d, _ := a.idx.Lookup(0, []byte("d1"))
	f, _ := a.idx.Lookup(a.idx.Dirents.Inode[d], []byte("f20"))
	a.damaged[a.idx.Dirents.Inode[f]] = true
	mnt, fsys := mountFS(t, a, Options{})
	walk(t, mnt, es, "d1/f20")
	waitPushIdle(fsys)
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.views == 0 || fsys.push.stored.Load() == 0 {
		t.Fatalf("the walk was pushed through %d views, %d bytes stored: want some of each", a.views, fsys.push.stored.Load())
	}
	if a.viewsOut != 0 {
		t.Errorf("%d of %d views not released after the push", a.viewsOut, a.views)
	}
}

func TestRandomReadsDoNotPush(t *testing.T) {
	es := walkTree()
	a := build(es)
	mnt, fsys := mountFS(t, a, Options{})
	// Files of a directory read out of listing order, after listing it.
	if _, err := os.ReadDir(filepath.Join(mnt, "d0")); err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{30, 3, 17, 9, 25, 1} {
		p := fmt.Sprintf("d0/f%02d", i)
		if _, err := os.ReadFile(filepath.Join(mnt, p)); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(50 * time.Millisecond)
	fsys.push.mu.Lock()
	defer fsys.push.mu.Unlock()
	if fsys.push.running != 0 || fsys.push.cur.dir {
		t.Errorf("random reads started a push (running %d, job in dir %d)", fsys.push.running, fsys.push.cur.dirIno)
	}
}

// A walker that reads only the heads of files (file *, head -c) must not
// make the push decode and cache large files whole: at most pushFileMax
// bytes of any file go ahead.
func TestPushStopsAtPushFileMaxInALargeFile(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(max(8, runtime.GOMAXPROCS(0))))
	es := []entry{{path: "d", mode: format.ModeDir | 0o755, mtime: mtime}}
	for _, f := range []struct {
		name string
		n    int
	}{{"a", 5000}, {"b", 7000}, {"c", 3 * pushFileMax}, {"d", 3 * pushFileMax}} {
		es = append(es, entry{path: "d/" + f.name, mode: format.ModeReg | 0o644, data: bigData(f.n, int64(f.n)), mtime: mtime})
	}
	a := build(es)
	mnt, fsys := mountFS(t, a, Options{})
	if _, err := os.ReadDir(filepath.Join(mnt, "d")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 512)
	for _, name := range []string{"a", "b"} { // a walk: two heads in listing order
		f, err := os.Open(filepath.Join(mnt, "d", name))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Read(buf); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	waitPushIdle(fsys)
	got := fsys.push.stored.Load()
	t.Logf("pushed %d bytes", got)
	if got == 0 || got > 2*pushFileMax+7000 {
		t.Errorf("pushed %d bytes ahead, want some and at most %d of each large file", got, pushFileMax)
	}
}

// Once a walk is on, the end of a directory's listing stores the first of
// its files before the walk gets the reply, so that the walk reads them
// from the kernel's cache instead of racing the push workers with READs.
func TestListingEndStoresTheWalksNextFilesBeforeTheReply(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(max(8, runtime.GOMAXPROCS(0))))
	es := walkTree()
	a := build(es)
	mnt, fsys := mountFS(t, a, Options{})
	walkIntoD0(t, mnt, fsys)
	here := fsys.push.hereStored.Load()
	if _, err := os.ReadDir(filepath.Join(mnt, "d1")); err != nil {
		t.Fatal(err)
	}
	// d1's first five files are small (f05 is 2 MiB): all of them within
	// hereBytes, so stored by the listing's last READDIRPLUS.
	want := map[string]string{}
	for _, e := range es {
		want[e.path] = e.data
	}
	var first int64
	for i := 0; i < 5; i++ {
		first += int64(len(want[fmt.Sprintf("d1/f%02d", i)]))
	}
	if got := fsys.push.hereStored.Load() - here; got < first {
		t.Fatalf("listing d1 stored %d bytes before its reply, want at least its first five files' %d", got, first)
	}
	reads := fsys.reads.Load()
	for i := 0; i < 5; i++ {
		p := fmt.Sprintf("d1/f%02d", i)
		got, err := os.ReadFile(filepath.Join(mnt, p))
		if err != nil || string(got) != want[p] {
			t.Fatalf("%s: %d bytes, %v; want the archived %d", p, len(got), err, len(want[p]))
		}
	}
	if n := fsys.reads.Load() - reads; n != 0 {
		t.Errorf("reading d1's first five files sent %d READs, want none (stored at the listing)", n)
	}
}

// waitPushIdle waits up to 5 s for the push workers to end.
func waitPushIdle(fsys *FS) {
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		fsys.push.mu.Lock()
		idle := fsys.push.running == 0
		fsys.push.mu.Unlock()
		if idle {
			return
		}
	}
}

// Readers in parallel, each reading its share of many small files in order
// (two walkers, rg, xargs -P), make READ handlers push while other READs
// are unanswered, their own among them. A store waits for the pages of an
// unanswered READ, so a handler that stored into them would never answer:
// the mount would hang for good (see pushHere).
//
// Reader r reads file r of each directory in turn, so that at any time
// the READs waiting are of neighbouring files (many of them look like the
// next step of a walk and make their handlers push into the files around),
// and the first readers are in the next directory while the last still
// finish the one before (the push moves between directories and back).
// A pushHere that let any handler store any file, while steer could also
// move a job back over files being read, hung here in the first round of
// every run on 2 Ps (26 of 26). With steer as it is now this is a stress
// test: TestReadHandlerNeverStoresItsOwnPages is the deterministic one.
func TestParallelWalkersNeverHangThePush(t *testing.T) {
	// As on a 2-core machine: with many Ps the handlers rarely overlap.
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(2))
	const dirs, files, readers, rounds = 4, 1000, 1000, 3
	// stall: no file read for this long while readers wait is a hang.
	const stall = 10 * time.Second
	var es []entry
	for d := 0; d < dirs; d++ {
		es = append(es, entry{path: fmt.Sprintf("d%d", d), mode: format.ModeDir | 0o755, mtime: mtime})
		for i := 0; i < files; i++ {
			es = append(es, entry{path: fmt.Sprintf("d%d/f%04d", d, i), mode: format.ModeReg | 0o644,
				data: bigData(pageSize, int64(d*files+i)), mtime: mtime})
		}
	}
	want := map[string]string{}
	for _, e := range es {
		want[e.path] = e.data
	}
	a := build(es)
	for round := 0; round < rounds; round++ {
		ok := t.Run(fmt.Sprint("round ", round), func(t *testing.T) {
			mnt, fsys := mountFS(t, a, Options{})
			var done atomic.Int64 // files read
			errs := make(chan error, readers)
			for r := 0; r < readers; r++ {
				go func() {
					for i := r; i < dirs*files; i += readers {
						p := fmt.Sprintf("d%d/f%04d", i/files, i%files)
						got, err := os.ReadFile(filepath.Join(mnt, p))
						if err == nil && string(got) != want[p] {
							err = fmt.Errorf("%s: %d bytes, not the archived %d", p, len(got), len(want[p]))
						}
						if err != nil {
							errs <- err
							return
						}
						done.Add(1)
					}
					errs <- nil
				}()
			}
			defer func() { t.Logf("%d bytes pushed", fsys.push.stored.Load()) }()
			tick := time.NewTicker(100 * time.Millisecond)
			defer tick.Stop()
			start, last, lastDone := time.Now(), time.Now(), int64(0)
			for left := readers; left > 0; {
				select {
				case err := <-errs:
					left--
					if err != nil {
						t.Error(err)
					}
				case now := <-tick.C:
					if n := done.Load(); n != lastDone {
						last, lastDone = now, n
					} else if now.Sub(last) > stall {
						t.Errorf("%d of %d readers still waiting after %v, no file read in the last %v (%d of %d read): the mount hangs",
							left, readers, now.Sub(start).Round(time.Millisecond), stall, n, dirs*files)
						// Abort the connection so that the readers and the
						// test end.
						syscall.Unmount(mnt, syscall.MNT_FORCE)
						return
					}
				}
			}
		})
		if !ok {
			break
		}
	}
}

// A READ's pages stay locked until its reply, so the handler of a READ
// that pushes must never store into its own file: here, while the handler
// of b's READ stores c, the job is set back to b (as another walker's
// listing or READ may do meanwhile), and the handler must leave b to the
// workers instead of waiting on its own pages for good.
func TestReadHandlerNeverStoresItsOwnPages(t *testing.T) {
	es := []entry{
		{path: "d", mode: format.ModeDir | 0o755, mtime: mtime},
		{path: "d/a", mode: format.ModeReg | 0o644, data: bigData(5000, 1), mtime: mtime},
		{path: "d/b", mode: format.ModeReg | 0o644, data: bigData(6000, 2), mtime: mtime},
		{path: "d/c", mode: format.ModeReg | 0o644, data: bigData(7000, 3), mtime: mtime},
	}
	a := build(es)
	x := a.idx
	d, _ := x.Lookup(0, []byte("d"))
	dIno := x.Dirents.Inode[d]
	b, _ := x.Lookup(dIno, []byte("b"))
	c, _ := x.Lookup(dIno, []byte("c"))
	mnt, fsys := mountFS(t, a, Options{})
	var once sync.Once
	a.mu.Lock()
	a.onReadAt = func(ino uint32) {
		if ino == x.Dirents.Inode[c] {
			once.Do(func() { // c is being stored by b's READ handler
				fsys.push.mu.Lock()
				fsys.push.cur.next = b
				fsys.push.mu.Unlock()
			})
		}
	}
	a.mu.Unlock()
	if _, err := os.ReadDir(filepath.Join(mnt, "d")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.ReadFile(filepath.Join(mnt, "d/a")); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { // b after a: a walk, and b's handler pushes c
		got, err := os.ReadFile(filepath.Join(mnt, "d/b"))
		if err == nil && string(got) != es[2].data {
			err = fmt.Errorf("d/b: %d bytes, not the archived %d", len(got), len(es[2].data))
		}
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Errorf("the READ of d/b is unanswered after 20 s: its handler waits on its own pages")
		syscall.Unmount(mnt, syscall.MNT_FORCE)
		return
	}
	if got := fsys.push.hereStored.Load(); got != 7000 {
		t.Errorf("b's handler stored %d bytes, want c's 7000 and nothing of b", got)
	}
}

// While one handler stores in pushHere, another that the walk waits on
// does not store too (two could each wait on the other's unanswered
// READ): it leaves the files to the workers and replies at once.
func TestOnlyOneHandlerPushesAtATime(t *testing.T) {
	es := walkTree()
	mnt, fsys := mountFS(t, build(es), Options{})
	walkIntoD0(t, mnt, fsys)
	fsys.push.here.Store(true) // as if a handler were storing now
	here, stored := fsys.push.hereStored.Load(), fsys.push.stored.Load()
	if _, err := os.ReadDir(filepath.Join(mnt, "d1")); err != nil {
		t.Fatal(err)
	}
	if n := fsys.push.hereStored.Load() - here; n != 0 {
		t.Errorf("the listing's handler stored %d bytes while another handler was storing", n)
	}
	waitPushIdle(fsys)
	fsys.push.here.Store(false)
	if fsys.push.stored.Load() == stored {
		t.Error("the workers did not take d1's files either")
	}
}

// walkIntoD0 lists d0 of walkTree's mount and reads its first two files,
// so that a walk is on, and waits for the workers to finish with d0 (so
// that none is left to take the next directory's files meanwhile).
func walkIntoD0(t *testing.T, mnt string, fsys *FS) {
	t.Helper()
	listAndRead(t, filepath.Join(mnt, "d0"), "f00", "f01")
	waitPushIdle(fsys)
}

// listAndRead lists dir and reads the named files in it, as a walk starts
// there.
func listAndRead(t *testing.T, dir string, names ...string) {
	t.Helper()
	if _, err := os.ReadDir(dir); err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		if _, err := os.ReadFile(filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
}

// subTree: a directory with files, a subdirectory among them and one in
// that, and root files to walk first.
func subTree() []entry {
	var es []entry
	file := func(p string, n int) {
		es = append(es, entry{path: p, mode: format.ModeReg | 0o644, data: bigData(n, int64(len(es))), mtime: mtime})
	}
	for _, d := range []string{"a", "a/g", "a/g/k"} {
		es = append(es, entry{path: d, mode: format.ModeDir | 0o755, mtime: mtime})
	}
	for i := 0; i < 5; i++ {
		file(fmt.Sprintf("a/f%d", i), 5000+i)
		file(fmt.Sprintf("a/g/f%d", i), 7000+i) // between a's f and h files
		file(fmt.Sprintf("a/g/k/f%d", i), 9000+i)
		file(fmt.Sprintf("a/h%d", i), 3000+i)
	}
	file("r0", 4000)
	file("r1", 4001)
	return es
}

// A walk that goes on into subdirectories finds their files in the page
// cache and their listings in the kernel's cache: the push lists them
// ahead of it through the mount, in the walk's order, and stores their
// files.
func TestThePushListsTheSubdirectoriesAheadOfTheWalk(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(max(8, runtime.GOMAXPROCS(0))))
	es := subTree()
	mnt, fsys := mountFS(t, build(es), Options{})
	listAndRead(t, mnt, "r0", "r1") // the walk shows itself
	// and lists a directory: it goes into directories.
	if _, err := os.ReadDir(filepath.Join(mnt, "a")); err != nil {
		t.Fatal(err)
	}
	var ahead int64
	for _, e := range trimDir(es, "a/") {
		ahead += int64(len(e.data))
	}
	waitPushIdle(fsys)
	if got := fsys.push.stored.Load(); got < ahead {
		t.Fatalf("the push stored %d bytes, want the %d of every file in a", got, ahead)
	}
	reads, lists := fsys.reads.Load(), fsys.raw.listings.Load()
	walk(t, filepath.Join(mnt, "a"), trimDir(es, "a/"), "")
	if n := fsys.reads.Load() - reads; n != 0 {
		t.Errorf("the walk of a sent %d READs, want none", n)
	}
	if n := fsys.raw.listings.Load() - lists; fsys.raw.noOpendir.Load() && n != 0 {
		t.Errorf("the walk of a sent %d listing requests, want none (listed ahead, cached by the kernel)", n)
	}
}

// A program that reads a directory's files but does not go into its
// subdirectories (cat d/*, sha256sum d/*) has no subtree pushed for it.
func TestAWalkThatListsNoDirectoriesHasNoSubtreesPushed(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(max(8, runtime.GOMAXPROCS(0))))
	var es []entry
	var want int64
	for i := 0; i < 10; i++ {
		es = append(es, entry{path: fmt.Sprintf("d/f%d", i), mode: format.ModeReg | 0o644, data: bigData(10000+i, int64(i)), mtime: mtime})
		if i >= 2 {
			want += int64(10000 + i)
		}
	}
	for i := 0; i < 16; i++ {
		es = append(es, entry{path: fmt.Sprintf("d/f4sub/x%02d", i), mode: format.ModeReg | 0o644, data: bigData(1<<20, int64(100+i)), mtime: mtime})
	}
	mnt, fsys := mountFS(t, build(es), Options{})
	if _, err := os.ReadDir(filepath.Join(mnt, "d")); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 10; i++ {
		if _, err := os.ReadFile(filepath.Join(mnt, "d", fmt.Sprintf("f%d", i))); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond) // the program's work on each file
	}
	waitPushIdle(fsys)
	if got := fsys.push.stored.Load(); got > 2*want {
		t.Errorf("the push stored %d bytes for a program that read %d", got, want)
	}
}

// A second walk of a tree whose pages the kernel dropped (echo 1 >
// drop_caches, here for this mount only) is pushed as the first was.
func TestASecondWalkAfterTheKernelDroppedThePagesIsPushedToo(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(max(8, runtime.GOMAXPROCS(0))))
	es := subTree()
	mnt, fsys := mountFS(t, build(es), Options{})
	walk(t, filepath.Join(mnt, "a"), trimDir(es, "a/"), "")
	waitPushIdle(fsys)
	first := fsys.reads.Load()
	srv := fsys.raw.srv.Load()
	for ino := range uint32(fsys.idx.Inodes.Count()) {
		if !fsys.holds(ino) {
			continue
		}
		if st := srv.InodeNotify(nodeID(ino), 0, 0); !st.Ok() && st != fuse.ENOENT {
			t.Fatalf("dropping the pages of inode %d: %v", ino, st)
		}
	}
	walk(t, filepath.Join(mnt, "a"), trimDir(es, "a/"), "")
	waitPushIdle(fsys)
	if second := fsys.reads.Load() - first; second > first+1 {
		t.Errorf("the second walk sent %d READs, the first %d", second, first)
	}
}

// A tree deeper than the push keeps track of is pushed: at the depth where
// the push would lose its way back up, it leaves the rest to the walk.
func TestATreeDeeperThanThePushTracksIsPushed(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(max(8, runtime.GOMAXPROCS(0))))
	var es []entry
	p := "r"
	const below = 40 // levels below what the push tracks
	for i := 0; i < maxSuspended+below; i++ {
		for _, n := range []string{"a0", "a1", "z0", "z1"} {
			es = append(es, entry{path: p + "/" + n, mode: format.ModeReg | 0o644, data: bigData(3000+i, int64(len(es))), mtime: mtime})
		}
		p += "/m"
	}
	mnt, fsys := mountFS(t, build(es), Options{})
	walk(t, filepath.Join(mnt, "r"), trimDir(es, "r/"), "")
	// A push that dropped the outermost levels' jobs on its way down
	// left their files after the subdirectory to the walk's READs: two a
	// level. How many READs the walk sends otherwise depends on how the
	// push and the walk are scheduled (the push waits for the walk once
	// its window is spent).
	if n := fsys.reads.Load(); n >= 2*below {
		t.Errorf("a walk %d directories deep sent %d READs", maxSuspended+below, n)
	}
}

// The kernel may forget a directory (echo 2 > drop_caches, memory) that
// the push is in; a walk that lists it again gives the kernel the same
// node back, and the push goes on storing the directory's files into it.
func TestThePushFollowsADirectoryTheKernelForgot(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(max(8, runtime.GOMAXPROCS(0))))
	es := []entry{
		{path: "a/f0", mode: format.ModeReg | 0o644, data: bigData(5000, 1), mtime: mtime},
		{path: "a/f1", mode: format.ModeReg | 0o644, data: bigData(6000, 2), mtime: mtime},
	}
	for i := 0; i < 6*maxScan; i++ { // the push stops after a few maxScan of them
		es = append(es, entry{path: fmt.Sprintf("a/l%04d", i), mode: format.ModeLink | 0o777, target: "f0", mtime: mtime})
	}
	for i := 0; i < 10; i++ {
		es = append(es, entry{path: fmt.Sprintf("a/z%d", i), mode: format.ModeReg | 0o644, data: bigData(7000+i, int64(10+i)), mtime: mtime})
	}
	mnt, fsys := mountFS(t, build(es), Options{})
	listAndRead(t, filepath.Join(mnt, "a"), "f0", "f1")
	waitPushIdle(fsys)
	d, _ := fsys.idx.Lookup(0, []byte("a"))
	a := fsys.idx.Dirents.Inode[d]
	if st := fsys.raw.srv.Load().EntryNotify(nodeID(0), "a"); !st.Ok() {
		t.Fatal(st)
	}
	for deadline := time.Now().Add(5 * time.Second); fsys.holds(a); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Skip("the kernel kept a")
		}
	}
	reads := fsys.reads.Load()
	if _, err := os.ReadDir(filepath.Join(mnt, "a")); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"f0", "f1", "z0", "z1", "z2", "z3", "z4", "z5", "z6", "z7", "z8", "z9"} {
		if _, err := os.ReadFile(filepath.Join(mnt, "a", n)); err != nil {
			t.Fatal(err)
		}
	}
	if n := fsys.reads.Load() - reads; n > 4 {
		t.Errorf("the second walk sent %d READs: z1..z9 were not pushed", n)
	}
}

// mountAfterAWalkThatStops mounts two files and 3,000 small directories
// (the unmount is the test's) and walks them the way tar begins: it reads
// the files and lists the first directory, then stops, while the push
// goes on listing the directories ahead.
func mountAfterAWalkThatStops(t *testing.T) (string, *Server, *FS) {
	t.Helper()
	es := []entry{
		{path: "f0", mode: format.ModeReg | 0o644, data: bigData(5000, 1), mtime: mtime},
		{path: "f1", mode: format.ModeReg | 0o644, data: bigData(6000, 2), mtime: mtime},
	}
	for i := range 3000 {
		es = append(es, entry{path: fmt.Sprintf("g%05d/e", i), mode: format.ModeReg | 0o644, data: "x", mtime: mtime})
	}
	dir, srv, fsys := mountServer(t, build(es), Options{})
	listAndRead(t, dir, "f0", "f1")
	if _, err := os.ReadDir(filepath.Join(dir, "g00000")); err != nil { // a walk into directories
		srv.Unmount()
		srv.Wait()
		t.Fatal(err)
	}
	return dir, srv, fsys
}

// Unmounting right after a walk stops halfway succeeds: the push, which
// would list directories ahead for a while yet, stops first.
func TestUnmountRightAfterAWalkStopsSucceeds(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(max(8, runtime.GOMAXPROCS(0))))
	dir, srv, fsys := mountAfterAWalkThatStops(t)
	// The walk stops while the push lists on; one unmount, without
	// go-fuse's retries.
	for deadline := time.Now().Add(time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		fsys.push.mu.Lock()
		listing := fsys.push.listing
		fsys.push.mu.Unlock()
		if listing {
			break
		}
	}
	fsys.push.pause(true)
	fsys.push.mu.Lock()
	running := fsys.push.running
	fsys.push.mu.Unlock()
	if running != 0 {
		t.Errorf("%d push workers still run after the push was stopped for the unmount", running)
	}
	if err := syscall.Unmount(dir, 0); err != nil {
		srv.Unmount()
		srv.Wait()
		t.Fatalf("unmount right after the walk stopped: %v", err)
	}
	srv.Wait()
}

// listTree lists every directory under dir, as find, du and ls -R do:
// no file is read.
func listTree(t *testing.T, dir string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if e.IsDir() {
			listTree(t, filepath.Join(dir, e.Name()))
		}
	}
}

// listingTree is w (two small files, for a walk that reads them) and t,
// 150 directories of four 200 KiB files; it gives t's file bytes.
func listingTree() ([]entry, int64) {
	es := []entry{
		{path: "w/f0", mode: format.ModeReg | 0o644, data: bigData(5000, 1), mtime: mtime},
		{path: "w/f1", mode: format.ModeReg | 0o644, data: bigData(6000, 2), mtime: mtime},
	}
	var total int64
	for d := range 150 {
		for i := range 4 {
			n := 200 << 10
			es = append(es, entry{path: fmt.Sprintf("t/d%03d/f%d", d, i), mode: format.ModeReg | 0o644,
				data: bigData(n, int64(d*10+i)), mtime: mtime})
			total += int64(n)
		}
	}
	return es, total
}

// A walker that only lists (find, du, ls -R) after a walk that read
// files: right after it, it is taken for the walk going on, but listings
// do not refill the window, so it gets at most what was left of that, not
// the tree; once no READ came for walkIdle, the walk is over and it gets
// nothing.
func TestListingsAfterAWalkPushNoMoreThanWhatIsLeftOfItsWindow(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(max(8, runtime.GOMAXPROCS(0))))
	for _, tc := range []struct {
		name string
		idle time.Duration // since the walk's last READ
		most int64
	}{
		{"right after the walk", 0, pushWindow + pushFileMax},
		{"once the walk ended", walkIdle, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			es, total := listingTree()
			mnt, fsys := mountFS(t, build(es), Options{})
			listAndRead(t, filepath.Join(mnt, "w"), "f0", "f1")
			waitPushIdle(fsys)
			fsys.push.lastRead.Add(-int64(tc.idle)) // as if that long had passed
			before := fsys.push.stored.Load()
			listTree(t, filepath.Join(mnt, "t"))
			waitPushIdle(fsys)
			got := fsys.push.stored.Load() - before
			t.Logf("listing t (%d file bytes): %d bytes pushed", total, got)
			if got > tc.most {
				t.Errorf("listing t had %d bytes pushed (%.0f%% of its files), want at most %d", got, 100*float64(got)/float64(total), tc.most)
			}
		})
	}
}

// A walk that reads from the page cache sends no READ while the push is
// ahead of it; a beacon, a small file the push left unstored, makes it send
// one, which refills the window before the walk catches up with the push.
func TestAWalkBehindThePushRefillsTheWindowAtABeacon(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(max(8, runtime.GOMAXPROCS(0))))
	var es []entry
	for i := range 160 { // 120 MiB: more than a window
		n := 1 << 20
		if i%4 == 3 {
			n = 4000 // small enough for a beacon
		}
		es = append(es, entry{path: fmt.Sprintf("x/f%03d", i), mode: format.ModeReg | 0o644, data: bigData(n, int64(i)), mtime: mtime})
	}
	mnt, fsys := mountFS(t, build(es), Options{})
	listAndRead(t, filepath.Join(mnt, "x"), "f000", "f001")
	waitPushIdle(fsys)
	stalled := fsys.push.stored.Load()
	x, _ := fsys.idx.Lookup(0, []byte("x"))
	first, _ := fsys.idx.Children(fsys.idx.Dirents.Inode[x])
	fsys.push.mu.Lock()
	stop := int(fsys.push.cur.next - first) // the first file the window left
	spent := fsys.push.running == 0 && fsys.push.cur.budget <= 0
	var beacons []uint32
	for _, b := range fsys.push.beacons {
		beacons = append(beacons, b.ino)
	}
	fsys.push.mu.Unlock()
	if !spent || stop >= len(es) || len(beacons) == 0 {
		t.Fatalf("the push stopped before f%03d with %d beacons left (%d bytes stored, window spent: %v): want a window spent and beacons", stop, len(beacons), stalled, spent)
	}
	for i := 2; i < stop; i++ {
		got, err := os.ReadFile(filepath.Join(mnt, "x", fmt.Sprintf("f%03d", i)))
		if err != nil || string(got) != es[i].data {
			t.Fatalf("f%03d: %d bytes, %v; want the archived %d", i, len(got), err, len(es[i].data))
		}
		waitPushIdle(fsys)
		if fsys.push.stored.Load() > stalled {
			if ino := fsys.idx.Dirents.Inode[first+uint32(i)]; ino != beacons[0] {
				t.Fatalf("the push went on after f%03d, which is not the first beacon", i)
			}
			t.Logf("the window was spent before f%03d; reading f%03d, a beacon, went on with it", stop, i)
			return
		}
	}
	t.Errorf("the walk read up to f%03d, where the window had stopped the push, and no beacon made it go on", stop)
}

// What a READ of a beacon does to the push's window, by the state the push
// is in (no FUSE: the pusher's bookkeeping alone; off, so that no worker
// starts).
func TestABeaconRefillsOnlyAWalkGoingOn(t *testing.T) {
	const bino, parent, child = 7, 2, 3
	for _, tc := range []struct {
		name       string
		recent     bool // the READ before came less than walkIdle before
		walk, dir  bool // a walk is on; the push has a job
		wantBeacon bool
		wantDir    uint32 // the job after; 0: unchanged
		wantBudget int64
	}{
		{"the walk reads it", true, true, true, true, parent, pushWindow / 2},
		{"read once the walk is over", false, true, true, false, child, 0},
		{"read with no walk on", true, false, true, false, child, 0},
		{"read with no job", true, true, false, false, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var p pusher
			p.off, p.walk = true, tc.walk
			// The window was spent on the last file of a subdirectory;
			// the directory above waits for the walk to come back.
			p.spent = pushWindow
			p.cur = pushJob{dir: tc.dir, dirIno: child, next: 10, end: 10}
			p.suspended = []pushJob{{dir: true, dirIno: parent, next: 4, end: 9}}
			p.beacons = []beacon{{ino: 5, spent: pushWindow / 4}, {ino: bino, spent: pushWindow / 2}, {ino: 9, spent: 3 * pushWindow / 4}}
			got := p.beaconLocked(bino, tc.recent)
			if got != tc.wantBeacon {
				t.Fatalf("beaconLocked = %v, want %v", got, tc.wantBeacon)
			}
			if tc.wantDir != 0 && (p.cur.dirIno != tc.wantDir || p.cur.budget != tc.wantBudget) {
				t.Errorf("the push's job: directory %d with %d bytes of window, want %d with %d", p.cur.dirIno, p.cur.budget, tc.wantDir, tc.wantBudget)
			}
			if want := map[bool]int{true: 1, false: 0}[tc.wantBeacon]; len(p.beacons) != want {
				t.Errorf("%d beacons left, want %d (the ones after it, or none)", len(p.beacons), want)
			}
		})
	}
}

// A job that a walk left unfinished (it stopped, or the window was spent)
// is not resumed by a later walk elsewhere: only the directories above the
// one a walk is in wait for it to come back.
func TestAJobOfAWalkThatStoppedIsNotResumedByAnother(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(max(8, runtime.GOMAXPROCS(0))))
	var es []entry
	for i := range 100 {
		es = append(es, entry{path: fmt.Sprintf("x/f%03d", i), mode: format.ModeReg | 0o644, data: bigData(1<<20, int64(i)), mtime: mtime})
	}
	for i, n := range []string{"a", "b", "c"} {
		es = append(es, entry{path: "y/" + n, mode: format.ModeReg | 0o644, data: bigData(5000+i, int64(1000+i)), mtime: mtime})
	}
	mnt, fsys := mountFS(t, build(es), Options{})
	listAndRead(t, filepath.Join(mnt, "x"), "f000", "f001") // stops after two files
	waitPushIdle(fsys)
	first := fsys.push.stored.Load()
	for _, n := range []string{"a", "b"} { // later: cat y/a y/b
		if _, err := os.ReadFile(filepath.Join(mnt, "y", n)); err != nil {
			t.Fatal(err)
		}
	}
	waitPushIdle(fsys)
	if got := fsys.push.stored.Load() - first; got > 1<<20 {
		t.Errorf("cat y/a y/b had %d bytes pushed: the rest of x, which the first walk left", got)
	}
}

// However the mount ends (here umount from outside, which does not go
// through Server.Unmount), no push worker outlives Server.Wait.
func TestNoPushWorkerOutlivesAnUnmountFromOutside(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(max(8, runtime.GOMAXPROCS(0))))
	dir, srv, fsys := mountAfterAWalkThatStops(t)
	// The walk stops while the push lists on (an unmount then fails busy
	// while a worker has a directory open: try until it takes).
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(100 * time.Microsecond) {
		err := syscall.Unmount(dir, 0)
		if err == nil {
			break
		}
		if err != syscall.EBUSY || time.Now().After(deadline) {
			srv.Unmount()
			srv.Wait()
			t.Fatal(err)
		}
	}
	srv.Wait()
	fsys.push.mu.Lock()
	running := fsys.push.running
	fsys.push.mu.Unlock()
	if running != 0 {
		t.Errorf("%d push workers still run after Server.Wait", running)
	}
}

// trimDir is the entries under prefix, with their paths relative to it.
func trimDir(es []entry, prefix string) []entry {
	var out []entry
	for _, e := range es {
		if rest, ok := strings.CutPrefix(e.path, prefix); ok {
			e.path = rest
			out = append(out, e)
		}
	}
	return out
}
