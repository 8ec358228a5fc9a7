package reader

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"arc/codec"
	"arc/format"
	"arc/internal/testtree"
	"arc/writer"
)

// packTree generates a tree of every entry type and archives it with
// writer.Create in small volumes, frames and blocks, so that frames and
// blocks cross volume boundaries.
func packTree(t *testing.T, opt testtree.Options) (src, first string) {
	t.Helper()
	dir := t.TempDir()
	src = filepath.Join(dir, "src")
	if _, err := testtree.Generate(src, opt); err != nil {
		t.Fatal(err)
	}
	res, err := writer.Create(context.Background(), filepath.Join(dir, "arc"), []string{src}, writer.Options{
		VolumeSize: 128 << 10,
		FrameSize:  256 << 10,
		BlockSize:  64 << 10,
		Codec:      codec.Options{Codec: "auto", Level: codec.LevelDefault},
		Workers:    2,
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Volumes) < 3 {
		t.Fatalf("want several volumes, got %d", len(res.Volumes))
	}
	return src, res.Volumes[1]
}

func TestRoundTripThroughWriter(t *testing.T) {
	src, vol := packTree(t, testtree.Options{Seed: 3, Files: 30, LargeSize: 1 << 20, SparseSize: 1 << 20, Depth: 12})
	a, err := Open(vol, Options{CacheSize: 512 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()

	// Every regular file reads back through ReadAt as the source holds it.
	x := a.Index()
	n := 0
	err = x.Walk(func(p []byte, d uint32) error {
		ino := x.Dirents.Inode[d]
		if x.Inodes.Mode[ino]&format.ModeType != format.ModeReg {
			return nil
		}
		want, err := os.ReadFile(filepath.Join(src, string(p)))
		if err != nil {
			return err
		}
		got, err := readAll(a, ino, 100_000)
		if err != nil {
			return err
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%q: content differs", p)
		}
		n++
		return nil
	})
	if err != nil || n < 30 {
		t.Fatalf("walked %d files: %v", n, err)
	}

	rep, err := a.Verify(VerifyOptions{Workers: 2})
	if err != nil || !rep.Intact() {
		t.Fatalf("verify: %+v %v", rep, err)
	}

	root := os.Geteuid() == 0
	for _, mode := range []string{"copy", "hardlink"} {
		t.Run("extract "+mode, func(t *testing.T) {
			dest := filepath.Join(t.TempDir(), "out")
			var warns []error
			res, err := a.Extract(dest, ExtractOptions{DedupLinks: mode, Warn: func(err error) { warns = append(warns, err) }})
			if err != nil {
				t.Fatal(err)
			}
			if root && len(warns) > 0 {
				t.Errorf("warnings: %v", warns)
			}
			if res.Files == 0 || res.Bytes == 0 {
				t.Fatalf("result %+v", res)
			}
			diff := testtree.Compare(src, dest, testtree.CompareOptions{IgnoreOwner: !root, DedupLinks: mode == "hardlink"})
			if mode == "hardlink" {
				// Duplicates linked to one inode show its metadata: only
				// such differences are expected.
				diff = slices.DeleteFunc(diff, func(line string) bool {
					p, err := strconv.QuotedPrefix(line)
					if err != nil {
						return false
					}
					p, _ = strconv.Unquote(p)
					var st unix.Stat_t
					return unix.Lstat(filepath.Join(dest, p), &st) == nil && st.Nlink > 1 &&
						(strings.Contains(line, "mtime") || strings.Contains(line, "mode") ||
							strings.Contains(line, "xattr") || strings.Contains(line, "owner"))
				})
				if res.Hardlinks == 0 {
					t.Fatal("no duplicates linked")
				}
			}
			if err := diff.Err(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestRoundTripOfASubtree(t *testing.T) {
	src, vol := packTree(t, testtree.Options{Seed: 4, Files: 10, LargeSize: 700 << 10, NoXattrs: true})
	a, err := Open(vol, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	// Pick the first top-level directory of the archive.
	x := a.Index()
	var sub string
	s, e := x.Children(0)
	for d := s; d < e && sub == ""; d++ {
		if x.IsDir(x.Dirents.Inode[d]) {
			sub = string(x.Name(d))
		}
	}
	if sub == "" {
		t.Skip("no subdirectory")
	}
	dest := t.TempDir()
	if _, err := a.Extract(dest, ExtractOptions{Paths: []string{sub}}); err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(dest)
	if len(ents) != 1 || ents[0].Name() != sub {
		t.Fatalf("extracted %v", ents)
	}
	diff := testtree.Compare(filepath.Join(src, sub), filepath.Join(dest, sub), testtree.CompareOptions{IgnoreOwner: os.Geteuid() != 0})
	if err := diff.Err(); err != nil {
		t.Fatal(err)
	}
}

func TestEmptyArchivesOpenVerifyAndExtract(t *testing.T) {
	for _, files := range [][]string{nil, {"zero"}} {
		dir := t.TempDir()
		src := filepath.Join(dir, "src")
		os.Mkdir(src, 0o755)
		for _, f := range files {
			os.WriteFile(filepath.Join(src, f), nil, 0o644)
		}
		res, err := writer.Create(context.Background(), filepath.Join(dir, "arc"), []string{src}, writer.Options{})
		if err != nil {
			t.Fatal(err)
		}
		a, err := Open(res.Volumes[0], Options{})
		if err != nil {
			t.Fatal(err)
		}
		if rep, err := a.Verify(VerifyOptions{}); err != nil || !rep.Intact() || rep.Blocks != 0 {
			t.Fatalf("verify %+v %v", rep, err)
		}
		dest := filepath.Join(dir, "out")
		if _, err := a.Extract(dest, ExtractOptions{}); err != nil {
			t.Fatal(err)
		}
		a.Close()
		if err := testtree.Compare(src, dest, testtree.CompareOptions{IgnoreOwner: os.Geteuid() != 0}).Err(); err != nil {
			t.Fatal(err)
		}
	}
}

// An index decoded as it is decompressed (large indexes) is the index
// decoded from one buffer (small ones), and the archive reads the same.
func TestStreamedIndexIsTheSameIndex(t *testing.T) {
	src, vol := packTree(t, testtree.Options{Seed: 5, Files: 20, LargeSize: 256 << 10, Depth: 4})
	var idx []*format.Index
	for _, from := range []uint64{0, 1} {
		a, err := Open(vol, Options{streamIndexFrom: from})
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		idx = append(idx, a.Index())
		want, err := os.ReadFile(filepath.Join(src, "large/big.bin"))
		if err != nil {
			t.Fatal(err)
		}
		got, err := readAll(a, inodeOf(t, a, "/large/big.bin"), 65536)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("streamed from %d: large reads back wrong: %v", from, err)
		}
	}
	if !reflect.DeepEqual(idx[0], idx[1]) {
		t.Fatal("the streamed index differs from the one decoded from a buffer")
	}
}

// A tree deeper than PATH_MAX, as the writer packs it, is extracted whole,
// with each deep path reached through open directories, never passed whole
// to the kernel.
func TestTreeDeeperThanPathMaxIsExtractedWhole(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	if _, err := testtree.GenerateDeep(src); err != nil {
		t.Fatal(err)
	}
	res, err := writer.Create(context.Background(), filepath.Join(dir, "arc"), []string{src}, writer.Options{Strict: true})
	if err != nil {
		t.Fatal(testtree.ShortPath(err.Error()))
	}
	a, err := Open(res.Volumes[0], Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	dest := filepath.Join(dir, "out")
	if _, err := a.Extract(dest, ExtractOptions{}); err != nil {
		t.Fatal(testtree.ShortPath(err.Error()))
	}
	want, err := testtree.ReadDeep(src)
	if err != nil {
		t.Fatal(err)
	}
	got, err := testtree.ReadDeep(dest)
	if err != nil {
		t.Fatal(err)
	}
	if err := testtree.DiffDeep(want, got).Err(); err != nil {
		t.Fatal(err)
	}
}
