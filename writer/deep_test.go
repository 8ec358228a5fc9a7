package writer

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// chain makes under dir a chain of depth directories named d, its path
// past PATH_MAX where depth passes 2,048, with a file f holding fileData
// of its level in the directory at each of the levels files (0 is dir
// itself), and returns descriptors of the bottom directory and of the one
// above it, closed with the chain (taken down a level at a time: the
// kernel takes no path that long, and os.RemoveAll holds a descriptor a
// level). A test may remove the bottom.
func chain(t *testing.T, dir string, depth int, files ...int) (bottom, above int) {
	t.Helper()
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	above = -1
	for level := 0; ; level++ {
		if slices.Contains(files, level) {
			f, err := unix.Openat(fd, "f", unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, 0o644)
			if err != nil {
				t.Fatal(err)
			}
			_, err = unix.Write(f, fileData(level))
			unix.Close(f)
			if err != nil {
				t.Fatal(err)
			}
		}
		if level == depth {
			break
		}
		if err := unix.Mkdirat(fd, "d", 0o755); err != nil {
			t.Fatal(err)
		}
		next, err := unix.Openat(fd, "d", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		if above >= 0 {
			unix.Close(above)
		}
		above, fd = fd, next
	}
	bottom = fd
	t.Cleanup(func() {
		unix.Close(above)
		fd := bottom
		for level := depth; ; level-- {
			f := os.NewFile(uintptr(fd), "chain")
			names, _ := f.Readdirnames(-1) // none, from one a test removed
			for _, name := range names {
				if name != "d" {
					unix.Unlinkat(fd, name, 0)
				}
			}
			if level == 0 {
				f.Close()
				return
			}
			up, err := unix.Openat(fd, "..", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
			f.Close()
			if err != nil {
				t.Fatal(err)
			}
			fd = up
			if err := unix.Unlinkat(fd, "d", unix.AT_REMOVEDIR); err != nil && err != unix.ENOENT {
				t.Fatal(err)
			}
		}
	})
	return bottom, above
}

func fileData(level int) []byte { return fmt.Appendf(nil, "the file at level %d\n", level) }

// The scan keeps no path in the nodes past anchorPath bytes, each of
// which held its whole path: a chain of directories took memory in the
// square of its depth (Create allocated 100 MiB for these 8,000 levels,
// 39 MiB now; arcpack peaked at 184 MB of RSS for 12,000), and most of
// the time went into copying paths. A node that needs its path (to open
// a file, to name it in a message) has it built from its parents'. The
// chain, with a file here and there (some about PATH_MAX deep) and one
// at the bottom, is packed whole, in memory linear in its depth.
func TestDeepChainIsPackedInMemoryLinearInItsDepth(t *testing.T) {
	src := t.TempDir()
	const depth = 8_000
	files := []int{0, 1, 500, 1000, 2047, 2048, 2049, 3000, 5000, depth}
	chain(t, src, depth, files...)
	o, warned := changeOptions(false)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	res, err := Create(context.Background(), filepath.Join(t.TempDir(), "deep"), []string{src}, o)
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	if warnings := warned(); res.Dirs != depth || res.Files != int64(len(files)) || res.Skipped != 0 || len(warnings) > 0 {
		t.Fatalf("%d dirs and %d files packed, %d skipped, %d warnings; want %d, %d, none", res.Dirs, res.Files, res.Skipped, len(warnings), depth, len(files))
	}
	// Linear: about 2 KiB a level, and the 23 MiB packing takes
	// whatever the tree (buffers, tables).
	if alloc, limit := after.TotalAlloc-before.TotalAlloc, uint64(32<<20+4096*depth); alloc > limit {
		t.Errorf("Create allocated %d MiB, want at most %d MiB", alloc>>20, limit>>20)
	}
	a := readBack(t, res.Volumes, 0)
	for _, level := range files {
		p := strings.Repeat("d/", level) + "f"
		if got := a.content[p]; !bytes.Equal(got, fileData(level)) {
			t.Errorf("level %d: archived %q, want %q", level, got, fileData(level))
		}
	}
}

// What goes wrong with a file or directory deep down, whose node keeps
// no path, is said of its whole path, built from its parents': in the
// scan (a directory gone as it is read) and in the reads (a file
// replaced after the scan, one changing during both reads). The chain's
// paths pass PATH_MAX.
func TestWarningsDeepDownNameTheWholePath(t *testing.T) {
	const depth = 3_000
	for _, tc := range []struct {
		name string
		// change, given the options, the chain's bottom directory, its
		// path and the descriptors of it and of the one above it, sets
		// a hook that changes the chain.
		change func(t *testing.T, o *Options, dir string, bottom, above int)
		want   func(dir string) string
	}{
		{"a file replaced after the scan",
			func(t *testing.T, o *Options, _ string, bottom, _ int) {
				o.scanHook = func() {
					if err := unix.Unlinkat(bottom, "f", 0); err != nil {
						t.Error(err)
					}
					if err := unix.Mkfifoat(bottom, "f", 0o644); err != nil {
						t.Error(err)
					}
				}
			},
			func(dir string) string {
				return "read " + dir + "/f: replaced since the scan listed it (skipped)"
			}},
		{"a file changing during both reads",
			func(t *testing.T, o *Options, dir string, bottom, _ int) {
				o.readHook = func(p string, attempt int) {
					if p != dir+"/f" || attempt < 0 {
						return
					}
					f, err := unix.Openat(bottom, "f", unix.O_WRONLY|unix.O_APPEND|unix.O_CLOEXEC, 0)
					if err != nil {
						t.Error(err)
						return
					}
					unix.Write(f, []byte("more\n"))
					unix.Close(f)
				}
			},
			func(dir string) string {
				return fmt.Sprintf("%s/f changed while being read, twice: stored the %d bytes of the second read", dir, len(fileData(depth))+5)
			}},
		{"a directory gone as it is read",
			func(t *testing.T, o *Options, dir string, bottom, above int) {
				o.dirHook = func(p string) {
					if p != dir {
						return
					}
					if err := unix.Unlinkat(bottom, "f", 0); err != nil {
						t.Error(err)
					}
					if err := unix.Unlinkat(above, "d", unix.AT_REMOVEDIR); err != nil {
						t.Error(err)
					}
				}
			},
			// getdents of a directory removed: ENOENT. The message names
			// the path twice, as the os.File's error does.
			func(dir string) string {
				return "read directory " + dir + ": readdirent " + dir + ": no such file or directory"
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := t.TempDir()
			bottom, above := chain(t, src, depth, depth)
			dir := src + strings.Repeat("/d", depth)
			o, warned := changeOptions(false)
			tc.change(t, &o, dir, bottom, above)
			if _, err := Create(context.Background(), filepath.Join(t.TempDir(), "deep"), []string{src}, o); err != nil {
				t.Fatal(err)
			}
			want := tc.want(dir)
			warnings := warned()
			if len(warnings) != 1 || warnings[0] != want {
				for i, w := range warnings {
					warnings[i] = w[:min(len(w), 100)] + " ... " + w[max(0, len(w)-100):]
				}
				t.Fatalf("warnings %q; want %q ... %q", warnings, want[:min(len(want), 100)], want[max(0, len(want)-100):])
			}
		})
	}
}

// A tar stream's members keep no path, and the tree's keys hold copies of
// their names: each member of a chain kept its whole path (the key a
// piece of it), and a stream of 3,000 levels of 200-byte names (909 MB,
// nearly all of it the members' paths) held 1.7 GB at its end. Once the
// last member has joined the tree, the paths of this 100 MB chain must
// be garbage; every level's file is archived at its whole path.
func TestDeepTarChainKeepsNoMemberPath(t *testing.T) {
	const depth, nameLen = 1_000, 100
	pr, pw := io.Pipe()
	go func() {
		tw := tar.NewWriter(pw)
		dir := ""
		for level := range depth {
			dir += fmt.Sprintf("%0*d/", nameLen, level)
			for _, h := range []tar.Header{
				{Name: dir, Typeflag: tar.TypeDir, Mode: 0o755, Format: tar.FormatPAX},
				{Name: dir + "f", Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(fileData(level))), Format: tar.FormatPAX},
			} {
				if err := tw.WriteHeader(&h); err != nil {
					pw.CloseWithError(err)
					return
				}
			}
			if _, err := tw.Write(fileData(level)); err != nil {
				pw.CloseWithError(err)
				return
			}
		}
		pw.CloseWithError(tw.Close())
	}()
	o, warned := changeOptions(false)
	var live uint64
	o.tarHook = func() {
		var m runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&m)
		live = m.HeapAlloc
	}
	res, err := CreateFromTar(context.Background(), filepath.Join(t.TempDir(), "deep"), pr, o)
	if err != nil {
		t.Fatal(err)
	}
	if w := warned(); res.Dirs != depth || res.Files != depth || len(w) > 0 {
		t.Fatalf("%d dirs and %d files packed, warnings %q; want %d of each, none", res.Dirs, res.Files, w, depth)
	}
	if limit := uint64(32 << 20); live > limit {
		t.Errorf("%d MiB live once the stream was read, want at most %d MiB", live>>20, limit>>20)
	}
	a := readBack(t, res.Volumes, 0)
	for _, level := range []int{0, 1, depth / 2, depth - 1} {
		p := ""
		for l := range level + 1 {
			p += fmt.Sprintf("%0*d/", nameLen, l)
		}
		if got := a.content[p+"f"]; !bytes.Equal(got, fileData(level)) {
			t.Errorf("level %d: archived %q, want %q", level, got, fileData(level))
		}
	}
}
