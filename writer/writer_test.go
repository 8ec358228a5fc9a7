package writer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"arc/codec"
	"arc/format"
	"arc/internal/testtree"
	"arc/writer/segment"
)

// archive is what a test reads back: the decoded index and each regular
// file's content by path. It is decoded here with format and codec alone, as
// an oracle independent of the reader package.
type archive struct {
	idx     *format.Index
	footer  format.Footer
	stream  []byte // the volumes' payloads, concatenated: blocks at idx.BlockStoredOff
	content map[string][]byte
	inode   map[string]uint32
}

// holds fails the test for each of files whose content a does not hold.
func (a *archive) holds(t *testing.T, files map[string][]byte) {
	t.Helper()
	for p, want := range files {
		if !bytes.Equal(a.content[p], want) {
			t.Errorf("%s: content differs (%d bytes, want %d)", p, len(a.content[p]), len(want))
		}
	}
}

func readBack(t *testing.T, vols []string, volumeSize int64) *archive {
	t.Helper()
	var stream []byte
	var id format.ArchiveID
	for i, v := range vols {
		b, err := os.ReadFile(v)
		if err != nil {
			t.Fatal(err)
		}
		h, err := format.ParseVolumeHeader(b)
		if err != nil {
			t.Fatalf("%s: %v", v, err)
		}
		if h.Number != uint32(i+1) || int64(h.VolumeSize) != volumeSize {
			t.Fatalf("%s: header %+v", v, h)
		}
		if i == 0 {
			id = h.ID
		} else if h.ID != id {
			t.Fatalf("%s: archive id differs", v)
		}
		if volumeSize != 0 && i < len(vols)-1 && int64(len(b)) != volumeSize {
			t.Fatalf("%s is %d bytes, want exactly %d", v, len(b), volumeSize)
		}
		stream = append(stream, b[format.VolumeHeaderSize:]...)
	}
	last, _ := os.ReadFile(vols[len(vols)-1])
	if len(last) < format.VolumeHeaderSize+format.FooterSize {
		t.Fatalf("last volume of %d bytes cannot hold the footer whole", len(last))
	}
	f, err := format.ParseFooter(last)
	if err != nil {
		t.Fatal(err)
	}
	if f.ID != id || f.StreamSize != uint64(len(stream)) || int(f.VolumeCount) != len(vols) {
		t.Fatalf("footer %+v does not match %d volumes, %d stream bytes", f, len(vols), len(stream))
	}
	stored := stream[f.IndexOffset : f.IndexOffset+f.IndexSize]
	if codec.Checksum(stored) != f.IndexChecksum {
		t.Fatal("index checksum")
	}
	raw, err := codec.DecompressIndex(stored, f.IndexRawSize)
	if err != nil {
		t.Fatal(err)
	}
	x, err := format.DecodeIndex(raw)
	if err != nil {
		t.Fatal(err)
	}
	if x.DataSize() != f.IndexOffset {
		t.Fatalf("blocks hold %d bytes, index starts at %d", x.DataSize(), f.IndexOffset)
	}
	uniq := make([]byte, x.UniqueSize())
	dec := codec.NewDecoder()
	for b := 0; b < x.Blocks.Count(); b++ {
		dst := uniq[x.BlockRawOff[b]:x.BlockRawOff[b+1]]
		if err := dec.Decode(x.Blocks.Codec[b], dst, stream[x.BlockStoredOff[b]:x.BlockStoredOff[b+1]]); err != nil {
			t.Fatalf("block %d: %v", b, err)
		}
		if codec.Checksum(dst) != x.Blocks.Sum[b] {
			t.Fatalf("block %d checksum", b)
		}
	}
	a := &archive{idx: x, footer: f, stream: stream, content: map[string][]byte{}, inode: map[string]uint32{}}
	x.Walk(func(p []byte, d uint32) error {
		ino := x.Dirents.Inode[d]
		a.inode[string(p)] = ino
		if x.Inodes.Mode[ino]&format.ModeType == format.ModeReg {
			var c []byte
			s, e := x.FileExtents(ino)
			for i := s; i < e; i++ {
				if x.Extents.Off[i] == format.Hole {
					c = append(c, make([]byte, x.Extents.Len[i])...)
				} else {
					c = append(c, uniq[x.Extents.Off[i]:x.Extents.Off[i]+x.Extents.Len[i]]...)
				}
			}
			a.content[string(p)] = c
		}
		return nil
	})
	return a
}

// writeTree creates files from a map of relative path → content.
func writeTree(t *testing.T, dir string, files map[string][]byte) {
	t.Helper()
	for p, c := range files {
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, c, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func randBytes(seed int64, n int) []byte {
	b := make([]byte, n)
	rand.New(rand.NewSource(seed)).Read(b)
	return b
}

func small() Options {
	return Options{FrameSize: 256 << 10, BlockSize: 64 << 10, Codec: codec.Options{Codec: "auto", Level: codec.LevelDefault}}
}

func TestCreateRoundTripsContentAcrossVolumeSizes(t *testing.T) {
	src := t.TempDir()
	files := map[string][]byte{
		"a/one.txt":        bytes.Repeat([]byte("hello arc\n"), 5000),
		"a/random.bin":     randBytes(1, 700<<10), // crosses frames and blocks
		"b/empty":          nil,
		"b/dup-of-one.txt": bytes.Repeat([]byte("hello arc\n"), 5000),
		"c/d/e/deep":       []byte("deep"),
		"same-size-1":      []byte("AAAA"),
		"same-size-2":      []byte("BBBB"),
	}
	writeTree(t, src, files)
	for _, vs := range []int64{0, format.MinVolumeSize, 100_000, 1 << 20} {
		t.Run(fmt.Sprint("volume-size=", vs), func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "arc")
			o := small()
			o.VolumeSize = vs
			res, err := Create(context.Background(), out, []string{src}, o)
			if err != nil {
				t.Fatal(err)
			}
			a := readBack(t, res.Volumes, vs)
			if len(a.content) != len(files) {
				t.Fatalf("archive has %d files, want %d", len(a.content), len(files))
			}
			a.holds(t, files)
			if res.DupFiles != 1 || res.DupBytes != int64(len(files["a/one.txt"])) {
				t.Errorf("dedup found %d files / %d bytes, want 1 / %d", res.DupFiles, res.DupBytes, len(files["a/one.txt"]))
			}
			// The duplicate shares its extents: it costs no stream bytes.
			x := a.idx
			i1, i2 := a.inode["a/one.txt"], a.inode["b/dup-of-one.txt"]
			if i1 == i2 || x.Inodes.DataStart[i1] != x.Inodes.DataStart[i2] || x.Inodes.DataCount[i1] != x.Inodes.DataCount[i2] {
				t.Error("duplicate files do not share one extent range in distinct inodes")
			}
			if a.content["same-size-1"][0] == a.content["same-size-2"][0] {
				t.Error("files of equal size but different content were merged")
			}
		})
	}
}

// Every split size around the point where the footer no longer fits in the
// last volume: volumes stay exact and the footer is always whole.
func TestFooterNeverCrossesAVolume(t *testing.T) {
	src := t.TempDir()
	writeTree(t, src, map[string][]byte{"f": randBytes(2, 9000)})
	// Learn the stream's length before the footer (L) from a one-volume
	// archive; then aim at split sizes whose two full payloads end just past
	// L, inside the 80 bytes the footer needs (with slack for the index
	// size, which moves by a few bytes between runs).
	one, err := Create(context.Background(), filepath.Join(t.TempDir(), "one"), []string{src}, small())
	if err != nil {
		t.Fatal(err)
	}
	l := int64(readBack(t, one.Volumes, 0).footer.StreamSize) - format.FooterSize
	aim := (l+40)/2 + format.VolumeHeaderSize
	var sizes []int64
	for vs := aim - 30; vs <= aim+30; vs += 3 {
		sizes = append(sizes, vs)
	}
	base := int64(format.MinVolumeSize)
	for vs := base; vs < base+300; vs += 7 {
		sizes = append(sizes, vs)
	}
	padded := 0
	for _, vs := range sizes {
		out := filepath.Join(t.TempDir(), "x")
		o := small()
		o.VolumeSize = vs
		res, err := Create(context.Background(), out, []string{src}, o)
		if err != nil {
			t.Fatalf("volume size %d: %v", vs, err)
		}
		f := readBack(t, res.Volumes, vs).footer
		if f.StreamSize-format.FooterSize > f.IndexOffset+f.IndexSize {
			padded++ // the index ended too close to a volume's end
		}
	}
	if padded == 0 {
		t.Fatal("no volume size in the sweep made the footer start a new volume")
	}
}

func TestCreateKeepsEntryTypesAndMetadata(t *testing.T) {
	src := t.TempDir()
	writeTree(t, src, map[string][]byte{"dir/file": []byte("content"), "other": []byte("x")})
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.Symlink("dir/file", filepath.Join(src, "link")))
	must(os.Link(filepath.Join(src, "dir/file"), filepath.Join(src, "hard")))
	must(syscall.Chmod(filepath.Join(src, "other"), 0o4751))
	must(os.Mkdir(filepath.Join(src, "emptydir"), 0o700))
	odd := "bad\xffname with space\nand newline"
	must(os.WriteFile(filepath.Join(src, odd), []byte("odd"), 0o600))

	out := filepath.Join(t.TempDir(), "m")
	res, err := Create(context.Background(), out, []string{src}, small())
	must(err)
	a := readBack(t, res.Volumes, 0)
	x := a.idx
	if got := string(x.Symlink(a.inode["link"])); got != "dir/file" {
		t.Errorf("symlink target %q", got)
	}
	if a.inode["hard"] != a.inode["dir/file"] || x.Nlink[a.inode["hard"]] != 2 {
		t.Error("hardlinked paths do not share an inode with nlink 2")
	}
	if m := x.Inodes.Mode[a.inode["other"]]; m&format.ModePerm != 0o4751 {
		t.Errorf("mode %o, want setuid 4751", m&format.ModePerm)
	}
	if !x.IsDir(a.inode["emptydir"]) {
		t.Error("empty directory lost")
	}
	if string(a.content[odd]) != "odd" {
		t.Error("non-UTF-8 name lost")
	}
	var st os.FileInfo
	st, _ = os.Lstat(filepath.Join(src, "dir/file"))
	if x.Inodes.Mtime[a.inode["dir/file"]] != st.ModTime().UnixNano() {
		t.Error("mtime not kept to the nanosecond")
	}
	if res.Hardlinks != 1 || res.Symlinks != 1 {
		t.Errorf("result counts %+v", res)
	}
}

// A tree deeper than PATH_MAX (4096 bytes of path, past which the kernel
// refuses a path passed whole) is packed whole: every entry, content, link
// target and xattr, by the whole-file reads and the streamed ones alike.
func TestTreeDeeperThanPathMaxIsPackedWhole(t *testing.T) {
	src := t.TempDir()
	xattrs, err := testtree.GenerateDeep(src)
	if err != nil {
		t.Fatal(err)
	}
	if !xattrs {
		t.Log("no user xattrs on this filesystem: packed without")
	}
	want, err := testtree.ReadDeep(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, streamed := range []bool{false, true} {
		o := small()
		if streamed {
			o.wholeMax = 64 << 10 // the 200 KB file at the bottom is streamed
		}
		var warnings []string
		o.Warn = func(err error) { warnings = append(warnings, testtree.ShortPath(err.Error())) }
		res, err := Create(context.Background(), filepath.Join(t.TempDir(), "deep"), []string{src}, o)
		if err != nil {
			t.Fatalf("streamed=%v: %v", streamed, testtree.ShortPath(err.Error()))
		}
		if len(warnings) > 0 || res.Skipped != 0 {
			t.Fatalf("streamed=%v: %d skipped, warnings:\n%s", streamed, res.Skipped, strings.Join(warnings, "\n"))
		}
		a := readBack(t, res.Volumes, 0)
		x := a.idx
		if len(a.inode) != len(want) {
			t.Errorf("streamed=%v: %d entries, want %d", streamed, len(a.inode), len(want))
		}
		for p, e := range want {
			ino, ok := a.inode[p]
			short := testtree.ShortPath(p)
			switch {
			case !ok:
				t.Errorf("streamed=%v: %s missing", streamed, short)
				continue
			case e.LinkOf != "":
				if a.inode[e.LinkOf] != ino {
					t.Errorf("streamed=%v: %s is not a hardlink of %s", streamed, short, testtree.ShortPath(e.LinkOf))
				}
				continue
			}
			if x.Inodes.Mode[ino] != e.Mode || x.Inodes.Mtime[ino] != e.Mtime {
				t.Errorf("streamed=%v: %s: mode %o, mtime %d; want %o, %d", streamed, short, x.Inodes.Mode[ino], x.Inodes.Mtime[ino], e.Mode, e.Mtime)
			}
			var target []byte
			if e.Mode&format.ModeType == format.ModeLink {
				target = x.Symlink(ino)
			}
			if string(a.content[p]) != e.Content || string(target) != e.Target {
				t.Errorf("streamed=%v: %s: %d bytes, target %q; want %d, %q", streamed, short, len(a.content[p]), target, len(e.Content), e.Target)
			}
			got := map[string]string{} // user.* only, as ReadDeep reads them
			s, end := x.XattrRange(ino)
			for i := s; i < end; i++ {
				if name := string(x.XattrName(i)); strings.HasPrefix(name, "user.") {
					got[name] = string(x.XattrValue(i))
				}
			}
			if !maps.Equal(got, e.Xattrs) {
				t.Errorf("streamed=%v: %s: xattrs %q, want %q", streamed, short, got, e.Xattrs)
			}
		}
	}
}

// The scan holds no descriptor per level of a deep tree: eight chains of
// 250 directories, scanned in parallel and, past the scanner's goroutines,
// depth first on them, are packed under a limit of 128 open files.
func TestDeepTreeIsScannedWithFewDescriptors(t *testing.T) {
	src := t.TempDir()
	const chains, levels = 8, 250
	for c := range chains {
		dir := filepath.Join(src, fmt.Sprint(c), strings.Repeat("d/", levels-1))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "f"), []byte(dir), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var res *Result
	var err error
	testtree.WithOpenFiles(t, 128, func() {
		res, err = Create(context.Background(), filepath.Join(t.TempDir(), "deep"), []string{src}, small())
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Skipped != 0 || res.Dirs != chains*levels || res.Files != chains {
		t.Fatalf("%d dirs and %d files packed, %d skipped; want %d, %d, 0", res.Dirs, res.Files, res.Skipped, chains*levels, chains)
	}
	for p, c := range readBack(t, res.Volumes, 0).content {
		if filepath.Join(src, p) != string(c)+"/f" {
			t.Errorf("%s holds %q", p, c)
		}
	}
}

// Past a path of anchorPath bytes, the scan opens a directory through
// its parent's listing, not by its path, which the kernel would walk
// from the top again (time in the square of the depth: 9.8 s for a chain
// of 12,000 levels before, 2.3 s after). Seen from outside: once the top
// of a deep chain is renamed in the middle of the scan, the directories
// below are still read, all of them, where their paths no longer lead.
// And the anchors' descriptors stay few: the chain is scanned under a
// limit of 32 open files.
func TestDeepDirectoriesAreOpenedThroughTheirParents(t *testing.T) {
	src := t.TempDir()
	const levels = 1500
	if err := os.MkdirAll(filepath.Join(src, "top", strings.Repeat("d/", levels-1)), 0o755); err != nil {
		t.Fatal(err)
	}
	o := small()
	renamed := false
	o.dirHook = func(path string) {
		if !renamed && len(path) > 2*anchorPath {
			renamed = true
			if err := os.Rename(filepath.Join(src, "top"), filepath.Join(src, "moved")); err != nil {
				t.Error(err)
			}
		}
	}
	var warnings []string
	o.Warn = func(err error) { warnings = append(warnings, testtree.ShortPath(err.Error())) }
	var res *Result
	var err error
	testtree.WithOpenFiles(t, 32, func() {
		res, err = Create(context.Background(), filepath.Join(t.TempDir(), "deep"), []string{src}, o)
	})
	if err != nil {
		t.Fatal(err)
	}
	if !renamed {
		t.Fatal("the chain's paths never grew past the renaming point")
	}
	if res.Dirs != levels || res.Skipped != 0 || len(warnings) > 0 {
		first := ""
		if len(warnings) > 0 {
			first = warnings[0][max(0, len(warnings[0])-200):]
		}
		t.Errorf("%d directories packed, %d skipped, %d warnings (the first ends %q); want %d, 0, none", res.Dirs, res.Skipped, len(warnings), first, levels)
	}
}

func TestSparseFileStoresHoles(t *testing.T) {
	src := t.TempDir()
	f, err := os.Create(filepath.Join(src, "sparse"))
	if err != nil {
		t.Fatal(err)
	}
	f.Truncate(64 << 20)
	f.WriteAt([]byte("middle"), 32<<20)
	f.Close()
	out := filepath.Join(t.TempDir(), "s")
	res, err := Create(context.Background(), out, []string{src}, small())
	if err != nil {
		t.Fatal(err)
	}
	if res.HoleBytes == 0 {
		t.Skip("filesystem does not report holes")
	}
	a := readBack(t, res.Volumes, 0)
	c := a.content["sparse"]
	if len(c) != 64<<20 || string(c[32<<20:32<<20+6]) != "middle" {
		t.Fatal("sparse content differs")
	}
	if res.UniqueBytes > 1<<20 {
		t.Errorf("holes were stored as data: unique stream is %d bytes", res.UniqueBytes)
	}
}

// Progress reaches the total once every file is packed, sparse files
// included: their holes are part of the total (the files' sizes), so they
// count as done when placed, read or not.
func TestProgressEndsAtTheTotalWithSparseFiles(t *testing.T) {
	src := t.TempDir()
	writeTree(t, src, map[string][]byte{"plain": randBytes(9, 100<<10), "copy": randBytes(9, 100<<10)})
	for _, name := range []string{"sparse", "all-hole"} {
		f, err := os.Create(filepath.Join(src, name))
		if err != nil {
			t.Fatal(err)
		}
		f.Truncate(8 << 20)
		if name == "sparse" {
			f.WriteAt([]byte("middle"), 4<<20)
		}
		f.Close()
	}
	var last Progress
	o := small()
	o.Progress = func(p Progress) { last = p }
	res, err := Create(context.Background(), filepath.Join(t.TempDir(), "p"), []string{src}, o)
	if err != nil {
		t.Fatal(err)
	}
	if res.HoleBytes == 0 {
		t.Skip("filesystem does not report holes")
	}
	if last.BytesDone != last.BytesTotal || last.FilesDone != last.FilesTotal {
		t.Fatalf("progress ends at %d of %d bytes, %d of %d files", last.BytesDone, last.BytesTotal, last.FilesDone, last.FilesTotal)
	}
}

func TestExistingOutputIsRefusedWithoutForce(t *testing.T) {
	src := t.TempDir()
	writeTree(t, src, map[string][]byte{"f": randBytes(3, 20000)})
	dir := t.TempDir()
	out := filepath.Join(dir, "o")
	o := small()
	o.VolumeSize = format.MinVolumeSize
	first, err := Create(context.Background(), out, []string{src}, o)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Create(context.Background(), out, []string{src}, o); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("second create: %v, want refusal", err)
	}
	// --force with one volume replaces the set and removes the stale volumes.
	o.Force, o.VolumeSize = true, 0
	res, err := Create(context.Background(), out, []string{src}, o)
	if err != nil {
		t.Fatal(err)
	}
	left, _ := existingVolumes(out)
	if len(first.Volumes) < 2 || len(res.Volumes) != 1 || len(left) != 1 {
		t.Fatalf("after --force: %v remain (first archive had %d volumes)", left, len(first.Volumes))
	}
	readBack(t, res.Volumes, 0)
}

// A directory named like a volume is refused before anything is packed,
// with --force too: renaming a new volume over it fails, so the renames
// were left half done for every later run.
func TestADirectoryNamedLikeAVolumeIsRefusedWithForce(t *testing.T) {
	src := t.TempDir()
	writeTree(t, src, map[string][]byte{"f": randBytes(3, 20000)})
	for _, name := range []string{"o.001", "o.002"} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.Mkdir(filepath.Join(dir, name), 0o755); err != nil {
				t.Fatal(err)
			}
			o := small()
			o.Force = true
			_, err := Create(context.Background(), filepath.Join(dir, "o"), []string{src}, o)
			if err == nil || !strings.Contains(err.Error(), name+" is a directory, which --force does not replace") {
				t.Fatalf("create: %v, want it refused", err)
			}
			ents, _ := os.ReadDir(dir)
			if len(ents) != 1 || ents[0].Name() != name || !ents[0].IsDir() {
				t.Errorf("left %v beside the directory", ents)
			}
		})
	}
}

func TestCancelledCreateLeavesNoArchive(t *testing.T) {
	src := t.TempDir()
	writeTree(t, src, map[string][]byte{"a": randBytes(4, 3<<20), "b": randBytes(5, 3<<20)})
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	o := small()
	o.VolumeSize = 64 << 10
	// Cancelled as packing starts, with the first volume already open
	// under its temporary name.
	o.Progress = func(p Progress) {
		if p.Phase == "pack" {
			cancel()
		}
	}
	_, err := Create(ctx, filepath.Join(dir, "c"), []string{src}, o)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		t.Errorf("left behind: %s", e.Name())
	}
}

func TestVanishedFileIsSkippedOrFatalWhenStrict(t *testing.T) {
	for _, strict := range []bool{false, true} {
		t.Run(fmt.Sprint("strict=", strict), func(t *testing.T) {
			src := t.TempDir()
			writeTree(t, src, map[string][]byte{"keep": []byte("keep"), "zgone": []byte("gone")})
			var warnings []error
			o := small()
			o.Strict = strict
			o.Warn = func(err error) { warnings = append(warnings, err) }
			removed := false
			o.Progress = func(p Progress) {
				if p.Phase == "pack" && !removed {
					removed = true
					os.Remove(filepath.Join(src, "zgone"))
				}
			}
			res, err := Create(context.Background(), filepath.Join(t.TempDir(), "v"), []string{src}, o)
			if strict {
				if err == nil || !strings.Contains(err.Error(), "zgone") {
					t.Fatalf("strict: err = %v, want an error naming the file", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			a := readBack(t, res.Volumes, 0)
			if _, ok := a.inode["zgone"]; ok || string(a.content["keep"]) != "keep" || res.Skipped != 1 {
				t.Fatalf("skipped=%d, entries %v", res.Skipped, a.inode)
			}
			if len(warnings) != 1 || !strings.Contains(warnings[0].Error(), "zgone") {
				t.Fatalf("warnings %v", warnings)
			}
		})
	}
}

func TestSeveralSourcesBecomeTopLevelEntries(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	writeTree(t, a, map[string][]byte{"x": []byte("1")})
	writeTree(t, b, map[string][]byte{"y": []byte("2")})
	file := filepath.Join(t.TempDir(), "single")
	os.WriteFile(file, []byte("3"), 0o644)
	res, err := Create(context.Background(), filepath.Join(t.TempDir(), "s"), []string{a, b, file}, small())
	if err != nil {
		t.Fatal(err)
	}
	ar := readBack(t, res.Volumes, 0)
	for p, want := range map[string]string{filepath.Base(a) + "/x": "1", filepath.Base(b) + "/y": "2", "single": "3"} {
		if string(ar.content[p]) != want {
			t.Errorf("%s = %q, want %q", p, ar.content[p], want)
		}
	}
}

// Several directory sources, each with many subdirectories, are packed
// whole: the scan of one goes on, on goroutines, while the next is added
// (they were added without the scan's lock; go test -race saw it).
func TestSeveralDirectorySourcesArePackedWhole(t *testing.T) {
	var sources []string
	want := map[string]string{}
	for s := range 3 {
		dir := t.TempDir()
		files := map[string][]byte{}
		for d := range 40 {
			for f := range 3 {
				p := fmt.Sprintf("d%02d/f%d", d, f)
				files[p] = []byte(fmt.Sprintf("%d/%s", s, p))
				want[filepath.Base(dir)+"/"+p] = string(files[p])
			}
		}
		writeTree(t, dir, files)
		sources = append(sources, dir)
	}
	res, err := Create(context.Background(), filepath.Join(t.TempDir(), "s"), sources, small())
	if err != nil {
		t.Fatal(err)
	}
	ar := readBack(t, res.Volumes, 0)
	if len(ar.content) != len(want) {
		t.Errorf("%d files packed, want %d", len(ar.content), len(want))
	}
	for p, c := range want {
		if string(ar.content[p]) != c {
			t.Errorf("%s = %q, want %q", p, ar.content[p], c)
		}
	}
}

// A source is the directory its path names as the kernel resolves it:
// "link/.." is the parent of link's target, not the directory holding
// link (which is what the text would say once cleaned). Its files are
// read through that path too, and none is skipped.
func TestASourceThroughASymlinkAndDotDotIsTheDirectoryItNames(t *testing.T) {
	real := t.TempDir()
	writeTree(t, real, map[string][]byte{"sub/f": []byte("in the real parent"), "g": []byte("beside sub")})
	elsewhere := t.TempDir()
	if err := os.Symlink(filepath.Join(real, "sub"), filepath.Join(elsewhere, "link")); err != nil {
		t.Fatal(err)
	}
	var warnings []error
	o := small()
	o.Warn = func(err error) { warnings = append(warnings, err) }
	res, err := Create(context.Background(), filepath.Join(t.TempDir(), "dd"), []string{filepath.Join(elsewhere, "link") + "/.."}, o)
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) > 0 || res.Skipped > 0 {
		t.Fatalf("warnings %v, %d skipped", warnings, res.Skipped)
	}
	ar := readBack(t, res.Volumes, 0)
	for p, want := range map[string]string{"sub/f": "in the real parent", "g": "beside sub"} {
		if string(ar.content[p]) != want {
			t.Errorf("%s = %q, want %q", p, ar.content[p], want)
		}
	}
}

func TestSimilarOrderPutsSameNamedFilesTogether(t *testing.T) {
	src := t.TempDir()
	files := map[string][]byte{}
	for _, v := range []string{"v1", "v2", "v3"} {
		files[v+"/lib/print.go"] = append(bytes.Repeat([]byte("func print() {}\n"), 300), v...)
		files[v+"/lib/scan.go"] = append(bytes.Repeat([]byte("func scan() {}\n"), 300), v...)
		files[v+"/README"] = []byte("readme " + v)
	}
	writeTree(t, src, files)
	o := small()
	o.Order = OrderSimilar
	o.Segments = &segment.Config{MinLen: -1}
	res, err := Create(context.Background(), filepath.Join(t.TempDir(), "sim"), []string{src}, o)
	if err != nil {
		t.Fatal(err)
	}
	a := readBack(t, res.Volumes, 0)
	for p, want := range files {
		if !bytes.Equal(a.content[p], want) {
			t.Fatalf("%s differs", p)
		}
	}
	off := func(p string) uint64 { return a.idx.Extents.Off[a.idx.Inodes.DataStart[a.inode[p]]] }
	// The three print.go sit side by side in the stream, before every scan.go.
	if !(off("v1/lib/print.go") < off("v2/lib/print.go") && off("v2/lib/print.go") < off("v3/lib/print.go") && off("v3/lib/print.go") < off("v1/lib/scan.go")) {
		t.Fatalf("stream order: print.go at %d %d %d, scan.go at %d", off("v1/lib/print.go"), off("v2/lib/print.go"), off("v3/lib/print.go"), off("v1/lib/scan.go"))
	}
	if v, _ := a.idx.Param("order"); v != "similar" {
		t.Fatalf("order parameter %q", v)
	}
}

func TestBlockSizeDefaultsByLevel(t *testing.T) {
	for _, tc := range []struct {
		level codec.Level
		block int64 // given; 0 = default
		want  string
	}{
		{codec.LevelDefault, 0, "1048576"},
		{codec.LevelHigh, 0, "1048576"},
		{codec.LevelMax, 0, "4194304"}, // the frame size below
		{codec.LevelMax, 64 << 10, "65536"},
	} {
		t.Run(fmt.Sprint(tc.level, "/", tc.block), func(t *testing.T) {
			src := t.TempDir()
			writeTree(t, src, map[string][]byte{"f": randBytes(1, 1000)})
			o := Options{FrameSize: 4 << 20, BlockSize: tc.block, Codec: codec.Options{Codec: "auto", Level: tc.level}}
			res, err := Create(context.Background(), filepath.Join(t.TempDir(), "a"), []string{src}, o)
			if err != nil {
				t.Fatal(err)
			}
			if got, _ := readBack(t, res.Volumes, 0).idx.Param("block-size"); got != tc.want {
				t.Fatalf("block size %s, want %s", got, tc.want)
			}
		})
	}
}

// Segment dedup follows the level unless asked for: off at fast (speed
// over size), on at the others; an explicit configuration wins.
func TestSegmentDedupDefaultsByLevel(t *testing.T) {
	base := randBytes(2, 300<<10)
	shifted := append(randBytes(3, 1000), base...) // no whole-file or chunk match (chunks off)
	src := t.TempDir()
	writeTree(t, src, map[string][]byte{"a": base, "b": shifted})
	on := segment.DefaultConfig()
	off := segment.Config{MinLen: -1}
	for _, tc := range []struct {
		level codec.Level
		segs  *segment.Config
		want  bool
	}{
		{codec.LevelFast, nil, false},
		{codec.LevelDefault, nil, true},
		{codec.LevelHigh, nil, true},
		{codec.LevelFast, &on, true},
		{codec.LevelDefault, &off, false},
	} {
		t.Run(fmt.Sprint(tc.level, "/", tc.segs != nil), func(t *testing.T) {
			o := small()
			o.Codec.Level, o.Segments, o.ChunkSize = tc.level, tc.segs, -1
			res, err := Create(context.Background(), filepath.Join(t.TempDir(), "a"), []string{src}, o)
			if err != nil {
				t.Fatal(err)
			}
			if got := res.SegmentBytes > 0; got != tc.want {
				t.Fatalf("segment bytes %d, want segments %v", res.SegmentBytes, tc.want)
			}
			dedup, _ := readBack(t, res.Volumes, 0).idx.Param("dedup")
			if got := strings.Contains(dedup, "segment:"); got != tc.want {
				t.Fatalf("dedup parameter %q, want segments %v", dedup, tc.want)
			}
		})
	}
}

// TestChunkTableStaysWithinChunkMemory: a table of chunks held to its
// smallest size still packs every byte back exactly, says that it was
// full, and keeps the recent chunks that later data repeats.
func TestChunkTableStaysWithinChunkMemory(t *testing.T) {
	old := randBytes(4, 8<<20) // about 2,000 chunks of 4 KiB: more than the table holds
	recent := old[len(old)-(1<<20):]
	src := t.TempDir()
	files := map[string][]byte{
		"a":      old,
		"b-near": append([]byte("a few bytes in front "), recent...), // no whole-file match
	}
	writeTree(t, src, files)
	for _, tc := range []struct {
		memory   int64
		wantFull bool
	}{
		{1, true}, // the table's floor: 1,024 slots
		{0, false},
	} {
		t.Run(fmt.Sprint("memory=", tc.memory), func(t *testing.T) {
			o := small()
			o.ChunkSize, o.Segments, o.ChunkMemory = 4<<10, &segment.Config{MinLen: -1}, tc.memory
			res, err := Create(context.Background(), filepath.Join(t.TempDir(), "a"), []string{src}, o)
			if err != nil {
				t.Fatal(err)
			}
			a := readBack(t, res.Volumes, 0)
			a.holds(t, files)
			if tc.wantFull != (res.ChunksLost > 0) {
				t.Fatalf("%d chunks lost, want the table full %v", res.ChunksLost, tc.wantFull)
			}
			if tc.wantFull && res.ChunkTableBytes > 1024*40 {
				t.Errorf("the table took %d bytes at its floor", res.ChunkTableBytes)
			}
			// The near copy of the last MiB is found among recent chunks
			// either way.
			if res.ChunkBytes < int64(len(recent))/2 {
				t.Errorf("chunk dedup saved %d bytes of the %d-byte near copy", res.ChunkBytes, len(recent))
			}
		})
	}
}

// A create refused because the archive exists still says that it
// finished the renames of a killed run first: that is the one run that
// did them.
func TestCreateRefusedSaysItFinishedAKilledRunsRenames(t *testing.T) {
	src := t.TempDir()
	writeTree(t, src, map[string][]byte{"f": randBytes(3, 10<<10)})
	out := filepath.Join(t.TempDir(), "a")
	if _, err := Create(context.Background(), out, []string{src}, small()); err != nil {
		t.Fatal(err)
	}
	// A killed create of the same archive had renamed nothing yet.
	v1 := format.VolumeName(out, 1)
	tmp := format.TempName(v1, format.NewTempTag())
	b, err := os.ReadFile(v1)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		t.Fatal(err)
	}
	var st syscall.Stat_t
	if err := syscall.Lstat(tmp, &st); err != nil {
		t.Fatal(err)
	}
	journal := fmt.Sprintf("arcpack commit 1\n%d %d %d %d %q %q\nend\n", st.Dev, st.Ino, st.Size, st.Mtim.Nano(), filepath.Base(tmp), filepath.Base(v1))
	if err := os.WriteFile(format.CommitName(out), []byte(journal), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = Create(context.Background(), out, []string{src}, small())
	if err == nil || !strings.Contains(err.Error(), "already exists") || !strings.Contains(err.Error(), "were just finished (1, "+v1) {
		t.Errorf("create: %v", err)
	}
	if _, err := os.Stat(tmp); err == nil {
		t.Errorf("%s is left", tmp)
	}
}

// A block size that does not divide the frame size is refused, saying
// which size to change: the frame size given, or, where only the block
// size was given, that a frame size must be given too.
func TestFrameAndBlockSizesMustFit(t *testing.T) {
	for _, tc := range []struct {
		name          string
		frame, block  int64
		want, notWant string
	}{
		{"block larger than the default frame", 0, 32 << 20, "default frame size 16777216", ""},
		{"block not dividing the default frame", 0, 3 << 20, "default frame size", ""},
		{"frame given too small", 16 << 20, 32 << 20, "frame size 16777216 must be a multiple of the block size 33554432", "default"},
		{"both given and fitting", 32 << 20, 32 << 20, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := Options{FrameSize: tc.frame, BlockSize: tc.block}
			err := o.normalize()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("error %v, want one saying %q", err, tc.want)
			case tc.notWant != "" && strings.Contains(err.Error(), tc.notWant):
				t.Fatalf("error %v says %q", err, tc.notWant)
			}
		})
	}
}
