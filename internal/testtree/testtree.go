// Package testtree builds awkward directory trees for tests (every file
// type, hostile names, exact timestamps, sparse files, hardlinks, xattrs,
// ACLs, duplicates), deterministic from a seed, and compares two trees by
// content and metadata.
package testtree

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Options size and shape the generated tree. The zero value gives a small
// tree of every kind of entry.
type Options struct {
	Seed        uint64
	Files       int   // ordinary files with random content (default 40)
	MaxFileSize int   // largest ordinary file (default 96 KiB)
	LargeSize   int64 // size of one large file, e.g. more than a frame or a volume (0 = none)
	SparseSize  int64 // size of the sparse files (default 3 MiB)
	Depth       int   // nesting depth of the deep directory chain (default 50)
	Dups        int   // identical copies of one file, for whole-file dedup (default 4)
	DupSize     int   // size of that file (default 200 KiB)

	// NoPrivileged leaves out what needs root even when running as root:
	// device nodes, foreign owners, trusted.* xattrs.
	NoPrivileged bool
	// NoXattrs leaves out extended attributes and ACLs.
	NoXattrs bool
}

// Report says what Generate made and what this machine could not make.
type Report struct {
	Files   int64    // regular files (hardlinks counted once)
	Bytes   int64    // apparent bytes of regular files (hardlinks counted once)
	Skipped []string // features left out, each with the reason
}

// Base time of the tree: every mtime and atime is derived from it with
// nanosecond parts, so a tool that drops nanoseconds fails Compare.
var baseTime = time.Date(2021, 3, 4, 5, 6, 7, 123456789, time.UTC)

type gen struct {
	root    string
	opt     Options
	r       *rand.Rand
	rep     *Report
	priv    bool
	times   map[string][2]int64 // path → atime, mtime (ns)
	modes   map[string]os.FileMode
	dirs    []string // every directory, parents first
	counter int64
}

// Generate creates the tree under dir, which must not exist or be empty.
func Generate(dir string, opt Options) (*Report, error) {
	if opt.Files == 0 {
		opt.Files = 40
	}
	if opt.Files < 5 {
		opt.Files = 5 // files 0-4 carry owners, xattrs and ACLs
	}
	if opt.MaxFileSize == 0 {
		opt.MaxFileSize = 96 << 10
	}
	if opt.SparseSize == 0 {
		opt.SparseSize = 3 << 20
	}
	if opt.Depth == 0 {
		opt.Depth = 50
	}
	if opt.Dups == 0 {
		opt.Dups = 4
	}
	if opt.DupSize == 0 {
		opt.DupSize = 200 << 10
	}
	g := &gen{
		root: dir, opt: opt, r: rand.New(rand.NewPCG(opt.Seed, opt.Seed^0x9e3779b97f4a7c15)),
		rep: &Report{}, priv: os.Geteuid() == 0 && !opt.NoPrivileged,
		times: map[string][2]int64{}, modes: map[string]os.FileMode{},
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	g.dirs = append(g.dirs, "")
	steps := []func() error{g.plainFiles, g.names, g.deep, g.links, g.sparse, g.large, g.dups, g.special, g.modesAndOwners, g.attrs}
	for _, s := range steps {
		if err := s(); err != nil {
			return nil, err
		}
	}
	if err := g.applyTimes(); err != nil {
		return nil, err
	}
	return g.rep, nil
}

func (g *gen) path(rel string) string { return filepath.Join(g.root, rel) }

func (g *gen) skip(format string, a ...any) {
	g.rep.Skipped = append(g.rep.Skipped, fmt.Sprintf(format, a...))
}

// stamp gives rel a deterministic atime and mtime, applied at the end.
func (g *gen) stamp(rel string) {
	g.counter++
	m := baseTime.Add(time.Duration(g.counter)*time.Hour + time.Duration(g.r.Int64N(1e9))).UnixNano()
	a := m + g.r.Int64N(1e12) + 1 // atime after mtime, as relatime expects
	g.times[rel] = [2]int64{a, m}
}

func (g *gen) mkdir(rel string) error {
	if err := os.Mkdir(g.path(rel), 0o755); err != nil {
		return err
	}
	g.dirs = append(g.dirs, rel)
	g.stamp(rel)
	return nil
}

func (g *gen) write(rel string, data []byte) error {
	if err := os.WriteFile(g.path(rel), data, 0o644); err != nil {
		return err
	}
	g.rep.Files++
	g.rep.Bytes += int64(len(data))
	g.stamp(rel)
	return nil
}

// content returns n bytes mixing text-like runs (compressible), random
// bytes (incompressible) and zeros, so codecs meet every case.
func (g *gen) content(n int) []byte {
	words := []string{"archive ", "frame ", "block ", "volume ", "index ", "the ", "of ", "dedup\n", "func main() {\n", "\t}\n"}
	b := make([]byte, 0, n)
	for len(b) < n {
		run := 1 + g.r.IntN(8192)
		if run > n-len(b) {
			run = n - len(b)
		}
		switch g.r.IntN(4) {
		case 0, 1:
			for i := 0; i < run; {
				w := words[g.r.IntN(len(words))]
				i += len(w)
				b = append(b, w...)
			}
			if len(b) > n {
				b = b[:n]
			}
		case 2:
			for i := 0; i < run; i++ {
				b = append(b, byte(g.r.Uint32()))
			}
		default:
			b = append(b, make([]byte, run)...)
		}
	}
	return b
}

func (g *gen) plainFiles() error {
	for _, d := range []string{"files", "files/sub", "files/sub/subsub", "empty-dir", "empty-dir/nested-empty"} {
		if err := g.mkdir(d); err != nil {
			return err
		}
	}
	dirs := []string{"files", "files/sub", "files/sub/subsub"}
	for i := 0; i < g.opt.Files; i++ {
		size := g.r.IntN(g.opt.MaxFileSize + 1)
		if i%7 == 0 {
			size = g.r.IntN(100) // many tiny files
		}
		rel := fmt.Sprintf("%s/file-%03d.dat", dirs[i%len(dirs)], i)
		if err := g.write(rel, g.content(size)); err != nil {
			return err
		}
	}
	return g.write("files/empty", nil)
}

// Awkward names: every byte but '/' and NUL is allowed in a Linux name.
func (g *gen) names() error {
	if err := g.mkdir("names"); err != nil {
		return err
	}
	names := []string{
		"with space", " leading space", "trailing space ", "new\nline", "tab\there",
		"non-utf8-\xff\xfe\x80", "latin1-caf\xe9", "ünïcödé-文件", "-dash", "--", "*?[glob]",
		"back\\slash", "quote'\"", "$(dollar)", "...", ".hidden", "a\x01control",
		strings.Repeat("L", 255),
		strings.Repeat("é", 127) + "x", // 255 bytes, multi-byte runes
	}
	for _, n := range names {
		if err := g.write("names/"+n, g.content(g.r.IntN(300))); err != nil {
			return fmt.Errorf("testtree: name %q: %w", n, err)
		}
	}
	return g.mkdir("names/dir with\nnewline \xff")
}

func (g *gen) deep() error {
	rel := "deep"
	if err := g.mkdir(rel); err != nil {
		return err
	}
	for i := 0; i < g.opt.Depth; i++ {
		rel = fmt.Sprintf("%s/d%02d", rel, i)
		if err := g.mkdir(rel); err != nil {
			return err
		}
	}
	return g.write(rel+"/bottom.txt", []byte("the bottom of the deep chain\n"))
}

func (g *gen) links() error {
	if err := g.mkdir("links"); err != nil {
		return err
	}
	if err := g.mkdir("links/other"); err != nil {
		return err
	}
	if err := g.write("links/target.txt", g.content(5000)); err != nil {
		return err
	}
	for _, l := range []string{"links/hard1", "links/other/hard2", "names/hard with space"} {
		if err := os.Link(g.path("links/target.txt"), g.path(l)); err != nil {
			return err
		}
		// One inode: its times are the target's.
	}
	if err := g.write("links/empty-hard-a", nil); err != nil {
		return err
	}
	if err := os.Link(g.path("links/empty-hard-a"), g.path("links/empty-hard-b")); err != nil {
		return err
	}
	syms := [][2]string{
		{"links/rel", "target.txt"},
		{"links/up", "../files/file-000.dat"},
		{"links/dangling", "does/not/exist"},
		{"links/absolute", "/etc/passwd"},
		{"links/to-dir", "other"},
		{"links/self-loop", "self-loop"},
		{"links/odd target", "new\nline \xff"},
		{"links/long", strings.Repeat("x/", 500) + "end"},
	}
	for _, s := range syms {
		if err := os.Symlink(s[1], g.path(s[0])); err != nil {
			return err
		}
		g.stamp(s[0])
	}
	return nil
}

// sparse makes files with holes at the start, middle and end, and one that
// is all hole.
func (g *gen) sparse() error {
	if err := g.mkdir("sparse"); err != nil {
		return err
	}
	size := g.opt.SparseSize
	f, err := os.Create(g.path("sparse/holes"))
	if err != nil {
		return err
	}
	chunk := g.content(64 << 10)
	for _, off := range []int64{256 << 10, size / 2} {
		if _, err := f.WriteAt(chunk, off); err != nil {
			f.Close()
			return err
		}
	}
	if err := f.Truncate(size); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	g.rep.Files++
	g.rep.Bytes += size
	g.stamp("sparse/holes")
	if err := os.WriteFile(g.path("sparse/all-hole"), nil, 0o644); err != nil {
		return err
	}
	if err := os.Truncate(g.path("sparse/all-hole"), size); err != nil {
		return err
	}
	g.rep.Files++
	g.rep.Bytes += size
	g.stamp("sparse/all-hole")
	var st unix.Stat_t
	if err := unix.Stat(g.path("sparse/holes"), &st); err == nil && st.Blocks*512 >= size {
		g.skip("sparse files: this filesystem does not keep holes")
	}
	return nil
}

func (g *gen) large() error {
	if g.opt.LargeSize <= 0 {
		return nil
	}
	if err := g.mkdir("large"); err != nil {
		return err
	}
	f, err := os.Create(g.path("large/big.bin"))
	if err != nil {
		return err
	}
	for left := g.opt.LargeSize; left > 0; {
		n := int64(1 << 20)
		if n > left {
			n = left
		}
		if _, err := f.Write(g.content(int(n))); err != nil {
			f.Close()
			return err
		}
		left -= n
	}
	if err := f.Close(); err != nil {
		return err
	}
	g.rep.Files++
	g.rep.Bytes += g.opt.LargeSize
	g.stamp("large/big.bin")
	return nil
}

// dups makes identical files in different directories, with different
// names, modes and times: whole-file dedup must keep each one's metadata.
func (g *gen) dups() error {
	if err := g.mkdir("dups"); err != nil {
		return err
	}
	if err := g.mkdir("dups/elsewhere"); err != nil {
		return err
	}
	data := g.content(g.opt.DupSize)
	small := g.content(3000)
	for i := 0; i < g.opt.Dups; i++ {
		dir := "dups"
		if i%2 == 1 {
			dir = "dups/elsewhere"
		}
		if err := g.write(fmt.Sprintf("%s/copy-%d.bin", dir, i), data); err != nil {
			return err
		}
		if err := g.write(fmt.Sprintf("%s/small-%d.txt", dir, i), small); err != nil {
			return err
		}
		g.modes[fmt.Sprintf("%s/small-%d.txt", dir, i)] = os.FileMode(0o600 + i)
	}
	// The same bytes as a plain file elsewhere in the tree.
	return g.write("files/same-as-dups.bin", data)
}

func (g *gen) special() error {
	if err := g.mkdir("special"); err != nil {
		return err
	}
	if err := unix.Mkfifo(g.path("special/fifo"), 0o640); err != nil {
		g.skip("fifo: %v", err)
	} else {
		g.stamp("special/fifo")
	}
	if !g.priv {
		g.skip("device nodes: not root")
		return nil
	}
	for _, d := range []struct {
		name string
		mode uint32
		dev  uint64
	}{
		{"special/char-null", unix.S_IFCHR | 0o666, unix.Mkdev(1, 3)},
		{"special/char-big", unix.S_IFCHR | 0o600, unix.Mkdev(300, 70000)},
		{"special/block-loop", unix.S_IFBLK | 0o660, unix.Mkdev(7, 200)},
	} {
		if err := unix.Mknod(g.path(d.name), d.mode, int(d.dev)); err != nil {
			g.skip("device node %s: %v", d.name, err)
			continue
		}
		g.stamp(d.name)
	}
	return nil
}

func (g *gen) modesAndOwners() error {
	if err := g.mkdir("modes"); err != nil {
		return err
	}
	if err := g.mkdir("modes/sticky"); err != nil {
		return err
	}
	if err := g.mkdir("modes/setgid-dir"); err != nil {
		return err
	}
	if err := g.mkdir("modes/readonly-dir"); err != nil {
		return err
	}
	if err := g.write("modes/readonly-dir/inside", []byte("in a read-only directory\n")); err != nil {
		return err
	}
	for _, f := range []struct {
		rel  string
		mode os.FileMode
	}{
		{"modes/setuid", 0o4755}, {"modes/setgid", 0o2711}, {"modes/all-special", 0o7777},
		{"modes/none", 0o000}, {"modes/exec", 0o755}, {"modes/odd", 0o4601},
	} {
		if err := g.write(f.rel, []byte(f.rel+"\n")); err != nil {
			return err
		}
		g.modes[f.rel] = f.mode
	}
	if os.Geteuid() != 0 {
		// Unreadable to its owner unless root: the archiver would skip it.
		g.modes["modes/none"] = 0o400
	}
	g.modes["modes/sticky"] = 0o1777
	g.modes["modes/setgid-dir"] = 0o2775
	g.modes["modes/readonly-dir"] = 0o555
	if g.priv {
		for rel, id := range map[string][2]int{
			"modes/setuid":           {4242, 4343},
			"modes/exec":             {65534, 65534},
			"modes/setgid-dir":       {1234567, 7654321},
			"links/rel":              {4242, 100},
			"files/sub/file-001.dat": {0, 4343},
		} {
			if err := os.Lchown(g.path(rel), id[0], id[1]); err != nil {
				return err
			}
		}
	} else {
		g.skip("foreign owners: not root")
	}
	// chmod after chown: chown clears setuid and setgid.
	for rel, m := range g.modes {
		if err := unix.Chmod(g.path(rel), uint32(m)); err != nil {
			return fmt.Errorf("testtree: chmod %s: %w", rel, err)
		}
	}
	return nil
}

func (g *gen) attrs() error {
	if g.opt.NoXattrs {
		g.skip("xattrs and ACLs: disabled")
		return nil
	}
	set := func(rel, name string, val []byte) bool {
		if err := unix.Lsetxattr(g.path(rel), name, val, 0); err != nil {
			g.skip("xattr %s on %s: %v", name, rel, err)
			return false
		}
		return true
	}
	if set("files/sub/subsub/file-002.dat", "user.comment", []byte("hello")) {
		set("files/sub/subsub/file-002.dat", "user.binary", []byte{0, 1, 2, 255, 0})
		set("files/sub/subsub/file-002.dat", "user.empty", nil)
		set("files", "user.on-a-dir", []byte("dir attr"))
		set("dups/copy-0.bin", "user.only-on-one-dup", []byte("x"))
		set("names/with space", "user.big", bytes.Repeat([]byte("v"), 3000))
	}
	if g.priv {
		set("files/file-003.dat", "trusted.arc-test", []byte("trusted value"))
	} else {
		g.skip("trusted.* xattrs: not root")
	}
	setfacl, err := exec.LookPath("setfacl")
	if err != nil {
		g.skip("POSIX ACLs: setfacl not installed")
		return nil
	}
	for _, c := range [][]string{
		{"-m", "u:4242:rw,g:4343:r,m:rw", g.path("files/sub/file-004.dat")},
		{"-d", "-m", "u:4242:rwx", g.path("files/sub")},
	} {
		if out, err := exec.Command(setfacl, c...).CombinedOutput(); err != nil {
			g.skip("POSIX ACL (setfacl %s): %v: %s", strings.Join(c[:len(c)-1], " "), err, bytes.TrimSpace(out))
		}
	}
	return nil
}

// applyTimes sets every recorded time, deepest directories last so that
// creating children does not disturb a parent's mtime.
func (g *gen) applyTimes() error {
	paths := make([]string, 0, len(g.times))
	for p := range g.times {
		paths = append(paths, p)
	}
	sort.Slice(paths, func(i, j int) bool {
		di, dj := strings.Count(paths[i], "/"), strings.Count(paths[j], "/")
		if di != dj {
			return di > dj
		}
		return paths[i] < paths[j]
	})
	set := func(rel string, t [2]int64) error {
		ts := []unix.Timespec{unix.NsecToTimespec(t[0]), unix.NsecToTimespec(t[1])}
		if err := unix.UtimesNanoAt(unix.AT_FDCWD, g.path(rel), ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("testtree: times of %s: %w", rel, err)
		}
		return nil
	}
	for _, p := range paths {
		if err := set(p, g.times[p]); err != nil {
			return err
		}
	}
	g.stamp("")
	return set("", g.times[""])
}
