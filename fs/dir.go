package fs

import (
	"bytes"
	"context"
	"syscall"

	"arc/format"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

var (
	_ gofs.FileReaddirenter = (*dirHandle)(nil)
	_ gofs.FileSeekdirer    = (*dirHandle)(nil)
	_ gofs.FileLookuper     = (*dirHandle)(nil)
	_ gofs.FileReleasedirer = (*dirHandle)(nil)
)

// dirHandle streams a directory's entries straight from its contiguous
// dirent range: nothing is copied. Offsets 1 and 2 are "." and "..";
// entry i of the range has offset i+3.
type dirHandle struct {
	n               *node
	start, end, cur uint32
	dots            uint8         // "." and ".." already returned
	ends            uint8         // ends of the listing returned since the last seek
	de              fuse.DirEntry // reused: go-fuse copies what it keeps
}

func (n *node) OpendirHandle(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	if !n.fs.idx.IsDir(n.ino) {
		return nil, 0, syscall.ENOTDIR
	}
	s, e := n.fs.idx.Children(n.ino)
	n.fs.push.onOpendir(n.ino, callerThread(ctx))
	// The listing never changes: let the kernel cache it.
	return &dirHandle{n: n, start: s, end: e, cur: s}, fuse.FOPEN_CACHE_DIR | fuse.FOPEN_KEEP_CACHE, 0
}

func (h *dirHandle) Readdirent(ctx context.Context) (*fuse.DirEntry, syscall.Errno) {
	if h.dots < 2 {
		h.dots++
		h.de = fuse.DirEntry{Name: ".", Mode: format.ModeDir, Ino: h.n.StableAttr().Ino, Off: uint64(h.dots)}
		if h.dots == 2 {
			h.de.Name = ".."
			if _, p := h.n.Parent(); p != nil {
				h.de.Ino = p.StableAttr().Ino
			}
		}
		return &h.de, 0
	}
	if h.cur >= h.end {
		if h.ends++; h.ends == 2 {
			// The end again: a READDIRPLUS after the one that ended
			// the listing, so the kernel has taken in every entry.
			h.n.fs.push.onListed(h.n, callerThread(ctx))
		}
		return nil, 0
	}
	x := h.n.fs.idx
	d := h.cur
	h.cur++
	ino := x.Dirents.Inode[d]
	h.de = fuse.DirEntry{
		Name: string(x.Name(d)),
		Mode: x.Inodes.Mode[ino] & format.ModeType,
		Ino:  uint64(ino) + 1,
		Off:  uint64(h.cur-h.start) + 2,
	}
	return &h.de, 0
}

func (h *dirHandle) Seekdir(ctx context.Context, off uint64) syscall.Errno {
	if off > uint64(h.end-h.start)+2 {
		return syscall.EINVAL
	}
	h.dots = uint8(min(off, 2))
	h.ends = 0
	h.cur = h.start + uint32(max(off, 2)-2)
	if off > 0 && h.cur == h.end {
		// Asked to go on from the end: the kernel has taken in the
		// whole listing (each READDIRPLUS gets a fresh handle when
		// the kernel does without OPENDIR, see noOpendir).
		h.ends = 1
	}
	return 0
}

// Lookup serves READDIRPLUS: the entry just returned is the one asked
// about, so the binary search is skipped.
func (h *dirHandle) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	if h.dots == 2 && h.cur > h.start && bytes.Equal(h.n.fs.idx.Name(h.cur-1), []byte(name)) {
		return h.n.child(ctx, h.cur-1, out), 0
	}
	return h.n.Lookup(ctx, name, out)
}

func (h *dirHandle) Releasedir(ctx context.Context, releaseFlags uint32) {}

// callerThread is the thread that made the request (the kernel's pid of a
// task), 0 when go-fuse does not say.
func callerThread(ctx context.Context) uint32 {
	if c, ok := fuse.FromContext(ctx); ok {
		return c.Pid
	}
	return 0
}
