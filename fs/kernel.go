package fs

import (
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"

	"arc/format"
)

// A kernel node ID is the archive inode number plus one: the root (inode
// 0) is FUSE_ROOT_ID, and hardlinked paths share a node because they
// share an inode. The archive never changes, so an ID means the same
// inode for the life of the mount whatever the kernel forgets, and the
// server keeps no object per node: what it tracks of the kernel's nodes
// is a table of 16 bytes per inode (held), made when mounting and
// touched only where the kernel goes.
func nodeID(ino uint32) uint64 { return uint64(ino) + 1 }

// inoOf is nodeID's inverse; ok is false for an ID that names no inode.
func (f *FS) inoOf(id uint64) (uint32, bool) {
	if id == 0 || id > uint64(f.idx.Inodes.Count()) {
		return 0, false
	}
	return uint32(id - 1), true
}

// held is what the kernel has of each inode, by archive inode: how many
// lookups it holds (each LOOKUP and READDIRPLUS entry replied adds one, a
// FORGET takes its count off), and the dirent it last found the inode by,
// with that dirent's directory. Push-ahead stores only into inodes the
// kernel holds (it refuses others), and finds its way about the tree by
// the dirents: the directory of a file being read, the path of a
// directory to list. A hardlinked file has one entry, the dirent the
// kernel found it by last (as go-fuse's node tree gave the newest of a
// node's parents). The entry stays when the kernel forgets the inode:
// push-ahead asks holds first.
type held struct {
	lookups atomic.Uint32
	// at: (the directory inode << 32 | the dirent) + 1, stored together
	// so that a hardlink found in two directories at once reads as one
	// of them; 0 until the kernel finds the inode, so that a new table
	// is all zeros and its memory is touched only where the kernel goes.
	at atomic.Uint64
}

func newHeld(x *format.Index) []held {
	h := make([]held, x.Inodes.Count())
	h[0].at.Store(1) // the root: dirent 0, its own parent
	return h
}

// foundAt records that the kernel finds inode ino as dirent d of
// directory dir.
func (f *FS) foundAt(dir, d, ino uint32) {
	f.held[ino].at.Store(uint64(dir)<<32 | uint64(d) + 1)
}

// lookedUp records a reply that gives the kernel inode ino: a lookup
// more.
func (f *FS) lookedUp(ino uint32) { f.held[ino].lookups.Add(1) }

// forget takes n lookups off inode ino, as the kernel's FORGET says.
func (f *FS) forget(ino uint32, n uint64) {
	c := &f.held[ino].lookups
	for {
		old := c.Load()
		next := uint32(0)
		if uint64(old) > n {
			next = old - uint32(n)
		}
		if c.CompareAndSwap(old, next) {
			return
		}
	}
}

// store puts data into the kernel's page cache of inode ino at off
// (FUSE_NOTIFY_STORE); ENOENT: the kernel does not hold the inode (it
// forgot it, or never had it).
func (f *FS) store(ino uint32, off int64, data []byte) syscall.Errno {
	if errno, ok := f.conn.store(nodeID(ino), off, data); ok {
		if f.debug {
			status := "OK"
			if errno != 0 {
				status = errno.Error()
			}
			f.logf("NOTIFY_STORE node %d [%d +%d): %s", nodeID(ino), off, len(data), status)
		}
		return errno
	}
	srv := f.raw.srv.Load()
	if srv == nil {
		return syscall.ENOENT
	}
	return syscall.Errno(srv.InodeNotifyStoreCache(nodeID(ino), off, data))
}

// holds says whether the kernel holds inode ino (the root always).
func (f *FS) holds(ino uint32) bool { return ino == 0 || f.held[ino].lookups.Load() > 0 }

// where gives the dirent the kernel last found inode ino by and that
// dirent's directory; ok is false for an inode it never found.
func (f *FS) where(ino uint32) (dir, d uint32, ok bool) {
	at := f.held[ino].at.Load()
	if at == 0 {
		return 0, 0, false
	}
	at--
	return uint32(at >> 32), uint32(at), true
}

// lineage gives the names and the dirents of the directories on the way
// from the root down to directory inode dir, dir's last, as the kernel
// found them; ok is false where the way up is not known (an inode the
// kernel never found) or does not end at the root.
func (f *FS) lineage(dir uint32) (names []string, dirents []uint32, ok bool) {
	if !f.up(dir, func(_, d uint32) {
		names, dirents = append(names, string(f.idx.Name(d))), append(dirents, d)
	}) {
		return nil, nil, false
	}
	slices.Reverse(names)
	slices.Reverse(dirents)
	return names, dirents, true
}

// up goes from inode ino up to the root the way the kernel found each
// inode on it, and gives visit each step's directory and dirent, ino's
// first; it says whether it reached the root (not: an inode the kernel
// never found).
func (f *FS) up(ino uint32, visit func(dir, d uint32)) bool {
	for steps := 0; ino != 0; steps++ {
		p, d, ok := f.where(ino)
		if !ok || steps >= f.idx.Dirents.Count() || !f.idx.IsDir(p) {
			return false
		}
		visit(p, d)
		ino = p
	}
	return true
}

// path is inode ino's path in the mount, as the kernel found it, for
// logs.
func (f *FS) path(ino uint32) string {
	if ino == 0 {
		return "/"
	}
	p, d, ok := f.where(ino)
	names, _, okUp := f.lineage(p)
	if !ok || !okUp {
		return "inode " + strconv.FormatUint(uint64(ino), 10)
	}
	return "/" + strings.Join(append(names, string(f.idx.Name(d))), "/")
}
