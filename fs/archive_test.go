package fs

import (
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"
	"sync"

	"arc/format"
	"github.com/zeebo/xxh3"
)

// entry describes one path of a test archive.
type entry struct {
	path   string
	mode   uint32 // type and permission bits
	data   string // regular file content after the hole
	hole   uint64 // leading zero bytes stored as a Hole extent
	target string // symlink target
	link   string // hardlink: same inode as this earlier or later path
	rdev   uint64
	mtime  int64
	xattrs map[string]string
}

// memArchive is an in-memory archive: a real, validated format.Index over
// a unique stream held in memory, one raw block per file.
type memArchive struct {
	idx    *format.Index
	stream []byte

	mu      sync.Mutex
	damaged map[uint32]bool
	reads   int
	// onReadAt, when set, is called with the inode of every ReadAt first
	// (tests use it to act at a chosen point of a request).
	onReadAt func(ino uint32)
	// viewable: View lends the stream's bytes, as reader.Archive lends
	// its decoded blocks, and counts what it lent (views) and what is
	// still out (viewsOut); else View says to copy, and the push reads
	// through ReadAt.
	viewable        bool
	views, viewsOut int
}

var errDamaged = errors.New("damaged block")

func (a *memArchive) Index() *format.Index { return a.idx }

func (a *memArchive) ReadAt(ino uint32, p []byte, off int64) (int, error) {
	a.mu.Lock()
	bad := a.damaged[ino]
	a.reads++
	hook := a.onReadAt
	a.mu.Unlock()
	if hook != nil {
		hook(ino)
	}
	if bad {
		return 0, fmt.Errorf("block 7 (frame 7, volume test.001): %w", errDamaged)
	}
	x := a.idx
	s, e := x.FileExtents(ino)
	n := 0
	pos := int64(0)
	for i := s; i < e && n < len(p); i++ {
		l := int64(x.Extents.Len[i])
		if off+int64(n) >= pos+l {
			pos += l
			continue
		}
		in := off + int64(n) - pos
		want := min(l-in, int64(len(p)-n))
		if o := x.Extents.Off[i]; o == format.Hole {
			clear(p[n : n+int(want)])
		} else {
			copy(p[n:n+int(want)], a.stream[int64(o)+in:])
		}
		n += int(want)
		pos += l
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// View is reader.Archive.View over the stream: file ino's bytes from off
// on, as far as its extent goes and at most max, until release.
func (a *memArchive) View(ino uint32, off int64, max int) (data []byte, release func(), err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.viewable {
		return nil, nil, nil
	}
	if a.damaged[ino] {
		return nil, nil, fmt.Errorf("block 7 (frame 7, volume test.001): %w", errDamaged)
	}
	x := a.idx
	s, e := x.FileExtents(ino)
	for i, pos := s, int64(0); i < e; i++ {
		l := int64(x.Extents.Len[i])
		if off >= pos+l {
			pos += l
			continue
		}
		o := x.Extents.Off[i]
		if o == format.Hole || max <= 0 {
			return nil, nil, nil
		}
		in := off - pos
		n := min(l-in, int64(max))
		a.views++
		a.viewsOut++
		released := false
		return a.stream[int64(o)+in : int64(o)+in+n], func() {
			a.mu.Lock()
			defer a.mu.Unlock()
			if released {
				panic("memArchive: a view released twice")
			}
			released = true
			a.viewsOut--
		}, nil
	}
	return nil, nil, io.EOF
}

// build makes a memArchive holding entries; directories named only as
// parents are created with mode 0755. The root is a 0755 directory.
func build(entries []entry) *memArchive {
	byPath := map[string]*entry{"": {mode: format.ModeDir | 0o755}}
	kids := map[string][]string{}
	var add func(p string)
	add = func(p string) {
		dir, name := path.Split(p)
		dir = strings.TrimSuffix(dir, "/")
		if _, ok := byPath[dir]; !ok {
			byPath[dir] = &entry{path: dir, mode: format.ModeDir | 0o755}
			add(dir)
		}
		kids[dir] = append(kids[dir], name)
	}
	for i := range entries {
		e := &entries[i]
		if old, ok := byPath[e.path]; ok && old.mode&format.ModeType == format.ModeDir && e.mode&format.ModeType == format.ModeDir {
			*old = *e // an explicit entry for an implied directory
			continue
		}
		byPath[e.path] = e
		add(e.path)
	}
	x := &format.Index{Params: []format.KV{{Key: "tool", Value: "fs test"}}}
	a := &memArchive{idx: x, damaged: map[uint32]bool{}}
	inodeOf := map[string]uint32{}
	var order []*entry // by inode
	inode := func(p string) uint32 {
		e := byPath[p]
		for e.link != "" {
			p, e = e.link, byPath[e.link]
		}
		if i, ok := inodeOf[p]; ok {
			return i
		}
		inodeOf[p] = uint32(len(order))
		order = append(order, e)
		return inodeOf[p]
	}
	in := &x.Inodes
	grow := func() {
		for len(in.Mode) < len(order) {
			e := order[len(in.Mode)]
			in.Mode = append(in.Mode, e.mode)
			in.UID = append(in.UID, 1000)
			in.GID = append(in.GID, 100)
			in.Mtime = append(in.Mtime, e.mtime)
			in.Atime = append(in.Atime, e.mtime)
			in.Rdev = append(in.Rdev, e.rdev)
			var start, count, size uint64
			switch e.mode & format.ModeType {
			case format.ModeReg:
				start = uint64(x.Extents.Count())
				if e.hole > 0 {
					x.Extents.Off = append(x.Extents.Off, format.Hole)
					x.Extents.Len = append(x.Extents.Len, e.hole)
				}
				if len(e.data) > 0 {
					x.Extents.Off = append(x.Extents.Off, uint64(len(a.stream)))
					x.Extents.Len = append(x.Extents.Len, uint64(len(e.data)))
					a.stream = append(a.stream, e.data...)
					x.Blocks.Codec = append(x.Blocks.Codec, format.CodecRaw)
					x.Blocks.RawSize = append(x.Blocks.RawSize, uint32(len(e.data)))
					x.Blocks.StoredSize = append(x.Blocks.StoredSize, uint32(len(e.data)))
					x.Blocks.Sum = append(x.Blocks.Sum, xxh3.HashString(e.data))
					x.Frames = append(x.Frames, 1)
				}
				count = uint64(x.Extents.Count()) - start
				size = e.hole + uint64(len(e.data))
			case format.ModeLink:
				start, count, size = uint64(len(x.Blob)), uint64(len(e.target)), uint64(len(e.target))
				x.Blob = append(x.Blob, e.target...)
			}
			in.DataStart = append(in.DataStart, start)
			in.DataCount = append(in.DataCount, uint32(count))
			in.Size = append(in.Size, size)
			in.XattrStart = append(in.XattrStart, uint32(x.Xattrs.Count()))
			var names []string
			for k := range e.xattrs {
				names = append(names, k)
			}
			sort.Strings(names)
			for _, k := range names {
				v := e.xattrs[k]
				x.Xattrs.NameStart = append(x.Xattrs.NameStart, uint64(len(x.Blob)))
				x.Xattrs.NameLen = append(x.Xattrs.NameLen, uint32(len(k)))
				x.Blob = append(x.Blob, k...)
				x.Xattrs.ValStart = append(x.Xattrs.ValStart, uint64(len(x.Blob)))
				x.Xattrs.ValLen = append(x.Xattrs.ValLen, uint32(len(v)))
				x.Blob = append(x.Blob, v...)
			}
			in.XattrCount = append(in.XattrCount, uint32(len(names)))
		}
	}
	// Breadth first: a directory's children are contiguous and come after
	// the directory's own dirent.
	x.Dirents.Inode = []uint32{inode("")}
	x.Dirents.NameStart = []uint64{0}
	x.Dirents.NameLen = []uint16{0}
	grow()
	queue := []string{""}
	for len(queue) > 0 {
		dir := queue[0]
		queue = queue[1:]
		names := kids[dir]
		sort.Strings(names)
		di := inodeOf[dir]
		in.DataStart[di] = uint64(x.Dirents.Count())
		in.DataCount[di] = uint32(len(names))
		for _, name := range names {
			p := path.Join(dir, name)
			x.Dirents.Inode = append(x.Dirents.Inode, inode(p))
			x.Dirents.NameStart = append(x.Dirents.NameStart, uint64(len(x.Blob)))
			x.Dirents.NameLen = append(x.Dirents.NameLen, uint16(len(name)))
			x.Blob = append(x.Blob, name...)
			grow()
			if byPath[p].mode&format.ModeType == format.ModeDir {
				queue = append(queue, p)
			}
		}
	}
	if err := x.Derive(); err != nil {
		panic(err)
	}
	return a
}
