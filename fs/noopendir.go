package fs

import (
	"sync/atomic"

	"github.com/hanwen/go-fuse/v2/fuse"
)

// noOpendir sits between the kernel and go-fuse's node bridge and answers
// OPENDIR with ENOSYS where the kernel allows it (FUSE_NO_OPENDIR_SUPPORT,
// Linux 5.1 on). The kernel then stops sending OPENDIR and RELEASEDIR for
// the life of the mount, and caches each listing as if we had asked for it
// (FOPEN_CACHE_DIR | FOPEN_KEEP_CACHE): a cold walk of the tree pays two
// round trips per directory instead of four (about 10,000 fewer for the Go
// toolchains tree), and a listing read again costs none. The archive's
// listings never change, so nothing is lost by the kernel keeping them.
//
// Each READDIR(PLUS) that then arrives without a handle is served through
// a handle opened, read and released inside the request: go-fuse's bridge
// keeps its bookkeeping (inodes, lookup counts) and our dirHandle finds
// its place again by Seekdir.
//
// One thing is lost: a listing the kernel serves from its cache sends no
// request at all, so push-ahead (push.go) no longer hears of a directory
// opened again by a second walk, and starts there a file later.
type noOpendir struct {
	fuse.RawFileSystem
	// on: the kernel said at INIT that it can do without OPENDIR.
	on atomic.Bool
	// srv: the server, from Init (tests ask it what the kernel offered).
	srv atomic.Pointer[fuse.Server]
	// refused: OPENDIRs answered ENOSYS; handleless: listings served
	// through a handle of their own (tests look at both).
	refused, handleless atomic.Int64
}

// Init is called once INIT is answered, before any other request.
func (r *noOpendir) Init(s *fuse.Server) {
	r.srv.Store(s)
	r.on.Store(s.KernelSettings().Flags64()&fuse.CAP_NO_OPENDIR_SUPPORT != 0)
	r.RawFileSystem.Init(s)
}

func (r *noOpendir) OpenDir(cancel <-chan struct{}, in *fuse.OpenIn, out *fuse.OpenOut) fuse.Status {
	if r.on.Load() {
		r.refused.Add(1)
		return fuse.ENOSYS
	}
	return r.RawFileSystem.OpenDir(cancel, in, out)
}

func (r *noOpendir) ReadDir(cancel <-chan struct{}, in *fuse.ReadIn, out *fuse.DirEntryList) fuse.Status {
	if in.Fh != 0 {
		return r.RawFileSystem.ReadDir(cancel, in, out)
	}
	return r.withHandle(cancel, in, func(in *fuse.ReadIn) fuse.Status {
		return r.RawFileSystem.ReadDir(cancel, in, out)
	})
}

func (r *noOpendir) ReadDirPlus(cancel <-chan struct{}, in *fuse.ReadIn, out *fuse.DirEntryList) fuse.Status {
	if in.Fh != 0 {
		return r.RawFileSystem.ReadDirPlus(cancel, in, out)
	}
	return r.withHandle(cancel, in, func(in *fuse.ReadIn) fuse.Status {
		return r.RawFileSystem.ReadDirPlus(cancel, in, out)
	})
}

// ReleaseDir: a handle the kernel never got is never released; one it got
// (before the capability was seen) is released as usual.
func (r *noOpendir) ReleaseDir(in *fuse.ReleaseIn) {
	if in.Fh != 0 {
		r.RawFileSystem.ReleaseDir(in)
	}
}

// withHandle runs read with a directory handle of the bridge's own, opened
// for this one request.
func (r *noOpendir) withHandle(cancel <-chan struct{}, in *fuse.ReadIn, read func(*fuse.ReadIn) fuse.Status) fuse.Status {
	r.handleless.Add(1)
	var open fuse.OpenOut
	if st := r.RawFileSystem.OpenDir(cancel, &fuse.OpenIn{InHeader: in.InHeader}, &open); !st.Ok() {
		return st
	}
	h := *in
	h.Fh = open.Fh
	st := read(&h)
	r.RawFileSystem.ReleaseDir(&fuse.ReleaseIn{InHeader: in.InHeader, Fh: open.Fh})
	return st
}
