package fs

import (
	"syscall"

	"arc/format"
)

// Holes are extents with Off == format.Hole. The mount reports them the
// way a sparse file on disk does: st_blocks counts only stored bytes, and
// SEEK_DATA/SEEK_HOLE find them, so cp -a and tar --sparse keep holes.

// holeBytes maps each regular file that has holes to their total length.
// Few files have holes, so the map stays small; building it reads every
// extent once (a few milliseconds for a million files).
func holeBytes(x *format.Index) map[uint32]uint64 {
	m := map[uint32]uint64{}
	for ino, mode := range x.Inodes.Mode {
		if mode&format.ModeType != format.ModeReg {
			continue
		}
		s, e := x.FileExtents(uint32(ino))
		for i := s; i < e; i++ {
			if x.Extents.Off[i] == format.Hole {
				m[uint32(ino)] += x.Extents.Len[i]
			}
		}
	}
	return m
}

// lseek answers SEEK_DATA and SEEK_HOLE on inode ino (the kernel handles
// the others).
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
	var pos uint64
	for i := s; i < e; i++ {
		end := pos + x.Extents.Len[i]
		if end > off && (x.Extents.Off[i] == format.Hole) == wantHole {
			return max(pos, off), 0
		}
		pos = end
	}
	if wantHole {
		return size, 0 // the implicit hole at the end of the file
	}
	return 0, syscall.ENXIO
}
