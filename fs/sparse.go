package fs

import (
	"syscall"

	"arc/format"
)

// Holes are extents with Off == format.Hole. The mount reports them the
// way a sparse file on disk does: st_blocks counts only stored bytes, and
// SEEK_DATA/SEEK_HOLE find them, so cp -a and tar --sparse keep holes.

// holeBytes maps each regular file that has holes to their total length.
// Few files have holes, so the map stays small. It costs one pass over
// the extents and one over the inodes, however the inodes share extent
// runs (whole-file duplicates do, and a hostile index may make a million
// files share a run of a million extents: walked per inode, that took
// minutes before the mount answered): a file's hole bytes are the
// difference of two prefix sums of the holes' lengths. (Modulo 2^64, as
// ExtentEnd: within one file exact, its size having been checked.)
func holeBytes(x *format.Index) map[uint32]uint64 {
	m := map[uint32]uint64{}
	holes := x.HoleSums()
	if holes == nil {
		return m // most archives
	}
	for ino, mode := range x.Inodes.Mode {
		if mode&format.ModeType != format.ModeReg {
			continue
		}
		s, e := x.FileExtents(uint32(ino))
		if h := holes[e] - holes[s]; h > 0 {
			m[uint32(ino)] = h
		}
	}
	return m
}

// lseek answers SEEK_DATA and SEEK_HOLE on inode ino (the kernel handles
// the others). The extent holding off is found by binary search, so that
// a program walking a file of many extents from hole to data (cp
// --sparse, tar --sparse) does not pay for the extents before each.
func (f *FS) lseek(ino uint32, off uint64, whence uint32) (uint64, syscall.Errno) {
	const seekData, seekHole = 3, 4
	x := f.idx
	if x.Inodes.Mode[ino]&format.ModeType != format.ModeReg {
		return 0, syscall.EINVAL
	}
	size := x.Inodes.Size[ino]
	if off >= size {
		return 0, syscall.ENXIO
	}
	if whence != seekData && whence != seekHole {
		return 0, syscall.EINVAL
	}
	wantHole := whence == seekHole
	s, e := x.FileExtents(ino)
	i, into := x.ExtentAt(s, e, off)
	pos := off - into // where extent i starts in the file
	for ; i < e; i++ {
		if (x.Extents.Off[i] == format.Hole) == wantHole {
			return max(pos, off), 0
		}
		pos += x.Extents.Len[i]
	}
	if wantHole {
		return size, 0 // the implicit hole at the end of the file
	}
	return 0, syscall.ENXIO
}
