package fs

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"arc/format"

	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"
)

// mount serves a on a fresh directory and unmounts at the end of the test.
func mount(t *testing.T, a *memArchive, logf func(string, ...any)) string {
	t.Helper()
	dir, _ := mountFS(t, a, Options{Logf: logf})
	return dir
}

// mountFS is mount with options, keeping the *FS to look at its counters.
func mountFS(t *testing.T, a *memArchive, o Options) (string, *FS) {
	t.Helper()
	dir, srv, f := mountServer(t, a, o)
	t.Cleanup(func() {
		if err := srv.Unmount(); err != nil {
			t.Errorf("unmount: %v", err)
		}
		srv.Wait()
	})
	return dir, f
}

// mountServer mounts a with options and leaves the unmount to the test;
// one that fails before it unmounts leaves no mount behind either.
func mountServer(t *testing.T, a *memArchive, o Options) (string, *Server, *FS) {
	t.Helper()
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Skip("no /dev/fuse:", err)
	}
	if o.Logf == nil {
		o.Logf = t.Logf
	}
	dir := t.TempDir()
	srv, f, err := mountWith(dir, a, o)
	if err != nil {
		// Only a machine where no FUSE file system mounts is a reason to
		// skip: where a bare one mounts, arc's own failure is the bug.
		if perr := fuseMounts(); perr != nil {
			t.Skip("cannot mount FUSE here:", perr)
		}
		t.Fatal(err)
	}
	t.Cleanup(func() {
		var st, up syscall.Stat_t
		if syscall.Stat(dir, &st) == nil && syscall.Stat(filepath.Dir(dir), &up) == nil && st.Dev != up.Dev {
			srv.Unmount()
			srv.Wait()
		}
	})
	return dir, srv, f
}

var fuseProbe struct {
	once sync.Once
	err  error
}

// fuseMounts mounts (once) an empty go-fuse file system, the way mountWith
// tries (directly, else through fusermount3), and says why it cannot.
func fuseMounts() error {
	fuseProbe.once.Do(func() {
		dir, err := os.MkdirTemp("", "arc-fuse-probe-")
		if err != nil {
			fuseProbe.err = err
			return
		}
		defer os.Remove(dir)
		srv, err := fuse.NewServer(fuse.NewDefaultRawFileSystem(), dir, &fuse.MountOptions{DirectMount: true})
		if err != nil {
			fuseProbe.err = err
			return
		}
		go srv.Serve()
		if err := srv.WaitMount(); err != nil {
			srv.Unmount()
			fuseProbe.err = err
			return
		}
		fuseProbe.err = srv.Unmount()
	})
	return fuseProbe.err
}

func bigData(n int, seed int64) string {
	b := make([]byte, n)
	rand.New(rand.NewSource(seed)).Read(b)
	return string(b)
}

var mtime = time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.UTC).UnixNano()

func sampleTree() []entry {
	return []entry{
		{path: "a.txt", mode: format.ModeReg | 0o644, data: "hello\n", mtime: mtime},
		{path: "dir", mode: format.ModeDir | 0o750, mtime: mtime},
		{path: "dir/exec", mode: format.ModeReg | 0o755, data: "#!/bin/sh\n", mtime: mtime},
		{path: "dir/sub/deep.bin", mode: format.ModeReg | 0o600, data: bigData(3<<20+17, 1), mtime: mtime},
		{path: "dir/hardlink", mode: format.ModeReg | 0o644, link: "a.txt"},
		{path: "empty", mode: format.ModeReg | 0o644, mtime: mtime},
		{path: "dir/none", mode: format.ModeReg, data: "x", mtime: mtime},
		{path: "sparse", mode: format.ModeReg | 0o644, hole: 5 << 20, data: "tail", mtime: mtime},
		{path: "link", mode: format.ModeLink | 0o777, target: "dir/exec", mtime: mtime},
		{path: "fifo", mode: format.ModeFifo | 0o644, mtime: mtime},
		{path: "null", mode: format.ModeChr | 0o666, rdev: unix.Mkdev(1, 3), mtime: mtime},
	}
}

func TestMountedTreeMatchesIndex(t *testing.T) {
	a := build(sampleTree())
	mnt := mount(t, a, t.Logf)

	for _, e := range sampleTree() {
		p := filepath.Join(mnt, e.path)
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			t.Fatalf("lstat %s: %v", e.path, err)
		}
		if e.link != "" {
			var orig unix.Stat_t
			if err := unix.Lstat(filepath.Join(mnt, e.link), &orig); err != nil {
				t.Fatal(err)
			}
			if st.Ino != orig.Ino || st.Nlink != 2 {
				t.Errorf("%s: ino %d nlink %d, want ino %d nlink 2", e.path, st.Ino, st.Nlink, orig.Ino)
			}
			continue
		}
		if st.Mode != e.mode {
			t.Errorf("%s: mode %o, want %o", e.path, st.Mode, e.mode)
		}
		if st.Uid != 1000 || st.Gid != 100 {
			t.Errorf("%s: owner %d:%d", e.path, st.Uid, st.Gid)
		}
		if got := st.Mtim.Nano(); got != e.mtime {
			t.Errorf("%s: mtime %d, want %d", e.path, got, e.mtime)
		}
		if st.Rdev != e.rdev {
			t.Errorf("%s: rdev %x, want %x", e.path, st.Rdev, e.rdev)
		}
		switch e.mode & format.ModeType {
		case format.ModeReg:
			want := strings.Repeat("\x00", int(e.hole)) + e.data
			got, err := os.ReadFile(p)
			if err != nil {
				t.Fatalf("read %s: %v", e.path, err)
			}
			if string(got) != want {
				t.Errorf("%s: content differs (%d bytes, want %d)", e.path, len(got), len(want))
			}
			if st.Size != int64(len(want)) || st.Blocks != (int64(len(e.data))+511)/512 {
				t.Errorf("%s: size %d blocks %d", e.path, st.Size, st.Blocks)
			}
		case format.ModeLink:
			got, err := os.Readlink(p)
			if err != nil || got != e.target {
				t.Errorf("readlink %s = %q, %v; want %q", e.path, got, err, e.target)
			}
			if st.Size != int64(len(e.target)) || st.Blocks != 0 {
				t.Errorf("%s: size %d blocks %d, want %d and none (the target is no data)", e.path, st.Size, st.Blocks, len(e.target))
			}
		}
	}
	var st unix.Stat_t
	if err := unix.Stat(filepath.Join(mnt, "dir"), &st); err != nil {
		t.Fatal(err)
	}
	if st.Nlink != 3 { // ".", its entry in the root, "sub/.."
		t.Errorf("dir nlink %d, want 3", st.Nlink)
	}
	if err := unix.Stat(mnt, &st); err != nil || st.Ino != 1 {
		t.Errorf("root ino %d, %v", st.Ino, err)
	}

	ents, err := os.ReadDir(mnt)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if got, want := strings.Join(names, " "), "a.txt dir empty fifo link null sparse"; got != want {
		t.Errorf("root lists %q, want %q", got, want)
	}
	all, err := readdirnames(filepath.Join(mnt, "dir"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(all, " "), ". .. exec hardlink none sub"; got != want {
		t.Errorf("root lists %q, want %q", got, want)
	}
	if _, err := os.Lstat(filepath.Join(mnt, "nope")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing name: %v", err)
	}
	if _, err := os.Lstat(filepath.Join(mnt, "a.txt", "x")); !errors.Is(err, syscall.ENOTDIR) {
		t.Errorf("name below a file: %v", err)
	}
}

func TestLargeDirectoryListsEveryEntryInOrder(t *testing.T) {
	var es []entry
	var want []string
	for i := 0; i < 5000; i++ {
		name := fmt.Sprintf("f%05d-%s", i, strings.Repeat("x", i%100))
		want = append(want, name)
		es = append(es, entry{path: "big/" + name, mode: format.ModeReg | 0o644, data: name})
	}
	mnt := mount(t, build(es), t.Logf)
	ents, err := os.ReadDir(filepath.Join(mnt, "big"))
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != len(want) {
		t.Fatalf("%d entries, want %d", len(ents), len(want))
	}
	for i, e := range ents {
		if e.Name() != want[i] {
			t.Fatalf("entry %d = %q, want %q", i, e.Name(), want[i])
		}
	}
	got, err := os.ReadFile(filepath.Join(mnt, "big", want[4321]))
	if err != nil || string(got) != want[4321] {
		t.Errorf("read %s: %q %v", want[4321], got, err)
	}
}

// A directory is listed without OPENDIR (where the kernel can do without
// it) and listed again from the kernel's cache: the second listing of each
// directory sends nothing, and both read every entry, also where one
// listing takes several READDIRPLUS.
func TestDirectoriesAreListedWithoutOpendirAndCached(t *testing.T) {
	var es []entry
	want := map[string][]string{}
	for d, n := range []int{3, 700} { // 700 long names: several READDIRPLUS
		dir := fmt.Sprintf("d%d", d)
		for i := 0; i < n; i++ {
			name := fmt.Sprintf("f%04d-%s", i, strings.Repeat("y", 40))
			want[dir] = append(want[dir], name)
			es = append(es, entry{path: dir + "/" + name, mode: format.ModeReg | 0o644, data: name})
		}
	}
	mnt, fsys := mountFS(t, build(es), Options{})
	var first int64
	for round := 0; round < 2; round++ {
		for dir, names := range want {
			ents, err := os.ReadDir(filepath.Join(mnt, dir))
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, e := range ents {
				got = append(got, e.Name())
			}
			if !slices.Equal(got, names) {
				t.Fatalf("round %d: %s lists %d entries, want %d", round, dir, len(got), len(names))
			}
		}
		if round == 1 {
			break
		}
		if fsys.raw.srv.Load().KernelSettings().Flags64()&fuse.CAP_NO_OPENDIR_SUPPORT == 0 {
			t.Skip("this kernel needs OPENDIR")
		}
		// After the first refusal the kernel sends no more.
		if r := fsys.raw.refused.Load(); r != 1 {
			t.Errorf("%d OPENDIRs refused, want 1", r)
		}
		// Each listing ends with a READDIRPLUS at its end: two at
		// least for the small directory, more for the big one.
		if first = fsys.raw.listings.Load(); first < 5 {
			t.Errorf("%d listing requests for two directories, want 5 or more", first)
		}
	}
	if n := fsys.raw.listings.Load(); n != first {
		t.Errorf("listing again sent %d READDIRPLUS, want none (the kernel keeps the listing)", n-first)
	}
}

func TestXattrsServedWhenArchiveHasThem(t *testing.T) {
	a := build([]entry{
		{path: "x", mode: format.ModeReg | 0o644, data: "x", xattrs: map[string]string{"user.a": "1", "user.bb": "two"}},
		{path: "plain", mode: format.ModeReg | 0o644, data: "p"},
	})
	mnt := mount(t, a, t.Logf)
	buf := make([]byte, 256)
	n, err := unix.Lgetxattr(filepath.Join(mnt, "x"), "user.bb", buf)
	if err != nil || string(buf[:n]) != "two" {
		t.Errorf("getxattr user.bb = %q, %v", buf[:n], err)
	}
	n, err = unix.Llistxattr(filepath.Join(mnt, "x"), buf)
	if err != nil || string(buf[:n]) != "user.a\x00user.bb\x00" {
		t.Errorf("listxattr = %q, %v", buf[:n], err)
	}
	if _, err := unix.Lgetxattr(filepath.Join(mnt, "x"), "user.none", buf); err != unix.ENODATA {
		t.Errorf("missing xattr: %v, want ENODATA", err)
	}
	if _, err := unix.Lgetxattr(filepath.Join(mnt, "x"), "user.bb", buf[:1]); err != unix.ERANGE {
		t.Errorf("small buffer: %v, want ERANGE", err)
	}
	if n, err := unix.Llistxattr(filepath.Join(mnt, "plain"), buf); err != nil || n != 0 {
		t.Errorf("plain listxattr = %d, %v", n, err)
	}
}

// trusted.* values are the kernel's to refuse to a user without
// CAP_SYS_ADMIN (ENODATA); ext4 and squashfs leave their names out of such a
// user's listing too, else getfattr -d and rsync -X fail on every one.
func TestTrustedXattrsListedOnlyToPrivilegedCallers(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root: reads the mount as another user")
	}
	if _, err := exec.LookPath("getfattr"); err != nil {
		t.Skip("no getfattr")
	}
	a := build([]entry{
		{path: "x", mode: format.ModeReg | 0o644, data: "x", xattrs: map[string]string{"user.a": "1", "trusted.t": "2"}},
	})
	mnt, _ := mountFS(t, a, Options{AllowOther: true})
	os.Chmod(filepath.Dir(mnt), 0o755)
	os.Chmod(filepath.Dir(filepath.Dir(mnt)), 0o755)
	p := filepath.Join(mnt, "x")

	buf := make([]byte, 256)
	if n, err := unix.Llistxattr(p, buf); err != nil || string(buf[:n]) != "trusted.t\x00user.a\x00" {
		t.Errorf("root's listxattr = %q, %v", buf[:n], err)
	}
	cmd := exec.Command("getfattr", "--absolute-names", "-d", "-m", "-", p)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil || stderr.Len() > 0 || !strings.Contains(stdout.String(), `user.a="1"`) || strings.Contains(stdout.String(), "trusted") {
		t.Errorf("getfattr -d as nobody: %v\nstdout: %s\nstderr: %s", err, stdout.String(), stderr.String())
	}
}

func TestXattrsDisabledWhenArchiveHasNone(t *testing.T) {
	mnt := mount(t, build(sampleTree()), t.Logf)
	buf := make([]byte, 64)
	if _, err := unix.Lgetxattr(filepath.Join(mnt, "a.txt"), "security.selinux", buf); err != unix.EOPNOTSUPP {
		t.Errorf("getxattr: %v, want EOPNOTSUPP", err)
	}
}

func TestEveryChangeIsRefused(t *testing.T) {
	mnt := mount(t, build(sampleTree()), t.Logf)
	p := func(s string) string { return filepath.Join(mnt, s) }
	for name, op := range map[string]func() error{
		"create":    func() error { return os.WriteFile(p("new"), nil, 0o644) },
		"write":     func() error { _, err := os.OpenFile(p("a.txt"), os.O_WRONLY, 0); return err },
		"truncate":  func() error { return os.Truncate(p("a.txt"), 0) },
		"mkdir":     func() error { return os.Mkdir(p("d2"), 0o755) },
		"remove":    func() error { return os.Remove(p("a.txt")) },
		"rmdir":     func() error { return os.Remove(p("dir/sub")) },
		"rename":    func() error { return os.Rename(p("a.txt"), p("b.txt")) },
		"chmod":     func() error { return os.Chmod(p("a.txt"), 0o600) },
		"chown":     func() error { return os.Lchown(p("a.txt"), 1, 1) },
		"symlink":   func() error { return os.Symlink("x", p("l2")) },
		"link":      func() error { return os.Link(p("a.txt"), p("l3")) },
		"utimes":    func() error { return os.Chtimes(p("a.txt"), time.Now(), time.Now()) },
		"setxattr":  func() error { return unix.Lsetxattr(p("a.txt"), "user.x", []byte("1"), 0) },
		"mknodfifo": func() error { return unix.Mkfifo(p("f2"), 0o644) },
	} {
		if err := op(); !errors.Is(err, syscall.EROFS) {
			t.Errorf("%s: %v, want EROFS", name, err)
		}
	}
}

func TestStatfsReportsArchiveTotals(t *testing.T) {
	mnt := mount(t, build(sampleTree()), t.Logf)
	for _, p := range []string{mnt, filepath.Join(mnt, "dir/sub/deep.bin")} {
		var st unix.Statfs_t
		if err := unix.Statfs(p, &st); err != nil {
			t.Fatal(err)
		}
		// Used blocks as du counts them: deep.bin's, one for each of the
		// four small files, none for sparse's 5 MiB hole.
		if st.Files != 12 || st.Blocks != (3<<20+17+4095)/4096+4 || st.Flags&unix.ST_RDONLY == 0 {
			t.Errorf("statfs %s: files %d blocks %d flags %x", p, st.Files, st.Blocks, st.Flags)
		}
	}
}

func TestDamagedFileFailsAloneWithOneLogLine(t *testing.T) {
	a := build(sampleTree())
	var mu sync.Mutex
	var lines []string
	mnt := mount(t, a, func(f string, args ...any) {
		mu.Lock()
		lines = append(lines, fmt.Sprintf(f, args...))
		mu.Unlock()
	})
	d, ok := a.idx.Lookup(0, []byte("dir"))
	if !ok {
		t.Fatal("no dir")
	}
	d, _ = a.idx.Lookup(a.idx.Dirents.Inode[d], []byte("exec"))
	a.mu.Lock()
	a.damaged[a.idx.Dirents.Inode[d]] = true
	a.mu.Unlock()

	for i := 0; i < 3; i++ {
		if _, err := os.ReadFile(filepath.Join(mnt, "dir/exec")); !errors.Is(err, syscall.EIO) {
			t.Fatalf("damaged file read: %v, want EIO", err)
		}
	}
	if got, err := os.ReadFile(filepath.Join(mnt, "a.txt")); err != nil || string(got) != "hello\n" {
		t.Errorf("intact file: %q %v", got, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(lines) != 1 || !strings.Contains(lines[0], "/dir/exec") || !strings.Contains(lines[0], "frame 7") {
		t.Errorf("log lines %q, want one naming /dir/exec and its frame", lines)
	}
}

func TestParallelReadersSeeTheRightBytes(t *testing.T) {
	var es []entry
	for i := 0; i < 4; i++ {
		es = append(es, entry{path: fmt.Sprintf("f%d", i), mode: format.ModeReg | 0o644, data: bigData(2<<20+i*1000, int64(i))})
	}
	a := build(es)
	mnt := mount(t, a, t.Logf)
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			r := rand.New(rand.NewSource(int64(g)))
			e := es[g%len(es)]
			f, err := os.Open(filepath.Join(mnt, e.path))
			if err != nil {
				errs <- err
				return
			}
			defer f.Close()
			buf := make([]byte, 200<<10)
			for k := 0; k < 20; k++ {
				off := r.Int63n(int64(len(e.data)))
				n, err := f.ReadAt(buf[:1+r.Intn(len(buf)-1)], off)
				if err != nil && n == 0 {
					errs <- fmt.Errorf("%s at %d: %v", e.path, off, err)
					return
				}
				if !bytes.Equal(buf[:n], []byte(e.data[off:off+int64(n)])) {
					errs <- fmt.Errorf("%s at %d: wrong bytes", e.path, off)
					return
				}
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// readdirnames lists a directory with "." and ".." (which os.ReadDir and
// unix.ParseDirent hide), in ls order.
func readdirnames(dir string) ([]string, error) {
	out, err := exec.Command("ls", "-a1", dir).Output()
	return strings.Fields(string(out)), err
}

func TestHolesAreReportedLikeASparseFile(t *testing.T) {
	a := build([]entry{
		{path: "s", mode: format.ModeReg | 0o644, hole: 1 << 20, data: "data"},
		{path: "dense", mode: format.ModeReg | 0o644, data: "abc"},
	})
	mnt := mount(t, a, t.Logf)
	f, err := os.Open(filepath.Join(mnt, "s"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, c := range []struct {
		off    int64
		whence int
		want   int64
		err    error
	}{
		{0, unix.SEEK_DATA, 1 << 20, nil},
		{0, unix.SEEK_HOLE, 0, nil},
		{1<<20 + 1, unix.SEEK_DATA, 1<<20 + 1, nil},
		{1 << 20, unix.SEEK_HOLE, 1<<20 + 4, nil},
		{1<<20 + 4, unix.SEEK_DATA, 0, syscall.ENXIO},
	} {
		got, err := unix.Seek(int(f.Fd()), c.off, c.whence)
		if err != c.err || (err == nil && got != c.want) {
			t.Errorf("seek(%d, %d) = %d, %v; want %d, %v", c.off, c.whence, got, err, c.want, c.err)
		}
	}
	d, err := os.Open(filepath.Join(mnt, "dense"))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if got, err := unix.Seek(int(d.Fd()), 0, unix.SEEK_HOLE); err != nil || got != 3 {
		t.Errorf("dense file: first hole at %d, %v; want 3 (its end)", got, err)
	}
	// statfs counts used space as du does: the 1 MiB hole takes none.
	var st unix.Statfs_t
	if err := unix.Statfs(mnt, &st); err != nil || st.Blocks != 2 {
		t.Errorf("statfs: %d blocks used, %v; want 2 (the data of each file)", st.Blocks, err)
	}
}

// A name longer than any entry can have is ENAMETOOLONG, as elsewhere,
// not ENOENT (which the kernel would also cache as a negative entry).
func TestOverlongNameIsENAMETOOLONG(t *testing.T) {
	mnt := mount(t, build(sampleTree()), t.Logf)
	long := strings.Repeat("n", format.MaxNameLen+1)
	if _, err := os.Lstat(filepath.Join(mnt, long)); !errors.Is(err, syscall.ENAMETOOLONG) {
		t.Errorf("lstat of a %d-byte name: %v, want ENAMETOOLONG", len(long), err)
	}
	if _, err := os.Lstat(filepath.Join(mnt, strings.Repeat("n", format.MaxNameLen))); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("lstat of a %d-byte name: %v, want ENOENT", format.MaxNameLen, err)
	}
}

// The kernel reads a file ahead in READs as large as the mount's
// read-ahead allows: the mount sets it to maxIO where it may (root).
func TestMountSetsItsReadAheadToMaxIO(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("setting a mount's read-ahead needs root")
	}
	mnt, _ := mountFS(t, build(sampleTree()), Options{})
	var st syscall.Stat_t
	if err := syscall.Stat(mnt, &st); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(readAheadFile(st.Dev))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.TrimSpace(string(b)), fmt.Sprint(maxIO>>10); got != want {
		t.Errorf("read_ahead_kb %s, want %s", got, want)
	}
}
