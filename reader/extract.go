package reader

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/maphash"
	"io/fs"
	"math"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"arc/format"
	"arc/internal/exclude"
)

// ExtractOptions control Extract.
type ExtractOptions struct {
	// Paths are the subtrees to extract, relative to the archive root;
	// empty extracts everything. Their parent directories are created too.
	Paths []string
	// Exclude leaves out of them the entries whose archive path its
	// patterns match, and what lies below a directory it leaves out; nil
	// leaves out none.
	Exclude *exclude.List
	// DedupLinks says how whole-file duplicates (files sharing one extent
	// range) come back: "copy" (default) writes each, "hardlink" writes the
	// first and links the others to it where their metadata are the same
	// (mode, owner, mtime, xattrs; a link shares them all), copies where
	// they differ. Access times are not compared: linked files have the
	// first one's.
	DedupLinks string
	// SameOwner restores uid/gid (and with them setuid/setgid bits, as tar
	// does). Running as root implies it unless NoSameOwner is set.
	SameOwner   bool
	NoSameOwner bool
	// Overwrite replaces existing non-directory entries; without it an
	// existing non-empty file (or any other existing non-directory) is an
	// error, found before anything is made.
	Overwrite bool
	// Progress receives the content bytes written since its last call
	// (from one goroutine at a time); nil = none.
	Progress func(bytes int64)
	// Warn receives non-fatal problems (device nodes without root, xattrs the
	// destination refuses, damaged files); nil = discard.
	Warn func(error)
	// Workers writing file content in parallel; 0 = 4×GOMAXPROCS, at most 16.
	Workers int
	// Context, once done, stops the extraction between entries and between
	// the pieces (up to 4 MiB) of a file: Extract puts back the modes of
	// the directories it made writable and returns the context's error.
	// What was made stays, the files not filled yet empty. nil: never.
	Context context.Context
}

// ExtractResult counts what Extract created.
type ExtractResult struct {
	Files, Dirs, Symlinks, Others int64
	Hardlinks                     int64 // links made: archived hardlinks and, with "hardlink", duplicates
	Bytes                         int64 // content bytes written (holes excluded)
	Skipped                       int64 // entries that could not be created (warned)
	Incomplete                    int64 // paths of files left incomplete: larger than the destination's filesystem takes (warned)
	Damaged                       int64 // paths of files whose content hit damage (warned): a file's links each count
	Excluded                      int64 // entries Exclude left out, not counting what lies below a directory left out
}

// extractor holds one extraction's state.
type extractor struct {
	a      *Archive
	opt    ExtractOptions
	root   int // fd of dest
	chown  bool
	isRoot bool
	res    ExtractResult
	// chainOpen: the directories each dirChain keeps open (chainBudget).
	chainOpen int
	// destExisted: dest was there before the extraction (see dirMeta).
	// destWidened: dest was the user's and lacked u+rwx, so it was
	// widened (see Extract); destMode is its mode before.
	destExisted, destWidened bool
	destMode                 uint32

	mu      sync.Mutex // guards res counters updated by workers and warn/progress
	dirs    []madeDir  // the directories made or reused, in creation order
	jobs    []contentJob
	links   dirChain          // open directories: createTree's way to the targets of links, then dirMeta's
	firstOf map[uint32]uint32 // inode → its first extracted dirent
	// linked: the dirents linked to each one that was created (hardlinks
	// of its inode, and with "hardlink" duplicates of its content), for
	// damage to name every path it reaches; linkOwner, the other way. Both
	// are complete before writeContent reads them.
	linked    map[uint32][]uint32
	linkOwner map[uint32]uint32
	// dupFirst: for "hardlink", the first dirents of the files extracted
	// under each key, one per distinct set of xattrs (almost always one);
	// dupSeed, the seed of the keys' xattr hashes, new each extraction so
	// that no index can be made to fill one key's list.
	dupFirst map[dupKey][]uint32
	dupSeed  maphash.Seed
	// sums answers for any file its data bytes and where its data
	// starts (runSums); xattrHashes: the hash of each xattr run, once,
	// however many inodes share it (dupKeyOf).
	sumsOnce    sync.Once
	sums        *runSums
	xattrHashes map[[2]uint32]uint64
	dest        string // as the caller gave it, for messages
	umask       uint32 // for the directories the archive made up (dirMeta)
	// parents and depth of each dirent (the root's are 0): entries are
	// named by dirent, not by path, whose strings would cost the square of
	// the depth; path builds one for a message.
	parents, depth []uint32
	// aside: what dest had where the archive has its entries, moved
	// aside by overwrite until what replaces it is whole (aside.go).
	aside asides
}

// tables fills e's parent and depth of each dirent.
func (e *extractor) tables() {
	e.parents = e.a.parentTable()
	e.depth = make([]uint32, len(e.parents))
	for d := 1; d < len(e.depth); d++ { // a parent's row is smaller
		e.depth[d] = e.depth[e.parents[d]] + 1
	}
}

// path is dirent d's archive path, for messages (dest as given for dest
// itself: "/" read as the filesystem's root).
func (e *extractor) path(d uint32) string {
	if d == 0 {
		return e.dest
	}
	return e.a.Path(d)
}

// umask is the process's file mode creation mask, read from /proc (reading
// it with umask(2) sets it for a moment, for every goroutine); 022 where
// /proc does not say.
func umask() uint32 {
	b, err := os.ReadFile("/proc/self/status")
	if err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "Umask:"); ok {
				if m, err := strconv.ParseUint(strings.TrimSpace(v), 8, 32); err == nil {
					return uint32(m)
				}
			}
		}
	}
	return 0o022
}

// madeDir is a directory of the extraction, whose metadata are set last.
type madeDir struct {
	d   uint32 // dirent; 0 is the root, dest itself
	ino uint32
	// existed: dest had a directory there before this extraction.
	// onPath: only on the way to the selected paths, not selected itself.
	existed, onPath bool
	// widened: an existing directory of ours that denied us reading,
	// writing or going through it (an earlier extraction's read-only
	// one) was given u+rwx to be filled; mode is its permission bits
	// before.
	widened bool
	mode    uint32
}

// dupKey is what files must share to be extracted as one inode with
// DedupLinks "hardlink": the content (one extent range) and every piece of
// metadata a link shares. Linking on content alone would give a file
// another's mode (setuid bits too), owner, times and xattrs (file
// capabilities too).
//
// The xattrs enter as a hash that only finds candidates: a file is linked
// to one whose attributes compare equal byte for byte (sameXattrs). Kept
// whole in the key, they would cost a hostile index's rows × 64 KiB a file
// (inodes may share one run, and its rows one value), held for every key.
type dupKey struct {
	start, count   uint64 // extent range
	mode, uid, gid uint32
	mtime          int64
	xattrs         uint64 // maphash of the names and values, each length-prefixed
}

func (e *extractor) dupKeyOf(ino uint32, start, count uint64) dupKey {
	x := e.a.idx
	k := dupKey{start: start, count: count, mode: x.Inodes.Mode[ino], uid: x.Inodes.UID[ino], gid: x.Inodes.GID[ino], mtime: x.Inodes.Mtime[ino]}
	if xs, xe := x.XattrRange(ino); xe > xs {
		// Inodes may share an xattr run: hashed once (a hostile index's
		// thousand files sharing 10,000 values of 64 KiB each hashed
		// 650 GB).
		if h, ok := e.xattrHashes[[2]uint32{xs, xe}]; ok {
			k.xattrs = h
			return k
		}
		var h maphash.Hash
		h.SetSeed(e.dupSeed)
		var n [binary.MaxVarintLen64]byte
		for i := xs; i < xe; i++ {
			for _, f := range [][]byte{x.XattrName(i), x.XattrValue(i)} {
				h.Write(binary.AppendUvarint(n[:0], uint64(len(f))))
				h.Write(f)
			}
		}
		k.xattrs = h.Sum64()
		if e.xattrHashes == nil {
			e.xattrHashes = map[[2]uint32]uint64{}
		}
		e.xattrHashes[[2]uint32{xs, xe}] = k.xattrs
	}
	return k
}

// runSums answers, for any file's extent run, its data bytes (holes not
// counted) and the stream offset where its data starts, in constant time,
// from prefix sums made once over the index's extents. Inodes may share a
// run, or runs may overlap (whole-file duplicates; a hostile index made
// 20,000 files share 200,000 hole extents, which took 24 s to extract when
// each file's run was walked, and for the order of the files, at every
// comparison of the sort): nothing is walked per file but what writing it
// walks.
type runSums struct {
	x *format.Index
	// holes[i]: the hole bytes of the extents before i; nextData[i]: the
	// first data extent at i or after. Both nil where the index has no
	// holes (most): every extent is data.
	holes, nextData []uint64
}

func newRunSums(x *format.Index) *runSums {
	r := &runSums{x: x, holes: x.HoleSums()}
	if r.holes == nil {
		return r
	}
	n := x.Extents.Count()
	r.nextData = make([]uint64, n+1)
	r.nextData[n] = uint64(n)
	for i := n - 1; i >= 0; i-- {
		r.nextData[i] = r.nextData[i+1]
		if x.Extents.Off[i] != format.Hole {
			r.nextData[i] = uint64(i)
		}
	}
	return r
}

// data is the data bytes of run [s,end). (Modulo 2^64, as ExtentEnd:
// within one file exact, its size checked.)
func (r *runSums) data(s, end uint64) int64 {
	n := r.x.ExtentEnd[end] - r.x.ExtentEnd[s]
	if r.holes != nil {
		n -= r.holes[end] - r.holes[s]
	}
	return int64(n)
}

// first is the stream offset of run [s,end)'s first data extent; 0 for a
// run of holes alone.
func (r *runSums) first(s, end uint64) uint64 {
	i := s
	if r.nextData != nil {
		i = r.nextData[s]
	}
	if i < end {
		return r.x.Extents.Off[i]
	}
	return 0
}

// runSumsOf returns the extraction's runSums, made at the first call.
func (e *extractor) runSumsOf() *runSums {
	e.sumsOnce.Do(func() { e.sums = newRunSums(e.a.idx) })
	return e.sums
}

// fileData is the data bytes of regular file ino (holes not counted).
func (e *extractor) fileData(ino uint32) int64 {
	s, end := e.a.idx.FileExtents(ino)
	return e.runSumsOf().data(s, end)
}

// jobBlocks lists the blocks whose bytes regular file ino holds, each
// once: a walk of its extents, as writing it is (none for a file of holes
// alone).
func (e *extractor) jobBlocks(ino uint32) []uint32 {
	x := e.a.idx
	s, end := x.FileExtents(ino)
	if e.runSumsOf().data(s, end) == 0 {
		return nil
	}
	var out []uint32
	for i := s; i < end; i++ {
		off, n := x.Extents.Off[i], x.Extents.Len[i]
		if off == format.Hole || n == 0 {
			continue
		}
		for b := x.BlockAt(off); ; b++ {
			out = append(out, b)
			if x.BlockRawOff[b+1] >= off+n {
				break
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// sameXattrs reports whether inodes a and b have the same extended
// attributes, names and values.
func (e *extractor) sameXattrs(a, b uint32) bool {
	x := e.a.idx
	as, ae := x.XattrRange(a)
	bs, be := x.XattrRange(b)
	if ae-as != be-bs {
		return false
	}
	for i := range ae - as {
		if !bytes.Equal(x.XattrName(as+i), x.XattrName(bs+i)) || !bytes.Equal(x.XattrValue(as+i), x.XattrValue(bs+i)) {
			return false
		}
	}
	return true
}

type contentJob struct {
	d, ino uint32 // dirent, inode
	first  uint64 // where its data starts in the unique stream (the order files are written in)
}

// Extract recreates the archive (or the subtrees opt.Paths) below dest.
func (a *Archive) Extract(dest string, opt ExtractOptions) (*ExtractResult, error) {
	switch opt.DedupLinks {
	case "":
		opt.DedupLinks = "copy"
	case "copy", "hardlink":
	default:
		return nil, fmt.Errorf("dedup links %q: want copy or hardlink", opt.DedupLinks)
	}
	if opt.Workers <= 0 {
		// Writing files is mostly waiting on the filesystem: more workers
		// than cores keep the disk and the decoders busy.
		opt.Workers = min(4*runtime.GOMAXPROCS(0), 16)
	}
	if opt.Warn == nil {
		opt.Warn = func(error) {}
	}
	if opt.Progress == nil {
		opt.Progress = func(int64) {}
	}
	if opt.Context == nil {
		opt.Context = context.Background()
	}
	e := &extractor{a: a, opt: opt, isRoot: os.Geteuid() == 0, dest: dest, umask: umask(),
		firstOf: map[uint32]uint32{}, linked: map[uint32][]uint32{}, linkOwner: map[uint32]uint32{},
		dupFirst: map[dupKey][]uint32{}, dupSeed: maphash.MakeSeed()}
	e.tables()
	e.chown = (opt.SameOwner || e.isRoot) && !opt.NoSameOwner
	_, err := os.Stat(dest)
	e.destExisted = err == nil
	if err := os.MkdirAll(dest, 0o755); err != nil {
		return nil, err
	}
	sel, err := e.selection()
	if err != nil {
		return nil, err
	}
	if len(sel.excluded) > 0 {
		if _, e.res.Excluded, err = e.measure(sel); err != nil {
			return nil, err
		}
	}
	// dest itself, where it is the user's and an earlier extraction left it
	// without u+rwx (as archived), is widened as the directories below it
	// are: to be opened, looked into and filled; put back by dirMeta, or by
	// unwiden if the extraction stops. Before it is opened: opening may
	// need u+r. dest may be a symlink the user chose; nothing below it is
	// followed.
	if e.destExisted && !e.isRoot {
		var st unix.Stat_t
		if unix.Stat(dest, &st) == nil && st.Uid == uint32(os.Geteuid()) && st.Mode&0o700 != 0o700 {
			if err := unix.Chmod(dest, st.Mode&0o7777|0o700); err != nil {
				return nil, fmt.Errorf("%s: chmod: %w", e.path(0), err)
			}
			e.destMode, e.destWidened = st.Mode&0o7777, true
		}
	}
	root, err := unix.Open(dest, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		if e.destWidened {
			unix.Chmod(dest, e.destMode)
		}
		return nil, fmt.Errorf("%s: %w", dest, err)
	}
	defer unix.Close(root)
	e.root = root
	// The workers' chains, the tree walk's and the links'.
	e.chainOpen = chainBudget(e.opt.Workers + 2)
	e.links = dirChain{root: root, e: e}
	defer e.links.close()

	if err := e.createTree(sel); err != nil {
		e.settle(false, false)
		e.unwiden()
		return &e.res, err
	}
	e.settle(true, false) // what is whole already: symlinks and nodes
	e.aside.index(e)
	err = e.writeContent()
	e.settle(false, err == nil)
	if err != nil {
		e.unwiden()
		return &e.res, err
	}
	// Directories last, deepest first, so that their times and modes
	// (perhaps read-only) hold after their contents are in place. In this
	// order a directory comes after everything below it, so the chain
	// (createTree's, idle now) never goes through one whose mode is set.
	for i := len(e.dirs) - 1; i >= 0; i-- {
		if err := e.dirMeta(e.dirs[i]); err != nil {
			e.putBack(e.dirs[:i]) // those above it, not done yet
			return &e.res, err
		}
	}
	if e.res.Damaged > 0 {
		files := "files"
		if e.res.Damaged == 1 {
			files = "file"
		}
		return &e.res, fmt.Errorf("%d %s could not be fully extracted: %w", e.res.Damaged, files, ErrDamaged)
	}
	return &e.res, nil
}

// unwiden puts back the modes of the directories widen changed, deepest
// first, where the extraction stops before dirMeta would: a user's
// directory must not stay writable because an extraction into it failed.
func (e *extractor) unwiden() { e.putBack(e.dirs) }

// putBack gives the directories of dirs that widen changed their modes
// back, the last first (deepest first, in the order of a walk).
func (e *extractor) putBack(dirs []madeDir) {
	for i := len(dirs) - 1; i >= 0; i-- {
		if md := dirs[i]; md.widened {
			dirfd, name, err := e.root, ".", error(nil)
			if md.d != 0 {
				dirfd, name, err = e.links.parentOf(md.d)
			}
			if err == nil {
				err = e.chmodEntry(dirfd, name, md.d, md.mode)
			}
			if err != nil {
				e.warn(fmt.Errorf("%s: mode not put back to %04o: %w", e.path(md.d), md.mode, err))
			}
		}
	}
}

func (e *extractor) warn(err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.opt.Warn(err)
}

// selection decides what to extract: whole subtrees under the selected
// dirents, and the directories on the way to them.
type selection struct {
	all     bool
	subtree map[uint32]bool // dirents whose whole subtree is extracted
	onPath  map[uint32]bool // ancestors of selected dirents
	// excluded: dirents ExtractOptions.Exclude leaves out, the highest
	// ones (what lies below them is never walked).
	excluded map[uint32]bool
}

func (e *extractor) selection() (*selection, error) {
	s := &selection{subtree: map[uint32]bool{}, onPath: map[uint32]bool{}, excluded: e.excluded()}
	if len(e.opt.Paths) == 0 {
		s.all = true
		return s, nil
	}
	parents := e.a.parentTable()
	for _, p := range e.opt.Paths {
		d, err := e.a.Resolve(p)
		if err != nil {
			return nil, err
		}
		if d == 0 {
			s.all = true
			return s, nil
		}
		s.subtree[d] = true
		for q := parents[d]; q != 0; q = parents[q] {
			s.onPath[q] = true
		}
	}
	return s, nil
}

// excluded finds the dirents ExtractOptions.Exclude leaves out, without
// going into those that are directories; nil when it has no pattern.
func (e *extractor) excluded() map[uint32]bool {
	l := e.opt.Exclude
	if l.Empty() {
		return nil
	}
	x := e.a.idx
	out := map[uint32]bool{}
	// dirs[k]: where the patterns stand in the directory the walk is in
	// at depth k+1.
	dirs := []exclude.Dir{l.Root()}
	_ = x.Visit(func(d uint32, depth int) (bool, error) {
		dirs = dirs[:depth]
		dir := x.IsDir(x.Dirents.Inode[d])
		name := string(x.Name(d))
		if l.Excluded(dirs[depth-1], name, dir) {
			out[d] = true
			return false, nil
		}
		if dir {
			dirs = append(dirs, l.Enter(dirs[depth-1], name))
		}
		return dir, nil
	})
	return out
}

// selected visits the entries sel extracts, depth first (Index.Visit,
// which keeps its own stack, not the goroutine's: an index nesting
// millions of directories would overflow that), and goes into a
// directory where fn says so; in says an entry is extracted whole (not
// only on the way to a selected path). The entries ExtractOptions.Exclude
// leaves out are passed by, each told to excluded (when set), with what
// lies below them.
func (e *extractor) selected(sel *selection, fn func(d, ino uint32, in bool) (descend bool, err error), excluded func(d uint32)) error {
	x := e.a.idx
	whole := []bool{sel.all} // whole[k]: the directory at depth k is extracted whole
	return x.Visit(func(d uint32, depth int) (bool, error) {
		if err := e.opt.Context.Err(); err != nil {
			return false, err
		}
		whole = whole[:depth]
		in := whole[depth-1] || sel.subtree[d]
		if !in && !sel.onPath[d] {
			return false, nil
		}
		if sel.excluded[d] {
			if excluded != nil {
				excluded(d)
			}
			return false, nil
		}
		descend, err := fn(d, x.Dirents.Inode[d], in)
		if err != nil || !descend {
			return false, err
		}
		whole = append(whole, in)
		return true, nil
	})
}

// walk visits the selected entries as selected does, each with the
// directory it is in open (dirfd) and its name there. For a directory,
// visit returns it open, for the walk to go into, or -1 to pass what is
// below it by; for other entries its fd is not used.
func (e *extractor) walk(sel *selection, visit func(dirfd int, name string, d, ino uint32, in bool) (fd int, err error)) error {
	// The directory entries are made in, reached through a chain (not a
	// descriptor per level of the walk: a deep tree would run out).
	tree := dirChain{root: e.root, e: e}
	defer tree.close()
	return e.selected(sel, func(d, ino uint32, in bool) (bool, error) {
		dirfd, name, err := tree.parentOf(d)
		if err != nil {
			return false, err
		}
		fd, err := visit(dirfd, name, d, ino, in)
		if err != nil || !e.a.idx.IsDir(ino) || fd < 0 {
			return false, err
		}
		tree.push(d, fd) // the chain is at d's directory: d's entries come next
		return true, nil
	}, nil)
}

// measure is what extracting sel writes: the content bytes (holes not
// counted; a file of several paths once, and with DedupLinks "hardlink"
// a duplicate that would be linked not at all) and the entries its
// patterns leave out (not what lies below them).
func (e *extractor) measure(sel *selection) (bytes, excluded int64, err error) {
	x := e.a.idx
	seen := map[uint32]bool{}
	dups := map[dupKey][]uint32{} // inodes counted, by what a link to them must share
	err = e.selected(sel, func(d, ino uint32, in bool) (bool, error) {
		if x.IsDir(ino) {
			return true, nil
		}
		if seen[ino] || x.Inodes.Mode[ino]&format.ModeType != format.ModeReg || !in {
			return false, nil
		}
		seen[ino] = true
		s, end := x.FileExtents(ino)
		if e.opt.DedupLinks == "hardlink" && end > s {
			key := e.dupKeyOf(ino, s, end-s)
			if slices.ContainsFunc(dups[key], func(o uint32) bool { return e.sameXattrs(ino, o) }) {
				return false, nil // linked to that one: nothing written
			}
			dups[key] = append(dups[key], ino)
		}
		bytes += e.fileData(ino)
		return false, nil
	}, func(uint32) { excluded++ })
	return bytes, excluded, err
}

// ExtractSize is the content bytes Extract with opt's Paths, Exclude and
// DedupLinks would write (holes not counted; a file of several paths
// once, a duplicate linked not at all), for a progress bar's total.
func (a *Archive) ExtractSize(opt ExtractOptions) (int64, error) {
	e := &extractor{a: a, opt: ExtractOptions{Paths: opt.Paths, Exclude: opt.Exclude, DedupLinks: opt.DedupLinks, Context: context.Background()},
		dupSeed: maphash.MakeSeed()}
	sel, err := e.selection()
	if err != nil {
		return 0, err
	}
	n, _, err := e.measure(sel)
	return n, err
}

// checkDest refuses, before anything is made, an extraction that would
// stop at an entry dest already has: a name the archive has a file for
// (but an empty regular file, which an interrupted extraction leaves, and
// a directory, which is left and the entry skipped), a non-directory where
// it has a directory. Refused halfway instead, the extraction would leave
// what it had made so far, some of it files not yet filled, and a second
// run would meet those. Unless overwrite replaces them.
//
// Directories of the user's that it may not read or search (an earlier
// extraction left them so, as archived) it widens for the look, as
// createTree does to fill them, and puts back after. What createTree skips
// with a warning, it leaves: device nodes without root, and what another's
// directories deny the user.
func (e *extractor) checkDest(sel *selection) error {
	if e.opt.Overwrite || !e.destExisted {
		return nil
	}
	var widened []madeDir
	defer func() { e.putBack(widened) }()
	look := func(dirfd int, name string, d uint32) error {
		w, mode, err := e.widen(dirfd, name, d)
		if w {
			widened = append(widened, madeDir{d: d, widened: true, mode: mode})
		}
		return err
	}
	return e.walk(sel, func(dirfd int, name string, d, ino uint32, in bool) (int, error) {
		typ := e.a.idx.Inodes.Mode[ino] & format.ModeType
		if (typ == format.ModeChr || typ == format.ModeBlk) && !e.isRoot {
			return -1, nil
		}
		var st unix.Stat_t
		err := unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW)
		switch {
		case errors.Is(err, unix.ENOENT):
			return -1, nil // nothing below it either
		case denied(err):
			return -1, nil // createTree skips it, warned
		case err != nil:
			return -1, fmt.Errorf("%s: %w", e.path(d), err)
		}
		isDir := st.Mode&unix.S_IFMT == unix.S_IFDIR
		switch {
		case typ == format.ModeDir && !isDir:
			return -1, &pathError{e.path(d), errNotADir}
		case typ == format.ModeDir:
			if err := look(dirfd, name, d); err != nil {
				return -1, err
			}
			fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
			switch {
			case denied(err):
				return -1, nil // another's: createTree skips it, warned
			case err != nil:
				return -1, fmt.Errorf("%s: %w", e.path(d), err)
			}
			return fd, nil
		case isDir, replaceable(&st, false):
			return -1, nil
		}
		return -1, &pathError{e.path(d), errExists}
	})
}

// createTree walks the index depth first and creates every selected entry
// but the content of regular files, which writeContent adds in stream order.
func (e *extractor) createTree(sel *selection) error {
	// dest itself (Extract widened it where it had to).
	root := madeDir{d: 0, ino: 0, existed: e.destExisted, onPath: !sel.all, widened: e.destWidened, mode: e.destMode}
	if sel.all || root.widened {
		e.dirs = append(e.dirs, root)
	}
	if err := e.checkDest(sel); err != nil {
		return err
	}
	return e.walk(sel, func(dirfd int, name string, d, ino uint32, in bool) (int, error) {
		if !e.a.idx.IsDir(ino) {
			if err := e.createEntry(dirfd, name, d, ino); errors.Is(err, errDirInTheWay) || denied(err) {
				// This entry alone, as tar does: the rest comes out.
				e.res.Skipped++
				e.warn(err)
			} else if err != nil {
				return -1, err
			}
			return -1, nil
		}
		md := madeDir{d: d, ino: ino, onPath: !in}
		fd, err := e.makeDir(dirfd, name, &md)
		if denied(err) {
			// Another's directory denies it (to be made in, or gone
			// into): this subtree alone, as for a file.
			e.res.Skipped++
			e.warn(err)
			return -1, nil
		}
		if err != nil {
			return -1, err
		}
		e.dirs = append(e.dirs, md)
		e.res.Dirs++
		return fd, nil
	})
}

// makeDir creates (or reuses: md.existed, widened where it must be: see
// widen) directory name in dirfd, for md.d, and opens it without following
// a symlink.
func (e *extractor) makeDir(dirfd int, name string, md *madeDir) (fd int, err error) {
	d := md.d
	err = unix.Mkdirat(dirfd, name, 0o700)
	if errors.Is(err, unix.EEXIST) {
		var st unix.Stat_t
		if err := unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return -1, fmt.Errorf("%s: %w", e.path(d), err)
		}
		if st.Mode&unix.S_IFMT != unix.S_IFDIR {
			if !e.opt.Overwrite {
				return -1, &pathError{e.path(d), errNotADir}
			}
			if err := e.putAside(dirfd, name, d); err != nil {
				return -1, err
			}
			err = unix.Mkdirat(dirfd, name, 0o700)
		} else {
			err, md.existed = nil, true
		}
	}
	if err != nil {
		return -1, fmt.Errorf("%s: %w", e.path(d), err)
	}
	if md.existed { // before it is opened: opening may need u+r
		if md.widened, md.mode, err = e.widen(dirfd, name, d); err != nil {
			return -1, err
		}
	}
	fd, err = unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		if md.widened {
			e.chmodEntry(dirfd, name, d, md.mode)
		}
		return -1, fmt.Errorf("%s: %w", e.path(d), err)
	}
	return fd, nil
}

// widen gives an existing directory of ours that denies us reading it,
// writing into it or going through it u+rwx, so that it can be filled (an
// earlier extraction left it read-only, as archived); its mode before is
// restored at the end by dirMeta, or by putBack where the extraction stops
// first or a directory below fails. Root needs no such bits.
func (e *extractor) widen(dirfd int, name string, d uint32) (widened bool, mode uint32, err error) {
	if e.isRoot {
		return false, 0, nil
	}
	var st unix.Stat_t
	if err := unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return false, 0, fmt.Errorf("%s: %w", e.path(d), err)
	}
	if st.Uid != uint32(os.Geteuid()) || st.Mode&0o700 == 0o700 {
		return false, 0, nil
	}
	mode = st.Mode & 0o7777
	if err := e.chmodEntry(dirfd, name, d, mode|0o700); err != nil {
		return false, 0, fmt.Errorf("%s: chmod: %w", e.path(d), err)
	}
	return true, mode, nil
}

// chmodEntry sets the mode of entry d, dirfd/name, or of dest itself (d 0)
// through its descriptor: dest's "." cannot be named where dest may not be
// searched, which is what widen and an archived mode without u+x make.
func (e *extractor) chmodEntry(dirfd int, name string, d, mode uint32) error {
	if d == 0 {
		return unix.Fchmod(e.root, mode)
	}
	return chmodAt(dirfd, name, mode)
}

// chmodAt sets the mode of dirfd/name without following a symlink there.
// Between an entry's making and its mode, whoever may rename entries in
// its directory could put a symlink in its place, and fchmodat would
// change what that points to: setuid bits on a file outside dest, as
// root. fchmodat2 refuses a symlink (Linux 6.6); where it is missing, the
// entry is pinned with O_PATH and changed through /proc, as glibc does.
//
// A seccomp filter that does not know fchmodat2 answers EPERM (Docker's,
// before it did), so that error falls back too: a real denial comes back
// from the fallback. Without /proc (a chroot), a regular file or a
// directory is opened itself and changed through that descriptor; devices
// are not opened (opening one may act on it).
func chmodAt(dirfd int, name string, mode uint32) error {
	err := unix.Fchmodat(dirfd, name, mode, unix.AT_SYMLINK_NOFOLLOW)
	if !errors.Is(err, unix.EOPNOTSUPP) && !errors.Is(err, unix.EPERM) && !errors.Is(err, unix.ENOSYS) {
		return err
	}
	fd, st, err := openStat(dirfd, name, unix.O_PATH|unix.O_NOFOLLOW)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	typ := st.Mode & unix.S_IFMT
	if typ == unix.S_IFLNK {
		return fmt.Errorf("a symlink now: %w", unix.ELOOP)
	}
	err = unix.Chmod("/proc/self/fd/"+strconv.Itoa(fd), mode)
	if !errors.Is(err, unix.ENOENT) || typ != unix.S_IFREG && typ != unix.S_IFDIR {
		return err
	}
	own, again, err := openStat(dirfd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_NOCTTY)
	if err != nil {
		return err
	}
	defer unix.Close(own)
	if again.Dev != st.Dev || again.Ino != st.Ino {
		return fmt.Errorf("replaced meanwhile: %w", unix.ESTALE)
	}
	return unix.Fchmod(own, mode)
}

// openStat opens dirfd/name with flags (and O_CLOEXEC) and stats what it
// opened.
func openStat(dirfd int, name string, flags int) (int, unix.Stat_t, error) {
	var st unix.Stat_t
	fd, err := unix.Openat(dirfd, name, flags|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, st, err
	}
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return -1, st, err
	}
	return fd, st, nil
}

// errDirInTheWay: a directory in DEST stands where the archive has a
// non-directory. Even with overwrite it is not removed (what is inside is
// not the archive's); the entry is skipped with a warning and the rest is
// extracted, as tar does.
var errDirInTheWay = errors.New("exists and is a directory (left as it is; the archive's entry is not extracted)")

// errExists: dest has an entry where the archive has a file, and it is
// not replaced without overwrite; errNotADir, where it has a directory.
var (
	errExists  = fmt.Errorf("%w (use overwrite to replace it)", fs.ErrExist)
	errNotADir = errors.New("exists and is not a directory (use overwrite to replace it)")
)

// denied reports whether err is the system's refusal of the user (another
// user's directory, mostly): the entry is skipped with a warning.
func denied(err error) bool { return errors.Is(err, unix.EACCES) || errors.Is(err, unix.EPERM) }

// replaceable reports whether an entry st that dest has (not a directory)
// is replaced by the archive's: with overwrite, or where it is an empty
// regular file, as an interrupted extraction leaves the files it had not
// filled yet (so that running it again finishes it).
func replaceable(st *unix.Stat_t, overwrite bool) bool {
	return overwrite || st.Mode&unix.S_IFMT == unix.S_IFREG && st.Size == 0
}

// clear makes room for a new non-directory entry called name.
func (e *extractor) clear(dirfd int, name string, d uint32) error {
	var st unix.Stat_t
	err := unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("%s: %w", e.path(d), err)
	}
	// A directory first: overwrite would not replace it either, so the
	// refusal must not suggest it.
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		return &pathError{e.path(d), errDirInTheWay}
	}
	if !replaceable(&st, e.opt.Overwrite) {
		return &pathError{e.path(d), errExists}
	}
	if !replaceable(&st, false) {
		// The user's (overwrite): kept until what replaces it is whole.
		return e.putAside(dirfd, name, d)
	}
	// An empty file, as an interrupted extraction leaves: nothing to keep.
	// Unlink rather than truncate: the old file may be linked elsewhere.
	if err := unix.Unlinkat(dirfd, name, 0); err != nil {
		return fmt.Errorf("%s: %w", e.path(d), err)
	}
	return nil
}

// createEntry creates a non-directory entry.
func (e *extractor) createEntry(dirfd int, name string, d, ino uint32) error {
	x := e.a.idx
	mode := x.Inodes.Mode[ino]
	// An inode met before is a hardlink to its first path. The first path
	// (of an inode; of a duplicate's content, with "hardlink") is the first
	// one created: one skipped is not linked to.
	if first, ok := e.firstOf[ino]; ok {
		err := e.link(first, dirfd, name, d)
		if err == nil {
			e.res.Hardlinks++
			return nil
		}
		// The filesystem takes no more links to the file (ext4: 65,000):
		// this path, and the later ones linked to it, get a copy of
		// their own, as a file's do.
		if !errors.Is(err, unix.EMLINK) || mode&format.ModeType != format.ModeReg {
			return err
		}
		e.warn(fmt.Errorf("%s: a hardlink of %s, written as a copy: %w", e.path(d), e.path(first), err))
		delete(e.firstOf, ino)
	}
	switch mode & format.ModeType {
	case format.ModeReg:
		ds, dc := x.FileExtents(ino)
		var key dupKey
		dedup := e.opt.DedupLinks == "hardlink" && dc > ds
		if dedup {
			key = e.dupKeyOf(ino, ds, dc-ds)
			for i := 0; i < len(e.dupFirst[key]); i++ {
				first := e.dupFirst[key][i]
				if !e.sameXattrs(ino, x.Dirents.Inode[first]) {
					continue
				}
				err := e.link(first, dirfd, name, d)
				if errors.Is(err, unix.EMLINK) {
					// Full: the duplicates to come link to another.
					e.dupFirst[key] = slices.Delete(e.dupFirst[key], i, i+1)
					i--
					continue
				}
				if err != nil {
					return err
				}
				e.firstOf[ino] = d
				e.res.Hardlinks++
				return nil
			}
		}
		err := e.create(dirfd, name, d, func() error {
			fd, err := unix.Openat(dirfd, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
			if err == nil {
				unix.Close(fd)
			}
			return err
		})
		if err != nil {
			return err
		}
		e.firstOf[ino] = d
		if dedup {
			e.dupFirst[key] = append(e.dupFirst[key], d)
		}
		e.jobs = append(e.jobs, contentJob{d: d, ino: ino})
		e.res.Files++
		return nil
	case format.ModeLink:
		err := e.create(dirfd, name, d, func() error { return unix.Symlinkat(string(x.Symlink(ino)), dirfd, name) })
		if err != nil {
			return err
		}
		e.firstOf[ino] = d
		e.res.Symlinks++
	default:
		typ := mode & format.ModeType
		if (typ == format.ModeChr || typ == format.ModeBlk) && !e.isRoot {
			e.res.Skipped++
			e.warn(fmt.Errorf("%s: device node not created (needs root)", e.path(d)))
			return nil
		}
		err := e.create(dirfd, name, d, func() error {
			return unix.Mknodat(dirfd, name, mode&(format.ModeType|0o777), int(x.Inodes.Rdev[ino]))
		})
		if errors.Is(err, fs.ErrExist) || errors.Is(err, errDirInTheWay) {
			return err // refused to replace an existing entry; or skipped by the caller
		}
		if err != nil {
			e.res.Skipped++
			e.warn(err)
			return nil
		}
		e.firstOf[ino] = d
		e.res.Others++
	}
	e.metaAt(dirfd, name, d, ino)
	return nil
}

// link makes dirfd/name a hardlink to the archive path first, extracted
// earlier, reached through e.links.
func (e *extractor) link(first uint32, dirfd int, name string, d uint32) error {
	pfd, fname, err := e.links.parentOf(first)
	if err != nil {
		return err
	}
	if err := e.create(dirfd, name, d, func() error { return unix.Linkat(pfd, fname, dirfd, name, 0) }); err != nil {
		return err
	}
	// first may be linked itself (an inode's first path linked to a
	// duplicate's): the paths are named under the one whose content is
	// written.
	owner, ok := e.linkOwner[first]
	if !ok {
		owner = first
	}
	e.linkOwner[d] = owner
	e.linked[owner] = append(e.linked[owner], d)
	return nil
}

// pathError is an error about an extracted path.
type pathError struct {
	path string
	err  error
}

func (p *pathError) Error() string { return p.path + ": " + p.err.Error() }
func (p *pathError) Unwrap() error { return p.err }

// create runs mk, which makes dirfd/name exclusively; when the name is taken
// it clears the way (see clear) and tries once more.
func (e *extractor) create(dirfd int, name string, d uint32, mk func() error) error {
	err := mk()
	if errors.Is(err, unix.EEXIST) {
		if cerr := e.clear(dirfd, name, d); cerr != nil {
			return cerr
		}
		err = mk()
	}
	if err != nil {
		return &pathError{e.path(d), err}
	}
	return nil
}

// dirMeta sets the metadata of directory d once everything below it is in
// place. A directory that was already in dest keeps its own where the
// archive has none to restore: where the writer made them up (implied: the
// root holding several sources, a tar stream's unnamed parents; restored,
// they would give dest, or /etc, the owner who packed the archive, its
// mode and the time it was packed), and where it is only on the way to
// the selected paths (as tar leaves it). One made here for an implied
// directory gets the recorded mode (0755) alone: owned by whoever
// extracts, with the time it was made, as a directory that mkdir -p made.
// The rest get the archived owner, mode, times and xattrs.
func (e *extractor) dirMeta(d madeDir) error {
	implied := e.a.idx.IsImplied(d.ino)
	keep := d.existed && (implied || d.onPath) // dest's own metadata
	if keep && !d.widened {
		return nil
	}
	dirfd, name := e.root, "."
	if d.d != 0 {
		pfd, n, err := e.links.parentOf(d.d)
		if err != nil {
			return err
		}
		dirfd, name = pfd, n
	}
	if keep { // its mode as it was before widen
		if err := e.chmodEntry(dirfd, name, d.d, d.mode); err != nil {
			e.warn(fmt.Errorf("%s: chmod: %w", e.path(d.d), err))
		}
		return nil
	}
	if implied {
		// As mkdir -p (and tar -x) make a parent no member names: its
		// recorded mode (0755) less the user's umask.
		perm := e.a.idx.Inodes.Mode[d.ino] & format.ModePerm &^ (unix.S_ISUID | unix.S_ISGID) &^ e.umask
		if err := e.chmodEntry(dirfd, name, d.d, perm); err != nil {
			e.warn(fmt.Errorf("%s: chmod: %w", e.path(d.d), err))
		}
		return nil
	}
	e.metaAt(dirfd, name, d.d, d.ino)
	return nil
}

// dirChain keeps the directories open along one path below dest, so that
// going from one path to the next opens only the directories the two do
// not share: walking down from dest for every path costs the square of
// the depth (a 4,000-deep tree took 54 s to extract that way).
//
// It keeps the deepest chainOpen of them open, not one per level:
// several chains are in use at once (one per worker), and a tree thousands
// of levels deep would run out of descriptors. To reach a directory above
// those it goes back up through "..", checking that each is the directory
// it went down through (device and inode), as a descriptor held on it
// would have been; where one is not (moved meanwhile), it walks down from
// dest again. A device and inode pin a directory less than a descriptor
// does (a directory removed, another made may get its inode number); to
// lead the chain elsewhere that way takes rights to remove and move
// directories below dest, with which a held descriptor is led elsewhere
// too (it follows its directory wherever it is moved).
type dirChain struct {
	root    int
	e       *extractor  // the index and its parent and depth tables
	dirents []uint32    // the directories reached, from dest down
	todo    []uint32    // parentOf's directories to open, deepest first
	fds     []int       // the deepest levels open: fds[i] is dirents[len(ids)+i]
	ids     [][2]uint64 // device and inode of dirents[i], for each level above fds
}

// maxChainOpen bounds the directories a dirChain keeps open. Few trees are
// deeper: the way up through ".." is rarely taken.
const maxChainOpen = 32

// chainBudget is how many directories each of chains dirChains keeps open:
// maxChainOpen, fewer where the process's limit of open files leaves less
// room, at least 2. A tree 2,000 deep took more than 160 descriptors to
// extract with 8 workers.
func chainBudget(chains int) int { return format.DescriptorBudget(chains, 2, maxChainOpen) }

// parentOf returns an fd of the directory holding dirent d (not the
// root), and d's name; the fd stays the chain's. It takes time linear in
// the levels it opens (and those it leaves): it finds where d's ancestors
// meet the chain by going up from d's directory, never splitting or
// comparing a whole path, which for each entry of a deep tree would cost
// the square of the depth.
func (c *dirChain) parentOf(d uint32) (int, string, error) {
	e := c.e
	c.todo = c.todo[:0]
	a := e.parents[d]
	for a != 0 {
		if k := e.depth[a]; k <= uint32(len(c.dirents)) && c.dirents[k-1] == a {
			break
		}
		c.todo = append(c.todo, a)
		a = e.parents[a]
	}
	if k := int(e.depth[a]); c.up(k) < k { // back at dest: a and those above it too
		for ; a != 0; a = e.parents[a] {
			c.todo = append(c.todo, a)
		}
	}
	x := e.a.idx
	for i := len(c.todo) - 1; i >= 0; i-- {
		dir := c.todo[i]
		comp := string(x.Name(dir))
		fd, err := unix.Openat(c.top(), comp, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return -1, "", fmt.Errorf("%s: %w", e.path(d), err)
		}
		c.push(dir, fd)
	}
	return c.top(), string(x.Name(d)), nil
}

// up leaves the chain at the directory of its first k levels and returns
// k; or 0, at dest, where the way up did not lead back through the
// directories it went down through.
func (c *dirChain) up(k int) int {
	above := len(c.ids)
	if k > above { // open already
		for _, fd := range c.fds[k-above:] {
			unix.Close(fd)
		}
		c.dirents, c.fds = c.dirents[:k], c.fds[:k-above]
		return k
	}
	if k == 0 {
		c.close()
		return 0
	}
	for _, fd := range c.fds[1:] {
		unix.Close(fd)
	}
	fd := c.fds[0] // dirents[above]
	c.fds = c.fds[:0]
	for level := above; level >= k; level-- {
		dotdot, err := unix.Openat(fd, "..", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		unix.Close(fd)
		if err != nil {
			c.close()
			return 0
		}
		var st unix.Stat_t
		if unix.Fstat(dotdot, &st) != nil || [2]uint64{st.Dev, st.Ino} != c.ids[level-1] {
			unix.Close(dotdot)
			c.close()
			return 0
		}
		fd = dotdot
	}
	c.dirents, c.fds, c.ids = c.dirents[:k], append(c.fds, fd), c.ids[:k-1]
	return k
}

// push adds directory d, open as fd, below the deepest one: the chain
// owns fd now. Past the extraction's chainOpen (maxChainOpen where unset)
// the highest one open is closed, and its device and inode are kept for
// the way back up.
func (c *dirChain) push(d uint32, fd int) {
	c.dirents, c.fds = append(c.dirents, d), append(c.fds, fd)
	limit := c.e.chainOpen
	if limit <= 0 {
		limit = maxChainOpen
	}
	if len(c.fds) > limit {
		var st unix.Stat_t
		unix.Fstat(c.fds[0], &st) // on failure the way up finds no match and starts again from dest
		unix.Close(c.fds[0])
		c.ids, c.fds = append(c.ids, [2]uint64{st.Dev, st.Ino}), c.fds[1:]
	}
}

// top is the deepest directory open.
func (c *dirChain) top() int {
	if len(c.fds) == 0 {
		return c.root
	}
	return c.fds[len(c.fds)-1]
}

func (c *dirChain) close() {
	for _, fd := range c.fds {
		unix.Close(fd)
	}
	c.dirents, c.fds, c.ids = nil, nil, nil
}

// metaAt applies owner, xattrs, mode and times to dirfd/name without
// following a symlink. Owner comes first: chown clears setuid bits and
// file capabilities. Xattrs come before the mode: setting a user.* one
// needs write permission, which the archived mode may not give. What the
// system refuses (a directory in DEST owned by someone else) is a
// warning, as docs/CLI.md's exit 1 says: the rest is extracted.
func (e *extractor) metaAt(dirfd int, name string, d uint32, ino uint32) {
	x := e.a.idx
	mode := x.Inodes.Mode[ino]
	isLink := mode&format.ModeType == format.ModeLink
	owned := false // the archived owner is in place
	if e.chown {
		uid, gid := x.Inodes.UID[ino], x.Inodes.GID[ino]
		if err := unix.Fchownat(dirfd, name, int(uid), int(gid), unix.AT_SYMLINK_NOFOLLOW); err != nil {
			e.warn(fmt.Errorf("%s: chown: %w", e.path(d), err))
		} else if uid == math.MaxUint32 || gid == math.MaxUint32 {
			// (uid_t)-1 is no owner: chown takes it for "leave as is"
			// (a tar stream can carry it).
			e.warn(fmt.Errorf("%s: owner %d:%d: 4294967295 is no id a file can have (chown takes it for \"unchanged\"), left as extracted", e.path(d), uid, gid))
		} else {
			owned = true
		}
	}
	xs, xe := x.XattrRange(ino)
	if xe > xs {
		e.setXattrs(dirfd, name, d, isLink, xs, xe)
	}
	if !isLink && x.Xattrs.Count() > 0 {
		e.dropInheritedACLs(dirfd, name, d, mode&format.ModeType == format.ModeDir, xs, xe)
	}
	// Times before the mode (a chmod leaves them as they are): dest's own
	// are set through ".", which a mode without u+x would deny.
	ts := []unix.Timespec{unix.NsecToTimespec(x.Inodes.Atime[ino]), unix.NsecToTimespec(x.Inodes.Mtime[ino])}
	if err := unix.UtimesNanoAt(dirfd, name, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		e.warn(fmt.Errorf("%s: set times: %w", e.path(d), err))
	}
	if !isLink {
		perm := mode & format.ModePerm
		// Like tar: setuid and setgid only with the owner they were meant
		// for, never on a file that now belongs to whoever extracted it.
		if !owned {
			perm &^= unix.S_ISUID | unix.S_ISGID
		}
		if err := e.chmodEntry(dirfd, name, d, perm); err != nil {
			e.warn(fmt.Errorf("%s: chmod: %w", e.path(d), err))
		}
	}
}

// setXattrs restores extended attributes: user.* and POSIX ACLs always
// (the owner may set them), the security and trusted namespaces as root
// only. Refusals are warnings.
// dropInheritedACLs removes the POSIX ACLs that dirfd/name has and the
// archive does not give it (xattrs xs to xe): a file made in a directory
// with a default ACL inherits one, in dest as the user keeps it, or in a
// directory an earlier extraction made. Only where the archive recorded
// xattrs at all (the caller's test): an archive made without them says
// nothing about ACLs, and then the directory's default stands.
func (e *extractor) dropInheritedACLs(dirfd int, name string, d uint32, isDir bool, xs, xe uint32) {
	x := e.a.idx
	keys := []string{"system.posix_acl_access"}
	if isDir {
		keys = append(keys, "system.posix_acl_default")
	}
	p := procPath(dirfd, name)
	for _, key := range keys {
		archived := false
		for i := xs; i < xe && !archived; i++ {
			archived = string(x.XattrName(i)) == key
		}
		if archived {
			continue
		}
		err := unix.Lremovexattr(p, key)
		if err != nil && !errors.Is(err, unix.ENODATA) && !errors.Is(err, unix.EOPNOTSUPP) {
			e.warn(fmt.Errorf("%s: inherited ACL %s not removed: %w", e.path(d), key, err))
		}
	}
}

// procPath reaches dirfd/name through the directory's fd in /proc, so no
// path component below dest is followed (the *xattr calls that take it,
// the L ones, do not follow name itself).
func procPath(dirfd int, name string) string {
	return "/proc/self/fd/" + strconv.Itoa(dirfd) + "/" + name
}

func (e *extractor) setXattrs(dirfd int, name string, d uint32, isLink bool, xs, xe uint32) {
	x := e.a.idx
	p := procPath(dirfd, name)
	// A file's failures are said one by one up to maxXattrWarnings, then
	// counted in one line: a hostile index's 10,000 xattrs a file that
	// the destination refuses wrote ten million lines. After ENOSPC (no
	// room for that value) values as large or larger are not tried: the
	// same hostile index set them for 74 s. Smaller ones still may fit.
	failed, said, untried := 0, 0, 0
	noRoom := -1 // the size of the smallest value refused with ENOSPC
	warn := func(err error) {
		if failed++; said < maxXattrWarnings {
			said++
			e.warn(err)
		}
	}
	for i := xs; i < xe; i++ {
		key := string(x.XattrName(i))
		user := strings.HasPrefix(key, "user.")
		if !user && !strings.HasPrefix(key, "system.posix_acl_") && !e.isRoot {
			warn(fmt.Errorf("%s: xattr %s not restored (needs root)", e.path(d), key))
			continue
		}
		if isLink && user {
			continue // Linux allows no user.* attributes on symlinks
		}
		v := x.XattrValue(i)
		if noRoom >= 0 && len(v) >= noRoom {
			failed++
			untried++
			continue
		}
		if err := unix.Lsetxattr(p, key, v, 0); err != nil {
			warn(fmt.Errorf("%s: xattr %s: %w", e.path(d), key, err))
			if errors.Is(err, unix.ENOSPC) {
				noRoom = len(v)
			}
		}
	}
	if failed > said {
		why := ""
		if untried > 0 {
			why = fmt.Sprintf(" (%d of them not tried: no room for a value of %d bytes or more)", untried, noRoom)
		}
		e.warn(fmt.Errorf("%s: %d more xattrs not restored%s", e.path(d), failed-said, why))
	}
}

// maxXattrWarnings: the failed xattrs of one file said one by one.
const maxXattrWarnings = 8

// writeContent fills the regular files in unique-stream order on several
// workers, each reading big runs through the block cache (whose prefetch
// decodes the frames ahead in parallel), then sets their metadata.
func (e *extractor) writeContent() error {
	x := e.a.idx
	sums := e.runSumsOf()
	for i := range e.jobs { // worked out once, not per comparison
		s, end := x.FileExtents(e.jobs[i].ino)
		e.jobs[i].first = sums.first(s, end)
	}
	slices.SortStableFunc(e.jobs, func(p, q contentJob) int {
		a, b := p.first, q.first
		switch {
		case a < b:
			return -1
		case a > b:
			return 1
		}
		return 0
	})
	// Each block is let go of once the last file that reads it is
	// written: the files come in stream order, so most blocks serve a
	// few files in a row, and the cache holds what later files still
	// need rather than everything decoded (up to its bound).
	uses := make([]atomic.Int32, x.Blocks.Count())
	for _, j := range e.jobs {
		for _, b := range e.jobBlocks(j.ino) {
			uses[b].Add(1)
		}
	}
	jobs := make(chan contentJob)
	var wg sync.WaitGroup
	var errOnce sync.Once
	var firstErr error
	stop := make(chan struct{})
	for w := 0; w < e.opt.Workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := &contentWorker{e: e, buf: make([]byte, 4<<20), dirs: dirChain{root: e.root, e: e}}
			defer w.dirs.close()
			for j := range jobs {
				if err := w.writeFile(j); err != nil {
					errOnce.Do(func() { firstErr = err; close(stop) })
				}
				for _, b := range e.jobBlocks(j.ino) {
					if uses[b].Add(-1) == 0 {
						e.a.cache.Drop(b)
					}
				}
			}
		}()
	}
feed:
	for _, j := range e.jobs {
		select {
		case jobs <- j:
		case <-stop:
			break feed
		case <-e.opt.Context.Done():
			errOnce.Do(func() { firstErr = e.opt.Context.Err(); close(stop) })
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	return firstErr
}

// errSwapped: a file made by the extraction was replaced by a symlink
// before its content was written (something else writing in DEST); it is
// not written through.
var errSwapped = errors.New("replaced by a symlink since the extraction made it (not written through)")

// contentWorker writes files one after another. Files come in stream
// order, which is mostly path order, so it keeps the directories of the
// last one open (dirs) instead of walking down from dest for every file.
type contentWorker struct {
	e    *extractor
	buf  []byte
	dirs dirChain
}

// writeFile writes one file's content (holes stay holes: only data is
// written, and the size is set at the end) and then its metadata.
func (w *contentWorker) writeFile(j contentJob) error {
	e := w.e
	x := e.a.idx
	pfd, name, err := w.dirs.parentOf(j.d)
	if err != nil {
		return err
	}
	fd, err := unix.Openat(pfd, name, unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err == unix.ELOOP {
		// O_NOFOLLOW met a symlink where the file was made: said as
		// "too many levels of symbolic links", it read as a loop.
		err = errSwapped
	}
	if err != nil {
		return fmt.Errorf("%s: %w", e.path(j.d), err)
	}
	damaged, err := w.fill(fd, j)
	if errors.Is(err, unix.ENOSPC) {
		// A full disk stops the extraction (below). What this file had
		// of its content is given back, so that the disk is not left
		// full of a part of a file: it is empty, as the files not
		// written yet are.
		if unix.Ftruncate(fd, 0) == nil {
			what := "this file emptied again, to give the space back; it and the files not written yet are empty, mode 0600"
			if e.opt.Overwrite {
				// What DEST had at the paths not written yet is put
				// back as it was (aside), this one's too.
				what = "this file emptied again, to give the space back, or the file DEST had there put back; the files not written yet are as DEST had them, or empty, mode 0600, where it had none"
			}
			err = fmt.Errorf("%w (%s: make room and extract again with --force)", err, what)
		}
	}
	if cerr := unix.Close(fd); err == nil && cerr != nil {
		err = fmt.Errorf("%s: %w", e.path(j.d), cerr)
	}
	if errors.Is(err, unix.EFBIG) {
		// Larger than the destination's filesystem takes (ext4: 16 TiB):
		// this file is left incomplete, as a damaged one is (mode 0600,
		// no archived metadata), every path of it named, and the others
		// are written. (A full disk, by contrast, stops the extraction:
		// nothing after it would fit either.)
		e.mu.Lock()
		for _, p := range append([]uint32{j.d}, e.linked[j.d]...) {
			e.res.Incomplete++
			e.opt.Warn(fmt.Errorf("%s: %w (%d bytes: larger than the destination's filesystem takes; %s)", e.path(p), unix.EFBIG, x.Inodes.Size[j.ino], e.aside.leftAs(p, "left incomplete, mode 0600")))
		}
		e.mu.Unlock()
		return nil
	}
	if err != nil || damaged {
		return err
	}
	e.metaAt(pfd, name, j.d, j.ino)
	// Whole: what dest had at its paths can go now, not at the end, so
	// that replacing a tree takes little more room than the tree.
	e.aside.release(e, &w.dirs, j.d)
	return nil
}

// fill writes the content of j into fd. Damage is warned about and counted,
// not returned: the other files still come out. Consecutive data extents
// are gathered into the buffer and written together: segment dedup cuts a
// file into many short extents, and a write (and a progress update) per
// extent cost more than decoding them.
func (w *contentWorker) fill(fd int, j contentJob) (damaged bool, err error) {
	e := w.e
	x := e.a.idx
	s, end := x.FileExtents(j.ino)
	if e.fileData(j.ino) == 0 {
		end = s // holes alone: the size is all there is to set, below
	}
	var pos int64    // file offset of the next byte
	buf := w.buf[:0] // pending bytes, to be written at pos-len(buf)
	flush := func() error {
		if len(buf) == 0 {
			return nil
		}
		if err := e.opt.Context.Err(); err != nil {
			return err
		}
		if err := pwriteAll(fd, buf, pos-int64(len(buf))); err != nil {
			return fmt.Errorf("%s: %w", e.path(j.d), err)
		}
		k := int64(len(buf))
		buf = buf[:0]
		e.mu.Lock()
		e.res.Bytes += k
		e.opt.Progress(k)
		e.mu.Unlock()
		return nil
	}
	var held heldBlocks
	defer held.release()
	for i := s; i < end; i++ {
		off, n := x.Extents.Off[i], int64(x.Extents.Len[i])
		if off == format.Hole {
			if err := flush(); err != nil {
				return false, err
			}
			pos += n
			continue
		}
		for n > 0 {
			if len(buf) == cap(buf) {
				if err := flush(); err != nil {
					return false, err
				}
			}
			k := min(int64(cap(buf)-len(buf)), n)
			chunk := buf[len(buf) : len(buf)+int(k)]
			if got, err := e.a.readUnique(off, chunk, &held); format.TooManyOpen(err) {
				// The process's limit of open files, not damage: the
				// extraction stops.
				return false, fmt.Errorf("%s: %w", e.path(j.d), err)
			} else if err != nil {
				// What came before the damage is written: a damaged
				// file keeps its good beginning (at its extraction
				// mode, without its archived metadata).
				buf, pos = buf[:len(buf)+got], pos+int64(got)
				if ferr := flush(); ferr != nil {
					return false, ferr
				}
				// Every path of the file is damaged: its links too.
				e.mu.Lock()
				for _, d := range append([]uint32{j.d}, e.linked[j.d]...) {
					e.res.Damaged++
					if why := e.aside.leftAs(d, ""); why != "" {
						e.opt.Warn(fmt.Errorf("%s: %w (%s)", e.path(d), err, why))
					} else {
						e.opt.Warn(fmt.Errorf("%s: %w", e.path(d), err))
					}
				}
				e.mu.Unlock()
				return true, nil
			}
			buf = buf[:len(buf)+int(k)]
			pos, off, n = pos+k, off+uint64(k), n-k
		}
	}
	if err := flush(); err != nil {
		return false, err
	}
	// A trailing hole (or an all-hole file): set the size without writing
	// it. pos counts holes too, so ask whether the last extent was data.
	if size := int64(x.Inodes.Size[j.ino]); size > 0 && (end == s || x.Extents.Off[end-1] == format.Hole) {
		if err := unix.Ftruncate(fd, size); err != nil {
			return false, fmt.Errorf("%s: %w", e.path(j.d), err)
		}
	}
	return false, nil
}

func pwriteAll(fd int, p []byte, off int64) error {
	for len(p) > 0 {
		n, err := unix.Pwrite(fd, p, off)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("short write at %d", off)
		}
		p, off = p[n:], off+int64(n)
	}
	return nil
}
