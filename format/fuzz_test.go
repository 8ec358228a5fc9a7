package format

import (
	"bytes"
	"reflect"
	"testing"
	"testing/iotest"
)

// The seed corpus of every fuzz target lives in testdata/fuzz/<FuzzName>/
// and is written from the seeds below by `go test ./format -run
// TestSeedCorpus -update`; plain `go test` runs it as ordinary tests.

// With reseal the CRC is recomputed first, so that mutations reach the
// checks behind it instead of all failing the checksum.
func FuzzParseVolumeHeader(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte, reseal bool) {
		if reseal && len(b) >= VolumeHeaderSize {
			b = reseal4(b, 44)
		}
		h, err := ParseVolumeHeader(b)
		if err != nil {
			return
		}
		if h.Version != Version || h.Flags != 0 || h.Number == 0 {
			t.Fatalf("accepted header %+v", h)
		}
		// Every byte of a valid header is determined by its fields.
		if again := mustMarshal(t, h); !bytes.Equal(again, b[:VolumeHeaderSize]) {
			t.Fatalf("header re-encodes as %x, read from %x", again, b[:VolumeHeaderSize])
		}
	})
}

func FuzzParseFooter(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte, reseal bool) {
		if reseal && len(b) >= FooterSize {
			tail := reseal4(b[len(b)-FooterSize:], 68)
			b = append(b[:len(b)-FooterSize:len(b)-FooterSize], tail...)
		}
		ft, err := ParseFooter(b)
		if err != nil {
			return
		}
		if ft.VolumeCount == 0 || ft.IndexOffset+ft.IndexSize > ft.StreamSize-FooterSize || ft.IndexRawSize > MaxIndexSize {
			t.Fatalf("accepted footer %+v", ft)
		}
		if again := mustMarshal(t, ft); !bytes.Equal(again, b[len(b)-FooterSize:]) {
			t.Fatalf("footer re-encodes as %x, read from %x", again, b[len(b)-FooterSize:])
		}
	})
}

func FuzzDecodeIndex(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		x, err := DecodeIndex(b)
		// Streamed, in pieces grown from 1 byte up: the same index or
		// the same refusal.
		xs, errs := DecodeIndexFrom(iotest.OneByteReader(bytes.NewReader(b)), uint64(len(b)), 1)
		if (err == nil) != (errs == nil) || err == nil && !reflect.DeepEqual(x, xs) {
			t.Fatalf("DecodeIndex: %v; streamed: %v (or a different index)", err, errs)
		}
		// In place, from a buffer of its own.
		xo, erro := DecodeOwnedIndex(aligned(b))
		if (err == nil) != (erro == nil) || err == nil && !reflect.DeepEqual(x, xo) {
			t.Fatalf("DecodeIndex: %v; in place: %v (or a different index)", err, erro)
		}
		if err != nil {
			return
		}
		checkIndexInBounds(t, x)
		y, err := DecodeIndex(EncodeIndex(x))
		if err != nil {
			t.Fatalf("a decoded index does not decode once re-encoded: %v", err)
		}
		if !reflect.DeepEqual(x, y) {
			t.Fatalf("re-encoding changes the index:\n%+v\n%+v", x, y)
		}
	})
}

// reseal4 returns a copy of b with its CRC-32C at b[at:at+4] recomputed.
func reseal4(b []byte, at int) []byte {
	return reseal(append([]byte(nil), b...), at)
}

// checkIndexInBounds calls every accessor on every row the way a reader
// would, so an index that DecodeIndex accepts but that would make a reader
// index out of range panics here.
func checkIndexInBounds(t *testing.T, x *Index) {
	nd, ni := uint32(x.Dirents.Count()), uint32(x.Inodes.Count())
	if uint32(len(x.Nlink)) != ni || len(x.BlockRawOff) != x.Blocks.Count()+1 || len(x.FrameFirstBlock) != len(x.Frames)+1 {
		t.Fatal("derived tables of the wrong length")
	}
	for d := uint32(0); d < nd; d++ {
		_ = x.Name(d)
		if x.Dirents.Inode[d] >= ni {
			t.Fatalf("dirent %d names inode %d of %d", d, x.Dirents.Inode[d], ni)
		}
	}
	// Rows that inodes may share are checked once each, and the inodes'
	// runs by their ends, so that this stays linear like DecodeIndex.
	for i := uint32(0); i < uint32(x.Xattrs.Count()); i++ {
		_, _ = x.XattrName(i), x.XattrValue(i)
	}
	unique := x.UniqueSize()
	for i := range x.Extents.Off {
		off, n := x.Extents.Off[i], x.Extents.Len[i]
		if off == Hole {
			continue
		}
		if off+n > unique {
			t.Fatalf("extent %d ends at %d, past the unique stream of %d", i, off+n, unique)
		}
		for _, b := range []uint32{x.BlockAt(off), x.BlockAt(off + n - 1)} {
			if x.BlockRawOff[b] > off+n-1 || x.FrameOf(b) >= uint32(len(x.Frames)) {
				t.Fatalf("extent %d maps to block %d frame %d", i, b, x.FrameOf(b))
			}
		}
	}
	for ino := uint32(0); ino < ni; ino++ {
		if x.Nlink[ino] == 0 {
			t.Fatalf("inode %d has no links", ino)
		}
		if s, e := x.XattrRange(ino); s > e || e > uint32(x.Xattrs.Count()) {
			t.Fatalf("inode %d xattrs [%d,%d) of %d", ino, s, e, x.Xattrs.Count())
		}
		switch x.Inodes.Mode[ino] & ModeType {
		case ModeDir:
			s, e := x.Children(ino)
			for c := s; c < e; c++ {
				if got, ok := x.Lookup(ino, x.Name(c)); !ok || got != c {
					t.Fatalf("Lookup(%d, %q) = %d, %v; want %d", ino, x.Name(c), got, ok, c)
				}
			}
		case ModeReg:
			if s, e := x.FileExtents(ino); s > e || e > uint64(x.Extents.Count()) {
				t.Fatalf("inode %d extents [%d,%d) of %d", ino, s, e, x.Extents.Count())
			}
		case ModeLink:
			_ = x.Symlink(ino)
		}
	}
	var visited uint32
	if err := x.Walk(func(p []byte, d uint32) error {
		visited++
		if len(p) == 0 || d == 0 || d >= nd {
			t.Fatalf("Walk gave path %q for dirent %d", p, d)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if visited != nd-1 {
		t.Fatalf("Walk visited %d of %d dirents below the root", visited, nd-1)
	}
}

// The fuzz targets must also hold on the inputs the unit tests use.
func TestIndexPropertiesHoldForTheSample(t *testing.T) {
	checkIndexInBounds(t, decodeSample(t))
}
