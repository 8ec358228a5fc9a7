package reader

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"arc/codec"
	"arc/format"
	"arc/internal/exclude"
	"arc/internal/testtree"
)

// fullTree has every entry type and awkward metadata.
func fullTree() []entry {
	e := []entry{
		{path: "", mode: format.ModeDir | 0o751, uid: 1234, gid: 2345, mtime: 1_500_000_000_000_000_001, atime: 1_500_000_000_000_000_002},
		dir("d"),
		reg("d/a", randBytes(5000, 1)),
		{path: "d/b-hardlink", link: "d/a"},
		{path: "d/c-dup", mode: format.ModeReg | 0o640, mtime: 7, atime: 8, dupOf: "d/a"},
		{path: "d/holey", mode: format.ModeReg | 0o644, mtime: 11, atime: 12, segs: []seg{
			{hole: 1 << 20}, {data: randBytes(5000, 3)}, {hole: 2 << 20},
		}},
		{path: "d/link", mode: format.ModeLink | 0o777, target: "../top", uid: 77, gid: 88, mtime: 1_400_000_000_000_000_003, atime: 1_400_000_000_000_000_004},
		{path: "d/fifo", mode: format.ModeFifo | 0o640, mtime: 21, atime: 22, uid: 5, gid: 6},
		{path: "d/chr", mode: format.ModeChr | 0o600, rdev: unix.Mkdev(1, 3), mtime: 31, atime: 32},
		{path: "d/setuid", mode: format.ModeReg | 0o4755 | 0o2000, uid: 4321, gid: 4321, mtime: 41, atime: 42, segs: []seg{{data: []byte("#!/bin/sh\n")}}},
		{path: "d/xattr", mode: format.ModeReg | 0o644, mtime: 51, atime: 52, segs: []seg{{data: []byte("x")}},
			xattrs: map[string]string{"user.one": "1", "user.two": "zwei", "trusted.t": "secret"}},
		{path: "d/ro-dir", mode: format.ModeDir | 0o555, mtime: 61, atime: 62},
		reg("d/ro-dir/inside", []byte("inside a read-only directory")),
		dir("d/sub"),
		reg("d/sub/x", randBytes(70_000, 4)),
		{path: "d/sticky", mode: format.ModeDir | 0o1777, mtime: 71, atime: 72},
		reg("top", randBytes(100_000, 5)),
		reg("empty", nil),
		reg("name with\nnewline \xff", []byte("odd name")),
	}
	return e
}

func openBuilt(t *testing.T, entries []entry, o buildOpts) (*Archive, *built) {
	t.Helper()
	b := buildArchive(t, t.TempDir(), "arc", entries, o)
	return openBuiltWith(t, b, Options{CacheSize: 1 << 20}), b
}

func lstat(t *testing.T, p string) *unix.Stat_t {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		t.Fatal(err)
	}
	return &st
}

// checkEntry compares an extracted entry with its archived inode.
func checkEntry(t *testing.T, a *Archive, dest, path string, chown bool) {
	t.Helper()
	x := a.Index()
	ino := inodeOf(t, a, path)
	st := lstat(t, filepath.Join(dest, path))
	mode := x.Inodes.Mode[ino]
	if st.Mode&unix.S_IFMT != mode&format.ModeType {
		t.Errorf("%q: type %o, want %o", path, st.Mode&unix.S_IFMT, mode&format.ModeType)
		return
	}
	if mode&format.ModeType != format.ModeLink {
		want := mode & format.ModePerm
		if !chown {
			want &^= unix.S_ISUID | unix.S_ISGID
		}
		if st.Mode&format.ModePerm != want {
			t.Errorf("%q: mode %o, want %o", path, st.Mode&format.ModePerm, want)
		}
	}
	if chown && (st.Uid != x.Inodes.UID[ino] || st.Gid != x.Inodes.GID[ino]) {
		t.Errorf("%q: owner %d:%d, want %d:%d", path, st.Uid, st.Gid, x.Inodes.UID[ino], x.Inodes.GID[ino])
	}
	if got := st.Mtim.Nano(); got != x.Inodes.Mtime[ino] {
		t.Errorf("%q: mtime %d, want %d", path, got, x.Inodes.Mtime[ino])
	}
	if got := st.Atim.Nano(); got != x.Inodes.Atime[ino] {
		t.Errorf("%q: atime %d, want %d", path, got, x.Inodes.Atime[ino])
	}
	switch mode & format.ModeType {
	case format.ModeReg:
		got, err := readNoAtime(filepath.Join(dest, path))
		if err != nil {
			t.Fatal(err)
		}
		want, err := readAll(a, ino, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%q: content differs", path)
		}
	case format.ModeLink:
		got, _ := os.Readlink(filepath.Join(dest, path))
		if got != string(x.Symlink(ino)) {
			t.Errorf("%q: target %q", path, got)
		}
	case format.ModeChr, format.ModeBlk:
		if st.Rdev != x.Inodes.Rdev[ino] {
			t.Errorf("%q: rdev %x, want %x", path, st.Rdev, x.Inodes.Rdev[ino])
		}
	}
}

// readNoAtime reads a file without touching its atime, so that checking
// one hardlink's content does not change what its other names show.
func readNoAtime(p string) ([]byte, error) {
	f, err := os.OpenFile(p, os.O_RDONLY|unix.O_NOATIME, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

func TestExtractRecreatesEveryEntryType(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for owners and device nodes")
	}
	a, _ := openBuilt(t, fullTree(), buildOpts{volumeSize: 8192})
	dest := filepath.Join(t.TempDir(), "out")
	var warns []error
	res, err := a.Extract(dest, ExtractOptions{Warn: func(err error) { warns = append(warns, err) }})
	if err != nil {
		t.Fatal(err)
	}
	if len(warns) != 0 {
		t.Fatalf("warnings: %v", warns)
	}
	a.Index().Walk(func(p []byte, d uint32) error {
		checkEntry(t, a, dest, string(p), true)
		return nil
	})
	checkEntry(t, a, dest, "", true)
	// Hardlinks share an inode; a duplicate under "copy" does not.
	if lstat(t, dest+"/d/a").Ino != lstat(t, dest+"/d/b-hardlink").Ino {
		t.Error("hardlink not recreated")
	}
	if lstat(t, dest+"/d/a").Ino == lstat(t, dest+"/d/c-dup").Ino {
		t.Error("duplicate hardlinked under copy")
	}
	// The sparse file keeps its holes.
	if st := lstat(t, dest+"/d/holey"); st.Blocks*512 >= 1<<20 {
		t.Errorf("holey file allocates %d bytes", st.Blocks*512)
	}
	var v [16]byte
	for _, kv := range [][2]string{{"user.one", "1"}, {"user.two", "zwei"}, {"trusted.t", "secret"}} {
		n, err := unix.Lgetxattr(dest+"/d/xattr", kv[0], v[:])
		if err != nil || string(v[:n]) != kv[1] {
			t.Errorf("xattr %s: %q %v", kv[0], v[:n], err)
		}
	}
	want := ExtractResult{Files: 10, Dirs: 4, Symlinks: 1, Others: 2, Hardlinks: 1, Bytes: 5000 + 5000 + 5000 + 10 + 1 + 28 + 70_000 + 100_000 + 8}
	if *res != want {
		t.Errorf("result %+v, want %+v", *res, want)
	}
	noneLent(t, a)
}

func TestExtractWithoutSameOwnerDropsSetuid(t *testing.T) {
	a, _ := openBuilt(t, fullTree(), buildOpts{})
	dest := t.TempDir()
	if _, err := a.Extract(dest, ExtractOptions{NoSameOwner: true, Paths: []string{"d/setuid"}}); err != nil {
		t.Fatal(err)
	}
	checkEntry(t, a, dest, "d/setuid", false)
	if st := lstat(t, dest+"/d/setuid"); st.Mode&(unix.S_ISUID|unix.S_ISGID) != 0 || st.Uid != uint32(os.Geteuid()) {
		t.Errorf("mode %o owner %d", st.Mode, st.Uid)
	}
}

// With "hardlink", a duplicate is linked to the first copy only where a
// link keeps its metadata: d/same has d/a's, d/c-dup another mode and
// mtime (a link would give it d/a's), d/suid d/a's bytes with setuid and
// another owner (a link would make d/a setuid). Of d/a's duplicates with
// xattrs, d/x2 has d/x1's and is linked to it; d/x3 (another value) and
// d/x4 (one more attribute) are not.
func TestExtractDedupLinks(t *testing.T) {
	a0 := fullTree()[2] // d/a
	withXattrs := func(path string, xattrs map[string]string) entry {
		return entry{path: path, mode: a0.mode, mtime: a0.mtime, atime: a0.atime, dupOf: "d/a", xattrs: xattrs}
	}
	tree := append(fullTree(),
		entry{path: "d/same", mode: a0.mode, mtime: a0.mtime, atime: a0.atime, dupOf: "d/a"},
		entry{path: "d/suid", mode: format.ModeReg | 0o4755, uid: 7, gid: 7, mtime: a0.mtime, atime: 3, dupOf: "d/a"},
		withXattrs("d/x1", map[string]string{"user.k": "v"}),
		withXattrs("d/x2", map[string]string{"user.k": "v"}),
		withXattrs("d/x3", map[string]string{"user.k": "w"}),
		withXattrs("d/x4", map[string]string{"user.k": "v", "user.l": ""}),
	)
	paths := []string{"d/a", "d/c-dup", "d/same", "d/suid", "d/x1", "d/x2", "d/x3", "d/x4"}
	for _, tc := range []struct {
		mode  string
		bytes int64
	}{{"copy", 8 * 5000}, {"hardlink", 6 * 5000}} {
		t.Run(tc.mode, func(t *testing.T) {
			a, _ := openBuilt(t, tree, buildOpts{})
			dest := t.TempDir()
			res, err := a.Extract(dest, ExtractOptions{DedupLinks: tc.mode, Paths: paths})
			if err != nil {
				t.Fatal(err)
			}
			ino := func(p string) uint64 { return lstat(t, dest+"/"+p).Ino }
			if linked := ino("d/a") == ino("d/same"); linked != (tc.mode == "hardlink") {
				t.Errorf("d/a and d/same (same metadata) share an inode: %v", linked)
			}
			for _, p := range []string{"d/c-dup", "d/suid", "d/x1", "d/x3", "d/x4"} {
				if ino(p) == ino("d/a") {
					t.Errorf("%s, whose metadata differ, was linked to d/a", p)
				}
			}
			if linked := ino("d/x1") == ino("d/x2"); linked != (tc.mode == "hardlink") {
				t.Errorf("d/x1 and d/x2 (same xattrs) share an inode: %v", linked)
			}
			for _, p := range []string{"d/x3", "d/x4"} {
				if ino(p) == ino("d/x1") {
					t.Errorf("%s, whose xattrs differ, was linked to d/x1", p)
				}
			}
			for _, p := range paths {
				checkEntry(t, a, dest, p, os.Geteuid() == 0)
			}
			if res.Bytes != tc.bytes {
				t.Fatalf("wrote %d bytes, want %d", res.Bytes, tc.bytes)
			}
		})
	}
	// The keys' hash only finds candidates; the attributes themselves
	// decide, as they must where two sets hash alike.
	a, _ := openBuilt(t, tree, buildOpts{})
	e := &extractor{a: a}
	for _, tc := range []struct {
		p, q string
		same bool
	}{{"d/x1", "d/x2", true}, {"d/a", "d/same", true}, {"d/x1", "d/x3", false}, {"d/x1", "d/x4", false}, {"d/x4", "d/x1", false}, {"d/a", "d/x1", false}} {
		if got := e.sameXattrs(inodeOf(t, a, tc.p), inodeOf(t, a, tc.q)); got != tc.same {
			t.Errorf("sameXattrs(%s, %s) = %v", tc.p, tc.q, got)
		}
	}
}

// A deep tree comes back whole: directories' modes and times set after
// their contents at every level (some read-only), files and a hardlink
// across levels. Extract reaches each path from the last one's open
// directories (dirChain), not by walking down from dest every time, and
// keeps few of them open: 1,000 levels come back, with 8 workers, under a
// limit of 512 open files.
func TestExtractDeepTree(t *testing.T) {
	var tree []entry
	p := ""
	for depth := 1; depth <= 1000; depth++ {
		p += "d/"
		mode := uint32(0o755)
		if depth%7 == 0 {
			mode = 0o555
		}
		tree = append(tree, entry{path: strings.TrimSuffix(p, "/"), mode: format.ModeDir | mode, mtime: int64(depth), atime: int64(depth)})
		if depth%50 == 0 {
			tree = append(tree, reg(p+"f", randBytes(3000, byte(depth))))
		}
	}
	tree = append(tree, entry{path: p + "link", link: strings.Repeat("d/", 50) + "f"})
	a, _ := openBuilt(t, tree, buildOpts{})
	dest := t.TempDir()
	t.Cleanup(func() { exec.Command("chmod", "-R", "u+w", dest).Run() })
	var err error
	testtree.WithOpenFiles(t, 512, func() { _, err = a.Extract(dest, ExtractOptions{Workers: 8}) })
	if err != nil {
		t.Fatal(err)
	}
	a.Index().Walk(func(p []byte, d uint32) error {
		checkEntry(t, a, dest, string(p), os.Geteuid() == 0)
		return nil
	})
	if lstat(t, dest+"/"+p+"link").Ino != lstat(t, dest+"/"+strings.Repeat("d/", 50)+"f").Ino {
		t.Error("the hardlink across 950 levels is a separate file")
	}
}

// chainOver is a dirChain at dest (root) over an archive of the
// directories on paths, each holding a file x, and the dirent of p's x.
func chainOver(t *testing.T, root int, paths ...string) (*dirChain, func(p string) uint32) {
	t.Helper()
	var entries []entry
	seen := map[string]bool{}
	for _, p := range paths {
		parts := strings.Split(p, "/")
		for i := range parts {
			if q := strings.Join(parts[:i+1], "/"); !seen[q] {
				seen[q] = true
				entries = append(entries, dir(q), reg(q+"/x", []byte("x")))
			}
		}
	}
	a, _ := openBuilt(t, entries, buildOpts{})
	e := &extractor{a: a}
	e.tables()
	return &dirChain{root: root, e: e}, func(p string) uint32 {
		t.Helper()
		d, err := a.Resolve(p + "/x")
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
}

// A dirChain that let the descriptors of its highest directories go goes
// back up through "..", and where that leads out of a directory moved
// meanwhile (not to the one it went down through), it walks down from dest
// again.
func TestDirChainGoesBackUpOnlyThroughWhatItWentDown(t *testing.T) {
	dest := t.TempDir()
	deep := "a/b/" + strings.Repeat("d/", 2*maxChainOpen) + "d"
	if err := os.MkdirAll(filepath.Join(dest, deep), 0o755); err != nil {
		t.Fatal(err)
	}
	root, err := unix.Open(dest, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(root)
	c, xOf := chainOver(t, root, deep)
	defer c.close()
	reaches := func(p, want string) {
		t.Helper()
		fd, _, err := c.parentOf(xOf(p))
		if err != nil {
			t.Fatal(err)
		}
		var st unix.Stat_t
		if unix.Fstat(fd, &st); st.Ino != lstat(t, filepath.Join(dest, want)).Ino {
			t.Fatalf("%s: reached another directory than %s", p, want)
		}
		if len(c.fds) > maxChainOpen {
			t.Fatalf("%s: %d directories open, want at most %d", p, len(c.fds), maxChainOpen)
		}
	}
	for _, p := range []string{deep, "a/b/d", deep, "a", deep} {
		reaches(p, p)
	}
	// b, which the chain let go, moves to dest; a new b takes its place.
	// From deep, ".." leads up to the moved b, then to dest, not to a.
	if err := os.Rename(filepath.Join(dest, "a/b"), filepath.Join(dest, "moved")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dest, "a/b"), 0o755); err != nil {
		t.Fatal(err)
	}
	reaches("a", "a")
	reaches("a/b", "a/b")
}

// A dirChain comes back up to the very directories it went down through,
// as the descriptors it let go would have led it: with the top of the
// tree renamed in place meanwhile (every ".." still leads where it did),
// each level above and below the last maxChainOpen is reached under its
// new name, at depths about maxChainOpen, and no descriptor is left open
// beyond the chain's. A chain that always walked down from dest again
// instead (a check on the way up that never matched) would not find "d".
func TestDirChainClimbsBackToTheDirectoriesItWentDown(t *testing.T) {
	openFDs := func() int {
		ents, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			t.Fatal(err)
		}
		return len(ents)
	}
	for _, depth := range []int{maxChainOpen - 1, maxChainOpen, maxChainOpen + 1, maxChainOpen + 2, 2*maxChainOpen + 1} {
		dest := t.TempDir()
		deep := strings.TrimSuffix(strings.Repeat("d/", depth), "/")
		if err := os.MkdirAll(filepath.Join(dest, deep), 0o755); err != nil {
			t.Fatal(err)
		}
		root, err := unix.Open(dest, unix.O_RDONLY|unix.O_DIRECTORY, 0)
		if err != nil {
			t.Fatal(err)
		}
		c, xOf := chainOver(t, root, deep)
		base := openFDs()
		if _, _, err := c.parentOf(xOf(deep)); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(filepath.Join(dest, "d"), filepath.Join(dest, "renamed")); err != nil {
			t.Fatal(err)
		}
		for level := depth; level >= 1; level-- {
			p := strings.TrimSuffix(strings.Repeat("d/", level), "/")
			fd, _, err := c.parentOf(xOf(p))
			if err != nil {
				t.Fatalf("depth %d, level %d: %v", depth, level, err)
			}
			var st unix.Stat_t
			unix.Fstat(fd, &st)
			if want := lstat(t, filepath.Join(dest, "renamed", strings.TrimPrefix(p, "d"))).Ino; st.Ino != want {
				t.Fatalf("depth %d, level %d: reached another directory than the one it went down through", depth, level)
			}
			if len(c.fds) > maxChainOpen || openFDs()-base != len(c.fds) {
				t.Fatalf("depth %d, level %d: %d descriptors open, the chain holds %d (at most %d)", depth, level, openFDs()-base, len(c.fds), maxChainOpen)
			}
		}
		c.close()
		if n := openFDs(); n != base {
			t.Fatalf("depth %d: %d descriptors left open after close", depth, n-base)
		}
		unix.Close(root)
	}
}

func listTree(t *testing.T, root string) []string {
	var out []string
	filepath.Walk(root, func(p string, info os.FileInfo, err error) error {
		if p != root {
			rel, _ := filepath.Rel(root, p)
			out = append(out, rel)
		}
		return nil
	})
	sort.Strings(out)
	return out
}

func TestExtractOnlyTheGivenPaths(t *testing.T) {
	a, _ := openBuilt(t, fullTree(), buildOpts{})
	dest := t.TempDir()
	if _, err := a.Extract(dest, ExtractOptions{Paths: []string{"d/sub", "top"}}); err != nil {
		t.Fatal(err)
	}
	got := strings.Join(listTree(t, dest), ",")
	if got != "d,d/sub,d/sub/x,top" {
		t.Fatalf("extracted %s", got)
	}
	checkEntry(t, a, dest, "d/sub/x", os.Geteuid() == 0)
	if _, err := a.Extract(t.TempDir(), ExtractOptions{Paths: []string{"nope"}}); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing path: %v", err)
	}
}

func TestExtractLeavesOutWhatThePatternsMatch(t *testing.T) {
	a, _ := openBuilt(t, fullTree(), buildOpts{})
	for _, tt := range []struct {
		name     string
		paths    []string
		patterns []string
		want     string
		excluded int64
	}{
		{"a name at any depth, and a directory with what lies below it", nil, []string{"a", "sub", "ro-dir/"},
			"d,d/b-hardlink,d/c-dup,d/chr,d/fifo,d/holey,d/link,d/setuid,d/sticky,d/xattr,empty,name with\\nnewline \\xff,top", 3},
		{"an anchored path and a class", nil, []string{"/d", "[et]*"},
			"name with\\nnewline \\xff", 3},
		{"a pattern taken back in", nil, []string{"d/*", "!d/sub"},
			"d,d/sub,d/sub/x,empty,name with\\nnewline \\xff,top", 11},
		{"within the given paths", []string{"d/sub", "top"}, []string{"x"},
			"d,d/sub,top", 1},
		{"counted within the given paths only", []string{"d/sub"}, []string{"x", "top", "a"},
			"d,d/sub", 1},
		{"a given path below a directory left out", []string{"d/sub"}, []string{"/d"},
			"", 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			l := &exclude.List{}
			for _, p := range tt.patterns {
				if err := l.Add(p); err != nil {
					t.Fatal(err)
				}
			}
			dest := t.TempDir()
			res, err := a.Extract(dest, ExtractOptions{Paths: tt.paths, Exclude: l, NoSameOwner: true})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, p := range listTree(t, dest) {
				got = append(got, strings.Trim(strconv.Quote(p), `"`))
			}
			if s := strings.Join(got, ","); s != tt.want {
				t.Errorf("extracted %s\nwant      %s", s, tt.want)
			}
			if res.Excluded != tt.excluded {
				t.Errorf("Excluded = %d, want %d", res.Excluded, tt.excluded)
			}
			if size, err := a.ExtractSize(ExtractOptions{Paths: tt.paths, Exclude: l}); err != nil || size != res.Bytes {
				t.Errorf("ExtractSize = %d, %v; the extraction wrote %d bytes", size, err, res.Bytes)
			}
		})
	}
}

// The progress total is what the extraction writes, with duplicates
// copied or linked.
func TestExtractSizeIsWhatTheExtractionWrites(t *testing.T) {
	data := randBytes(40_000, 7)
	a, _ := openBuilt(t, []entry{
		reg("a", data),
		{path: "b", mode: format.ModeReg | 0o644, mtime: 1_700_000_000_123_456_789, atime: 1, dupOf: "a"}, // linkable to a
		{path: "c", mode: format.ModeReg | 0o600, mtime: 5, dupOf: "a"},                                   // another mode: a copy
		{path: "h", link: "a"},
		reg("z", []byte("the rest")),
	}, buildOpts{})
	for _, links := range []string{"copy", "hardlink"} {
		res, err := a.Extract(t.TempDir(), ExtractOptions{DedupLinks: links, NoSameOwner: true})
		if err != nil {
			t.Fatal(err)
		}
		size, err := a.ExtractSize(ExtractOptions{DedupLinks: links})
		if err != nil || size != res.Bytes {
			t.Errorf("%s: ExtractSize = %d, %v; the extraction wrote %d bytes", links, size, err, res.Bytes)
		}
		if want := map[string]int64{"copy": 3*40_000 + 8, "hardlink": 2*40_000 + 8}[links]; res.Bytes != want {
			t.Errorf("%s: wrote %d bytes, want %d", links, res.Bytes, want)
		}
	}
}

// A hardlink whose first path is left out is written in full at the next.
func TestExtractWritesAHardlinkWhoseFirstPathIsExcluded(t *testing.T) {
	tree := fullTree()
	a, _ := openBuilt(t, tree, buildOpts{})
	l := &exclude.List{}
	if err := l.Add("/d/a"); err != nil {
		t.Fatal(err)
	}
	dest := t.TempDir()
	res, err := a.Extract(dest, ExtractOptions{Exclude: l, DedupLinks: "hardlink"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(filepath.Join(dest, "d/a")); err == nil {
		t.Error("d/a was extracted, but it is excluded")
	}
	want := tree[2].segs[0].data // d/a's
	for _, p := range []string{"d/b-hardlink", "d/c-dup"} {
		if got, err := os.ReadFile(filepath.Join(dest, p)); err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s: %d bytes, %v; want d/a's 5000", p, len(got), err)
		}
	}
	if res.Excluded != 1 {
		t.Errorf("Excluded = %d, want 1", res.Excluded)
	}
}

// Each block is let go of once the last file that reads it is written:
// after the extraction nothing is left in the cache, and every block was
// dropped once, not evicted. (Without read-ahead: a prefetch queued
// before a block's last use and run after it loads the block again, to
// be evicted in time, which a test cannot time.)
func TestExtractLetsEachBlockGoAfterItsLastFile(t *testing.T) {
	b := buildArchive(t, t.TempDir(), "arc", fullTree(), buildOpts{blockSize: 16 << 10})
	a := openBuiltWith(t, b, Options{CacheSize: 1 << 20, Prefetch: -1})
	blocks := a.idx.Blocks.Count()
	if blocks < 8 {
		t.Fatalf("only %d blocks: the test needs several", blocks)
	}
	if _, err := a.Extract(t.TempDir(), ExtractOptions{Workers: 1, NoSameOwner: true}); err != nil {
		t.Fatal(err)
	}
	st := a.CacheStats()
	if st.Bytes != 0 || st.Items != 0 {
		t.Errorf("after the extraction the cache holds %d blocks, %d bytes; want none", st.Items, st.Bytes)
	}
	if st.Drops != int64(blocks) || st.Evictions != 0 {
		t.Errorf("%d blocks dropped, %d evicted; want all %d dropped, none evicted", st.Drops, st.Evictions, blocks)
	}
}

// With several workers and read-ahead, a block that the others are done
// with is not decoded again for a slower one's read-ahead window: each
// block is decoded once.
func TestExtractDecodesEachBlockOnceWithSeveralWorkers(t *testing.T) {
	b := buildArchive(t, t.TempDir(), "arc", fullTree(), buildOpts{blockSize: 16 << 10})
	for range 5 {
		a := openBuiltWith(t, b, Options{CacheSize: 1 << 20})
		if _, err := a.Extract(t.TempDir(), ExtractOptions{Workers: 4, NoSameOwner: true}); err != nil {
			t.Fatal(err)
		}
		if st, blocks := a.CacheStats(), a.idx.Blocks.Count(); st.Loads != int64(blocks) || st.Evictions != 0 {
			t.Fatalf("%d blocks decoded %d times, %d evicted; want each once, none evicted", blocks, st.Loads, st.Evictions)
		}
	}
}

func TestExtractRefusesToClobberOrFollow(t *testing.T) {
	a, _ := openBuilt(t, fullTree(), buildOpts{})
	dest := t.TempDir()
	outside := t.TempDir()
	// A symlink planted where the archive has a directory must not be followed.
	if err := os.Symlink(outside, filepath.Join(dest, "d")); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Extract(dest, ExtractOptions{}); err == nil || !strings.Contains(err.Error(), "d:") {
		t.Fatalf("extracting through a planted symlink: %v", err)
	}
	if ents, _ := os.ReadDir(outside); len(ents) != 0 {
		t.Fatal("wrote outside dest")
	}
	os.Remove(filepath.Join(dest, "d"))

	// An existing non-empty file is refused, then replaced with Overwrite.
	os.WriteFile(filepath.Join(dest, "top"), []byte("precious"), 0o644)
	_, err := a.Extract(dest, ExtractOptions{Paths: []string{"top"}})
	if err == nil || !strings.Contains(err.Error(), "top") {
		t.Fatalf("clobbered an existing file: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(dest, "top")); string(b) != "precious" {
		t.Fatal("existing file changed")
	}
	// A file symlinked outside is replaced, not written through.
	os.Remove(filepath.Join(dest, "top"))
	os.Symlink(filepath.Join(outside, "victim"), filepath.Join(dest, "top"))
	if _, err := a.Extract(dest, ExtractOptions{Paths: []string{"top"}, Overwrite: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(outside, "victim")); err == nil {
		t.Fatal("wrote through a symlink")
	}
	checkEntry(t, a, dest, "top", os.Geteuid() == 0)
	// Extracting everything twice with Overwrite works (directories merge).
	for i := 0; i < 2; i++ {
		if _, err := a.Extract(dest, ExtractOptions{Overwrite: true}); err != nil {
			t.Fatalf("pass %d: %v", i, err)
		}
	}
}

// With overwrite, what dest had at a file's path is replaced only once the
// archive's file is written: the tree is made before the files are filled,
// so an extraction stopped halfway would otherwise leave empty every file of
// the user's that it had not reached. Each entry comes out either the
// archive's, whole, or as it was; nothing is left aside; a second run
// finishes.
func TestAnOverwriteStoppedHalfwayLeavesWhatItDidNotReplace(t *testing.T) {
	var entries []entry
	for i := range 8 {
		entries = append(entries, reg(fmt.Sprintf("f%d", i), randBytes(40_000, byte(i+1))))
	}
	entries = append(entries, entry{path: "h", link: "f5"}, entry{path: "s", mode: format.ModeLink | 0o777, target: "f0"})
	a, _ := openBuilt(t, entries, buildOpts{})
	want := contentOf(entries)
	want["h"] = want["f5"]
	dest := t.TempDir()
	old := map[string]string{}
	for _, e := range entries {
		old[e.path] = "old " + e.path
		if err := os.WriteFile(filepath.Join(dest, e.path), []byte(old[e.path]), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, err := a.Extract(dest, ExtractOptions{Overwrite: true, Workers: 1, Context: ctx, Progress: func(int64) { cancel() }})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("extract stopped after its first file: %v, want context.Canceled", err)
	}
	var replaced, kept []string
	for _, e := range entries[:9] {
		got, err := os.ReadFile(filepath.Join(dest, e.path))
		switch {
		case err != nil:
			t.Errorf("%s: %v", e.path, err)
		case string(got) == old[e.path]:
			kept = append(kept, e.path)
		case bytes.Equal(got, want[e.path]):
			replaced = append(replaced, e.path)
		default:
			t.Errorf("%s: %d bytes, neither what dest had nor the archive's %d", e.path, len(got), len(want[e.path]))
		}
	}
	t.Logf("replaced %v, kept %v", replaced, kept)
	if len(replaced) == 0 || len(kept) == 0 {
		t.Errorf("replaced %v and kept %v: want the first file written and the rest as they were", replaced, kept)
	}
	if target, err := os.Readlink(filepath.Join(dest, "s")); err != nil || target != "f0" {
		t.Errorf("s: %q, %v; want the archive's symlink (made whole at once)", target, err)
	}
	if slices.Contains(kept, "f5") != slices.Contains(kept, "h") {
		t.Errorf("f5 and its hardlink h: one kept, the other replaced (kept %v)", kept)
	}
	names := func() []string {
		ents, _ := os.ReadDir(dest)
		var n []string
		for _, e := range ents {
			n = append(n, e.Name())
		}
		return n
	}
	if n := names(); len(n) != len(entries) {
		t.Errorf("dest holds %v, want the archive's %d names and nothing aside", n, len(entries))
	}

	if _, err := a.Extract(dest, ExtractOptions{Overwrite: true}); err != nil {
		t.Fatal(err)
	}
	for p, b := range want {
		if got, err := os.ReadFile(filepath.Join(dest, p)); err != nil || !bytes.Equal(got, b) && p != "s" {
			t.Errorf("second run: %s: %d bytes, %v; want the archive's %d", p, len(got), err, len(b))
		}
	}
	if n := names(); len(n) != len(entries) {
		t.Errorf("second run: dest holds %v", n)
	}
}

// What overwrite moves aside goes by names the archive does not have in
// that directory: an archive holding .arcpack-replaced.N files (packed from
// a tree a killed extraction left them in) comes out exact over a dest
// that has its other files, and nothing is left aside.
func TestAnArchiveOfNamesLikeTheAsideOnesComesOutExact(t *testing.T) {
	// "-" sorts before ".": dirents 1 and 2, whose aside names were
	// .arcpack-replaced.1 and .2.
	entries := []entry{reg("-a", randBytes(3000, 1)), reg("-b", randBytes(3000, 2)), dir(".arcpack-replaced.2")}
	for i := range 6 {
		if i != 2 {
			entries = append(entries, reg(fmt.Sprintf(".arcpack-replaced.%d", i), randBytes(100, byte(10+i))))
		}
	}
	a, _ := openBuilt(t, entries, buildOpts{})
	dest := t.TempDir()
	for _, p := range []string{"-a", "-b"} {
		os.WriteFile(filepath.Join(dest, p), []byte("old "+p), 0o644)
	}
	if _, err := a.Extract(dest, ExtractOptions{Overwrite: true, Workers: 1}); err != nil {
		t.Fatal(err)
	}
	want := contentOf(entries)
	for p, b := range want {
		if got, err := os.ReadFile(filepath.Join(dest, p)); err != nil || !bytes.Equal(got, b) {
			t.Errorf("%s: %q, %v; want the archive's %d bytes", p, got, err, len(b))
		}
	}
	if n := treeOf(t, dest); len(n) != 1+len(entries) { // dest, then what it holds
		t.Errorf("dest holds %v, want the archive's %d entries and nothing aside", n, len(entries))
	}
}

// A file of the user's where the archive has a directory is moved aside
// too, and goes once the directory is made: nothing is left beside it.
func TestOverwriteReplacesAFileWhereTheArchiveHasADirectory(t *testing.T) {
	entries := []entry{dir("d"), reg("d/f", []byte("in d"))}
	a, _ := openBuilt(t, entries, buildOpts{})
	dest := t.TempDir()
	os.WriteFile(filepath.Join(dest, "d"), []byte("a file"), 0o644)
	if _, err := a.Extract(dest, ExtractOptions{Overwrite: true}); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(filepath.Join(dest, "d", "f")); err != nil || string(got) != "in d" {
		t.Errorf("d/f: %q, %v", got, err)
	}
	if n := treeOf(t, dest); len(n) != 3 {
		t.Errorf("dest holds %v", n)
	}
}

// The user's file where the archive has a directory stays aside until
// every file is written: an extraction stopped first leaves it, and says
// where, rather than lose it.
func TestAFileInADirectorysWayIsKeptWhenTheExtractionStops(t *testing.T) {
	entries := []entry{dir("D"), reg("D/f", randBytes(20_000, 1)), reg("D/g", randBytes(20_000, 2))}
	a, _ := openBuilt(t, entries, buildOpts{})
	dest := t.TempDir()
	os.WriteFile(filepath.Join(dest, "D"), []byte("old D"), 0o644)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var warns []string
	_, err := a.Extract(dest, ExtractOptions{Overwrite: true, Workers: 1, Context: ctx, Progress: func(int64) { cancel() },
		Warn: func(err error) { warns = append(warns, err.Error()) }})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("extract: %v, want context.Canceled", err)
	}
	kept, _ := filepath.Glob(filepath.Join(dest, ".arcpack-replaced.*"))
	if len(kept) != 1 {
		t.Fatalf("entries aside: %v, want the user's D", kept)
	}
	if b, _ := os.ReadFile(kept[0]); string(b) != "old D" {
		t.Errorf("%s holds %q, want the user's D", kept[0], b)
	}
	if j := strings.Join(warns, "\n"); !strings.Contains(j, "D: what was there before is left as "+filepath.Base(kept[0])) {
		t.Errorf("warnings:\n%s", j)
	}
}

// An entry moved aside goes as soon as the file replacing it is written,
// not at the end: replacing a tree takes about the room of the tree, not
// of two.
func TestWhatOverwriteMovedAsideGoesOnceItsReplacementIsWritten(t *testing.T) {
	var entries []entry
	for i := range 6 {
		entries = append(entries, reg(fmt.Sprintf("f%d", i), randBytes(20_000, byte(i+1))))
	}
	a, _ := openBuilt(t, entries, buildOpts{})
	dest := t.TempDir()
	for _, e := range entries {
		os.WriteFile(filepath.Join(dest, e.path), []byte("old"), 0o644)
	}
	aside := func() int {
		m, _ := filepath.Glob(filepath.Join(dest, ".arcpack-replaced.*"))
		return len(m)
	}
	var seen []int // entries aside as each file is written, one worker
	if _, err := a.Extract(dest, ExtractOptions{Overwrite: true, Workers: 1, Progress: func(int64) { seen = append(seen, aside()) }}); err != nil {
		t.Fatal(err)
	}
	if want := []int{6, 5, 4, 3, 2, 1}; !slices.Equal(seen, want) || aside() != 0 {
		t.Errorf("entries aside while the files were written: %v, then %d; want %v, then none", seen, aside(), want)
	}
}

// A file of the archive that comes out damaged does not replace the
// user's: what dest had there is put back, and the warning says so.
func TestOverwriteKeepsTheUsersFileWhereTheArchivesIsDamaged(t *testing.T) {
	entries := []entry{reg("a", randBytes(3000, 1)), reg("b", randBytes(50_000, 2)), {path: "h", link: "b"}}
	bt := buildArchive(t, t.TempDir(), "arc", entries, buildOpts{})
	x := bt.idx
	blk := x.BlockAt(x.Extents.Off[1] + 20_000) // inside b
	vol, fo := streamFileOffset(bt, int64(x.BlockStoredOff[blk])+1)
	flipByte(t, vol, fo)
	a := openBuiltWith(t, bt, Options{})
	dest := t.TempDir()
	for _, p := range []string{"a", "b", "h"} {
		os.WriteFile(filepath.Join(dest, p), []byte("old "+p), 0o644)
	}
	var warns []string
	res, err := a.Extract(dest, ExtractOptions{Overwrite: true, Workers: 1, Warn: func(err error) { warns = append(warns, err.Error()) }})
	if !errors.Is(err, ErrDamaged) || res.Damaged != 2 {
		t.Fatalf("err %v, result %+v", err, res)
	}
	for p, want := range map[string]string{"a": string(contentOf(entries)["a"]), "b": "old b", "h": "old h"} {
		if got, _ := os.ReadFile(filepath.Join(dest, p)); string(got) != want {
			t.Errorf("%s: %d bytes, want %d", p, len(got), len(want))
		}
	}
	if j := strings.Join(warns, "\n"); strings.Count(j, "what DEST had there is kept") != 2 {
		t.Errorf("warnings:\n%s", j)
	}
	if n := treeOf(t, dest); len(n) != 1+3 {
		t.Errorf("dest holds %v", n)
	}
}

func TestExtractOfDamagedArchiveWritesTheRest(t *testing.T) {
	entries := []entry{reg("a", randBytes(3000, 1)), reg("b", randBytes(50_000, 2)), reg("c", randBytes(3000, 3))}
	b := buildArchive(t, t.TempDir(), "arc", entries, buildOpts{})
	x := b.idx
	blk := x.BlockAt(x.Extents.Off[1] + 20_000) // inside b
	vol, fo := streamFileOffset(b, int64(x.BlockStoredOff[blk])+1)
	flipByte(t, vol, fo)
	a, err := Open(b.volumes[0], Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	dest := t.TempDir()
	var warns []string
	res, err := a.Extract(dest, ExtractOptions{Warn: func(err error) { warns = append(warns, err.Error()) }, Workers: 1})
	if !errors.Is(err, ErrDamaged) || res.Damaged != 1 {
		t.Fatalf("err %v, result %+v", err, res)
	}
	if len(warns) != 1 || !strings.HasPrefix(warns[0], "b: block") {
		t.Fatalf("warnings %q", warns)
	}
	for _, p := range []string{"a", "c"} {
		got, _ := os.ReadFile(filepath.Join(dest, p))
		if !bytes.Equal(got, contentOf(entries)[p]) {
			t.Fatalf("%s not extracted", p)
		}
	}
	// The damaged file keeps what lies before the damaged block, and a
	// read across the damage returns those bytes with its error.
	good := int(x.BlockRawOff[blk] - x.Extents.Off[1])
	want := contentOf(entries)["b"]
	if got, _ := os.ReadFile(filepath.Join(dest, "b")); !bytes.Equal(got, want[:good]) {
		t.Errorf("damaged b: %d bytes extracted, want its first %d (the bytes before the damaged block)", len(got), good)
	}
	p := make([]byte, len(want))
	n, err := a.ReadAt(inodeOf(t, a, "b"), p, 0)
	if n != good || !errors.Is(err, ErrDamaged) || !bytes.Equal(p[:n], want[:good]) {
		t.Errorf("ReadAt across the damage: %d bytes, %v; want the %d before it and the damage", n, err, good)
	}
	noneLent(t, a)
}

func TestVerifyNamesDamageAndAffectedFiles(t *testing.T) {
	entries := []entry{
		reg("a", randBytes(3000, 1)),
		reg("b", randBytes(50_000, 2)),
		{path: "b-link", link: "b"},
		{path: "b-dup", mode: format.ModeReg | 0o644, dupOf: "b"},
		reg("c", randBytes(60_000, 3)),
	}
	b := buildArchive(t, t.TempDir(), "arc", entries, buildOpts{volumeSize: 4096, codec: "raw"})
	a0, err := Open(b.volumes[0], Options{})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := a0.Verify(VerifyOptions{Workers: 3})
	a0.Close()
	if err != nil || !rep.Intact() || rep.Blocks != int64(b.idx.Blocks.Count()) {
		t.Fatalf("intact archive: %+v %v", rep, err)
	}

	x := b.idx
	blk := x.BlockAt(x.Extents.Off[1] + 40_000) // inside b
	vol, fo := streamFileOffset(b, int64(x.BlockStoredOff[blk])+5)
	flipByte(t, vol, fo)
	// And drop a volume that only c's data lies in.
	cv, _ := b.layout.Locate(int64(x.BlockStoredOff[x.BlockAt(x.Extents.Off[2]+30_000)]))
	os.Remove(b.volumes[cv-1])

	a, err := Open(b.volumes[0], Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	var progress int64
	rep, err = a.Verify(VerifyOptions{Progress: func(n int64) { progress += n }})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Intact() || !rep.IndexOK {
		t.Fatalf("report %+v", rep)
	}
	if progress != int64(x.DataSize()) {
		t.Errorf("progress %d of %d", progress, x.DataSize())
	}
	if got := strings.Join(rep.AffectedFiles, ","); got != "b,b-dup,b-link,c" {
		t.Errorf("affected %s", got)
	}
	if len(rep.MissingVolumes) != 1 || rep.MissingVolumes[0] != b.volumes[cv-1] {
		t.Errorf("missing %v", rep.MissingVolumes)
	}
	var sawFlip, sawMissing bool
	for _, d := range rep.Damaged {
		if d.Block == blk && d.Volume == vol && d.Frame == x.FrameOf(blk) {
			sawFlip = true
		}
		if d.Volume == b.volumes[cv-1] {
			sawMissing = true
		}
	}
	if !sawFlip || !sawMissing {
		t.Errorf("damage list %v", rep.Damaged)
	}
}

// TestVerifyAffectedFilesOfSharedExtentRuns: a file is affected when any
// extent of its run touches a damaged block, the last of many too, and so is
// every file sharing the run (whole-file duplicates); a run that ends where
// a touched one begins is not. Inodes may share
// runs, so the check must not walk each file's run on its own: a hostile
// index of n files sharing n extents would take n² steps.
func TestVerifyAffectedFilesOfSharedExtentRuns(t *testing.T) {
	const n, dups = 400, 40
	file := func(path string, segs []seg) entry {
		return entry{path: path, mode: format.ModeReg | 0o644, segs: segs}
	}
	dup := func(path, of string) entry {
		return entry{path: path, mode: format.ModeReg | 0o644, dupOf: of}
	}
	repeats := make([]seg, n) // 1-byte repeats of a's first byte, in block 0
	for i := range repeats {
		repeats[i] = seg{repeatAt: 0, repeatLen: 1}
	}
	tail := append(slices.Clone(repeats), seg{data: randBytes(5000, 9)}) // then bytes of its own, into block 1
	entries := []entry{reg("a", randBytes(3000, 1)), file("clean", repeats)}
	for i := range dups {
		entries = append(entries, dup(fmt.Sprintf("clean-%02d", i), "clean"))
	}
	entries = append(entries, file("tail", tail))
	want := []string{"tail"}
	for i := range dups {
		entries = append(entries, dup(fmt.Sprintf("tail-%02d", i), "tail"))
		want = append(want, fmt.Sprintf("tail-%02d", i))
	}
	// u-clean's run ends right where z-one's starts, and z-one's first
	// extent touches the damaged block: the runs' ends are exact.
	entries = append(entries, file("u-clean", repeats), file("z-one", []seg{{data: randBytes(10_000, 10)}}))
	want = append(want, "z-one")
	b := buildArchive(t, t.TempDir(), "arc", entries, buildOpts{codec: "raw"})
	a := openBuiltWith(t, b, Options{})
	x := a.Index()
	_, e := x.FileExtents(inodeOf(t, a, "tail"))
	blk := x.BlockAt(x.Extents.Off[e-1] + 4500)
	if blk == 0 || x.BlockAt(x.Extents.Off[0]) != 0 {
		t.Fatalf("layout: tail's own bytes in block %d", blk)
	}
	a.Close()
	vol, fo := streamFileOffset(b, int64(b.idx.BlockStoredOff[blk])+5)
	flipByte(t, vol, fo)

	a = openBuiltWith(t, b, Options{})
	rep, err := a.Verify(VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Damaged) != 1 || rep.Damaged[0].Block != blk {
		t.Fatalf("damaged %v, want block %d", rep.Damaged, blk)
	}
	if !slices.Equal(rep.AffectedFiles, want) {
		t.Errorf("affected %v\nwant %v", rep.AffectedFiles, want)
	}
}

// TestExtractLeavesExistingDirectoriesItHasNoMetadataFor: a directory
// already in dest keeps its owner and mode where the archive's are made up
// (implied: dest itself for the root holding several sources, a tar
// stream's unnamed parents) or where it is only on the way to the paths
// asked for. Restored, the made-up ones would hand dest (or /etc) to the
// user who packed the archive. One the extraction makes for an implied
// directory gets the recorded mode and nothing else; the archive's real
// directories get everything, over existing ones too.
func TestExtractLeavesExistingDirectoriesItHasNoMetadataFor(t *testing.T) {
	const packer = 4242
	made := func(path string) entry {
		return entry{path: path, mode: format.ModeDir | 0o755, uid: packer, gid: packer, mtime: 1e18, atime: 1e18, implied: true}
	}
	real := func(path string, perm uint32) entry {
		return entry{path: path, mode: format.ModeDir | perm, uid: 777, gid: 778, mtime: 5e17, atime: 5e17}
	}
	a, _ := openBuilt(t, []entry{
		made(""), made("etc"), reg("etc/hosts", []byte("127.0.0.1 localhost\n")),
		real("real", 0o750), reg("real/f", []byte("f")), // not existing's 0700
		real("sel", 0o711), real("sel/deep", 0o750), reg("sel/deep/f", []byte("g")),
	}, buildOpts{})
	root := os.Geteuid() == 0
	// existing makes directories in dest first, mode 0700 (owned by 1111
	// as root), as a user's or the system's own.
	existing := func(t *testing.T, dest string, paths ...string) {
		for _, p := range paths {
			q := filepath.Join(dest, p)
			if err := os.MkdirAll(q, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(q, 0o700); err != nil {
				t.Fatal(err)
			}
			if root {
				if err := os.Chown(q, 1111, 1111); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	// want checks path's permission bits and, as root, its owner.
	want := func(t *testing.T, dest, path string, perm uint32, uid uint32) {
		t.Helper()
		st := lstat(t, filepath.Join(dest, path))
		if st.Mode&0o7777 != perm {
			t.Errorf("%q: mode %o, want %o", path, st.Mode&0o7777, perm)
		}
		if root && st.Uid != uid {
			t.Errorf("%q: owner %d, want %d", path, st.Uid, uid)
		}
	}
	me := uint32(os.Geteuid())
	archived := func(u uint32) uint32 { // the owner a real directory gets
		if root {
			return u
		}
		return me
	}
	t.Run("into existing directories", func(t *testing.T) {
		dest := t.TempDir()
		existing(t, dest, ".", "etc", "real")
		if _, err := a.Extract(dest, ExtractOptions{}); err != nil {
			t.Fatal(err)
		}
		want(t, dest, ".", 0o700, 1111)
		want(t, dest, "etc", 0o700, 1111)
		want(t, dest, "real", 0o750, archived(777)) // restored over it
		want(t, dest, "sel", 0o711, archived(777))
	})
	t.Run("into a new dest", func(t *testing.T) {
		dest := filepath.Join(t.TempDir(), "new")
		if _, err := a.Extract(dest, ExtractOptions{}); err != nil {
			t.Fatal(err)
		}
		for _, p := range []string{".", "etc"} {
			want(t, dest, p, 0o755, me)
			if st := lstat(t, filepath.Join(dest, p)); st.Mtim.Nano() == 1e18 {
				t.Errorf("%q has the made-up time", p)
			}
		}
		want(t, dest, "real", 0o750, archived(777))
	})
	// As mkdir -p and tar -x make parents no member names: less the umask.
	t.Run("into a new dest, under umask 077", func(t *testing.T) {
		defer syscall.Umask(syscall.Umask(0o077))
		dest := filepath.Join(t.TempDir(), "new")
		if _, err := a.Extract(dest, ExtractOptions{}); err != nil {
			t.Fatal(err)
		}
		for _, p := range []string{".", "etc"} {
			want(t, dest, p, 0o700, me)
		}
		want(t, dest, "real", 0o750, archived(777)) // the archive's own
	})
	t.Run("a path whose parent exists", func(t *testing.T) {
		dest := t.TempDir()
		existing(t, dest, "sel")
		if _, err := a.Extract(dest, ExtractOptions{Paths: []string{"sel/deep"}}); err != nil {
			t.Fatal(err)
		}
		want(t, dest, "sel", 0o700, 1111)
		want(t, dest, "sel/deep", 0o750, archived(777))
	})
	t.Run("a path whose parent is made", func(t *testing.T) {
		dest := t.TempDir()
		if _, err := a.Extract(dest, ExtractOptions{Paths: []string{"sel/deep", "etc/hosts"}}); err != nil {
			t.Fatal(err)
		}
		want(t, dest, "sel", 0o711, archived(777))
		want(t, dest, "etc", 0o755, me)
	})
}

// With Overwrite, a directory in dest where the archive has a file, link,
// symlink or FIFO is left as it is (what is inside is not the archive's):
// that entry is skipped with a warning, and everything else is extracted;
// a hardlink or duplicate whose first path was skipped is written in full.
func TestExtractSkipsAnEntryThatADirectoryStandsIn(t *testing.T) {
	content := randBytes(5000, 9)
	a, _ := openBuilt(t, []entry{
		reg("a", content), {path: "b", link: "a"}, {path: "c", mode: format.ModeReg | 0o644, mtime: reg("a", nil).mtime, dupOf: "a"},
		{path: "d", mode: format.ModeLink | 0o777, target: "a"},
		{path: "f", mode: format.ModeFifo | 0o600},
		reg("z", []byte("the rest")),
	}, buildOpts{})
	dest := t.TempDir()
	for _, d := range []string{"a", "d", "f"} {
		if err := os.MkdirAll(filepath.Join(dest, d, "mine"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	var warnings []string
	res, err := a.Extract(dest, ExtractOptions{Overwrite: true, DedupLinks: "hardlink", Warn: func(err error) { warnings = append(warnings, err.Error()) }})
	if err != nil {
		t.Fatal(err)
	}
	if res.Skipped != 3 || len(warnings) != 3 {
		t.Errorf("skipped %d, warnings %q; want the 3 entries a directory stands in", res.Skipped, warnings)
	}
	for _, d := range []string{"a", "d", "f"} {
		if _, err := os.Stat(filepath.Join(dest, d, "mine")); err != nil {
			t.Errorf("%s: the directory's own content: %v", d, err)
		}
	}
	for _, p := range []string{"b", "c"} {
		if got, err := os.ReadFile(filepath.Join(dest, p)); err != nil || !bytes.Equal(got, content) {
			t.Errorf("%s: %d bytes, %v; want a's content", p, len(got), err)
		}
	}
	if b, c := lstat(t, filepath.Join(dest, "b")), lstat(t, filepath.Join(dest, "c")); b.Ino != c.Ino {
		t.Error("c is not linked to b, the first of its content created")
	}
	if got, _ := os.ReadFile(filepath.Join(dest, "z")); string(got) != "the rest" {
		t.Errorf("z: %q", got)
	}
}

// A file made in a directory with a default ACL inherits an ACL; one the
// archive gives none (where it recorded xattrs) comes out without it, as
// it went in, whether the directory is dest as the user keeps it or one
// an earlier extraction made.
func TestExtractedFilesKeepNoInheritedACL(t *testing.T) {
	// user::rwx, user:1234:r--, group::r-x, mask::r-x, other::r-x
	acl := "\x02\x00\x00\x00" + "\x01\x00\x07\x00\xff\xff\xff\xff" + "\x02\x00\x04\x00\xd2\x04\x00\x00" +
		"\x04\x00\x05\x00\xff\xff\xff\xff" + "\x10\x00\x05\x00\xff\xff\xff\xff" + "\x20\x00\x05\x00\xff\xff\xff\xff"
	dest := filepath.Join(t.TempDir(), "out")
	os.Mkdir(dest, 0o755)
	if err := unix.Setxattr(dest, "system.posix_acl_default", []byte(acl), 0); err != nil {
		t.Skipf("no POSIX ACLs here: %v", err)
	}
	a, _ := openBuilt(t, []entry{
		dir("d"),
		reg("d/plain", []byte("p")),
		{path: "d/x", mode: format.ModeReg | 0o644, segs: []seg{{data: []byte("x")}}, xattrs: map[string]string{"user.k": "v"}},
	}, buildOpts{})
	for _, run := range []string{"into a directory with a default ACL", "again, over the first"} {
		if _, err := a.Extract(dest, ExtractOptions{Overwrite: true, Warn: func(err error) { t.Errorf("%s: warning %v", run, err) }}); err != nil {
			t.Fatalf("%s: %v", run, err)
		}
		for _, p := range []string{"d/plain", "d/x", "d"} {
			for _, key := range []string{"system.posix_acl_access", "system.posix_acl_default"} {
				if n, err := unix.Lgetxattr(filepath.Join(dest, p), key, nil); err == nil && n > 0 && (key == "system.posix_acl_access" || p == "d") {
					t.Errorf("%s: %s has %s, inherited: the archive gives it none", run, p, key)
				}
			}
		}
	}
}

// A directory in dest where the archive has a file is left as it is, with
// or without overwrite (what is in it is not the archive's): the entry is
// skipped with a warning that does not suggest overwrite, and the rest
// comes out.
func TestADirectoryInTheWayIsLeftAndTheRestExtracted(t *testing.T) {
	a, _ := openBuilt(t, []entry{reg("f", []byte("file")), reg("g", []byte("g"))}, buildOpts{})
	for _, overwrite := range []bool{false, true} {
		dest := t.TempDir()
		os.Mkdir(filepath.Join(dest, "f"), 0o755)
		var warns []string
		res, err := a.Extract(dest, ExtractOptions{Overwrite: overwrite, Warn: func(err error) { warns = append(warns, err.Error()) }})
		if err != nil {
			t.Fatalf("overwrite %v: %v", overwrite, err)
		}
		if len(warns) != 1 || !strings.Contains(warns[0], "exists and is a directory") || strings.Contains(warns[0], "overwrite") || res.Skipped != 1 {
			t.Errorf("overwrite %v: warnings %q, %d skipped", overwrite, warns, res.Skipped)
		}
		if b, err := os.ReadFile(filepath.Join(dest, "g")); err != nil || string(b) != "g" {
			t.Errorf("overwrite %v: g %q %v", overwrite, b, err)
		}
	}
}

// deepChain writes an archive whose root holds depth nested directories,
// each called name (all names one run of the blob, as a hostile index may
// have them), and opens it.
func deepChain(t *testing.T, depth int, name string) *Archive {
	t.Helper()
	x := &format.Index{Params: []format.KV{{Key: "tool", Value: "reader test"}}, Blob: []byte(name)}
	in := &x.Inodes
	for i := 0; i <= depth; i++ {
		start, count := uint64(i+1), uint32(1)
		if i == depth {
			start, count = 0, 0
		}
		in.Mode = append(in.Mode, format.ModeDir|0o755)
		in.UID, in.GID = append(in.UID, 0), append(in.GID, 0)
		in.Mtime, in.Atime = append(in.Mtime, 1e18), append(in.Atime, 1e18)
		in.Size, in.Rdev = append(in.Size, 0), append(in.Rdev, 0)
		in.DataStart, in.DataCount = append(in.DataStart, start), append(in.DataCount, count)
		in.XattrStart, in.XattrCount = append(in.XattrStart, 0), append(in.XattrCount, 0)
		n := uint16(len(name))
		if i == 0 {
			n = 0
		}
		x.Dirents.Inode = append(x.Dirents.Inode, uint32(i))
		x.Dirents.NameStart = append(x.Dirents.NameStart, 0)
		x.Dirents.NameLen = append(x.Dirents.NameLen, n)
	}
	if err := x.Derive(); err != nil {
		t.Fatal(err)
	}
	raw := format.EncodeIndex(x)
	stored, err := codec.CompressIndex(raw)
	if err != nil {
		t.Fatal(err)
	}
	f := format.Footer{IndexSize: uint64(len(stored)), IndexRawSize: uint64(len(raw)),
		IndexChecksum: codec.Checksum(stored), Version: format.Version, VolumeCount: 1}
	rand.Read(f.ID[:])
	f.StreamSize = uint64(len(stored) + format.FooterSize)
	fb, _ := f.MarshalBinary()
	hb, _ := (&format.VolumeHeader{Version: format.Version, Number: 1, ID: f.ID}).MarshalBinary()
	path := format.VolumeName(filepath.Join(t.TempDir(), "arc"), 1)
	if err := os.WriteFile(path, slices.Concat(hb, stored, fb), 0o644); err != nil {
		t.Fatal(err)
	}
	a, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

// Extract keeps its own stack and names entries by dirent, not by path:
// with the goroutine stack held to 1 MiB, a recursive walk died of a stack
// overflow (a fatal error) in a tree a hostile index makes in 2 MB, and
// building and keeping every entry's path string took memory (and time)
// the square of the depth: 2,000 levels of 255-byte names allocated 1 GB
// from an index of 160 kB.
func TestExtractOfADeepTreeIsLinearInItsDepth(t *testing.T) {
	for _, c := range []struct {
		name  string
		depth int
		comp  string
	}{
		{"deeper than a recursive walk's stack", 25_000, "d"},
		{"long names, paths of half a megabyte", 2_000, strings.Repeat("n", format.MaxNameLen)},
	} {
		t.Run(c.name, func(t *testing.T) {
			a := deepChain(t, c.depth, c.comp)
			dest := t.TempDir()
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			var res *ExtractResult
			var err error
			func() {
				defer debug.SetMaxStack(debug.SetMaxStack(1 << 20))
				res, err = a.Extract(dest, ExtractOptions{Workers: 1})
			}()
			runtime.ReadMemStats(&after)
			if err != nil {
				t.Fatal(err)
			}
			if res.Dirs != int64(c.depth) {
				t.Errorf("%d directories extracted, want %d", res.Dirs, c.depth)
			}
			// Linear: a few hundred bytes a level (and the worker's 4 MiB buffer).
			if alloc, limit := after.TotalAlloc-before.TotalAlloc, uint64(8<<20+1024*c.depth); alloc > limit {
				t.Errorf("extract allocated %d MiB, want at most %d MiB", alloc>>20, limit>>20)
			}
			// The bottom is there, reached a level at a time; and the tree
			// goes, from the bottom up (os.RemoveAll holds a descriptor a
			// level).
			fd, err := unix.Open(dest, unix.O_RDONLY|unix.O_DIRECTORY, 0)
			if err != nil {
				t.Fatal(err)
			}
			level := 0
			for ; level < c.depth; level++ {
				next, err := unix.Openat(fd, c.comp, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW, 0)
				if err != nil {
					t.Errorf("level %d: %v", level+1, err)
					break
				}
				unix.Close(fd)
				fd = next
			}
			for ; level > 0; level-- {
				up, err := unix.Openat(fd, "..", unix.O_RDONLY|unix.O_DIRECTORY, 0)
				unix.Close(fd)
				if err != nil {
					t.Fatal(err)
				}
				fd = up
				if err := unix.Unlinkat(fd, c.comp, unix.AT_REMOVEDIR); err != nil {
					t.Fatal(err)
				}
			}
			unix.Close(fd)
		})
	}
}

// An extraction refused for an entry dest already has makes nothing: it
// is refused before the first entry is made, wherever in the walk the
// entry lies (a file, a symlink, a non-directory where the archive has a
// directory), so that dest holds only what it held, and the same
// extraction runs once the entry is out of the way. Empty regular files,
// as an interrupted extraction leaves them, are replaced.
func TestARefusedExtractionMakesNothing(t *testing.T) {
	a, _ := openBuilt(t, []entry{
		dir("a"), reg("a/f", []byte("f")), dir("a/sub"), reg("a/sub/g", []byte("g")),
		dir("m"), reg("m/h", []byte("h")),
		{path: "z-link", mode: format.ModeLink | 0o777, target: "a/f"},
	}, buildOpts{})
	for _, tc := range []struct {
		name, path string // what dest has in the way, made as a file holding "mine"
		parents    []string
	}{
		{"a file where the archive has one, deep in the walk", "m/h", []string{"m"}},
		{"a file where the archive has a symlink, last in the walk", "z-link", nil},
		{"a file where the archive has a directory", "a/sub", []string{"a"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dest := t.TempDir()
			for _, p := range tc.parents {
				os.MkdirAll(filepath.Join(dest, p), 0o755)
			}
			os.WriteFile(filepath.Join(dest, tc.path), []byte("mine"), 0o644)
			os.WriteFile(filepath.Join(dest, "empty-left"), nil, 0o600)
			before := treeOf(t, dest)
			_, err := a.Extract(dest, ExtractOptions{})
			if err == nil || !errors.Is(err, fs.ErrExist) && !strings.Contains(err.Error(), "not a directory") || !strings.Contains(err.Error(), tc.path) {
				t.Fatalf("extract: %v, want a refusal naming %s", err, tc.path)
			}
			if after := treeOf(t, dest); !slices.Equal(after, before) {
				t.Errorf("dest changed by a refused extraction:\n%v\nwas\n%v", after, before)
			}
			os.Remove(filepath.Join(dest, tc.path))
			if _, err := a.Extract(dest, ExtractOptions{}); err != nil {
				t.Fatalf("again, the way clear: %v", err)
			}
			for _, p := range []string{"a/f", "a/sub/g", "m/h", "z-link"} {
				checkEntry(t, a, dest, p, os.Geteuid() == 0)
			}
		})
	}
	// Empty regular files in the way are what an interrupted run leaves.
	dest := t.TempDir()
	os.MkdirAll(filepath.Join(dest, "a/sub"), 0o755)
	os.WriteFile(filepath.Join(dest, "a/sub/g"), nil, 0o600)
	if _, err := a.Extract(dest, ExtractOptions{}); err != nil {
		t.Fatalf("over an empty file: %v", err)
	}
	checkEntry(t, a, dest, "a/sub/g", os.Geteuid() == 0)
}

// treeOf lists dest's entries: path, type and size, sorted.
func treeOf(t *testing.T, dest string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(dest, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		st, _ := os.Lstat(p)
		out = append(out, fmt.Sprintf("%s %v %d", p, st.Mode().Type(), st.Size()))
		return nil
	})
	slices.Sort(out)
	return out
}

// Damage names every path it reaches: a damaged file's hardlinks and, with
// "hardlink", the duplicates linked to it (and their own hardlinks), which
// come out as short as the file; verify names them all too.
func TestExtractNamesEveryPathOfADamagedFile(t *testing.T) {
	data := randBytes(50_000, 5)
	entries := []entry{
		reg("a", data),
		{path: "a-link", link: "a"},
		{path: "b", mode: format.ModeReg | 0o644, mtime: 1_700_000_000_123_456_789, atime: 1_700_000_001_000_000_001, dupOf: "a"},
		{path: "b-link", link: "b"},
		reg("c", randBytes(3000, 6)),
	}
	b := buildArchive(t, t.TempDir(), "arc", entries, buildOpts{codec: "raw"})
	x := b.idx
	blk := x.BlockAt(x.Extents.Off[0] + 40_000)
	vol, fo := streamFileOffset(b, int64(x.BlockStoredOff[blk])+5)
	flipByte(t, vol, fo)
	a := openBuiltWith(t, b, Options{})
	for _, mode := range []string{"copy", "hardlink"} {
		t.Run(mode, func(t *testing.T) {
			var named []string
			res, err := a.Extract(t.TempDir(), ExtractOptions{DedupLinks: mode, Warn: func(err error) {
				named = append(named, strings.SplitN(err.Error(), ":", 2)[0])
			}})
			if !errors.Is(err, ErrDamaged) {
				t.Fatalf("extract: %v", err)
			}
			slices.Sort(named)
			if want := []string{"a", "a-link", "b", "b-link"}; !slices.Equal(named, want) || res.Damaged != 4 {
				t.Errorf("damage named %v (%d damaged), want %v", named, res.Damaged, want)
			}
		})
	}
}

// The mode is set without following a symlink put in an entry's place
// after it was made (whoever may rename in its directory can): as root,
// setuid bits would land on the file the symlink points to, outside dest.
// The swap happens in the warning about an xattr the system refuses,
// between the owner and the mode.
func TestTheModeIsNotSetThroughASymlinkSwappedIn(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the owner restored keeps the setuid bit")
	}
	a, _ := openBuilt(t, []entry{{path: "x", mode: format.ModeReg | 0o4755, uid: 65534, gid: 65534, mtime: 1, atime: 1,
		segs: []seg{{data: []byte("x")}}, xattrs: map[string]string{"system.posix_acl_access": "not an ACL"}}}, buildOpts{})
	dest, outside := t.TempDir(), filepath.Join(t.TempDir(), "victim")
	os.WriteFile(outside, []byte("v"), 0o644)
	swapped := false
	_, err := a.Extract(dest, ExtractOptions{Warn: func(err error) {
		if !swapped && strings.HasPrefix(err.Error(), "x: xattr") {
			swapped = true
			os.Rename(filepath.Join(dest, "x"), filepath.Join(dest, "x.moved"))
			os.Symlink(outside, filepath.Join(dest, "x"))
		}
	}})
	if !swapped {
		t.Fatalf("no xattr warning to swap in (%v)", err)
	}
	if st, _ := os.Stat(outside); st.Mode()&(os.ModeSetuid|0o111) != 0 {
		t.Errorf("the file outside dest is %v now", st.Mode())
	}
}

// Past the links a filesystem takes to one file (ext4: 65,000), the
// duplicates linked with "hardlink" and an archive's own hardlinks get
// files of their own, the latter with a warning, instead of ending the
// extraction with the files still empty.
func TestLinksPastTheFilesystemsLimitBecomeCopies(t *testing.T) {
	if testing.Short() {
		t.Skip("makes 130,000 links")
	}
	const n = 65_010
	dest := t.TempDir()
	var st unix.Statfs_t
	if unix.Statfs(dest, &st) != nil || st.Type != unix.EXT4_SUPER_MAGIC {
		t.Skip("the link limit tested is ext4's")
	}
	entries := []entry{reg("a", []byte("content"))}
	a0 := entries[0]
	for i := range n {
		entries = append(entries, entry{path: fmt.Sprintf("d%05d", i), mode: a0.mode, mtime: a0.mtime, atime: a0.atime, dupOf: "a"})
	}
	for i := range n {
		entries = append(entries, entry{path: fmt.Sprintf("l%05d", i), link: "a"})
	}
	a, _ := openBuilt(t, entries, buildOpts{})
	var warns []string
	res, err := a.Extract(dest, ExtractOptions{DedupLinks: "hardlink", Warn: func(err error) { warns = append(warns, err.Error()) }})
	if err != nil {
		t.Fatalf("extract: %v", err)
	}
	for _, p := range []string{"a", fmt.Sprintf("d%05d", n-1), fmt.Sprintf("l%05d", n-1)} {
		if b, err := os.ReadFile(filepath.Join(dest, p)); err != nil || string(b) != "content" {
			t.Errorf("%s: %q %v", p, b, err)
		}
	}
	// In name order: a; the duplicates linked to a until it is full, the
	// rest to a copy of their own; the hardlinks find a full, so the first
	// (warned) links to that copy, as a duplicate would, and so do the
	// next until it is full too; the last ones (the second warning) to a
	// third file.
	const limit = 65_000 // ext4's links to one file
	inodes := map[uint64]uint64{}
	ents, err := os.ReadDir(dest)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		var st unix.Stat_t
		if err := unix.Lstat(filepath.Join(dest, e.Name()), &st); err != nil {
			t.Fatal(err)
		}
		inodes[st.Ino] = st.Nlink
	}
	if len(ents) != 2*n+1 || len(inodes) != 3 || inodes[lstat(t, filepath.Join(dest, "a")).Ino] != limit || inodes[lstat(t, filepath.Join(dest, "d64999")).Ino] != limit {
		t.Errorf("%d paths on %d files (links each: %v); want %d paths on 3, the first two full at %d", len(ents), len(inodes), inodes, 2*n+1, limit)
	}
	if res.Files != 3 || res.Hardlinks != 2*n-2 {
		t.Errorf("counted %d files and %d links; want 3 and %d", res.Files, res.Hardlinks, 2*n-2)
	}
	want := []string{"l00000: a hardlink of a, written as a copy", fmt.Sprintf("l%05d: a hardlink of l00000, written as a copy", 2*limit-n-1)}
	if len(warns) != len(want) {
		t.Fatalf("warnings %q; want %d, for %q", warns, len(want), want)
	}
	for i, w := range want {
		if !strings.Contains(warns[i], w) {
			t.Errorf("warning %q; want it to say %q", warns[i], w)
		}
	}
}

// A file the extraction made, replaced by a symlink before its content is
// written (something else writing in DEST), is not written through, and
// the error says so rather than "too many levels of symbolic links".
func TestAFileSwappedForASymlinkBeforeItsContentIsSaidAsSuch(t *testing.T) {
	a, _ := openBuilt(t, []entry{reg("a", []byte("first")), reg("b", []byte("second"))}, buildOpts{})
	dest, outside := t.TempDir(), filepath.Join(t.TempDir(), "victim")
	os.WriteFile(outside, []byte("v"), 0o644)
	swapped := false
	_, err := a.Extract(dest, ExtractOptions{Workers: 1, NoSameOwner: true, Progress: func(int64) {
		if !swapped {
			swapped = true
			os.Remove(filepath.Join(dest, "b"))
			os.Symlink(outside, filepath.Join(dest, "b"))
		}
	}})
	if err == nil || !strings.Contains(err.Error(), "b: replaced by a symlink since the extraction made it") {
		t.Errorf("extract: %v; want b said to be replaced", err)
	}
	if got, _ := os.ReadFile(outside); string(got) != "v" {
		t.Errorf("the file outside dest holds %q", got)
	}
}

// An extraction whose cache holds less than one block still writes every
// file whole.
func TestExtractWithACacheSmallerThanABlockRestoresTheTree(t *testing.T) {
	src, vol := packTree(t, testtree.Options{Seed: 5, Files: 40, LargeSize: 700 << 10, Dups: 6, NoXattrs: true})
	a, err := Open(vol, Options{CacheSize: 16 << 10}) // blocks of 64 KiB
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	dest := t.TempDir()
	root := os.Geteuid() == 0
	if _, err := a.Extract(dest, ExtractOptions{Workers: 8}); err != nil {
		t.Fatal(err)
	}
	if err := testtree.Compare(src, dest, testtree.CompareOptions{IgnoreOwner: !root}).Err(); err != nil {
		t.Fatal(err)
	}
	if st := a.CacheStats(); st.Items != 0 {
		t.Errorf("%d blocks left in the cache after the extraction", st.Items)
	}
}

// An extraction's read-ahead goes to a batch decoder (a GPU engine) in
// batches, and what it decodes is checked: wrong bytes from it never
// reach a file.
func TestExtractReadsAheadThroughTheBatchDecoder(t *testing.T) {
	var entries []entry
	for i := range 200 {
		entries = append(entries, reg(fmt.Sprintf("f%03d", i), randBytes(3000, byte(i))))
	}
	b := buildArchive(t, t.TempDir(), "arc", entries, buildOpts{blockSize: 4096, frameBlocks: 8})
	for _, broken := range []bool{false, true} {
		var calls, blocks atomic.Int64
		a := openBuiltWith(t, b, Options{DecodeBatch: countingDecoder(broken, &calls, &blocks)})
		dest := t.TempDir()
		if _, err := a.Extract(dest, ExtractOptions{Workers: 4, NoSameOwner: true}); err != nil {
			t.Fatalf("broken=%v: %v", broken, err)
		}
		for _, e := range entries {
			got, err := os.ReadFile(filepath.Join(dest, e.path))
			if err != nil || !bytes.Equal(got, dataOf(e.segs)) {
				t.Fatalf("broken=%v: %s differs (%v)", broken, e.path, err)
			}
		}
		if calls.Load() == 0 || blocks.Load() <= calls.Load() {
			t.Errorf("broken=%v: %d batch calls for %d blocks; want batches of several", broken, calls.Load(), blocks.Load())
		}
	}
}

// Files sharing a long extent run (whole-file duplicates; a hostile index
// shares one among thousands) come back whole, their holes as holes; a
// run of holes alone is a size set.
func TestFilesSharingALongRunOfExtentsComeBackWhole(t *testing.T) {
	var mixed, holes []seg
	for i := range 128 {
		if i%2 == 0 {
			mixed = append(mixed, seg{data: randBytes(300+i, byte(i))})
		} else {
			mixed = append(mixed, seg{hole: 8192})
		}
		holes = append(holes, seg{hole: 4096})
	}
	entries := []entry{
		{path: "mixed", mode: format.ModeReg | 0o644, segs: mixed},
		{path: "holes", mode: format.ModeReg | 0o644, segs: holes},
	}
	for i := range 5 {
		entries = append(entries,
			entry{path: fmt.Sprintf("mixed-%d", i), mode: format.ModeReg | 0o644, dupOf: "mixed"},
			entry{path: fmt.Sprintf("holes-%d", i), mode: format.ModeReg | 0o644, dupOf: "holes"})
	}
	a, _ := openBuilt(t, entries, buildOpts{blockSize: 4096})
	dest := t.TempDir()
	if _, err := a.Extract(dest, ExtractOptions{Workers: 4, NoSameOwner: true}); err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		src := e
		if e.dupOf != "" {
			src = entries[slices.IndexFunc(entries, func(o entry) bool { return o.path == e.dupOf })]
		}
		got, err := os.ReadFile(filepath.Join(dest, e.path))
		if err != nil || !bytes.Equal(got, dataOf(src.segs)) {
			t.Fatalf("%s differs (%v)", e.path, err)
		}
		if strings.HasPrefix(e.path, "holes") {
			if st := lstat(t, filepath.Join(dest, e.path)); st.Blocks != 0 || st.Size != int64(len(holes))*4096 {
				t.Errorf("%s: %d blocks, size %d; want a hole of %d bytes", e.path, st.Blocks, st.Size, len(holes)*4096)
			}
		}
	}
}

// A file larger than the destination's filesystem takes is left
// incomplete with a warning, and the files after it are written: the
// extraction went on no further.
func TestAFileTooLargeForTheDestinationIsLeftIncomplete(t *testing.T) {
	dest := t.TempDir()
	probe := filepath.Join(dest, "probe")
	if f, err := os.Create(probe); err != nil {
		t.Fatal(err)
	} else if err := f.Truncate(1 << 50); err == nil {
		f.Close()
		t.Skip("the temporary directory's filesystem takes files of 1 PiB")
	} else {
		f.Close()
	}
	os.Remove(probe)
	entries := []entry{
		reg("a", randBytes(5000, 1)),
		{path: "b-huge", mode: format.ModeReg | 0o644, segs: []seg{{hole: 1 << 50}, {data: []byte("end")}}},
		reg("c", randBytes(7000, 2)),
	}
	a, _ := openBuilt(t, entries, buildOpts{blockSize: 4096})
	var warned []string
	res, err := a.Extract(dest, ExtractOptions{Workers: 1, NoSameOwner: true, Warn: func(err error) { warned = append(warned, err.Error()) }})
	if err != nil {
		t.Fatal(err)
	}
	if res.Incomplete != 1 || res.Skipped != 0 || len(warned) != 1 || !strings.Contains(warned[0], "b-huge: ") || !strings.Contains(warned[0], "larger than the destination's filesystem takes; left incomplete") {
		t.Errorf("%d incomplete, %d skipped, warned %q; want b-huge left incomplete and said", res.Incomplete, res.Skipped, warned)
	}
	for _, e := range []entry{entries[0], entries[2]} {
		if got, err := os.ReadFile(filepath.Join(dest, e.path)); err != nil || !bytes.Equal(got, dataOf(e.segs)) {
			t.Errorf("%s differs (%v)", e.path, err)
		}
	}
}

// A file's xattrs that the destination refuses are said one by one up to
// maxXattrWarnings, then in one line counting the rest.
func TestRefusedXattrsOfAFileAreCountedPastAFew(t *testing.T) {
	xs := map[string]string{}
	for i := range 3 * maxXattrWarnings {
		xs[fmt.Sprintf("nosuchnamespace.a%02d", i)] = "v" // EOPNOTSUPP on Linux
	}
	a, _ := openBuilt(t, []entry{{path: "f", mode: format.ModeReg | 0o644, segs: []seg{{data: []byte("x")}}, xattrs: xs}}, buildOpts{})
	var warned []string
	if _, err := a.Extract(t.TempDir(), ExtractOptions{NoSameOwner: true, Warn: func(err error) { warned = append(warned, err.Error()) }}); err != nil {
		t.Fatal(err)
	}
	if len(warned) != maxXattrWarnings+1 || !strings.Contains(warned[maxXattrWarnings], fmt.Sprintf("f: %d more xattrs not restored", 2*maxXattrWarnings)) {
		t.Errorf("%d warnings, the last %q; want %d and a count of the rest", len(warned), warned[len(warned)-1], maxXattrWarnings+1)
	}
}

// An owner of 4294967295 ((uid_t)-1, which a tar stream can carry) is no
// owner a file can have: chown takes it for "unchanged" and the file kept
// the extracting user's, in silence. It is warned about; the other id of
// the pair is still given.
func TestExtractWarnsOfAnOwnerNoFileCanHave(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("restoring owners needs root")
	}
	f := reg("minus-one", randBytes(10, 1))
	f.uid, f.gid = math.MaxUint32, 4343
	a, _ := openBuilt(t, []entry{f}, buildOpts{})
	dest := t.TempDir()
	var warnings []string
	if _, err := a.Extract(dest, ExtractOptions{Warn: func(err error) { warnings = append(warnings, err.Error()) }}); err != nil {
		t.Fatal(err)
	}
	st := lstat(t, dest+"/minus-one")
	if st.Uid != 0 || st.Gid != 4343 {
		t.Errorf("owner %d:%d, want 0:4343 (the uid left, the gid given)", st.Uid, st.Gid)
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], "minus-one: owner 4294967295:4343: 4294967295 is no id a file can have") {
		t.Errorf("warnings %q", warnings)
	}
}
