package integration

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"arc/format"
	"arc/internal/testtree"
)

// TestRoundTripGeneratedTree packs the awkward tree into many small
// volumes and extracts it: everything comes back, checked by Compare and
// by rsync.
func TestRoundTripGeneratedTree(t *testing.T) {
	src := genTree(t, testtree.Options{Seed: 1, LargeSize: 700 << 10}) // > frame and > volume
	base := pack(t, small, src)
	if n := len(volumes(t, base)); n < 3 {
		t.Errorf("%d volumes, want several at --volume-size 256K", n)
	}
	mustArcpack(t, "verify", base+".001")
	dst := filepath.Join(t.TempDir(), "dst")
	mustArcpack(t, "extract", base+".002", "-o", dst, "--progress", "never") // any volume names the archive
	compare(t, src, dst, testtree.CompareOptions{})
	rsyncSame(t, src, dst)
}

// TestRoundTripOneVolumeDefaultSizes also checks the one-line summaries.
func TestRoundTripOneVolumeDefaultSizes(t *testing.T) {
	src := genTree(t, testtree.Options{Seed: 2, Files: 20})
	base := filepath.Join(t.TempDir(), "one")
	r := mustArcpack(t, "create", src, "-o", base, "--volume-size", "0")
	createLine := regexp.MustCompile(`^\d+ files, [\d.]+ (B|KiB|MiB) in, [\d.]+ (B|KiB|MiB) out in 1 volume, dedup saved [\d.]+ (B|KiB|MiB), ratio \d+\.\d\d, [\d.]+ MB/s\n$`)
	if !createLine.MatchString(r.stdout) {
		t.Errorf("create summary %q", r.stdout)
	}
	if v := volumes(t, base); len(v) != 1 {
		t.Fatalf("volumes %v, want one at --volume-size 0", v)
	}
	if r := mustArcpack(t, "verify", base+".001"); !strings.HasPrefix(r.stdout, base+".001: intact: ") {
		t.Errorf("verify says %q", r.stdout)
	}
	if r := mustArcpack(t, "verify", "--bytes", base+".001"); !regexp.MustCompile(`, \d+ B stored \(\d+ B decoded\)`).MatchString(r.stdout) {
		t.Errorf("verify --bytes says %q", r.stdout)
	}
	dst := filepath.Join(t.TempDir(), "dst")
	r = mustArcpack(t, "extract", base+".001", "-o", dst)
	if !regexp.MustCompile(`^\d+ files, \d+ dirs, \d+ symlinks, \d+ others, \d+ links, [\d.]+ (B|KiB|MiB) written, [\d.]+ MB/s\n$`).MatchString(r.stdout) {
		t.Errorf("extract summary %q", r.stdout)
	}
	compare(t, src, dst, testtree.CompareOptions{})
}

func TestEmptyDirectoryArchive(t *testing.T) {
	src := filepath.Join(t.TempDir(), "empty")
	os.Mkdir(src, 0o750)
	base := pack(t, nil, src)
	if r := mustArcpack(t, "list", base+".001"); r.stdout != "" {
		t.Errorf("list of an empty archive printed %q", r.stdout)
	}
	mustArcpack(t, "verify", base+".001")
	dst := filepath.Join(t.TempDir(), "dst")
	mustArcpack(t, "extract", base+".001", "-o", dst)
	compare(t, src, dst, testtree.CompareOptions{})
}

func TestOneEmptyFileArchive(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "zero")
	if err := os.WriteFile(f, nil, 0o640); err != nil {
		t.Fatal(err)
	}
	base := pack(t, nil, f)
	if r := mustArcpack(t, "list", base+".001"); r.stdout != "zero\n" {
		t.Errorf("list: %q, want \"zero\\n\"", r.stdout)
	}
	dst := filepath.Join(t.TempDir(), "dst")
	mustArcpack(t, "extract", base+".001", "-o", dst)
	st, err := os.Stat(filepath.Join(dst, "zero"))
	if err != nil || st.Size() != 0 || st.Mode().Perm() != 0o640 {
		t.Fatalf("extracted zero: %v, %v", st, err)
	}
}

// TestFileLargerThanFrameAndVolume uses incompressible data, so the file's
// stored bytes really span several volumes.
func TestFileLargerThanFrameAndVolume(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "src")
	os.Mkdir(dir, 0o755)
	data := make([]byte, 1<<20+12345)
	r := rand.New(rand.NewPCG(1, 2))
	fillRandom(r, data)
	os.WriteFile(filepath.Join(dir, "big"), data, 0o644)
	base := pack(t, small, dir)
	if n := len(volumes(t, base)); n < 4 {
		t.Fatalf("%d volumes for 1 MiB of random data at 256K each", n)
	}
	dst := filepath.Join(t.TempDir(), "dst")
	mustArcpack(t, "extract", base+".003", "-o", dst)
	got, err := os.ReadFile(filepath.Join(dst, "big"))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("big came back different (%d bytes, %v)", len(got), err)
	}
	if r := mustArcpack(t, "cat", base+".002", "big"); r.stdout != string(data) {
		t.Fatalf("cat big wrote %d bytes, not the file's %d", len(r.stdout), len(data))
	}
}

// TestMoreThan999Volumes: at the default 98 MiB a volume, a backup of
// 100 GB has more than 999 volumes, named NAME.1000 and on after NAME.999.
// Any of them opens the archive, for verify, extract and the mount alike,
// and one missing past 999 is named as missing.
func TestMoreThan999Volumes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "src")
	os.Mkdir(dir, 0o755)
	data := make([]byte, 4300<<10) // 1,075 volumes of 4 KiB
	r := rand.New(rand.NewPCG(9, 99))
	fillRandom(r, data)
	os.WriteFile(filepath.Join(dir, "r.bin"), data, 0o644)
	base := pack(t, []string{"--volume-size", "4K", "--progress", "never"}, dir)
	vols := volumes(t, base) // NAME.NNN: the first 999
	last, err := filepath.Glob(base + ".1[0-9][0-9][0-9]")
	if err != nil || len(vols) != 999 || len(last) < 2 {
		t.Fatalf("%d volumes named .NNN and %v named .NNNN, want 999 and more (%v)", len(vols), last, err)
	}
	mustArcpack(t, "verify", base+".1000")
	dst := filepath.Join(t.TempDir(), "dst")
	mustArcpack(t, "extract", base+".1001", "-o", dst, "--progress", "never")
	if got, err := os.ReadFile(filepath.Join(dst, "r.bin")); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("extracted r.bin: %d bytes, %v; not the source's", len(got), err)
	}
	mnt := mountPoint(t)
	startMount(t, base+".1000", mnt, mnt)
	if got, err := os.ReadFile(filepath.Join(mnt, "r.bin")); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("r.bin through the mount: %d bytes, %v; not the source's", len(got), err)
	}
	if err := os.Remove(base + ".1001"); err != nil {
		t.Fatal(err)
	}
	res := arcpack(t, "verify", base+".1000")
	if missing := "missing volume: " + base + ".1001"; res.code != 1 || !strings.Contains(res.stdout+res.stderr, missing) {
		t.Errorf("verify without volume 1001: exit %d, want 1 and %q\n%v", res.code, missing, res)
	}
}

// TestFileBeyond4GiBReadsBackAtEveryOffset: a sparse file of more than 4
// GiB (a disk image, say), with data at its start, across the 4 GiB mark
// and at its end, reads back the same on either side of 2^32, through the
// mount and from an extracted copy: no size or offset is cut to 32 bits on
// the way (the index, the extents, the holes, FUSE's reads, extraction's
// writes). Its 3 MiB of data keep it quick where the filesystem reports
// the holes (SEEK_DATA), which arcpack then skips.
func TestFileBeyond4GiBReadsBackAtEveryOffset(t *testing.T) {
	const size = 1<<32 + 3<<20 + 17
	dir := filepath.Join(t.TempDir(), "src")
	os.Mkdir(dir, 0o755)
	name := filepath.Join(dir, "disk.img")
	f, err := os.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		t.Skip("no sparse file of 4 GiB here:", err)
	}
	r := rand.New(rand.NewPCG(4, 32))
	for _, at := range []int64{0, 1<<32 - 512<<10, size - 1<<20} {
		data := make([]byte, 1<<20)
		fillRandom(r, data)
		if _, err := f.WriteAt(data, at); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	base := pack(t, []string{"--progress", "never"}, dir)
	mustArcpack(t, "verify", base+".001")
	dst := filepath.Join(t.TempDir(), "dst")
	mustArcpack(t, "extract", base+".001", "-o", dst, "--progress", "never")
	mnt := mountArchive(t, base)

	want, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer want.Close()
	offsets := []int64{
		0, 1<<20 - 5, 1 << 20, 1 << 31, // data, into the first hole
		1<<32 - 512<<10 - 3, 1<<32 - 1, 1 << 32, 1<<32 + 1, 1<<32 + 512<<10 - 2, 1<<32 + 512<<10, // around 2^32
		size - 1<<20 - 1, size - 100, size - 1, // the end
	}
	for _, path := range []string{filepath.Join(mnt, "disk.img"), filepath.Join(dst, "disk.img")} {
		got, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		if st, err := got.Stat(); err != nil {
			t.Errorf("%s: %v", path, err)
		} else if st.Size() != size {
			t.Errorf("%s: size %d, want %d", path, st.Size(), int64(size))
		}
		for _, off := range offsets {
			a, b := make([]byte, 8192), make([]byte, 8192)
			na, _ := want.ReadAt(a, off)
			nb, err := got.ReadAt(b, off)
			if nb != na || !bytes.Equal(a[:na], b[:nb]) {
				t.Errorf("%s at %d: %d bytes (%v), not the source's %d, or other bytes", path, off, nb, err, na)
			}
		}
		got.Close()
	}
}

// A tree deeper than PATH_MAX (4096 bytes of path) goes through create,
// extract and the mount whole: every entry, content, mode, mtime, link
// target, hardlink and xattr, at every level.
func TestTreeDeeperThanPathMaxRoundTrips(t *testing.T) {
	src := filepath.Join(t.TempDir(), "src")
	if _, err := testtree.GenerateDeep(src); err != nil {
		t.Fatal(err)
	}
	want, err := testtree.ReadDeep(src)
	if err != nil {
		t.Fatal(err)
	}
	base := pack(t, small, src) // a file left out would exit 1
	dst := filepath.Join(t.TempDir(), "dst")
	mustArcpack(t, "extract", base+".001", "-o", dst)
	check := func(what, dir string) {
		t.Helper()
		got, err := testtree.ReadDeep(dir)
		if err != nil {
			t.Fatalf("%s: %s", what, testtree.ShortPath(err.Error()))
		}
		if err := testtree.DiffDeep(want, got).Err(); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	check("extracted", dst)
	check("mounted", mountArchive(t, base))
	// Under a low limit of open files: each worker's chain of directories
	// held open is sized to it (a tree 2,000 deep took more than 160
	// descriptors with 8 workers).
	low := filepath.Join(t.TempDir(), "low")
	r := runBin(t, runOpts{}, "/bin/sh", "-c", "ulimit -n 48 && exec \"$0\" \"$@\"", arcpackBin, "extract", base+".001", "-o", low, "--workers", "8")
	if r.code != 0 {
		t.Fatalf("extract under 48 open files: %v", r)
	}
	check("extracted under 48 open files", low)
}

// dupTree makes three identical files with identical metadata (which a
// hardlink can stand for) and one different file.
func dupTree(t *testing.T) string {
	dir := filepath.Join(t.TempDir(), "src")
	os.MkdirAll(filepath.Join(dir, "sub"), 0o755)
	same := bytes.Repeat([]byte("the same bytes\n"), 5000)
	when := time.Date(2020, 1, 2, 3, 4, 5, 6, time.UTC)
	for _, p := range []string{"a", "b", "sub/c"} {
		os.WriteFile(filepath.Join(dir, p), same, 0o644)
		os.Chtimes(filepath.Join(dir, p), when, when)
	}
	os.WriteFile(filepath.Join(dir, "other"), []byte("other\n"), 0o644)
	return dir
}

func inode(t *testing.T, p string) uint64 {
	t.Helper()
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return st.Sys().(*syscall.Stat_t).Ino
}

func TestDedupLinksCopyRestoresSeparateFiles(t *testing.T) {
	src := dupTree(t)
	base := pack(t, nil, src)
	dst := filepath.Join(t.TempDir(), "dst")
	mustArcpack(t, "extract", base+".001", "-o", dst, "--dedup-links", "copy")
	compare(t, src, dst, testtree.CompareOptions{})
	if inode(t, filepath.Join(dst, "a")) == inode(t, filepath.Join(dst, "b")) {
		t.Error("--dedup-links copy hardlinked a and b")
	}
}

func TestDedupLinksHardlinkLinksDuplicates(t *testing.T) {
	src := dupTree(t)
	base := pack(t, nil, src)
	dst := filepath.Join(t.TempDir(), "dst")
	mustArcpack(t, "extract", base+".001", "-o", dst, "--dedup-links", "hardlink")
	compare(t, src, dst, testtree.CompareOptions{DedupLinks: true, IgnoreRoot: true})
	a := inode(t, filepath.Join(dst, "a"))
	if inode(t, filepath.Join(dst, "b")) != a || inode(t, filepath.Join(dst, "sub/c")) != a {
		t.Error("--dedup-links hardlink left duplicates as separate files")
	}
	if inode(t, filepath.Join(dst, "other")) == a {
		t.Error("a different file was linked to the duplicates")
	}
}

func TestExtractSelectedPaths(t *testing.T) {
	src := genTree(t, testtree.Options{Seed: 4, Files: 10})
	base := pack(t, small, src)
	dst := filepath.Join(t.TempDir(), "dst")
	mustArcpack(t, "extract", base+".001", "-o", dst, "links", "files/sub/file-001.dat")
	for _, p := range []string{"links/hard1", "links/dangling", "files/sub/file-001.dat"} {
		if _, err := os.Lstat(filepath.Join(dst, p)); err != nil {
			t.Errorf("%s not extracted: %v", p, err)
		}
	}
	for _, p := range []string{"names", "files/file-000.dat", "deep"} {
		if _, err := os.Lstat(filepath.Join(dst, p)); err == nil {
			t.Errorf("%s extracted although not asked for", p)
		}
	}
}

// TestListJSONIsStable checks the documented fields of list --json and info --json.
func TestListJSONIsStable(t *testing.T) {
	src := genTree(t, testtree.Options{Seed: 5, Files: 5})
	base := pack(t, nil, src)
	r := mustArcpack(t, "list", base+".001", "--json")
	seen := map[string]map[string]any{}
	for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		var e map[string]any
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		seen[e["path"].(string)] = e
	}
	for path, want := range map[string]map[string]any{
		"links/dangling":    {"type": "symlink", "target": "does/not/exist"},
		"modes/setuid":      {"type": "file", "mode": "4755"},
		"links/other/hard2": {"type": "file", "link_to": "links/hard1", "nlink": 4.0},
		"empty-dir":         {"type": "dir"},
		"special/fifo":      {"type": "fifo", "mode": "0640"},
	} {
		e, ok := seen[path]
		if !ok {
			t.Errorf("%s not listed", path)
			continue
		}
		for k, v := range want {
			if e[k] != v {
				t.Errorf("%s: %s = %v, want %v", path, k, e[k], v)
			}
		}
		for _, k := range []string{"uid", "gid", "size", "mtime", "mtime_ns", "inode"} {
			if _, ok := e[k]; !ok {
				t.Errorf("%s: no %q field", path, k)
			}
		}
	}
	var nonUTF8 bool
	for _, e := range seen {
		if _, ok := e["path_base64"]; ok {
			nonUTF8 = true
		}
	}
	if !nonUTF8 {
		t.Error("no entry carries path_base64 although the tree has non-UTF-8 names")
	}
	var info map[string]any
	if err := json.Unmarshal([]byte(mustArcpack(t, "info", base+".001", "--json").stdout), &info); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"id", "volumes", "frames", "blocks", "codecs", "params", "stats", "ratio", "archive_bytes"} {
		if _, ok := info[k]; !ok {
			t.Errorf("info --json lacks %q", k)
		}
	}
}

// Names that are not valid UTF-8 keep one spelling across list --json: a
// hardlink's link_to is the path of the entry it names, and a symlink's
// target has its exact bytes beside it (target_base64). mtime always has
// nine digits of nanoseconds. Paths given with "." and "//" list what the
// clean path does; a cat whose output fails is not damage.
func TestListAndCatSpellPathsOneWay(t *testing.T) {
	src := t.TempDir()
	bad := filepath.Join(src, "bad\xffname")
	os.WriteFile(bad, []byte("x"), 0o644)
	os.Mkdir(filepath.Join(src, "d"), 0o755)
	os.WriteFile(filepath.Join(src, "d", "a"), []byte("hello"), 0o644)
	os.Link(bad, filepath.Join(src, "d", "hl"))
	os.Symlink("tgt\xfe", filepath.Join(src, "sym"))
	os.Chtimes(filepath.Join(src, "d", "a"), time.Unix(1577836800, 0), time.Unix(1577836800, 0))
	base := pack(t, nil, src)
	byPath := map[string]map[string]any{}
	for _, line := range strings.Split(strings.TrimSpace(mustArcpack(t, "list", base+".001", "--json").stdout), "\n") {
		var e map[string]any
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		byPath[e["path"].(string)] = e
	}
	hl := byPath["d/hl"]
	if hl == nil || byPath[fmt.Sprint(hl["link_to"])] == nil {
		t.Errorf("d/hl: link_to %v names no entry's path", hl["link_to"])
	}
	// The escaped spelling alone could be a valid name's too: the exact
	// bytes come beside it, as beside path.
	if want := base64.StdEncoding.EncodeToString([]byte("bad\xffname")); hl == nil || hl["link_to_base64"] != want {
		t.Errorf("d/hl: %v, want link_to_base64 %s", hl, want)
	}
	if sym := byPath["sym"]; sym == nil || sym["target_base64"] != base64.StdEncoding.EncodeToString([]byte("tgt\xfe")) {
		t.Errorf("sym: %v, want target_base64 of its exact target", sym)
	}
	if a := byPath["d/a"]; a == nil || a["mtime"] != "2020-01-01T00:00:00.000000000Z" {
		t.Errorf("d/a: mtime %v, want nine digits of nanoseconds", a["mtime"])
	}
	for _, p := range []string{"d", "./d", "d/", ".//d/."} {
		if got := mustArcpack(t, "list", base+".001", p).stdout; got != "d\nd/a\nd/hl\n" {
			t.Errorf("list %q: %q", p, got)
		}
	}
	if got := mustArcpack(t, "list", base+".001", ".").stdout; strings.Count(got, "\n") != 5 {
		t.Errorf("list .: %q, want all 5 entries", got)
	}
	full, err := os.OpenFile("/dev/full", os.O_WRONLY, 0)
	if err != nil {
		t.Skip("no /dev/full")
	}
	defer full.Close()
	// What a command answers on stdout is its result: written to a full
	// disk, the command fails (exit 2) with the write error.
	for _, args := range [][]string{
		{"cat", base + ".001", "d/a"},
		{"verify", base + ".001"},
	} {
		cmd := exec.Command(arcpackBin, args...)
		cmd.Stdout = full
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		err = cmd.Run()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 2 || strings.Contains(stderr.String(), "repair") || !strings.Contains(stderr.String(), "no space left") {
			t.Errorf("%s to a full disk: %v, %s; want exit 2 and the write error, no repair hint", args[0], err, stderr.String())
		}
	}
	// Where the answer is the files or the archive, the summary is a
	// report: one that cannot be written is warned about, and the command
	// succeeds with its work done.
	dst := filepath.Join(t.TempDir(), "dst")
	for _, args := range [][]string{
		{"extract", base + ".001", "-o", dst, "--progress", "never"},
		{"create", dst, "-o", filepath.Join(t.TempDir(), "again"), "--progress", "never"},
	} {
		cmd := exec.Command(arcpackBin, args...)
		cmd.Stdout = full
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil || !strings.Contains(stderr.String(), "arcpack: warning: "+args[0]+" ") || !strings.Contains(stderr.String(), "writing the summary: write /dev/stdout: no space left") {
			t.Errorf("%s with its summary to a full disk: %v, %s; want exit 0 and a warning", args[0], err, stderr.String())
		}
	}
	if _, err := os.Stat(filepath.Join(dst, "d", "a")); err != nil {
		t.Errorf("extract did not extract: %v", err)
	}
	// info counts the paths by type, adding up to them, and the names
	// beyond one per inode (d/hl).
	if out, want := mustArcpack(t, "info", base+".001").stdout, "6 paths: the root, 3 files, 1 dir, 1 symlink, 0 others; 5 inodes (and 1 more names of hardlinked ones)"; !strings.Contains(out, want) {
		t.Errorf("info:\n%s\nlacks %q", out, want)
	}
}

func TestListLongShowsModesOwnersAndLinks(t *testing.T) {
	src := genTree(t, testtree.Options{Seed: 6, Files: 5})
	base := pack(t, nil, src)
	r := mustArcpack(t, "list", "-l", base+".001", "links", "modes/setuid", "names")
	for _, want := range []string{
		" links/dangling -> does/not/exist\n",
		" links/other/hard2 link to links/hard1\n",
		" names/new\\nline\n",
		" names/non-utf8-\\377\\376\\200\n",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("list -l lacks %q:\n%s", want, r.stdout)
		}
	}
	if !strings.Contains(r.stdout, "-rwsr-xr-x ") {
		t.Errorf("list -l shows no setuid mode string:\n%s", r.stdout)
	}
	if os.Geteuid() == 0 && !strings.Contains(r.stdout, " 4242/4343 ") {
		t.Errorf("list -l shows no numeric owner 4242/4343 for modes/setuid:\n%s", r.stdout)
	}
	if strings.Contains(r.stdout, " files/") {
		t.Errorf("list with paths listed others:\n%s", r.stdout)
	}
}

// docField is one row of a field table in docs/CLI.md.
type docField struct {
	name, typ string
	optional  bool
}

// documentedFields reads the field table under "### HEADING" in
// docs/CLI.md: the stable interface the --json outputs promise.
func documentedFields(t *testing.T, heading string) []docField {
	t.Helper()
	b, err := os.ReadFile("../docs/CLI.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(b), "\n### "+heading+"\n")
	if !ok {
		t.Fatalf("docs/CLI.md has no section %q", heading)
	}
	var out []docField
	row := regexp.MustCompile("^\\| `([^`]+)` \\| ([^|]+) \\|")
	inTable := false
	for _, l := range strings.Split(rest, "\n") {
		if m := row.FindStringSubmatch(l); m != nil {
			inTable = true
			out = append(out, docField{m[1], strings.TrimSpace(m[2]), strings.Contains(m[2], "optional")})
		} else if inTable && !strings.HasPrefix(l, "|") {
			break
		}
	}
	if len(out) == 0 {
		t.Fatalf("docs/CLI.md %q: no field table", heading)
	}
	return out
}

// fieldValues finds a documented field in a decoded JSON value: "a.b" is
// the key b of the object a, "a[].b" the key b of every element of the
// list a, "a.*.b" the key b of every value of the object a. found is false
// when an object that should hold the field's last key lacks it (vals then
// holds the values of those that have it: an optional field of a list's
// elements may be in some); a missing parent is not this field's business
// (its own row checks it).
func fieldValues(v any, path []string) (vals []any, found bool) {
	if len(path) == 0 {
		return []any{v}, true
	}
	obj, _ := v.(map[string]any)
	tok, last := path[0], len(path) == 1
	if tok == "*" {
		found = true
		for _, e := range obj {
			vs, ok := fieldValues(e, path[1:])
			found = found && ok
			vals = append(vals, vs...)
		}
		return vals, found
	}
	key, isList := strings.CutSuffix(tok, "[]")
	x, ok := obj[key]
	if !ok {
		return nil, !last
	}
	if !isList {
		return fieldValues(x, path[1:])
	}
	list, _ := x.([]any)
	found = true
	for _, e := range list {
		vs, ok := fieldValues(e, path[1:])
		found = found && ok
		vals = append(vals, vs...)
	}
	return vals, found
}

// typeMatches checks a JSON value against the documented type.
func typeMatches(typ string, v any) bool {
	switch {
	case strings.HasPrefix(typ, "string"):
		_, ok := v.(string)
		return ok
	case strings.HasPrefix(typ, "bool"):
		_, ok := v.(bool)
		return ok
	case strings.HasPrefix(typ, "number"):
		f, ok := v.(float64)
		return ok && (strings.Contains(typ, "fraction") || f == float64(int64(f)))
	case strings.HasPrefix(typ, "list"):
		_, ok := v.([]any)
		return ok
	case strings.HasPrefix(typ, "object"):
		_, ok := v.(map[string]any)
		return ok
	}
	return false
}

// checkDocumented checks objects against a documented table: every field
// that is not optional is in every object with its type; an optional
// field, where present, has its type, and is present in at least one
// object unless excused.
func checkDocumented(t *testing.T, what string, fields []docField, objs []map[string]any, excused map[string]bool) {
	t.Helper()
	for _, f := range fields {
		seen := false
		for i, o := range objs {
			vals, ok := fieldValues(o, strings.Split(f.name, "."))
			if !ok && !f.optional {
				t.Errorf("%s: object %d (of %d) lacks the documented field %q", what, i, len(objs), f.name)
				break
			}
			if !ok && len(vals) == 0 {
				continue
			}
			seen = true
			for _, v := range vals {
				if !typeMatches(f.typ, v) {
					t.Errorf("%s: %q = %#v, documented as %s", what, f.name, v, f.typ)
				}
			}
		}
		if !seen && f.optional && !excused[f.name] {
			t.Errorf("%s: the optional field %q appears nowhere (the test archive should show it)", what, f.name)
		}
	}
	// Fields the outputs have must be documented too.
	doc := map[string]bool{}
	for _, f := range fields {
		doc[strings.TrimSuffix(strings.SplitN(f.name, ".", 2)[0], "[]")] = true
	}
	for _, o := range objs {
		for k := range o {
			if !doc[k] {
				t.Errorf("%s: field %q is not documented in docs/CLI.md", what, k)
			}
		}
	}
}

func decodeLines(t *testing.T, out string) []map[string]any {
	t.Helper()
	var objs []map[string]any
	dec := json.NewDecoder(strings.NewReader(out))
	for dec.More() {
		var o map[string]any
		if err := dec.Decode(&o); err != nil {
			t.Fatalf("%v in:\n%s", err, out)
		}
		objs = append(objs, o)
	}
	return objs
}

// TestJSONOutputsMatchTheirDocumentation holds list, info and verify
// --json to the field tables of docs/CLI.md, on an archive with every
// kind of entry, intact and then damaged.
func TestJSONOutputsMatchTheirDocumentation(t *testing.T) {
	src := genTree(t, testtree.Options{Seed: 7, LargeSize: 1 << 20})
	// A hardlink whose first path is not valid UTF-8 (link_to_base64).
	if err := os.WriteFile(filepath.Join(src, "hl\xff"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(filepath.Join(src, "hl\xff"), filepath.Join(src, "hl\xff-2")); err != nil {
		t.Fatal(err)
	}
	base := pack(t, append([]string{"--recovery", "10%"}, small...), src)
	vols := volumes(t, base)
	if len(vols) < 3 {
		t.Fatalf("want 3 or more volumes, got %v", vols)
	}
	excused := map[string]bool{}
	if os.Geteuid() != 0 { // device nodes need root to be made
		excused["dev_major"], excused["dev_minor"] = true, true
	}
	checkDocumented(t, "list --json", documentedFields(t, "list --json"), decodeLines(t, mustArcpack(t, "list", base+".001", "--json").stdout), excused)
	info := decodeLines(t, mustArcpack(t, "info", base+".001", "--json").stdout)

	intact := decodeLines(t, mustArcpack(t, "verify", base+".001", "--json", "--progress", "never").stdout)
	flipByte(t, vols[0], format.VolumeHeaderSize+1000) // a block
	os.Remove(vols[1])
	if len(vols) < 4 {
		t.Fatalf("want four volumes or more, have %d", len(vols))
	}
	if f, err := os.OpenFile(vols[2], os.O_WRONLY|os.O_APPEND, 0); err == nil { // bytes past its end
		f.WriteString("extra")
		f.Close()
	}
	// info of the archive with a volume missing (volumes[].missing) and
	// one damaged (volumes[].damaged).
	info = append(info, decodeLines(t, mustArcpack(t, "info", base+".001", "--json").stdout)...)
	// ... and with recovery volumes it cannot use (recovery.error).
	recs, _ := filepath.Glob(base + ".r*")
	putBack := keepFiles(t, recs)
	for _, p := range recs {
		if err := os.WriteFile(p, make([]byte, 1000), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	info = append(info, decodeLines(t, mustArcpack(t, "info", base+".001", "--json").stdout)...)
	putBack()
	checkDocumented(t, "info --json", documentedFields(t, "info --json"), info, nil)
	r := arcpack(t, "verify", base+".001", "--json", "--progress", "never")
	if r.code != 1 {
		t.Fatalf("verify --json of a damaged archive: %v", r)
	}
	damaged := decodeLines(t, r.stdout)
	if len(intact) != 1 || len(damaged) != 1 {
		t.Fatalf("verify --json wrote %d and %d objects, want one each", len(intact), len(damaged))
	}
	// An index that does not read back stops verify before its report:
	// the error line says why, and no JSON object carries index_error.
	checkDocumented(t, "verify --json", documentedFields(t, "verify --json"), append(intact, damaged...),
		map[string]bool{"index_error": true, "recovery.error": true})
	if _, ok := intact[0]["recovery"]; !ok {
		t.Errorf("verify --json of an archive with recovery volumes has no recovery object:\n%v", intact[0])
	}
	if intact[0]["intact"] != true || damaged[0]["intact"] != false {
		t.Errorf("intact: %v then %v, want true then false", intact[0]["intact"], damaged[0]["intact"])
	}
	if d, _ := damaged[0]["missing_volumes"].([]any); len(d) != 1 || d[0] != vols[1] {
		t.Errorf("missing_volumes = %v, want [%s]", damaged[0]["missing_volumes"], vols[1])
	}
	if d, _ := damaged[0]["damaged_blocks"].([]any); len(d) < 2 {
		t.Errorf("damaged_blocks = %v, want the flipped block and those in the missing volume", damaged[0]["damaged_blocks"])
	}
}

// TestCreateLeavesOutWhatTheExcludePatternsMatch packs the awkward tree
// with --exclude, --exclude-from and --exclude-caches, extracts it, and
// checks it against what rsync copies with the same patterns (which
// rsync reads the same way: a name at any depth, '/' anchors, a trailing
// '/' for directories).
func TestCreateLeavesOutWhatTheExcludePatternsMatch(t *testing.T) {
	src := genTree(t, testtree.Options{Seed: 9, Files: 12})
	cache := filepath.Join(src, "cachedir")
	if err := os.MkdirAll(filepath.Join(cache, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{
		"CACHEDIR.TAG": "Signature: 8a477f597d28d172789f06886806bc55\n",
		"blob":         "cached",
		"sub/more":     "cached too",
	} {
		if err := os.WriteFile(filepath.Join(cache, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	rules := filepath.Join(t.TempDir(), "rules")
	if err := os.WriteFile(rules, []byte("# what a build leaves\n\nnames\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "archive")
	r := mustArcpack(t, append([]string{"create", src, "-o", out,
		"--exclude", "/deep", "--exclude", "file-00[0-4].dat", "--exclude", "sub/",
		"--exclude-from", rules, "--exclude-caches"}, small...)...)
	if !regexp.MustCompile(`, \d+ excluded\n$`).MatchString(r.stdout) {
		t.Errorf("the summary does not count what was excluded: %q", r.stdout)
	}
	info := mustArcpack(t, "info", out+".001").stdout
	for _, want := range []string{"left out:", " path(s) excluded (patterns, tags), 0 skipped", `param exclude:`, `/deep\nfile-00[0-4].dat\nsub/\nnames`, "param exclude-caches:"} {
		if !strings.Contains(info, want) {
			t.Errorf("info lacks %q:\n%s", want, info)
		}
	}
	dst := filepath.Join(t.TempDir(), "dst")
	mustArcpack(t, "extract", out+".001", "-o", dst, "--progress", "never")

	rsync, err := exec.LookPath("rsync")
	if err != nil {
		t.Skip("rsync not installed")
	}
	want := filepath.Join(t.TempDir(), "want")
	cmd := exec.Command(rsync, "-a", "-H", "-X", "-A",
		"--exclude=/deep", "--exclude=file-00[0-4].dat", "--exclude=sub/", "--exclude=names",
		"--include=/cachedir/CACHEDIR.TAG", "--exclude=/cachedir/*", src+"/", want+"/")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("rsync: %v\n%s", err, b)
	}
	rsyncSame(t, want, dst)
	rsyncSame(t, dst, want) // and nothing more: rsync does not list what only its destination has
	for _, gone := range []string{"deep", "names", "files/sub", "cachedir/blob", "cachedir/sub"} {
		if _, err := os.Lstat(filepath.Join(dst, gone)); err == nil {
			t.Errorf("%s was extracted, but the patterns leave it out", gone)
		}
	}
	if _, err := os.Lstat(filepath.Join(dst, "cachedir/CACHEDIR.TAG")); err != nil {
		t.Errorf("the cache tag itself was not kept: %v", err)
	}

	// The same patterns at extract, out of an archive of everything, leave
	// out the same (the cache's contents by patterns here, one taken back).
	all := pack(t, small, src)
	dst2 := filepath.Join(t.TempDir(), "dst2")
	r = mustArcpack(t, "extract", all+".001", "-o", dst2, "--progress", "never",
		"--exclude", "/deep", "--exclude", "file-00[0-4].dat", "--exclude", "sub/",
		"--exclude-from", rules, "--exclude", "/cachedir/*", "--exclude", "!/cachedir/CACHEDIR.TAG")
	if !regexp.MustCompile(`, \d+ excluded\n$`).MatchString(r.stdout) {
		t.Errorf("the extract summary does not count what was excluded: %q", r.stdout)
	}
	rsyncSame(t, want, dst2)
	rsyncSame(t, dst2, want)
}

func TestBadExcludePatternsAreUsageErrors(t *testing.T) {
	src := t.TempDir()
	rules := filepath.Join(t.TempDir(), "rules")
	if err := os.WriteFile(rules, []byte("ok\n[bad\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "a")
	wantFail(t, arcpack(t, "create", src, "-o", out, "--exclude", "a[b"), 2, `--exclude: exclude pattern "a[b": an unclosed '['`)
	wantFail(t, arcpack(t, "create", src, "-o", out, "--exclude-from", rules), 2, rules+`:2: exclude pattern "[bad"`)
	wantFail(t, arcpack(t, "create", src, "-o", out, "--exclude-from", rules+".missing"), 2, "--exclude-from", "no such file")
	wantFail(t, runBin(t, runOpts{}, "/bin/sh", "-c", "echo | "+arcpackBin+" create - -o "+out+" --exclude-caches"), 2, "--exclude-caches", "tar stream")
	wantFail(t, arcpack(t, "create", src, "-o", out, "--exclude", src+"/.cache"), 2, "starts with the path of the source", `write "/.cache"`)
	wantFail(t, arcpack(t, "create", src, "-o", out, "--exclude-if-present", "a/.nobackup"), 2, "--exclude-if-present", "no '/'")
	wantFail(t, runBin(t, runOpts{}, "/bin/sh", "-c", "echo | "+arcpackBin+" create - -o "+out+" --exclude-if-present .nobackup"), 2, "--exclude-if-present", "tar stream")
	good := pack(t, small, src)
	wantFail(t, arcpack(t, "extract", good+".001", "-o", filepath.Join(t.TempDir(), "x"), "--exclude-from", rules), 2, "extract: --exclude-from", rules+`:2: exclude pattern "[bad"`)
	if _, err := os.Stat(out + ".001"); err == nil {
		t.Error("a refused create wrote an archive")
	}
}

// Patterns apply in the order given, --exclude and --exclude-from mixed:
// a pattern after a file's comes after them, as with tar and rsync.
func TestExcludePatternsApplyInTheOrderGiven(t *testing.T) {
	src := t.TempDir()
	for _, name := range []string{"a.log", "keep.log", "x"} {
		if err := os.WriteFile(filepath.Join(src, name), []byte(name), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	rules := filepath.Join(t.TempDir(), "rules")
	if err := os.WriteFile(rules, []byte("*.log\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--exclude-from", rules, "--exclude", "!keep.log"}, "keep.log\nx\n"},
		{[]string{"--exclude", "!keep.log", "--exclude-from", rules}, "x\n"},
	} {
		out := filepath.Join(t.TempDir(), "a")
		mustArcpack(t, append([]string{"create", src, "-o", out, "--progress", "never"}, tt.args...)...)
		if got := mustArcpack(t, "list", out+".001").stdout; got != tt.want {
			t.Errorf("%q: archived\n%swant\n%s", tt.args, got, tt.want)
		}
		dst := filepath.Join(t.TempDir(), "x")
		mustArcpack(t, append([]string{"extract", pack(t, small, src) + ".001", "-o", dst}, tt.args...)...)
		var got []string
		ents, _ := os.ReadDir(dst)
		for _, e := range ents {
			got = append(got, e.Name()+"\n")
		}
		if strings.Join(got, "") != tt.want {
			t.Errorf("%q: extracted %q, want %q", tt.args, got, tt.want)
		}
	}
}
