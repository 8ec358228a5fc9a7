package writer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"arc/format"
	"arc/internal/exclude"

	"golang.org/x/sys/unix"
)

// node is one scanned path. The scan builds a slice of them; children of a
// directory refer to their indexes in it.
type node struct {
	name []byte
	// path: the source path, for reading and for messages; none ("")
	// past anchorPath bytes, where nodePath builds it from the parents'
	// when needed: kept in every node, the paths of a chain thousands of
	// levels deep took memory in the square of its depth. The top-level
	// sources always keep theirs; a tar stream's members keep none.
	path     string
	parent   int32
	mode     uint32 // Linux st_mode
	uid, gid uint32
	nlink    uint32 // only ever compared with 2 (clamped)
	skip     bool   // left out of the archive (unreadable)
	// sparse: a regular file with fewer blocks than its size needs, which
	// may hold holes worth looking for.
	sparse bool
	// implied: a directory made up here, not found in a source (the root
	// holding several sources, a tar stream's unnamed parents); the index
	// says so (format.Index.Implied), and extract leaves such a directory
	// as it finds it rather than give it our made-up owner and mode.
	implied  bool
	size     int64
	mtime    int64
	atime    int64
	dev, ino uint64
	// extra holds what few nodes have, apart, so that the many without
	// it pay a pointer (a million files are a million nodes: 136 bytes
	// each, 200 with these in every node).
	extra    *nodeExtra
	children []int32
}

type xattr struct{ name, value []byte }

// nodeExtra is what a node has only where it is of its kind.
type nodeExtra struct {
	target []byte // a symlink's target
	rdev   uint64 // a device's number
	xattrs []xattr
}

func (n *node) target() []byte {
	if n.extra == nil {
		return nil
	}
	return n.extra.target
}

func (n *node) rdev() uint64 {
	if n.extra == nil {
		return 0
	}
	return n.extra.rdev
}

func (n *node) xattrs() []xattr {
	if n.extra == nil {
		return nil
	}
	return n.extra.xattrs
}

// setExtra sets n's extra fields through set, on a copy (nodes copied
// from one another, a tar stream's hardlinks, share theirs); none are
// kept where all are empty.
func (n *node) setExtra(set func(e *nodeExtra)) {
	var e nodeExtra
	if n.extra != nil {
		e = *n.extra
	}
	set(&e)
	n.extra = nil
	if len(e.target) > 0 || e.rdev != 0 || len(e.xattrs) > 0 {
		kept := e // the one allocation, where something is kept
		n.extra = &kept
	}
}

func (n *node) isDir() bool { return n.mode&format.ModeType == format.ModeDir }
func (n *node) isReg() bool { return n.mode&format.ModeType == format.ModeReg }

// scanner walks source trees in parallel without following symlinks.
type scanner struct {
	oneFS  bool
	strict bool
	warn   func(error)
	// excl, caches and tags: Options.Exclude, Options.ExcludeCaches and
	// Options.ExcludeIfPresent.
	excl   *exclude.List
	caches bool
	tags   []string
	// skip: files left out of the tree, by device and inode (the volumes
	// of the archive being replaced, when it lies inside a source).
	skip map[[2]uint64]bool
	ctx  context.Context
	// dirHook: Options.dirHook.
	dirHook func(path string)

	mu    sync.Mutex
	nodes *nodeList
	// anchors: O_PATH descriptors of directories with long paths, listed
	// but not yet read, by node (readDir).
	anchors map[int32]int
	// dirs: where excl's whole-path patterns stand in the directories
	// listed but not yet read, by node (none where excl needs only names).
	dirs map[int32]exclude.Dir
	// held: the anchors open, those in anchors and those a readDir is
	// taking, which it counts here before it opens them: never more
	// than maxHeld, however many directories are read at once.
	held    int
	maxHeld int   // anchorsUnder of the limit on open files
	err     error // first fatal error
	counts  scanCounts
	sem     chan struct{}
	wg      sync.WaitGroup
}

// scanCounts: the paths a scan left out, with a warning (skipped) and by
// the user's choice (excluded).
type scanCounts struct{ skipped, excluded int64 }

// scan builds the tree of the given sources, leaving out the files skip
// names and those opt excludes, until ctx is done. Node 0 is the archive
// root. It also counts the paths it left out.
func scan(ctx context.Context, sources []string, skip map[[2]uint64]bool, opt *Options) (_ *nodeList, _ scanCounts, err error) {
	s := &scanner{ctx: ctx, oneFS: opt.OneFileSystem, strict: opt.Strict, warn: opt.warn, skip: skip, sem: make(chan struct{}, 4), dirHook: opt.dirHook,
		excl: opt.Exclude, caches: opt.ExcludeCaches, tags: opt.ExcludeIfPresent}
	var lim unix.Rlimit
	s.maxHeld = maxAnchors
	if unix.Getrlimit(unix.RLIMIT_NOFILE, &lim) == nil {
		s.maxHeld = anchorsUnder(lim.Cur)
	}
	// On every return, a later source's error included: the scans of the
	// earlier ones, still going on their goroutines, are stopped (s.err)
	// and waited for, and the anchors they leave unread are closed. Not
	// waited for, they would go on after scan returned, and the anchors
	// of those that then stopped (a failure, the caller's ctx cancelled)
	// would never be closed.
	defer func() {
		if err != nil {
			s.fail(err)
		}
		s.wg.Wait()
		for _, fd := range s.anchors { // directories a failure left unread
			unix.Close(fd)
		}
		s.anchors = nil
	}()
	if len(sources) == 0 {
		return nil, scanCounts{}, errors.New("no source given")
	}
	single := false
	if len(sources) == 1 {
		var st unix.Stat_t
		if err := unix.Lstat(sources[0], &st); err != nil {
			return nil, scanCounts{}, fmt.Errorf("source %s: %w", sources[0], err)
		}
		single = st.Mode&unix.S_IFMT == unix.S_IFDIR
	}
	if single {
		// One directory: the archive root is that directory.
		root, err := s.stat(unix.AT_FDCWD, sources[0], sources[0], nil, -1, nil)
		if err != nil {
			return nil, scanCounts{}, err
		}
		s.nodes = newNodeList(root)
		s.pending(0, s.excl.Root())
		s.scanDir(0, root.dev)
	} else {
		// Several sources, or one non-directory: each becomes a top-level
		// entry under its base name in a synthetic root.
		root := impliedDir()
		root.parent = -1
		s.nodes = newNodeList(root)
		seen := map[string]bool{}
		for _, src := range sources {
			base := filepath.Base(filepath.Clean(src))
			if base == "/" || base == "." || base == ".." {
				return nil, scanCounts{}, fmt.Errorf("source %s: cannot name it inside the archive; pass a directory alone to archive its contents", src)
			}
			if seen[base] {
				return nil, scanCounts{}, fmt.Errorf("source %s: two sources are called %q", src, base)
			}
			seen[base] = true
			top := s.excl.Root()
			n, err := s.stat(unix.AT_FDCWD, src, src, []byte(base), 0, &top)
			if errors.Is(err, errExcluded) {
				continue
			}
			if err != nil {
				return nil, scanCounts{}, err
			}
			// Under the lock: the scan of an earlier source goes on,
			// on goroutines that append to the same nodes.
			s.mu.Lock()
			idx := s.nodes.add(n)
			s.nodes.at(0).children = append(s.nodes.at(0).children, idx)
			s.mu.Unlock()
			if n.isDir() {
				s.pending(idx, s.excl.Enter(top, base))
				s.scanDir(idx, n.dev)
			}
		}
	}
	s.wg.Wait()
	if s.err != nil {
		return nil, scanCounts{}, s.err
	}
	s.nodes.sortChildren()
	return s.nodes, s.counts, nil
}

func (s *scanner) fail(err error) {
	s.mu.Lock()
	if s.err == nil {
		s.err = err
	}
	s.mu.Unlock()
}

// problem reports a path left out of the tree, fatal with --strict.
func (s *scanner) problem(err error) {
	if s.strict {
		s.fail(err)
		return
	}
	s.leftOut(err)
}

// leftOut warns of a path left out of the tree and counts it as skipped.
func (s *scanner) leftOut(err error) {
	s.mu.Lock()
	s.counts.skipped++
	s.mu.Unlock()
	s.warn(err)
}

// scanDir lists directory idx, stats its children and recurses. Directories
// are scanned on up to cap(sem) goroutines; beyond that, inline.
func (s *scanner) scanDir(idx int32, rootDev uint64) {
	if err := s.ctx.Err(); err != nil {
		s.fail(err)
		return
	}
	kids, anchors, kidDirs, ok := s.readDir(idx)
	if !ok {
		return
	}
	s.mu.Lock()
	first := s.nodes.add(kids...)
	var subdirs []int32
	for i := range kids {
		c := first + int32(i)
		s.nodes.at(idx).children = append(s.nodes.at(idx).children, c)
		if kids[i].isDir() {
			if s.oneFS && kids[i].dev != rootDev {
				continue // keep the mount point itself, not what is mounted on it
			}
			subdirs = append(subdirs, c)
			if kidDirs != nil {
				s.pendingLocked(c, kidDirs[i])
			}
			if anchors != nil && anchors[i] >= 0 {
				if s.anchors == nil {
					s.anchors = map[int32]int{}
				}
				s.anchors[c] = anchors[i]
				anchors[i] = -1
			}
		}
	}
	for _, fd := range anchors { // not gone down into
		if fd >= 0 {
			unix.Close(fd)
			s.held--
		}
	}
	failed := s.err != nil
	s.mu.Unlock()
	if failed {
		return
	}
	for _, c := range subdirs {
		select {
		case s.sem <- struct{}{}:
			s.wg.Add(1)
			go func(c int32) {
				defer func() { <-s.sem; s.wg.Done() }()
				s.scanDir(c, rootDev)
			}(c)
		default:
			s.scanDir(c, rootDev)
		}
	}
}

// readDir stats the entries of directory idx; ok is false when the
// directory could not be read (reported). Its descriptor is closed before
// scanDir goes down into the subdirectories: held, one per level, a deep
// tree would run out of descriptors.
//
// The directory is opened without following a symlink and must be the one
// its parent listed (device and inode), and its entries are looked at
// relative to it: a directory swapped for a symlink meanwhile (into /etc,
// say) is not read through, and nothing outside the sources gets into the
// tree. Reading a file checks the same way that it is the file listed
// (openListed).
//
// A directory whose path is long (over anchorPath bytes) is opened instead
// through an O_PATH descriptor of it that its parent's reading left
// (anchors, one per such subdirectory, at most maxHeld at once): by
// its path the kernel would walk every directory above it again, and a
// tree thousands of levels deep would take time in the square of its
// depth. kids' anchors are those descriptors (-1: none), for scanDir to
// keep; kidDirs, where the exclude patterns stand in each kid that is a
// directory (nil where they need only names).
func (s *scanner) readDir(idx int32) (kids []node, anchors []int, kidDirs []exclude.Dir, ok bool) {
	s.mu.Lock()
	kept, dev, ino := s.nodes.at(idx).path, s.nodes.at(idx).dev, s.nodes.at(idx).ino
	at, anchored := s.anchors[idx]
	delete(s.anchors, idx)
	in := s.dirs[idx]
	delete(s.dirs, idx)
	s.mu.Unlock()
	// The directory's path, where one is needed: built from its parents'
	// for one deep down, which keeps none (node.path).
	dirPath := func() string {
		if kept == "" {
			return s.path(idx)
		}
		return kept
	}
	if s.dirHook != nil {
		s.dirHook(dirPath())
	}
	var fd int
	var err error
	if anchored {
		fd, _, err = openAt(at, ".", kept, unix.O_DIRECTORY, func(st *unix.Stat_t) bool { return st.Dev == dev && st.Ino == ino })
		unix.Close(at)
		s.mu.Lock()
		s.held--
		s.mu.Unlock()
	} else {
		fd, _, err = openListed(dirPath(), unix.O_DIRECTORY, dev, ino)
	}
	if err != nil {
		p := dirPath()
		s.problem(fmt.Errorf("read directory %s: %w", p, withPath(err, p)))
		return nil, nil, nil, false
	}
	f := os.NewFile(uintptr(fd), kept)
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		p := dirPath()
		s.problem(fmt.Errorf("read directory %s: %w", p, withPath(err, p)))
		return nil, nil, nil, false
	}
	if tags := s.tagsIn(fd, names); tags != nil {
		s.mu.Lock()
		s.counts.excluded += int64(len(names) - len(tags))
		s.mu.Unlock()
		names = tags
	}
	kids = make([]node, 0, len(names))
	for _, name := range names {
		n, err := s.stat(fd, name, keptPath(kept, name), []byte(name), idx, &in)
		if errors.Is(err, errLeftOut) || errors.Is(err, errExcluded) {
			continue
		}
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				s.leftOut(fmt.Errorf("%s vanished during the scan", childPath(dirPath(), name)))
			} else {
				s.problem(err)
			}
			continue
		}
		kids = append(kids, n)
		if in.Tracked() && n.isDir() {
			if kidDirs == nil {
				kidDirs = make([]exclude.Dir, len(names))
			}
			kidDirs[len(kids)-1] = s.excl.Enter(in, name)
		}
	}
	// The anchors' room is taken under the lock before they are opened:
	// counted from s.anchors when the reading began, it would let each
	// directory read at the same time take maxAnchors.
	want := 0
	for i := range kids {
		if kids[i].isDir() && kids[i].path == "" { // past anchorPath
			want++
		}
	}
	if want == 0 {
		return kids, nil, kidDirs, true
	}
	s.mu.Lock()
	room := max(0, min(want, s.maxHeld-s.held))
	s.held += room
	s.mu.Unlock()
	defer func() { // what was taken and not opened
		if room > 0 {
			s.mu.Lock()
			s.held -= room
			s.mu.Unlock()
		}
	}()
	for i := range kids {
		k := &kids[i]
		if !k.isDir() || k.path != "" || room <= 0 {
			continue
		}
		if anchors == nil {
			anchors = slices.Repeat([]int{-1}, len(kids))
		}
		afd, err := unix.Openat(fd, string(k.name), unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			continue // readDir of it says why, by its path
		}
		var st unix.Stat_t
		if unix.Fstat(afd, &st) != nil || st.Dev != k.dev || st.Ino != k.ino {
			unix.Close(afd)
			continue
		}
		anchors[i] = afd
		room--
	}
	return kids, anchors, kidDirs, true
}

// pending keeps where the exclude patterns stand in directory node idx
// until readDir reads it (nothing where they need only names).
func (s *scanner) pending(idx int32, d exclude.Dir) {
	s.mu.Lock()
	s.pendingLocked(idx, d)
	s.mu.Unlock()
}

// pendingLocked is pending with s.mu held.
func (s *scanner) pendingLocked(idx int32, d exclude.Dir) {
	if !d.Tracked() {
		return
	}
	if s.dirs == nil {
		s.dirs = map[int32]exclude.Dir{}
	}
	s.dirs[idx] = d
}

// cacheTag is the file that marks a directory as a cache
// (https://bford.info/cachedir/), which Options.ExcludeCaches leaves out
// but for the tag itself; cacheSignature is how the tag must begin.
const (
	cacheTag       = "CACHEDIR.TAG"
	cacheSignature = "Signature: 8a477f597d28d172789f06886806bc55"
)

// tagsIn returns the tags among names, the entries of the directory open
// at fd, that leave out the rest of it: a cache tag (with ExcludeCaches,
// one that cacheTagged takes for one) and the names ExcludeIfPresent
// gives, whatever their type; nil where there is none.
func (s *scanner) tagsIn(fd int, names []string) []string {
	var tags []string
	for _, name := range names {
		if slices.Contains(s.tags, name) || name == cacheTag && s.caches && cacheTagged(fd) {
			tags = append(tags, name)
		}
	}
	return tags
}

// cacheTagged reports whether the directory open at fd holds a cache
// tag: a regular file called cacheTag that begins with cacheSignature.
// Anything else of that name (a file without the signature, a symlink, a
// FIFO) marks nothing.
func cacheTagged(fd int) bool {
	// Looked at before it is opened: opening a FIFO or a device has
	// effects of its own. Then checked again through the descriptor,
	// against a swap meanwhile.
	var st unix.Stat_t
	if unix.Fstatat(fd, cacheTag, &st, unix.AT_SYMLINK_NOFOLLOW) != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
		return false
	}
	tfd, err := unix.Openat(fd, cacheTag, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return false
	}
	f := os.NewFile(uintptr(tfd), cacheTag)
	defer f.Close()
	if unix.Fstat(tfd, &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
		return false
	}
	buf := make([]byte, len(cacheSignature))
	_, err = io.ReadFull(f, buf)
	return err == nil && string(buf) == cacheSignature
}

// A directory whose path is longer than anchorPath is read through an
// O_PATH descriptor its parent's reading opened (readDir), and a node
// whose path is, directory or not, keeps none (node.path). Shorter paths,
// those of every ordinary tree, are cheap for the kernel to walk and to
// keep.
const anchorPath = 1024

// maxAnchors bounds the anchors held at once (a wide directory deep down
// holds one per subdirectory until they are read): beyond it, the rest
// are opened by their paths.
const maxAnchors = 256

// anchorsUnder is how many anchors a scan holds at most under a limit of
// openFiles open files: maxAnchors, or a quarter of the limit where that
// is less. The rest is left to the directories the scan's goroutines open
// meanwhile: were the anchors to take every free descriptor under a low
// limit (64, say), which the scan kept to before anchors, directories
// would be left out, "too many open files".
func anchorsUnder(openFiles uint64) int { return int(min(maxAnchors, openFiles/4)) }

// childPath is the path of entry name of directory dir. Not filepath.Join:
// cleaning the text would take "link/.." for the directory holding link,
// where the kernel goes to the parent of link's target, and every file
// below would then be looked for in the wrong place.
func childPath(dir, name string) string {
	if strings.HasSuffix(dir, "/") {
		return dir + name
	}
	return dir + "/" + name
}

// nodePath is the source path of n, a node of nodes: its own, or, where it
// keeps none, the nearest kept one above it with the names below that
// joined on (childPath's way). The top-level sources always keep theirs;
// the implied root has none (""), and the names below it, a tar stream's
// members, are joined into a relative path.
func nodePath(nodes *nodeList, n *node) string {
	if n.path != "" || n.parent < 0 {
		return n.path
	}
	// Up to the nearest node that keeps its path, twice: to size the path,
	// then to fill it in from its end (nothing else is allocated: the
	// levels of a deep tree are many).
	top, size := n, 0
	for top.path == "" && top.parent >= 0 {
		size += 1 + len(top.name)
		top = nodes.at(top.parent)
	}
	if top.path == "" || strings.HasSuffix(top.path, "/") {
		size-- // no slash before the first name, or the top's own
	}
	b := make([]byte, len(top.path)+size)
	copy(b, top.path)
	end := len(b)
	for m := n; m != top; m = nodes.at(m.parent) {
		end -= len(m.name)
		copy(b[end:], m.name)
		if end > len(top.path) {
			end--
			b[end] = '/'
		}
	}
	return string(b)
}

// keptPath is the path a node keeps for entry name of a directory that
// keeps dir: childPath's, or none past anchorPath bytes or below a
// directory that keeps none.
func keptPath(dir, name string) string {
	n := len(dir) + len(name)
	if !strings.HasSuffix(dir, "/") {
		n++
	}
	if dir == "" || n > anchorPath {
		return ""
	}
	return childPath(dir, name)
}

// path is the source path of node i (nodePath), read under the lock: the
// scan's goroutines append to s.nodes, and grow it.
func (s *scanner) path(i int32) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return nodePath(s.nodes, s.nodes.at(i))
}

// withPath makes err, from a file opened under a name other than its path
// (none, for a node that keeps none), name path, as it did when every
// node kept its own.
func withPath(err error, path string) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		pe.Path = path
	}
	return err
}

// errLeftOut: a file that scan's skip set leaves out.
var errLeftOut = errors.New("left out")

// errExcluded: a path the user's patterns leave out (Options.Exclude).
var errExcluded = errors.New("excluded")

// stat reads the metadata of entry rel of directory dirfd (AT_FDCWD: rel
// is a path): lstat, symlink target, xattrs. path is the path the node
// keeps, for reading and for messages: none ("") for one past anchorPath,
// whose messages name the path built from parent's (node.path). in is
// where the exclude patterns stand in its directory (nil for the root,
// which is never left out): they are matched once lstat has told whether
// it is a directory, before anything else is read of it.
func (s *scanner) stat(dirfd int, rel, path string, name []byte, parent int32, in *exclude.Dir) (node, error) {
	where := func() string {
		if path == "" && dirfd != unix.AT_FDCWD {
			return childPath(s.path(parent), rel)
		}
		return path
	}
	var st unix.Stat_t
	if err := unix.Fstatat(dirfd, rel, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return node{}, fmt.Errorf("stat %s: %w", where(), err)
	}
	if s.skip[[2]uint64{st.Dev, st.Ino}] {
		return node{}, errLeftOut
	}
	if in != nil && s.excl.Excluded(*in, string(name), st.Mode&unix.S_IFMT == unix.S_IFDIR) {
		s.mu.Lock()
		s.counts.excluded++
		s.mu.Unlock()
		return node{}, errExcluded
	}
	n := node{name: name, path: path, parent: parent, nlink: uint32(min(st.Nlink, math.MaxUint32))}
	n.setStat(&st)
	if t := st.Mode & unix.S_IFMT; t == unix.S_IFCHR || t == unix.S_IFBLK {
		n.setExtra(func(e *nodeExtra) { e.rdev = st.Rdev })
	}
	if !nsFits(st.Mtim) || !nsFits(st.Atim) {
		s.warn(fmt.Errorf("%s: a time outside what the archive holds (nanoseconds from 1970 in 64 bits: the years 1678 to 2262), kept as the nearest it holds", where()))
	}
	switch n.mode & format.ModeType {
	case format.ModeReg:
	case format.ModeLink:
		t, err := readlinkat(dirfd, rel)
		if err != nil {
			return node{}, fmt.Errorf("read symlink %s: %w", where(), err)
		}
		n.setExtra(func(e *nodeExtra) { e.target = t })
		n.size = int64(len(t))
	default:
		n.size = 0
	}
	if len(name) > format.MaxNameLen {
		return node{}, fmt.Errorf("%s: name longer than %d bytes", where(), format.MaxNameLen)
	}
	xpath := rel // AT_FDCWD: a path
	if dirfd != unix.AT_FDCWD {
		// Through the directory's descriptor, as the rest: the l*xattr
		// calls follow no symlink in the last name only.
		xpath = "/proc/self/fd/" + strconv.Itoa(dirfd) + "/" + rel
	}
	xs, err := readXattrs(xpath)
	if err != nil {
		s.warn(fmt.Errorf("extended attributes of %s: %w", where(), err))
	}
	n.setExtra(func(e *nodeExtra) { e.xattrs = xs })
	return n, nil
}

// readXattrs lists and reads a path's extended attributes without following
// a symlink. Filesystems without xattr support yield none.
func readXattrs(path string) ([]xattr, error) {
	return xattrsBy(func(b []byte) (int, error) { return unix.Llistxattr(path, b) },
		func(name string, b []byte) (int, error) { return unix.Lgetxattr(path, name, b) })
}

// readXattrsFd is readXattrs of the open file fd.
func readXattrsFd(fd int) ([]xattr, error) {
	return xattrsBy(func(b []byte) (int, error) { return unix.Flistxattr(fd, b) },
		func(name string, b []byte) (int, error) { return unix.Fgetxattr(fd, name, b) })
}

// xattrsBy reads the extended attributes that list names, each through get.
func xattrsBy(list func([]byte) (int, error), get func(string, []byte) (int, error)) ([]xattr, error) {
	buf := make([]byte, 256)
	var sz int
	for {
		var err error
		sz, err = list(buf)
		if err == unix.ERANGE {
			need, err2 := list(nil)
			if err2 != nil {
				return nil, err2
			}
			buf = make([]byte, need+64)
			continue
		}
		if err == unix.ENOTSUP || err == unix.ENODATA {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		break
	}
	if sz == 0 {
		return nil, nil
	}
	var out []xattr
	for _, name := range bytes.Split(buf[:sz], []byte{0}) {
		if len(name) == 0 {
			continue
		}
		val := make([]byte, 256)
		for {
			n, err := get(string(name), val)
			if err == unix.ERANGE {
				need, err2 := get(string(name), nil)
				if err2 != nil {
					return out, err2
				}
				val = make([]byte, need+64)
				continue
			}
			if err == unix.ENODATA {
				val = nil
				break
			}
			if err != nil {
				return out, fmt.Errorf("%s: %w", name, err)
			}
			val = val[:n]
			break
		}
		if val == nil {
			continue
		}
		if len(val) > format.MaxXattrValue {
			return out, fmt.Errorf("%s: value of %d bytes is over the %d-byte limit", name, len(val), format.MaxXattrValue)
		}
		out = append(out, xattr{name: append([]byte(nil), name...), value: val})
	}
	slices.SortFunc(out, func(a, b xattr) int { return bytes.Compare(a.name, b.name) })
	return out, nil
}

// readlinkat reads the target of symlink rel in dirfd.
func readlinkat(dirfd int, rel string) ([]byte, error) {
	for size := 256; ; size *= 2 {
		buf := make([]byte, size)
		n, err := unix.Readlinkat(dirfd, rel, buf)
		if err != nil {
			return nil, err
		}
		if n < size {
			return buf[:n], nil
		}
	}
}

// errReplaced: what a path names now is not what the scan listed.
var errReplaced = errors.New("replaced since the scan listed it")

// openListed opens path for reading without following a symlink in its
// last name and without waiting on a FIFO (O_NONBLOCK, cleared once open),
// and checks that it is what the scan listed there: device dev, inode ino,
// and a directory for O_DIRECTORY, a regular file otherwise. A path whose
// directories were swapped for symlinks since the scan reaches another
// file, which this refuses (errReplaced). It returns the file's stat.
// A path past PATH_MAX is opened in pieces (descend).
func openListed(path string, flags int, dev, ino uint64) (int, unix.Stat_t, error) {
	dirfd, rel, err := descend(path)
	if err != nil {
		return -1, unix.Stat_t{}, &os.PathError{Op: "open", Path: path, Err: err}
	}
	if dirfd != unix.AT_FDCWD {
		defer unix.Close(dirfd)
	}
	return openAt(dirfd, rel, path, flags, func(st *unix.Stat_t) bool { return st.Dev == dev && st.Ino == ino })
}

// openAt opens rel in dirfd as openListed does (no symlink in its last
// name, no wait on a FIFO, a directory for O_DIRECTORY and a regular file
// otherwise) and checks it with is (errReplaced when it says no).
func openAt(dirfd int, rel, path string, flags int, is func(*unix.Stat_t) bool) (int, unix.Stat_t, error) {
	var st unix.Stat_t
	for {
		keep := unix.O_NOATIME // the flags F_SETFL keeps
		fd, err := unix.Openat(dirfd, rel, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_NOATIME|flags, 0)
		if err == unix.EPERM { // O_NOATIME: only for the owner or root
			keep = 0
			fd, err = unix.Openat(dirfd, rel, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NOFOLLOW|unix.O_NONBLOCK|flags, 0)
		}
		if err == unix.EINTR {
			continue
		}
		if err == unix.ELOOP {
			// O_NOFOLLOW meets a symlink where the scan listed a file
			// or a directory: said as "too many levels of symbolic
			// links", it read as a loop.
			err = errReplaced
		}
		if err != nil {
			return -1, st, &os.PathError{Op: "open", Path: path, Err: err}
		}
		if err := unix.Fstat(fd, &st); err != nil {
			unix.Close(fd)
			return -1, st, &os.PathError{Op: "stat", Path: path, Err: err}
		}
		want := uint32(unix.S_IFREG)
		if flags&unix.O_DIRECTORY != 0 {
			want = unix.S_IFDIR
		}
		if st.Mode&unix.S_IFMT != want || !is(&st) {
			unix.Close(fd)
			return -1, st, &os.PathError{Op: "open", Path: path, Err: errReplaced}
		}
		// Blocking again, in one system call: of the status flags
		// F_SETFL sets, only O_NOATIME was asked for.
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFL, keep); err != nil {
			unix.Close(fd)
			return -1, st, &os.PathError{Op: "open", Path: path, Err: err}
		}
		return fd, st, nil
	}
}

// maxPathArg is the longest path a system call takes: PATH_MAX (4096)
// counts the terminating NUL. Longer ones fail with ENAMETOOLONG, however
// deep the filesystem goes.
const maxPathArg = unix.PathMax - 1

// descend makes a path of any length usable: one that fits is returned as
// it is, with AT_FDCWD, at no cost (every path of an ordinary tree); a
// longer one is resolved up to a slash at most maxPathArg bytes in, into
// an O_PATH descriptor of that directory, the rest from there the same
// way, until what is left fits. The caller opens that relative to dirfd
// and closes dirfd. Each piece is resolved as the kernel resolves a whole
// path (symlinks among the directories are followed), so the file reached
// is the one the whole path names, and openListed checks it is the one
// listed. At most two descriptors are open at once, at any depth.
func descend(path string) (dirfd int, rest string, err error) {
	dirfd = unix.AT_FDCWD
	for len(path) > maxPathArg {
		cut := strings.LastIndexByte(path[:maxPathArg+1], '/')
		fd := -1
		err = unix.ENAMETOOLONG // no slash in reach: no name is that long
		if cut > 0 {
			fd, err = unix.Openat(dirfd, path[:cut], unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		}
		if dirfd != unix.AT_FDCWD {
			unix.Close(dirfd)
		}
		if err != nil {
			return unix.AT_FDCWD, "", err
		}
		// Relative to fd: no leading slash, even from a doubled one.
		dirfd, path = fd, strings.TrimLeft(path[cut+1:], "/")
	}
	return dirfd, path, nil
}

// The archive keeps times as nanoseconds since 1970 in an int64: the years
// 1678 to 2262, from minSec+minNsec to maxSec+maxNsec (a Timespec's Nsec
// is 0 to 999,999,999, also before 1970). Times outside are kept as the
// nearest inside, the last or first nanosecond, not wrapped around
// (Timespec.Nano overflows silently).
const (
	maxSec, maxNsec = math.MaxInt64 / 1_000_000_000, math.MaxInt64 % 1_000_000_000                 // 9223372036 s + 854775807 ns
	minSec, minNsec = math.MinInt64/1_000_000_000 - 1, math.MinInt64%1_000_000_000 + 1_000_000_000 // -9223372037 s + 145224192 ns
)

// nsFits reports whether t is within the range the archive holds.
func nsFits(t unix.Timespec) bool {
	return (t.Sec < maxSec || t.Sec == maxSec && t.Nsec <= maxNsec) &&
		(t.Sec > minSec || t.Sec == minSec && t.Nsec >= minNsec)
}

// timespecOf is t as a Timespec, for nsFits and nsOf.
func timespecOf(t time.Time) unix.Timespec {
	return unix.Timespec{Sec: t.Unix(), Nsec: int64(t.Nanosecond())}
}

// impliedDir is a directory no source names, made up by the writer: the
// root that holds several sources, a parent a tar stream never names.
// It is the packing user's, 0755, made now.
func impliedDir() node {
	now := timeNow()
	return node{mode: format.ModeDir | 0o755, uid: uint32(os.Getuid()), gid: uint32(os.Getgid()), mtime: now, atime: now, implied: true}
}

// setStat takes n's identity, type and permissions, owner, size and
// times from st (what the scan and a reopen after it both read).
func (n *node) setStat(st *unix.Stat_t) {
	n.dev, n.ino = st.Dev, st.Ino
	n.mode, n.uid, n.gid = st.Mode, st.Uid, st.Gid
	n.size, n.sparse = st.Size, sparseStat(st)
	n.mtime, n.atime = nsOf(st.Mtim), nsOf(st.Atim)
}

// sparseStat reports whether a regular file has fewer blocks than its size
// needs, and so may hold holes worth looking for.
func sparseStat(st *unix.Stat_t) bool { return st.Size > 0 && st.Blocks*512 < st.Size }

// nsOf is t in nanoseconds since 1970, clamped to the range the archive
// holds.
func nsOf(t unix.Timespec) int64 {
	switch {
	case nsFits(t):
		return t.Nano()
	case t.Sec > 0:
		return math.MaxInt64
	}
	return math.MinInt64
}
