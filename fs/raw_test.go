package fs

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"arc/format"

	"github.com/hanwen/go-fuse/v2/fuse"
)

// rawTree: a directory of several entries, a hardlink across directories
// and a subdirectory, for requests answered without a mount.
func rawTree() []entry {
	var es []entry
	for _, n := range []string{"a", "b", "c", "d", "e"} {
		es = append(es, entry{path: "dir/" + n, mode: format.ModeReg | 0o644, data: n, mtime: mtime})
	}
	es = append(es,
		entry{path: "dir/sub/x", mode: format.ModeReg | 0o644, data: "x", mtime: mtime},
		entry{path: "other/link", mode: format.ModeReg | 0o644, link: "dir/a", mtime: mtime},
	)
	return es
}

func header(ino uint32) *fuse.InHeader { return &fuse.InHeader{NodeId: nodeID(ino)} }

// lookup asks r for name in directory ino, as the kernel does.
func lookup(t *testing.T, r *rawFS, dir uint32, name string) (uint32, fuse.EntryOut) {
	t.Helper()
	var out fuse.EntryOut
	if st := r.Lookup(nil, header(dir), name, &out); !st.Ok() {
		t.Fatalf("LOOKUP %q in inode %d: %v", name, dir, st)
	}
	if out.NodeId == 0 {
		return 0, out
	}
	ino, ok := r.f.inoOf(out.NodeId)
	if !ok {
		t.Fatalf("LOOKUP %q gave node %d, no inode", name, out.NodeId)
	}
	return ino, out
}

// Every reply that gives the kernel a node counts as a lookup of it, and
// FORGET takes the kernel's count off: what push-ahead trusts when it
// stores into an inode.
func TestLookupsAreCountedUntilTheKernelForgetsThem(t *testing.T) {
	f := newFS(build(rawTree()), nil)
	r := f.raw
	dir, _ := lookup(t, r, 0, "dir")
	a, out := lookup(t, r, dir, "a")
	if out.NodeId != nodeID(a) || out.Generation != 1 || out.Attr.Ino != nodeID(a) {
		t.Errorf("entry of a: node %d gen %d ino %d, want node and ino %d, gen 1", out.NodeId, out.Generation, out.Attr.Ino, nodeID(a))
	}
	lookup(t, r, dir, "a")
	if n := f.held[a].lookups.Load(); n != 2 || !f.holds(a) {
		t.Fatalf("after two lookups the count is %d", n)
	}
	r.Forget(nodeID(a), 1)
	if !f.holds(a) {
		t.Fatal("one FORGET of two took the node")
	}
	r.Forget(nodeID(a), 5) // more than it holds: none, not a wrap
	if n := f.held[a].lookups.Load(); n != 0 || f.holds(a) {
		t.Errorf("after the kernel forgot a, the count is %d", n)
	}
	r.Forget(0, 1)     // no such node: ignored
	r.Forget(1<<40, 1) // nor this
	if !f.holds(0) {
		t.Error("the root is always held")
	}
}

// A hardlink is one node whichever path finds it, and the node remembers
// the dirent it was found by last: its path in logs, its directory for
// push-ahead.
func TestHardlinkedPathsShareOneNode(t *testing.T) {
	f := newFS(build(rawTree()), nil)
	r := f.raw
	dir, _ := lookup(t, r, 0, "dir")
	other, _ := lookup(t, r, 0, "other")
	a, _ := lookup(t, r, dir, "a")
	if got := f.path(a); got != "/dir/a" {
		t.Errorf("path of a: %q", got)
	}
	link, _ := lookup(t, r, other, "link")
	if link != a {
		t.Fatalf("other/link is inode %d, dir/a %d", link, a)
	}
	if got := f.path(a); got != "/other/link" {
		t.Errorf("path after finding it as other/link: %q", got)
	}
	if p, _, ok := f.where(a); !ok || p != other {
		t.Errorf("directory of the node: %d %v, want %d", p, ok, other)
	}
}

func TestLookupOfDotsAndMissingNames(t *testing.T) {
	f := newFS(build(rawTree()), nil)
	r := f.raw
	dir, _ := lookup(t, r, 0, "dir")
	sub, _ := lookup(t, r, dir, "sub")
	if got, _ := lookup(t, r, sub, "."); got != sub {
		t.Errorf(`"." of sub is inode %d, want %d`, got, sub)
	}
	if got, _ := lookup(t, r, sub, ".."); got != dir {
		t.Errorf(`".." of sub is inode %d, want %d`, got, dir)
	}
	if got, out := lookup(t, r, dir, ".."); got != 0 || out.Generation != 0 {
		t.Errorf(`".." of dir is inode %d generation %d, want the root's 0 and 0`, got, out.Generation)
	}
	if got, _ := lookup(t, r, 0, ".."); got != 0 {
		t.Errorf(`".." of the root is inode %d`, got)
	}
	// A name that is not there: a negative entry the kernel keeps.
	_, out := lookup(t, r, dir, "nothing")
	if out.NodeId != 0 || out.EntryTimeout() == 0 {
		t.Errorf("missing name: node %d, entry timeout %v", out.NodeId, out.EntryTimeout())
	}
	a, _ := lookup(t, r, dir, "a")
	var eo fuse.EntryOut
	if st := r.Lookup(nil, header(a), "x", &eo); st != fuse.ENOTDIR {
		t.Errorf("lookup in a file: %v, want ENOTDIR", st)
	}
	if got, out := lookup(t, r, a, "."); got != a || out.Generation != 1 {
		t.Errorf(`"." of a file is inode %d generation %d, want %d and 1`, got, out.Generation, a)
	}
	if st := r.Lookup(nil, &fuse.InHeader{NodeId: 1 << 40}, "x", &eo); st.Ok() {
		t.Error("lookup in a node that names no inode succeeded")
	}
	// ".." of a directory the kernel never found: not known, not made up.
	g := newFS(build(rawTree()), nil)
	if st := g.raw.Lookup(nil, header(sub), "..", &eo); st.Ok() {
		t.Error(`".." of a directory never found succeeded`)
	}
}

// readAll lists directory ino the way the kernel does: requests of size
// bytes, each from the offset of the last entry the one before returned,
// until one returns nothing. It returns the names and the requests made.
func readAll(t *testing.T, r *rawFS, ino uint32, size int, plus bool) (names []string, requests int) {
	t.Helper()
	var off uint64
	for requests = 1; ; requests++ {
		in := &fuse.ReadIn{InHeader: *header(ino), Offset: off, Size: uint32(size)}
		buf := make([]byte, size)
		out := fuse.NewDirEntryList(buf, off)
		var st fuse.Status
		if plus {
			st = r.ReadDirPlus(nil, in, out)
		} else {
			st = r.ReadDir(nil, in, out)
		}
		if !st.Ok() {
			t.Fatalf("listing inode %d at %d: %v", ino, off, st)
		}
		ents := parseDirents(out.Bytes(), plus)
		if len(ents) == 0 {
			return names, requests
		}
		for _, e := range ents {
			names = append(names, e.name)
			if e.off <= off {
				t.Fatalf("entry %q has offset %d, not past %d", e.name, e.off, off)
			}
			off = e.off
		}
	}
}

// dirent is one entry of a READDIR(PLUS) reply: its name, its offset and,
// in READDIRPLUS, the node ID given with it (0: none).
type dirent struct {
	name      string
	off, node uint64
}

// parseDirents reads a READDIR reply, or a READDIRPLUS one (each entry
// after a fuse.EntryOut).
func parseDirents(b []byte, plus bool) (ents []dirent) {
	for len(b) > 0 {
		var e dirent
		if plus {
			e.node = binary.LittleEndian.Uint64(b) // EntryOut.NodeId
			b = b[entryOutSize:]
		}
		// struct fuse_dirent: ino, off, namelen, type, then the name,
		// padded to 8 bytes.
		e.off = binary.LittleEndian.Uint64(b[8:])
		n := int(binary.LittleEndian.Uint32(b[16:]))
		e.name = string(b[24 : 24+n])
		ents = append(ents, e)
		b = b[(24+n+7)&^7:]
	}
	return ents
}

// entryOutSize: the fuse.EntryOut in front of each READDIRPLUS entry.
const entryOutSize = int(unsafe.Sizeof(fuse.EntryOut{}))

// A listing needs no handle: any request starts at its offset, so small
// replies resume where the last one ended, and READDIRPLUS gives the
// kernel a lookup of every entry it returns (none of "." and "..").
func TestListingsResumeAtAnyOffsetAndCountTheirLookups(t *testing.T) {
	for _, plus := range []bool{false, true} {
		for _, size := range []int{200, 400, 4096} {
			f := newFS(build(rawTree()), nil)
			r := f.raw
			dir, _ := lookup(t, r, 0, "dir")
			names, requests := readAll(t, r, dir, size, plus)
			want := []string{".", "..", "a", "b", "c", "d", "e", "sub"}
			if !slices.Equal(names, want) {
				t.Fatalf("plus %v, %d-byte replies: %q, want %q", plus, size, names, want)
			}
			if size == 200 && requests < 3 { // two with entries, one at the end
				t.Errorf("%d requests of 200 bytes for 8 entries", requests)
			}
			s, e := f.idx.Children(dir)
			for d := s; d < e; d++ {
				ino := f.idx.Dirents.Inode[d]
				want := uint32(0)
				if plus {
					want = 1
				}
				if n := f.held[ino].lookups.Load(); n != want {
					t.Errorf("plus %v, %d-byte replies: %s has %d lookups, want %d", plus, size, f.idx.Name(d), n, want)
				}
			}
			if n := f.held[dir].lookups.Load(); n != 1 {
				t.Errorf("listing dir counted %d lookups of it, want the 1 of its LOOKUP", n)
			}
		}
	}
}

// The kernel forgets nodes (memory, drop_caches); a node it forgot is
// found again by its path and read as before, under the same node ID.
func TestAForgottenNodeIsFoundAgain(t *testing.T) {
	es := rawTree()
	mnt, fsys := mountFS(t, build(es), Options{NoPushAhead: true})
	path := filepath.Join(mnt, "dir", "a")
	var st1 syscall.Stat_t
	if err := syscall.Stat(path, &st1); err != nil {
		t.Fatal(err)
	}
	d, _ := fsys.idx.Lookup(0, []byte("dir"))
	dir := fsys.idx.Dirents.Inode[d]
	d, _ = fsys.idx.Lookup(dir, []byte("a"))
	a := fsys.idx.Dirents.Inode[d]
	if !fsys.holds(a) {
		t.Fatal("the kernel looked a up, but it is not counted")
	}
	if st := fsys.raw.srv.Load().EntryNotify(nodeID(dir), "a"); !st.Ok() {
		t.Fatal(st)
	}
	for deadline := time.Now().Add(5 * time.Second); fsys.holds(a); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Skip("the kernel kept a")
		}
	}
	got, err := os.ReadFile(path)
	if err != nil || string(got) != "a" {
		t.Fatalf("reading a again: %q %v", got, err)
	}
	var st2 syscall.Stat_t
	if err := syscall.Stat(path, &st2); err != nil {
		t.Fatal(err)
	}
	if st2.Ino != st1.Ino || !fsys.holds(a) {
		t.Errorf("found again as inode %d (before %d), held %v", st2.Ino, st1.Ino, fsys.holds(a))
	}
}

// A file takes no ioctls: ENOTTY, which overlayfs's copy-up (and lsattr)
// take as "no flags", where ENOSYS makes copy-up fail.
func TestIoctlsAreNotForThisFilesystem(t *testing.T) {
	f := newFS(build(rawTree()), nil)
	in := &fuse.IoctlIn{InHeader: *header(0)}
	if st := f.raw.Ioctl(nil, in, nil, &fuse.IoctlOut{}, nil); st != fuse.Status(syscall.ENOTTY) {
		t.Errorf("IOCTL: %v, want ENOTTY", st)
	}
}

// manyDirs: n directories, each holding a file (listed first) and a
// subdirectory with a file of its own.
func manyDirs(n int) []entry {
	var es []entry
	for i := range n {
		es = append(es,
			entry{path: fmt.Sprintf("d%03d/a", i), mode: format.ModeReg | 0o644, data: "a", mtime: mtime},
			entry{path: fmt.Sprintf("d%03d/z/f", i), mode: format.ModeReg | 0o644, data: "f", mtime: mtime})
	}
	return es
}

// list lists directory ino for thread caller with READDIRPLUS in one
// request, as the kernel does, and says which entries came with a node.
func list(t *testing.T, r *rawFS, caller, ino uint32) (nodes map[string]bool) {
	t.Helper()
	nodes = map[string]bool{}
	in := &fuse.ReadIn{InHeader: *header(ino), Size: 4096}
	in.Caller.Pid = caller
	out := fuse.NewDirEntryList(make([]byte, 4096), 0)
	if st := r.ReadDirPlus(nil, in, out); !st.Ok() {
		t.Fatal(st)
	}
	for _, e := range parseDirents(out.Bytes(), true) {
		if e.name != "." && e.name != ".." {
			nodes[e.name] = e.node != 0
		}
	}
	return nodes
}

// A program that lists and never stats (find) gets names only after the
// first probe, and nodes again once it looks up an entry that came
// without one; one that stats what it lists (tar, du) keeps getting
// nodes, paying one LOOKUP a probe; push-ahead's own listings always
// have nodes.
func TestListingsGiveNodesToProgramsThatStat(t *testing.T) {
	const walks = 3 * probeEvery
	f := newFS(build(manyDirs(walks)), nil)
	r := f.raw
	dirs := make([]uint32, walks)
	for i := range dirs {
		dirs[i], _ = lookup(t, r, 0, fmt.Sprintf("d%03d", i))
	}
	const finder, stater = 100, 200
	var probes, names int
	for i, d := range dirs {
		got := list(t, r, finder, d)
		switch {
		case !got["a"] && got["z"]:
			probes++
		case !got["a"] && !got["z"]:
			names++
		}
		// The finder goes into z without looking at a.
		var out fuse.EntryOut
		h := header(d)
		h.Caller.Pid = finder
		r.Lookup(nil, h, "z", &out)
		if i == walks-1 {
			// It begins to stat: nodes from its next listing on.
			r.Lookup(nil, h, "a", &out)
		}
	}
	if probes != 1 || names != walks-probeEvery {
		t.Errorf("the finder got %d probes and %d listings of names, want 1 and %d", probes, names, walks-probeEvery)
	}
	if got := list(t, r, finder, 0); !got["d000"] {
		t.Error("after looking up an entry of a listing without nodes, the finder still gets names only")
	}

	probes = 0
	for _, d := range dirs {
		got := list(t, r, stater, d)
		if !got["z"] {
			t.Fatalf("the stater got a listing without nodes: %v", got)
		}
		if !got["a"] {
			probes++
		}
		var out fuse.EntryOut
		h := header(d)
		h.Caller.Pid = stater
		r.Lookup(nil, h, "a", &out) // lstat, in listing order
	}
	if probes != walks/probeEvery {
		t.Errorf("the stater was probed %d times in %d listings, want %d", probes, walks, walks/probeEvery)
	}

	f.push.listTid.Store(finder + 1)
	for range probeEvery + 1 {
		if got := list(t, r, finder+1, dirs[0]); !got["a"] || !got["z"] {
			t.Fatalf("push-ahead's listing came without nodes: %v", got)
		}
	}
}

// Through a mount: a walk that reads names only (find) leaves the kernel
// without the nodes of the files it passed, and everything it lists can
// still be read; a walk that stats everything ends with every file held.
func TestAWalkThatReadsNamesOnlyLeavesTheFilesNodes(t *testing.T) {
	const n = 2 * probeEvery
	mnt, fsys := mountFS(t, build(manyDirs(n)), Options{NoPushAhead: true})
	walk := func(stat bool) {
		// One thread, as one program is to the kernel.
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		for i := range n {
			dir := filepath.Join(mnt, fmt.Sprintf("d%03d", i))
			for _, d := range []string{dir, filepath.Join(dir, "z")} {
				es, err := os.ReadDir(d)
				if err != nil {
					t.Fatal(err)
				}
				for _, e := range es {
					if stat {
						if _, err := e.Info(); err != nil {
							t.Fatal(err)
						}
					}
				}
			}
		}
	}
	held := func() (files int) {
		for ino := range uint32(fsys.idx.Inodes.Count()) {
			if !fsys.idx.IsDir(ino) && fsys.holds(ino) {
				files++
			}
		}
		return files
	}
	walk(false)
	if h := held(); h > n {
		t.Errorf("after a walk that read names only the kernel holds %d of %d files", h, 2*n)
	}
	if got, err := os.ReadFile(filepath.Join(mnt, "d100", "z", "f")); err != nil || string(got) != "f" {
		t.Fatalf("reading a file listed without its node: %q %v", got, err)
	}
	walk(true)
	if h := held(); h != 2*n {
		t.Errorf("after a walk that stats everything the kernel holds %d of %d files", h, 2*n)
	}
}
