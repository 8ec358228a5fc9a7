package format

import (
	"encoding/binary"
	"testing"
)

// The sample index is small but uses every kind of entry the format knows:
//
//	dirent  path          inode  type
//	0       (root)        0      dir, children dirents 1..6
//	1       dev           2      char device 1:3
//	2       fifo          3      fifo
//	3       hard          1      regular, 100 bytes, 2 xattrs, hardlinked
//	4       link          4      symlink -> sub/sparse
//	5       sub           5      dir, children dirents 7..9, 1 xattr
//	6       zero          8      regular, empty
//	7       sub/copy      6      regular, whole-file duplicate of inode 1
//	8       sub/hard2     1      second path of inode 1
//	9       sub/sparse    7      regular: 50 bytes, 4096-byte hole, 50 bytes
//
// The unique stream is 220 bytes in 3 blocks (lz4, raw, zstd) and 2 frames.
const (
	sampleRoot, sampleHard, sampleDev, sampleFifo, sampleLink = 0, 1, 2, 3, 4
	sampleSub, sampleCopy, sampleSparse, sampleZero           = 5, 6, 7, 8
)

// blobBuilder appends byte strings to an index blob and hands back where
// they went.
type blobBuilder struct{ x *Index }

func (b blobBuilder) add(s string) (start uint64, n int) {
	start = uint64(len(b.x.Blob))
	b.x.Blob = append(b.x.Blob, s...)
	return start, len(s)
}

func (b blobBuilder) dirent(ino uint32, name string) {
	s, n := b.add(name)
	d := &b.x.Dirents
	d.Inode = append(d.Inode, ino)
	d.NameStart = append(d.NameStart, s)
	d.NameLen = append(d.NameLen, uint16(n))
}

func (b blobBuilder) xattr(name, value string) {
	ns, nl := b.add(name)
	vs, vl := b.add(value)
	a := &b.x.Xattrs
	a.NameStart = append(a.NameStart, ns)
	a.NameLen = append(a.NameLen, uint32(nl))
	a.ValStart = append(a.ValStart, vs)
	a.ValLen = append(a.ValLen, uint32(vl))
}

type inodeRow struct {
	mode, uid, gid   uint32
	size, rdev       uint64
	dataStart        uint64
	dataCount        uint32
	xattrStart, xatt uint32
}

func (b blobBuilder) inode(r inodeRow) {
	n := &b.x.Inodes
	i := int64(len(n.Mode))
	n.Mode = append(n.Mode, r.mode)
	n.UID = append(n.UID, r.uid)
	n.GID = append(n.GID, r.gid)
	n.Mtime = append(n.Mtime, 1_700_000_000_123_456_789+i)
	n.Atime = append(n.Atime, -1-i) // before 1970: times are signed
	n.Size = append(n.Size, r.size)
	n.Rdev = append(n.Rdev, r.rdev)
	n.DataStart = append(n.DataStart, r.dataStart)
	n.DataCount = append(n.DataCount, r.dataCount)
	n.XattrStart = append(n.XattrStart, r.xattrStart)
	n.XattrCount = append(n.XattrCount, r.xatt)
}

// sampleIndex builds the index described above, without derived fields.
func sampleIndex() *Index {
	x := &Index{
		Params: []KV{{"frame-size", "128"}, {"block-size", "100"}, {"codec", "lz4"}, {"empty", ""}},
		Stats:  []Stat{{"files", 4}, {"dup-files", 1}, {"hole-bytes", 4096}},
		Blocks: Blocks{
			Codec:      []uint8{CodecLZ4, CodecRaw, CodecZstd},
			RawSize:    []uint32{100, 80, 40},
			StoredSize: []uint32{60, 80, 30},
			Sum:        []uint64{0x1111, 0x2222, 0x3333},
		},
		Frames:  []uint32{2, 1},
		Extents: Extents{Off: []uint64{0, 100, Hole, 150}, Len: []uint64{100, 50, 4096, 50}},
		Users:   []Owner{{0, "root"}, {1000, "me"}},
		Groups:  []Owner{{0, "root"}, {100, "users"}},
		Implied: []uint32{sampleRoot, sampleSub},
	}
	b := blobBuilder{x}
	b.dirent(sampleRoot, "")
	b.dirent(sampleDev, "dev")
	b.dirent(sampleFifo, "fifo")
	b.dirent(sampleHard, "hard")
	b.dirent(sampleLink, "link")
	b.dirent(sampleSub, "sub")
	b.dirent(sampleZero, "zero")
	b.dirent(sampleCopy, "copy")
	b.dirent(sampleHard, "hard2")
	b.dirent(sampleSparse, "sparse")
	b.xattr("user.a", "1")
	b.xattr("user.b", "")
	b.xattr("security.x", "\x00\x01")
	target, tlen := b.add("sub/sparse")

	b.inode(inodeRow{mode: ModeDir | 0o755, dataStart: 1, dataCount: 6})
	b.inode(inodeRow{mode: ModeReg | 0o4755, uid: 1000, gid: 100, size: 100, dataStart: 0, dataCount: 1, xattrStart: 0, xatt: 2})
	b.inode(inodeRow{mode: ModeChr | 0o666, rdev: 1<<8 | 3})
	b.inode(inodeRow{mode: ModeFifo | 0o600, uid: 1000})
	b.inode(inodeRow{mode: ModeLink | 0o777, size: uint64(tlen), dataStart: target, dataCount: uint32(tlen)})
	b.inode(inodeRow{mode: ModeDir | 0o1777, dataStart: 7, dataCount: 3, xattrStart: 2, xatt: 1})
	b.inode(inodeRow{mode: ModeReg | 0o644, size: 100, dataStart: 0, dataCount: 1})
	b.inode(inodeRow{mode: ModeReg | 0o644, size: 4196, dataStart: 1, dataCount: 3})
	b.inode(inodeRow{mode: ModeReg | 0o644, dataStart: 4, dataCount: 0})
	return x
}

// section is one tagged section of an encoded index.
type section struct {
	tag, flags uint32
	body       []byte
}

// splitIndex cuts a well-formed encoded index into its sections.
func splitIndex(t testing.TB, b []byte) []section {
	t.Helper()
	n := binary.LittleEndian.Uint32(b[12:])
	b = b[16:]
	var out []section
	for i := uint32(0); i < n; i++ {
		l := binary.LittleEndian.Uint64(b[8:])
		out = append(out, section{binary.LittleEndian.Uint32(b), binary.LittleEndian.Uint32(b[4:]), b[16 : 16+l]})
		b = b[16+l:]
	}
	if len(b) != 0 {
		t.Fatalf("splitIndex: %d bytes after the sections", len(b))
	}
	return out
}

// joinIndex encodes sections after the index magic and version, the inverse
// of splitIndex.
func joinIndex(secs []section) []byte {
	b := append([]byte(nil), IndexMagic[:]...)
	b = binary.LittleEndian.AppendUint32(b, Version)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(secs)))
	for _, s := range secs {
		b = binary.LittleEndian.AppendUint32(b, s.tag)
		b = binary.LittleEndian.AppendUint32(b, s.flags)
		b = binary.LittleEndian.AppendUint64(b, uint64(len(s.body)))
		b = append(b, s.body...)
	}
	return b
}
