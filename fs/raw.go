package fs

import (
	"sync/atomic"
	"syscall"

	"arc/format"

	"github.com/hanwen/go-fuse/v2/fuse"
)

// rawFS answers the kernel's requests (go-fuse's server reads them and
// writes the replies) from the index. It keeps no state per node or per
// open directory: node IDs are inode numbers (kernel.go), a listing's
// offsets are positions in the directory's dirents, and nothing is
// opened, so go-fuse's node tree, which kept an object per entry the
// kernel had met (about 540 bytes each: 540 MB after a find over a
// million files), is not needed. Requests not answered here get ENOSYS
// from the embedded default.
type rawFS struct {
	fuse.RawFileSystem
	f *FS
	// srv: the server, from Init (stores into the kernel's cache go
	// through it; tests ask it what the kernel offered).
	srv atomic.Pointer[fuse.Server]
	// noOpendir: the kernel said at INIT that it can do without OPENDIR.
	noOpendir atomic.Bool
	// refused: OPENDIRs answered ENOSYS; listings: READDIR(PLUS) requests
	// served (tests look at both).
	refused, listings atomic.Int64
	// plus: which programs' listings give nodes (plus.go).
	plus plusMode
}

func (r *rawFS) String() string { return "arc" }

// Init is called once INIT is answered, before any other request.
func (r *rawFS) Init(s *fuse.Server) {
	r.srv.Store(s)
	r.noOpendir.Store(s.KernelSettings().Flags64()&fuse.CAP_NO_OPENDIR_SUPPORT != 0)
}

// entry fills out for inode ino: the kernel holds one lookup more of it
// once the reply is in. Generations never change (nor does the archive);
// the root's is 0, as the kernel expects of FUSE_ROOT_ID.
func (r *rawFS) entry(ino uint32, out *fuse.EntryOut) {
	f := r.f
	out.NodeId, out.Generation = nodeID(ino), 1
	if ino == 0 {
		out.Generation = 0
	}
	out.SetEntryTimeout(f.timeout)
	out.SetAttrTimeout(f.timeout)
	f.fill(ino, &out.Attr)
	f.lookedUp(ino)
}

func (r *rawFS) Lookup(cancel <-chan struct{}, h *fuse.InHeader, name string, out *fuse.EntryOut) fuse.Status {
	f := r.f
	dir, ok := f.inoOf(h.NodeId)
	if !ok {
		return fuse.Status(syscall.ESTALE)
	}
	// The kernel asks for "." and ".." only of a mount it can export
	// (finding a node by its ID alone), which go-fuse does not offer at
	// INIT; answered all the same.
	if name == "." {
		r.entry(dir, out)
		return fuse.OK
	}
	if !f.idx.IsDir(dir) {
		return fuse.ENOTDIR
	}
	if name == ".." {
		p, _, ok := f.where(dir)
		if !ok {
			return fuse.Status(syscall.ESTALE)
		}
		r.entry(p, out)
		return fuse.OK
	}
	if len(name) > format.MaxNameLen {
		// As other filesystems say it; ENOENT would also be cached
		// as a negative entry for an hour.
		return fuse.Status(syscall.ENAMETOOLONG)
	}
	d, ok := f.idx.Lookup(dir, []byte(name))
	if !ok {
		// A negative entry the kernel keeps: node ID 0 with a timeout.
		out.NodeId = 0
		out.SetEntryTimeout(f.timeout)
		return fuse.OK
	}
	ino := f.idx.Dirents.Inode[d]
	f.foundAt(dir, d, ino)
	r.plus.lookedUp(f.idx, h.Caller.Pid, dir, ino)
	r.entry(ino, out)
	return fuse.OK
}

func (r *rawFS) Forget(id, nlookup uint64) {
	if ino, ok := r.f.inoOf(id); ok {
		r.f.forget(ino, nlookup)
	}
}

func (r *rawFS) GetAttr(cancel <-chan struct{}, in *fuse.GetAttrIn, out *fuse.AttrOut) fuse.Status {
	ino, ok := r.f.inoOf(in.NodeId)
	if !ok {
		return fuse.Status(syscall.ESTALE)
	}
	r.f.fill(ino, &out.Attr)
	out.SetTimeout(r.f.timeout)
	return fuse.OK
}

func (r *rawFS) Readlink(cancel <-chan struct{}, h *fuse.InHeader) ([]byte, fuse.Status) {
	ino, ok := r.f.inoOf(h.NodeId)
	if !ok {
		return nil, fuse.Status(syscall.ESTALE)
	}
	if r.f.idx.Inodes.Mode[ino]&format.ModeType != format.ModeLink {
		return nil, fuse.EINVAL
	}
	return r.f.idx.Symlink(ino), fuse.OK
}

// Open answers ENOSYS: the kernel then stops sending OPEN and RELEASE for
// files at all (FUSE_NO_OPEN_SUPPORT), which saves two round trips per file
// for tar, cp and rsync, and keeps cached pages across opens (its default
// for no-open is FOPEN_KEEP_CACHE). Nothing is lost: the mount is read-only
// (MS_RDONLY refuses writable opens before FUSE sees them) and
// default_permissions has the kernel check the archived modes.
func (r *rawFS) Open(cancel <-chan struct{}, in *fuse.OpenIn, out *fuse.OpenOut) fuse.Status {
	return fuse.ENOSYS
}

// Flush answers ENOSYS, which makes kernels older than FOPEN_NOFLUSH
// (5.19) stop sending FLUSH at all.
func (r *rawFS) Flush(cancel <-chan struct{}, in *fuse.FlushIn) fuse.Status { return fuse.ENOSYS }

func (r *rawFS) Read(cancel <-chan struct{}, in *fuse.ReadIn, buf []byte) (fuse.ReadResult, fuse.Status) {
	ino, ok := r.f.inoOf(in.NodeId)
	if !ok {
		return nil, fuse.Status(syscall.ESTALE)
	}
	if r.f.idx.Inodes.Mode[ino]&format.ModeType != format.ModeReg {
		return nil, fuse.Status(syscall.EISDIR)
	}
	res, errno := r.f.read(ino, buf[:min(len(buf), int(in.Size))], int64(in.Offset))
	return res, fuse.Status(errno)
}

func (r *rawFS) Lseek(cancel <-chan struct{}, in *fuse.LseekIn, out *fuse.LseekOut) fuse.Status {
	ino, ok := r.f.inoOf(in.NodeId)
	if !ok {
		return fuse.Status(syscall.ESTALE)
	}
	off, errno := r.f.lseek(ino, in.Offset, in.Whence)
	out.Offset = off
	return fuse.Status(errno)
}

func (r *rawFS) StatFs(cancel <-chan struct{}, h *fuse.InHeader, out *fuse.StatfsOut) fuse.Status {
	r.f.statfs(out)
	return fuse.OK
}

func (r *rawFS) GetXAttr(cancel <-chan struct{}, h *fuse.InHeader, attr string, dest []byte) (uint32, fuse.Status) {
	ino, ok := r.f.inoOf(h.NodeId)
	if !ok {
		return 0, fuse.Status(syscall.ESTALE)
	}
	n, errno := r.f.getxattr(ino, attr, dest)
	return n, fuse.Status(errno)
}

func (r *rawFS) ListXAttr(cancel <-chan struct{}, h *fuse.InHeader, dest []byte) (uint32, fuse.Status) {
	ino, ok := r.f.inoOf(h.NodeId)
	if !ok {
		return 0, fuse.Status(syscall.ESTALE)
	}
	n, errno := r.f.listxattr(ino, &h.Caller, dest)
	return n, fuse.Status(errno)
}

// OpenDir answers ENOSYS where the kernel allows it
// (FUSE_NO_OPENDIR_SUPPORT, Linux 5.1 on). The kernel then stops sending
// OPENDIR and RELEASEDIR for the life of the mount, and caches each
// listing as if we had asked for it (FOPEN_CACHE_DIR | FOPEN_KEEP_CACHE):
// a cold walk of the tree pays two round trips per directory instead of
// four (about 10,000 fewer for the Go toolchains tree), and a listing read
// again costs none. The archive's listings never change, so nothing is
// lost by the kernel keeping them. Elsewhere a directory opens with those
// flags and no handle: a listing needs none (readdir).
//
// Without OPENDIR one thing is lost: a listing the kernel serves from its
// cache sends no request at all, so push-ahead (push.go) no longer hears of a directory
// opened again by a second walk, and starts there a file later.
func (r *rawFS) OpenDir(cancel <-chan struct{}, in *fuse.OpenIn, out *fuse.OpenOut) fuse.Status {
	if r.noOpendir.Load() {
		r.refused.Add(1)
		return fuse.ENOSYS
	}
	ino, ok := r.f.inoOf(in.NodeId)
	if !ok {
		return fuse.Status(syscall.ESTALE)
	}
	if !r.f.idx.IsDir(ino) {
		return fuse.ENOTDIR
	}
	r.f.push.onOpendir(ino, in.Caller.Pid)
	out.Fh, out.OpenFlags = 0, fuse.FOPEN_CACHE_DIR|fuse.FOPEN_KEEP_CACHE
	return fuse.OK
}

func (r *rawFS) ReleaseDir(in *fuse.ReleaseIn) {}

// Ioctl answers ENOTTY, what a file that takes no ioctls says: overlayfs
// (Linux 5.15 on) asks its lower layer for file flags on copy-up and
// takes ENOTTY, not ENOSYS, as "none".
func (r *rawFS) Ioctl(cancel <-chan struct{}, in *fuse.IoctlIn, inbuf []byte, out *fuse.IoctlOut, outbuf []byte) fuse.Status {
	return fuse.Status(syscall.ENOTTY)
}

func (r *rawFS) ReadDir(cancel <-chan struct{}, in *fuse.ReadIn, out *fuse.DirEntryList) fuse.Status {
	return r.readdir(in, out, false)
}

func (r *rawFS) ReadDirPlus(cancel <-chan struct{}, in *fuse.ReadIn, out *fuse.DirEntryList) fuse.Status {
	return r.readdir(in, out, true)
}
