// Package fs serves an arc archive as a read-only FUSE filesystem on
// go-fuse/v2. Nodes are created lazily, on lookup, from the columnar index:
// mounting costs nothing per entry and a node is an embedded fs.Inode plus
// a pointer and an inode number.
package fs

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"arc/format"
	"arc/internal/slab"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"
)

// Archive is what the filesystem needs from an opened archive;
// *reader.Archive implements it.
type Archive interface {
	Index() *format.Index
	// ReadAt reads regular file inode ino's content with io.ReaderAt
	// semantics. Errors (damage, a missing volume) become EIO.
	ReadAt(ino uint32, p []byte, off int64) (int, error)
}

// Options tune a mount.
type Options struct {
	// AllowOther lets users other than the mounting one see the files.
	AllowOther bool
	// MountOptions are extra -o options for the kernel / fusermount3.
	MountOptions []string
	// FsName shows as the source in /proc/mounts and df; default "arc".
	FsName string
	// Timeout is how long the kernel may cache entries, attributes and
	// negative lookups; 0 = one hour (the archive never changes).
	Timeout time.Duration
	// Debug logs every FUSE request.
	Debug bool
	// Logf receives one line per damaged file; nil = discard.
	Logf func(format string, args ...any)
	// NoPushAhead turns off storing the files that a sequential walk
	// reads next into the kernel's page cache ahead of their reads.
	NoPushAhead bool
}

// maxIO is the largest read the kernel sends and its read-ahead window.
const maxIO = 1 << 20

// FS is one mounted archive.
type FS struct {
	ar  Archive
	idx *format.Index
	// xattrs is false when the archive has none: the mount then disables
	// xattrs so the kernel stops asking (ls -l would pay two round trips
	// per file for security.selinux and ACLs).
	xattrs bool
	logf   func(format string, args ...any)

	mu      sync.Mutex
	damaged map[uint32]bool // inodes whose read error was logged

	holes map[uint32]uint64 // hole bytes of sparse files

	statfsOnce sync.Once
	blocks     uint64 // 4 KiB blocks of all file content, for statfs

	push pusher
	// readBufs: the buffers READs are answered from (bufResult), kept
	// from one READ to the next.
	readBufs *slab.Pool
	reads    atomic.Int64 // READ requests served, for tests
	raw      *noOpendir   // the request layer mountWith put in front, for tests
	root     *node        // the root node mountWith mounted, for tests
}

// New prepares a filesystem over ar; Root gives its root node.
func New(ar Archive, logf func(format string, args ...any)) *FS {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	idx := ar.Index()
	f := &FS{ar: ar, idx: idx, xattrs: idx.Xattrs.Count() > 0, logf: logf,
		damaged: map[uint32]bool{}, holes: holeBytes(idx), readBufs: slab.New(maxIO)}
	f.push.f, f.push.epoch = f, time.Now()
	return f
}

// Root is the node of the archive's root directory (archive inode 0).
func (f *FS) Root() gofs.InodeEmbedder { return f.newNode(0) }

// GoFuseOptions are the go-fuse options that a mount of f should use.
func (f *FS) GoFuseOptions(o Options) *gofs.Options {
	t := o.Timeout
	if t <= 0 {
		t = time.Hour
	}
	name := o.FsName
	if name == "" {
		name = "arc"
	}
	mo := fuse.MountOptions{
		AllowOther: o.AllowOther,
		// "ro" for fusermount3; the direct mount gets MS_RDONLY below.
		// default_permissions: the kernel checks the archived modes.
		Options:       append([]string{"ro", "default_permissions"}, o.MountOptions...),
		FsName:        name,
		Name:          "arc",
		MaxWrite:      maxIO,
		MaxReadAhead:  maxIO,
		DisableXAttrs: !f.xattrs,
		// With xattrs, ACLs among them: let the kernel enforce them too.
		EnableAcl:            f.xattrs,
		EnableSymlinkCaching: true,
		DirectMount:          true,
		DirectMountFlags:     syscall.MS_RDONLY | syscall.MS_NOSUID | syscall.MS_NODEV,
		// Our read results are bytes already in memory: splicing them
		// through a pipe costs a write, a splice and an ioctl where one
		// writev does.
		DisableSplice: true,
		Debug:         o.Debug,
	}
	return &gofs.Options{
		MountOptions:    mo,
		EntryTimeout:    &t,
		AttrTimeout:     &t,
		NegativeTimeout: &t,
		RootStableAttr:  &gofs.StableAttr{Ino: rootIno, Gen: 1},
		// Mode 0000 is a real archived mode, not "unset".
		NullPermissions: true,
	}
}

// Mount mounts ar on dir and serves it in the background; the returned
// server's Unmount ends it and Wait waits for the end.
func Mount(dir string, ar Archive, o Options) (*Server, error) {
	srv, _, err := mountWith(dir, ar, o)
	return srv, err
}

// Server serves a mounted archive.
type Server struct {
	*fuse.Server
	f *FS
}

// Unmount ends the mount. Push-ahead stops first: a worker listing a
// directory ahead of a walk keeps the mount busy while it does. If the
// unmount fails (busy with someone else's open files), push-ahead goes
// on as before.
func (s *Server) Unmount() error {
	s.f.push.pause(true)
	err := s.Server.Unmount()
	if err != nil {
		s.f.push.pause(false)
	}
	return err
}

// Wait waits for the mount to end, however it was unmounted (Unmount, or
// umount and fusermount3 -u from outside), and then for push-ahead's
// workers to stop, so that none outlives the server (a worker may be
// between a store the kernel refused and its next pick).
func (s *Server) Wait() {
	s.Server.Wait()
	s.f.push.pause(true)
	s.f.readBufs.Close()
}

// mountWith is Mount, also giving the filesystem (tests look at its counters).
func mountWith(dir string, ar Archive, o Options) (*Server, *FS, error) {
	f := New(ar, o.Logf)
	f.push.off = o.NoPushAhead
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, nil, err
	}
	opts := f.GoFuseOptions(o)
	root := f.newNode(0)
	f.root = root
	raw := &noOpendir{RawFileSystem: gofs.NewNodeFS(root, opts)}
	f.raw = raw
	srv, err := fuse.NewServer(raw, abs, &opts.MountOptions)
	if err != nil {
		return nil, nil, fmt.Errorf("mount %s: %w", abs, err)
	}
	go srv.Serve()
	if err := srv.WaitMount(); err != nil {
		// The kernel has the mount already: no error leaves it behind,
		// dead (one whose root the caller may not enter fails here).
		srv.Unmount()
		return nil, nil, fmt.Errorf("mount %s: %w", abs, err)
	}
	// Push-ahead lists directories ahead of a walk through the mount.
	var st syscall.Stat_t
	if err := syscall.Stat(abs, &st); err == nil {
		f.push.mu.Lock()
		f.push.mnt, f.push.mntDev = abs, st.Dev
		f.push.mu.Unlock()
	}
	if err := widenReadAhead(abs); err != nil && o.Debug {
		f.logf("read-ahead stays at the kernel's default: %v", err)
	}
	return &Server{Server: srv, f: f}, f, nil
}

// node is one archive inode in the go-fuse tree. Hardlinked paths share
// one node because their StableAttr.Ino is the same.
type node struct {
	gofs.Inode
	fs  *FS
	ino uint32
}

func (f *FS) newNode(ino uint32) *node { return &node{fs: f, ino: ino} }

func (f *FS) stable(ino uint32) gofs.StableAttr {
	return gofs.StableAttr{Mode: f.idx.Inodes.Mode[ino] & format.ModeType, Ino: uint64(ino) + 1, Gen: 1}
}

// fill writes inode ino's attributes.
func (f *FS) fill(ino uint32, a *fuse.Attr) {
	in := &f.idx.Inodes
	a.Ino = uint64(ino) + 1
	a.Mode = in.Mode[ino]
	a.Uid, a.Gid = in.UID[ino], in.GID[ino]
	a.Size = in.Size[ino]
	if in.Mode[ino]&format.ModeType == format.ModeReg {
		// The data's 512-byte units, holes left out. A symlink's target
		// is in the index, not in data: none (as SquashFS says too; ext4
		// says 0 or 8, depending on the target's length).
		a.Blocks = (a.Size - f.holes[ino] + 511) / 512
	}
	a.Blksize = maxIO
	a.Nlink = f.idx.Nlink[ino]
	a.Rdev = uint32(in.Rdev[ino])
	setTime := func(ns int64) (uint64, uint32) {
		s, n := ns/1e9, ns%1e9
		if n < 0 {
			s, n = s-1, n+1e9
		}
		return uint64(s), uint32(n)
	}
	a.Mtime, a.Mtimensec = setTime(in.Mtime[ino])
	a.Atime, a.Atimensec = setTime(in.Atime[ino])
	a.Ctime, a.Ctimensec = a.Mtime, a.Mtimensec
}

var (
	_ gofs.NodeLookuper       = (*node)(nil)
	_ gofs.NodeOpendirHandler = (*node)(nil)
	_ gofs.NodeGetattrer      = (*node)(nil)
	_ gofs.NodeReadlinker     = (*node)(nil)
	_ gofs.NodeOpener         = (*node)(nil)
	_ gofs.NodeReader         = (*node)(nil)
	_ gofs.NodeStatfser       = (*node)(nil)
	_ gofs.NodeGetxattrer     = (*node)(nil)
	_ gofs.NodeListxattrer    = (*node)(nil)
	_ gofs.NodeFlusher        = (*node)(nil)
)

// child makes (or lets go-fuse find) the node for dirent d.
func (n *node) child(ctx context.Context, d uint32, out *fuse.EntryOut) *gofs.Inode {
	ino := n.fs.idx.Dirents.Inode[d]
	n.fs.fill(ino, &out.Attr)
	return n.NewInode(ctx, n.fs.newNode(ino), n.fs.stable(ino))
}

func (n *node) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	if !n.fs.idx.IsDir(n.ino) {
		return nil, syscall.ENOTDIR
	}
	if len(name) > format.MaxNameLen {
		// As other filesystems say it; ENOENT would also be cached
		// as a negative entry for an hour.
		return nil, syscall.ENAMETOOLONG
	}
	d, ok := n.fs.idx.Lookup(n.ino, []byte(name))
	if !ok {
		return nil, syscall.ENOENT
	}
	return n.child(ctx, d, out), 0
}

func (n *node) Getattr(ctx context.Context, _ gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	n.fs.fill(n.ino, &out.Attr)
	return 0
}

func (n *node) Readlink(ctx context.Context) ([]byte, syscall.Errno) {
	if n.fs.idx.Inodes.Mode[n.ino]&format.ModeType != format.ModeLink {
		return nil, syscall.EINVAL
	}
	return n.fs.idx.Symlink(n.ino), 0
}

func (n *node) Statfs(ctx context.Context, out *fuse.StatfsOut) syscall.Errno {
	const bsize = 4096
	f := n.fs
	f.statfsOnce.Do(func() { // once: a million inodes take a millisecond
		// Used space as du counts it: the holes of sparse files take none.
		for ino, s := range f.idx.Inodes.Size {
			if f.idx.Inodes.Mode[ino]&format.ModeType == format.ModeReg {
				f.blocks += (s - f.holes[uint32(ino)] + bsize - 1) / bsize
			}
		}
	})
	out.Blocks = f.blocks
	out.Bsize = bsize
	out.Frsize = bsize
	out.Files = uint64(n.fs.idx.Inodes.Count())
	out.NameLen = format.MaxNameLen
	return 0
}

// Open answers ENOSYS: the kernel then stops sending OPEN and RELEASE for
// files at all (FUSE_NO_OPEN_SUPPORT), which saves two round trips per file
// for tar, cp and rsync, and keeps cached pages across opens (its default
// for no-open is FOPEN_KEEP_CACHE). Nothing is lost: the mount is read-only
// (MS_RDONLY refuses writable opens before FUSE sees them) and
// default_permissions has the kernel check the archived modes.
func (n *node) Open(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	return nil, 0, syscall.ENOSYS
}

// Flush answers ENOSYS, which makes kernels older than FOPEN_NOFLUSH
// (5.19) stop sending FLUSH at all.
func (n *node) Flush(ctx context.Context, f gofs.FileHandle) syscall.Errno { return syscall.ENOSYS }

func (n *node) Read(ctx context.Context, _ gofs.FileHandle, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	n.fs.reads.Add(1)
	size := int64(n.fs.idx.Inodes.Size[n.ino])
	if off >= size {
		return fuse.ReadResultData(nil), 0
	}
	if rest := size - off; int64(len(dest)) > rest {
		dest = dest[:rest]
	}
	// Into a buffer of ours rather than go-fuse's dest (see readbuf.go).
	var buf []byte
	if len(dest) <= maxIO {
		buf = n.fs.readBufs.Get()[:len(dest)]
	} else {
		buf = dest
	}
	handed := false
	defer func() {
		if !handed { // an error, an empty reply, a panic in ReadAt
			n.fs.readBufs.Put(buf) // (a buffer not the pool's is ignored)
		}
	}()
	got, err := n.fs.ar.ReadAt(n.ino, buf, off)
	if err != nil && !(err == io.EOF && got == len(buf)) {
		n.fs.damage(n, err)
		return nil, syscall.EIO
	}
	n.fs.push.onRead(n, off, got)
	if got == 0 {
		// go-fuse never calls Done on an empty result.
		return fuse.ReadResultData(nil), 0
	}
	handed = true
	return &bufResult{buf[:got], n.fs.readBufs}, 0
}

// damage logs a file's first read error; later errors of the same file
// stay quiet so a damaged file costs one line, not one per read.
func (f *FS) damage(n *node, err error) {
	f.mu.Lock()
	seen := f.damaged[n.ino]
	f.damaged[n.ino] = true
	f.mu.Unlock()
	if !seen {
		f.logf("%s: %v", "/"+n.Path(nil), err)
	}
}

func (n *node) Getxattr(ctx context.Context, attr string, dest []byte) (uint32, syscall.Errno) {
	x := n.fs.idx
	s, e := x.XattrRange(n.ino)
	for i := s; i < e; i++ {
		if string(x.XattrName(i)) != attr {
			continue
		}
		v := x.XattrValue(i)
		if len(dest) == 0 {
			return uint32(len(v)), 0
		}
		if len(dest) < len(v) {
			return uint32(len(v)), syscall.ERANGE
		}
		return uint32(copy(dest, v)), 0
	}
	return 0, syscall.ENODATA
}

// Listxattr leaves trusted.* names out for a caller without CAP_SYS_ADMIN,
// as ext4 and squashfs do: the kernel refuses such a caller their values
// (ENODATA), so getfattr -d and rsync -X would fail on each name listed.
func (n *node) Listxattr(ctx context.Context, dest []byte) (uint32, syscall.Errno) {
	x := n.fs.idx
	s, e := x.XattrRange(n.ino)
	trusted := -1 // unknown until a trusted.* name asks
	listed := func(i uint32) bool {
		if !bytes.HasPrefix(x.XattrName(i), []byte("trusted.")) {
			return true
		}
		if trusted < 0 {
			trusted = 0
			if sysAdmin(ctx) {
				trusted = 1
			}
		}
		return trusted == 1
	}
	var need int
	for i := s; i < e; i++ {
		if listed(i) {
			need += len(x.XattrName(i)) + 1
		}
	}
	if len(dest) == 0 {
		return uint32(need), 0
	}
	if len(dest) < need {
		return uint32(need), syscall.ERANGE
	}
	p := dest[:0]
	for i := s; i < e; i++ {
		if listed(i) {
			p = append(p, x.XattrName(i)...)
			p = append(p, 0)
		}
	}
	return uint32(len(p)), 0
}

// sysAdmin reports whether the caller of a request has CAP_SYS_ADMIN (its
// effective set in /proc), or, where that cannot be read (a caller outside
// the server's pid namespace, gone already), whether it runs as root.
func sysAdmin(ctx context.Context) bool {
	c, ok := fuse.FromContext(ctx)
	if !ok {
		return true
	}
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", c.Pid)); c.Pid != 0 && err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "CapEff:"); ok {
				if caps, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64); err == nil {
					return caps&(1<<unix.CAP_SYS_ADMIN) != 0
				}
			}
		}
	}
	return c.Uid == 0
}
