package writer

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"arc/format"
	"arc/reader"
)

// FuzzTarStream feeds arbitrary bytes to CreateFromTar as the tar stream of
// `arcpack create -` (with the header checksums made right, so that the
// fuzzer's changes to header fields reach the parsers). Whatever the bytes,
// the call returns, within seconds, without a panic; a refusal leaves no
// volume behind. When archive/tar reads the stream to its end the pack
// succeeds, and the archive opens, verifies intact and holds exactly the
// tree that extracting the stream leaves (tarModel): the same paths, types,
// file bytes, symlink targets and hardlinks, and as many members skipped.
func FuzzTarStream(f *testing.F) {
	for _, s := range tarFuzzSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, stream []byte) {
		stream = withTarChecksums(stream)
		want, ok := tarModelOf(stream)
		if want == nil && ok {
			// Members declare more than tarFuzzMax bytes: a few header
			// bytes can declare a sparse file of terabytes, which takes
			// as long to pack as its size.
			t.Skip()
		}
		o := small()
		o.wholeMax = 4 << 10 // larger members take the streamed path
		o.Workers = 2
		o.Warn = func(error) {}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		dir := t.TempDir()
		res, err := CreateFromTar(ctx, filepath.Join(dir, "t"), bytes.NewReader(stream), o)
		switch {
		case errors.Is(err, context.DeadlineExceeded):
			t.Fatal("CreateFromTar did not return within 20 s")
		case err != nil && want != nil:
			t.Fatalf("CreateFromTar refused a stream that archive/tar reads to its end: %v", err)
		case err != nil:
			if left, _ := filepath.Glob(filepath.Join(dir, "t.*")); len(left) > 0 {
				t.Fatalf("a refused stream left %q behind", left)
			}
			return
		case want == nil:
			t.Fatal("CreateFromTar took a stream that archive/tar does not read to its end")
		}
		a := readBack(t, res.Volumes, 0)
		ar, err := reader.Open(res.Volumes[0], reader.Options{})
		if err != nil {
			t.Fatalf("the archive does not open: %v", err)
		}
		defer ar.Close()
		if rep, err := ar.Verify(reader.VerifyOptions{Workers: 1}); err != nil || !rep.Intact() {
			t.Fatalf("the archive does not verify: %v %+v", err, rep)
		}
		if res.Skipped != int64(want.skipped) {
			t.Errorf("%d members skipped, want %d", res.Skipped, want.skipped)
		}
		want.check(t, a)
	})
}

// tarModel is the tree that extracting a stream leaves, by the rules
// CreateFromTar documents, kept as plainly as a map of paths can: a member
// replaces what its path held and everything below it, except that a
// directory named again keeps its entries and a non-directory does not
// replace a directory with entries (it is skipped); a member under a
// non-directory, a hardlink to no earlier non-directory, and a member
// tarPath or tarEntry refuses are skipped; missing parent directories are
// made.
type tarModel struct {
	tree    map[string]tarModelEntry // "" is the root
	skipped int
	ids     int
	global  map[string]string // pax global records in force: a uid or gid there is a member's without its own
}

type tarModelEntry struct {
	typ    byte   // tar.TypeReg, TypeDir, TypeSymlink, TypeChar, TypeBlock or TypeFifo
	body   []byte // a regular file's
	target string // a symlink's
	id     int    // the inode: a hardlink has its target's
}

// tarModelOf reads stream with archive/tar into a model; nil, false when
// archive/tar does not read it to its end (CreateFromTar must then fail),
// nil, true when members declare more than tarFuzzMax bytes in all. A
// header archive/tar cannot parse, after the stream's first, is passed
// over to the next 512-byte block (from the stream's start) that has a
// header's checksum, looked for from the block after it to the stream's
// end; after that, the zero blocks that end a stream are looked past in
// the same way.
func tarModelOf(stream []byte) (*tarModel, bool) {
	if len(stream) == 0 {
		return nil, false // no stream at all: refused, as GNU tar does
	}
	m := &tarModel{tree: map[string]tarModelEntry{"": {typ: tar.TypeDir}}}
	base := 0 // where the reader's bytes begin in stream
	r := &seekSeen{Reader: bytes.NewReader(stream)}
	tr := tar.NewReader(r)
	pos := func() int { return base + int(r.Size()) - r.Len() }
	var declared int64
	headers, resynced := 0, false
	// The member before left unread: where its stored bytes end (its size,
	// where it is not sparse), or -1; a sparse one's, where archive/tar
	// seeks over them.
	unreadEnd, unreadSparse := -1, false
	for {
		from := pos()
		if unreadEnd >= 0 {
			from = unreadEnd
		}
		r.end = -1
		hdr, err := tr.Next()
		if unreadSparse && r.end >= 0 {
			from = base + r.end
		}
		unreadEnd, unreadSparse = -1, false
		if err == io.EOF && !resynced {
			return m, true
		}
		if err == io.EOF || errors.Is(err, tar.ErrHeader) && headers > 0 {
			// The bad header: the first after the member before, or past
			// pax headers and long names that archive/tar read beyond.
			bad := (from + 511) / 512 * 512
			for bad+512 <= len(stream) {
				blk := stream[bad : bad+512]
				size, serr := strconv.ParseInt(strings.Trim(string(blk[124:136]), " \x00"), 8, 64)
				if !modelChecksumValid(blk) || serr != nil || size < 0 || size > int64(len(stream)) || !strings.ContainsRune("xLK", rune(blk[156])) {
					break
				}
				next := bad + 512 + int((size+511)/512*512)
				if pos() <= next {
					break // archive/tar did not get past its records: they failed
				}
				bad = next
			}
			look := bad + 512 // the block after the bad header
			if err == io.EOF {
				look = (pos() + 511) / 512 * 512 // past the zero blocks
			}
			resynced = true
			next := -1
			for off := look; off+512 <= len(stream); off += 512 {
				if modelChecksumValid(stream[off : off+512]) {
					next = off
					break
				}
			}
			if next < 0 {
				return m, true
			}
			base = next
			r = &seekSeen{Reader: bytes.NewReader(stream[next:])}
			tr = tar.NewReader(r)
			continue
		}
		if err != nil {
			return nil, false
		}
		headers++
		if declared += hdr.Size; hdr.Size < 0 || declared > tarFuzzMax {
			return nil, true
		}
		// Left unread unless read below.
		switch hdr.Typeflag {
		case tar.TypeLink, tar.TypeSymlink, tar.TypeChar, tar.TypeBlock, tar.TypeDir, tar.TypeFifo, tar.TypeXGlobalHeader:
			// no stored bytes, whatever the size says
		default:
			if sparseMember(hdr) {
				unreadSparse = true
			} else {
				unreadEnd = pos() + int(hdr.Size)
			}
		}
		if !m.accepts(hdr) {
			continue // its bytes unread, as the pack leaves them
		}
		var body []byte
		switch hdr.Typeflag {
		case tar.TypeReg, tar.TypeRegA, tar.TypeCont, tar.TypeGNUSparse:
			if hdr.Size > 0 { // the pack reads none of an empty one (a sparse map need not hold)
				if body, err = io.ReadAll(tr); err != nil {
					return nil, false
				}
				unreadEnd, unreadSparse = -1, false
			}
		}
		m.add(hdr, body)
	}
}

// seekSeen is the model's stream: a bytes.Reader that notes where the
// bytes archive/tar seeks over end (it seeks to the last byte of a member
// left unread and reads that byte: end is the position after it).
type seekSeen struct {
	*bytes.Reader
	end int
}

func (s *seekSeen) Seek(off int64, whence int) (int64, error) {
	p, err := s.Reader.Seek(off, whence)
	if whence == io.SeekCurrent && off > 0 && err == nil {
		s.end = int(p) + 1
	}
	return p, err
}

// modelChecksumValid: the checksum field (octal at 148, 8 bytes, spaces
// and NULs around it) equals the block's byte sum with that field taken
// as eight spaces, the bytes unsigned or signed.
func modelChecksumValid(blk []byte) bool {
	field := strings.Trim(string(blk[148:156]), " \x00")
	want, err := strconv.ParseInt(field, 8, 64)
	if err != nil || field == "" {
		return false
	}
	u, sg := 8*int64(' '), 8*int64(' ')
	for i, c := range blk {
		if i < 148 || i >= 156 {
			u += int64(c)
			sg += int64(int8(c))
		}
	}
	return want == u || want == sg
}

// accepts says whether the pack takes member hdr, by the checks it makes
// before reading a member's bytes (it reads none of one it does not
// take: a sparse map that does not hold is never met there); one it does
// not take is counted as skipped. Global headers are taken in here, and
// say false, as volume labels do.
func (m *tarModel) accepts(hdr *tar.Header) bool {
	if hdr.Typeflag == tar.TypeXGlobalHeader {
		if m.global == nil {
			m.global = map[string]string{}
		}
		for k, v := range hdr.PAXRecords {
			id, err := strconv.ParseInt(v, 10, 64)
			switch {
			case v == "":
				delete(m.global, k)
			case (k == "uid" || k == "gid") && (err != nil || id < 0 || id > math.MaxUint32):
				// not valid: left out, the value before stays
			default:
				m.global[k] = v
			}
		}
		return false // about the stream, not a member
	}
	if hdr.Typeflag == 'V' {
		return false // a GNU volume label
	}
	ids := []int64{int64(hdr.Uid), int64(hdr.Gid)}
	for i, k := range []string{"uid", "gid"} {
		if _, own := hdr.PAXRecords[k]; !own {
			if v, err := strconv.ParseInt(m.global[k], 10, 64); err == nil {
				ids[i] = v
			}
		}
	}
	p, ok := cleanMemberPath(hdr.Name)
	if !ok {
		m.skipped++
		return false
	}
	// Owners and device numbers beyond 32 bits (a base-256 field, a pax
	// record, a global one) are skipped, not cut to 32 bits (uid 2^32
	// would be root's).
	for _, v := range append(ids, hdr.Devmajor, hdr.Devminor) {
		if v < 0 || v > math.MaxUint32 {
			m.skipped++
			return false
		}
	}
	// Devices whose numbers Linux cannot hold: mknod would make another.
	if (hdr.Typeflag == tar.TypeChar || hdr.Typeflag == tar.TypeBlock) && (hdr.Devmajor >= 1<<12 || hdr.Devminor >= 1<<20) {
		m.skipped++
		return false
	}
	e := tarModelEntry{typ: hdr.Typeflag}
	switch hdr.Typeflag {
	case tar.TypeReg, tar.TypeRegA, tar.TypeCont, tar.TypeGNUSparse:
		e.typ = tar.TypeReg
	case tar.TypeLink:
		if link, ok := cleanMemberPath(hdr.Linkname); !ok || link == "" {
			m.skipped++
			return false
		}
	case tar.TypeSymlink:
		if len(hdr.Linkname) == 0 || len(hdr.Linkname) > format.MaxSymlinkLen {
			m.skipped++
			return false
		}
		e.target = hdr.Linkname
	case 'D': // GNU dumpdir: a directory
		e.typ = tar.TypeDir
	case tar.TypeDir, tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
	default:
		m.skipped++
		return false
	}
	if p == "" && e.typ != tar.TypeDir {
		m.skipped++ // the root stays a directory
		return false
	}
	return true
}

// add puts member hdr, which accepts took, into the tree, with its bytes.
func (m *tarModel) add(hdr *tar.Header, body []byte) {
	p, _ := cleanMemberPath(hdr.Name)
	e := tarModelEntry{typ: hdr.Typeflag}
	var link string
	switch hdr.Typeflag {
	case tar.TypeReg, tar.TypeRegA, tar.TypeCont, tar.TypeGNUSparse:
		e.typ, e.body = tar.TypeReg, body
	case tar.TypeLink:
		link, _ = cleanMemberPath(hdr.Linkname)
	case tar.TypeSymlink:
		e.target = hdr.Linkname
	case 'D': // GNU dumpdir: a directory
		e.typ = tar.TypeDir
	}
	if p == "" {
		return // the root's own metadata (accepts took only a directory)
	}
	// The parents: none may be a non-directory; missing ones are made.
	var missing []string
	for d := path.Dir(p); d != "."; d = path.Dir(d) {
		pe, ok := m.tree[d]
		if ok && pe.typ != tar.TypeDir {
			m.skipped++
			return
		}
		if !ok {
			missing = append(missing, d)
		}
	}
	for _, d := range missing {
		m.ids++
		m.tree[d] = tarModelEntry{typ: tar.TypeDir, id: m.ids}
	}
	if old, ok := m.tree[p]; ok && old.typ == tar.TypeDir && e.typ != tar.TypeDir && m.hasEntries(p) {
		m.skipped++ // tar cannot remove a directory with entries
		return
	}
	if hdr.Typeflag == tar.TypeLink {
		t, ok := m.tree[link]
		if !ok || t.typ == tar.TypeDir {
			m.skipped++
			return
		}
		m.remove(p)
		m.tree[p] = t
		return
	}
	if old, ok := m.tree[p]; ok && old.typ == tar.TypeDir && e.typ == tar.TypeDir {
		return // new metadata, the same entries
	}
	m.remove(p)
	m.ids++
	e.id = m.ids
	m.tree[p] = e
}

// hasEntries reports whether anything lies below p.
func (m *tarModel) hasEntries(p string) bool {
	for q := range m.tree {
		if strings.HasPrefix(q, p+"/") {
			return true
		}
	}
	return false
}

// remove takes p and everything below it out of the tree.
func (m *tarModel) remove(p string) {
	delete(m.tree, p)
	for q := range m.tree {
		if strings.HasPrefix(q, p+"/") {
			delete(m.tree, q)
		}
	}
}

// check compares the archive a with the model.
func (m *tarModel) check(t *testing.T, a *archive) {
	t.Helper()
	x := a.idx
	types := map[byte]uint32{tar.TypeReg: format.ModeReg, tar.TypeDir: format.ModeDir, tar.TypeSymlink: format.ModeLink,
		tar.TypeChar: format.ModeChr, tar.TypeBlock: format.ModeBlk, tar.TypeFifo: format.ModeFifo}
	inodeOf, idOf := map[int]uint32{}, map[uint32]int{}
	for p, e := range m.tree {
		if p == "" {
			continue
		}
		ino, ok := a.inode[p]
		if !ok {
			t.Errorf("%s (type %q): not in the archive", p, e.typ)
			continue
		}
		mode := x.Inodes.Mode[ino] & format.ModeType
		switch {
		case mode != types[e.typ]:
			t.Errorf("%s: type %o, want %o", p, mode, types[e.typ])
		case e.typ == tar.TypeReg && !bytes.Equal(a.content[p], e.body):
			t.Errorf("%s: %d bytes differ from the stream's %d", p, len(a.content[p]), len(e.body))
		case e.typ == tar.TypeSymlink && string(x.Symlink(ino)) != e.target:
			t.Errorf("%s: symlink to %q, want %q", p, x.Symlink(ino), e.target)
		}
		if e.typ == tar.TypeDir {
			continue
		}
		if i, ok := inodeOf[e.id]; ok && i != ino {
			t.Errorf("%s: inode %d, but a hardlink of it has inode %d", p, ino, i)
		}
		if id, ok := idOf[ino]; ok && id != e.id {
			t.Errorf("%s: inode %d, shared with a path that is not a hardlink of it", p, ino)
		}
		inodeOf[e.id], idOf[ino] = ino, e.id
	}
	for p := range a.inode {
		if _, ok := m.tree[p]; !ok {
			t.Errorf("%s: in the archive, not in the stream's tree", p)
		}
	}
}

// withTarChecksums returns a copy of stream whose header blocks carry
// their right checksums: the fuzzer's changes to a header's fields would
// fail the checksum otherwise, and never reach what reads those fields.
// It follows the headers by their size fields as far as they parse.
func withTarChecksums(stream []byte) []byte {
	b := bytes.Clone(stream)
	for off := 0; off+512 <= len(b); {
		h := b[off : off+512]
		if bytes.Count(h, []byte{0}) == 512 {
			off += 512
			continue
		}
		copy(h[148:156], "        ")
		sum := 0
		for _, c := range h {
			sum += int(c)
		}
		copy(h[148:156], fmt.Sprintf("%06o\x00 ", sum))
		size, err := strconv.ParseUint(strings.Trim(string(h[124:136]), " \x00"), 8, 63)
		if err != nil || size > uint64(len(b)) {
			break
		}
		off += 512 + int(size+511)/512*512
	}
	return b
}

// cleanMemberPath is a member name as a path relative to the root ("" is
// the root), or false for one that extraction must refuse.
func cleanMemberPath(name string) (string, bool) {
	var parts []string
	for _, c := range strings.Split(name, "/") {
		switch {
		case c == "" || c == ".":
		case c == ".." || len(c) > format.MaxNameLen || strings.IndexByte(c, 0) >= 0:
			return "", false
		default:
			parts = append(parts, c)
		}
	}
	return strings.Join(parts, "/"), true
}

// tarFuzzMax bounds the bytes the members of a fuzzed stream may declare.
const tarFuzzMax = 8 << 20

// tarFuzzSeeds are streams of every member kind CreateFromTar takes, in the
// three formats archive/tar writes, plus streams of the cases that have
// rules of their own (names given twice, hardlinks, parents that are files,
// ".." names, a directory replaced by a file and named again, a symlink
// without a target).
func tarFuzzSeeds(f *testing.F) [][]byte {
	body := bytes.Repeat([]byte("some content that repeats; "), 300) // over wholeMax
	members := []tarMember{
		{tar.Header{Name: "./", Typeflag: tar.TypeDir, Mode: 0o755}, nil},
		reg("a/one", []byte("one")),
		reg("a/big", body),
		reg("a/big-copy", body),
		{tar.Header{Name: "a/hard", Typeflag: tar.TypeLink, Linkname: "a/one"}, nil},
		{tar.Header{Name: "sym", Typeflag: tar.TypeSymlink, Linkname: "a/one"}, nil},
		{tar.Header{Name: "fifo", Typeflag: tar.TypeFifo, Mode: 0o600}, nil},
		{tar.Header{Name: "dev/zero", Typeflag: tar.TypeChar, Devmajor: 1, Devminor: 5}, nil},
		{tar.Header{Name: "x", Typeflag: tar.TypeReg, PAXRecords: map[string]string{
			"SCHILY.xattr.user.a": "v", "SCHILY.acl.access": "user::rw-,group::r--,other::---",
		}}, []byte("x")},
	}
	odd := []tarMember{
		reg("twice", []byte("first")),
		reg("twice", []byte("second")),
		reg("file", []byte("a file")),
		reg("file/below", []byte("under a file")),
		reg("../out", []byte("outside")),
		{tar.Header{Name: "dir/", Typeflag: tar.TypeDir, Mode: 0o700}, nil},
		{tar.Header{Name: "dir", Typeflag: tar.TypeDir, Mode: 0o755}, nil},
		{tar.Header{Name: "link-to-dir", Typeflag: tar.TypeLink, Linkname: "dir"}, nil},
		{tar.Header{Name: "link-later", Typeflag: tar.TypeLink, Linkname: "later"}, nil},
		reg("later", []byte("later")),
		reg("/abs/path", []byte("absolute")),
		{tar.Header{Name: "d/e/", Typeflag: tar.TypeDir, Mode: 0o755}, nil},
		reg("d", []byte("a file where a directory was")),
		{tar.Header{Name: "d/", Typeflag: tar.TypeDir, Mode: 0o755}, nil},
		{tar.Header{Name: "d/e/", Typeflag: tar.TypeDir, Mode: 0o755}, nil},
		reg("d/e/f", []byte("in the directory named again")),
		{tar.Header{Name: "s", Typeflag: tar.TypeSymlink}, nil},
	}
	var seeds [][]byte
	for _, format := range []tar.Format{tar.FormatUSTAR, tar.FormatPAX, tar.FormatGNU} {
		ms := members
		if format != tar.FormatPAX {
			ms = ms[:len(ms)-1] // only pax has pax records
		}
		seeds = append(seeds, tarOf(f, format, ms), tarOf(f, format, odd))
	}
	// Headers archive/tar cannot parse after the first, which the pack
	// passes over: a zero block before a header (archive/tar reads that
	// header too), and a mode field that is no number.
	two := tarOf(f, tar.FormatGNU, []tarMember{reg("a", []byte("a")), reg("b", []byte("b")), reg("c", []byte("c"))})
	zero := append(append(slices.Clone(two[:1024]), make([]byte, 512)...), two[1024:]...)
	badMode := slices.Clone(two)
	copy(badMode[1024+100:], "zzzzzzz")
	// A tar inside the tar, its member's header not valid: the search
	// lands in it, and looks past its zero blocks.
	inner := tarOf(f, tar.FormatGNU, []tarMember{reg("inner", []byte("i"))})
	nested := tarOf(f, tar.FormatGNU, []tarMember{reg("a", []byte("a")), reg("emb.tar", inner), reg("c", []byte("c"))})
	copy(nested[1024+100:], "zzzzzzz")
	return append(seeds, nil, []byte("not a tar stream"), zero, badMode, nested)
}
