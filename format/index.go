package format

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"math/bits"
	"slices"
	"sort"

	"arc/internal/hugepage"
)

// IndexMagic opens the decompressed index.
var IndexMagic = [8]byte{'A', 'R', 'C', 'I', 'D', 'X', '\r', '\n'}

// Section tags of the index, in the order the writer emits them.
const (
	secParams  = 1
	secStats   = 2
	secBlocks  = 3
	secFrames  = 4
	secInodes  = 5
	secDirents = 6
	secExtents = 7
	secXattrs  = 8
	secUsers   = 9
	secGroups  = 10
	secBlob    = 11
	secImplied = 12
)

// sectionRequired marks a section a reader must understand; a reader skips
// unknown sections without it, so later versions can add optional data.
const sectionRequired = 1

// Codec identifiers stored per block.
const (
	CodecRaw  = 0 // stored as is
	CodecLZ4  = 1 // standard LZ4 block format
	CodecLZ4X = 2 // LZ4 sequences with 3-byte offsets (docs/FORMAT.md)
	CodecZstd = 3 // one zstd frame
	maxCodec  = CodecZstd
)

// Limits a valid index never exceeds; they bound what a reader allocates.
const (
	MaxBlockSize  = 256 << 20 // raw bytes of one block
	MaxNameLen    = 255       // bytes of one directory entry name
	MaxSymlinkLen = 4095      // bytes of a symlink target
	MaxXattrName  = 255
	MaxXattrValue = 64 << 10
)

// Hole marks an extent that reads as zeros and has no bytes in the stream.
const Hole = math.MaxUint64

// File types, the S_IFMT bits of a Linux st_mode.
const (
	ModeType = 0o170000
	ModeSock = 0o140000
	ModeLink = 0o120000
	ModeReg  = 0o100000
	ModeBlk  = 0o060000
	ModeDir  = 0o040000
	ModeChr  = 0o020000
	ModeFifo = 0o010000
	ModePerm = 0o7777 // permission, setuid, setgid and sticky bits
)

// KV is one archive parameter (how it was made), kept in write order.
type KV struct{ Key, Value string }

// Stat is one named counter of the archive's statistics.
type Stat struct {
	Key   string
	Value uint64
}

// Owner names a numeric user or group id as it was on the packing machine.
type Owner struct {
	ID   uint32
	Name string
}

// Blocks is the block table: one row per independently decodable block, in
// stream order. Row i's stored bytes follow row i-1's in the stream.
type Blocks struct {
	Codec      []uint8
	RawSize    []uint32
	StoredSize []uint32
	Sum        []uint64 // XXH3-64 of the raw bytes
}

// Len is the number of blocks.
func (b *Blocks) Count() int { return len(b.Codec) }

// Inodes holds one row per inode; hardlinked paths share a row.
//
// Data depends on the type: a regular file's extents are
// Extents[DataStart:DataStart+DataCount]; a directory's children are
// Dirents[DataStart:DataStart+DataCount], sorted by name; a symlink's target
// is Blob[DataStart:DataStart+DataCount]. Other types have no data.
type Inodes struct {
	Mode       []uint32
	UID        []uint32
	GID        []uint32
	Mtime      []int64 // ns since the Unix epoch
	Atime      []int64
	Size       []uint64
	Rdev       []uint64
	DataStart  []uint64
	DataCount  []uint32
	XattrStart []uint32
	XattrCount []uint32
}

// Len is the number of inodes.
func (n *Inodes) Count() int { return len(n.Mode) }

// Dirents holds one row per path. Row 0 is the root (empty name, inode 0).
type Dirents struct {
	Inode     []uint32
	NameStart []uint64 // into Blob
	NameLen   []uint16
}

// Len is the number of directory entries.
func (d *Dirents) Count() int { return len(d.Inode) }

// Extents are pieces of file content: Len bytes at Off in the unique-data
// stream, or Len zero bytes when Off is Hole.
type Extents struct {
	Off []uint64
	Len []uint64
}

// Len is the number of extents.
func (e *Extents) Count() int { return len(e.Off) }

// Xattrs holds extended attributes; an inode's are a contiguous run sorted by name.
type Xattrs struct {
	NameStart []uint64
	NameLen   []uint32
	ValStart  []uint64
	ValLen    []uint32
}

// Len is the number of extended attributes.
func (x *Xattrs) Count() int { return len(x.NameStart) }

// Index is the decoded archive index, held as columns rather than a struct
// per file so that millions of entries cost little memory and decode fast.
type Index struct {
	Params  []KV
	Stats   []Stat
	Blocks  Blocks
	Frames  []uint32 // number of blocks in each frame
	Inodes  Inodes
	Dirents Dirents
	Extents Extents
	Xattrs  Xattrs
	Users   []Owner
	Groups  []Owner
	Blob    []byte
	// Implied are the directories whose metadata the writer made up, not
	// read from a source: the root that holds several sources, and the
	// parents a tar stream never named (IsImplied). Inode numbers,
	// increasing.
	Implied []uint32

	// Derived by DecodeIndex (and by Derive), never stored.
	BlockRawOff     []uint64 // len Blocks+1: offset of each block in the unique stream
	BlockStoredOff  []uint64 // len Blocks+1: offset of each block's stored bytes in the archive stream
	FrameFirstBlock []uint32 // len Frames+1
	Nlink           []uint32 // per inode: paths for non-directories, 2+subdirectories for directories
	// ExtentEnd (len Extents+1): entry i is the sum of the lengths of the
	// first i extents, modulo 2^64. Within one file a difference is exact
	// (Derive checked that no file's size overflows): a file's extent
	// holding an offset is found by binary search over it.
	ExtentEnd []uint64
}

// Param returns the value of parameter key and whether it is set.
func (x *Index) Param(key string) (string, bool) {
	for _, kv := range x.Params {
		if kv.Key == key {
			return kv.Value, true
		}
	}
	return "", false
}

// Stat returns the value of statistic key (0 when absent).
func (x *Index) Stat(key string) uint64 {
	for _, s := range x.Stats {
		if s.Key == key {
			return s.Value
		}
	}
	return 0
}

// Name returns dirent d's name; it aliases the blob.
func (x *Index) Name(d uint32) []byte {
	s := x.Dirents.NameStart[d]
	return x.Blob[s : s+uint64(x.Dirents.NameLen[d])]
}

// Children returns the range of dirents that are directory inode ino's entries.
func (x *Index) Children(ino uint32) (start, end uint32) {
	s := uint32(x.Inodes.DataStart[ino])
	return s, s + x.Inodes.DataCount[ino]
}

// Lookup finds the child called name in directory inode dir by binary search.
func (x *Index) Lookup(dir uint32, name []byte) (dirent uint32, ok bool) {
	lo, hi := x.Children(dir)
	for lo < hi {
		m := lo + (hi-lo)/2
		switch c := bytes.Compare(x.Name(m), name); {
		case c == 0:
			return m, true
		case c < 0:
			lo = m + 1
		default:
			hi = m
		}
	}
	return 0, false
}

// Symlink returns a symlink inode's target; it aliases the blob.
func (x *Index) Symlink(ino uint32) []byte {
	s := x.Inodes.DataStart[ino]
	return x.Blob[s : s+uint64(x.Inodes.DataCount[ino])]
}

// FileExtents returns the extent range of a regular file inode.
func (x *Index) FileExtents(ino uint32) (start, end uint64) {
	s := x.Inodes.DataStart[ino]
	return s, s + uint64(x.Inodes.DataCount[ino])
}

// XattrRange returns the range of inode ino's extended attributes.
func (x *Index) XattrRange(ino uint32) (start, end uint32) {
	s := x.Inodes.XattrStart[ino]
	return s, s + x.Inodes.XattrCount[ino]
}

// XattrName and XattrValue return attribute i's name and value (aliasing the blob).
func (x *Index) XattrName(i uint32) []byte {
	s := x.Xattrs.NameStart[i]
	return x.Blob[s : s+uint64(x.Xattrs.NameLen[i])]
}

func (x *Index) XattrValue(i uint32) []byte {
	s := x.Xattrs.ValStart[i]
	return x.Blob[s : s+uint64(x.Xattrs.ValLen[i])]
}

// UniqueSize is the length of the unique-data stream (sum of raw block sizes).
func (x *Index) UniqueSize() uint64 { return x.BlockRawOff[len(x.BlockRawOff)-1] }

// ExtentSearchMin: in files with at least this many extents, ExtentAt
// finds the one holding an offset by binary search over ExtentEnd; smaller
// ones are scanned.
const ExtentSearchMin = 32

// ExtentAt returns the extent of a file's run [start,end) that holds file
// offset off, and off's distance into it; end (and 0) past the file's end.
func (x *Index) ExtentAt(start, end, off uint64) (ext, into uint64) {
	if end-start < ExtentSearchMin {
		for e := start; e < end; e++ {
			if off < x.Extents.Len[e] {
				return e, off
			}
			off -= x.Extents.Len[e]
		}
		return end, 0
	}
	all := x.ExtentEnd
	// Within the file, extent i ends ends(i) bytes in.
	base := all[start]
	ends := func(i int) uint64 { return all[start+uint64(i)+1] - base }
	n := int(end - start)
	i := sort.Search(n, func(i int) bool { return ends(i) > off })
	if i == n {
		return end, 0
	}
	before := uint64(0)
	if i > 0 {
		before = ends(i - 1)
	}
	return start + uint64(i), off - before
}

// HoleSums returns the prefix sums of the holes' lengths over the
// extents: entry i is the hole bytes of the first i extents, so a run's
// hole bytes are one subtraction however inodes share or overlap runs
// (modulo 2^64, as ExtentEnd: within one file exact). nil where the index
// has no holes (most): no run has any.
func (x *Index) HoleSums() []uint64 {
	if !slices.Contains(x.Extents.Off, Hole) {
		return nil
	}
	sums := make([]uint64, x.Extents.Count()+1)
	for i, off := range x.Extents.Off {
		sums[i+1] = sums[i]
		if off == Hole {
			sums[i+1] += x.Extents.Len[i]
		}
	}
	return sums
}

// MaxBlockRaw is the raw size of the archive's largest block (0 for none).
func (x *Index) MaxBlockRaw() int64 {
	var m uint32
	for _, n := range x.Blocks.RawSize {
		m = max(m, n)
	}
	return int64(m)
}

// DataSize is the length of the stored block data at the start of the stream.
func (x *Index) DataSize() uint64 { return x.BlockStoredOff[len(x.BlockStoredOff)-1] }

// BlockAt returns the block holding unique-stream offset off (off < UniqueSize).
func (x *Index) BlockAt(off uint64) uint32 {
	lo, hi := 0, x.Blocks.Count() // invariant: BlockRawOff[lo] <= off < BlockRawOff[hi]
	for hi-lo > 1 {
		m := int(uint(lo+hi) >> 1)
		if x.BlockRawOff[m] <= off {
			lo = m
		} else {
			hi = m
		}
	}
	return uint32(lo)
}

// FrameOf returns the frame that block b belongs to.
func (x *Index) FrameOf(b uint32) uint32 {
	lo, hi := 0, len(x.Frames)
	for hi-lo > 1 {
		m := int(uint(lo+hi) >> 1)
		if x.FrameFirstBlock[m] <= b {
			lo = m
		} else {
			hi = m
		}
	}
	return uint32(lo)
}

// IsDir reports whether inode ino is a directory.
func (x *Index) IsDir(ino uint32) bool { return x.Inodes.Mode[ino]&ModeType == ModeDir }

// IsImplied reports whether directory ino's metadata were made up by the
// writer (see Index.Implied): they restore no one's, and extract leaves a
// directory that is already there as it is.
func (x *Index) IsImplied(ino uint32) bool {
	_, ok := slices.BinarySearch(x.Implied, ino)
	return ok
}

// Visit visits every dirent below the root in depth-first, name order,
// giving each its depth (1 for the root's own entries); it goes into a
// directory's entries when fn says descend. It keeps its own stack of the
// directories it is in, one small record a level, rather than recursing:
// an index nesting millions of directories (78 bytes of index each) would
// overflow the goroutine stack, a fatal error that no recover catches.
func (x *Index) Visit(fn func(dirent uint32, depth int) (descend bool, err error)) error {
	type level struct{ next, end uint32 } // the directory's dirents not visited yet
	s, e := x.Children(0)
	stack := []level{{s, e}}
	for len(stack) > 0 {
		l := &stack[len(stack)-1]
		if l.next == l.end {
			stack = stack[:len(stack)-1]
			continue
		}
		d := l.next
		l.next++
		descend, err := fn(d, len(stack))
		if err != nil {
			return err
		}
		if ino := x.Dirents.Inode[d]; descend && x.IsDir(ino) {
			s, e := x.Children(ino)
			stack = append(stack, level{s, e})
		}
	}
	return nil
}

// Walk visits every dirent below the root in depth-first, name order, giving
// each path relative to the root (components joined by '/'; the slice is
// reused after fn returns). Returning a non-nil error from fn stops the
// walk; SkipDir from a directory skips it. Like Visit, it goes any depth.
func (x *Index) Walk(fn func(path []byte, dirent uint32) error) error {
	var path []byte
	ends := []int{0} // ends[k]: the length of the path of the directory at depth k
	return x.Visit(func(d uint32, depth int) (bool, error) {
		ends = ends[:depth]
		path = path[:ends[depth-1]]
		if depth > 1 {
			path = append(path, '/')
		}
		path = append(path, x.Name(d)...)
		switch err := fn(path, d); err {
		case nil:
			ends = append(ends, len(path))
			return true, nil
		case SkipDir:
			return false, nil
		default:
			return false, err
		}
	})
}

// SkipDir is returned by a Walk callback to skip a directory's contents.
var SkipDir = fmt.Errorf("skip this directory")

// EncodeIndex serialises x (uncompressed). The derived fields are ignored.
func EncodeIndex(x *Index) []byte {
	// Sized up front: grown by appends, a million-extent index was copied
	// a dozen times over into fresh memory.
	w := &wbuf{b: make([]byte, 0, encodedSizeHint(x))}
	w.raw(IndexMagic[:])
	w.u32(Version)
	sections := 11
	if len(x.Implied) > 0 {
		sections++
	}
	w.u32(uint32(sections))

	w.section(secParams, sectionRequired, func(w *wbuf) {
		w.u32(uint32(len(x.Params)))
		for _, kv := range x.Params {
			w.str16(kv.Key)
			w.u32(uint32(len(kv.Value)))
			w.raw([]byte(kv.Value))
		}
	})
	w.section(secStats, sectionRequired, func(w *wbuf) {
		w.u32(uint32(len(x.Stats)))
		for _, s := range x.Stats {
			w.str16(s.Key)
			w.u64(s.Value)
		}
	})
	w.section(secBlocks, sectionRequired, func(w *wbuf) {
		w.u64(uint64(x.Blocks.Count()))
		w.raw(x.Blocks.Codec)
		w.u32s(x.Blocks.RawSize)
		w.u32s(x.Blocks.StoredSize)
		w.u64s(x.Blocks.Sum)
	})
	w.section(secFrames, sectionRequired, func(w *wbuf) {
		w.u64(uint64(len(x.Frames)))
		w.u32s(x.Frames)
	})
	w.section(secInodes, sectionRequired, func(w *wbuf) {
		n := &x.Inodes
		w.u64(uint64(n.Count()))
		w.u32s(n.Mode)
		w.u32s(n.UID)
		w.u32s(n.GID)
		w.i64s(n.Mtime)
		w.i64s(n.Atime)
		w.u64s(n.Size)
		w.u64s(n.Rdev)
		w.u64s(n.DataStart)
		w.u32s(n.DataCount)
		w.u32s(n.XattrStart)
		w.u32s(n.XattrCount)
	})
	w.section(secDirents, sectionRequired, func(w *wbuf) {
		d := &x.Dirents
		w.u64(uint64(d.Count()))
		w.u32s(d.Inode)
		w.u64s(d.NameStart)
		w.u16s(d.NameLen)
	})
	w.section(secExtents, sectionRequired, func(w *wbuf) {
		w.u64(uint64(x.Extents.Count()))
		w.u64s(x.Extents.Off)
		w.u64s(x.Extents.Len)
	})
	w.section(secXattrs, sectionRequired, func(w *wbuf) {
		a := &x.Xattrs
		w.u64(uint64(a.Count()))
		w.u64s(a.NameStart)
		w.u32s(a.NameLen)
		w.u64s(a.ValStart)
		w.u32s(a.ValLen)
	})
	owners := func(list []Owner) func(*wbuf) {
		return func(w *wbuf) {
			w.u32(uint32(len(list)))
			for _, o := range list {
				w.u32(o.ID)
				w.str16(o.Name)
			}
		}
	}
	w.section(secUsers, 0, owners(x.Users))
	w.section(secGroups, 0, owners(x.Groups))
	w.section(secBlob, sectionRequired, func(w *wbuf) { w.raw(x.Blob) })
	if len(x.Implied) > 0 {
		// Optional: a reader that does not know it extracts such a
		// directory with the metadata recorded for it, as before.
		w.section(secImplied, 0, func(w *wbuf) {
			w.u64(uint64(len(x.Implied)))
			w.u32s(x.Implied)
		})
	}
	return w.b
}

// encodedSizeHint is about the size of EncodeIndex(x): its columns and blob
// exactly, plus room for the headers, parameters and owner names.
func encodedSizeHint(x *Index) int {
	n := 4 << 10
	for _, kv := range x.Params {
		n += 6 + len(kv.Key) + len(kv.Value)
	}
	n += len(x.Stats) * 64
	n += x.Blocks.Count()*(1+4+4+8) + len(x.Frames)*4
	n += x.Inodes.Count() * (4*3 + 8*5 + 4*3)
	n += x.Dirents.Count() * (4 + 8 + 2)
	n += x.Extents.Count() * 16
	n += x.Xattrs.Count() * 24
	for _, o := range append(x.Users[:len(x.Users):len(x.Users)], x.Groups...) {
		n += 6 + len(o.Name)
	}
	return n + len(x.Blob) + 4*len(x.Implied)
}

// DecodeIndex parses a decompressed index and validates it completely:
// every table's size, every reference between tables, the shape of the
// directory tree, names, and file sizes against their extents. A nil error
// means the index can be used without further bounds checks.
func DecodeIndex(b []byte) (*Index, error) {
	return decodeIndex(&sectionReader{buf: b, left: uint64(len(b))})
}

// DecodeOwnedIndex is DecodeIndex on a buffer it takes over: the tables
// are moved within b and used in place (tables.go), so that the index
// holds b and little besides, where DecodeIndex copies every table out of
// it. b's bytes must not be used afterwards, whatever the error.
func DecodeOwnedIndex(b []byte) (*Index, error) {
	return decodeIndex(&sectionReader{buf: b, ar: newArena(b), left: uint64(len(b))})
}

// DecodeIndexFrom is DecodeIndex on exactly size bytes read from r (a
// decompressing reader), one section at a time into a buffer of its own,
// whose bytes become the section's tables (tables.go): opening an archive
// never holds the whole decompressed index beside them (101.7 MiB for a
// million files). size is a
// claim (a footer's): at most alloc bytes are allocated for a piece
// before its bytes arrive, and the rest only as they do. It reads no byte
// past size; the caller checks that r ends there. Errors from r are
// ErrCorrupt.
func DecodeIndexFrom(r io.Reader, size, alloc uint64) (*Index, error) {
	if size > MaxIndexSize {
		return nil, fmt.Errorf("%w: index of %d bytes", ErrLimit, size)
	}
	return decodeIndex(&sectionReader{r: r, left: size, alloc: alloc})
}

func decodeIndex(in *sectionReader) (*Index, error) {
	magic, err := in.next(8)
	if err != nil {
		return nil, err
	}
	if [8]byte(magic) != IndexMagic {
		return nil, fmt.Errorf("%w: index has no magic", ErrCorrupt)
	}
	v, err := in.next(4)
	if err != nil {
		return nil, err
	}
	if v := (&rbuf{b: v}).u32(); v != Version {
		return nil, fmt.Errorf("%w: index version %d", ErrVersion, v)
	}
	n, err := in.next(4)
	if err != nil {
		return nil, err
	}
	nsec := (&rbuf{b: n}).u32()
	x := &Index{}
	seen := map[uint32]bool{}
	for i := uint32(0); i < nsec; i++ {
		h, err := in.next(16)
		if err != nil {
			return nil, err
		}
		hr := &rbuf{b: h}
		tag, flags, body := hr.u32(), hr.u32(), hr.u64()
		if body > in.left {
			return nil, fmt.Errorf("%w: index section %d claims %d bytes, %d remain", ErrCorrupt, tag, body, in.left)
		}
		if seen[tag] {
			return nil, fmt.Errorf("%w: index section %d appears twice", ErrCorrupt, tag)
		}
		seen[tag] = true
		b, err := in.next(body)
		if err != nil {
			return nil, err
		}
		r := &rbuf{b: b, own: in.buf == nil, ar: in.ar}
		if r.own {
			r.ar = newArena(b)
		}
		if err := x.decodeSection(tag, flags, r); err != nil {
			return nil, err
		}
	}
	if in.left != 0 {
		return nil, fmt.Errorf("%w: %d stray bytes after the index sections", ErrCorrupt, in.left)
	}
	for _, t := range []uint32{secParams, secStats, secBlocks, secFrames, secInodes, secDirents, secExtents, secXattrs, secBlob} {
		if !seen[t] {
			return nil, fmt.Errorf("%w: index lacks section %d", ErrCorrupt, t)
		}
	}
	if err := x.Derive(); err != nil {
		return nil, err
	}
	return x, nil
}

// sectionReader hands out the index's bytes in pieces (a header, a
// section's body): slices of buf, or read from r each into a buffer of
// its own.
type sectionReader struct {
	buf   []byte // the whole index, when it is in memory
	ar    *arena // buf's arena, when the decoder owns it (DecodeOwnedIndex)
	r     io.Reader
	left  uint64 // bytes the index has yet to yield
	alloc uint64 // bytes a piece read from r may allocate before they arrive
}

// next returns the next n bytes; a short or failing stream is ErrCorrupt.
func (s *sectionReader) next(n uint64) ([]byte, error) {
	if n > s.left {
		return nil, fmt.Errorf("%w: index field of %d bytes, %d remain", ErrCorrupt, n, s.left)
	}
	if s.buf != nil {
		b := s.buf[:n:n]
		s.buf, s.left = s.buf[n:], s.left-n
		return b, nil
	}
	// The buffer that holds the whole section becomes its tables and
	// lives with the index: only it is given huge pages (the advice stays
	// with the address range after a buffer is dropped, where the runtime
	// reuses and returns memory).
	alloc := func(size int) []byte {
		if uint64(size) == n {
			return hugepage.Make[byte](size)
		}
		return make([]byte, size)
	}
	b := alloc(int(min(n, s.alloc)))[:0]
	for uint64(len(b)) < n {
		if len(b) == cap(b) { // about doubles, from 512 bytes
			grown := alloc(len(b) + int(min(n-uint64(len(b)), uint64(max(cap(b), 512)))))
			b = grown[:copy(grown, b)]
		}
		want := min(uint64(cap(b)-len(b)), n-uint64(len(b)))
		k, err := s.r.Read(b[len(b) : len(b)+int(want)])
		b = b[:len(b)+k]
		if err != nil && uint64(len(b)) < n {
			if err == io.EOF {
				return nil, fmt.Errorf("%w: index ends %d bytes short of its size", ErrCorrupt, s.left-uint64(len(b)))
			}
			return nil, fmt.Errorf("%w: index: %v", ErrCorrupt, err)
		}
	}
	s.left -= n
	return b, nil
}

func (x *Index) decodeSection(tag, flags uint32, s *rbuf) error {
	switch tag {
	case secParams:
		n := s.count32(6)
		for i := 0; i < n && s.err == nil; i++ {
			k := s.str16()
			v := s.take(int(s.u32()))
			x.Params = append(x.Params, KV{k, string(v)})
		}
	case secStats:
		n := s.count32(10)
		for i := 0; i < n && s.err == nil; i++ {
			k := s.str16()
			x.Stats = append(x.Stats, Stat{k, s.u64()})
		}
	case secBlocks:
		n := s.count64(1 + 4 + 4 + 8)
		x.Blocks.Codec = s.bytesOf(s.take(n))
		x.Blocks.RawSize = s.u32s(n)
		x.Blocks.StoredSize = s.u32s(n)
		x.Blocks.Sum = s.u64s(n)
	case secFrames:
		n := s.count64(4)
		x.Frames = s.u32s(n)
	case secInodes:
		n := s.count64(4*3 + 8*5 + 4*3)
		in := &x.Inodes
		in.Mode, in.UID, in.GID = s.u32s(n), s.u32s(n), s.u32s(n)
		in.Mtime, in.Atime = s.i64s(n), s.i64s(n)
		in.Size, in.Rdev, in.DataStart = s.u64s(n), s.u64s(n), s.u64s(n)
		in.DataCount, in.XattrStart, in.XattrCount = s.u32s(n), s.u32s(n), s.u32s(n)
	case secDirents:
		n := s.count64(4 + 8 + 2)
		x.Dirents.Inode, x.Dirents.NameStart, x.Dirents.NameLen = s.u32s(n), s.u64s(n), s.u16s(n)
	case secExtents:
		n := s.count64(16)
		x.Extents.Off, x.Extents.Len = s.u64s(n), s.u64s(n)
	case secXattrs:
		n := s.count64(8 + 4 + 8 + 4)
		a := &x.Xattrs
		a.NameStart, a.NameLen, a.ValStart, a.ValLen = s.u64s(n), s.u32s(n), s.u64s(n), s.u32s(n)
	case secUsers, secGroups:
		n := s.count32(6)
		var list []Owner
		for i := 0; i < n && s.err == nil; i++ {
			list = append(list, Owner{s.u32(), s.str16()})
		}
		if tag == secUsers {
			x.Users = list
		} else {
			x.Groups = list
		}
	case secImplied:
		x.Implied = s.u32s(s.count64(4))
	case secBlob:
		x.Blob = s.bytesOf(s.take(len(s.b)))
	default:
		if flags&sectionRequired != 0 {
			return fmt.Errorf("%w: index section %d is required but unknown", ErrVersion, tag)
		}
		return nil
	}
	if s.err != nil {
		return fmt.Errorf("index section %d: %w", tag, s.err)
	}
	if len(s.b) != 0 {
		return fmt.Errorf("%w: index section %d has %d stray bytes", ErrCorrupt, tag, len(s.b))
	}
	return nil
}

// Derive validates x and computes its derived tables. DecodeIndex calls it;
// a writer may call it to check what it built.
func (x *Index) Derive() error {
	corrupt := func(format string, a ...any) error {
		return fmt.Errorf("%w: index: %s", ErrCorrupt, fmt.Sprintf(format, a...))
	}
	blob := uint64(len(x.Blob))
	inBlob := func(start, n uint64) bool { return start <= blob && n <= blob-start }

	// Blocks and frames.
	nb := x.Blocks.Count()
	if len(x.Blocks.RawSize) != nb || len(x.Blocks.StoredSize) != nb || len(x.Blocks.Sum) != nb {
		return corrupt("block columns differ in length")
	}
	x.BlockRawOff = make([]uint64, nb+1)
	x.BlockStoredOff = make([]uint64, nb+1)
	for i := 0; i < nb; i++ {
		c, raw, st := x.Blocks.Codec[i], x.Blocks.RawSize[i], x.Blocks.StoredSize[i]
		if c > maxCodec {
			return corrupt("block %d has unknown codec %d", i, c)
		}
		if raw == 0 || raw > MaxBlockSize {
			return corrupt("block %d raw size %d", i, raw)
		}
		if st == 0 || st > raw || (c == CodecRaw && st != raw) {
			return corrupt("block %d stores %d bytes for %d raw with codec %d", i, st, raw, c)
		}
		x.BlockRawOff[i+1] = x.BlockRawOff[i] + uint64(raw)
		x.BlockStoredOff[i+1] = x.BlockStoredOff[i] + uint64(st)
	}
	x.FrameFirstBlock = make([]uint32, len(x.Frames)+1)
	var total uint64
	for i, n := range x.Frames {
		if n == 0 {
			return corrupt("frame %d has no blocks", i)
		}
		total += uint64(n)
		if total > uint64(nb) {
			return corrupt("frames claim more blocks than the %d in the table", nb)
		}
		x.FrameFirstBlock[i+1] = uint32(total)
	}
	if total != uint64(nb) {
		return corrupt("frames hold %d blocks, the table has %d", total, nb)
	}
	unique := x.BlockRawOff[nb]

	// Extents.
	ne := x.Extents.Count()
	if len(x.Extents.Len) != ne {
		return corrupt("extent columns differ in length")
	}
	for i := 0; i < ne; i++ {
		off, n := x.Extents.Off[i], x.Extents.Len[i]
		if n == 0 {
			return corrupt("extent %d is empty", i)
		}
		if off != Hole && (off > unique || n > unique-off) {
			return corrupt("extent %d [%d,+%d) lies outside the unique stream of %d bytes", i, off, n, unique)
		}
	}
	// Files may share extent ranges (duplicates do), so summing each file's
	// extents would take files × extents steps on a hostile index. Prefix
	// sums make each file's size one subtraction; they are 128 bits wide
	// because holes may be nearly 2^64 bytes long. The low words are kept
	// (ExtentEnd); the high ones are made only once a sum passes 2^64,
	// which no index of real files does.
	x.ExtentEnd = hugepage.Make[uint64](ne + 1)
	var extHi []uint64
	for i := 0; i < ne; i++ {
		var carry uint64
		x.ExtentEnd[i+1], carry = bits.Add64(x.ExtentEnd[i], x.Extents.Len[i], 0)
		if carry != 0 && extHi == nil {
			extHi = make([]uint64, ne+1)
		}
		if extHi != nil {
			extHi[i+1] = extHi[i] + carry
		}
	}

	// Xattrs.
	na := x.Xattrs.Count()
	a := &x.Xattrs
	if len(a.NameLen) != na || len(a.ValStart) != na || len(a.ValLen) != na {
		return corrupt("xattr columns differ in length")
	}
	for i := 0; i < na; i++ {
		if a.NameLen[i] == 0 || a.NameLen[i] > MaxXattrName || !inBlob(a.NameStart[i], uint64(a.NameLen[i])) {
			return corrupt("xattr %d name out of range", i)
		}
		if a.ValLen[i] > MaxXattrValue || !inBlob(a.ValStart[i], uint64(a.ValLen[i])) {
			return corrupt("xattr %d value out of range", i)
		}
	}
	// unsorted[j] counts the rows k < j whose name is not below row k-1's:
	// an inode's run is sorted when it holds none of them, checked in one
	// step however many inodes share the run.
	unsorted := make([]uint32, na+1)
	for j := 0; j < na; j++ {
		unsorted[j+1] = unsorted[j]
		if j > 0 && bytes.Compare(x.XattrName(uint32(j-1)), x.XattrName(uint32(j))) >= 0 {
			unsorted[j+1]++
		}
	}

	// Inodes.
	in := &x.Inodes
	ni := in.Count()
	for _, l := range []int{len(in.UID), len(in.GID), len(in.Mtime), len(in.Atime), len(in.Size), len(in.Rdev), len(in.DataStart), len(in.DataCount), len(in.XattrStart), len(in.XattrCount)} {
		if l != ni {
			return corrupt("inode columns differ in length")
		}
	}
	nd := x.Dirents.Count()
	if len(x.Dirents.NameStart) != nd || len(x.Dirents.NameLen) != nd {
		return corrupt("dirent columns differ in length")
	}
	if ni == 0 || nd == 0 {
		return corrupt("no root directory")
	}
	if ni > math.MaxUint32-1 || nd > math.MaxUint32-1 {
		return corrupt("too many entries")
	}
	for i := 0; i < ni; i++ {
		xs, xc := uint64(in.XattrStart[i]), uint64(in.XattrCount[i])
		if xs > uint64(na) || xc > uint64(na)-xs {
			return corrupt("inode %d xattrs out of range", i)
		}
		if xc > 1 && unsorted[xs+xc] != unsorted[xs+1] {
			return corrupt("inode %d xattrs not sorted or repeated", i)
		}
		ds, dc := in.DataStart[i], uint64(in.DataCount[i])
		switch in.Mode[i] & ModeType {
		case ModeReg:
			if ds > uint64(ne) || dc > uint64(ne)-ds {
				return corrupt("inode %d extents out of range", i)
			}
			size, borrow := bits.Sub64(x.ExtentEnd[ds+dc], x.ExtentEnd[ds], 0)
			var hi uint64
			if extHi != nil {
				hi = extHi[ds+dc] - extHi[ds]
			}
			if hi-borrow != 0 {
				return corrupt("inode %d size overflows", i)
			}
			if size != in.Size[i] {
				return corrupt("inode %d size %d, its extents hold %d", i, in.Size[i], size)
			}
			// Readers address a file with int64 offsets (off_t): a larger
			// one would read as empty.
			if size > math.MaxInt64 {
				return corrupt("inode %d size %d is beyond 2^63-1", i, size)
			}
		case ModeDir:
			if ds > uint64(nd) || dc > uint64(nd)-ds {
				return corrupt("inode %d children out of range", i)
			}
		case ModeLink:
			if dc == 0 || dc > MaxSymlinkLen || !inBlob(ds, dc) || in.Size[i] != dc {
				return corrupt("inode %d symlink target out of range", i)
			}
		case ModeChr, ModeBlk, ModeFifo, ModeSock:
			if dc != 0 || in.Size[i] != 0 {
				return corrupt("inode %d of type %o has data", i, in.Mode[i]&ModeType)
			}
		default:
			return corrupt("inode %d has unknown type %o", i, in.Mode[i]&ModeType)
		}
	}

	// Directory tree: dirent 0 is the root and names inode 0, a directory.
	// Every other dirent belongs to exactly one directory's child range, and
	// that range starts after the directory's own dirent, so following
	// parents always moves towards dirent 0: the tree has no cycles and
	// every entry is reachable.
	if x.Dirents.Inode[0] != 0 || x.Dirents.NameLen[0] != 0 || !inBlob(x.Dirents.NameStart[0], 0) || !x.IsDir(0) {
		return corrupt("dirent 0 is not the root directory")
	}
	// Names first: the tree walk below compares siblings' names before it
	// reaches their own dirents.
	for d := 1; d < nd; d++ {
		l := uint64(x.Dirents.NameLen[d])
		if l == 0 || l > MaxNameLen || !inBlob(x.Dirents.NameStart[d], l) {
			return corrupt("dirent %d name out of range", d)
		}
		name := x.Name(uint32(d))
		if bytes.IndexByte(name, '/') >= 0 || bytes.IndexByte(name, 0) >= 0 || string(name) == "." || string(name) == ".." {
			return corrupt("dirent %d has an invalid name %q", d, name)
		}
	}
	x.Nlink = hugepage.Make[uint32](ni)
	owned := make([]bool, nd)
	owned[0] = true
	for d := 0; d < nd; d++ {
		ino := x.Dirents.Inode[d]
		if int(ino) >= ni {
			return corrupt("dirent %d names inode %d of %d", d, ino, ni)
		}
		if !x.IsDir(ino) {
			x.Nlink[ino]++
			if x.Nlink[ino] == 0 {
				return corrupt("inode %d has too many links", ino)
			}
			continue
		}
		if x.Nlink[ino] != 0 {
			return corrupt("directory inode %d has more than one path", ino)
		}
		x.Nlink[ino] = 2
		s, e := x.Children(ino)
		if e > s && s <= uint32(d) {
			return corrupt("directory at dirent %d lists children before itself", d)
		}
		for c := s; c < e; c++ {
			if owned[c] {
				return corrupt("dirent %d belongs to two directories", c)
			}
			owned[c] = true
			if c > s && bytes.Compare(x.Name(c-1), x.Name(c)) >= 0 {
				return corrupt("directory at dirent %d: entries not sorted or repeated", d)
			}
		}
	}
	for d := 0; d < nd; d++ {
		if !owned[d] {
			return corrupt("dirent %d belongs to no directory", d)
		}
	}
	for i := 0; i < ni; i++ {
		if x.Nlink[i] == 0 {
			return corrupt("inode %d has no path", i)
		}
	}
	// Directories count their subdirectories (the ".." in each).
	for i := 0; i < ni; i++ {
		if !x.IsDir(uint32(i)) {
			continue
		}
		s, e := x.Children(uint32(i))
		for c := s; c < e; c++ {
			if x.IsDir(x.Dirents.Inode[c]) {
				x.Nlink[i]++
			}
		}
	}

	// Implied directories: increasing (IsImplied searches them), and
	// directories.
	for k, ino := range x.Implied {
		if int(ino) >= ni || !x.IsDir(ino) || k > 0 && ino <= x.Implied[k-1] {
			return corrupt("implied directory %d (entry %d) is not a directory or out of order", ino, k)
		}
	}

	// Owners.
	for _, list := range [][]Owner{x.Users, x.Groups} {
		for _, o := range list {
			if len(o.Name) == 0 || len(o.Name) > 256 {
				return corrupt("owner %d has a name of %d bytes", o.ID, len(o.Name))
			}
		}
	}
	return nil
}

// wbuf appends little-endian values.
type wbuf struct{ b []byte }

func (w *wbuf) raw(p []byte) { w.b = append(w.b, p...) }
func (w *wbuf) u16(v uint16) { w.b = binary.LittleEndian.AppendUint16(w.b, v) }
func (w *wbuf) u32(v uint32) { w.b = binary.LittleEndian.AppendUint32(w.b, v) }
func (w *wbuf) u64(v uint64) { w.b = binary.LittleEndian.AppendUint64(w.b, v) }
func (w *wbuf) str16(s string) {
	w.u16(uint16(len(s)))
	w.b = append(w.b, s...)
}
func (w *wbuf) u16s(v []uint16) {
	for _, x := range v {
		w.u16(x)
	}
}
func (w *wbuf) u32s(v []uint32) {
	for _, x := range v {
		w.u32(x)
	}
}
func (w *wbuf) u64s(v []uint64) {
	for _, x := range v {
		w.u64(x)
	}
}
func (w *wbuf) i64s(v []int64) {
	for _, x := range v {
		w.u64(uint64(x))
	}
}

// section writes a tagged section whose length is patched in after body.
func (w *wbuf) section(tag, flags uint32, body func(*wbuf)) {
	w.u32(tag)
	w.u32(flags)
	at := len(w.b)
	w.u64(0)
	body(w)
	binary.LittleEndian.PutUint64(w.b[at:], uint64(len(w.b)-at-8))
}

// rbuf consumes little-endian values; the first short read sets err and
// every later read returns zero values.
type rbuf struct {
	b   []byte
	err error
	own bool   // b is a buffer of its own, not a slice of a larger one
	ar  *arena // where b's tables may be carved in place; nil: copied (tables.go)
}

func (r *rbuf) take(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > len(r.b) {
		r.err = fmt.Errorf("%w: index field of %d bytes, %d remain", ErrCorrupt, n, len(r.b))
		return nil
	}
	p := r.b[:n:n]
	r.b = r.b[n:]
	return p
}

func (r *rbuf) u16() uint16 {
	if p := r.take(2); len(p) == 2 {
		return binary.LittleEndian.Uint16(p)
	}
	return 0
}

func (r *rbuf) u32() uint32 {
	if p := r.take(4); len(p) == 4 {
		return binary.LittleEndian.Uint32(p)
	}
	return 0
}

func (r *rbuf) u64() uint64 {
	if p := r.take(8); len(p) == 8 {
		return binary.LittleEndian.Uint64(p)
	}
	return 0
}

func (r *rbuf) str16() string { return string(r.take(int(r.u16()))) }

// count32 and count64 read a row count and reject one that the remaining
// bytes cannot hold at rowMin bytes a row, before anything is allocated.
func (r *rbuf) count32(rowMin int) int { return r.check(uint64(r.u32()), rowMin) }
func (r *rbuf) count64(rowMin int) int { return r.check(r.u64(), rowMin) }

func (r *rbuf) check(n uint64, rowMin int) int {
	if r.err != nil {
		return 0
	}
	if n > uint64(len(r.b))/uint64(rowMin) {
		r.err = fmt.Errorf("%w: index table claims %d rows in %d bytes", ErrCorrupt, n, len(r.b))
		return 0
	}
	return int(n)
}
