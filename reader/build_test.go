package reader

import (
	"cmp"
	"crypto/rand"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"arc/codec"
	"arc/format"
)

// This file builds archives for the tests straight from a format.Index and
// raw blocks, independently of the writer: a tree of entries is laid out
// into dirents/inodes, file content into a unique stream cut into blocks
// and frames, and the stream into volumes exactly as docs/FORMAT.md says.

// seg is a piece of file content: data, a hole of n zero bytes, or a
// repeat of repeatLen bytes already in the unique stream at repeatAt (an
// extent as segment deduplication writes it; dataOf cannot give its bytes).
type seg struct {
	data      []byte
	hole      uint64
	repeatAt  uint64
	repeatLen uint64
}

type entry struct {
	path   string
	mode   uint32 // type and permission bits
	uid    uint32
	gid    uint32
	mtime  int64
	atime  int64
	rdev   uint64
	segs   []seg  // regular files
	target string // symlinks
	link   string // hardlink: same inode as this earlier path
	dupOf  string // regular file sharing that file's extents (whole-file dedup)
	xattrs map[string]string
	// implied: a directory whose metadata the writer made up
	// (format.Index.Implied).
	implied bool
}

type buildOpts struct {
	blockSize   int // raw bytes per block
	firstBlock  int // raw bytes of the first block, when not blockSize
	frameBlocks int // blocks per frame
	volumeSize  int64
	codec       string // raw or lz4
}

type built struct {
	idx     *format.Index
	base    string
	volumes []string
	id      format.ArchiveID
	layout  format.Layout
	footer  format.Footer
}

func dataOf(segs []seg) []byte {
	var out []byte
	for _, s := range segs {
		if s.repeatLen > 0 {
			panic("dataOf: a repeat's bytes are the unique stream's")
		}
		if s.data != nil {
			out = append(out, s.data...)
		} else {
			out = append(out, make([]byte, s.hole)...)
		}
	}
	return out
}

// buildArchive writes the entries as an archive at dir/name.NNN.
func buildArchive(t testing.TB, dir, name string, entries []entry, o buildOpts) *built {
	t.Helper()
	if o.blockSize == 0 {
		o.blockSize = 4096
	}
	if o.frameBlocks == 0 {
		o.frameBlocks = 4
	}
	if o.codec == "" {
		o.codec = "lz4"
	}
	x := &format.Index{Params: []format.KV{{Key: "tool", Value: "reader test"}}}
	byPath := map[string]*entry{}
	kids := map[string][]string{}
	for i := range entries {
		e := &entries[i]
		byPath[e.path] = e
		if e.path == "" {
			continue // the root's own metadata
		}
		parent := filepath.Dir(e.path)
		if parent == "." {
			parent = ""
		}
		kids[parent] = append(kids[parent], e.path)
	}
	root := &entry{path: "", mode: format.ModeDir | 0o755, mtime: 1e18}
	if e, ok := byPath[""]; ok {
		root = e
	}
	var unique []byte
	var blob []byte
	inoOf := map[string]uint32{}
	extOf := map[string][2]uint64{}
	addInode := func(e *entry) uint32 {
		in := &x.Inodes
		ino := uint32(in.Count())
		in.Mode = append(in.Mode, e.mode)
		in.UID = append(in.UID, e.uid)
		in.GID = append(in.GID, e.gid)
		in.Mtime = append(in.Mtime, e.mtime)
		in.Atime = append(in.Atime, e.atime)
		in.Rdev = append(in.Rdev, e.rdev)
		if e.implied {
			x.Implied = append(x.Implied, ino)
		}
		var size, ds uint64
		var dc uint32
		switch e.mode & format.ModeType {
		case format.ModeReg:
			if e.dupOf != "" {
				r := extOf[e.dupOf]
				ds, dc = r[0], uint32(r[1])
				size = x.Inodes.Size[inoOf[e.dupOf]]
			} else {
				ds = uint64(x.Extents.Count())
				for _, s := range e.segs {
					if len(s.data) == 0 && s.hole == 0 && s.repeatLen == 0 {
						continue
					}
					if s.repeatLen > 0 {
						x.Extents.Off = append(x.Extents.Off, s.repeatAt)
						x.Extents.Len = append(x.Extents.Len, s.repeatLen)
						size += s.repeatLen
					} else if s.data != nil {
						x.Extents.Off = append(x.Extents.Off, uint64(len(unique)))
						x.Extents.Len = append(x.Extents.Len, uint64(len(s.data)))
						unique = append(unique, s.data...)
						size += uint64(len(s.data))
					} else {
						x.Extents.Off = append(x.Extents.Off, format.Hole)
						x.Extents.Len = append(x.Extents.Len, s.hole)
						size += s.hole
					}
					dc++
				}
			}
			extOf[e.path] = [2]uint64{ds, uint64(dc)}
		case format.ModeLink:
			ds, dc = uint64(len(blob)), uint32(len(e.target))
			blob = append(blob, e.target...)
			size = uint64(len(e.target))
		}
		in.Size = append(in.Size, size)
		in.DataStart = append(in.DataStart, ds)
		in.DataCount = append(in.DataCount, dc)
		names := make([]string, 0, len(e.xattrs))
		for k := range e.xattrs {
			names = append(names, k)
		}
		sort.Strings(names)
		in.XattrStart = append(in.XattrStart, uint32(x.Xattrs.Count()))
		in.XattrCount = append(in.XattrCount, uint32(len(names)))
		for _, k := range names {
			v := e.xattrs[k]
			x.Xattrs.NameStart = append(x.Xattrs.NameStart, uint64(len(blob)))
			x.Xattrs.NameLen = append(x.Xattrs.NameLen, uint32(len(k)))
			blob = append(blob, k...)
			x.Xattrs.ValStart = append(x.Xattrs.ValStart, uint64(len(blob)))
			x.Xattrs.ValLen = append(x.Xattrs.ValLen, uint32(len(v)))
			blob = append(blob, v...)
		}
		return ino
	}
	addDirent := func(name string, ino uint32) {
		x.Dirents.Inode = append(x.Dirents.Inode, ino)
		x.Dirents.NameStart = append(x.Dirents.NameStart, uint64(len(blob)))
		x.Dirents.NameLen = append(x.Dirents.NameLen, uint16(len(name)))
		blob = append(blob, name...)
	}
	// Breadth first: a directory's children are contiguous and follow it.
	// Inodes are numbered in path order so that content is in path order.
	inoOf[""] = addInode(root)
	addDirent("", 0)
	queue := []string{""}
	for len(queue) > 0 {
		dpath := queue[0]
		queue = queue[1:]
		ch := kids[dpath]
		sort.Slice(ch, func(i, j int) bool { return filepath.Base(ch[i]) < filepath.Base(ch[j]) })
		x.Inodes.DataStart[inoOf[dpath]] = uint64(x.Dirents.Count())
		x.Inodes.DataCount[inoOf[dpath]] = uint32(len(ch))
		for _, p := range ch {
			e := byPath[p]
			var ino uint32
			if e.link != "" {
				var ok bool
				if ino, ok = inoOf[e.link]; !ok {
					t.Fatalf("hardlink %s before its target %s", p, e.link)
				}
			} else {
				ino = addInode(e)
			}
			inoOf[p] = ino
			addDirent(filepath.Base(p), ino)
			if e.mode&format.ModeType == format.ModeDir {
				queue = append(queue, p)
			}
		}
	}
	x.Blob = blob

	// Blocks and frames over the unique stream.
	enc, err := codec.NewEncoder(codec.Options{Codec: o.codec, Level: codec.LevelDefault})
	if err != nil {
		t.Fatal(err)
	}
	var stream []byte
	for off, size := 0, cmp.Or(o.firstBlock, o.blockSize); off < len(unique); off, size = off+size, o.blockSize {
		raw := unique[off:min(off+size, len(unique))]
		id, st := enc.Encode(raw)
		x.Blocks.Codec = append(x.Blocks.Codec, id)
		x.Blocks.RawSize = append(x.Blocks.RawSize, uint32(len(raw)))
		x.Blocks.StoredSize = append(x.Blocks.StoredSize, uint32(len(st)))
		x.Blocks.Sum = append(x.Blocks.Sum, codec.Checksum(raw))
		stream = append(stream, st...)
	}
	for n := x.Blocks.Count(); n > 0; n -= o.frameBlocks {
		x.Frames = append(x.Frames, uint32(min(n, o.frameBlocks)))
	}
	if err := x.Derive(); err != nil {
		t.Fatalf("test index invalid: %v", err)
	}
	raw := format.EncodeIndex(x)
	storedIdx, err := codec.CompressIndex(raw)
	if err != nil {
		t.Fatal(err)
	}
	var id format.ArchiveID
	rand.Read(id[:])
	layout := format.Layout{VolumeSize: o.volumeSize}
	f := format.Footer{
		IndexOffset:   uint64(len(stream)),
		IndexSize:     uint64(len(storedIdx)),
		IndexRawSize:  uint64(len(raw)),
		IndexChecksum: codec.Checksum(storedIdx),
		Version:       format.Version,
		ID:            id,
	}
	stream = append(stream, storedIdx...)
	if p := layout.Payload(); o.volumeSize > 0 {
		if rem := p - int64(len(stream))%p; rem < format.FooterSize {
			stream = append(stream, make([]byte, rem)...)
		}
	}
	f.StreamSize = uint64(len(stream) + format.FooterSize)
	f.VolumeCount = layout.VolumeCount(int64(f.StreamSize))
	fb, _ := f.MarshalBinary()
	stream = append(stream, fb...)

	b := &built{idx: x, base: filepath.Join(dir, name), id: id, layout: layout, footer: f}
	p := layout.Payload()
	for n := uint32(1); n <= f.VolumeCount; n++ {
		h := format.VolumeHeader{Version: format.Version, Number: n, ID: id, VolumeSize: uint64(o.volumeSize)}
		hb, _ := h.MarshalBinary()
		lo := int64(n-1) * p
		hi := min(lo+p, int64(len(stream)))
		if o.volumeSize == 0 {
			lo, hi = 0, int64(len(stream))
		}
		path := format.VolumeName(b.base, n)
		if err := os.WriteFile(path, append(hb, stream[lo:hi]...), 0o644); err != nil {
			t.Fatal(err)
		}
		b.volumes = append(b.volumes, path)
	}
	return b
}

// randBytes returns n bytes that compress somewhat (runs mixed with noise).
func randBytes(n int, seed byte) []byte {
	b := make([]byte, n)
	rand.Read(b)
	for i := 0; i < n; i += 64 {
		for j := i; j < min(i+32, n); j++ {
			b[j] = seed + byte(j/64)
		}
	}
	return b
}

// noneLent fails t when a's cache has references out that no read or
// extraction gave back: their blocks could never be recycled, and would
// stay beyond the cache's bound for the life of the archive.
func noneLent(t testing.TB, a *Archive) {
	t.Helper()
	if n := a.CacheStats().Lent; n != 0 {
		t.Errorf("%d cache references not released after the reads", n)
	}
}

// openBuiltWith opens the archive b with o; it is closed when the test or
// benchmark ends.
func openBuiltWith(tb testing.TB, b *built, o Options) *Archive {
	tb.Helper()
	a, err := Open(b.volumes[0], o)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { a.Close() })
	return a
}

// inodeOf resolves an archive path to its inode.
func inodeOf(t testing.TB, a *Archive, path string) uint32 {
	t.Helper()
	d, err := a.Resolve(path)
	if err != nil {
		t.Fatal(err)
	}
	return a.Index().Dirents.Inode[d]
}

// readAll reads a whole file through ReadAt in chunks of n bytes.
func readAll(a *Archive, ino uint32, n int) ([]byte, error) {
	var out []byte
	buf := make([]byte, n)
	for off := int64(0); ; {
		k, err := a.ReadAt(ino, buf, off)
		out = append(out, buf[:k]...)
		off += int64(k)
		if err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return out, err
		}
	}
}

func reg(path string, data []byte) entry {
	return entry{path: path, mode: format.ModeReg | 0o644, mtime: 1_700_000_000_123_456_789, atime: 1_700_000_001_000_000_001, segs: []seg{{data: data}}}
}

func dir(path string) entry {
	return entry{path: path, mode: format.ModeDir | 0o755, mtime: 1_600_000_000_000_000_007, atime: 1_600_000_000_000_000_009}
}
