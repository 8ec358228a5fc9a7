package writer

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"arc/format"
)

// tarOf writes members into a tar stream with archive/tar.
func tarOf(t testing.TB, format tar.Format, members []tarMember) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, m := range members {
		h := m.hdr
		h.Format = format
		h.Size = int64(len(m.body))
		if h.Typeflag != tar.TypeReg {
			h.Size = 0
		}
		if h.ModTime.IsZero() && h.Typeflag != tar.TypeXGlobalHeader {
			h.ModTime = time.Unix(1700000000, 0)
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatalf("%s: %v", h.Name, err)
		}
		if _, err := tw.Write(m.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

type tarMember struct {
	hdr  tar.Header
	body []byte
}

func reg(name string, body []byte) tarMember {
	return tarMember{tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Uid: 1000, Gid: 100, Uname: "alice", Gname: "users"}, body}
}

func packTarBytes(t *testing.T, stream []byte, o Options) (*Result, *archive, []string) {
	t.Helper()
	var mu sync.Mutex
	var warnings []string
	o.Warn = func(err error) { mu.Lock(); warnings = append(warnings, err.Error()); mu.Unlock() }
	res, err := CreateFromTar(context.Background(), filepath.Join(t.TempDir(), "t"), bytes.NewReader(stream), o)
	if err != nil {
		t.Fatal(err)
	}
	return res, readBack(t, res.Volumes, 0), warnings
}

func TestTarStreamKeepsContentMetadataAndLinks(t *testing.T) {
	big := randBytes(7, 300<<10) // streamed: over the whole-file limit below
	little := randBytes(8, 20<<10)
	members := []tarMember{
		{tar.Header{Name: "./", Typeflag: tar.TypeDir, Mode: 0o750, Uid: 1000, Gid: 100, Uname: "alice", Gname: "users"}, nil},
		{tar.Header{Name: "./etc/", Typeflag: tar.TypeDir, Mode: 0o755}, nil},
		reg("./etc/a.conf", little),
		reg("./etc/copy.conf", little),
		reg("./big.bin", big),
		reg("./big-copy.bin", big),
		{tar.Header{Name: "./etc/hard", Typeflag: tar.TypeLink, Linkname: "./etc/a.conf"}, nil},
		{tar.Header{Name: "./sym", Typeflag: tar.TypeSymlink, Linkname: "etc/a.conf", Mode: 0o777}, nil},
		{tar.Header{Name: "./fifo", Typeflag: tar.TypeFifo, Mode: 0o600}, nil},
		{tar.Header{Name: "./dev/null", Typeflag: tar.TypeChar, Mode: 0o666, Devmajor: 1, Devminor: 3}, nil},
		{tar.Header{Name: "./setuid", Typeflag: tar.TypeReg, Mode: 0o4755}, nil},
		{tar.Header{Name: "./x", Typeflag: tar.TypeReg, Mode: 0o644, PAXRecords: map[string]string{
			"SCHILY.xattr.user.note":        "hello",
			"SCHILY.acl.access":             "user::rw-,user:1234:r--,group::r--,mask::r--,other::---",
			"LIBARCHIVE.xattr.user.encoded": "d29ybGQ",
		}}, []byte("x")},
		reg("deep/implicit/file", []byte("implicit parents")),
	}
	o := small()
	o.wholeMax = 64 << 10
	res, a, warnings := packTarBytes(t, tarOf(t, tar.FormatPAX, members), o)
	if len(warnings) != 0 {
		t.Fatalf("warnings: %q", warnings)
	}
	x := a.idx
	want := map[string][]byte{"etc/a.conf": little, "etc/copy.conf": little, "etc/hard": little, "big.bin": big, "big-copy.bin": big, "x": []byte("x"), "deep/implicit/file": []byte("implicit parents"), "setuid": nil}
	a.holds(t, want)
	mode := func(p string) uint32 { return x.Inodes.Mode[a.inode[p]] }
	for p, m := range map[string]uint32{"": format.ModeDir | 0o750, "etc": format.ModeDir | 0o755, "sym": format.ModeLink | 0o777, "fifo": format.ModeFifo | 0o600, "dev/null": format.ModeChr | 0o666, "setuid": format.ModeReg | 0o4755, "deep/implicit": format.ModeDir | 0o755} {
		if mode(p) != m {
			t.Errorf("%s: mode %o, want %o", p, mode(p), m)
		}
	}
	if a.inode["etc/hard"] != a.inode["etc/a.conf"] {
		t.Error("the hardlink does not share its target's inode")
	}
	if a.inode["etc/copy.conf"] == a.inode["etc/a.conf"] {
		t.Error("a copy became a hardlink")
	}
	if res.DupFiles != 1 || res.Hardlinks != 1 {
		t.Errorf("dup files %d, hardlinks %d; want 1 and 1", res.DupFiles, res.Hardlinks)
	}
	if res.UniqueBytes > int64(len(big)+len(little))+1024 {
		t.Errorf("unique bytes %d: the large copy was stored again", res.UniqueBytes)
	}
	if m := x.Inodes.Mtime[a.inode["etc/a.conf"]]; m != 1700000000*int64(time.Second) {
		t.Errorf("mtime %d", m)
	}
	if r := x.Inodes.Rdev[a.inode["dev/null"]]; r != 1<<8|3 {
		t.Errorf("rdev %#x", r)
	}
	xattrs := map[string]string{}
	s, e := x.XattrRange(a.inode["x"])
	for i := s; i < e; i++ {
		xattrs[string(x.XattrName(i))] = string(x.XattrValue(i))
	}
	acl := "\x02\x00\x00\x00" + "\x01\x00\x06\x00\xff\xff\xff\xff" + "\x02\x00\x04\x00\xd2\x04\x00\x00" + "\x04\x00\x04\x00\xff\xff\xff\xff" + "\x10\x00\x04\x00\xff\xff\xff\xff" + "\x20\x00\x00\x00\xff\xff\xff\xff"
	if xattrs["user.note"] != "hello" || xattrs["user.encoded"] != "world" || xattrs["system.posix_acl_access"] != acl || len(xattrs) != 3 {
		t.Errorf("xattrs %q", xattrs)
	}
	names := map[uint32]string{}
	for _, u := range x.Users {
		names[u.ID] = u.Name
	}
	if names[1000] != "alice" {
		t.Errorf("user names %v: want the stream's name for uid 1000", names)
	}
}

func TestTarStreamOddMembers(t *testing.T) {
	for _, tc := range []struct {
		name    string
		members []tarMember
		want    map[string]string // path → content ("" for non-files)
		warn    string            // a warning that must appear
	}{
		{"absolute names are made relative", []tarMember{reg("/abs/file", []byte("a"))}, map[string]string{"abs/file": "a"}, ""},
		{"dot-dot is refused", []tarMember{reg("../evil", []byte("e")), reg("ok", []byte("o"))}, map[string]string{"ok": "o"}, `".."`},
		{"dot-dot inside is refused", []tarMember{reg("a/../../evil", []byte("e"))}, map[string]string{}, `".."`},
		{"a later member replaces an earlier one", []tarMember{reg("f", []byte("old")), reg("f", []byte("new"))}, map[string]string{"f": "new"}, ""},
		{"a file replaces an empty directory", []tarMember{{tar.Header{Name: "d/", Typeflag: tar.TypeDir, Mode: 0o755}, nil}, reg("d", []byte("file now"))}, map[string]string{"d": "file now"}, ""},
		// As tar extracting the stream, which cannot remove the directory.
		{"a file does not replace a directory with entries", []tarMember{reg("d/in", []byte("i")), reg("d", []byte("file now"))}, map[string]string{"d/in": "i"}, "tar member d: not a directory, where an earlier member made a directory with entries (skipped"},
		{"nor does a symlink", []tarMember{reg("d/in", []byte("i")), {tar.Header{Name: "d", Typeflag: tar.TypeSymlink, Linkname: "elsewhere"}, nil}}, map[string]string{"d/in": "i"}, "tar member d: not a directory"},
		// Warnings name a member as the stream spells it (GNU tar's "./").
		{"a member under a file is skipped", []tarMember{reg("./f", []byte("f")), reg("./f/under", []byte("u"))}, map[string]string{"f": "f"}, "tar member ./f/under: f is not a directory"},
		{"a hardlink to nothing is skipped", []tarMember{{tar.Header{Name: "./l", Typeflag: tar.TypeLink, Linkname: "missing"}, nil}, reg("ok", []byte("o"))}, map[string]string{"ok": "o"}, "tar member ./l: hardlink to missing"},
		{"a directory named after its files keeps them", []tarMember{reg("d/in", []byte("i")), {tar.Header{Name: "d/", Typeflag: tar.TypeDir, Mode: 0o700}, nil}}, map[string]string{"d/in": "i"}, ""},
		{"a directory a file could not replace, named again, keeps its entries", []tarMember{
			{tar.Header{Name: "d/e/", Typeflag: tar.TypeDir, Mode: 0o755}, nil}, reg("d/e/old", []byte("kept")), reg("d", []byte("a file")),
			{tar.Header{Name: "d/", Typeflag: tar.TypeDir, Mode: 0o755}, nil}, {tar.Header{Name: "d/e/", Typeflag: tar.TypeDir, Mode: 0o755}, nil}, reg("d/e/f", []byte("new")),
		}, map[string]string{"d/e/old": "kept", "d/e/f": "new"}, "tar member d: not a directory"},
		{"a directory replaced while empty, named again, starts empty", []tarMember{
			{tar.Header{Name: "d/e/", Typeflag: tar.TypeDir, Mode: 0o755}, nil}, reg("d/e", []byte("a file")),
			{tar.Header{Name: "d/e/", Typeflag: tar.TypeDir, Mode: 0o755}, nil}, reg("d/e/f", []byte("new")),
		}, map[string]string{"d/e/f": "new"}, ""},
		{"a hardlink into a directory a file could not replace", []tarMember{reg("d/f", []byte("f")), reg("d", []byte("file")), {tar.Header{Name: "l", Typeflag: tar.TypeLink, Linkname: "d/f"}, nil}}, map[string]string{"d/f": "f", "l": "f"}, "tar member d: not a directory"},
		{"a hardlink to a replaced file is skipped", []tarMember{reg("f", []byte("old")), {tar.Header{Name: "f/", Typeflag: tar.TypeDir, Mode: 0o755}, nil}, {tar.Header{Name: "l", Typeflag: tar.TypeLink, Linkname: "f"}, nil}}, map[string]string{}, "hardlink to f, which is not an earlier file member"},
		{"a member thousands of levels deep, and one half as deep", []tarMember{reg(strings.Repeat("d/", 5000)+"f", []byte("deep")), reg(strings.Repeat("d/", 2500)+"g", []byte("half"))},
			map[string]string{strings.Repeat("d/", 5000) + "f": "deep", strings.Repeat("d/", 2500) + "g": "half"}, ""},
		{"a uid out of range is skipped, not wrapped to root", []tarMember{{tar.Header{Name: "u", Typeflag: tar.TypeReg, Mode: 0o644, Uid: 1 << 32}, nil}, reg("ok", []byte("o"))}, map[string]string{"ok": "o"}, "uid 4294967296 out of range"},
		{"a negative gid is skipped", []tarMember{{tar.Header{Name: "g", Typeflag: tar.TypeReg, Mode: 0o644, Gid: -1}, nil}, reg("ok", []byte("o"))}, map[string]string{"ok": "o"}, "gid -1 out of range"},
		{"a symlink without a target is skipped", []tarMember{{tar.Header{Name: "s", Typeflag: tar.TypeSymlink, Mode: 0o777}, nil}, reg("ok", []byte("o"))}, map[string]string{"ok": "o"}, "symlink target of 0 bytes"},
		{"a symlink target over 4095 bytes is skipped", []tarMember{{tar.Header{Name: "s", Typeflag: tar.TypeSymlink, Linkname: strings.Repeat("a/", 2048)}, nil}, reg("ok", []byte("o"))}, map[string]string{"ok": "o"}, "symlink target of 4096 bytes"},
		// mknod would cut them down to another device's numbers.
		{"a device major past Linux's is skipped", []tarMember{{tar.Header{Name: "c", Typeflag: tar.TypeChar, Mode: 0o600, Devmajor: 5000, Devminor: 1}, nil}, reg("ok", []byte("o"))}, map[string]string{"ok": "o"}, "device 5000,1: Linux's device numbers go up to 4095,1048575"},
		{"a device minor past Linux's is skipped", []tarMember{{tar.Header{Name: "b", Typeflag: tar.TypeBlock, Mode: 0o600, Devmajor: 8, Devminor: 1 << 20}, nil}, reg("ok", []byte("o"))}, map[string]string{"ok": "o"}, "device 8,1048576"},
		{"user.* attributes of a symlink are left out", []tarMember{{tar.Header{Name: "s", Typeflag: tar.TypeSymlink, Linkname: "t", PAXRecords: map[string]string{"SCHILY.xattr.user.k": "v"}}, nil}}, map[string]string{}, "tar member s: extended attribute user.k: Linux keeps user.* attributes on files and directories only"},
		{"an ACL of a symlink is left out", []tarMember{{tar.Header{Name: "s", Typeflag: tar.TypeSymlink, Linkname: "t", PAXRecords: map[string]string{"SCHILY.acl.access": "user::rw-,group::r--,other::---"}}, nil}}, map[string]string{}, "tar member s: extended attribute system.posix_acl_access: Linux keeps no ACL on a symlink"},
		{"a default ACL of a file is left out", []tarMember{{tar.Header{Name: "f", Typeflag: tar.TypeReg, Mode: 0o644, PAXRecords: map[string]string{"SCHILY.acl.default": "user::rwx,group::r-x,other::r-x"}}, nil}}, map[string]string{"f": ""}, "tar member f: extended attribute system.posix_acl_default: a default ACL is a directory's"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, a, warnings := packTarBytes(t, tarOf(t, tar.FormatPAX, tc.members), small())
			files := map[string]string{}
			for p, c := range a.content {
				files[p] = string(c)
			}
			if len(files) != len(tc.want) {
				t.Errorf("files %q, want %q", files, tc.want)
			}
			for p, c := range tc.want {
				if files[p] != c {
					t.Errorf("%s = %q, want %q", p, files[p], c)
				}
			}
			joined := strings.Join(warnings, "\n")
			if (tc.warn == "") != (len(warnings) == 0) || !strings.Contains(joined, tc.warn) {
				t.Errorf("warnings %q, want one containing %q", warnings, tc.warn)
			}
		})
	}
}

// Headers that describe the stream are not members: the pax global header
// of every git archive stream and a GNU volume label add nothing and warn of
// nothing, and a GNU dumpdir (tar --listed-incremental) is a directory.
func TestTarStreamHeadersThatAreNotFiles(t *testing.T) {
	mtime := time.Unix(1600000000, 0)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range []*tar.Header{
		{Typeflag: tar.TypeXGlobalHeader, Name: "pax_global_header", PAXRecords: map[string]string{"comment": "cbb6dac"}, Format: tar.FormatPAX},
		{Typeflag: tarTypeVolume, Name: "label", ModTime: mtime, Format: tar.FormatGNU},
		{Typeflag: tarTypeDumpDir, Name: "d/", Mode: 0o700, ModTime: mtime, Format: tar.FormatGNU},
		{Typeflag: tar.TypeReg, Name: "d/f", Mode: 0o644, ModTime: mtime, Size: 1, Format: tar.FormatGNU},
	} {
		if err := tw.WriteHeader(h); err != nil {
			t.Fatalf("%s: %v", h.Name, err)
		}
		if h.Size > 0 {
			tw.Write([]byte("f"))
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	res, a, warnings := packTarBytes(t, buf.Bytes(), small())
	if len(warnings) != 0 || res.Skipped != 0 {
		t.Errorf("warnings %q, %d skipped; want none", warnings, res.Skipped)
	}
	if len(a.inode) != 2 || string(a.content["d/f"]) != "f" {
		t.Errorf("paths %v, d/f %q; want d and d/f", a.inode, a.content["d/f"])
	}
	x := a.idx
	if ino := a.inode["d"]; x.Inodes.Mode[ino] != format.ModeDir|0o700 || x.Inodes.Mtime[ino] != mtime.UnixNano() {
		t.Errorf("d: mode %o, mtime %d; want the dumpdir's", x.Inodes.Mode[ino], x.Inodes.Mtime[ino])
	}
}

// An attribute that two pax records give (bsdtar writes SCHILY.xattr and
// LIBARCHIVE.xattr records of each) takes SCHILY's value every time: the
// records were read in the map's random order before.
func TestTarXattrRecordsGiveOneValueEveryTime(t *testing.T) {
	hdr := &tar.Header{Name: "f", PAXRecords: map[string]string{
		"SCHILY.xattr.user.a":                           "schily",
		"LIBARCHIVE.xattr.user.a":                       "bGliYXJjaGl2ZQ", // "libarchive"
		"LIBARCHIVE.xattr.user.b":                       "Yg",             // "b"
		"LIBARCHIVE.xattr.user.c+d%3D":                  "cA",             // user.c+d= = "p": libarchive leaves '+' as is
		"SCHILY.xattr.":                                 "no name",
		"SCHILY.xattr.user." + strings.Repeat("n", 300): "a name of 305 bytes",
	}}
	var warnings []string
	p := &packer{opt: &Options{Warn: func(err error) { warnings = append(warnings, err.Error()) }}}
	for range 20 {
		got := map[string]string{}
		for _, x := range p.tarXattrs(hdr) {
			got[string(x.name)] = string(x.value)
		}
		if len(got) != 3 || got["user.a"] != "schily" || got["user.b"] != "b" || got["user.c+d="] != "p" {
			t.Fatalf("xattrs %q, want user.a from the SCHILY record, user.b and user.c+d=", got)
		}
	}
	if len(warnings) != 40 || !strings.Contains(warnings[0], "without a name") || !strings.Contains(warnings[1], "name of 305 bytes") {
		t.Errorf("warnings %q: want two per run, for the record without a name and the one with a name too long", warnings[:min(len(warnings), 2)])
	}
}

func TestTarStreamTruncatedIsAnError(t *testing.T) {
	stream := tarOf(t, tar.FormatGNU, []tarMember{reg("a", randBytes(9, 100<<10))})
	for _, cut := range []int{700, 50 << 10} {
		_, err := CreateFromTar(context.Background(), filepath.Join(t.TempDir(), "t"), bytes.NewReader(stream[:cut]), small())
		if err == nil || !strings.Contains(err.Error(), "tar stream") {
			t.Fatalf("cut at %d: err = %v, want a tar stream error", cut, err)
		}
	}
}

// What archive/tar cannot read is said as what it is: nothing at all, a
// compressed stream, or a header it cannot parse, after which member and
// by which byte.
func TestTarStreamsThatAreNoTarAreSaidAsWhatTheyAre(t *testing.T) {
	good := tarOf(t, tar.FormatGNU, []tarMember{reg("before", []byte("b")), reg("after", []byte("a"))})
	bad := slices.Clone(good)
	copy(bad[1024+148:], "zzzzzzz") // the second header's checksum
	for _, tc := range []struct {
		name   string
		stream []byte
		want   string
	}{
		{"nothing", nil, "tar stream: empty, not a tar stream"},
		{"gzip", []byte("\x1f\x8b\x08\x00junk"), "tar stream: gzip-compressed; arcpack reads tar itself: decompress it first (gzip -dc FILE"},
		{"zstd", []byte("\x28\xb5\x2f\xfdjunkjunk"), "zstd-compressed"},
		{"a header that does not parse, --strict", bad, "tar stream: the header after member before, at byte 1024, is not valid"},
		{"a stream cut inside a header", good[:1024+100], "tar stream: it ends inside the header after member before"},
		{"bzip2's magic alone is a member's name", append([]byte("BZh-not-bzip2"), make([]byte, 600)...), "tar stream: the header after member (none: at the stream's start), at byte 0, is not valid"},
	} {
		dir := t.TempDir()
		o := small()
		o.Strict = strings.HasSuffix(tc.name, "--strict")
		_, err := CreateFromTar(context.Background(), filepath.Join(dir, "t"), bytes.NewReader(tc.stream), o)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
		if left, _ := filepath.Glob(filepath.Join(dir, "t.*")); len(left) > 0 {
			t.Errorf("%s: left %v", tc.name, left)
		}
	}
}

// TestTarStreamSkipsToTheNextHeaderPastOneItCannotRead: a header that
// does not parse after the stream's first is passed over, as GNU tar
// extracting the stream skips to the next header: the members before and
// after it come back, and a warning names where and how many bytes were
// left out. Without a later header, the pack ends there.
func TestTarStreamSkipsToTheNextHeaderPastOneItCannotRead(t *testing.T) {
	a, b, c := randBytes(20, 3000), randBytes(21, 700), randBytes(22, 600<<10) // c: streamed
	three := tarOf(t, tar.FormatGNU, []tarMember{reg("a", a), reg("b", b), reg("c", c)})
	// Offsets: a's header 0, its data 512..3512 (padded to 3584); b's header
	// 3584, its data 4096..4796 (padded to 5120); c's header 5120.
	damaged := func(stream []byte, at int, with string) []byte {
		d := slices.Clone(stream)
		copy(d[at:], with)
		return d
	}
	// A pax header whose record does not parse: archive/tar fails on it
	// with the member's own header read too; that header is read again.
	var paxBuf bytes.Buffer
	tw := tar.NewWriter(&paxBuf)
	for _, m := range []tarMember{reg("a", a), {tar.Header{Name: strings.Repeat("x", 150), Typeflag: tar.TypeReg, Mode: 0o600, Format: tar.FormatPAX}, b}} {
		m.hdr.Size = int64(len(m.body))
		if err := tw.WriteHeader(&m.hdr); err != nil {
			t.Fatal(err)
		}
		tw.Write(m.body)
	}
	tw.Close()
	pax := paxBuf.Bytes()
	// The pax header of b is at 3584, its records at 4096, its own header
	// at 4608: spoil the first record's length.
	badPax := damaged(pax, 4096, "x")
	for _, tc := range []struct {
		name   string
		stream []byte
		want   map[string][]byte
		warn   string
	}{
		{"the middle header's checksum", damaged(three, 3584+148, "zzzzzz"), map[string][]byte{"a": a, "c": c},
			"tar stream: the header after member a, at byte 3584, is not valid (archive/tar: invalid tar header): its 1536 bytes up to the next header, at byte 5120, are left out"},
		{"the last header's checksum", damaged(three, 5120+148, "zzzzzz"), map[string][]byte{"a": a, "b": b},
			"tar stream: the header after member b, at byte 5120, is not valid (archive/tar: invalid tar header), and no valid header follows it"},
		{"a zero block before a header", damaged(three, 3584, string(make([]byte, 512))), map[string][]byte{"a": a, "c": c},
			"the header after member a, at byte 3584, is not valid"},
		{"a pax record that does not parse", badPax, map[string][]byte{"a": a, strings.Repeat("x", 100): b}, // the ustar name field's
			"the header after member a, at byte 3584, is not valid"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := small()
			o.wholeMax = 64 << 10
			res, arc, warnings := packTarBytes(t, tc.stream, o)
			if len(arc.content) != len(tc.want) {
				t.Errorf("%d files, want %d: %v", len(arc.content), len(tc.want), slices.Collect(maps.Keys(arc.content)))
			}
			arc.holds(t, tc.want)
			if len(warnings) != 1 || !strings.Contains(warnings[0], tc.warn) {
				t.Errorf("warnings %q, want one with %q", warnings, tc.warn)
			}
			if res.Skipped != 0 {
				t.Errorf("%d members counted as skipped: the bytes left out are no member's", res.Skipped)
			}
		})
	}
}

// TestTarStreamResyncsAfterWhatItLeftUnread: a header that does not parse
// right after a member the pack left unread (a sparse one too large to
// take, whose stored bytes archive/tar passes over by seeking) is found
// where it starts, so that what lies after it comes back as GNU tar -i
// extracts it: the header after a zero block, a pax member's own header
// after records that do not parse. Zero blocks inside left-out bytes, and
// pax records past archive/tar's 1 MiB, do not end the search.
func TestTarStreamResyncsAfterWhatItLeftUnread(t *testing.T) {
	b, c := []byte("bbbb"), []byte("cccc")
	// An old-GNU sparse member: 1000 stored bytes at offset 0 of a file
	// past maxSparseTarMember, so that it is skipped, its bytes unread.
	sparse := func() []byte {
		h := ustarBlock("sp", tar.TypeGNUSparse, 1000)
		copy(h[257:], "ustar  \x00")                              // GNU's magic
		copy(h[386:], fmt.Sprintf("%011o\x00%011o\x00", 0, 1000)) // the map's first entry
		binary.BigEndian.PutUint64(h[483+4:], maxSparseTarMember+1)
		h[483] = 0x80 // realsize, base-256
		return append(h, append(randBytes(30, 1000), make([]byte, 24)...)...)
	}
	members := func(ms ...tarMember) []byte { // without the end's zero blocks
		s := tarOf(t, tar.FormatGNU, ms)
		return s[:len(s)-1024]
	}
	end := make([]byte, 1024)
	cat := func(parts ...[]byte) []byte { return withTarChecksums(bytes.Join(parts, nil)) }
	// b as a pax member whose first record's length does not parse.
	var paxB bytes.Buffer
	tw := tar.NewWriter(&paxB)
	tw.WriteHeader(&tar.Header{Name: strings.Repeat("x", 150), Typeflag: tar.TypeReg, Mode: 0o600, Size: int64(len(b)), Format: tar.FormatPAX})
	tw.Write(b)
	tw.Flush()
	badPax := slices.Clone(paxB.Bytes())
	badPax[512] = 'x'
	// b with 2 KiB of zeros in its data, its header spoilt below (after
	// withTarChecksums, which would mend it).
	zeros := cat(members(reg("a", b)), members(reg("b", append(make([]byte, 2048), 'z'))), members(reg("c", c), reg("d", b)), end)
	copy(zeros[1024+148:], "zzzzzz")
	// b with pax records past archive/tar's 1 MiB.
	rec := "comment=" + strings.Repeat("c", 1<<20+100) + "\n"
	rec = fmt.Sprint(len(rec)+8) + " " + rec // its length counts its own 7 digits and the space
	bigPax := append(ustarBlock("PaxHeaders/b", 'x', int64(len(rec))), rec...)
	bigPax = append(bigPax, make([]byte, (512-len(rec)%512)%512)...)
	bigPax = append(bigPax, members(reg("b", b))...)
	for _, tc := range []struct {
		name   string
		stream []byte
		want   map[string][]byte
		warn   string
	}{
		{"a zero block after a member left unread", cat(members(reg("a", b)), sparse(), make([]byte, 512), members(reg("b", b), reg("c", c)), end),
			map[string][]byte{"a": b, "b": b, "c": c}, "the header after member sp, at byte 2560, is not valid"},
		{"pax records that do not parse after a member left unread", cat(members(reg("a", b)), sparse(), badPax, members(reg("c", c)), end),
			map[string][]byte{"a": b, strings.Repeat("x", 100): b, "c": c}, "the header after member sp, at byte 2560, is not valid"},
		{"zero blocks in the bytes left out", zeros,
			map[string][]byte{"a": b, "c": c, "d": b}, "the header after member a, at byte 1024, is not valid"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, arc, warnings := packTarBytes(t, tc.stream, small())
			if len(arc.content) != len(tc.want) {
				t.Errorf("%d files, want %d: %q", len(arc.content), len(tc.want), slices.Sorted(maps.Keys(arc.content)))
			}
			arc.holds(t, tc.want)
			if !slices.ContainsFunc(warnings, func(w string) bool { return strings.Contains(w, tc.warn) }) {
				t.Errorf("warnings %q, want one with %q", warnings, tc.warn)
			}
		})
	}
	// Pax records past archive/tar's 1 MiB end the run: passed over, b's
	// own header would be taken alone, its name cut to 100 bytes, where
	// it could replace another member of that name.
	dir := t.TempDir()
	_, err := CreateFromTar(context.Background(), filepath.Join(dir, "t"), bytes.NewReader(cat(members(reg("a", b)), bigPax, members(reg("c", c)), end)), small())
	if err == nil || !strings.Contains(err.Error(), "header field too long") {
		t.Errorf("pax records past 1 MiB: %v, want the run ended", err)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "t.*")); len(left) > 0 {
		t.Errorf("pax records past 1 MiB: left %v", left)
	}
}

// TestTarStreamDoesNotLookInTheRecordsOfAPaxHeaderThatParsed: where a
// member's header is not valid after a pax header whose records archive/tar
// took, the search starts after those records: a block in them with a
// header's checksum is data (tar -xi makes nothing of it).
func TestTarStreamDoesNotLookInTheRecordsOfAPaxHeaderThatParsed(t *testing.T) {
	injected := withTarChecksums(append(ustarBlock("INJECTED", tar.TypeReg, 5), []byte("evil\n")...))[:512]
	prefix := " SCHILY.xattr.user.blob="
	value := strings.Repeat("v", 512-len(prefix)-4) + string(injected) + "tail"
	rec := prefix + value + "\n"
	rec = fmt.Sprint(len(rec)+4) + rec // 4 digits
	if rec[512:1024] != string(injected) {
		t.Fatal("the injected block is not at the records' second block")
	}
	a := tarOf(t, tar.FormatGNU, []tarMember{reg("a", []byte("A"))})
	c := tarOf(t, tar.FormatGNU, []tarMember{reg("c", []byte("C"))})
	x := append(ustarBlock("PaxHeaders/victim", 'x', int64(len(rec))), rec...)
	x = append(x, make([]byte, (512-len(rec)%512)%512)...)
	stream := withTarChecksums(bytes.Join([][]byte{a[:1024], x, ustarBlock("victim", tar.TypeReg, 0), c}, nil))
	victim := 1024 + len(x)
	copy(stream[victim+148:], "zzzzzz")
	_, arc, warnings := packTarBytes(t, stream, small())
	want := map[string][]byte{"a": []byte("A"), "c": []byte("C")}
	if len(arc.content) != len(want) {
		t.Errorf("%d files, want %d: %q", len(arc.content), len(want), slices.Sorted(maps.Keys(arc.content)))
	}
	arc.holds(t, want)
	if len(warnings) != 1 || !strings.Contains(warnings[0], fmt.Sprintf("at byte %d, is not valid", victim)) {
		t.Errorf("warnings %q, want one naming the header at byte %d", warnings, victim)
	}
}

// After a member left unread whose stored data is one byte (archive/tar
// reads that byte rather than seeking), the warning names the header that
// is not valid where it starts, not a block early, and only once.
func TestTarStreamNamesTheBadHeaderAfterAOneByteMemberLeftUnread(t *testing.T) {
	stream := tarOf(t, tar.FormatGNU, []tarMember{reg("a", []byte("A")), reg("one", []byte("1")), reg("b", []byte("B")), reg("c", []byte("C"))})
	copy(stream[2048+100:], "zzzzzzz") // b's mode: its header does not parse,
	stream = withTarChecksums(stream)  // though its checksum is valid
	o := small()
	o.Exclude = excludeList(t, "one")
	_, arc, warnings := packTarBytes(t, stream, o)
	want := map[string][]byte{"a": []byte("A"), "c": []byte("C")}
	if len(arc.content) != len(want) {
		t.Errorf("%d files, want %d: %q", len(arc.content), len(want), slices.Sorted(maps.Keys(arc.content)))
	}
	arc.holds(t, want)
	if len(warnings) != 1 || !strings.Contains(warnings[0], "the header after member one, at byte 2048, is not valid") {
		t.Errorf("warnings %q, want one naming the header at byte 2048", warnings)
	}
}

// TestTarStreamLooksPastZeroBlocksAfterAResync: after a header not valid,
// the search for the next may land inside a member's data, there a tar
// of its own whose two zero blocks would end the stream: the pack looks
// past them, as tar -i does, where it dropped the members after them in
// silence. A stream cut inside the data of a member left unread is said
// as such.
func TestTarStreamLooksPastZeroBlocksAfterAResync(t *testing.T) {
	inner := tarOf(t, tar.FormatGNU, []tarMember{reg("inner", []byte("i1"))}) // 2,048 bytes: a header, its data, two zero blocks
	stream := tarOf(t, tar.FormatGNU, []tarMember{reg("a", []byte("A")), reg("emb.tar", inner), reg("c", []byte("C"))})
	copy(stream[1024+148:], "zzzzzz") // emb.tar's header
	_, arc, warnings := packTarBytes(t, stream, small())
	want := map[string][]byte{"a": []byte("A"), "inner": []byte("i1"), "c": []byte("C")}
	if len(arc.content) != len(want) {
		t.Errorf("%d files, want %d: %q", len(arc.content), len(want), slices.Sorted(maps.Keys(arc.content)))
	}
	arc.holds(t, want)
	if len(warnings) != 2 || !strings.Contains(warnings[1], "the zero blocks that end a tar stream, before byte 3584, came after a header not valid (above), where a member's data may hold them: the headers after them, from byte 3584, are read as well") {
		t.Errorf("warnings %q", warnings)
	}

	o := small()
	o.Exclude = excludeList(t, "big")
	cut := tarOf(t, tar.FormatGNU, []tarMember{reg("big", randBytes(31, 1025))})[:900]
	_, err := CreateFromTar(context.Background(), filepath.Join(t.TempDir(), "t"), bytes.NewReader(cut), o)
	if err == nil || !strings.Contains(err.Error(), "tar stream: big: it ends inside its data (byte 900)") {
		t.Errorf("a stream cut inside a member left out: %v", err)
	}
}

// Pax global records apply to every member after them that does not set
// its own, in place of its ustar fields, as tar -x applies them; a later
// global header changes them, an empty value removes one.
func TestTarGlobalRecordsApplyToTheMembersAfterThem(t *testing.T) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, m := range []tarMember{
		reg("before", []byte("b")),
		{tar.Header{Typeflag: tar.TypeXGlobalHeader, Name: "g", PAXRecords: map[string]string{"uid": "0", "gid": "7", "mtime": "1234567890.5", "SCHILY.xattr.user.g": "v", "comment": "abc"}}, nil},
		reg("plain", []byte("p")),
		{tar.Header{Name: "own", Typeflag: tar.TypeReg, Mode: 0o644, Uid: 1 << 22, Gid: 100, Size: 1}, []byte("o")}, // too large for ustar: its own pax uid
		{tar.Header{Typeflag: tar.TypeXGlobalHeader, Name: "g2", PAXRecords: map[string]string{"gid": "8", "mtime": "-1.25", "SCHILY.xattr.user.g": ""}}, nil},
		reg("later", []byte("l")),
		// Out of range, and more digits than nanoseconds: that record left
		// out (GNU tar), the digits cut; not the members after it.
		{tar.Header{Typeflag: tar.TypeXGlobalHeader, Name: "g3", PAXRecords: map[string]string{"uid": "-1", "mtime": "5.1234567891"}}, nil},
		reg("last", []byte("z")),
	} {
		h := m.hdr
		h.Format = tar.FormatPAX
		if h.ModTime.IsZero() && h.Typeflag != tar.TypeXGlobalHeader {
			h.ModTime = time.Unix(1700000000, 0)
		}
		h.Size = int64(len(m.body))
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatalf("%s: %v", h.Name, err)
		}
		tw.Write(m.body)
	}
	tw.Close()
	_, a, warnings := packTarBytes(t, buf.Bytes(), small())
	if len(warnings) != 1 || !strings.Contains(warnings[0], `pax global record uid="-1" is not valid (left out)`) {
		t.Errorf("warnings %q, want one of the uid out of range", warnings)
	}
	x := a.idx
	for _, tc := range []struct {
		path       string
		uid, gid   uint32
		mtime      int64
		xattrCount uint32
	}{
		{"before", 1000, 100, 1700000000_000000000, 0},
		{"plain", 0, 7, 1234567890_500000000, 1},
		{"own", 1 << 22, 7, 1234567890_500000000, 1},
		{"later", 0, 8, -1_250000000, 0},
		{"last", 0, 8, 5_123456789, 0},
	} {
		ino := a.inode[tc.path]
		if got := [2]uint32{x.Inodes.UID[ino], x.Inodes.GID[ino]}; got != [2]uint32{tc.uid, tc.gid} || x.Inodes.Mtime[ino] != tc.mtime || x.Inodes.XattrCount[ino] != tc.xattrCount {
			t.Errorf("%s: owner %v, mtime %d, %d xattrs; want %d:%d, %d, %d", tc.path, got, x.Inodes.Mtime[ino], x.Inodes.XattrCount[ino], tc.uid, tc.gid, tc.mtime, tc.xattrCount)
		}
	}
}

// archive/tar drops a global header whole where one of its records does
// not parse: said, not lost in silence.
func TestTarGlobalHeaderArchiveTarCannotReadIsSaid(t *testing.T) {
	stream := tarOf(t, tar.FormatPAX, []tarMember{
		{tar.Header{Typeflag: tar.TypeXGlobalHeader, Name: "g", PAXRecords: map[string]string{"uid": "abc", "gid": "7"}}, nil},
		reg("f", []byte("f")),
	})
	_, a, warnings := packTarBytes(t, stream, small())
	if len(warnings) != 1 || !strings.Contains(warnings[0], "a pax global header after member (none: at the stream's start) has a record archive/tar cannot read; all its records are left out") {
		t.Errorf("warnings %q", warnings)
	}
	if gid := a.idx.Inodes.GID[a.inode["f"]]; gid != 100 {
		t.Errorf("f: gid %d, want its own 100", gid)
	}
}

// A symlink member's mode is 0777, as Linux makes every symlink, whatever
// its header says: the mount and list show what extract makes.
func TestTarSymlinkModeIsLinuxs(t *testing.T) {
	_, a, _ := packTarBytes(t, tarOf(t, tar.FormatPAX, []tarMember{{tar.Header{Name: "s", Typeflag: tar.TypeSymlink, Linkname: "t", Mode: 0o600}, nil}}), small())
	if m := a.idx.Inodes.Mode[a.inode["s"]]; m != format.ModeLink|0o777 {
		t.Errorf("symlink mode %o, want %o", m, format.ModeLink|0o777)
	}
}

// A member's permission bits are those its access ACL leaves, as tar -x
// leaves them (it applies the ACL after the mode, and the kernel sets the
// group bits from the mask): bsdtar writes the group:: entry's bits into
// the header's mode, not the mask's.
func TestTarMemberModeFollowsItsAccessACL(t *testing.T) {
	for _, tc := range []struct {
		name string
		mode int64
		acl  string
		want uint32
	}{
		{"the mask gives the group bits", 0o4745, "user::rwx,group::r--,other::r-x,user:1234:r--,mask::r-x", 0o4755},
		{"without a mask the group entry does", 0o777, "user::rw-,group::r--,other::---", 0o640},
		{"a mode that agrees stays", 0o1750, "user::rwx,group::r-x,other::---,mask::r-x,group:7:r--", 0o1750},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := reg("f", []byte("f"))
			m.hdr.Mode = tc.mode
			m.hdr.PAXRecords = map[string]string{"SCHILY.acl.access": tc.acl}
			_, a, warnings := packTarBytes(t, tarOf(t, tar.FormatPAX, []tarMember{m}), small())
			if len(warnings) != 0 {
				t.Fatalf("warnings: %q", warnings)
			}
			if got := a.idx.Inodes.Mode[a.inode["f"]] &^ format.ModeType; got != tc.want {
				t.Errorf("mode %o, want %o", got, tc.want)
			}
		})
	}
}

// A stream that stalls (the producer at the other end of a pipe hangs)
// does not hold create after it is cancelled, also while a member too
// large to read whole is copied from it: create stops at once and leaves
// no file.
func TestTarStreamThatStallsGivesWayToCancel(t *testing.T) {
	stream := tarOf(t, tar.FormatPAX, []tarMember{reg("small", randBytes(10, 4<<10)), reg("big", randBytes(11, 600<<10))})
	for _, tc := range []struct {
		name string
		cut  int // bytes of the stream sent before it stalls
	}{
		{"in the first block of a streamed member", 4<<10 + 2048},
		{"after some blocks of a streamed member", 300 << 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pr, pw := io.Pipe()
			defer pw.Close()
			go func() { pw.Write(stream[:tc.cut]) }() // then nothing, never closed
			ctx, cancel := context.WithCancel(context.Background())
			o := small()
			o.wholeMax = 64 << 10
			dir := t.TempDir()
			done := make(chan error, 1)
			go func() {
				_, err := CreateFromTar(ctx, filepath.Join(dir, "t"), pr, o)
				done <- err
			}()
			time.Sleep(200 * time.Millisecond)
			cancel()
			select {
			case err := <-done:
				if !errors.Is(err, context.Canceled) {
					t.Errorf("err = %v, want context.Canceled", err)
				}
			case <-time.After(5 * time.Second):
				pw.CloseWithError(errors.New("test gave up"))
				<-done
				t.Fatal("create went on waiting for the stalled stream after it was cancelled")
			}
			if ents, _ := os.ReadDir(dir); len(ents) != 0 {
				t.Errorf("a cancelled create left %d file(s), %s first", len(ents), ents[0].Name())
			}
		})
	}
}

// The stream GNU tar writes of a real tree packs to the same files as the
// tree itself, in each of tar's formats (ustar's 100-byte name field is why
// the long name is 95 bytes, not more).
func TestTarStreamFromGNUTarMatchesTheTree(t *testing.T) {
	if _, err := exec.LookPath("tar"); err != nil {
		t.Skip("no tar here")
	}
	src := t.TempDir()
	files := map[string][]byte{"a/one": randBytes(10, 5000), "a/two": randBytes(10, 5000), "b/big": randBytes(11, 200<<10), "b/c/long-" + strings.Repeat("n", 90): []byte("long name")}
	writeTree(t, src, files)
	if err := os.Link(filepath.Join(src, "a/one"), filepath.Join(src, "a/link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../a/one", filepath.Join(src, "b/sym")); err != nil {
		t.Fatal(err)
	}
	files["a/link"] = files["a/one"]
	for _, f := range []string{"gnu", "posix", "ustar"} {
		t.Run(f, func(t *testing.T) {
			args := []string{"-c", "--format=" + f, "-C", src, "."}
			if f == "posix" {
				args = append(args, "--xattrs")
			}
			stream, err := exec.Command("tar", args...).Output()
			if err != nil {
				t.Fatal(err)
			}
			o := small()
			o.wholeMax = 64 << 10
			_, a, warnings := packTarBytes(t, stream, o)
			if len(warnings) > 0 {
				t.Fatalf("warnings %q", warnings)
			}
			for p, c := range files {
				if !bytes.Equal(a.content[p], c) {
					t.Errorf("%s differs", p)
				}
			}
			if a.inode["a/link"] != a.inode["a/one"] {
				t.Error("hardlink lost")
			}
			x := a.idx
			ino := a.inode["b/sym"]
			if x.Inodes.Mode[ino]&format.ModeType != format.ModeLink || string(x.Blob[x.Inodes.DataStart[ino]:x.Inodes.DataStart[ino]+uint64(x.Inodes.DataCount[ino])]) != "../a/one" {
				t.Error("symlink lost")
			}
		})
	}
}

func TestZeroRunsFindsPageAlignedHoles(t *testing.T) {
	page := func(fill byte) []byte { return bytes.Repeat([]byte{fill}, holeAlign) }
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	zeros := func(pages int) []byte { return make([]byte, pages*holeAlign) }
	hole := holeMin / holeAlign // pages in the shortest hole
	for _, tc := range []struct {
		name   string
		b      []byte
		sparse bool // a sparse member's bytes, to its end: holes of a page, and a zero tail
		want   []dataRun
	}{
		{"no zeros", cat(page(1), page(2)), false, nil},
		{"a zero run too short", cat(page(1), zeros(hole-1), page(1)), false, nil},
		{"all zeros", zeros(hole), false, []dataRun{{0, holeMin, true}}},
		{"a hole inside", cat(page(1), zeros(hole), page(1)), false, []dataRun{{0, holeAlign, false}, {holeAlign, holeMin, true}, {holeAlign + holeMin, holeAlign, false}}},
		{"a hole at the end, then a short tail", cat(page(1), zeros(hole), []byte{0, 0, 0}), false, []dataRun{{0, holeAlign, false}, {holeAlign, holeMin, true}, {holeAlign + holeMin, 3, false}}},
		{"zeros not page-aligned stay data", cat([]byte{1}, zeros(hole), []byte{1}), false, nil},
		{"sparse: a one-page hole", cat(page(1), zeros(1), page(1)), true, []dataRun{{0, holeAlign, false}, {holeAlign, holeAlign, true}, {2 * holeAlign, holeAlign, false}}},
		{"sparse: a hole to the end, through a short tail", cat(page(1), zeros(2), []byte{0, 0, 0}), true, []dataRun{{0, holeAlign, false}, {holeAlign, 2*holeAlign + 3, true}}},
		{"sparse: all zeros, less than a page past the last", make([]byte, 3*holeAlign+57), true, []dataRun{{0, 3*holeAlign + 57, true}}},
		{"sparse: a short tail after data is a hole of its own", cat(page(1), []byte{0, 0}), true, []dataRun{{0, holeAlign, false}, {holeAlign, 2, true}}},
		{"sparse: the last byte alone (the member's last piece)", []byte{0}, true, []dataRun{{0, 1, true}}},
		{"not sparse: a short zero tail stays data", cat(page(1), []byte{0, 0}), false, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			least, tail := holesOf(&tarEntry{sparse: tc.sparse})
			got := zeroRuns(tc.b, least, tail)
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("runs %v, want %v", got, tc.want)
			}
		})
	}
}

// impliedPaths lists the archive's implied directories by path ("." for
// the root), sorted.
func impliedPaths(a *archive) []string {
	var out []string
	if a.idx.IsImplied(0) {
		out = append(out, ".")
	}
	for p, ino := range a.inode {
		if p != "" && a.idx.IsImplied(ino) {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out
}

// Members too large to hold stream through once: their zero runs become
// holes, and a later copy is found by chunk and segment dedup, not as a
// whole-file duplicate (it is streamed too, its hash known only once it
// is stored).
func TestStreamedMembersKeepTheirHolesAndShareTheirData(t *testing.T) {
	x := randBytes(9, 40<<10)
	zeros := make([]byte, 280<<10)
	front := append(append([]byte(nil), x...), zeros...) // the data, then a hole
	back := append(append([]byte(nil), zeros...), x...)  // the same size: a hole, then the data
	members := []tarMember{reg("front", front), reg("back", back), reg("front-again", front)}
	o := small()
	o.wholeMax = 64 << 10 // all three stream
	res, a, _ := packTarBytes(t, tarOf(t, tar.FormatPAX, members), o)
	for p, c := range map[string][]byte{"front": front, "back": back, "front-again": front} {
		if !bytes.Equal(a.content[p], c) {
			t.Errorf("%s: content differs", p)
		}
	}
	without, _, _ := packTarBytes(t, tarOf(t, tar.FormatPAX, members[:2]), o)
	if res.DupFiles != 0 || res.HoleBytes != 3*(int64(len(zeros))-24<<10) || res.UniqueBytes != without.UniqueBytes {
		t.Errorf("%d whole-file duplicates, %d hole bytes, %d unique bytes (%d without the copy); want none, the zeros as holes but 24 KiB in each (a run too short where its 64 KiB piece holds data), no more unique bytes",
			res.DupFiles, res.HoleBytes, res.UniqueBytes, without.UniqueBytes)
	}
}

func TestImpliedDirectoriesAreTheOnesNoSourceNamed(t *testing.T) {
	dir := func(name string) tarMember {
		return tarMember{tar.Header{Name: name, Typeflag: tar.TypeDir, Mode: 0o700, Uid: 1000, Gid: 100}, nil}
	}
	for _, tc := range []struct {
		name    string
		members []tarMember
		want    []string
	}{
		{"a stream naming only a file", []tarMember{reg("a/b/f", []byte("x"))}, []string{".", "a", "a/b"}},
		{"a stream naming the root and a parent after the file",
			[]tarMember{reg("a/b/f", []byte("x")), dir("./"), dir("a/")}, []string{"a/b"}},
		{"a stream naming every directory", []tarMember{dir("./"), dir("a/"), reg("a/f", []byte("x"))}, nil},
	} {
		_, a, _ := packTarBytes(t, tarOf(t, tar.FormatPAX, tc.members), small())
		if got := impliedPaths(a); !slices.Equal(got, tc.want) {
			t.Errorf("%s: implied %q, want %q", tc.name, got, tc.want)
		}
	}

	one, two := t.TempDir(), t.TempDir()
	writeTree(t, one, map[string][]byte{"d/f": []byte("1")})
	writeTree(t, two, map[string][]byte{"g": []byte("2")})
	for _, tc := range []struct {
		name    string
		sources []string
		want    []string
	}{
		{"one directory: the root is that directory", []string{one}, nil},
		{"two sources: the root holding them is made up", []string{one, two}, []string{"."}},
		{"one file: the root holding it is made up", []string{filepath.Join(two, "g")}, []string{"."}},
	} {
		res, err := Create(context.Background(), filepath.Join(t.TempDir(), "a"), tc.sources, small())
		if err != nil {
			t.Fatal(err)
		}
		if got := impliedPaths(readBack(t, res.Volumes, 0)); !slices.Equal(got, tc.want) {
			t.Errorf("%s: implied %q, want %q", tc.name, got, tc.want)
		}
	}
}

// A sparse member declaring more than maxSparseTarMember is skipped with
// a warning, whatever the form of its sparse map: archive/tar hands its
// holes over as zeros, and a few header bytes could ask for years of them.
func TestAHugeSparseTarMemberIsSkipped(t *testing.T) {
	const huge = maxSparseTarMember + 1
	// The old GNU form: type 'S', its logical size in the header's
	// realsize field, a map of no data.
	gnu := tarOf(t, tar.FormatGNU, []tarMember{reg("sp", nil), reg("after", []byte("kept"))})
	gnu[156] = tar.TypeGNUSparse
	realsize := gnu[483:495] // base-256, as GNU tar writes a size past 11 octal digits
	binary.BigEndian.PutUint64(realsize[4:], huge)
	realsize[0] = 0x80
	gnu = withTarChecksums(gnu)
	// The PAX form (0.1): records give the size and the map.
	var pax []byte
	records := ""
	for _, kv := range [][2]string{{"GNU.sparse.major", "0"}, {"GNU.sparse.minor", "1"}, {"GNU.sparse.map", "0,0"},
		{"GNU.sparse.numblocks", "1"}, {"GNU.sparse.size", fmt.Sprint(int64(huge))}, {"GNU.sparse.name", "sp"}} {
		rec := " " + kv[0] + "=" + kv[1] + "\n"
		n := len(rec) + 1
		for len(fmt.Sprint(n))+len(rec) != n { // the length counts its own digits
			n = len(fmt.Sprint(n)) + len(rec)
		}
		records += fmt.Sprint(n) + rec
	}
	pax = append(pax, ustarBlock("PaxHeaders/sp", 'x', int64(len(records)))...)
	pax = append(pax, records...)
	pax = append(pax, make([]byte, (512-len(records)%512)%512)...)
	pax = append(pax, ustarBlock("sp", tar.TypeReg, 0)...)
	pax = append(pax, tarOf(t, tar.FormatPAX, []tarMember{reg("after", []byte("kept"))})...)
	pax = withTarChecksums(pax)
	for name, stream := range map[string][]byte{"gnu": gnu, "pax 0.1": pax} {
		res, a, warnings := packTarBytes(t, stream, small())
		if res.Skipped != 1 || len(warnings) != 1 || !strings.Contains(warnings[0], "tar member sp: a sparse file of") {
			t.Errorf("%s: %d skipped, warnings %q; want sp skipped and said", name, res.Skipped, warnings)
		}
		if _, ok := a.inode["sp"]; ok {
			t.Errorf("%s: sp is in the archive", name)
		}
		if string(a.content["after"]) != "kept" {
			t.Errorf("%s: the member after it: %q", name, a.content["after"])
		}
	}
}

// ustarBlock is a ustar header block of name, type and size; its checksum
// is left to withTarChecksums.
func ustarBlock(name string, typ byte, size int64) []byte {
	h := make([]byte, 512)
	copy(h, name)
	copy(h[100:], "0000644\x00")
	copy(h[108:], "0001750\x00")
	copy(h[116:], "0000144\x00")
	copy(h[124:], fmt.Sprintf("%011o\x00", size))
	copy(h[136:], fmt.Sprintf("%011o\x00", 1700000000))
	h[156] = typ
	copy(h[257:], "ustar\x0000")
	return h
}

func TestSparseMembersAreTheOnesArchiveTarReadsAsSparse(t *testing.T) {
	for _, c := range []struct {
		typ  byte
		pax  map[string]string
		want bool
	}{
		{tar.TypeGNUSparse, nil, true},
		{tar.TypeReg, map[string]string{"GNU.sparse.major": "1", "GNU.sparse.minor": "0"}, true},
		{tar.TypeReg, map[string]string{"GNU.sparse.major": "0", "GNU.sparse.minor": "1", "GNU.sparse.map": "0,0"}, true},
		{tar.TypeReg, map[string]string{"GNU.sparse.map": "0,5"}, true}, // 0.0 and 0.1 without a version
		{tar.TypeReg, map[string]string{"GNU.sparse.major": "2", "GNU.sparse.minor": "0"}, false},
		{tar.TypeReg, map[string]string{"GNU.sparse.size": "99"}, false},
		{tar.TypeReg, map[string]string{"GNU.sparse.map": ""}, false},
		{tar.TypeReg, nil, false},
	} {
		if got := sparseMember(&tar.Header{Typeflag: c.typ, PAXRecords: c.pax}); got != c.want {
			t.Errorf("type %q, records %v: sparse %v, want %v", c.typ, c.pax, got, c.want)
		}
	}
}
