package fs

import (
	"syscall"
	"testing"

	"arc/format"
)

// sparseIndex: n extents of 10 bytes, data and holes taking turns (data
// first), shared by inodes 0 and 1 in full; inode 2 has the first half of
// the run (a hostile index may share a run's start at another length).
func sparseIndex(n int) *format.Index {
	x := &format.Index{}
	for i := range n {
		off := uint64(i * 10)
		if i%2 == 1 {
			off = format.Hole
		}
		x.Extents.Off = append(x.Extents.Off, off)
		x.Extents.Len = append(x.Extents.Len, 10)
	}
	x.ExtentEnd = make([]uint64, n+1)
	for i := range n {
		x.ExtentEnd[i+1] = x.ExtentEnd[i] + x.Extents.Len[i]
	}
	for _, count := range []int{n, n, n / 2} {
		x.Inodes.Mode = append(x.Inodes.Mode, format.ModeReg|0o644)
		x.Inodes.Size = append(x.Inodes.Size, uint64(count*10))
		x.Inodes.DataStart = append(x.Inodes.DataStart, 0)
		x.Inodes.DataCount = append(x.Inodes.DataCount, uint32(count))
	}
	return x
}

func TestHoleBytesOfFilesSharingARun(t *testing.T) {
	x := sparseIndex(200)
	got := holeBytes(x)
	if got[0] != 1000 || got[1] != 1000 || got[2] != 500 || len(got) != 3 {
		t.Errorf("hole bytes %v, want 1000, 1000 and 500", got)
	}
	for i := range x.Extents.Off { // no holes left
		if x.Extents.Off[i] == format.Hole {
			x.Extents.Off[i] = 0
		}
	}
	if got := holeBytes(x); len(got) != 0 {
		t.Errorf("hole bytes %v of files without holes, want none", got)
	}
}

// SEEK_DATA and SEEK_HOLE at every offset of a file of many extents (past
// format.ExtentSearchMin: found by binary search) agree with a walk of the
// extents from the start.
func TestSeekDataAndHoleAtEveryOffset(t *testing.T) {
	const seekData, seekHole = 3, 4
	x := sparseIndex(3 * format.ExtentSearchMin)
	f := &FS{idx: x}
	size := x.Inodes.Size[0]
	walk := func(off uint64, wantHole bool) (uint64, syscall.Errno) {
		var pos uint64
		s, e := x.FileExtents(0)
		for i := s; i < e; i++ {
			end := pos + x.Extents.Len[i]
			if end > off && (x.Extents.Off[i] == format.Hole) == wantHole {
				return max(pos, off), 0
			}
			pos = end
		}
		if wantHole {
			return size, 0
		}
		return 0, syscall.ENXIO
	}
	for off := uint64(0); off < size; off++ {
		for _, whence := range []uint32{seekData, seekHole} {
			got, gerr := f.lseek(0, off, whence)
			want, werr := walk(off, whence == seekHole)
			if got != want || gerr != werr {
				t.Fatalf("lseek(%d, %d) = %d, %v; want %d, %v", off, whence, got, gerr, want, werr)
			}
		}
	}
	if _, err := f.lseek(0, size, seekData); err != syscall.ENXIO {
		t.Errorf("SEEK_DATA at the end: %v, want ENXIO", err)
	}
}
