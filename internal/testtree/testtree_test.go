package testtree

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

func generate(t *testing.T, opt Options) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "tree")
	rep, err := Generate(dir, opt)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range rep.Skipped {
		t.Logf("skipped: %s", s)
	}
	return dir
}

func TestSameSeedGivesEqualTrees(t *testing.T) {
	a := generate(t, Options{Seed: 7})
	b := generate(t, Options{Seed: 7})
	if d := Compare(a, b, CompareOptions{Atime: true}); len(d) != 0 {
		t.Fatal(d)
	}
}

func TestDifferentSeedsGiveDifferentTrees(t *testing.T) {
	a := generate(t, Options{Seed: 1})
	b := generate(t, Options{Seed: 2})
	if d := Compare(a, b, CompareOptions{}); len(d) == 0 {
		t.Fatal("trees of seeds 1 and 2 compare equal")
	}
}

func TestTreeHasEveryEntryKind(t *testing.T) {
	dir := generate(t, Options{Seed: 3, LargeSize: 5 << 20})
	kinds := map[uint32]int{}
	depth, long, nonUTF8, hard := 0, false, false, false
	filepath.WalkDir(dir, func(p string, _ os.DirEntry, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			t.Fatal(err)
		}
		kinds[st.Mode&unix.S_IFMT]++
		if d := strings.Count(p, "/"); d > depth {
			depth = d
		}
		base := filepath.Base(p)
		long = long || len(base) == 255
		nonUTF8 = nonUTF8 || strings.ContainsRune(base, 0xfffd) || !isUTF8(base)
		hard = hard || (st.Mode&unix.S_IFMT == unix.S_IFREG && st.Nlink > 1)
		return nil
	})
	for _, k := range []uint32{unix.S_IFREG, unix.S_IFDIR, unix.S_IFLNK, unix.S_IFIFO} {
		if kinds[k] == 0 {
			t.Errorf("no entry of type %o", k)
		}
	}
	if os.Geteuid() == 0 && kinds[unix.S_IFCHR] == 0 {
		t.Logf("no device nodes although root (container without mknod?)")
	}
	if depth < 50 || !long || !nonUTF8 || !hard {
		t.Errorf("depth %d, 255-byte name %v, non-UTF-8 name %v, hardlink %v", depth, long, nonUTF8, hard)
	}
	if st, err := os.Stat(filepath.Join(dir, "large/big.bin")); err != nil || st.Size() != 5<<20 {
		t.Errorf("large file: %v, %v", st, err)
	}
}

func isUTF8(s string) bool { return strings.ToValidUTF8(s, "\x00") == s }

// TestCompareFindsEachKindOfDifference damages a copy one way at a time
// and expects Compare to name the path and the kind of difference.
func TestCompareFindsEachKindOfDifference(t *testing.T) {
	src := generate(t, Options{Seed: 11, Files: 10})
	text, err := mustSnapshot(t, src).MarshalText()
	if err != nil {
		t.Fatal(err)
	}
	recorded, err := ParseTree(text)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		damage func(dst string) error
		want   string
	}{
		{"content", func(d string) error {
			p := filepath.Join(d, "files/sub/file-001.dat")
			st, _ := os.Lstat(p)
			f, err := os.OpenFile(p, os.O_WRONLY, 0)
			if err != nil {
				return err
			}
			f.WriteAt([]byte{0x5a ^ 0xff}, 0)
			f.Close()
			return keepTimes(p, st)
		}, "content differs at byte 0"},
		{"mode", func(d string) error { return os.Chmod(filepath.Join(d, "modes/setuid"), 0o755) }, "mode 4755, destination 0755"},
		{"mtime ns", func(d string) error {
			p := filepath.Join(d, "files/sub/subsub/file-002.dat")
			st, _ := os.Lstat(p)
			m := st.ModTime().Add(1)
			return os.Chtimes(p, m, m)
		}, "mtime"},
		{"symlink", func(d string) error {
			p := filepath.Join(d, "links/dangling")
			os.Remove(p)
			return os.Symlink("elsewhere", p)
		}, `symlink to "does/not/exist", destination to "elsewhere"`},
		{"missing", func(d string) error { return os.Remove(filepath.Join(d, "names/with space")) }, "missing in destination"},
		{"extra", func(d string) error { return os.WriteFile(filepath.Join(d, "extra"), nil, 0o644) }, "extra in destination"},
		{"hardlink split", func(d string) error {
			p := filepath.Join(d, "links/hard1")
			b, _ := os.ReadFile(p)
			st, _ := os.Lstat(p)
			os.Remove(p)
			os.WriteFile(p, b, st.Mode())
			return keepTimes(p, st)
		}, "hardlinked in source, split"},
		{"xattr", func(d string) error {
			return unix.Lsetxattr(filepath.Join(d, "files/sub/subsub/file-002.dat"), "user.comment", []byte("changed"), 0)
		}, `xattr user.comment = "hello", destination "changed"`},
		{"type", func(d string) error {
			p := filepath.Join(d, "special/fifo")
			os.Remove(p)
			return os.WriteFile(p, nil, 0o640)
		}, "type fifo, destination file"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dst := filepath.Join(t.TempDir(), "copy")
			if out, err := exec.Command("cp", "-a", src, dst).CombinedOutput(); err != nil {
				t.Skipf("cp -a: %v: %s", err, out)
			}
			if d := Compare(src, dst, CompareOptions{}); len(d) != 0 {
				t.Fatalf("cp -a copy differs before damage: %v", d)
			}
			if err := c.damage(dst); err != nil {
				if c.name == "xattr" {
					t.Skipf("xattrs unsupported: %v", err)
				}
				t.Fatal(err)
			}
			d := Compare(src, dst, CompareOptions{IgnoreRoot: true})
			if len(d) == 0 || !strings.Contains(strings.Join(d, "\n"), c.want) {
				t.Fatalf("want a difference containing %q, got %v", c.want, d)
			}
			want := c.want
			if c.name == "content" { // the recorded snapshot has digests, not bytes
				want = "content differs (sha256 "
			}
			d = CompareTrees(recorded, mustSnapshot(t, dst), CompareOptions{IgnoreRoot: true})
			if len(d) == 0 || !strings.Contains(strings.Join(d, "\n"), want) {
				t.Fatalf("against the recorded snapshot: want a difference containing %q, got %v", want, d)
			}
		})
	}
}

func keepTimes(p string, st os.FileInfo) error {
	s := st.Sys().(*syscall.Stat_t)
	ts := []unix.Timespec{unix.Timespec(s.Atim), unix.Timespec(s.Mtim)}
	return unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, unix.AT_SYMLINK_NOFOLLOW)
}

func mustSnapshot(t *testing.T, dir string) Tree {
	t.Helper()
	tr, err := Snapshot(dir)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// TestSnapshotTextKeepsEveryField: a tree written out and read back is the
// same tree, to the atime, and writes out to the same text.
func TestSnapshotTextKeepsEveryField(t *testing.T) {
	src := generate(t, Options{Seed: 5, Files: 12})
	live := mustSnapshot(t, src)
	text, err := live.MarshalText()
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseTree(text)
	if err != nil {
		t.Fatal(err)
	}
	if d := CompareTrees(live, back, CompareOptions{Atime: true}); len(d) != 0 {
		t.Fatal(d)
	}
	again, err := back.MarshalText()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(text, again) {
		t.Errorf("the text changed on a round trip")
	}
	for rel, e := range live {
		b := back[rel]
		if e.Blocks != b.Blocks || e.Size != b.Size || e.Link != b.Link || len(e.Xattrs) != len(b.Xattrs) {
			t.Errorf("%q: %+v read back as %+v", rel, *e, *b)
		}
	}
}

func TestParseTreeRefusesWhatItCannotRead(t *testing.T) {
	const ok = `"a" mode=100644 uid=0 gid=0 size=0 blocks=0 atime=1 mtime=2 sha256=e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 link="a"`
	if _, err := ParseTree([]byte(treeHeader + "\n" + ok + "\n")); err != nil {
		t.Fatalf("the well-formed line: %v", err)
	}
	for _, c := range []struct{ name, text, want string }{
		{"no header", ok + "\n", "not a tree snapshot"},
		{"unquoted path", treeHeader + "\na mode=1\n", "path"},
		{"unknown field", treeHeader + "\n" + ok + " colour=red\n", "unknown field"},
		{"missing field", treeHeader + "\n" + strings.Replace(ok, " mtime=2", "", 1) + "\n", "no mtime"},
		{"field twice", treeHeader + "\n" + ok + " uid=3\n", "uid a second time"},
		{"bad number", treeHeader + "\n" + strings.Replace(ok, "size=0", "size=x", 1) + "\n", "size"},
		{"short digest", treeHeader + "\n" + strings.Replace(ok, "sha256=e3b0", "sha256=", 1) + "\n", "hex digits"},
		{"xattr without value", treeHeader + "\n" + ok + ` xattr="user.a"` + "\n", "VALUE"},
		{"path twice", treeHeader + "\n" + ok + "\n" + ok + "\n", "a second time"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseTree([]byte(c.text))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one with %q", err, c.want)
			}
		})
	}
}
