package reader

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"arc/format"
)

// TestExtractAsNonRoot runs the extraction of every entry type as an
// ordinary user: as root it re-runs this test binary as nobody.
func TestExtractAsNonRoot(t *testing.T) {
	if os.Geteuid() == 0 {
		runAsNobody(t, "TestExtractAsNonRoot")
		return
	}
	// A read-only file and directory with user xattrs, and a file with an
	// ACL: the owner may set them, but the xattrs only before the mode.
	acl := "\x02\x00\x00\x00" + "\x01\x00\x04\x00\xff\xff\xff\xff" + "\x02\x00\x04\x00\xe8\x03\x00\x00" +
		"\x04\x00\x04\x00\xff\xff\xff\xff" + "\x10\x00\x04\x00\xff\xff\xff\xff" + "\x20\x00\x00\x00\xff\xff\xff\xff"
	tree := append(fullTree(),
		entry{path: "d/ro-file", mode: format.ModeReg | 0o444, mtime: 81, atime: 82, segs: []seg{{data: []byte("r")}}, xattrs: map[string]string{"user.k": "file"}},
		entry{path: "d/ro-xdir", mode: format.ModeDir | 0o555, mtime: 83, atime: 84, xattrs: map[string]string{"user.k": "dir"}},
		entry{path: "d/acl", mode: format.ModeReg | 0o440, mtime: 85, atime: 86, segs: []seg{{data: []byte("a")}}, xattrs: map[string]string{"system.posix_acl_access": acl}},
	)
	a, _ := openBuilt(t, tree, buildOpts{})
	dest := filepath.Join(t.TempDir(), "out")
	// Read-only directories would stop TempDir's cleanup as non-root.
	t.Cleanup(func() {
		filepath.Walk(dest, func(p string, info os.FileInfo, err error) error {
			if err == nil && info.IsDir() {
				os.Chmod(p, 0o700)
			}
			return nil
		})
	})
	var warns []string
	res, err := a.Extract(dest, ExtractOptions{Warn: func(err error) { warns = append(warns, err.Error()) }})
	if err != nil {
		t.Fatal(err)
	}
	joined := strings.Join(warns, "\n")
	for _, w := range []string{"d/chr: device node not created", "d/xattr: xattr trusted.t not restored"} {
		if !strings.Contains(joined, w) {
			t.Errorf("warnings lack %q:\n%s", w, joined)
		}
	}
	if res.Skipped != 1 {
		t.Errorf("skipped %d", res.Skipped)
	}
	if _, err := os.Lstat(filepath.Join(dest, "d/chr")); err == nil {
		t.Error("device node created")
	}
	a.Index().Walk(func(p []byte, d uint32) error {
		if string(p) != "d/chr" {
			checkEntry(t, a, dest, string(p), false)
		}
		return nil
	})
	if st := lstat(t, dest+"/d/setuid"); st.Mode&(unix.S_ISUID|unix.S_ISGID) != 0 || st.Uid != uint32(os.Geteuid()) {
		t.Errorf("setuid file: mode %o owner %d", st.Mode, st.Uid)
	}
	for p, want := range map[string]string{"d/xattr": "zwei", "d/ro-file": "file", "d/ro-xdir": "dir"} {
		name := map[bool]string{true: "user.two", false: "user.k"}[p == "d/xattr"]
		var v [8]byte
		if n, err := unix.Lgetxattr(dest+"/"+p, name, v[:]); err != nil || string(v[:n]) != want {
			t.Errorf("%s: user xattr %q %v, want %q", p, v[:max(n, 0)], err, want)
		}
	}
	var v [64]byte
	if n, err := unix.Lgetxattr(dest+"/d/acl", "system.posix_acl_access", v[:]); err != nil || string(v[:max(n, 0)]) != acl {
		t.Errorf("d/acl: ACL %q %v, want %q", v[:max(n, 0)], err, acl)
	}
	if strings.Contains(joined, "d/acl") || strings.Contains(joined, "d/ro-") {
		t.Errorf("warnings about metadata the owner may set:\n%s", joined)
	}
}

// runAsNobody re-runs test name of this binary as user nobody, with a
// temporary directory that user may write.
func runAsNobody(t *testing.T, name string) {
	t.Helper()
	dir := t.TempDir()
	// t.TempDir's parent is root's alone: open both to nobody.
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o777); err != nil {
			t.Fatal(err)
		}
	}
	// The test binary's own directory is root's: copy it where nobody may run it.
	bin := filepath.Join(dir, "reader.test")
	src, err := os.Open(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	dst, err := os.OpenFile(bin, os.O_CREATE|os.O_WRONLY, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.Copy(dst, src)
	src.Close()
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(dir, "tmp")
	os.Mkdir(tmp, 0o777)
	os.Chmod(tmp, 0o777)
	cmd := exec.Command(bin, "-test.run=^"+name+"$", "-test.v")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "TMPDIR="+tmp, "HOME="+tmp)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("as nobody: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "--- PASS: "+name) {
		t.Fatalf("as nobody, the test did not pass:\n%s", out)
	}
}

// As an ordinary user, extracting again with overwrite over an earlier
// extraction fills its read-only directories again (they are the user's:
// made writable for the while, then as archived); before, the files
// replaced so far were left empty and the extraction stopped there.
func TestExtractAgainAsNonRootOverReadOnlyDirectories(t *testing.T) {
	if os.Geteuid() == 0 {
		runAsNobody(t, "TestExtractAgainAsNonRootOverReadOnlyDirectories")
		return
	}
	tree := []entry{
		{path: "", mode: format.ModeDir | 0o555, mtime: 89, atime: 90}, // dest itself read-only too
		{path: "ro", mode: format.ModeDir | 0o555, mtime: 91, atime: 92},
		reg("ro/in", []byte("in")), reg("top", []byte("important")),
	}
	a, _ := openBuilt(t, tree, buildOpts{})
	dest := filepath.Join(t.TempDir(), "out")
	t.Cleanup(func() {
		os.Chmod(dest, 0o700)
		os.Chmod(filepath.Join(dest, "ro"), 0o700)
	})
	extract := func(what string) (*ExtractResult, []string) {
		t.Helper()
		var warns []string
		res, err := a.Extract(dest, ExtractOptions{Overwrite: true, Warn: func(err error) { warns = append(warns, err.Error()) }})
		if err != nil {
			t.Fatalf("%s: %v (warnings %q)", what, err, warns)
		}
		return res, warns
	}
	extract("first")
	if _, warns := extract("again, over the first"); len(warns) != 0 {
		t.Errorf("again: warnings %q", warns)
	}
	for p, want := range map[string]string{"top": "important", "ro/in": "in"} {
		if b, err := os.ReadFile(filepath.Join(dest, p)); err != nil || string(b) != want {
			t.Errorf("%s after extracting again: %q %v, want %q", p, b, err, want)
		}
	}
	for _, p := range []string{"", "ro"} {
		if st := lstat(t, filepath.Join(dest, p)); st.Mode&0o7777 != 0o555 {
			t.Errorf("%q after extracting again: mode %o, want 555", p, st.Mode&0o7777)
		}
	}
}

// Directories of the user's that an extraction made writable to fill
// them get their modes back where it stops early, deepest first (a
// directory put back to read-only first would keep its own below it
// from being reached).
func TestUnwidenPutsBackTheModesOfWidenedDirectories(t *testing.T) {
	if os.Geteuid() == 0 {
		runAsNobody(t, "TestUnwidenPutsBackTheModesOfWidenedDirectories")
		return
	}
	a, _ := openBuilt(t, []entry{dir("p"), dir("p/q"), reg("p/q/f", []byte("f"))}, buildOpts{})
	dest := t.TempDir()
	// p and p/q without u+x: put back in the wrong order (p before p/q),
	// p/q could no longer be reached. (dest keeps its u+x: Extract widens
	// it by its path, not through its descriptor as here.)
	os.MkdirAll(filepath.Join(dest, "p/q"), 0o755)
	os.Chmod(filepath.Join(dest, "p/q"), 0o400)
	os.Chmod(filepath.Join(dest, "p"), 0o400)
	os.Chmod(dest, 0o555)
	t.Cleanup(func() {
		for _, p := range []string{"", "p", "p/q"} {
			os.Chmod(filepath.Join(dest, p), 0o700)
		}
	})
	root, err := unix.Open(dest, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(root)
	e := &extractor{a: a, root: root, destExisted: true, opt: ExtractOptions{Warn: func(err error) { t.Error(err) }}}
	e.tables()
	e.links = dirChain{root: root, e: e}
	defer e.links.close()
	d := func(p string) uint32 {
		d, err := a.Resolve(p)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	e.dirs = []madeDir{{d: 0, existed: true}}
	e.dirs[0].widened, e.dirs[0].mode, err = e.widen(root, ".", 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"p", "p/q"} {
		dirfd, name, err := e.links.parentOf(d(p))
		if err != nil {
			t.Fatal(err)
		}
		md := madeDir{d: d(p), existed: true}
		md.widened, md.mode, err = e.widen(dirfd, name, md.d)
		if err != nil {
			t.Fatalf("widen %s: %v", p, err)
		}
		e.dirs = append(e.dirs, md)
	}
	for _, md := range e.dirs {
		if !md.widened {
			t.Fatalf("%s not widened", e.path(md.d))
		}
	}
	e.unwiden()
	// Each looked at, then made searchable to look at the next (cleanup
	// does the rest).
	for _, c := range []struct {
		p    string
		want uint32
	}{{"", 0o555}, {"p", 0o400}, {"p/q", 0o400}} {
		if st := lstat(t, filepath.Join(dest, c.p)); st.Mode&0o7777 != c.want {
			t.Errorf("%q: mode %o, want %o", c.p, st.Mode&0o7777, c.want)
		}
		os.Chmod(filepath.Join(dest, c.p), 0o700)
	}
}

// An extraction stopped through its context, here once the first bytes
// are written, returns the context's error and leaves the user's
// directories it made writable as they were.
func TestAStoppedExtractionPutsBackTheModesItWidened(t *testing.T) {
	if os.Geteuid() == 0 {
		runAsNobody(t, "TestAStoppedExtractionPutsBackTheModesItWidened")
		return
	}
	a, _ := openBuilt(t, []entry{dir("ro"), reg("ro/a", randBytes(100_000, 7)), reg("ro/b", randBytes(100_000, 8))}, buildOpts{})
	dest := t.TempDir()
	os.Mkdir(filepath.Join(dest, "ro"), 0o755)
	os.Chmod(filepath.Join(dest, "ro"), 0o555)
	t.Cleanup(func() { os.Chmod(filepath.Join(dest, "ro"), 0o700) })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, err := a.Extract(dest, ExtractOptions{Paths: []string{"ro/a", "ro/b"}, Workers: 1, Context: ctx, Progress: func(int64) { cancel() }})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("extract: %v, want the context's error", err)
	}
	if st := lstat(t, filepath.Join(dest, "ro")); st.Mode&0o7777 != 0o555 {
		t.Errorf("ro after the stop: mode %o, want 555", st.Mode&0o7777)
	}
	if b, _ := os.ReadFile(filepath.Join(dest, "ro/b")); len(b) != 0 {
		t.Errorf("ro/b, after the stop, holds %d bytes", len(b))
	}
}

// The check for entries in the way, made before anything, leaves to the
// extraction what it cannot see or what the extraction skips anyway: a
// directory of the user's it may not search yet (widened, filled and put
// back), dest itself so, and a device node's name (skipped without root).
func TestCheckingDestLeavesWhatItCannotSeeToTheExtraction(t *testing.T) {
	if os.Geteuid() == 0 {
		runAsNobody(t, "TestCheckingDestLeavesWhatItCannotSeeToTheExtraction")
		return
	}
	a, _ := openBuilt(t, []entry{
		dir("p"), reg("p/f", []byte("f")), reg("p/g", []byte("g")),
		{path: "null", mode: format.ModeChr | 0o666, rdev: unix.Mkdev(1, 3)},
	}, buildOpts{})
	for _, tc := range []struct {
		name  string
		paths []string
	}{{"everything", nil}, {"one path below", []string{"p/g"}}} {
		t.Run(tc.name, func(t *testing.T) {
			dest := t.TempDir()
			os.Mkdir(filepath.Join(dest, "p"), 0o700)
			os.WriteFile(filepath.Join(dest, "null"), []byte("mine"), 0o644)
			os.Chmod(filepath.Join(dest, "p"), 0o600) // readable, not searchable
			os.Chmod(dest, 0o600)
			t.Cleanup(func() {
				os.Chmod(dest, 0o700)
				os.Chmod(filepath.Join(dest, "p"), 0o700)
			})
			var warns []string
			res, err := a.Extract(dest, ExtractOptions{Paths: tc.paths, Warn: func(err error) { warns = append(warns, err.Error()) }})
			if err != nil {
				t.Fatalf("extract: %v (warnings %q)", err, warns)
			}
			// Extracted whole, dest and p get the archive's modes; on the
			// way to p/g, their own back.
			want := uint32(0o600)
			if tc.paths == nil {
				want = 0o755
			}
			if st := lstat(t, dest); st.Mode&0o7777 != want {
				t.Errorf("dest: mode %o, want %o", st.Mode&0o7777, want)
			}
			os.Chmod(dest, 0o700)
			if st := lstat(t, filepath.Join(dest, "p")); st.Mode&0o7777 != want {
				t.Errorf("p: mode %o, want %o", st.Mode&0o7777, want)
			}
			os.Chmod(filepath.Join(dest, "p"), 0o700)
			if b, err := os.ReadFile(filepath.Join(dest, "p/g")); err != nil || string(b) != "g" {
				t.Errorf("p/g: %q %v", b, err)
			}
			if b, _ := os.ReadFile(filepath.Join(dest, "null")); string(b) != "mine" {
				t.Errorf("null: %q, want the user's file left", b)
			}
			if tc.paths == nil && res.Skipped != 1 {
				t.Errorf("%d skipped, want the device node", res.Skipped)
			}
		})
	}
}

// As an ordinary user, an entry in the way inside a directory of the
// user's that it may not read or search is found before anything is
// made, as anywhere else (the directory widened for the look and put
// back); with nothing in the way, such a directory is filled. And dest's
// own times are restored where its archived mode lacks u+x.
func TestNonRootRefusalsComeBeforeAnythingIsMade(t *testing.T) {
	if os.Geteuid() == 0 {
		runAsNobody(t, "TestNonRootRefusalsComeBeforeAnythingIsMade")
		return
	}
	a, _ := openBuilt(t, []entry{reg("a", []byte("a")), dir("p"), reg("p/f", []byte("f"))}, buildOpts{})
	for _, mode := range []uint32{0o600, 0o300, 0o000} {
		t.Run(fmt.Sprintf("p %04o", mode), func(t *testing.T) {
			dest := t.TempDir()
			os.Mkdir(filepath.Join(dest, "p"), 0o700)
			os.WriteFile(filepath.Join(dest, "p/f"), []byte("mine"), 0o644)
			os.Chmod(filepath.Join(dest, "p"), os.FileMode(mode))
			t.Cleanup(func() { os.Chmod(filepath.Join(dest, "p"), 0o700) })
			_, err := a.Extract(dest, ExtractOptions{})
			if !errors.Is(err, fs.ErrExist) || !strings.Contains(err.Error(), "p/f") {
				t.Fatalf("extract: %v, want p/f refused", err)
			}
			if _, err := os.Lstat(filepath.Join(dest, "a")); err == nil {
				t.Error("a made by a refused extraction")
			}
			if st := lstat(t, filepath.Join(dest, "p")); st.Mode&0o7777 != mode {
				t.Errorf("p: mode %o after the refusal, want %o", st.Mode&0o7777, mode)
			}
			// The way clear, it is filled.
			os.Chmod(filepath.Join(dest, "p"), 0o700)
			os.Remove(filepath.Join(dest, "p/f"))
			os.Chmod(filepath.Join(dest, "p"), os.FileMode(mode))
			if _, err := a.Extract(dest, ExtractOptions{}); err != nil {
				t.Fatalf("again, the way clear: %v", err)
			}
			if b, err := os.ReadFile(filepath.Join(dest, "p/f")); err != nil || string(b) != "f" {
				t.Errorf("p/f: %q %v", b, err)
			}
		})
	}
	t.Run("dest archived without u+x", func(t *testing.T) {
		a, _ := openBuilt(t, []entry{{path: "", mode: format.ModeDir | 0o600, mtime: 5e17, atime: 5e17}, reg("f", []byte("f"))}, buildOpts{})
		dest := filepath.Join(t.TempDir(), "out")
		t.Cleanup(func() { os.Chmod(dest, 0o700) })
		var warns []string
		if _, err := a.Extract(dest, ExtractOptions{Warn: func(err error) { warns = append(warns, err.Error()) }}); err != nil || len(warns) > 0 {
			t.Fatalf("extract: %v, warnings %q", err, warns)
		}
		if st := lstat(t, dest); st.Mode&0o7777 != 0o600 || st.Mtim.Nano() != 5e17 {
			t.Errorf("dest: mode %o, mtime %d; want 600 and 5e17", st.Mode&0o7777, st.Mtim.Nano())
		}
	})
}

// As an ordinary user, what another's directory in dest denies (a file or
// a directory to be made in it) is skipped with a warning, and the rest
// comes out: not refused halfway, the entries before it left empty.
func TestAnotherUsersDirectoryInDestIsSkippedNotFatal(t *testing.T) {
	if os.Geteuid() == 0 {
		dest := t.TempDir()
		os.Chmod(dest, 0o777)
		os.Mkdir(filepath.Join(dest, "p"), 0o755) // root's
		t.Setenv("ARC_TEST_DEST", dest)
		runAsNobody(t, "TestAnotherUsersDirectoryInDestIsSkippedNotFatal")
		return
	}
	dest := os.Getenv("ARC_TEST_DEST")
	if dest == "" {
		t.Skip("run as root: it makes the other user's directory")
	}
	a, _ := openBuilt(t, []entry{reg("a", []byte("a")), dir("p"), reg("p/file", []byte("f")), dir("p/sub"), reg("z", []byte("z"))}, buildOpts{})
	var warns []string
	res, err := a.Extract(dest, ExtractOptions{Warn: func(err error) { warns = append(warns, err.Error()) }})
	if err != nil {
		t.Fatalf("extract: %v (warnings %q)", err, warns)
	}
	for p, want := range map[string]string{"a": "a", "z": "z"} {
		if b, err := os.ReadFile(filepath.Join(dest, p)); err != nil || string(b) != want {
			t.Errorf("%s: %q %v", p, b, err)
		}
	}
	if res.Skipped != 2 {
		t.Errorf("%d skipped, want p/file and p/sub (warnings %q)", res.Skipped, warns)
	}
}

// An archive whose root and a directory are archived without u+r is
// extracted again over its own extraction, as an ordinary user: dest,
// which it left unreadable, is widened to be opened, and both get their
// archived modes back.
func TestExtractAgainIntoAnUnreadableDest(t *testing.T) {
	if os.Geteuid() == 0 {
		runAsNobody(t, "TestExtractAgainIntoAnUnreadableDest")
		return
	}
	a, _ := openBuilt(t, []entry{
		{path: "", mode: format.ModeDir | 0o300, mtime: 7, atime: 7},
		{path: "sub", mode: format.ModeDir | 0o300, mtime: 8, atime: 8}, reg("sub/f", []byte("f")),
	}, buildOpts{})
	dest := filepath.Join(t.TempDir(), "out")
	t.Cleanup(func() {
		os.Chmod(dest, 0o700)
		os.Chmod(filepath.Join(dest, "sub"), 0o700)
	})
	for _, overwrite := range []bool{false, true} {
		if _, err := a.Extract(dest, ExtractOptions{Overwrite: overwrite}); err != nil {
			t.Fatalf("overwrite %v: %v", overwrite, err)
		}
		if st := lstat(t, dest); st.Mode&0o7777 != 0o300 {
			t.Errorf("overwrite %v: dest mode %o, want 300", overwrite, st.Mode&0o7777)
		}
	}
}
