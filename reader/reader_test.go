package reader

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"arc/cache"
	"arc/codec"
	"arc/format"
	"arc/internal/testtree"

	"golang.org/x/sys/unix"
)

// sampleTree has files larger than a block, a frame and a volume, holes,
// empty files, and small files packed into shared blocks.
func sampleTree() []entry {
	holey := entry{path: "d/holey", mode: format.ModeReg | 0o600, mtime: 5, atime: 6, segs: []seg{
		{hole: 10000}, {data: randBytes(7000, 3)}, {hole: 50000}, {data: randBytes(123, 4)}, {hole: 3},
	}}
	// Many extents: ReadAt finds offsets by binary search on cached sums.
	var many []seg
	for i := 0; i < 3*format.ExtentSearchMin; i++ {
		if i%3 == 2 {
			many = append(many, seg{hole: uint64(100 + i)})
		} else {
			many = append(many, seg{data: randBytes(50+i*7, byte(i))})
		}
	}
	return []entry{
		{path: "d/many", mode: format.ModeReg | 0o644, segs: many},
		dir("d"),
		reg("d/a", randBytes(1000, 1)),
		reg("d/big", randBytes(150_000, 2)),
		holey,
		reg("d/empty", nil),
		dir("d/sub"),
		reg("d/sub/x", []byte("hello, world\n")),
		reg("top", randBytes(40_000, 5)),
	}
}

func contentOf(entries []entry) map[string][]byte {
	m := map[string][]byte{}
	for _, e := range entries {
		if e.mode&format.ModeType == format.ModeReg {
			m[e.path] = dataOf(e.segs)
		}
	}
	return m
}

func TestReadReturnsArchivedBytes(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    buildOpts
	}{
		{"one volume lz4", buildOpts{}},
		{"one volume raw", buildOpts{codec: "raw"}},
		{"small volumes, blocks span them", buildOpts{volumeSize: 4096, blockSize: 4096}},
		{"odd volume size, big blocks", buildOpts{volumeSize: 5003, blockSize: 65536, frameBlocks: 2}},
		{"raw blocks across volumes", buildOpts{volumeSize: 4500, blockSize: 10000, codec: "raw"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			entries := sampleTree()
			b := buildArchive(t, t.TempDir(), "arc", entries, tc.o)
			a, err := Open(b.volumes[len(b.volumes)/2], Options{CacheSize: 64 << 10})
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			if len(a.Volumes()) != len(b.volumes) {
				t.Fatalf("volumes %v, want %v", a.Volumes(), b.volumes)
			}
			for path, want := range contentOf(entries) {
				ino := inodeOf(t, a, path)
				for _, chunk := range []int{1 << 20, 4096, 777} {
					got, err := readAll(a, ino, chunk)
					if err != nil {
						t.Fatalf("%s: %v", path, err)
					}
					if !bytes.Equal(got, want) {
						t.Fatalf("%s read in %d-byte chunks: %d bytes differ from the %d archived", path, chunk, len(got), len(want))
					}
				}
				// Random ranges.
				r := rand.New(rand.NewPCG(1, uint64(len(want))))
				for i := 0; i < 50 && len(want) > 0; i++ {
					off := r.IntN(len(want))
					n := r.IntN(len(want)-off) + 1
					p := make([]byte, n)
					k, err := a.ReadAt(ino, p, int64(off))
					if k != n || (err != nil && err != io.EOF) {
						t.Fatalf("%s ReadAt(%d,+%d) = %d, %v", path, off, n, k, err)
					}
					if !bytes.Equal(p, want[off:off+n]) {
						t.Fatalf("%s ReadAt(%d,+%d) differs", path, off, n)
					}
				}
			}
		})
	}
}

func TestReadAtFollowsReaderAtSemantics(t *testing.T) {
	entries := sampleTree()
	b := buildArchive(t, t.TempDir(), "arc", entries, buildOpts{})
	a, err := Open(b.volumes[0], Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	ino := inodeOf(t, a, "d/sub/x")
	p := make([]byte, 100)
	n, err := a.ReadAt(ino, p, 7)
	if n != 6 || err != io.EOF || string(p[:n]) != "world\n" {
		t.Fatalf("read past the end: %d %v %q", n, err, p[:n])
	}
	if n, err := a.ReadAt(ino, p, 13); n != 0 || err != io.EOF {
		t.Fatalf("read at the end: %d %v", n, err)
	}
	if _, err := a.ReadAt(inodeOf(t, a, "d"), p, 0); err == nil {
		t.Fatal("reading a directory succeeded")
	}
	if _, err := a.ReadAt(1<<30, p, 0); err == nil {
		t.Fatal("reading a nonexistent inode succeeded")
	}
	if n, err := a.ReadAt(inodeOf(t, a, "d/empty"), p, 0); n != 0 || err != io.EOF {
		t.Fatalf("empty file: %d %v", n, err)
	}
}

func TestOpenFindsTheSetFromAnyName(t *testing.T) {
	b := buildArchive(t, t.TempDir(), "my.backup", sampleTree(), buildOpts{volumeSize: 4096})
	if len(b.volumes) < 5 {
		t.Fatalf("want many volumes, got %d", len(b.volumes))
	}
	for _, p := range []string{b.volumes[0], b.volumes[3], b.volumes[len(b.volumes)-1], b.base} {
		a, err := Open(p, Options{})
		if err != nil {
			t.Fatalf("Open(%s): %v", p, err)
		}
		if a.Footer().ID != b.id || a.VolumeSize() != 4096 {
			t.Fatalf("Open(%s): wrong archive", p)
		}
		a.Close()
	}
}

func TestPathAndResolveAreInverse(t *testing.T) {
	b := buildArchive(t, t.TempDir(), "arc", sampleTree(), buildOpts{})
	a, err := Open(b.volumes[0], Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	n := 0
	a.Index().Walk(func(p []byte, d uint32) error {
		n++
		if got := a.Path(d); got != string(p) {
			t.Errorf("Path(%d) = %q, want %q", d, got, p)
		}
		if got, err := a.Resolve(string(p)); err != nil || got != d {
			t.Errorf("Resolve(%q) = %d, %v; want %d", p, got, err, d)
		}
		return nil
	})
	if n != 9 {
		t.Fatalf("walked %d entries", n)
	}
	if d, err := a.Resolve(""); err != nil || d != 0 {
		t.Fatalf("root: %d %v", d, err)
	}
	if _, err := a.Resolve("d/nope"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing path: %v", err)
	}
	if _, err := a.Resolve("top/x"); err == nil {
		t.Fatal("path through a file resolved")
	}
	if _, err := a.Resolve("../etc"); err == nil {
		t.Fatal("'..' resolved")
	}
}

// streamFileOffset returns the volume path and file offset of stream offset off.
func streamFileOffset(b *built, off int64) (string, int64) {
	v, fo := b.layout.Locate(off)
	return format.VolumeName(b.base, v), fo
}

// resealFooter rewrites the footer at the end of b's last volume with edit
// applied, its checksum made right again.
func resealFooter(t *testing.T, b *built, edit func(f *format.Footer)) {
	t.Helper()
	last := b.volumes[len(b.volumes)-1]
	data, err := os.ReadFile(last)
	if err != nil {
		t.Fatal(err)
	}
	f, err := format.ParseFooter(data)
	if err != nil {
		t.Fatal(err)
	}
	edit(&f)
	fb, _ := f.MarshalBinary()
	copy(data[len(data)-format.FooterSize:], fb)
	if err := os.WriteFile(last, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func flipByte(t *testing.T, path string, off int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	c := []byte{0}
	if _, err := f.ReadAt(c, off); err != nil {
		t.Fatal(err)
	}
	c[0] ^= 0x55
	if _, err := f.WriteAt(c, off); err != nil {
		t.Fatal(err)
	}
}

func TestDamagedBlockIsLocal(t *testing.T) {
	for _, codecName := range []string{"lz4", "raw"} {
		t.Run(codecName, func(t *testing.T) {
			entries := sampleTree()
			b := buildArchive(t, t.TempDir(), "arc", entries, buildOpts{codec: codecName, volumeSize: 8192})
			// Damage the block holding d/big's byte 100000.
			x := b.idx
			bigIno := uint32(0)
			for ino := 0; ino < x.Inodes.Count(); ino++ {
				if x.Inodes.Size[ino] == 150_000 {
					bigIno = uint32(ino)
				}
			}
			s, _ := x.FileExtents(bigIno)
			blk := x.BlockAt(x.Extents.Off[s] + 100_000)
			vol, fo := streamFileOffset(b, int64(x.BlockStoredOff[blk])+2)
			flipByte(t, vol, fo)

			var logged []string
			var mu sync.Mutex
			a, err := Open(b.volumes[0], Options{Logf: func(f string, args ...any) {
				mu.Lock()
				logged = append(logged, fmt.Sprintf(f, args...))
				mu.Unlock()
			}})
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			_, err = readAll(a, inodeOf(t, a, "d/big"), 4096)
			var be *BlockError
			if !errors.Is(err, ErrDamaged) || !errors.As(err, &be) {
				t.Fatalf("reading the damaged file: %v", err)
			}
			if be.Block != blk || be.Frame != x.FrameOf(blk) || be.Volume != vol {
				t.Fatalf("error names block %d frame %d volume %s; want %d %d %s", be.Block, be.Frame, be.Volume, blk, x.FrameOf(blk), vol)
			}
			if !strings.Contains(err.Error(), vol) {
				t.Fatalf("error does not name the volume: %v", err)
			}
			// The start of the same file, before the damage, still reads.
			p := make([]byte, 1000)
			if _, err := a.ReadAt(inodeOf(t, a, "d/big"), p, 0); err != nil {
				t.Fatalf("undamaged range of the damaged file: %v", err)
			}
			for path, want := range contentOf(entries) {
				if path == "d/big" {
					continue
				}
				got, err := readAll(a, inodeOf(t, a, path), 1<<16)
				if err != nil || !bytes.Equal(got, want) {
					t.Fatalf("%s next to the damage: %v", path, err)
				}
			}
			noneLent(t, a)
			mu.Lock()
			defer mu.Unlock()
			if len(logged) == 0 || !strings.Contains(logged[0], "block") {
				t.Fatalf("damage not logged: %q", logged)
			}
		})
	}
}

// manyVolumes builds an archive whose d/big spans several volumes and
// whose other files lie in the first volumes.
func manyVolumes(t *testing.T) ([]entry, *built) {
	entries := []entry{
		reg("a", randBytes(2000, 1)),
		reg("b", randBytes(3000, 2)),
		reg("c-big", randBytes(60_000, 3)),
	}
	b := buildArchive(t, t.TempDir(), "arc", entries, buildOpts{volumeSize: 4096, codec: "raw"})
	return entries, b
}

// Opening an archive of many volumes holds at most maxOpenVolumes of them
// open: one of thousands must open under a process's usual limit of 1,024
// descriptors. Every byte still reads back, the others opened when read.
func TestOpeningManyVolumesHoldsFewOpen(t *testing.T) {
	entries := []entry{reg("big", randBytes(600_000, 7))}
	b := buildArchive(t, t.TempDir(), "arc", entries, buildOpts{volumeSize: 4096, codec: "raw"})
	if len(b.volumes) < 2*maxOpenVolumes {
		t.Fatalf("%d volumes, want over %d", len(b.volumes), 2*maxOpenVolumes)
	}
	fds := func() int {
		ents, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			t.Skip("no /proc/self/fd:", err)
		}
		return len(ents)
	}
	before := fds()
	// A limit the open must stay under all along, not only once done.
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	low := lim
	low.Cur = uint64(before + maxOpenVolumes + 24)
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &low); err != nil {
		t.Fatal(err)
	}
	a, err := Open(b.volumes[0], Options{})
	unix.Setrlimit(unix.RLIMIT_NOFILE, &lim)
	if err != nil {
		t.Fatalf("open under a limit of %d descriptors: %v", low.Cur, err)
	}
	defer a.Close()
	if n := fds() - before; n > maxOpenVolumes+8 {
		t.Errorf("%d descriptors more once open (%d volumes), want at most about %d", n, len(b.volumes), maxOpenVolumes)
	}
	if got, err := readAll(a, inodeOf(t, a, "big"), 600_000); err != nil || !bytes.Equal(got, contentOf(entries)["big"]) {
		t.Errorf("big: %d bytes, %v", len(got), err)
	}
}

// A volume that cannot be opened for the process's limit of open files is
// no damage: verify stops with the limit, as extract does, and neither
// counts a damaged block or file.
func TestTheLimitOfOpenFilesMetReadingIsNoDamage(t *testing.T) {
	entries := []entry{reg("big", randBytes(600_000, 7))}
	b := buildArchive(t, t.TempDir(), "arc", entries, buildOpts{volumeSize: 4096, codec: "raw"})
	if len(b.volumes) <= maxOpenVolumes {
		t.Fatalf("%d volumes, want more than the %d held open", len(b.volumes), maxOpenVolumes)
	}
	a := openBuiltWith(t, b, Options{})
	a.vols.openHook = func(uint32) (*os.File, error) {
		return nil, &os.PathError{Op: "open", Path: "a volume", Err: unix.EMFILE}
	}
	rep, err := a.Verify(VerifyOptions{})
	if !format.TooManyOpen(err) || rep != nil {
		t.Errorf("verify: %+v, %v; want the limit", rep, err)
	}
	res, err := a.Extract(filepath.Join(t.TempDir(), "x"), ExtractOptions{Warn: func(err error) { t.Errorf("warned: %v", err) }})
	if !format.TooManyOpen(err) || res != nil && res.Damaged != 0 {
		t.Errorf("extract: %+v, %v; want the limit, no damage", res, err)
	}
}

// fullLastVolume builds manyVolumes' archive with c-big sized so that the
// last volume is exactly a volume long (the stream a multiple of a
// volume's payload).
func fullLastVolume(t *testing.T) *built {
	o := buildOpts{volumeSize: 4096, codec: "raw"}
	p := format.Layout{VolumeSize: o.volumeSize}.Payload()
	n := 60_000
	for range 8 { // the index's size moves a little with c-big's
		b := buildArchive(t, t.TempDir(), "arc", []entry{
			reg("a", randBytes(2000, 1)),
			reg("b", randBytes(3000, 2)),
			reg("c-big", randBytes(n, 3)),
		}, o)
		short := (p - int64(b.footer.StreamSize)%p) % p
		if short == 0 {
			return b
		}
		n += int(short)
	}
	t.Fatal("no size of c-big makes the last volume full")
	return nil
}

// indexBeforeTheLastVolume builds manyVolumes' archive with c-big sized so
// that the index starts 16 bytes before a volume's end: the volume that
// holds the index's start is not the last one (in manyVolumes' own archive
// the whole index lies in the last volume).
func indexBeforeTheLastVolume(t *testing.T) *built {
	o := buildOpts{volumeSize: 4096, codec: "raw"}
	p := format.Layout{VolumeSize: o.volumeSize}.Payload()
	n := 60_000 + int(p-16-(2000+3000+60_000)%p)
	b := buildArchive(t, t.TempDir(), "arc", []entry{
		reg("a", randBytes(2000, 1)),
		reg("b", randBytes(3000, 2)),
		reg("c-big", randBytes(n, 3)),
	}, o)
	if v, _ := b.layout.Locate(int64(b.footer.IndexOffset)); int(v) == len(b.volumes) {
		t.Fatalf("the index starts in the last volume %d", v)
	}
	return b
}

func TestOpenRefusesBrokenVolumeSets(t *testing.T) {
	last := func(b *built) string { return b.volumes[len(b.volumes)-1] }
	for _, tc := range []struct {
		name    string
		fixture func(t *testing.T) *built // manyVolumes' archive when nil
		breaks  func(t *testing.T, b *built) (open string, want []string)
	}{
		{"missing last volume", nil, func(t *testing.T, b *built) (string, []string) {
			os.Remove(last(b))
			return b.volumes[0], []string{last(b), "is missing"}
		}},
		{"truncated last volume", nil, func(t *testing.T, b *built) (string, []string) {
			st, _ := os.Stat(last(b))
			os.Truncate(last(b), st.Size()-1)
			return b.volumes[0], []string{last(b), "truncated"}
		}},
		// The footer is read from the last volume's end: a stream size that
		// puts it elsewhere is the footer's own inconsistency, not a short
		// volume.
		{"footer claims a longer stream", nil, func(t *testing.T, b *built) (string, []string) {
			resealFooter(t, b, func(f *format.Footer) { f.StreamSize += 1000 })
			return b.volumes[0], []string{last(b), "corrupt", "stream"}
		}},
		{"footer claims a stream 2^32 volumes longer", nil, func(t *testing.T, b *built) (string, []string) {
			resealFooter(t, b, func(f *format.Footer) { f.StreamSize += 1 << 32 * uint64(b.layout.Payload()) })
			return b.volumes[0], []string{last(b), "corrupt", "stream"}
		}},
		{"last volume of another archive", nil, func(t *testing.T, b *built) (string, []string) {
			_, other := manyVolumes(t)
			testtree.CopyFile(t, other.volumes[len(other.volumes)-1], last(b))
			return b.volumes[0], []string{last(b), "another archive"}
		}},
		{"index checksum mismatch", nil, func(t *testing.T, b *built) (string, []string) {
			vol, fo := streamFileOffset(b, int64(b.footer.IndexOffset)+int64(b.footer.IndexSize)/2)
			flipByte(t, vol, fo)
			// Named: the volume that holds the index, not volume 1.
			if vol == b.volumes[0] {
				t.Fatal("the index lies in volume 1")
			}
			return b.volumes[0], []string{"index checksum", vol}
		}},
		{"missing volume holding the index", indexBeforeTheLastVolume, func(t *testing.T, b *built) (string, []string) {
			v, _ := b.layout.Locate(int64(b.footer.IndexOffset))
			os.Remove(b.volumes[v-1])
			return b.volumes[0], []string{b.volumes[v-1], "missing", "index"}
		}},
		{"no valid header anywhere", nil, func(t *testing.T, b *built) (string, []string) {
			for _, v := range b.volumes {
				os.WriteFile(v, bytes.Repeat([]byte("x"), 4096), 0o644)
			}
			return b.volumes[1], []string{b.volumes[1], "not an arc archive"}
		}},
		{"truncated volume holding the index", indexBeforeTheLastVolume, func(t *testing.T, b *built) (string, []string) {
			v, fo := b.layout.Locate(int64(b.footer.IndexOffset))
			os.Truncate(b.volumes[v-1], fo)
			return b.volumes[0], []string{b.volumes[v-1], "index", "truncated"}
		}},
		// A last volume exactly a volume long whose footer is there but
		// broken: said as a broken footer, not as a volume missing after
		// it (that is for one without footer magic).
		{"broken footer of a full last volume", fullLastVolume, func(t *testing.T, b *built) (string, []string) {
			st, _ := os.Stat(last(b))
			flipByte(t, last(b), st.Size()-format.FooterSize+20) // inside, not its magic
			return b.volumes[0], []string{last(b), "truncated or not the last volume: corrupt: footer"}
		}},
		{"last volume missing, the one before it too long", nil, func(t *testing.T, b *built) (string, []string) {
			os.Remove(last(b))
			before := b.volumes[len(b.volumes)-2]
			f, _ := os.OpenFile(before, os.O_WRONLY|os.O_APPEND, 0)
			f.WriteString("extra")
			f.Close()
			return b.volumes[0], []string{last(b) + " is missing: " + before + " is a full volume without a footer"}
		}},
		{"full last volume without a footer", fullLastVolume, func(t *testing.T, b *built) (string, []string) {
			st, _ := os.Stat(last(b))
			for i := int64(1); i <= format.FooterSize; i++ {
				flipByte(t, last(b), st.Size()-i)
			}
			next := format.VolumeName(b.base, uint32(len(b.volumes)+1))
			return b.volumes[0], []string{next + " is missing: " + last(b) + " is a full volume without a footer"}
		}},
		// The last volume, which holds the footer, not under its own
		// name: said as that, not as a volume after it missing or a
		// footer that miscounts.
		{"last two volumes' names swapped", nil, func(t *testing.T, b *built) (string, []string) {
			n := len(b.volumes)
			before := b.volumes[n-2]
			os.Rename(last(b), last(b)+".x")
			os.Rename(before, last(b))
			os.Rename(last(b)+".x", before)
			return b.volumes[0], []string{"volumes not under their own names", fmt.Sprintf("%s holds volume %d (%s)", before, n, last(b)), fmt.Sprintf("%s holds volume %d (%s)", last(b), n-1, before)}
		}},
		{"last volume renamed past the end", nil, func(t *testing.T, b *built) (string, []string) {
			far := format.VolumeName(b.base, 30)
			os.Rename(last(b), far)
			return b.volumes[0], []string{fmt.Sprintf("%s holds volume %d (%s)", far, len(b.volumes), last(b))}
		}},
		{"a copy of volume 2 past the end, named", nil, func(t *testing.T, b *built) (string, []string) {
			far := format.VolumeName(b.base, 30)
			testtree.CopyFile(t, b.volumes[1], far)
			return far, []string{far + ": corrupt: header says this is volume 2, whose name is " + b.volumes[1], "opens by its first volume, " + b.volumes[0]}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b *built
			if tc.fixture != nil {
				b = tc.fixture(t)
			} else {
				_, b = manyVolumes(t)
			}
			open, want := tc.breaks(t, b)
			a, err := Open(open, Options{})
			if err == nil {
				a.Close()
				t.Fatal("opened")
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error spans lines: %q", err)
			}
			for _, w := range want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

// A volume from elsewhere in the set's place (another archive's, another
// run's of the same tree, or a copy of another of its volumes) is not
// read: local damage, named for what it is, as a missing volume is, even
// when it is the volume named. The set is the archive most volumes say.
func TestAVolumeFromElsewhereIsLocalDamage(t *testing.T) {
	for _, tc := range []struct {
		name    string
		replace func(t *testing.T, b *built) (vol int, why string)
	}{
		{"another archive's volume 2", func(t *testing.T, b *built) (int, string) {
			_, other := manyVolumes(t)
			testtree.CopyFile(t, other.volumes[1], b.volumes[1])
			return 1, "volume of another archive"
		}},
		{"another archive's volume 1, the one named", func(t *testing.T, b *built) (int, string) {
			_, other := manyVolumes(t)
			testtree.CopyFile(t, other.volumes[0], b.volumes[0])
			return 0, "volume of another archive"
		}},
		{"its own volume 2 copied over volume 3", func(t *testing.T, b *built) (int, string) {
			testtree.CopyFile(t, b.volumes[1], b.volumes[2])
			return 2, "header says this is volume 2"
		}},
		{"its own volume 2 copied over volume 1, the one named", func(t *testing.T, b *built) (int, string) {
			testtree.CopyFile(t, b.volumes[1], b.volumes[0])
			return 0, "header says this is volume 2"
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			entries, b := manyVolumes(t)
			vol, why := tc.replace(t, b)
			a, err := Open(b.volumes[0], Options{CacheSize: 1})
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			if d := a.DamagedVolumes(); len(d) != 1 || !strings.Contains(d[0].Error(), b.volumes[vol]+": ") || !strings.Contains(d[0].Error(), why) {
				t.Fatalf("damaged volumes %v, want %s: %s", d, b.volumes[vol], why)
			}
			failed := 0
			for p, want := range contentOf(entries) {
				got, err := readAll(a, inodeOf(t, a, p), 1<<20)
				switch {
				case err == nil && !bytes.Equal(got, want):
					t.Errorf("%s: wrong bytes", p)
				case err != nil && (!errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), why)):
					t.Errorf("%s: %v, want damage saying %q", p, err, why)
				case err != nil:
					failed++
				}
			}
			if failed == 0 {
				t.Error("no file held bytes in the volume from elsewhere")
			}
		})
	}
}

// The archive is the one most volumes name whichever volume is named, also
// when the foreign one named is the last volume of a shorter archive: its
// footer must not make the set's own later volumes strays.
func TestAForeignLastVolumeNamedDoesNotTakeTheSetOver(t *testing.T) {
	b := buildArchive(t, t.TempDir(), "arc", []entry{reg("a", randBytes(9000, 8))}, buildOpts{volumeSize: 4096, codec: "raw"})
	other := buildArchive(t, t.TempDir(), "arc", []entry{reg("x", randBytes(5000, 9))}, buildOpts{volumeSize: 4096, codec: "raw"})
	if len(other.volumes) != 2 || len(b.volumes) != 3 {
		t.Fatalf("want a 2-volume archive beside one of 3, got %d and %d", len(other.volumes), len(b.volumes))
	}
	testtree.CopyFile(t, other.volumes[1], b.volumes[1])
	for _, name := range []string{b.volumes[0], b.volumes[1]} {
		a, err := Open(name, Options{})
		if err != nil {
			t.Fatalf("open %s: %v", name, err)
		}
		d := a.DamagedVolumes()
		if len(a.Volumes()) != len(b.volumes) || len(a.StrayVolumes()) != 0 || len(d) != 1 || !strings.Contains(d[0].Error(), b.volumes[1]+": volume of another archive") {
			t.Errorf("open %s: %d volumes (want %d), strays %q, damaged %v; want %s as the foreign one", name, len(a.Volumes()), len(b.volumes), a.StrayVolumes(), d, b.volumes[1])
		}
		a.Close()
	}
}

func TestMissingMiddleVolumeIsLocalDamage(t *testing.T) {
	entries, b := manyVolumes(t)
	if len(b.volumes) < 6 {
		t.Fatalf("want ≥ 6 volumes, have %d", len(b.volumes))
	}
	gone := b.volumes[4]
	os.Remove(gone)
	a, err := Open(b.volumes[0], Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if m := a.MissingVolumes(); len(m) != 1 || m[0] != gone {
		t.Fatalf("missing volumes %v", m)
	}
	var be *BlockError
	for _, name := range []string{"a", "b", "c-big"} {
		if _, err = readAll(a, inodeOf(t, a, name), 1<<20); err != nil {
			break
		}
	}
	if !errors.As(err, &be) || !errors.Is(err, ErrDamaged) || be.Volume != gone {
		t.Fatalf("reading across the missing volume: %v", err)
	}
	for _, p := range []string{"a", "b"} {
		got, err := readAll(a, inodeOf(t, a, p), 1<<20)
		if err != nil || !bytes.Equal(got, contentOf(entries)[p]) {
			t.Fatalf("%s: %v", p, err)
		}
	}
}

// A block whose stored bytes span volumes and fail their checksum names
// the volumes they lie in, first to last: nothing says which one holds the
// bad bytes, and naming only the first sent users to a volume that was
// fine.
func TestABadBlockAcrossVolumesNamesTheVolumesItSpans(t *testing.T) {
	_, b := manyVolumes(t)
	a, err := Open(b.volumes[0], Options{})
	if err != nil {
		t.Fatal(err)
	}
	// The block that spans the most volumes.
	x := a.Index()
	var end int64
	var first, last uint32
	for blk := range uint32(x.Blocks.Count()) {
		s, e := int64(x.BlockStoredOff[blk]), int64(x.BlockStoredOff[blk+1])
		f, _ := b.layout.Locate(s)
		l, _ := b.layout.Locate(e - 1)
		if l-f > last-first {
			end, first, last = e, f, l
		}
	}
	a.Close()
	if last == first {
		t.Fatalf("no block spans two volumes or more")
	}
	vol, off := streamFileOffset(b, end-1) // in the last volume, not the first
	flipByte(t, vol, off)
	a, err = Open(b.volumes[0], Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	var be *BlockError
	for _, name := range []string{"a", "b", "c-big"} {
		if _, err = readAll(a, inodeOf(t, a, name), 1<<20); err != nil {
			break
		}
	}
	if !errors.As(err, &be) || be.Volume != b.volumes[first-1] || be.LastVolume != b.volumes[last-1] {
		t.Fatalf("reading the bad block: %v; want it to name %s to %s", err, b.volumes[first-1], b.volumes[last-1])
	}
	if want := fmt.Sprintf("(frame %d, volumes %s to %s)", be.Frame, b.volumes[first-1], b.volumes[last-1]); !strings.Contains(be.Error(), want) {
		t.Errorf("%q lacks %q", be.Error(), want)
	}
}

// TestDamagedVolumeIsLocalDamage: a middle volume that is short or too
// long, or whose header no longer parses (even the volume named on the command line), is
// reported by DamagedVolumes; the archive opens, blocks past the short
// volume's end read as damaged, and everything else reads intact.
func TestDamagedVolumeIsLocalDamage(t *testing.T) {
	for _, tc := range []struct {
		name      string
		vol       int // 0-based volume to damage
		damage    func(path string)
		open      int
		want      string
		bigBroken bool
	}{
		{"truncated middle volume", 4, func(p string) { os.Truncate(p, 4000) }, 0, "truncated: 4000 bytes, want 4096", true},
		{"truncated inside the header", 4, func(p string) { os.Truncate(p, 20) }, 0, "truncated: 20 bytes, want 4096", true},
		// Bytes past a middle volume's end lose nothing: the volume is
		// read as far as it should go, and reported.
		{"bytes appended to a middle volume", 4, func(p string) {
			f, _ := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
			f.WriteString("extra\n")
			f.Close()
		}, 0, "corrupt: 4102 bytes, want 4096 (trailing data)", false},
		{"flipped header checksum and bytes appended", 4, func(p string) {
			flipByte(t, p, 45)
			f, _ := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
			f.WriteString("extra\n")
			f.Close()
		}, 0, "damaged header: corrupt: volume header checksum … , and corrupt: 4102 bytes, want 4096 (trailing data)", false},
		{"flipped header checksum", 4, func(p string) { flipByte(t, p, 45) }, 0, "damaged header: corrupt: volume header checksum", false},
		{"given volume's magic overwritten", 0, func(p string) { flipByte(t, p, 0) }, 0, "damaged header: not an arc archive", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			entries, b := manyVolumes(t)
			if len(b.volumes) < 6 {
				t.Fatalf("want ≥ 6 volumes, have %d", len(b.volumes))
			}
			tc.damage(b.volumes[tc.vol])
			a, err := Open(b.volumes[tc.open], Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			d := a.DamagedVolumes()
			ok := len(d) == 1 && strings.HasPrefix(d[0].Error(), b.volumes[tc.vol]+": ")
			for _, w := range strings.Split(tc.want, " … ") { // pieces, in order
				ok = ok && strings.Contains(d[0].Error(), w)
			}
			if !ok {
				t.Fatalf("damaged volumes %v, want one naming %s: ...%s", d, b.volumes[tc.vol], tc.want)
			}
			rep, err := a.Verify(VerifyOptions{})
			if err != nil || rep.Intact() {
				t.Fatalf("verify: %v, intact %v", err, rep != nil && rep.Intact())
			}
			for p, want := range contentOf(entries) {
				got, err := readAll(a, inodeOf(t, a, p), 1<<20)
				if p == "c-big" && tc.bigBroken {
					var be *BlockError
					if !errors.As(err, &be) || be.Volume != b.volumes[tc.vol] || !errors.Is(err, format.ErrTruncated) {
						t.Errorf("reading past the short volume: %v", err)
					}
					continue
				}
				if err != nil || !bytes.Equal(got, want) {
					t.Errorf("%s: %v", p, err)
				}
			}
		})
	}
}

// A lone file shorter than a volume header is not taken for a volume cut
// short: nothing vouches for it, and any small file is as short.
func TestALoneFileShorterThanAHeaderIsNotAnArchive(t *testing.T) {
	for _, size := range []int{0, 3, format.VolumeHeaderSize - 1} {
		p := filepath.Join(t.TempDir(), "x.001")
		if err := os.WriteFile(p, bytes.Repeat([]byte("a"), size), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := Open(p, Options{})
		if !errors.Is(err, format.ErrNotArchive) || !strings.Contains(err.Error(), fmt.Sprintf("%s: not an arc archive: %d bytes, shorter than a volume header", p, size)) {
			t.Errorf("%d bytes: %v, want not an arc archive, with its size", size, err)
		}
	}
}

// TestDamagedHeaderOfALoneVolume: a one-volume archive whose header no
// longer parses opens on its footer's word; the damage is reported and
// every file reads.
func TestDamagedHeaderOfALoneVolume(t *testing.T) {
	entries := sampleTree()
	b := buildArchive(t, t.TempDir(), "arc", entries, buildOpts{})
	if len(b.volumes) != 1 {
		t.Fatalf("want one volume, have %d", len(b.volumes))
	}
	flipByte(t, b.volumes[0], 0) // the magic
	a, err := Open(b.volumes[0], Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if d := a.DamagedVolumes(); len(d) != 1 || !strings.Contains(d[0].Error(), b.volumes[0]+": damaged header") {
		t.Fatalf("damaged volumes %v", d)
	}
	for p, want := range contentOf(entries) {
		got, err := readAll(a, inodeOf(t, a, p), 1<<20)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s: %v", p, err)
		}
	}
}

func TestFooterInItsOwnVolume(t *testing.T) {
	// Find a file size that leaves fewer than 80 bytes in the last volume
	// before the footer, so that the footer starts a volume of its own.
	probe := buildArchive(t, t.TempDir(), "arc", []entry{reg("f", randBytes(9000, 1))}, buildOpts{volumeSize: 4096, codec: "raw"})
	p := probe.layout.Payload()
	target := int(3*p) - int(probe.footer.IndexSize) - 40
	for size := target - 30; size < target+30; size++ {
		dirT := t.TempDir()
		entries := []entry{reg("f", randBytes(size, 1))}
		b := buildArchive(t, dirT, "arc", entries, buildOpts{volumeSize: 4096, codec: "raw"})
		last, _ := os.Stat(b.volumes[len(b.volumes)-1])
		if last.Size() != format.VolumeHeaderSize+format.FooterSize {
			continue
		}
		a, err := Open(b.volumes[0], Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		got, err := readAll(a, inodeOf(t, a, "f"), 1<<20)
		if err != nil || !bytes.Equal(got, dataOf(entries[0].segs)) {
			t.Fatalf("f: %v", err)
		}
		return
	}
	t.Fatal("no size put the footer in its own volume")
}

// TestVerifyChecksThePadding: the zero bytes that push the footer into a
// volume of its own are covered too — a flipped one is index damage in
// Verify's report, while the archive still opens and reads.
func TestVerifyChecksThePadding(t *testing.T) {
	probe := buildArchive(t, t.TempDir(), "arc", []entry{reg("f", randBytes(9000, 1))}, buildOpts{volumeSize: 4096, codec: "raw"})
	p := probe.layout.Payload()
	target := int(3*p) - int(probe.footer.IndexSize) - 40
	for size := target - 30; size < target+30; size++ {
		b := buildArchive(t, t.TempDir(), "arc", []entry{reg("f", randBytes(size, 1))}, buildOpts{volumeSize: 4096, codec: "raw"})
		end := int64(b.footer.IndexOffset + b.footer.IndexSize)
		pad := int64(b.footer.StreamSize) - format.FooterSize - end
		if pad <= 0 {
			continue
		}
		vol, fo := streamFileOffset(b, end+pad/2)
		flipByte(t, vol, fo)
		_, rep := openVerified(t, b.volumes[0], Options{})
		if rep.IndexOK || !strings.Contains(fmt.Sprint(rep.IndexErr), "padding byte") || len(rep.Damaged) != 0 {
			t.Fatalf("flipped padding: index ok %v (%v), %d damaged blocks", rep.IndexOK, rep.IndexErr, len(rep.Damaged))
		}
		return
	}
	t.Fatal("no size gave the archive padding before its footer")
}

func TestConcurrentReadsAgree(t *testing.T) {
	entries := sampleTree()
	b := buildArchive(t, t.TempDir(), "arc", entries, buildOpts{volumeSize: 4096, blockSize: 4096})
	// A cache of a few blocks forces evictions while readers hold buffers.
	a, err := Open(b.volumes[0], Options{CacheSize: 3 * 4096, Workers: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	want := contentOf(entries)
	var paths []string
	for p := range want {
		if len(want[p]) > 0 {
			paths = append(paths, p)
		}
	}
	var wg sync.WaitGroup
	errc := make(chan error, 8)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(g), 7))
			for i := 0; i < 200; i++ {
				p := paths[r.IntN(len(paths))]
				w := want[p]
				off := r.IntN(len(w))
				n := r.IntN(min(len(w)-off, 20000)) + 1
				buf := make([]byte, n)
				if _, err := a.ReadAt(inodeOf(t, a, p), buf, int64(off)); err != nil && err != io.EOF {
					errc <- err
					return
				}
				if !bytes.Equal(buf, w[off:off+n]) {
					errc <- fmt.Errorf("%s [%d,+%d) differs", p, off, n)
					return
				}
			}
		}(g)
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
}

func TestSequentialReadPrefetchesWithoutThrashing(t *testing.T) {
	data := randBytes(400*4096, 9)
	entries := []entry{reg("f", data)}
	b := buildArchive(t, t.TempDir(), "arc", entries, buildOpts{blockSize: 4096, frameBlocks: 4})
	nblocks := int64(b.idx.Blocks.Count())
	// The cache holds 8 blocks: far less than the file.
	a, err := Open(b.volumes[0], Options{CacheSize: 8 * 4096, Prefetch: 1, Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	got, err := readAfterWaiting(a, inodeOf(t, a, "f"), 0, len(data), 1024, func() bool { return a.CacheStats().PrefetchLoads > 0 })
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read: %v", err)
	}
	st := a.CacheStats()
	if st.PrefetchLoads == 0 {
		t.Fatalf("no prefetch on a sequential read: %+v", st)
	}
	// Each block decoded about once: no thrashing.
	if st.Loads > nblocks+nblocks/10 {
		t.Fatalf("%d loads for %d blocks: the cache thrashes (%+v)", st.Loads, nblocks, st)
	}
	if st.Bytes > 8*4096 {
		t.Fatalf("cache holds %d bytes over its bound", st.Bytes)
	}
}

// A file read again after the cache evicted it is read ahead again: the
// reader's memory of frames it already asked for lasts only while the
// cache drops nothing.
func TestRereadAfterEvictionPrefetchesAgain(t *testing.T) {
	data := randBytes(24*4096, 10) // 6 frames of 4 blocks
	a, ino := openOneFile(t, data, Options{CacheSize: 8 * 4096, Prefetch: 1, Workers: 2})
	var before int64
	for pass := 0; pass < 3; pass++ {
		// Read the first two blocks, which asks for read-ahead, then give
		// the workers the time a loaded machine may need to load some of
		// it before the reads take every block on demand.
		got := make([]byte, 2*4096)
		for off := int64(0); off < int64(len(got)); off += 4096 {
			if _, err := a.ReadAt(ino, got[off:off+4096], off); err != nil {
				t.Fatalf("pass %d: %v", pass, err)
			}
		}
		st := waitForReadAhead(a, before)
		if st.PrefetchLoads == before {
			t.Errorf("pass %d: nothing read ahead (%+v)", pass, st)
		}
		before = st.PrefetchLoads
		rest := make([]byte, len(data)-len(got))
		if _, err := a.ReadAt(ino, rest, int64(len(got))); err != nil && !errors.Is(err, io.EOF) {
			t.Fatalf("pass %d: %v", pass, err)
		}
		if !bytes.Equal(append(got, rest...), data) {
			t.Fatalf("pass %d: wrong bytes", pass)
		}
	}
}

// waitForReadAhead gives the prefetch workers the time a loaded machine
// (CI runs packages in parallel under the race detector) may need to load
// something after read-ahead was asked for, before the test's reads take
// every block on demand. It returns once PrefetchLoads exceeds before, or
// after 10 s.
func waitForReadAhead(a *Archive, before int64) cache.Stats {
	waitUntil(func() bool { return a.CacheStats().PrefetchLoads > before })
	return a.CacheStats()
}

// waitUntil polls ok every millisecond until it holds, for at most 10 s
// (the prefetch workers' time on a loaded machine); the caller checks.
func waitUntil(ok func() bool) {
	for deadline := time.Now().Add(10 * time.Second); !ok() && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
}

func TestPrefetchOffLoadsOnDemandOnly(t *testing.T) {
	data := randBytes(40*4096, 9)
	a, ino := openOneFile(t, data, Options{Prefetch: -1})
	if _, err := readAll(a, ino, 4096); err != nil {
		t.Fatal(err)
	}
	if st := a.CacheStats(); st.PrefetchLoads != 0 || st.Loads != 40 {
		t.Fatalf("%+v", st)
	}
}

// countingDecoder is a batch decoder on the CPU that counts its calls and
// blocks; broken flips a byte of every block it decodes.
func countingDecoder(broken bool, calls, blocks *atomic.Int64) DecodeBatchFunc {
	return func(ids []uint8, dsts, srcs [][]byte) []error {
		calls.Add(1)
		blocks.Add(int64(len(ids)))
		errs := make([]error, len(ids))
		dec := codec.NewDecoder()
		for i := range ids {
			errs[i] = dec.Decode(ids[i], dsts[i], srcs[i])
			if broken {
				dsts[i][0] ^= 1 // wrong bytes must never reach a reader
			}
		}
		return errs
	}
}

func TestBatchDecoderServesPrefetchAndIsChecked(t *testing.T) {
	data := randBytes(64*4096, 7)
	b := buildArchive(t, t.TempDir(), "arc", []entry{reg("f", data)}, buildOpts{blockSize: 4096, frameBlocks: 8})
	for _, broken := range []bool{false, true} {
		var calls, blocks atomic.Int64
		a, err := Open(b.volumes[0], Options{Prefetch: 2, DecodeBatch: countingDecoder(broken, &calls, &blocks)})
		if err != nil {
			t.Fatal(err)
		}
		got, err := readAfterWaiting(a, inodeOf(t, a, "f"), 0, len(data), 4096, func() bool { return calls.Load() > 0 })
		a.Close()
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("broken=%v: %v", broken, err)
		}
		if calls.Load() == 0 || blocks.Load() <= calls.Load() {
			t.Fatalf("broken=%v: %d batch calls for %d blocks", broken, calls.Load(), blocks.Load())
		}
	}
}

// A batch decoder set after Open (a mount's GPU engine, ready after the
// mount) decodes the read-ahead from then on, and its output is checked
// like that of one given at Open.
func TestBatchDecoderSetAfterOpenTakesOverTheReadAhead(t *testing.T) {
	data := randBytes(64*4096, 8)
	for _, broken := range []bool{false, true} {
		a, ino := openOneFile(t, data, Options{Prefetch: 2})
		half := len(data) / 2
		head, err := readAfterWaiting(a, ino, 0, half, 4096, func() bool { return a.CacheStats().PrefetchLoads > 0 })
		if err != nil || !bytes.Equal(head, data[:half]) {
			t.Fatalf("broken=%v: first half: %v", broken, err)
		}
		if st := a.CacheStats(); st.PrefetchLoads == 0 {
			t.Fatalf("broken=%v: no read-ahead on the CPU before the batch decoder: %+v", broken, st)
		}
		var calls, blocks atomic.Int64
		a.SetDecodeBatch(nil) // changes nothing
		a.SetDecodeBatch(countingDecoder(broken, &calls, &blocks))
		// Its first two blocks ask for read-ahead past what the CPU took.
		tail, err := readAfterWaiting(a, ino, half, len(data), 4096, func() bool { return calls.Load() > 0 })
		if err != nil || !bytes.Equal(tail, data[half:]) {
			t.Fatalf("broken=%v: second half: %v", broken, err)
		}
		if calls.Load() == 0 || blocks.Load() <= calls.Load() {
			t.Fatalf("broken=%v: %d batch calls for %d blocks", broken, calls.Load(), blocks.Load())
		}
	}
}

func TestFilesReadInPathOrderPrefetch(t *testing.T) {
	var entries []entry
	for i := 0; i < 200; i++ {
		entries = append(entries, reg(fmt.Sprintf("f%03d", i), randBytes(3000, byte(i))))
	}
	b := buildArchive(t, t.TempDir(), "arc", entries, buildOpts{blockSize: 4096, frameBlocks: 4})
	a, err := Open(b.volumes[0], Options{Prefetch: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	// Like cp -r: each file opened and read whole, one after another.
	for i, e := range entries {
		got, err := readAll(a, inodeOf(t, a, e.path), 1<<16)
		if err != nil || !bytes.Equal(got, dataOf(e.segs)) {
			t.Fatalf("%s: %v", e.path, err)
		}
		if i == 2 {
			waitForReadAhead(a, 0)
		}
	}
	if st := a.CacheStats(); st.PrefetchLoads == 0 {
		t.Fatalf("no prefetch across files read in path order: %+v", st)
	}
}

// readByView reads a whole file through View, copying where it says so.
func readByView(t *testing.T, a *Archive, ino uint32, size int64, max int) []byte {
	t.Helper()
	var out []byte
	for off := int64(0); off < size; {
		d, release, err := a.View(ino, off, max)
		if err != nil {
			t.Fatalf("View(%d, %d): %v", ino, off, err)
		}
		if release == nil { // a hole: copy
			p := make([]byte, min(int64(max), size-off))
			n, err := a.ReadAt(ino, p, off)
			if n == 0 || (err != nil && err != io.EOF) {
				t.Fatalf("ReadAt(%d, %d) after a View without bytes: %d, %v", ino, off, n, err)
			}
			d = p[:n]
		} else if len(d) == 0 || len(d) > max {
			t.Fatalf("View(%d, %d, %d) gave %d bytes", ino, off, max, len(d))
		}
		out = append(out, d...)
		off += int64(len(d))
		if release != nil {
			release()
		}
	}
	if _, _, err := a.View(ino, size, max); err != io.EOF {
		t.Errorf("View at the end: %v, want io.EOF", err)
	}
	return out
}

func TestViewGivesTheArchivedBytesWithoutCopy(t *testing.T) {
	entries := sampleTree()
	b := buildArchive(t, t.TempDir(), "arc", entries, buildOpts{volumeSize: 5003, blockSize: 65536, frameBlocks: 2})
	a, err := Open(b.volumes[0], Options{CacheSize: 256 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	for path, want := range contentOf(entries) {
		ino := inodeOf(t, a, path)
		for _, max := range []int{1 << 20, 4096, 333} {
			if got := readByView(t, a, ino, int64(len(want)), max); !bytes.Equal(got, want) {
				t.Fatalf("%s through View(max %d): %d bytes differ from the %d archived", path, max, len(got), len(want))
			}
		}
	}
	if _, _, err := a.View(inodeOf(t, a, "d"), 0, 10); err == nil {
		t.Error("View of a directory: no error")
	}
	noneLent(t, a)
}

func TestSeqTrackerCountsRuns(t *testing.T) {
	// evens: 0, 2, 4, ... 140: 71 blocks, none next to another.
	var evens []uint32
	for b := uint32(0); b <= 140; b += 2 {
		evens = append(evens, b)
	}
	for _, tc := range []struct {
		name   string
		blocks []uint32
		want   []uint32 // enter's result for each
	}{
		{"a run grows block by block", []uint32{0, 1, 2, 3}, []uint32{1, 2, 3, 4}},
		{"re-entering the latest block records nothing", []uint32{4, 5, 5, 6}, []uint32{1, 2, 0, 3}},
		{"two interleaved runs", []uint32{10, 50, 11, 51, 12, 52}, []uint32{1, 1, 2, 2, 3, 3}},
		{"a jump starts over", []uint32{7, 8, 20, 21}, []uint32{1, 2, 1, 2}},
		{"a neighbour entered long ago starts no run", append(append([]uint32{}, evens...), 1),
			append(slices.Repeat([]uint32{1}, len(evens)), 1)},
		{"a block re-entered after a long while holds its new run, not its old one",
			append(append([]uint32{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, slices.Repeat([]uint32{100, 101}, 35)...), 9, 10),
			append(append([]uint32{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, slices.Repeat([]uint32{1, 2}, 35)...), 1, 2)},
		{"a neighbour entered within the gap continues it", append(append([]uint32{}, evens[:10]...), 19),
			append(slices.Repeat([]uint32{1}, 10), 2)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var s seqTracker
			for i, b := range tc.blocks {
				if got := s.enter(b); got != tc.want[i] {
					t.Fatalf("block %d (#%d): run %d, want %d", b, i, got, tc.want[i])
				}
			}
		})
	}
}

// readRange reads [from, to) of ino in steps of n bytes.
func readRange(a *Archive, ino uint32, from, to, n int) ([]byte, error) {
	out := make([]byte, to-from)
	for off := 0; off < len(out); off += n {
		if _, err := a.ReadAt(ino, out[off:min(off+n, len(out))], int64(from+off)); err != nil {
			return out, err
		}
	}
	return out, nil
}

// readAfterWaiting is readRange that, after the first two 4 KiB blocks
// (which ask for read-ahead), waits until ready: a loaded machine may
// otherwise run the prefetch workers only once the reads have taken every
// block on demand.
func readAfterWaiting(a *Archive, ino uint32, from, to, n int, ready func() bool) ([]byte, error) {
	head, err := readRange(a, ino, from, from+2*4096, n)
	if err != nil {
		return head, err
	}
	waitUntil(ready)
	rest, err := readRange(a, ino, from+2*4096, to, n)
	return append(head, rest...), err
}

// openOneFile opens an archive of one file "f" holding data, in blocks of
// 4 KiB and frames of 4 blocks, with opt; it is closed when the test ends.
func openOneFile(t *testing.T, data []byte, opt Options) (*Archive, uint32) {
	t.Helper()
	b := buildArchive(t, t.TempDir(), "arc", []entry{reg("f", data)}, buildOpts{blockSize: 4096, frameBlocks: 4})
	a := openBuiltWith(t, b, opt)
	return a, inodeOf(t, a, "f")
}

func TestReadAheadWindowGrowsWithTheRun(t *testing.T) {
	data := randBytes(24*4096, 11) // 6 frames of 4 blocks
	a, ino := openOneFile(t, data, Options{Prefetch: 2, Workers: 1})
	buf := make([]byte, 4096)
	for _, step := range []struct {
		block      int64
		ahead, not []uint32 // read ahead after reading block; not read ahead
	}{
		{0, nil, []uint32{1, 2}},         // a run of one asks nothing
		{1, []uint32{2, 3}, []uint32{4}}, // two: two blocks ahead
		{2, []uint32{4, 5}, []uint32{6}}, // three: three
		{3, []uint32{6, 7}, []uint32{8}}, // four: four
	} {
		if _, err := a.ReadAt(ino, buf, step.block*4096); err != nil {
			t.Fatal(err)
		}
		waitUntil(func() bool {
			for _, k := range step.ahead {
				if !a.cache.Contains(k) {
					return false
				}
			}
			return a.CacheStats().InFlight == 0
		})
		for _, k := range step.ahead {
			if !a.cache.Contains(k) {
				t.Errorf("after block %d: block %d not read ahead", step.block, k)
			}
		}
		for _, k := range step.not {
			if a.cache.Contains(k) {
				t.Errorf("after block %d: block %d read ahead too early", step.block, k)
			}
		}
	}
}

func TestParallelSequentialReadersAllReadAhead(t *testing.T) {
	// 17 handles read 17 files round-robin, a block at a time, each in order.
	const n, blocks = 17, 8
	var entries []entry
	for i := 0; i < n; i++ {
		entries = append(entries, reg(fmt.Sprintf("f%02d", i), randBytes(blocks*4096, byte(i))))
	}
	b := buildArchive(t, t.TempDir(), "arc", entries, buildOpts{blockSize: 4096, frameBlocks: 4})
	a, err := Open(b.volumes[0], Options{Prefetch: 1, Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	buf := make([]byte, 4096)
	for blk := 0; blk < blocks; blk++ {
		for i := 0; i < n; i++ {
			if _, err := a.ReadAt(inodeOf(t, a, entries[i].path), buf, int64(blk)*4096); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Whether the worker loads a block before its reader does is up to
	// the scheduler; that read-ahead was asked for is not. Every ask ends
	// as a load, a key skipped (present by then) or a job dropped.
	asked := func() bool {
		st := a.CacheStats()
		return st.PrefetchLoads+st.PrefetchSkipped+st.PrefetchDropped > 0
	}
	waitUntil(asked)
	if !asked() {
		t.Errorf("%d sequential readers in parallel: no read-ahead asked (%+v)", n, a.CacheStats())
	}
}

func TestSequentialReaderKeepsItsReadAheadBesideAScatteredOne(t *testing.T) {
	// One handle reads a file much larger than the cache in order, while
	// another reads blocks no run continues at twice its rate.
	const sBlocks, rBlocks = 100, 400
	s := randBytes(sBlocks*4096, 1)
	r := randBytes(rBlocks*4096, 2)
	entries := []entry{reg("s", s), reg("r", r)}
	b := buildArchive(t, t.TempDir(), "arc", entries, buildOpts{blockSize: 4096, frameBlocks: 4})
	a, err := Open(b.volumes[0], Options{CacheSize: 16 * 4096, Prefetch: 2, Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	si, ri := inodeOf(t, a, "s"), inodeOf(t, a, "r")
	buf := make([]byte, 4096)
	rReads := 0
	for i := 0; i < sBlocks; i++ {
		if _, err := a.ReadAt(si, buf, int64(i)*4096); err != nil {
			t.Fatal(err)
		}
		// Let the read-ahead land before the other reader loads: no load
		// in flight for five polls in a row.
		for i, calm := 0, 0; i < 20000 && calm < 5; i++ {
			if a.CacheStats().InFlight == 0 {
				calm++
			} else {
				calm = 0
			}
			time.Sleep(100 * time.Microsecond)
		}
		for k := 0; k < 2; k++ {
			if _, err := a.ReadAt(ri, buf, int64(2*rReads)*4096); err != nil {
				t.Fatal(err)
			}
			rReads++
		}
	}
	st := a.CacheStats()
	if sLoads := st.Loads - int64(rReads); sLoads > sBlocks+sBlocks/10 {
		t.Errorf("sequential file of %d blocks decoded %d times (%+v)", sBlocks, sLoads, st)
	}
}

func TestHugePrefetchReadsToTheEnd(t *testing.T) {
	data := randBytes(24*4096, 11) // 6 frames of 4 blocks
	a, ino := openOneFile(t, data, Options{Prefetch: math.MaxInt, Workers: 1})
	if got, err := readAll(a, ino, 4096); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read: %v", err)
	}
}

// A block read to its end is marked consumed (evicted first) only when a
// sequential run reached it; a scattered reader that happens to read a
// whole block may come back to it.
func TestOnlySequentialReadsMarkBlocksConsumed(t *testing.T) {
	data := randBytes(16*4096, 12)
	a, ino := openOneFile(t, data, Options{Prefetch: -1, Workers: 1})
	buf := make([]byte, 4096)
	for _, step := range []struct {
		block    int64
		n        int   // bytes read from the block's start
		view     bool  // through View rather than ReadAt
		consumed int64 // ConsumedDemoted after the read
	}{
		{5, 4096, false, 0},  // a run of one: kept
		{9, 4096, false, 0},  // another
		{10, 2048, false, 0}, // a run of two, but not to the block's end
		{10, 4096, false, 1}, // to its end: consumed
		{11, 4096, false, 2}, // the run goes on
		{3, 4096, false, 2},  // a scattered read again
		{7, 4096, true, 2},   // a scattered View of a whole block
		{8, 4096, true, 3},   // a run of two through View
	} {
		if step.view {
			data, release, err := a.View(ino, step.block*4096, step.n)
			if err != nil || len(data) != step.n {
				t.Fatalf("View of block %d: %d bytes, %v", step.block, len(data), err)
			}
			release()
		} else if _, err := a.ReadAt(ino, buf[:step.n], step.block*4096); err != nil {
			t.Fatal(err)
		}
		if got := a.CacheStats().ConsumedDemoted; got != step.consumed {
			t.Fatalf("after %d bytes of block %d (view %t): %d blocks marked consumed, want %d", step.n, step.block, step.view, got, step.consumed)
		}
	}
}

// While read-ahead is wasted (more prefetched blocks were evicted unread
// than were read), a run asks for read-ahead only once it is
// minRunWhenWasted blocks long.
func TestWastedReadAheadWaitsForALongerRun(t *testing.T) {
	data := randBytes(64*4096, 13)
	a, ino := openOneFile(t, data, Options{CacheSize: 6 * 4096, Prefetch: 2, Workers: 1})
	buf := make([]byte, 4096)
	read := func(blocks ...int64) {
		t.Helper()
		for _, k := range blocks {
			if _, err := a.ReadAt(ino, buf, k*4096); err != nil {
				t.Fatal(err)
			}
			// Read-ahead asked for is queued, then loading: both done.
			waitUntil(func() bool { st := a.CacheStats(); return st.InFlight == 0 && st.Queued == 0 })
		}
	}
	// A run of two reads blocks 2 and 3 ahead; scattered reads then evict
	// them unread.
	read(0, 1)
	waitUntil(func() bool { return a.cache.Contains(2) && a.cache.Contains(3) })
	read(10, 14, 18, 22, 26, 30, 34)
	if a.cache.Payoff() >= 0 {
		t.Fatalf("payoff %d after read-ahead was evicted unread (%+v)", a.cache.Payoff(), a.CacheStats())
	}
	loads := a.CacheStats().PrefetchLoads
	read(40, 41, 42, 43, 44, 45, 46) // runs of 2 to 7
	if st := a.CacheStats(); st.PrefetchLoads != loads || a.cache.Contains(47) {
		t.Fatalf("a run of 7 read ahead while read-ahead was wasted (block 47 present: %t, %+v)", a.cache.Contains(47), st)
	}
	read(47) // a run of 8
	waitUntil(func() bool { return a.cache.Contains(48) })
	if !a.cache.Contains(48) {
		t.Fatalf("a run of 8 did not read ahead (%+v)", a.CacheStats())
	}
}

// Files named like volumes past the last one (another archive's volume,
// a stray file called NAME.029, a copy of one of the set's own volumes)
// are left out and listed as strays: the set
// still ends at the volume whose footer says so, and reads whole.
func TestStrayVolumesPastTheLastAreLeftOut(t *testing.T) {
	for _, tc := range []struct {
		name  string
		bytes func(t *testing.T, own []string) []byte // own: the set's volumes
		mk    func(path string) error                 // makes the stray instead, if set
	}{
		// Not even a file: it cannot be a volume, and must not keep the
		// set from opening.
		{"a directory", nil, func(p string) error { return os.Mkdir(p, 0o755) }},
		{"a FIFO", nil, func(p string) error { return unix.Mkfifo(p, 0o644) }},
		{"another archive's volume", func(t *testing.T, _ []string) []byte {
			_, other := manyVolumes(t)
			b, _ := os.ReadFile(other.volumes[len(other.volumes)-1])
			return b
		}, nil},
		{"random bytes", func(t *testing.T, _ []string) []byte { return bytes.Repeat([]byte("stray "), 1000) }, nil},
		// A copy of one of the set's own volumes: its header names the
		// archive, but another number.
		{"a copy of its last volume", func(t *testing.T, own []string) []byte {
			b, _ := os.ReadFile(own[len(own)-1])
			return b
		}, nil},
		{"a copy of its first volume", func(t *testing.T, own []string) []byte {
			b, _ := os.ReadFile(own[0])
			return b
		}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, b := manyVolumes(t)
			base := strings.TrimSuffix(b.volumes[0], ".001")
			stray := format.VolumeName(base, uint32(len(b.volumes)+3))
			mk := tc.mk
			if mk == nil {
				mk = func(p string) error { return os.WriteFile(p, tc.bytes(t, b.volumes), 0o644) }
			}
			if err := mk(stray); err != nil {
				t.Fatal(err)
			}
			a, err := Open(b.volumes[0], Options{})
			if err != nil {
				t.Fatalf("open with a stray volume: %v", err)
			}
			defer a.Close()
			if got := a.StrayVolumes(); len(got) != 1 || got[0] != stray {
				t.Errorf("strays %q, want %q", got, stray)
			}
			rep, err := a.Verify(VerifyOptions{})
			if err != nil || !rep.Intact() || len(a.Volumes()) != len(b.volumes) {
				t.Errorf("verify: %v %+v, %d volumes", err, rep, len(a.Volumes()))
			}
		})
	}
}

// An archive copied over an older, larger one of the same name by a copy
// that does not delete (rsync without --delete; a create --force stopped
// before it removed the old volumes) leaves the older one's last volumes
// past its own: the new archive opens whole and they are strays, even
// where they outnumber its volumes, and so they stay once it has lost a
// volume (the older archive was taken for the set then).
func TestAnOlderLargerArchivesVolumesPastTheSetAreStrays(t *testing.T) {
	for _, tc := range []struct {
		name     string
		old, new int // bytes of content: old gives more volumes
		lose     bool
	}{
		{"fewer left behind than the set has", 40_000, 25_000, false},
		{"more left behind than the set has", 60_000, 9_000, false},
		{"more left behind than the set has, which lost a volume", 60_000, 9_000, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			old := buildArchive(t, dir, "arc", []entry{reg("old", randBytes(tc.old, 1))}, buildOpts{volumeSize: 4096, codec: "raw"})
			content := randBytes(tc.new, 2)
			nw := buildArchive(t, t.TempDir(), "arc", []entry{reg("new", content)}, buildOpts{volumeSize: 4096, codec: "raw"})
			if len(old.volumes) <= len(nw.volumes) {
				t.Fatalf("old archive: %d volumes, new %d: want more", len(old.volumes), len(nw.volumes))
			}
			for i, v := range nw.volumes {
				testtree.CopyFile(t, v, old.volumes[i])
			}
			if tc.lose {
				os.Remove(old.volumes[1])
			}
			a, err := Open(old.volumes[0], Options{})
			if err != nil {
				t.Fatalf("open: %v", err)
			}
			defer a.Close()
			if got, want := a.StrayVolumes(), old.volumes[len(nw.volumes):]; !slices.Equal(got, want) {
				t.Errorf("strays %q, want %q", got, want)
			}
			if tc.lose {
				if _, err := a.Resolve("new"); err != nil {
					t.Errorf("the new archive's file is not there: %v", err)
				}
				if miss := a.MissingVolumes(); len(miss) != 1 || miss[0] != old.volumes[1] || len(a.Volumes()) != len(nw.volumes) {
					t.Errorf("missing %q of %d volumes; want %s of %d", miss, len(a.Volumes()), old.volumes[1], len(nw.volumes))
				}
				return
			}
			rep, err := a.Verify(VerifyOptions{})
			if err != nil || !rep.Intact() || len(a.Volumes()) != len(nw.volumes) {
				t.Errorf("verify: %v %+v, %d volumes", err, rep, len(a.Volumes()))
			}
			got, err := readAll(a, inodeOf(t, a, "new"), 1<<16)
			if err != nil || !bytes.Equal(got, content) {
				t.Errorf("new: %d bytes, %v; want its %d", len(got), err, len(content))
			}
		})
	}
}

// With the volume named missing (NAME.001, which NAME also stands for),
// the set opens through another one, and the missing volume is damage
// like any other: verify names it and the files it held.
func TestTheNamedVolumeMissingOpensThroughAnother(t *testing.T) {
	_, b := manyVolumes(t)
	os.Remove(b.volumes[0])
	base := strings.TrimSuffix(b.volumes[0], ".001")
	for _, name := range []string{b.volumes[0], base} {
		a, err := Open(name, Options{})
		if err != nil {
			t.Fatalf("open %s: %v", name, err)
		}
		rep, err := a.Verify(VerifyOptions{})
		a.Close()
		if err != nil || len(rep.MissingVolumes) != 1 || rep.MissingVolumes[0] != b.volumes[0] || len(rep.AffectedFiles) == 0 {
			t.Errorf("open %s: verify %v, missing %q, %d files affected", name, err, rep.MissingVolumes, len(rep.AffectedFiles))
		}
	}
	for _, v := range b.volumes[1:] {
		os.Remove(v)
	}
	if _, err := Open(base, Options{}); err == nil || !strings.Contains(err.Error(), "not an arc volume name") {
		t.Errorf("open with no volume left: %v", err)
	}
}

// Verify hands the batch decoder calls of Options.DecodeBatchBytes raw
// bytes (a GPU engine fills both its transfer buffers only so), every
// block once, and finds the archive intact.
func TestVerifyBatchCallsHoldDecodeBatchBytes(t *testing.T) {
	data := randBytes(64*4096, 11)
	b := buildArchive(t, t.TempDir(), "arc", []entry{reg("f", data)}, buildOpts{blockSize: 4096, frameBlocks: 8})
	// A first block of 16 bytes, then 4 KiB ones (64 blocks in all): a
	// call sized by the first block's size would hold the whole archive.
	small := buildArchive(t, t.TempDir(), "arc", []entry{reg("f", data[:16+63*4096])}, buildOpts{blockSize: 4096, firstBlock: 16, frameBlocks: 8})
	for _, tc := range []struct {
		b         *built
		bytes     int
		wantCalls int64
	}{
		{b, 16 * 4096, 4},
		{b, 64 * 4096, 1},
		{b, 3 * 4096, 22}, // 21 calls of 3 blocks and one of 1
		{b, 100, 0},       // under a block: one at a time, on the CPU workers
		{b, 1 << 44, 1},   // 2^32 blocks a call: no more than the archive holds (it wrapped to 0 and hung)
		{small, 16 * 4096, 4},
	} {
		var calls, blocks atomic.Int64
		var mu sync.Mutex
		var largest int
		count := countingDecoder(false, &calls, &blocks)
		dec := func(ids []uint8, dsts, srcs [][]byte) []error {
			n := 0
			for _, d := range dsts {
				n += len(d)
			}
			mu.Lock()
			largest = max(largest, n)
			mu.Unlock()
			return count(ids, dsts, srcs)
		}
		a, err := Open(tc.b.volumes[0], Options{Prefetch: -1, DecodeBatch: dec, DecodeBatchBytes: tc.bytes})
		if err != nil {
			t.Fatal(err)
		}
		rep, err := a.Verify(VerifyOptions{})
		a.Close()
		if err != nil || !rep.Intact() || rep.Blocks != 64 {
			t.Fatalf("%d bytes a call: %v %+v", tc.bytes, err, rep)
		}
		if calls.Load() != tc.wantCalls || tc.wantCalls > 0 && blocks.Load() != 64 || largest > min(tc.bytes, 64*4096) {
			t.Fatalf("%d bytes a call: %d calls (want %d) for %d blocks, largest %d bytes", tc.bytes, calls.Load(), tc.wantCalls, blocks.Load(), largest)
		}
	}
}

// A batch decoder that panics (a decoder bug met on hostile bytes) fails
// its blocks: Verify reports them damaged instead of ending the process,
// and finds the archive intact once the decoder behaves.
func TestPanickingBatchDecoderFailsItsBlocksOnly(t *testing.T) {
	data := randBytes(64*4096, 12)
	b := buildArchive(t, t.TempDir(), "arc", []entry{reg("f", data)}, buildOpts{blockSize: 4096, frameBlocks: 8})
	panics := func(ids []uint8, dsts, srcs [][]byte) []error { panic("decoder bug") }
	a, rep := openVerified(t, b.volumes[0], Options{Prefetch: -1, DecodeBatch: panics, DecodeBatchBytes: 16 * 4096})
	if len(rep.Damaged) != 64 || !errors.Is(rep.Damaged[0], errDecoderPanic) {
		t.Fatalf("verify with a panicking decoder: %d damaged blocks (%v), want all 64 with errDecoderPanic", len(rep.Damaged), rep.Damaged)
	}
	var calls, blocks atomic.Int64
	a.SetDecodeBatch(countingDecoder(false, &calls, &blocks))
	if rep, err := a.Verify(VerifyOptions{}); err != nil || !rep.Intact() {
		t.Fatalf("verify once the decoder behaves: %v %+v", err, rep)
	}
}

// openVerified opens the archive at path (closed when the test ends) and
// verifies it; either failing fails the test.
func openVerified(t *testing.T, path string, opt Options) (*Archive, *VerifyReport) {
	t.Helper()
	a, err := Open(path, opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	rep, err := a.Verify(VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return a, rep
}

// An archive rewritten under the same names while it is open (a mount
// left up across a scheduled create --force) is still read as it was
// opened, from the volume files held open since; a volume opened again
// later (past maxOpenVolumes) that is another file now fails as replaced,
// not as a damaged block.
func TestAnArchiveRewrittenWhileOpenIsReadAsItWasOpened(t *testing.T) {
	entries, b := manyVolumes(t)
	a, err := Open(b.volumes[0], Options{CacheSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	other := buildArchive(t, t.TempDir(), "arc", []entry{
		reg("a", randBytes(2000, 11)), reg("b", randBytes(3000, 12)), reg("c-big", randBytes(60_000, 13)),
	}, buildOpts{volumeSize: 4096, codec: "raw"})
	if len(other.volumes) != len(b.volumes) {
		t.Fatalf("%d volumes, then %d", len(b.volumes), len(other.volumes))
	}
	for i, v := range other.volumes {
		if err := os.Rename(v, b.volumes[i]); err != nil {
			t.Fatal(err)
		}
	}
	want := contentOf(entries)
	for _, p := range []string{"a", "b", "c-big"} {
		got, err := readAll(a, inodeOf(t, a, p), 1<<20)
		if err != nil || !bytes.Equal(got, want[p]) {
			t.Fatalf("%s after the rewrite: %v (equal: %v)", p, err, bytes.Equal(got, want[p]))
		}
	}
	a.vols.mu.Lock()
	for n, v := range a.vols.open {
		v.f.Close()
		delete(a.vols.open, n)
	}
	a.vols.mu.Unlock()
	if _, err := readAll(a, inodeOf(t, a, "c-big"), 1<<20); !errors.Is(err, errReplaced) {
		t.Fatalf("reading a volume opened again after the rewrite: %v, want %v", err, errReplaced)
	}
}

// Finding the extent that holds an offset costs memory of the index's
// size, not of files × extents: every duplicate of a file shares its
// extents, and a hostile index may point any number of files at one long
// run of them.
func TestExtentSearchMemoryDoesNotGrowWithDuplicates(t *testing.T) {
	const nExt, copies = 1000, 200
	var segs []seg
	for i := range nExt {
		if i%2 == 0 {
			segs = append(segs, seg{data: []byte{byte(i), byte(i >> 8)}})
		} else {
			segs = append(segs, seg{hole: 3})
		}
	}
	entries := []entry{{path: "a", mode: format.ModeReg | 0o644, segs: segs}} // before its copies
	for i := range copies {
		entries = append(entries, entry{path: fmt.Sprintf("dup%04d", i), mode: format.ModeReg | 0o644, dupOf: "a"})
	}
	b := buildArchive(t, t.TempDir(), "arc", entries, buildOpts{})
	a, err := Open(b.volumes[0], Options{Prefetch: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	want := dataOf(segs)
	inos := make([]uint32, copies)
	for i := range inos {
		inos[i] = inodeOf(t, a, fmt.Sprintf("dup%04d", i))
	}
	p := make([]byte, 1)
	readAll := func() {
		for i, ino := range inos {
			off := int64(i*37) % int64(len(want))
			if _, err := a.ReadAt(ino, p, off); err != nil || p[0] != want[off] {
				t.Fatalf("dup%04d at %d: %v, byte %d, want %d", i, off, err, p[0], want[off])
			}
		}
	}
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	readAll()
	runtime.ReadMemStats(&m1)
	// Tables per file would take 8 bytes an extent for each copy.
	if grew := m1.TotalAlloc - m0.TotalAlloc; grew > 8*nExt*copies/8 {
		t.Errorf("reading one byte of each of %d duplicates allocated %d bytes: extent tables per file", copies, grew)
	}
}

// Close does not wait for a load in flight (a demand read that passed the
// cache's check just before it, or the next span of a block across
// volumes): such a load must not open a volume again, which nothing would
// close. It fails instead.
func TestALoadAfterCloseOpensNoVolume(t *testing.T) {
	b := buildArchive(t, t.TempDir(), "arc", []entry{reg("f", randBytes(64<<10, 3))}, buildOpts{blockSize: 4096, volumeSize: 16 << 10})
	a, err := Open(b.volumes[0], Options{Prefetch: -1})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	err = a.loadBlock(3, make([]byte, a.idx.Blocks.RawSize[3]))
	a.vols.mu.Lock()
	open := len(a.vols.open)
	a.vols.mu.Unlock()
	if open != 0 || !errors.Is(err, fs.ErrClosed) {
		t.Errorf("a load after Close: %v, and %d volume files open again", err, open)
	}
}

// A volume of the set that is not a file at all (a directory in its
// place) is local damage, named, as a missing one is: the rest reads.
func TestAVolumeThatIsNotAFileIsLocalDamage(t *testing.T) {
	entries, b := manyVolumes(t)
	os.Remove(b.volumes[5])
	if err := os.Mkdir(b.volumes[5], 0o755); err != nil {
		t.Fatal(err)
	}
	a, err := Open(b.volumes[0], Options{})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	defer a.Close()
	if d := fmt.Sprint(a.DamagedVolumes()); !strings.Contains(d, b.volumes[5]) || !strings.Contains(d, "not a regular file") {
		t.Errorf("damaged volumes %s, want %s named as not a regular file", d, b.volumes[5])
	}
	got, err := readAll(a, inodeOf(t, a, "a"), 1000)
	if err != nil || !bytes.Equal(got, dataOf(entries[0].segs)) {
		t.Errorf("a, in blocks before volume 6: %v", err)
	}
}

// A volume cut short after the archive was opened says where it ends now,
// not where the read began (it said "ends at" the offset read at, past
// its end).
func TestAVolumeTruncatedLaterSaysWhereItEnds(t *testing.T) {
	data := randBytes(20000, 12)
	b := buildArchive(t, t.TempDir(), "arc", []entry{reg("f", data)}, buildOpts{volumeSize: 4096, codec: "raw"})
	a := openBuiltWith(t, b, Options{CacheSize: 1 << 20})
	if err := os.Truncate(b.volumes[2], 100); err != nil {
		t.Fatal(err)
	}
	_, err := readAll(a, inodeOf(t, a, "f"), len(data))
	if err == nil || !strings.Contains(err.Error(), b.volumes[2]+": ") || !strings.Contains(err.Error(), "volume ends at 100, a read of") {
		t.Fatalf("read: %v; want %s named, ending at 100", err, b.volumes[2])
	}
}

// A cache smaller than a few of the archive's blocks holds that many all
// the same: a file whose extents take turns between two blocks (as segment
// dedup makes them), read a piece at a time through a cache of one block,
// decoded both blocks for every piece.
func TestACacheOfFewerThanFourBlocksHoldsFour(t *testing.T) {
	const block = 1 << 20
	base := randBytes(2*block, 7)
	var mix []seg
	var want []byte
	for i := uint64(0); i < 100; i++ {
		for _, at := range []uint64{i * 3000, block + i*3000} {
			mix = append(mix, seg{repeatAt: at, repeatLen: 3000})
			want = append(want, base[at:at+3000]...)
		}
	}
	b := buildArchive(t, t.TempDir(), "arc", []entry{
		reg("base", base),
		{path: "mix", mode: format.ModeReg | 0o644, segs: mix},
	}, buildOpts{blockSize: block, codec: "raw"})
	var logged []string
	a, err := Open(b.volumes[0], Options{CacheSize: block, Prefetch: -1, Logf: func(f string, args ...any) {
		logged = append(logged, fmt.Sprintf(f, args...))
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if a.CacheSize() != 4*block {
		t.Errorf("cache of %d bytes, want %d", a.CacheSize(), 4*block)
	}
	if len(logged) != 1 || !strings.Contains(logged[0], "a cache of 1M holds fewer than 4 of this archive's blocks (up to 1M each): it holds 4M") {
		t.Errorf("logged %q, want the cache's new size said", logged)
	}
	got, err := readAll(a, inodeOf(t, a, "mix"), 128<<10)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("mix: %v", err)
	}
	if loads := a.CacheStats().Loads; loads > 2 {
		t.Errorf("%d blocks decoded to read a file of two blocks' pieces, want 2", loads)
	}
}

// The four blocks are counted as the cache counts them: a block's buffer
// is its size rounded up to a power of two.
func TestTheCacheFloorCountsBlocksAsTheCacheDoes(t *testing.T) {
	b := buildArchive(t, t.TempDir(), "arc", []entry{reg("f", randBytes(40_000, 3))}, buildOpts{blockSize: 9000, codec: "raw"})
	a := openBuiltWith(t, b, Options{CacheSize: 1})
	if want := 4 * cache.Cost(9000); a.CacheSize() != want {
		t.Errorf("cache of %d bytes, want %d (four buffers of %d)", a.CacheSize(), want, cache.Cost(9000))
	}
}
