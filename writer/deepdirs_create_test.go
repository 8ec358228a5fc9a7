package writer

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"arc/internal/testtree"

	"golang.org/x/sys/unix"
)

// A directory deep down (past anchorPath) swapped for a symlink to
// elsewhere after the scan: the file below it is reported replaced, as a
// shallow one is (TestSwapsAfterTheScanAreNotReadThrough), not "not a
// directory" from the way down through the directories held (deepDirs).
func TestDeepDirectorySwappedForASymlinkIsReportedReplaced(t *testing.T) {
	outside := t.TempDir()
	writeTree(t, outside, map[string][]byte{"shadow": []byte("SECRET")})
	src := t.TempDir()
	deep := longPrefix(t, src) // its path past anchorPath
	writeTree(t, deep, map[string][]byte{"z/shadow": []byte("mine"), "ok": []byte("ok")})
	o, warned := changeOptions(false)
	o.scanHook = func() { swapForSymlink(t, deep, "z", "zz", outside) }
	if _, err := Create(context.Background(), filepath.Join(t.TempDir(), "a"), []string{src}, o); err != nil {
		t.Fatal(err)
	}
	j := strings.Join(warned(), "\n")
	if !strings.Contains(j, "replaced since the scan listed it") {
		t.Errorf("warnings:\n%s", j[max(0, len(j)-200):])
	}
}

// A directory deep down renamed after the scan, a symlink left at its old
// name (a compatibility link): by its path, the file the scan listed is
// still reached, and read.
func TestDeepDirectoryMovedBehindASymlinkIsStillRead(t *testing.T) {
	src := t.TempDir()
	deep := longPrefix(t, src)
	writeTree(t, deep, map[string][]byte{"z/f": []byte("mine")})
	o, warned := changeOptions(false)
	o.scanHook = func() { swapForSymlink(t, deep, "z", "zz", "zz") }
	res, err := Create(context.Background(), filepath.Join(t.TempDir(), "a"), []string{src}, o)
	if err != nil {
		t.Fatal(err)
	}
	if w := warned(); res.Skipped != 0 || len(w) > 0 {
		j := strings.Join(w, "\n")
		t.Errorf("%d skipped, warnings:\n%s", res.Skipped, j[max(0, len(j)-200):])
	}
}

// A hardlinked file deep down whose directory was swapped for a symlink
// after the scan is read through another of its paths (openSource tries
// them on errReplaced or ENOENT).
func TestDeepHardlinkIsReadThroughAnotherPathWhenItsDirectoryIsSwapped(t *testing.T) {
	outside := t.TempDir()
	src := t.TempDir()
	deep := longPrefix(t, filepath.Join(src, "a"))
	writeTree(t, deep, map[string][]byte{"z/g": []byte("linked")})
	if err := os.Link(filepath.Join(deep, "z/g"), filepath.Join(src, "zz")); err != nil {
		t.Fatal(err)
	}
	o, warned := changeOptions(false)
	o.scanHook = func() { swapForSymlink(t, deep, "z", "was-z", outside) }
	res, err := Create(context.Background(), filepath.Join(t.TempDir(), "a"), []string{src}, o)
	if err != nil {
		t.Fatal(err)
	}
	a := readBack(t, res.Volumes, 0)
	if got := string(a.content["zz"]); got != "linked" || res.Skipped != 0 {
		j := strings.Join(warned(), "\n")
		t.Errorf("zz = %q, %d skipped; warnings:\n%s", got, res.Skipped, j[max(0, len(j)-300):])
	}
}

// A chain deep down, a file at every level, packed under a low limit on
// open files: the directories held (deepDirs) leave room for the reads
// (16 held took all 20 descriptors, and 698 of the 701 files were
// skipped, "too many open files").
func TestDeepChainIsPackedUnderALowLimit(t *testing.T) {
	const limit = 20
	const depth = 700
	src := t.TempDir()
	levels := make([]int, depth+1)
	for i := range levels {
		levels[i] = i
	}
	chain(t, longPrefix(t, src), depth, levels...)
	o, warned := changeOptions(false)
	var res *Result
	var err error
	testtree.WithOpenFiles(t, limit, func() {
		res, err = Create(context.Background(), filepath.Join(t.TempDir(), "a"), []string{src}, o)
	})
	if err != nil {
		t.Fatal(err)
	}
	if w := warned(); res.Skipped != 0 || len(w) > 0 {
		t.Errorf("limit %d: %d skipped, %d warnings, the first: %.80s...%s", limit, res.Skipped, len(w), w[0], w[0][max(0, len(w[0])-60):])
	}
}

// wideDeep makes under src a chain of depth directories d, and in its
// bottom width subdirectories sNNN, a file f in each.
func wideDeep(t *testing.T, src string, depth, width int) {
	bottom, _ := chain(t, src, depth)
	for i := range width {
		name := fmt.Sprintf("s%03d", i)
		if err := unix.Mkdirat(bottom, name, 0o755); err != nil {
			t.Fatal(err)
		}
		fd, err := unix.Openat(bottom, name+"/f", unix.O_WRONLY|unix.O_CREAT|unix.O_CLOEXEC, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		unix.Write(fd, []byte(name))
		unix.Close(fd)
	}
	t.Cleanup(func() { // before chain's
		for i := range width {
			name := fmt.Sprintf("s%03d", i)
			unix.Unlinkat(bottom, name+"/f", 0)
			unix.Unlinkat(bottom, name, unix.AT_REMOVEDIR)
		}
	})
}

// A tree with a chain deep down (a file at every level) under a/, then
// ordinary files under z/ (16 KiB of random bytes each), packed in
// volumes of 256 KiB under a low limit on open files: the directories
// held for a/, held to the end of the pack, leave the files of z/ and the
// volumes room.
func TestFilesAfterADeepChainArePackedUnderALowLimit(t *testing.T) {
	const limit = 20
	const depth = 100
	src := t.TempDir()
	levels := make([]int, depth+1)
	for i := range levels {
		levels[i] = i
	}
	chain(t, longPrefix(t, filepath.Join(src, "a")), depth, levels...)
	files := map[string][]byte{}
	for i := range 64 {
		files[fmt.Sprintf("z/%02d", i)] = randBytes(int64(i), 16<<10)
	}
	writeTree(t, src, files)
	o, warned := changeOptions(false)
	o.VolumeSize = 256 << 10
	var res *Result
	var err error
	testtree.WithOpenFiles(t, limit, func() {
		res, err = Create(context.Background(), filepath.Join(t.TempDir(), "a"), []string{src}, o)
	})
	if err != nil {
		t.Fatalf("limit %d: %v", limit, err)
	}
	if w := warned(); res.Skipped != 0 || len(w) > 0 {
		var z int
		for _, s := range w {
			if strings.Contains(s, "/z/") {
				z++
			}
		}
		t.Errorf("limit %d: %d skipped, %d warnings (%d of z/), the last: %s", limit, res.Skipped, len(w), z, w[len(w)-1][max(0, len(w[len(w)-1])-80):])
	}
}

// No descriptor is left open by Create of a deep chain with files, read
// whole, streamed, or stopped by a file replaced under Strict.
func TestDeepReadsLeaveNoDescriptorOpen(t *testing.T) {
	const depth = 1500
	for _, tc := range []struct {
		name     string
		streamed bool
		strict   bool
	}{{"whole", false, false}, {"streamed", true, false}, {"strict failure", false, true}} {
		t.Run(tc.name, func(t *testing.T) {
			src := t.TempDir()
			levels := make([]int, depth+1)
			for i := range levels {
				levels[i] = i
			}
			bottom, _ := chain(t, src, depth, levels...)
			o, _ := changeOptions(tc.streamed)
			o.Strict = tc.strict
			if tc.strict {
				o.scanHook = func() {
					unix.Unlinkat(bottom, "f", 0)
					unix.Mkfifoat(bottom, "f", 0o644)
				}
			}
			before := openFiles(t)
			_, err := Create(context.Background(), filepath.Join(t.TempDir(), "a"), []string{src}, o)
			if (err != nil) != tc.strict {
				t.Fatal(err)
			}
			if after := openFiles(t); after != before {
				t.Errorf("%d descriptors open before, %d after (%v)", before, after, err)
			}
		})
	}
}
