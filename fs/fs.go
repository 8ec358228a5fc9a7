// Package fs serves an arc archive as a read-only FUSE filesystem. It
// answers the kernel's requests itself (go-fuse/v2's fuse package carries
// them; raw.go) straight from the columnar index: a node ID is an inode
// number, so mounting builds nothing per entry, and however much of the
// tree the kernel has met, the server tracks it in one table of 16 bytes
// per inode (kernel.go).
package fs

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"arc/format"
	"arc/internal/slab"

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
	// CPUs is how many CPUs the mount may use (a CPU quota's share, where
	// there is one); it sets how many goroutines push ahead. 0: all the
	// machine's.
	CPUs int
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
	// timeout: how long the kernel may keep entries and attributes.
	timeout time.Duration
	// held: what the kernel has of each inode (kernel.go).
	held []held

	mu      sync.Mutex
	damaged map[uint32]bool // inodes whose read error was logged

	holes map[uint32]uint64 // hole bytes of sparse files

	statfsOnce sync.Once
	blocks     uint64 // 4 KiB blocks of all file content, for statfs

	push pusher
	// conn: the mount's connection, where push-ahead's stores go
	// (notify.go); debug: log each store written there, as go-fuse logs
	// the messages it writes (--debug).
	conn  conn
	debug bool
	// readBufs: the buffers READs are answered from (bufResult), kept
	// from one READ to the next.
	readBufs *slab.Pool
	reads    atomic.Int64 // READ requests served, for tests
	raw      *rawFS       // the request layer, for tests
}

// newFS prepares a filesystem over ar (Mount serves it).
func newFS(ar Archive, logf func(format string, args ...any)) *FS {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	idx := ar.Index()
	f := &FS{ar: ar, idx: idx, xattrs: idx.Xattrs.Count() > 0, logf: logf, timeout: time.Hour,
		held: newHeld(idx), damaged: map[uint32]bool{}, holes: holeBytes(idx), readBufs: slab.New(maxIO)}
	f.push.f, f.push.epoch = f, time.Now()
	f.push.workers = workers(runtime.NumCPU())
	f.raw = &rawFS{RawFileSystem: fuse.NewDefaultRawFileSystem(), f: f}
	return f
}

// mountOptions are the go-fuse server's options for a mount of f.
func (f *FS) mountOptions(o Options) *fuse.MountOptions {
	name := o.FsName
	if name == "" {
		name = "arc"
	}
	return &fuse.MountOptions{
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
// between a store the kernel refused and its next pick); then it closes
// the push's duplicate of the connection (notify.go).
func (s *Server) Wait() {
	s.Server.Wait()
	s.f.push.pause(true)
	s.f.conn.close()
	s.f.readBufs.Close()
}

// mountWith is Mount, also giving the filesystem (tests look at its counters).
func mountWith(dir string, ar Archive, o Options) (*Server, *FS, error) {
	f := newFS(ar, o.Logf)
	f.push.off = o.NoPushAhead
	if o.CPUs > 0 {
		f.push.workers = workers(o.CPUs)
	}
	if o.Timeout > 0 {
		f.timeout = o.Timeout
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, nil, err
	}
	srv, err := fuse.NewServer(f.raw, abs, f.mountOptions(o))
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
		f.debug = o.Debug
		if err := f.conn.connect(st.Dev); err != nil && o.Debug {
			f.logf("stores go through go-fuse: %v", err)
		}
	}
	if err := widenReadAhead(abs); err != nil && o.Debug {
		f.logf("read-ahead stays at the kernel's default: %v", err)
	}
	return &Server{Server: srv, f: f}, f, nil
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

// statfs says what statfs(2) shows on every node: the archive's total
// content and file count, read-only.
func (f *FS) statfs(out *fuse.StatfsOut) {
	const bsize = 4096
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
	out.Files = uint64(f.idx.Inodes.Count())
	out.NameLen = format.MaxNameLen
}

// read answers a READ of [off, off+len(dest)) of regular file ino.
func (f *FS) read(ino uint32, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	f.reads.Add(1)
	size := int64(f.idx.Inodes.Size[ino])
	if off >= size {
		return fuse.ReadResultData(nil), 0
	}
	if rest := size - off; int64(len(dest)) > rest {
		dest = dest[:rest]
	}
	// Into a buffer of ours rather than go-fuse's dest (see readbuf.go).
	var buf []byte
	if len(dest) <= maxIO {
		buf = f.readBufs.Get()[:len(dest)]
	} else {
		buf = dest
	}
	handed := false
	defer func() {
		if !handed { // an error, an empty reply, a panic in ReadAt
			f.readBufs.Put(buf) // (a buffer not the pool's is ignored)
		}
	}()
	got, err := f.ar.ReadAt(ino, buf, off)
	if err != nil && !(err == io.EOF && got == len(buf)) {
		f.damage(ino, err)
		return nil, syscall.EIO
	}
	f.push.onRead(ino, off, got)
	if got == 0 {
		// go-fuse never calls Done on an empty result.
		return fuse.ReadResultData(nil), 0
	}
	handed = true
	return &bufResult{buf[:got], f.readBufs}, 0
}

// damage logs a file's first read error; later errors of the same file
// stay quiet so a damaged file costs one line, not one per read.
func (f *FS) damage(ino uint32, err error) {
	f.mu.Lock()
	seen := f.damaged[ino]
	f.damaged[ino] = true
	f.mu.Unlock()
	if !seen {
		f.logf("%s: %v", f.path(ino), err)
	}
}

// getxattr answers GETXATTR of attr on inode ino.
func (f *FS) getxattr(ino uint32, attr string, dest []byte) (uint32, syscall.Errno) {
	x := f.idx
	s, e := x.XattrRange(ino)
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

// listxattr answers LISTXATTR of inode ino for caller. It leaves
// trusted.* names out for a caller without CAP_SYS_ADMIN, as ext4 and
// squashfs do: the kernel refuses such a caller their values (ENODATA),
// so getfattr -d and rsync -X would fail on each name listed.
func (f *FS) listxattr(ino uint32, caller *fuse.Caller, dest []byte) (uint32, syscall.Errno) {
	x := f.idx
	s, e := x.XattrRange(ino)
	trusted := -1 // unknown until a trusted.* name asks
	listed := func(i uint32) bool {
		if !bytes.HasPrefix(x.XattrName(i), []byte("trusted.")) {
			return true
		}
		if trusted < 0 {
			trusted = 0
			if sysAdmin(caller) {
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
func sysAdmin(c *fuse.Caller) bool {
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
