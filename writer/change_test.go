package writer

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"arc/format"

	"golang.org/x/sys/unix"
)

// A source file that changes while it is packed is read again; one that
// keeps changing is stored as its second read got it, with a warning; either
// way the archived size matches the archived bytes.
func TestFileChangingWhileReadIsReadAgain(t *testing.T) {
	v1 := randBytes(1, 150<<10)
	v2 := randBytes(2, 170<<10)
	v3 := randBytes(3, 120<<10)
	for _, tc := range []struct {
		name     string
		streamed bool           // larger than what is read whole
		rewrite  map[int][]byte // attempt → content written after that read
		want     []byte         // content archived
		warn     bool
	}{
		{"whole, changes once", false, map[int][]byte{0: v2}, v2, false},
		{"whole, changes twice", false, map[int][]byte{0: v2, 1: v3}, v2, true},
		{"whole, stable", false, nil, v1, false},
		{"streamed, changes once", true, map[int][]byte{0: v2}, v2, false},
		{"streamed, changes twice", true, map[int][]byte{0: v2, 1: v3}, v2, true},
		{"streamed, stable", true, nil, v1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := t.TempDir()
			path := filepath.Join(src, "log")
			writeTree(t, src, map[string][]byte{"log": v1, "other": []byte("other")})
			o, warnedOf := changeOptions(tc.streamed)
			o.readHook = func(p string, attempt int) {
				if c, ok := tc.rewrite[attempt]; ok && p == path {
					if err := os.WriteFile(p, c, 0o644); err != nil {
						t.Error(err)
					}
				}
			}
			res, err := Create(context.Background(), filepath.Join(t.TempDir(), "a"), []string{src}, o)
			if err != nil {
				t.Fatal(err)
			}
			a := readBack(t, res.Volumes, 0)
			got := a.content["log"]
			if !bytes.Equal(got, tc.want) {
				t.Fatalf("archived %d bytes, not the expected version of %d bytes", len(got), len(tc.want))
			}
			if size := a.idx.Inodes.Size[a.inode["log"]]; size != uint64(len(got)) {
				t.Fatalf("archived size %d for %d bytes of content", size, len(got))
			}
			warnings := warnedOf()
			warned := len(warnings) == 1 && strings.Contains(warnings[0], path) && strings.Contains(warnings[0], "changed while being read")
			if warned != tc.warn || (!tc.warn && len(warnings) > 0) {
				t.Fatalf("warnings %q, want a warning: %v", warnings, tc.warn)
			}
			if res.InputBytes != int64(len(tc.want))+5 {
				t.Fatalf("input bytes %d, want %d (the kept copy only)", res.InputBytes, len(tc.want)+5)
			}
		})
	}
}

// A large file that is hashed as a possible duplicate and changes before it
// is stored must not be registered under the hash of its old content: a
// later file with that content would then point at the new bytes.
func TestFileChangedAfterHashingIsNotTakenForACopy(t *testing.T) {
	old := randBytes(4, 200<<10)
	changed := randBytes(5, 200<<10)
	src := t.TempDir()
	writeTree(t, src, map[string][]byte{"b": old, "c": old})
	o := small()
	o.wholeMax = 64 << 10
	var once sync.Once
	o.readHook = func(p string, attempt int) {
		if attempt == -1 && p == filepath.Join(src, "b") {
			once.Do(func() {
				if err := os.WriteFile(p, changed, 0o644); err != nil {
					t.Error(err)
				}
			})
		}
	}
	res, err := Create(context.Background(), filepath.Join(t.TempDir(), "a"), []string{src}, o)
	if err != nil {
		t.Fatal(err)
	}
	a := readBack(t, res.Volumes, 0)
	if !bytes.Equal(a.content["c"], old) {
		t.Fatal("c does not hold its own content")
	}
	if !bytes.Equal(a.content["b"], changed) && !bytes.Equal(a.content["b"], old) {
		t.Fatal("b holds neither version")
	}
}

// What a path names when it is read must be what the scan listed there. A
// directory swapped for a symlink to elsewhere (/etc, say) after the scan
// is not read through, and a file swapped for a FIFO is not waited on:
// both are skipped with a warning, and nothing from outside the source
// gets into the archive.
func TestSwapsAfterTheScanAreNotReadThrough(t *testing.T) {
	outside := t.TempDir()
	writeTree(t, outside, map[string][]byte{"shadow": []byte("SECRET"), "big": bytes.Repeat([]byte("SECRET"), 30000)})
	for _, streamed := range []bool{false, true} {
		src := t.TempDir()
		writeTree(t, src, map[string][]byte{"z/shadow": []byte("mine"), "z/big": randBytes(4, 180000), "fifo": []byte("a file for now"), "ok": []byte("ok")})
		o, warned := changeOptions(streamed)
		o.scanHook = func() {
			swapForSymlink(t, src, "z", "zz", outside)
			os.Remove(filepath.Join(src, "fifo"))
			if err := syscall.Mkfifo(filepath.Join(src, "fifo"), 0o644); err != nil {
				t.Error(err)
			}
		}
		done := make(chan struct{})
		var res *Result
		var err error
		go func() {
			res, err = Create(context.Background(), filepath.Join(t.TempDir(), "a"), []string{src}, o)
			close(done)
		}()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Fatal("Create hangs on a FIFO swapped in after the scan")
		}
		if err != nil {
			t.Fatal(err)
		}
		a := readBack(t, res.Volumes, 0)
		for p, c := range a.content {
			if bytes.Contains(c, []byte("SECRET")) {
				t.Errorf("streamed=%v: %s holds bytes from outside the source", streamed, p)
			}
		}
		if string(a.content["ok"]) != "ok" || res.Skipped != 3 {
			t.Errorf("streamed=%v: ok = %q, %d skipped (want the 3 swapped files)", streamed, a.content["ok"], res.Skipped)
		}
		if j := strings.Join(warned(), "\n"); strings.Count(j, "replaced since the scan listed it") != 3 {
			t.Errorf("streamed=%v: warnings:\n%s", streamed, j)
		}
	}
}

// A directory the scan reaches through a symlink swapped in for it is not
// listed, and one whose device and inode are not the listed ones neither.
func TestOpenListedRefusesWhatTheScanDidNotList(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string][]byte{"d/f": []byte("f"), "other/f": []byte("o")})
	var d, f unix.Stat_t
	if unix.Lstat(filepath.Join(dir, "d"), &d) != nil || unix.Lstat(filepath.Join(dir, "d/f"), &f) != nil {
		t.Fatal("lstat")
	}
	if fd, _, err := openListed(filepath.Join(dir, "d"), unix.O_DIRECTORY, d.Dev, d.Ino); err != nil {
		t.Fatalf("the listed directory: %v", err)
	} else {
		unix.Close(fd)
	}
	os.Rename(filepath.Join(dir, "d"), filepath.Join(dir, "was-d"))
	os.Symlink(filepath.Join(dir, "other"), filepath.Join(dir, "d"))
	if _, _, err := openListed(filepath.Join(dir, "d"), unix.O_DIRECTORY, d.Dev, d.Ino); err == nil {
		t.Error("a symlink in place of the listed directory was opened")
	}
	if _, _, err := openListed(filepath.Join(dir, "d/f"), 0, f.Dev, f.Ino); !errors.Is(err, errReplaced) {
		t.Errorf("a file reached through the swapped directory: %v, want errReplaced", err)
	}
	if _, _, err := openListed(filepath.Join(dir, "was-d"), 0, d.Dev, d.Ino); !errors.Is(err, errReplaced) {
		t.Errorf("a directory opened as a file: %v, want errReplaced", err)
	}
}

// An archive replaced with --force inside its own source is not packed
// into its replacement, nor are its recovery volumes.
func TestTheReplacedArchiveIsNotPacked(t *testing.T) {
	src := t.TempDir()
	writeTree(t, src, map[string][]byte{"f": randBytes(5, 5000)})
	out := filepath.Join(src, "self")
	if _, err := Create(context.Background(), out, []string{src}, small()); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(out+".r01", []byte("a recovery volume"), 0o644); err != nil {
		t.Fatal(err)
	}
	o := small()
	o.Force = true
	res, err := Create(context.Background(), out, []string{src}, o)
	if err != nil {
		t.Fatal(err)
	}
	a := readBack(t, res.Volumes, 0)
	if _, ok := a.content["self.001"]; ok || len(a.content) != 1 {
		t.Errorf("archive holds %d files, want f alone (not self.001 or self.r01)", len(a.content))
	}
}

// A time the archive cannot hold (nanoseconds since 1970 in 64 bits end in
// 2262) is kept as the nearest it holds, with a warning, from a tree and
// from a tar stream alike: it wrapped to 1815 before.
func TestTimesPastTheRangeAreClampedWithAWarning(t *testing.T) {
	far := time.Date(2400, 1, 1, 0, 0, 0, 0, time.UTC)
	src := t.TempDir()
	writeTree(t, src, map[string][]byte{"future": []byte("f")})
	ts := []unix.Timespec{{Sec: far.Unix()}, {Sec: far.Unix()}} // os.Chtimes goes through UnixNano, which overflows
	if err := unix.UtimesNano(filepath.Join(src, "future"), ts); err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	if unix.Stat(filepath.Join(src, "future"), &st) != nil || st.Mtim.Sec != far.Unix() {
		t.Skip("this filesystem cannot hold the year 2400")
	}
	o := small()
	var warnings []string
	o.Warn = func(err error) { warnings = append(warnings, err.Error()) }
	res, err := Create(context.Background(), filepath.Join(t.TempDir(), "a"), []string{src}, o)
	if err != nil {
		t.Fatal(err)
	}
	a := readBack(t, res.Volumes, 0)
	want := int64(math.MaxInt64)
	if got := a.idx.Inodes.Mtime[a.inode["future"]]; got != want {
		t.Errorf("tree: mtime %d, want %d (the last nanosecond held)", got, want)
	}
	stream := tarOf(t, tar.FormatPAX, []tarMember{{tar.Header{Name: "future", Typeflag: tar.TypeReg, ModTime: far, Mode: 0o644}, []byte("f")}})
	res, err = CreateFromTar(context.Background(), filepath.Join(t.TempDir(), "t"), bytes.NewReader(stream), o)
	if err != nil {
		t.Fatal(err)
	}
	a = readBack(t, res.Volumes, 0)
	if got := a.idx.Inodes.Mtime[a.inode["future"]]; got != want {
		t.Errorf("tar: mtime %d, want %d", got, want)
	}
	if j := strings.Join(warnings, "\n"); strings.Count(j, "outside what the archive holds") != 2 {
		t.Errorf("warnings:\n%s", j)
	}
}

// Every time an int64 of nanoseconds holds is kept to the nanosecond, up
// to both ends; one past an end becomes that end, the nearest time held
// (it was the last or first whole second, which the warning did not say).
func TestTimesAreKeptToTheEndsOfTheRange(t *testing.T) {
	for _, tc := range []struct {
		ts   unix.Timespec
		fits bool
		want int64
	}{
		{unix.Timespec{Sec: 0, Nsec: 1}, true, 1},
		{unix.Timespec{Sec: -1, Nsec: 999_999_999}, true, -1},
		{unix.Timespec{Sec: 9223372036, Nsec: 0}, true, 9223372036_000000000},
		{unix.Timespec{Sec: 9223372036, Nsec: 854775807}, true, math.MaxInt64},
		{unix.Timespec{Sec: 9223372036, Nsec: 854775808}, false, math.MaxInt64},
		{unix.Timespec{Sec: 9223372037, Nsec: 0}, false, math.MaxInt64},
		{unix.Timespec{Sec: -9223372036, Nsec: 0}, true, -9223372036_000000000},
		{unix.Timespec{Sec: -9223372037, Nsec: 145224192}, true, math.MinInt64},
		{unix.Timespec{Sec: -9223372037, Nsec: 145224191}, false, math.MinInt64},
		{unix.Timespec{Sec: math.MinInt64, Nsec: 0}, false, math.MinInt64},
		{unix.Timespec{Sec: math.MaxInt64, Nsec: 0}, false, math.MaxInt64},
	} {
		if got := nsFits(tc.ts); got != tc.fits {
			t.Errorf("nsFits(%d s %d ns) = %v, want %v", tc.ts.Sec, tc.ts.Nsec, got, tc.fits)
		}
		if got := nsOf(tc.ts); got != tc.want {
			t.Errorf("nsOf(%d s %d ns) = %d, want %d", tc.ts.Sec, tc.ts.Nsec, got, tc.want)
		}
	}
}

// Recovery volumes left without their archive count as an archive of that
// name: create refuses without Force (with it, arcpack removes them).
func TestStaleRecoveryVolumesAreTheArchives(t *testing.T) {
	src := t.TempDir()
	writeTree(t, src, map[string][]byte{"f": []byte("f")})
	out := filepath.Join(t.TempDir(), "a")
	if err := os.WriteFile(out+".r01", []byte("parity of something else"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Create(context.Background(), out, []string{src}, small()); err == nil || !strings.Contains(err.Error(), out+".r01 already exists") {
		t.Fatalf("create beside a stale recovery volume: %v", err)
	}
	o := small()
	o.Force = true
	if _, err := Create(context.Background(), out, []string{src}, o); err != nil {
		t.Fatal(err)
	}
}

// Two creates of one archive at once: the second is refused while the
// first holds the lock (each renaming its volumes into place could leave a
// set mixing both, both reporting success); once the first is done, the
// lock file is gone, and one left by a create that died locks nothing.
func TestConcurrentCreatesOfOneArchiveAreRefused(t *testing.T) {
	src := t.TempDir()
	writeTree(t, src, map[string][]byte{"f": randBytes(6, 5000)})
	out := filepath.Join(t.TempDir(), "a")
	o := small()
	var second error
	o.scanHook = func() {
		o2 := small()
		o2.Force = true
		_, second = Create(context.Background(), out, []string{src}, o2)
	}
	res, err := Create(context.Background(), out, []string{src}, o)
	if err != nil {
		t.Fatal(err)
	}
	if second == nil || !strings.Contains(second.Error(), "another arcpack is writing this archive") {
		t.Fatalf("a second create during the first: %v", second)
	}
	readBack(t, res.Volumes, 0)
	if _, err := os.Stat(format.LockName(out)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("lock file after create: %v", err)
	}
	// A lock file left behind (a create killed) is taken over and removed.
	if err := os.WriteFile(format.LockName(out), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	o = small()
	o.Force = true
	if _, err := Create(context.Background(), out, []string{src}, o); err != nil {
		t.Fatalf("create beside a stale lock file: %v", err)
	}
	if _, err := os.Stat(format.LockName(out)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("stale lock file after create: %v", err)
	}
}

// With KeepLock the archive stays locked after Create, until the caller's
// own writes (its recovery volumes) are done and it calls Result.Unlock.
func TestKeepLockHandsTheLockToTheCaller(t *testing.T) {
	src := t.TempDir()
	writeTree(t, src, map[string][]byte{"f": randBytes(7, 5000)})
	out := filepath.Join(t.TempDir(), "a")
	o := small()
	o.KeepLock = true
	res, err := Create(context.Background(), out, []string{src}, o)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := format.LockArchive(out); err == nil || !strings.Contains(err.Error(), "another arcpack is writing") {
		t.Fatalf("lock taken while Create's caller holds it: %v", err)
	}
	res.Unlock()
	unlock, _, err := format.LockArchive(out)
	if err != nil {
		t.Fatalf("lock after Result.Unlock: %v", err)
	}
	unlock()
}

// A hardlinked file rewritten after the scan is archived as the read found
// it: content, size and mtime of that one state, whichever of its paths the
// index takes the inode's row from (breadth first: here the shallower z,
// while the content is read through a/deep/f, first in path order).
func TestHardlinkedFileChangedAfterTheScanKeepsOneState(t *testing.T) {
	for _, streamed := range []bool{false, true} {
		src := t.TempDir()
		writeTree(t, src, map[string][]byte{"a/deep/f": []byte("old")})
		if err := os.Link(filepath.Join(src, "a/deep/f"), filepath.Join(src, "z")); err != nil {
			t.Fatal(err)
		}
		old := time.Unix(1500000000, 0)
		if err := os.Chtimes(filepath.Join(src, "z"), old, old); err != nil {
			t.Fatal(err)
		}
		newer := time.Unix(1600000000, 0)
		content := randBytes(5, 100<<10)
		o, _ := changeOptions(streamed)
		o.scanHook = func() {
			if err := os.WriteFile(filepath.Join(src, "z"), content, 0o644); err != nil {
				t.Error(err)
			}
			if err := os.Chtimes(filepath.Join(src, "z"), newer, newer); err != nil {
				t.Error(err)
			}
		}
		res, err := Create(context.Background(), filepath.Join(t.TempDir(), "a"), []string{src}, o)
		if err != nil {
			t.Fatal(err)
		}
		a := readBack(t, res.Volumes, 0)
		ino := a.inode["z"]
		if a.inode["a/deep/f"] != ino || !bytes.Equal(a.content["z"], content) {
			t.Fatalf("streamed=%v: not one inode with the content read", streamed)
		}
		if m := a.idx.Inodes.Mtime[ino]; m != newer.UnixNano() {
			t.Errorf("streamed=%v: mtime %v with the content of %v", streamed, time.Unix(0, m).UTC(), newer.UTC())
		}
	}
}

// A file replaced after the scan by a new one renamed over it (how editors
// and package managers save) is read as it is now, with its own metadata
// and xattrs, as tar would read it: it is not left out. A hardlinked file
// whose first path was replaced or removed is read through another of its
// paths, which still lead to the file the scan listed; one with no path
// left is left out, each path named in a warning (the others were left out
// without one). One replaced by anything but a regular file is left out
// with a warning.
func TestAFileReplacedAfterTheScanIsReadAsItIsNow(t *testing.T) {
	for _, streamed := range []bool{false, true} {
		src := t.TempDir()
		writeTree(t, src, map[string][]byte{"d/f": []byte("old"), "d/g": []byte("linked"), "d/k": []byte("gone"), "d/s": []byte("a file for now"), "ok": []byte("ok")})
		for _, l := range [][2]string{{"d/g", "d/h"}, {"d/k", "d/l"}} {
			if err := os.Link(filepath.Join(src, l[0]), filepath.Join(src, l[1])); err != nil {
				t.Fatal(err)
			}
		}
		content := randBytes(6, 100<<10)
		newer := time.Unix(1600000000, 0)
		xattrs := true
		o, warned := changeOptions(streamed)
		save := func(name string, data []byte) {
			tmp := filepath.Join(src, "d", name+".tmp")
			if err := os.WriteFile(tmp, data, 0o600); err != nil {
				t.Error(err)
			}
			if err := os.Chtimes(tmp, newer, newer); err != nil {
				t.Error(err)
			}
			if err := os.Rename(tmp, filepath.Join(src, "d", name)); err != nil {
				t.Error(err)
			}
		}
		o.scanHook = func() {
			if err := unix.Setxattr(filepath.Join(src, "d/f"), "user.was", []byte("old"), 0); err != nil {
				xattrs = false
			}
			save("f", content)
			if xattrs {
				if err := unix.Setxattr(filepath.Join(src, "d/f"), "user.saved", []byte("new"), 0); err != nil {
					t.Error(err)
				}
			}
			save("g", []byte("new, linked no more"))
			os.Remove(filepath.Join(src, "d/k"))
			os.Remove(filepath.Join(src, "d/l"))
			os.Remove(filepath.Join(src, "d/s"))
			if err := os.Symlink("f", filepath.Join(src, "d/s")); err != nil {
				t.Error(err)
			}
		}
		res, err := Create(context.Background(), filepath.Join(t.TempDir(), "a"), []string{src}, o)
		if err != nil {
			t.Fatal(err)
		}
		a := readBack(t, res.Volumes, 0)
		x := a.idx
		ino, ok := a.inode["d/f"]
		if !ok || !bytes.Equal(a.content["d/f"], content) {
			t.Fatalf("streamed=%v: d/f is not the file saved over it (%d bytes)", streamed, len(a.content["d/f"]))
		}
		if m, mt := x.Inodes.Mode[ino], x.Inodes.Mtime[ino]; m != format.ModeReg|0o600 || mt != newer.UnixNano() {
			t.Errorf("streamed=%v: d/f mode %o mtime %v, want the new file's 0100600 and %v", streamed, m, time.Unix(0, mt).UTC(), newer.UTC())
		}
		if xattrs {
			xs, xe := x.XattrRange(ino)
			if xe-xs != 1 || string(x.XattrName(xs)) != "user.saved" || string(x.XattrValue(xs)) != "new" {
				t.Errorf("streamed=%v: d/f has %d xattrs, want the new file's user.saved", streamed, xe-xs)
			}
		}
		// d/g replaced: the file the scan listed, read through d/h.
		if g, h := a.inode["d/g"], a.inode["d/h"]; g != h || string(a.content["d/g"]) != "linked" || string(a.content["d/h"]) != "linked" {
			t.Errorf("streamed=%v: d/g and d/h: inodes %d, %d, %q, %q; want the linked file the scan listed", streamed, g, h, a.content["d/g"], a.content["d/h"])
		}
		for _, p := range []string{"d/k", "d/l", "d/s"} {
			if _, ok := a.inode[p]; ok {
				t.Errorf("streamed=%v: %s was packed", streamed, p)
			}
		}
		// d/k and d/l removed; d/s a symlink now (O_NOFOLLOW says ELOOP: not a loop, a replacement).
		j := strings.Join(warned(), "\n")
		for _, w := range []string{"d/k: no such file", "d/l: a hardlink of", "d/s: replaced since the scan listed it"} {
			if !strings.Contains(j, w) {
				t.Errorf("streamed=%v: no warning %q in:\n%s", streamed, w, j)
			}
		}
		if res.Skipped != 3 || string(a.content["ok"]) != "ok" {
			t.Errorf("streamed=%v: %d skipped, want 3; ok = %q", streamed, res.Skipped, a.content["ok"])
		}
	}
}

// changeOptions are small() for a test of files changed after the scan:
// read whole, or streamed, and the warnings kept for warned.
func changeOptions(streamed bool) (o Options, warned func() []string) {
	o = small()
	if streamed {
		o.wholeMax = 64 << 10
	}
	var mu sync.Mutex
	var warnings []string
	o.Warn = func(err error) { mu.Lock(); warnings = append(warnings, err.Error()); mu.Unlock() }
	return o, func() []string { mu.Lock(); defer mu.Unlock(); return slices.Clone(warnings) }
}

// A streamed file that changes while it is copied is copied again, and
// the first copy's bytes stay in the stream unreferenced; the dedup
// counters, like the input, count the kept copy only: a first copy whose
// repeats became references must not report them as saved.
func TestACopyThrownAwayLeavesNoDedupCounts(t *testing.T) {
	x := randBytes(7, 100<<10)
	repeats := append(slices.Clone(x), x...) // its second half becomes references
	fresh := randBytes(8, 200<<10)
	for _, tc := range []struct {
		name          string
		first, second []byte // content read first, and after the change
	}{
		{"repeats, then fresh bytes", repeats, fresh},
		{"fresh bytes, then repeats", fresh, repeats},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pack := func(rewrite bool) *Result {
				src := t.TempDir()
				path := filepath.Join(src, "log")
				content := tc.second
				if rewrite {
					content = tc.first
				}
				writeTree(t, src, map[string][]byte{"log": content})
				o, _ := changeOptions(true)
				o.readHook = func(p string, attempt int) {
					if rewrite && attempt == 0 && p == path {
						if err := os.WriteFile(p, tc.second, 0o644); err != nil {
							t.Error(err)
						}
					}
				}
				res, err := Create(context.Background(), filepath.Join(t.TempDir(), "a"), []string{src}, o)
				if err != nil {
					t.Fatal(err)
				}
				if a := readBack(t, res.Volumes, 0); !bytes.Equal(a.content["log"], tc.second) {
					t.Fatal("the archive does not hold the content read last")
				}
				return res
			}
			want, got := pack(false), pack(true)
			type counts struct{ input, chunkBytes, chunkRefs, segBytes, segRefs int64 }
			w := counts{want.InputBytes, want.ChunkBytes, want.ChunkRefs, want.SegmentBytes, want.SegmentRefs}
			g := counts{got.InputBytes, got.ChunkBytes, got.ChunkRefs, got.SegmentBytes, got.SegmentRefs}
			if g != w {
				t.Fatalf("counts after a copy thrown away %+v, want those of the kept copy alone %+v", g, w)
			}
		})
	}
}

// swapForSymlink moves dir/name aside to dir/movedTo and puts a symlink to
// target in its place, as a change after the scan (scanHook: errors are
// reported with t.Error, the hook may not be on the test's goroutine).
func swapForSymlink(t *testing.T, dir, name, movedTo, target string) {
	t.Helper()
	if err := os.Rename(filepath.Join(dir, name), filepath.Join(dir, movedTo)); err != nil {
		t.Error(err)
	}
	if err := os.Symlink(target, filepath.Join(dir, name)); err != nil {
		t.Error(err)
	}
}

// A file the scan found whole and small, grown by a hole before it is
// read (past the whole-file limit, so it is streamed), keeps its hole:
// whether a file is sparse is asked of the file being read, not of the
// scan's stat.
func TestAFileGrownByAHoleAfterTheScanKeepsIt(t *testing.T) {
	src := t.TempDir()
	probe := filepath.Join(t.TempDir(), "probe")
	if err := os.WriteFile(probe, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(probe, 8<<20); err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	if err := unix.Stat(probe, &st); err != nil || !sparseStat(&st) {
		t.Skip("this filesystem does not keep holes")
	}
	path := filepath.Join(src, "grows")
	if err := os.WriteFile(path, []byte("head\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	o, warned := changeOptions(true)
	o.scanHook = func() {
		if err := os.Truncate(path, 8<<20); err != nil {
			t.Error(err)
		}
	}
	res, err := Create(context.Background(), filepath.Join(t.TempDir(), "g"), []string{src}, o)
	if err != nil {
		t.Fatal(err)
	}
	if w := warned(); len(w) > 0 {
		t.Fatalf("warnings %q", w)
	}
	if res.HoleBytes < 8<<20-64<<10 {
		t.Errorf("%d hole bytes (%d read), want nearly all 8 MiB a hole", res.HoleBytes, res.InputBytes)
	}
	a := readBack(t, res.Volumes, 0)
	want := append([]byte("head\n"), make([]byte, 8<<20-5)...)
	if got := a.content["grows"]; !bytes.Equal(got, want) {
		t.Errorf("archived %d bytes, want the head and 8 MiB of zeros", len(got))
	}
}
