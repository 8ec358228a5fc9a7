package format

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"reflect"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
	"time"
)

// storedFields is what EncodeIndex writes: the Index minus derived tables.
func storedFields(x *Index) Index {
	return Index{Params: x.Params, Stats: x.Stats, Blocks: x.Blocks, Frames: x.Frames, Inodes: x.Inodes,
		Dirents: x.Dirents, Extents: x.Extents, Xattrs: x.Xattrs, Users: x.Users, Groups: x.Groups, Blob: x.Blob, Implied: x.Implied}
}

func decodeSample(t *testing.T) *Index {
	t.Helper()
	x, err := DecodeIndex(EncodeIndex(sampleIndex()))
	if err != nil {
		t.Fatalf("DecodeIndex(sample): %v", err)
	}
	return x
}

func TestIndexRoundTripKeepsEveryStoredField(t *testing.T) {
	want := sampleIndex()
	got := decodeSample(t)
	if !reflect.DeepEqual(storedFields(got), storedFields(want)) {
		t.Fatalf("decoded index differs from the encoded one:\ngot  %+v\nwant %+v", storedFields(got), storedFields(want))
	}
	if again := EncodeIndex(got); !bytes.Equal(again, EncodeIndex(want)) {
		t.Fatal("re-encoding a decoded index changes its bytes")
	}
}

func TestDecodeIndexDerivesOffsetsAndLinkCounts(t *testing.T) {
	x := decodeSample(t)
	for _, c := range []struct {
		name      string
		got, want any
	}{
		{"BlockRawOff", x.BlockRawOff, []uint64{0, 100, 180, 220}},
		{"BlockStoredOff", x.BlockStoredOff, []uint64{0, 60, 140, 170}},
		{"FrameFirstBlock", x.FrameFirstBlock, []uint32{0, 2, 3}},
		// Hardlinked file: 2 paths. Directories: 2 + subdirectories.
		{"Nlink", x.Nlink, []uint32{3, 2, 1, 1, 1, 2, 1, 1, 1}},
		{"UniqueSize", x.UniqueSize(), uint64(220)},
		{"DataSize", x.DataSize(), uint64(170)},
	} {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestDeriveOnAWriterBuiltIndexMatchesDecode(t *testing.T) {
	x := sampleIndex()
	if err := x.Derive(); err != nil {
		t.Fatal(err)
	}
	if d := decodeSample(t); !reflect.DeepEqual(x.Nlink, d.Nlink) || !reflect.DeepEqual(x.BlockStoredOff, d.BlockStoredOff) {
		t.Fatal("Derive and DecodeIndex disagree")
	}
}

func TestParamAndStatLookUpByKey(t *testing.T) {
	x := decodeSample(t)
	if v, ok := x.Param("codec"); !ok || v != "lz4" {
		t.Errorf(`Param("codec") = %q, %v`, v, ok)
	}
	if v, ok := x.Param("empty"); !ok || v != "" {
		t.Errorf(`Param("empty") = %q, %v; an empty value is still set`, v, ok)
	}
	if _, ok := x.Param("nope"); ok {
		t.Error(`Param("nope") is set`)
	}
	if x.Stat("hole-bytes") != 4096 || x.Stat("nope") != 0 {
		t.Errorf("Stat: hole-bytes %d, nope %d", x.Stat("hole-bytes"), x.Stat("nope"))
	}
}

func TestLookupFindsChildrenByExactName(t *testing.T) {
	x := decodeSample(t)
	for _, c := range []struct {
		dir    uint32
		name   string
		dirent uint32
		ok     bool
	}{
		{sampleRoot, "dev", 1, true},
		{sampleRoot, "sub", 5, true},
		{sampleRoot, "zero", 6, true},
		{sampleSub, "copy", 7, true},
		{sampleSub, "hard2", 8, true},
		{sampleSub, "sparse", 9, true},
		{sampleRoot, "hard2", 0, false}, // lives in sub, not in the root
		{sampleRoot, "su", 0, false},
		{sampleRoot, "subs", 0, false},
		{sampleRoot, "", 0, false},
		{sampleRoot, "a", 0, false},
		{sampleRoot, "zzz", 0, false},
	} {
		d, ok := x.Lookup(c.dir, []byte(c.name))
		if d != c.dirent || ok != c.ok {
			t.Errorf("Lookup(%d, %q) = %d, %v; want %d, %v", c.dir, c.name, d, ok, c.dirent, c.ok)
		}
	}
}

func TestAccessorsReturnWhatTheSampleStores(t *testing.T) {
	x := decodeSample(t)
	if got := string(x.Symlink(sampleLink)); got != "sub/sparse" {
		t.Errorf("Symlink = %q", got)
	}
	if s, e := x.FileExtents(sampleCopy); s != 0 || e != 1 {
		t.Errorf("FileExtents(copy) = %d,%d", s, e)
	}
	// A whole-file duplicate is a distinct inode with the very same extent range.
	if x.Inodes.DataStart[sampleCopy] != x.Inodes.DataStart[sampleHard] || x.Inodes.DataCount[sampleCopy] != x.Inodes.DataCount[sampleHard] {
		t.Error("duplicate does not share its original's extents")
	}
	s, e := x.FileExtents(sampleSparse)
	if e-s != 3 || x.Extents.Off[s+1] != Hole {
		t.Errorf("sparse file extents [%d,%d), middle at %d", s, e, x.Extents.Off[s+1])
	}
	if s, e := x.Children(sampleSub); s != 7 || e != 10 {
		t.Errorf("Children(sub) = %d,%d", s, e)
	}
	var attrs []string
	for _, ino := range []uint32{sampleHard, sampleSub, sampleZero} {
		s, e := x.XattrRange(ino)
		for i := s; i < e; i++ {
			attrs = append(attrs, fmt.Sprintf("%d:%s=%q", ino, x.XattrName(i), x.XattrValue(i)))
		}
	}
	want := []string{`1:user.a="1"`, `1:user.b=""`, `5:security.x="\x00\x01"`}
	if !reflect.DeepEqual(attrs, want) {
		t.Errorf("xattrs = %q, want %q", attrs, want)
	}
	if !x.IsDir(sampleRoot) || !x.IsDir(sampleSub) || x.IsDir(sampleHard) {
		t.Error("IsDir is wrong")
	}
}

func TestBlockAtAndFrameOfAtBoundaries(t *testing.T) {
	x := decodeSample(t)
	for _, c := range []struct {
		off   uint64
		block uint32
	}{{0, 0}, {99, 0}, {100, 1}, {179, 1}, {180, 2}, {219, 2}} {
		if got := x.BlockAt(c.off); got != c.block {
			t.Errorf("BlockAt(%d) = %d, want %d", c.off, got, c.block)
		}
	}
	for b, want := range []uint32{0, 0, 1} {
		if got := x.FrameOf(uint32(b)); got != want {
			t.Errorf("FrameOf(%d) = %d, want %d", b, got, want)
		}
	}
}

func TestWalkVisitsDepthFirstInNameOrder(t *testing.T) {
	x := decodeSample(t)
	walk := func(stopAt string, ret error) (visited []string, err error) {
		err = x.Walk(func(p []byte, d uint32) error {
			visited = append(visited, fmt.Sprintf("%s=%d", p, d))
			if string(p) == stopAt {
				return ret
			}
			return nil
		})
		return visited, err
	}
	all := []string{"dev=1", "fifo=2", "hard=3", "link=4", "sub=5", "sub/copy=7", "sub/hard2=8", "sub/sparse=9", "zero=6"}
	stop := errors.New("stop")
	for _, c := range []struct {
		name    string
		stopAt  string
		ret     error
		want    []string
		wantErr error
	}{
		{"everything", "", nil, all, nil},
		{"SkipDir skips a directory's contents", "sub", SkipDir, []string{"dev=1", "fifo=2", "hard=3", "link=4", "sub=5", "zero=6"}, nil},
		{"SkipDir from a file is ignored", "hard", SkipDir, all, nil},
		{"an error stops the walk and is returned", "sub/copy", stop, all[:6], stop},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := walk(c.stopAt, c.ret)
			if !reflect.DeepEqual(got, c.want) || err != c.wantErr {
				t.Errorf("visited %q, err %v; want %q, %v", got, err, c.want, c.wantErr)
			}
		})
	}
}

// setName points dirent d at a new name appended to the blob.
func setName(x *Index, d int, name string) {
	s, n := blobBuilder{x}.add(name)
	x.Dirents.NameStart[d], x.Dirents.NameLen[d] = s, uint16(n)
}

// indexCorruption is a change to a valid index that DecodeIndex must reject
// with ErrCorrupt, giving why in its message.
type indexCorruption struct {
	name   string
	mutate func(x *Index)
	why    string // part of the expected message: the rule that fires
}

func TestDecodeIndexRejectsInconsistentTables(t *testing.T) {
	for _, c := range indexCorruptions() {
		t.Run(c.name, func(t *testing.T) {
			x := sampleIndex()
			c.mutate(x)
			_, err := DecodeIndex(EncodeIndex(x))
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), c.why) {
				t.Fatalf("DecodeIndex: %v; want ErrCorrupt saying %q", err, c.why)
			}
		})
	}
}

func indexCorruptions() []indexCorruption {
	return []indexCorruption{
		// Blocks and frames.
		{"unknown codec", func(x *Index) { x.Blocks.Codec[0] = maxCodec + 1 }, "unknown codec"},
		{"block of zero raw bytes", func(x *Index) { x.Blocks.RawSize[2], x.Blocks.StoredSize[2] = 0, 0 }, "raw size 0"},
		{"block over MaxBlockSize", func(x *Index) { x.Blocks.RawSize[0] = MaxBlockSize + 1 }, "raw size"},
		{"block stores more than its raw size", func(x *Index) { x.Blocks.StoredSize[0] = 101 }, "stores 101 bytes for 100"},
		{"block stores zero bytes", func(x *Index) { x.Blocks.StoredSize[2] = 0 }, "stores 0 bytes"},
		{"raw codec with stored != raw", func(x *Index) { x.Blocks.StoredSize[1] = 79 }, "stores 79 bytes for 80 raw with codec 0"},
		{"frame without blocks", func(x *Index) { x.Frames = []uint32{2, 0, 1} }, "frame 1 has no blocks"},
		{"frames hold fewer blocks than the table", func(x *Index) { x.Frames = []uint32{2} }, "frames hold 2 blocks"},
		{"frames hold more blocks than the table", func(x *Index) { x.Frames = []uint32{2, 2} }, "more blocks"},
		{"blocks but no frames", func(x *Index) { x.Frames = nil }, "frames hold 0 blocks"},
		// Extents.
		{"extent ends past the unique stream", func(x *Index) { x.Extents.Off[3] = 171 }, "outside the unique stream"},
		{"extent starts past the unique stream", func(x *Index) { x.Extents.Off[3] = 221 }, "outside the unique stream"},
		{"extent whose end overflows", func(x *Index) { x.Extents.Off[3] = Hole - 1 }, "outside the unique stream"},
		{"zero-length extent", func(x *Index) { x.Extents.Len[1] = 0; x.Inodes.Size[sampleSparse] -= 50 }, "extent 1 is empty"},
		{"zero-length hole", func(x *Index) { x.Extents.Len[2] = 0; x.Inodes.Size[sampleSparse] -= 4096 }, "extent 2 is empty"},
		// Regular files.
		{"file size below its extents", func(x *Index) { x.Inodes.Size[sampleHard] = 99 }, "size 99, its extents hold 100"},
		{"file size above its extents", func(x *Index) { x.Inodes.Size[sampleSparse]++ }, "its extents hold 4196"},
		{"file extents out of range", func(x *Index) { x.Inodes.DataStart[sampleSparse] = 2 }, "extents out of range"},
		{"file extents sum overflows", func(x *Index) { x.Extents.Len[2] = Hole - 49 }, "overflows"},
		// No file can be larger than an off_t: a reader's offsets are int64.
		{"file size beyond int64", func(x *Index) { x.Extents.Len[2] = 1 << 63; x.Inodes.Size[sampleSparse] = 100 + 1<<63 }, "beyond"},
		// Directory tree.
		{"children range past the dirents", func(x *Index) { x.Inodes.DataCount[sampleSub] = 4 }, "children out of range"},
		{"directory lists itself (a cycle)", func(x *Index) { x.Inodes.DataStart[sampleSub] = 5; x.Inodes.DataCount[sampleSub] = 1 }, "before itself"},
		{"directory lists the root (a cycle)", func(x *Index) { x.Inodes.DataStart[sampleSub] = 0; x.Inodes.DataCount[sampleSub] = 1 }, "before itself"},
		{"dirent in two directories", func(x *Index) { x.Inodes.DataStart[sampleSub] = 6; x.Inodes.DataCount[sampleSub] = 4 }, "dirent 6 belongs to two directories"},
		{"orphan dirent", func(x *Index) { x.Inodes.DataCount[sampleSub] = 2 }, "dirent 9 belongs to no directory"},
		{"names not sorted", func(x *Index) { setName(x, 1, "fifo"); setName(x, 2, "dev") }, "not sorted"},
		{"duplicate names", func(x *Index) { setName(x, 2, "dev") }, "not sorted or repeated"},
		{"name with a slash", func(x *Index) { setName(x, 1, "d/v") }, "invalid name"},
		{"name with NUL", func(x *Index) { setName(x, 1, "de\x00v") }, "invalid name"},
		{`name "."`, func(x *Index) { setName(x, 1, ".") }, "invalid name"},
		{`name ".."`, func(x *Index) { setName(x, 1, "..") }, "invalid name"},
		{"empty name", func(x *Index) { setName(x, 1, "") }, "dirent 1 name out of range"},
		{"name of 256 bytes", func(x *Index) { setName(x, 6, "z"+strings.Repeat("x", 255)) }, "dirent 6 name out of range"},
		{"name outside the blob", func(x *Index) { x.Dirents.NameStart[6] = uint64(len(x.Blob)) - 3 }, "dirent 6 name out of range"},
		{"name of a later sibling outside the blob", func(x *Index) { x.Dirents.NameStart[2] = 1 << 40 }, "dirent 2 name out of range"},
		{"root name outside the blob", func(x *Index) { x.Dirents.NameStart[0] = uint64(len(x.Blob)) + 1 }, "dirent 0"},
		{"root has a name", func(x *Index) { x.Dirents.NameLen[0] = 1 }, "not the root directory"},
		{"root dirent names another inode", func(x *Index) { x.Dirents.Inode[0] = sampleSub }, "not the root directory"},
		{"root inode is not a directory", func(x *Index) {
			x.Inodes.Mode[0], x.Inodes.DataStart[0], x.Inodes.DataCount[0] = ModeReg, 0, 0 // a valid empty file
		}, "not the root directory"},
		{"dirent names a missing inode", func(x *Index) { x.Dirents.Inode[3] = 9 }, "names inode 9 of 9"},
		{"inode with no path", func(x *Index) { x.Dirents.Inode[7] = sampleHard }, "inode 6 has no path"},
		{"directory with two paths", func(x *Index) { x.Dirents.Inode[6] = sampleSub }, "more than one path"},
		{"root directory with a second path", func(x *Index) { x.Dirents.Inode[6] = sampleRoot }, "more than one path"},
		// Other types.
		{"symlink target outside the blob", func(x *Index) { x.Inodes.DataStart[sampleLink] = uint64(len(x.Blob)) - 5 }, "symlink target"},
		{"symlink size differs from its target", func(x *Index) { x.Inodes.Size[sampleLink]++ }, "symlink target"},
		{"empty symlink target", func(x *Index) { x.Inodes.DataCount[sampleLink], x.Inodes.Size[sampleLink] = 0, 0 }, "symlink target"},
		{"symlink target over MaxSymlinkLen", func(x *Index) {
			s, n := blobBuilder{x}.add(strings.Repeat("a", MaxSymlinkLen+1))
			x.Inodes.DataStart[sampleLink], x.Inodes.DataCount[sampleLink], x.Inodes.Size[sampleLink] = s, uint32(n), uint64(n)
		}, "symlink target"},
		{"device with data", func(x *Index) { x.Inodes.DataCount[sampleDev] = 1 }, "has data"},
		{"fifo with a size", func(x *Index) { x.Inodes.Size[sampleFifo] = 1 }, "has data"},
		{"unknown type", func(x *Index) { x.Inodes.Mode[sampleFifo] = ModeType | 0o644 }, "unknown type"},
		{"type bits zero", func(x *Index) { x.Inodes.Mode[sampleFifo] = 0o644 }, "unknown type"},
		// Xattrs.
		{"xattrs not sorted", func(x *Index) {
			a := &x.Xattrs
			a.NameStart[0], a.NameStart[1] = a.NameStart[1], a.NameStart[0]
		}, "not sorted or repeated"},
		{"xattr name repeated", func(x *Index) { x.Xattrs.NameStart[1] = x.Xattrs.NameStart[0] }, "not sorted or repeated"},
		{"xattr range past the table", func(x *Index) { x.Inodes.XattrStart[sampleSub] = 2; x.Inodes.XattrCount[sampleSub] = 2 }, "xattrs out of range"},
		{"xattr range overflows", func(x *Index) { x.Inodes.XattrStart[sampleSub] = 1 << 31; x.Inodes.XattrCount[sampleSub] = 1 << 31 }, "xattrs out of range"},
		{"xattr name outside the blob", func(x *Index) { x.Xattrs.NameStart[2] = uint64(len(x.Blob)) }, "xattr 2 name out of range"},
		{"empty xattr name", func(x *Index) { x.Xattrs.NameLen[2] = 0 }, "xattr 2 name out of range"},
		{"xattr name over MaxXattrName", func(x *Index) { x.Xattrs.NameLen[2] = MaxXattrName + 1 }, "xattr 2 name out of range"},
		{"xattr value outside the blob", func(x *Index) { x.Xattrs.ValStart[0] = uint64(len(x.Blob)) }, "xattr 0 value out of range"},
		{"xattr value over MaxXattrValue", func(x *Index) { x.Xattrs.ValLen[0] = MaxXattrValue + 1 }, "xattr 0 value out of range"},
		// Implied directories.
		{"implied inode not a directory", func(x *Index) { x.Implied = []uint32{sampleRoot, sampleFifo} }, "implied directory 3 (entry 1)"},
		{"implied inodes out of order", func(x *Index) { x.Implied = []uint32{sampleSub, sampleRoot} }, "implied directory 0 (entry 1)"},
		{"implied inode repeated", func(x *Index) { x.Implied = []uint32{sampleSub, sampleSub} }, "implied directory 5 (entry 1)"},
		{"implied inode past the table", func(x *Index) { x.Implied = []uint32{sampleRoot, 9} }, "implied directory 9 (entry 1)"},
		// Owners.
		{"owner without a name", func(x *Index) { x.Users[1].Name = "" }, "owner 1000"},
		{"owner name of 257 bytes", func(x *Index) { x.Groups[1].Name = strings.Repeat("g", 257) }, "owner 100"},
	}
}

// Columns of one table that differ in length cannot be encoded faithfully,
// so Derive (what a writer calls on what it built) must catch them itself.
func TestDeriveRejectsColumnsOfDifferentLengths(t *testing.T) {
	for _, c := range []struct {
		name   string
		mutate func(x *Index)
	}{
		{"blocks", func(x *Index) { x.Blocks.Sum = x.Blocks.Sum[:2] }},
		{"extents", func(x *Index) { x.Extents.Len = x.Extents.Len[:3] }},
		{"xattrs", func(x *Index) { x.Xattrs.ValLen = x.Xattrs.ValLen[:2] }},
		{"inodes", func(x *Index) { x.Inodes.Rdev = x.Inodes.Rdev[:8] }},
		{"dirents", func(x *Index) { x.Dirents.NameLen = x.Dirents.NameLen[:9] }},
		{"no inodes at all", func(x *Index) { x.Inodes = Inodes{} }},
		{"no dirents at all", func(x *Index) { x.Dirents = Dirents{} }},
	} {
		t.Run(c.name, func(t *testing.T) {
			x := sampleIndex()
			c.mutate(x)
			if err := x.Derive(); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Derive: %v; want ErrCorrupt", err)
			}
		})
	}
}

func TestDecodeIndexRejectsMalformedEncodings(t *testing.T) {
	wantErrors(t, badIndexEncodings(t), func(b []byte) error { _, err := DecodeIndex(b); return err })
}

func badIndexEncodings(t testing.TB) []byteCase {
	valid := EncodeIndex(sampleIndex())
	secs := func() []section { return splitIndex(t, valid) }
	without := func(tag uint32) []byte {
		var out []section
		for _, s := range secs() {
			if s.tag != tag {
				out = append(out, s)
			}
		}
		return joinIndex(out)
	}
	withBody := func(tag uint32, edit func([]byte) []byte) []byte {
		ss := secs()
		for i := range ss {
			if ss[i].tag == tag {
				ss[i].body = edit(append([]byte(nil), ss[i].body...))
			}
		}
		return joinIndex(ss)
	}
	patch := func(at int, v uint32) []byte {
		return patched(valid, func(b []byte) { binary.LittleEndian.PutUint32(b[at:], v) })
	}
	nsections := binary.LittleEndian.Uint32(valid[12:])
	cases := []byteCase{
		{"empty input", nil, ErrCorrupt},
		{"bad magic", append([]byte("ARCIDX\n\n"), valid[8:]...), ErrCorrupt},
		{"unknown index version", patch(8, Version+1), ErrVersion},
		{"unknown required section", joinIndex(append(secs(), section{99, sectionRequired, []byte{1, 2, 3}})), ErrVersion},
		{"duplicated section", joinIndex(append(secs(), secs()[2])), ErrCorrupt},
		{"duplicated unknown optional section", joinIndex(append(secs(), section{99, 0, nil}, section{99, 0, nil})), ErrCorrupt},
		{"stray bytes after the sections", append(append([]byte(nil), valid...), 0), ErrCorrupt},
		{"section count larger than the sections", patch(12, nsections+1), ErrCorrupt},
		{"section count smaller than the sections", patch(12, nsections-1), ErrCorrupt},
		{"section longer than the index", withBody(secBlob, func(b []byte) []byte { return b })[:len(valid)-1], ErrCorrupt},
		{"stray bytes inside a section", withBody(secFrames, func(b []byte) []byte { return append(b, 0) }), ErrCorrupt},
		{"row count beyond the section", withBody(secExtents, func(b []byte) []byte {
			binary.LittleEndian.PutUint64(b, 1<<60)
			return b
		}), ErrCorrupt},
		{"param count beyond the section", withBody(secParams, func(b []byte) []byte {
			binary.LittleEndian.PutUint32(b, 1<<31)
			return b
		}), ErrCorrupt},
		{"param value longer than the section", withBody(secParams, func(b []byte) []byte {
			binary.LittleEndian.PutUint32(b[4+2+len("frame-size"):], 1<<20)
			return b
		}), ErrCorrupt},
	}
	for _, tag := range []uint32{secParams, secStats, secBlocks, secFrames, secInodes, secDirents, secExtents, secXattrs, secBlob} {
		cases = append(cases, byteCase{fmt.Sprintf("missing section %d", tag), without(tag), ErrCorrupt})
	}
	return cases
}

func TestDecodeIndexSkipsUnknownOptionalSections(t *testing.T) {
	ss := splitIndex(t, EncodeIndex(sampleIndex()))
	// One before the others and one at the end: position does not matter.
	ss = append([]section{{1000, 0, []byte("later versions may add this")}}, ss...)
	ss = append(ss, section{1001, 0, nil})
	x, err := DecodeIndex(joinIndex(ss))
	if err != nil {
		t.Fatalf("DecodeIndex with optional sections: %v", err)
	}
	if !reflect.DeepEqual(storedFields(x), storedFields(sampleIndex())) {
		t.Fatal("an optional section changed the decoded index")
	}
}

func TestUsersAndGroupsSectionsAreOptional(t *testing.T) {
	var ss []section
	for _, s := range splitIndex(t, EncodeIndex(sampleIndex())) {
		if s.tag != secUsers && s.tag != secGroups {
			ss = append(ss, s)
		}
	}
	x, err := DecodeIndex(joinIndex(ss))
	if err != nil {
		t.Fatalf("DecodeIndex without owners: %v", err)
	}
	if x.Users != nil || x.Groups != nil {
		t.Fatalf("owners appeared from nowhere: %v %v", x.Users, x.Groups)
	}
}

// An archive written before the section existed, or one without implied
// directories (the writer leaves the section out then), has none.
func TestImpliedSectionIsOptional(t *testing.T) {
	var ss []section
	for _, s := range splitIndex(t, EncodeIndex(sampleIndex())) {
		if s.tag != secImplied {
			ss = append(ss, s)
		}
	}
	x, err := DecodeIndex(joinIndex(ss))
	if err != nil {
		t.Fatalf("DecodeIndex without implied directories: %v", err)
	}
	if x.Implied != nil || x.IsImplied(sampleRoot) {
		t.Fatalf("implied directories appeared from nowhere: %v", x.Implied)
	}
	y := sampleIndex()
	y.Implied = nil
	if !bytes.Equal(EncodeIndex(y), joinIndex(ss)) {
		t.Fatal("an index without implied directories is not encoded without the section")
	}
}

func TestIsImpliedNamesTheImpliedDirectoriesOnly(t *testing.T) {
	x := decodeSample(t)
	for ino := uint32(0); ino < uint32(x.Inodes.Count()); ino++ {
		if want := ino == sampleRoot || ino == sampleSub; x.IsImplied(ino) != want {
			t.Errorf("IsImplied(%d) = %v, want %v", ino, !want, want)
		}
	}
}

func TestDecodeIndexRejectsEveryTruncation(t *testing.T) {
	b := EncodeIndex(sampleIndex())
	for n := 0; n < len(b); n++ {
		func() {
			defer func() {
				if p := recover(); p != nil {
					t.Fatalf("DecodeIndex of the first %d of %d bytes panics: %v", n, len(b), p)
				}
			}()
			if _, err := DecodeIndex(b[:n:n]); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("DecodeIndex of the first %d of %d bytes: %v; want ErrCorrupt", n, len(b), err)
			}
		}()
	}
}

// Files may share extent and xattr runs (whole-file duplicates share
// extents), so a hostile index can make every inode point at the whole
// table. Validation must stay linear: 64,000 inodes that each claim all
// 64,000 extents and xattrs would take ~4·10⁹ steps if each file's run were
// walked, tens of seconds; linear validation takes milliseconds.
func TestDecodeIndexStaysLinearWhenFilesShareRuns(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a 9 MB index")
	}
	const n = 64000
	x := minimalIndex()
	x.Inodes.DataStart[0], x.Inodes.DataCount[0] = 1, n
	b := blobBuilder{x}
	for i := 0; i < n; i++ {
		x.Extents.Off = append(x.Extents.Off, Hole)
		x.Extents.Len = append(x.Extents.Len, 1)
		b.xattr(fmt.Sprintf("user.%08d", i), "")
	}
	for i := 0; i < n; i++ {
		b.inode(inodeRow{mode: ModeReg, size: n, dataCount: n, xatt: n})
		b.dirent(uint32(i+1), fmt.Sprintf("%08d", i))
	}
	enc := EncodeIndex(x)
	start := time.Now()
	if _, err := DecodeIndex(enc); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("DecodeIndex of %d bytes took %v: validation is not linear", len(enc), d)
	}
}

// EncodeIndex sizes its buffer once: the hint covers the encoding, so a
// large index is never copied over while it grows.
func TestEncodedSizeHintCoversTheEncoding(t *testing.T) {
	big := sampleIndex() // every column long enough to dwarf the hint's slack
	big.Blocks = Blocks{Codec: make([]uint8, 1e4), RawSize: make([]uint32, 1e4), StoredSize: make([]uint32, 1e4), Sum: make([]uint64, 1e4)}
	big.Frames = make([]uint32, 1e4)
	const n = 10000
	big.Inodes = Inodes{Mode: make([]uint32, n), UID: make([]uint32, n), GID: make([]uint32, n), Mtime: make([]int64, n),
		Atime: make([]int64, n), Size: make([]uint64, n), Rdev: make([]uint64, n), DataStart: make([]uint64, n),
		DataCount: make([]uint32, n), XattrStart: make([]uint32, n), XattrCount: make([]uint32, n)}
	big.Dirents = Dirents{Inode: make([]uint32, n), NameStart: make([]uint64, n), NameLen: make([]uint16, n)}
	big.Extents = Extents{Off: make([]uint64, 1e5), Len: make([]uint64, 1e5)}
	big.Xattrs = Xattrs{NameStart: make([]uint64, n), NameLen: make([]uint32, n), ValStart: make([]uint64, n), ValLen: make([]uint32, n)}
	big.Blob = make([]byte, 1e5)
	for name, x := range map[string]*Index{"minimal": minimalIndex(), "sample": sampleIndex(), "big": big} {
		if got, hint := len(EncodeIndex(x)), encodedSizeHint(x); got > hint {
			t.Errorf("%s: encoded %d bytes, hint %d", name, got, hint)
		}
	}
}

// DecodeIndexFrom reads exactly the size it is given: a stream that ends
// sooner is refused, and bytes after the index are left unread.
func TestDecodeIndexFromReadsExactlyItsSize(t *testing.T) {
	valid := EncodeIndex(sampleIndex())
	if _, err := DecodeIndexFrom(bytes.NewReader(valid), uint64(len(valid))+1, 1<<16); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("a stream one byte short of its size: %v, want ErrCorrupt", err)
	}
	r := bytes.NewReader(append(append([]byte(nil), valid...), 1, 2, 3))
	if _, err := DecodeIndexFrom(r, uint64(len(valid)), 1<<16); err != nil {
		t.Fatal(err)
	}
	if r.Len() != 3 {
		t.Fatalf("%d bytes left after the index, want 3", r.Len())
	}
}

// A section is allocated as its bytes arrive, beyond the alloc given: a
// stream that claims a 1 GiB section and ends a few bytes into it fails
// without allocating the GiB.
func TestDecodeIndexFromAllocatesOnlyWhatArrives(t *testing.T) {
	valid := EncodeIndex(sampleIndex())
	stream := append([]byte(nil), valid[:16]...) // magic, version, section count
	stream = binary.LittleEndian.AppendUint32(stream, secParams)
	stream = binary.LittleEndian.AppendUint32(stream, 0)
	stream = binary.LittleEndian.AppendUint64(stream, 1<<30)
	stream = append(stream, make([]byte, 100)...)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := DecodeIndexFrom(bytes.NewReader(stream), 32+1<<30, 1<<16)
	runtime.ReadMemStats(&after)
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("%v, want ErrCorrupt", err)
	}
	if got := after.TotalAlloc - before.TotalAlloc; got > 16<<20 {
		t.Fatalf("allocated %d bytes for a stream of %d", got, len(stream))
	}
}

// deepIndex is a root holding directory "a", which nests depth directories
// called "d", and then an empty directory "b".
func deepIndex(t *testing.T, depth int) *Index {
	t.Helper()
	x := &Index{Blob: []byte("abd")}
	in := &x.Inodes
	dir := func(start uint64, count uint32) {
		in.Mode = append(in.Mode, ModeDir|0o755)
		in.UID, in.GID = append(in.UID, 0), append(in.GID, 0)
		in.Mtime, in.Atime = append(in.Mtime, 0), append(in.Atime, 0)
		in.Size, in.Rdev = append(in.Size, 0), append(in.Rdev, 0)
		in.DataStart, in.DataCount = append(in.DataStart, start), append(in.DataCount, count)
		in.XattrStart, in.XattrCount = append(in.XattrStart, 0), append(in.XattrCount, 0)
	}
	dirent := func(ino uint32, name uint64, n uint16) {
		x.Dirents.Inode = append(x.Dirents.Inode, ino)
		x.Dirents.NameStart = append(x.Dirents.NameStart, name)
		x.Dirents.NameLen = append(x.Dirents.NameLen, n)
	}
	dir(1, 2) // root: a, b
	dirent(0, 0, 0)
	dir(3, 1) // a
	dirent(1, 0, 1)
	dir(0, 0) // b
	dirent(2, 1, 1)
	for i := 3; i < 3+depth; i++ {
		if i < 2+depth {
			dir(uint64(i+1), 1)
		} else {
			dir(0, 0)
		}
		dirent(uint32(i), 2, 1)
	}
	if err := x.Derive(); err != nil {
		t.Fatal(err)
	}
	return x
}

// Walk keeps its own stack: with the goroutine stack held to 1 MiB, a
// recursive walk would die of a stack overflow (a fatal error, not a
// panic) long before the bottom of a 200,000-deep tree, which a hostile
// index reaches in 16 MB.
func TestWalkGoesAnyDepthWithoutRecursing(t *testing.T) {
	const depth = 200_000
	x := deepIndex(t, depth)
	bottom := "a" + strings.Repeat("/d", depth)
	stop := errors.New("stop")
	for _, c := range []struct {
		name    string
		stopAt  int // visit number (1 = "a") whose callback returns ret
		ret     error
		visits  int
		last    string
		wantErr error
	}{
		{"everything, the sibling after the deep directory last", 0, nil, depth + 2, "b", nil},
		{"SkipDir deep down skips only that directory's contents", depth / 2, SkipDir, depth/2 + 1, "b", nil},
		{"an error at the bottom stops the walk and is returned", depth + 1, stop, depth + 1, bottom, stop},
	} {
		t.Run(c.name, func(t *testing.T) {
			defer debug.SetMaxStack(debug.SetMaxStack(1 << 20))
			visits, longest, last := 0, 0, ""
			err := x.Walk(func(p []byte, d uint32) error {
				visits++
				longest = max(longest, len(p))
				if visits == c.stopAt {
					last = string(p)
					return c.ret
				}
				if len(p) < 3 { // "a", "b", "a/d": cheap to keep
					last = string(p)
				}
				return nil
			})
			if visits != c.visits || last != c.last || err != c.wantErr {
				t.Errorf("%d visits, last %.20q, err %v; want %d, %.20q, %v", visits, last, err, c.visits, c.last, c.wantErr)
			}
			if c.wantErr == nil && c.ret == nil && longest != len(bottom) {
				t.Errorf("longest path %d bytes, want %d", longest, len(bottom))
			}
		})
	}
}
