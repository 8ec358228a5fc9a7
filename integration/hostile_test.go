package integration

import (
	"bytes"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"arc/codec"
	"arc/format"
)

// rewriteIndex replaces the index of a one-volume archive with what edit
// makes of it, keeping every checksum valid: only the reader's validation
// of the index content stands between the archive and the disk.
func rewriteIndex(t *testing.T, vol string, edit func(raw []byte) []byte) {
	t.Helper()
	b, err := os.ReadFile(vol)
	if err != nil {
		t.Fatal(err)
	}
	f, err := format.ParseFooter(b)
	if err != nil {
		t.Fatal(err)
	}
	start := format.VolumeHeaderSize + int(f.IndexOffset)
	stored := b[start : start+int(f.IndexSize)]
	raw, err := codec.DecompressIndex(stored, f.IndexRawSize)
	if err != nil {
		t.Fatal(err)
	}
	raw = edit(raw)
	nstored, err := codec.CompressIndex(raw)
	if err != nil {
		t.Fatal(err)
	}
	f.IndexSize, f.IndexRawSize, f.IndexChecksum = uint64(len(nstored)), uint64(len(raw)), codec.Checksum(nstored)
	f.StreamSize = f.IndexOffset + f.IndexSize + format.FooterSize
	foot, _ := f.MarshalBinary()
	out := append(append(append([]byte{}, b[:start]...), nstored...), foot...)
	if err := os.WriteFile(vol, out, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestHostileNamesAreRefused gives an archive entries named "..", "/abs"
// path pieces and "a/b": listing and extracting must refuse the archive,
// and nothing may appear outside DEST.
func TestHostileNamesAreRefused(t *testing.T) {
	for _, evil := range []string{"..", "/x", "x/", "."} {
		t.Run(evil, func(t *testing.T) {
			top := t.TempDir()
			src := filepath.Join(top, "src")
			os.MkdirAll(filepath.Join(src, "sub"), 0o755)
			// A name as long as the hostile one, to patch in place.
			plant := bytes.Repeat([]byte("q"), len(evil))
			os.WriteFile(filepath.Join(src, "sub", string(plant)), []byte("payload\n"), 0o644)
			base := pack(t, []string{"--volume-size", "0"}, src)
			rewriteIndex(t, base+".001", func(raw []byte) []byte {
				i := bytes.LastIndex(raw, plant)
				if i < 0 {
					t.Fatal("planted name not in the index")
				}
				copy(raw[i:], evil)
				return raw
			})
			wantFail(t, arcpack(t, "list", base+".001"), 2, "open "+base+".001: ", "corrupt", "invalid name")
			dst := filepath.Join(top, "dst", "inner")
			wantFail(t, arcpack(t, "extract", base+".001", "-o", dst), 2, "invalid name")
			ents, _ := os.ReadDir(filepath.Join(top, "dst"))
			for _, e := range ents {
				if e.Name() != "inner" {
					t.Errorf("extract wrote %s outside DEST", e.Name())
				}
			}
			if _, err := os.Stat(filepath.Join(top, "payload")); err == nil {
				t.Error("payload escaped")
			}
		})
	}
}

// hEntry is one entry of a crafted archive; the tree is given in full
// (directories before their contents), names are taken as they are.
type hEntry struct {
	path   string // '/'-separated below the root; the last piece is the name stored
	mode   uint32 // with type bits
	data   []byte // regular file content, or symlink target
	rdev   uint64
	uid    uint32
	linkTo string // another entry's path: a second dirent of its inode
}

// craftIndex builds a format.Index for entries: every directory's
// children in one run, in the order given (callers sort them when they want
// a valid archive), all content in one raw block.
func craftIndex(entries []hEntry) (*format.Index, []byte) {
	x := &format.Index{}
	var content []byte
	inoOf := map[string]uint32{}
	addInode := func(mode uint32, size, rdev, dataStart uint64, dataCount uint32, uid uint32) uint32 {
		n := &x.Inodes
		n.Mode = append(n.Mode, mode)
		n.UID = append(n.UID, uid)
		n.GID = append(n.GID, uid)
		n.Mtime = append(n.Mtime, 1e18)
		n.Atime = append(n.Atime, 1e18)
		n.Size = append(n.Size, size)
		n.Rdev = append(n.Rdev, rdev)
		n.DataStart = append(n.DataStart, dataStart)
		n.DataCount = append(n.DataCount, dataCount)
		n.XattrStart = append(n.XattrStart, 0)
		n.XattrCount = append(n.XattrCount, 0)
		return uint32(n.Count() - 1)
	}
	addDirent := func(ino uint32, name string) {
		x.Dirents.Inode = append(x.Dirents.Inode, ino)
		x.Dirents.NameStart = append(x.Dirents.NameStart, uint64(len(x.Blob)))
		x.Dirents.NameLen = append(x.Dirents.NameLen, uint16(len(name)))
		x.Blob = append(x.Blob, name...)
	}
	children := map[string][]hEntry{}
	for _, e := range entries {
		parent := ""
		if i := strings.LastIndex(e.path, "/"); i > 0 {
			parent = e.path[:i]
		}
		children[parent] = append(children[parent], e)
	}
	name := func(p string) string {
		if i := strings.LastIndex(p, "/"); i > 0 {
			return p[i+1:]
		}
		return p
	}
	// Breadth first: a directory's child run comes after its own dirent.
	inoOf[""] = addInode(format.ModeDir|0o755, 0, 0, 0, 0, 0)
	addDirent(0, "")
	queue := []string{""}
	for len(queue) > 0 {
		dir := queue[0]
		queue = queue[1:]
		kids := children[dir]
		x.Inodes.DataStart[inoOf[dir]] = uint64(x.Dirents.Count())
		x.Inodes.DataCount[inoOf[dir]] = uint32(len(kids))
		for _, e := range kids {
			if e.linkTo != "" {
				addDirent(inoOf[e.linkTo], name(e.path))
				continue
			}
			var ino uint32
			switch e.mode & format.ModeType {
			case format.ModeReg:
				ino = addInode(e.mode, uint64(len(e.data)), 0, uint64(x.Extents.Count()), 1, e.uid)
				x.Extents.Off = append(x.Extents.Off, uint64(len(content)))
				x.Extents.Len = append(x.Extents.Len, uint64(len(e.data)))
				content = append(content, e.data...)
			case format.ModeLink:
				ino = addInode(e.mode, uint64(len(e.data)), 0, uint64(len(x.Blob)), uint32(len(e.data)), e.uid)
				x.Blob = append(x.Blob, e.data...)
			case format.ModeDir:
				ino = addInode(e.mode, 0, 0, 0, 0, e.uid)
				queue = append(queue, e.path)
			default:
				ino = addInode(e.mode, 0, e.rdev, 0, 0, e.uid)
			}
			inoOf[e.path] = ino
			addDirent(ino, name(e.path))
		}
	}
	if len(content) > 0 {
		x.Blocks = format.Blocks{Codec: []uint8{format.CodecRaw}, RawSize: []uint32{uint32(len(content))},
			StoredSize: []uint32{uint32(len(content))}, Sum: []uint64{codec.Checksum(content)}}
		x.Frames = []uint32{1}
	}
	return x, content
}

// writeCrafted writes a one-volume archive NAME.001 holding stored block
// bytes and the encoded index raw (valid checksums throughout), and
// returns NAME. footerEdit, if set, changes the footer before sealing.
func writeCrafted(t *testing.T, dir string, stored, raw []byte, footerEdit func(*format.Footer)) string {
	t.Helper()
	base := filepath.Join(dir, "hostile")
	idx, err := codec.CompressIndex(raw)
	if err != nil {
		t.Fatal(err)
	}
	id := format.ArchiveID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	h, _ := format.VolumeHeader{Version: format.Version, Number: 1, ID: id}.MarshalBinary()
	f := format.Footer{IndexOffset: uint64(len(stored)), IndexSize: uint64(len(idx)), IndexRawSize: uint64(len(raw)),
		IndexChecksum: codec.Checksum(idx), VolumeCount: 1, Version: format.Version, ID: id,
		StreamSize: uint64(len(stored) + len(idx) + format.FooterSize)}
	if footerEdit != nil {
		footerEdit(&f)
	}
	fb, _ := f.MarshalBinary()
	vol := append(append(append(h, stored...), idx...), fb...)
	if err := os.WriteFile(base+".001", vol, 0o644); err != nil {
		t.Fatal(err)
	}
	return base
}

// crafted writes the archive of entries, with edit applied to its index.
func crafted(t *testing.T, dir string, entries []hEntry, edit func(*format.Index)) string {
	t.Helper()
	x, content := craftIndex(entries)
	if edit != nil {
		edit(x)
	}
	return writeCrafted(t, dir, content, format.EncodeIndex(x), nil)
}

// hostileDirs makes top/{dst,outside} and returns them, both writable by
// anyone so that extract can also run as nobody.
func hostileDirs(t *testing.T) (top, dst, outside string) {
	top = sharedTempDir(t, "arc-hostile-", 0o755)
	dst, outside = filepath.Join(top, "dst"), filepath.Join(top, "outside")
	for _, d := range []string{dst, outside} {
		os.Mkdir(d, 0o777)
		os.Chmod(d, 0o777)
	}
	return top, dst, outside
}

// nothingOutside fails the test if anything appeared in outside or next
// to dst in top.
func nothingOutside(t *testing.T, top, outside string) {
	t.Helper()
	if ents, _ := os.ReadDir(outside); len(ents) != 0 {
		t.Errorf("extract wrote outside DEST: %v", ents)
	}
	ents, _ := os.ReadDir(top)
	for _, e := range ents {
		if e.Name() != "dst" && e.Name() != "outside" && e.Name() != "hostile.001" {
			t.Errorf("extract wrote %s next to DEST", e.Name())
		}
	}
}

// TestHostileIndexesAreRefused: archives whose checksums are all valid but
// whose index is hostile — names that escape or smuggle separators,
// duplicate names that would let a symlink planted first be written
// through, a directory hardlinked elsewhere, content beyond the block
// table, absurd counts and sizes — are refused at open with a clear error,
// and extract writes nothing.
func TestHostileIndexesAreRefused(t *testing.T) {
	ok := func(out string) []hEntry {
		return []hEntry{
			{path: "a", mode: format.ModeDir | 0o755},
			{path: "a/f", mode: format.ModeReg | 0o644, data: []byte("payload\n")},
			{path: "z", mode: format.ModeLink | 0o777, data: []byte(out)},
		}
	}
	rename := func(d uint32, name string) func(*format.Index) {
		return func(x *format.Index) {
			x.Dirents.NameStart[d] = uint64(len(x.Blob))
			x.Dirents.NameLen[d] = uint16(len(name))
			x.Blob = append(x.Blob, name...)
		}
	}
	for _, c := range []struct {
		name    string
		entries func(out string) []hEntry
		edit    func(*format.Index)
		want    string
	}{
		{"absolute name", ok, rename(3, "/etc"), "invalid name"},
		{"dot-dot name", ok, rename(1, ".."), "invalid name"},
		{"slash inside a name", ok, rename(3, "a/f"), "invalid name"},
		{"NUL inside a name", ok, rename(3, "z\x00x"), "invalid name"},
		{"empty name", ok, rename(3, ""), "corrupt"},
		// "a" a symlink to outside, then "a" a directory whose file would be
		// written through it: one name twice in a directory.
		{"symlink then directory of the same name", func(out string) []hEntry {
			return []hEntry{
				{path: "a", mode: format.ModeLink | 0o777, data: []byte(out)},
				{path: "a", mode: format.ModeDir | 0o755},
				{path: "a/f", mode: format.ModeReg | 0o644, data: []byte("payload\n")},
			}
		}, nil, "corrupt"},
		{"directory hardlinked into itself", func(out string) []hEntry {
			return append(ok(out), hEntry{path: "a/up", linkTo: "a"})
		}, nil, "corrupt"},
		{"extent beyond the blocks", ok, func(x *format.Index) { x.Extents.Len[0] += 1 << 40; x.Inodes.Size[2] += 1 << 40 }, "corrupt"},
		{"size beyond the extents", ok, func(x *format.Index) { x.Inodes.Size[2] = 1 << 50 }, "corrupt"},
		{"block larger than the limit", ok, func(x *format.Index) { x.Blocks.RawSize[0] = 1 << 31 }, "corrupt"},
		{"dirent of a missing inode", ok, func(x *format.Index) { x.Dirents.Inode[3] = 1 << 30 }, "corrupt"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			top, dst, outside := hostileDirs(t)
			base := crafted(t, top, c.entries(outside), c.edit)
			wantFail(t, arcpack(t, "list", base+".001"), 2, "open "+base+".001: ", c.want)
			wantFail(t, arcpack(t, "extract", base+".001", "-o", dst), 2, c.want)
			if ents, _ := os.ReadDir(dst); len(ents) != 0 {
				t.Errorf("extract of a refused archive wrote %v", ents)
			}
			nothingOutside(t, top, outside)
		})
	}
}

// TestHostileCountsAreRefusedBeforeAllocating: row counts and an index size
// that would make a reader allocate far more than the archive holds are
// refused without the allocation; arcpack runs with 4 GiB of address space (a quarter of what the claims ask)
// to prove it.
func TestHostileCountsAreRefusedBeforeAllocating(t *testing.T) {
	prlimit, err := exec.LookPath("prlimit")
	if err != nil {
		t.Skip("no prlimit")
	}
	ok := []hEntry{{path: "f", mode: format.ModeReg | 0o644, data: []byte("payload\n")}}
	x, content := craftIndex(ok)
	raw := format.EncodeIndex(x)
	for _, c := range []struct {
		name   string
		raw    []byte
		footer func(*format.Footer)
		want   string
	}{
		// The Inodes section's row count says 2^40 rows of 64 bytes.
		{"inode count", patchCount(t, raw, 5, 1<<40), nil, "corrupt"},
		{"dirent count", patchCount(t, raw, 6, 1<<62), nil, "corrupt"},
		{"extent count", patchCount(t, raw, 7, 1<<33), nil, "corrupt"},
		// The footer claims a 16 GiB index for a few hundred stored bytes.
		{"index size", raw, func(f *format.Footer) { f.IndexRawSize = format.MaxIndexSize }, "corrupt"},
		{"index size beyond the limit", raw, func(f *format.Footer) { f.IndexRawSize = format.MaxIndexSize + 1 }, "limit"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			top, dst, outside := hostileDirs(t)
			base := writeCrafted(t, top, content, c.raw, c.footer)
			for _, args := range [][]string{{"list", base + ".001"}, {"extract", base + ".001", "-o", dst}} {
				r := runBin(t, runOpts{}, prlimit, append([]string{"--as=4294967296", arcpackBin}, args...)...)
				wantFail(t, r, 2, c.want)
			}
			nothingOutside(t, top, outside)
		})
	}
}

// patchCount returns a copy of the encoded index raw with the row count
// at the start of section tag's body set to n.
func patchCount(t *testing.T, raw []byte, tag uint32, n uint64) []byte {
	t.Helper()
	b := append([]byte{}, raw...)
	nsec := binary.LittleEndian.Uint32(b[12:])
	p := 16
	for i := uint32(0); i < nsec; i++ {
		tg, length := binary.LittleEndian.Uint32(b[p:]), binary.LittleEndian.Uint64(b[p+8:])
		if tg == tag {
			binary.LittleEndian.PutUint64(b[p+16:], n)
			return b
		}
		p += 16 + int(length)
	}
	t.Fatalf("no section %d", tag)
	return nil
}

// TestHostileModesAreDropped: device nodes are not made, and setuid and
// setgid bits not kept, unless extract runs as root keeping owners (tar's
// --same-owner semantics): as another user, even with --same-owner (whose
// chown then fails), and as root with --no-same-owner. Symlinks to
// absolute paths are made, never followed.
func TestHostileModesAreDropped(t *testing.T) {
	entries := func(out string) []hEntry {
		return []hEntry{
			{path: "dev", mode: format.ModeChr | 0o666, rdev: 1<<8 | 3},
			{path: "escape", mode: format.ModeLink | 0o777, data: []byte(out + "/planted")},
			{path: "sgid", mode: format.ModeDir | 0o2775},
			{path: "sgid/f", mode: format.ModeReg | 0o2755, data: []byte("x\n")},
			{path: "suid", mode: format.ModeReg | 0o4755, data: []byte("#!/bin/sh\n")},
		}
	}
	type want struct {
		dev      bool
		special  bool // setuid/setgid kept
		exitCode int
	}
	cases := []struct {
		name string
		o    runOpts
		args []string
		want want
	}{
		{"nobody", runOpts{uid: 65534, gid: 65534}, nil, want{false, false, 1}},
		{"nobody with --same-owner", runOpts{uid: 65534, gid: 65534}, []string{"--same-owner"}, want{false, false, 1}},
		{"root with --no-same-owner", runOpts{}, []string{"--no-same-owner"}, want{true, false, 0}},
		{"root", runOpts{}, nil, want{true, true, 0}},
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root to run extract as root and as nobody")
	}
	// Some containers refuse mknod even to root: then root is refused too,
	// and says so.
	if err := syscall.Mknod(filepath.Join(t.TempDir(), "probe"), syscall.S_IFCHR|0o666, 1<<8|3); err != nil {
		t.Logf("mknod refused here (%v): root cannot make the device either", err)
		for i := range cases {
			if cases[i].o.uid == 0 {
				cases[i].want.dev, cases[i].want.exitCode = false, 1
			}
		}
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			top, dst, outside := hostileDirs(t)
			base := crafted(t, top, entries(outside), nil)
			if c.o.uid != 0 {
				os.Chown(dst, c.o.uid, c.o.gid) // the user's own DEST
			}
			r := runBin(t, c.o, arcpackBin, append([]string{"extract", base + ".001", "-o", dst, "--progress", "never"}, c.args...)...)
			if r.code != c.want.exitCode {
				t.Fatalf("exit %d, want %d\n%v", r.code, c.want.exitCode, r)
			}
			var st syscall.Stat_t
			if err := syscall.Lstat(filepath.Join(dst, "dev"), &st); (err == nil) != c.want.dev {
				t.Errorf("device node made: %v, want %v", err == nil, c.want.dev)
			}
			if !c.want.dev && !strings.Contains(r.stderr, "arcpack: warning: dev: ") {
				t.Errorf("no warning for the device node:\n%v", r)
			}
			for _, p := range []string{"suid", "sgid", "sgid/f"} {
				fi, err := os.Lstat(filepath.Join(dst, p))
				if err != nil {
					t.Fatal(err)
				}
				special := fi.Mode()&(os.ModeSetuid|os.ModeSetgid) != 0
				if special != c.want.special {
					t.Errorf("%s: mode %v, setuid/setgid kept %v, want %v", p, fi.Mode(), special, c.want.special)
				}
			}
			if target, err := os.Readlink(filepath.Join(dst, "escape")); err != nil || target != outside+"/planted" {
				t.Errorf("symlink escape: %q, %v", target, err)
			}
			nothingOutside(t, top, outside)
		})
	}
}

// Extract exits 1 when content is all there but metadata is not all as
// archived: here the owners, which a user extracting with --same-owner
// cannot give away (chown fails, warned). A script must not take the
// restore for complete.
func TestExtractExitsOneWhenMetadataIsNotRestored(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run extract as another user")
	}
	top, dst, _ := hostileDirs(t)
	base := crafted(t, top, []hEntry{{path: "f", mode: format.ModeReg | 0o644, uid: 1234, data: []byte("content\n")}}, nil)
	nobody := runOpts{uid: 65534, gid: 65534}
	os.Chown(dst, nobody.uid, nobody.gid) // the user's own DEST
	r := runBin(t, nobody, arcpackBin, "extract", base+".001", "-o", dst, "--same-owner", "--progress", "never")
	wantFail(t, r, 1, "not everything restored as archived")
	if !strings.Contains(r.stderr, "arcpack: warning: f: chown") {
		t.Errorf("no warning naming f's chown:\n%v", r)
	}
	if b, err := os.ReadFile(filepath.Join(dst, "f")); err != nil || string(b) != "content\n" {
		t.Errorf("f: %q, %v", b, err)
	}
	// Without --same-owner the user does not try: nothing to warn of.
	dst2 := filepath.Join(top, "dst2")
	os.Mkdir(dst2, 0o755)
	os.Chown(dst2, nobody.uid, nobody.gid)
	if r := runBin(t, nobody, arcpackBin, "extract", base+".001", "-o", dst2, "--progress", "never"); r.code != 0 {
		t.Errorf("extract as nobody without --same-owner: %v", r)
	}
}
