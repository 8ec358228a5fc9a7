package fs

import (
	"syscall"

	"arc/format"

	"github.com/hanwen/go-fuse/v2/fuse"
)

// readdir answers READDIR and READDIRPLUS without a handle: a listing is
// ".", "..", then the directory's dirents in index order (sorted by
// name), and the offset of an entry is its position in that list plus
// one, so a request can start anywhere the kernel asks (the archive never
// changes under it). READDIRPLUS gives each entry's node as LOOKUP does,
// or, to a program that reads names only, none (plus.go).
//
// A request at the very end of a listing (the one that finds nothing
// more) tells push-ahead that the kernel has taken in the whole listing;
// one at offset 0, that a walk may read this directory next.
func (r *rawFS) readdir(in *fuse.ReadIn, out *fuse.DirEntryList, plus bool) fuse.Status {
	f := r.f
	r.listings.Add(1)
	dir, ok := f.inoOf(in.NodeId)
	if !ok {
		return fuse.Status(syscall.ESTALE)
	}
	if !f.idx.IsDir(dir) {
		return fuse.ENOTDIR
	}
	s, e := f.idx.Children(dir)
	total := uint64(e-s) + 2
	caller := in.Caller.Pid
	if in.Offset == 0 {
		f.push.onOpendir(dir, caller)
	}
	if in.Offset >= total {
		if in.Offset == total {
			f.push.onListed(dir, caller)
		}
		return fuse.OK
	}
	mode := withNodes
	if plus && !f.push.lister(caller) {
		mode = r.plus.mode(f.idx, caller, dir, in.Offset)
	}
	for pos := in.Offset; pos < total; pos++ {
		de := fuse.DirEntry{Mode: format.ModeDir, Off: pos + 1}
		var d, ino uint32
		switch pos {
		case 0:
			de.Name, de.Ino = ".", nodeID(dir)
		case 1:
			de.Name, de.Ino = "..", nodeID(dir)
			if p, _, ok := f.where(dir); ok {
				de.Ino = nodeID(p)
			}
		default:
			d = s + uint32(pos-2)
			ino = f.idx.Dirents.Inode[d]
			de.Name = string(f.idx.Name(d))
			de.Mode = f.idx.Inodes.Mode[ino] & format.ModeType
			de.Ino = nodeID(ino)
		}
		if !plus {
			if !out.AddDirEntry(de) {
				break
			}
			continue
		}
		eo := out.AddDirLookupEntry(de)
		if eo == nil {
			break
		}
		// The kernel takes no node from "." and ".." (it has them), nor
		// from an entry whose node ID is 0.
		if pos >= 2 && (mode == withNodes || mode == probing && pos > 2) {
			f.foundAt(dir, d, ino)
			r.entry(ino, eo)
		}
	}
	return fuse.OK
}
