package format

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"syscall"
	"testing"
)

var testID = ArchiveID{0x8d, 0x3b, 0x6f, 0x0e, 0x2a, 0x51, 0x4c, 0x79, 0xa0, 0xc4, 0xe1, 0xf2, 0xb3, 0xd4, 0x9a, 0x57}

func testHeader() VolumeHeader {
	return VolumeHeader{Version: Version, Number: 2, ID: testID, VolumeSize: 98 << 20}
}

func mustMarshal(t testing.TB, m interface{ MarshalBinary() ([]byte, error) }) []byte {
	t.Helper()
	b, err := m.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// reseal recomputes the CRC-32C over b[:at] into b[at:at+4], so that a test
// can change a field and still get past the checksum.
func reseal(b []byte, at int) []byte {
	binary.LittleEndian.PutUint32(b[at:], crc32.Checksum(b[:at], castagnoli))
	return b
}

func TestVolumeHeaderRoundTrips(t *testing.T) {
	for _, h := range []VolumeHeader{
		testHeader(),
		{Version: Version, Number: 1}, // single volume: size 0
		{Version: Version, Number: math.MaxUint32, VolumeSize: MinVolumeSize},   // smallest split
		{Version: Version, Number: 1000, ID: testID, VolumeSize: math.MaxInt64}, // largest split
	} {
		b := mustMarshal(t, h)
		if len(b) != VolumeHeaderSize {
			t.Fatalf("header is %d bytes, want %d", len(b), VolumeHeaderSize)
		}
		got, err := ParseVolumeHeader(b)
		if err != nil || got != h {
			t.Errorf("ParseVolumeHeader(Marshal(%+v)) = %+v, %v", h, got, err)
		}
		// A reader may hand over the start of the file rather than exactly 48 bytes.
		if got, err := ParseVolumeHeader(append(b, 1, 2, 3)); err != nil || got != h {
			t.Errorf("with bytes after the header: %+v, %v", got, err)
		}
	}
}

// byteCase is an encoding and the error its parser must return.
type byteCase struct {
	name string
	b    []byte
	want error
}

// wantErrors runs parse on every case and wants the case's error.
func wantErrors(t *testing.T, cases []byteCase, parse func([]byte) error) {
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if err := parse(c.b); !errors.Is(err, c.want) {
				t.Fatalf("%v; want %v", err, c.want)
			}
		})
	}
}

// edited marshals a copy of base changed by edit.
func edited[T interface{ MarshalBinary() ([]byte, error) }](t testing.TB, base T, edit func(*T)) []byte {
	edit(&base)
	return mustMarshal(t, base)
}

// patched returns a copy of b changed by edit.
func patched(b []byte, edit func([]byte)) []byte {
	b = append([]byte(nil), b...)
	edit(b)
	return b
}

func TestParseVolumeHeaderRejects(t *testing.T) {
	wantErrors(t, badVolumeHeaders(t), func(b []byte) error { _, err := ParseVolumeHeader(b); return err })
}

func badVolumeHeaders(t testing.TB) []byteCase {
	valid := mustMarshal(t, testHeader())
	with := func(edit func(h *VolumeHeader)) []byte { return edited(t, testHeader(), edit) }
	raw := func(edit func(b []byte)) []byte { return patched(valid, edit) }
	return []byteCase{
		{"nothing", nil, ErrTruncated},
		{"one byte short", valid[:VolumeHeaderSize-1], ErrTruncated},
		{"another file type", []byte("PK\x03\x04 a zip file, as long as a volume header or more"), ErrNotArchive},
		{"footer magic instead of volume magic", raw(func(b []byte) { copy(b, FooterMagic[:]) }), ErrNotArchive},
		{"text-mode transfer turned CR LF into LF", raw(func(b []byte) { copy(b[6:], "\n\n") }), ErrNotArchive},
		{"flipped bit in the archive id", raw(func(b []byte) { b[20] ^= 1 }), ErrCorrupt},
		{"flipped bit in the checksum", raw(func(b []byte) { b[47] ^= 0x80 }), ErrCorrupt},
		{"newer version", with(func(h *VolumeHeader) { h.Version = Version + 1 }), ErrVersion},
		{"version 0", with(func(h *VolumeHeader) { h.Version = 0 }), ErrVersion},
		{"unknown flags", with(func(h *VolumeHeader) { h.Flags = 1 }), ErrVersion},
		{"reserved bytes set", raw(func(b []byte) { b[42] = 1; reseal(b, 44) }), ErrCorrupt},
		{"volume number 0", with(func(h *VolumeHeader) { h.Number = 0 }), ErrCorrupt},
		{"volume size below MinVolumeSize", with(func(h *VolumeHeader) { h.VolumeSize = MinVolumeSize - 1 }), ErrCorrupt},
		{"volume size of 1", with(func(h *VolumeHeader) { h.VolumeSize = 1 }), ErrCorrupt},
		{"volume size beyond int64", with(func(h *VolumeHeader) { h.VolumeSize = math.MaxInt64 + 1 }), ErrCorrupt},
		{"volume size of all ones", with(func(h *VolumeHeader) { h.VolumeSize = math.MaxUint64 }), ErrCorrupt},
	}
}

func TestLayoutLocatesStreamOffsetsInVolumes(t *testing.T) {
	const size = MinVolumeSize
	const p = size - VolumeHeaderSize // stream bytes per volume
	split := Layout{VolumeSize: size}
	for _, c := range []struct {
		l       Layout
		off     int64
		vol     uint32
		fileOff int64
	}{
		{split, 0, 1, VolumeHeaderSize},
		{split, 1, 1, VolumeHeaderSize + 1},
		{split, p - 1, 1, size - 1}, // last byte of volume 1
		{split, p, 2, VolumeHeaderSize},
		{split, 2*p - 1, 2, size - 1},
		{split, 2 * p, 3, VolumeHeaderSize},
		{split, 999*p + 5, 1000, VolumeHeaderSize + 5},
		{Layout{}, 0, 1, VolumeHeaderSize},
		{Layout{}, 1 << 50, 1, 1<<50 + VolumeHeaderSize},
	} {
		v, fo := c.l.Locate(c.off)
		if v != c.vol || fo != c.fileOff {
			t.Errorf("%+v.Locate(%d) = %d, %d; want %d, %d", c.l, c.off, v, fo, c.vol, c.fileOff)
		}
	}
	if got := split.Payload(); got != p {
		t.Errorf("Payload = %d, want %d", got, p)
	}
}

func TestLayoutCountsVolumes(t *testing.T) {
	const p = MinVolumeSize - VolumeHeaderSize
	split := Layout{VolumeSize: MinVolumeSize}
	for _, c := range []struct {
		l      Layout
		stream int64
		want   uint32
	}{
		{split, 0, 1}, // an empty stream still has its first volume
		{split, 1, 1},
		{split, p, 1},
		{split, p + 1, 2},
		{split, 2 * p, 2},
		{split, 2*p + 1, 3},
		{Layout{}, 0, 1},
		{Layout{}, math.MaxInt64, 1},
	} {
		if got := c.l.VolumeCount(c.stream); got != c.want {
			t.Errorf("%+v.VolumeCount(%d) = %d, want %d", c.l, c.stream, got, c.want)
		}
	}
}

func TestLayoutSplitsRangesAtVolumeBoundaries(t *testing.T) {
	const p = MinVolumeSize - VolumeHeaderSize
	const h = VolumeHeaderSize
	split := Layout{VolumeSize: MinVolumeSize}
	for _, c := range []struct {
		name   string
		l      Layout
		off, n int64
		want   []Span
	}{
		{"empty range", split, 10, 0, nil},
		{"inside one volume", split, 10, 20, []Span{{1, h + 10, 20}}},
		{"exactly volume 1", split, 0, p, []Span{{1, h, p}}},
		{"ends on a boundary", split, p - 5, 5, []Span{{1, h + p - 5, 5}}},
		{"starts on a boundary", split, p, 5, []Span{{2, h, 5}}},
		{"crosses one boundary", split, p - 5, 10, []Span{{1, h + p - 5, 5}, {2, h, 5}}},
		{"spans a whole middle volume", split, p - 1, p + 2, []Span{{1, h + p - 1, 1}, {2, h, p}, {3, h, 1}}},
		{"single volume", Layout{}, 1 << 40, 1 << 20, []Span{{1, h + 1<<40, 1 << 20}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var got []Span
			err := c.l.Spans(c.off, c.n, func(s Span) error { got = append(got, s); return nil })
			if err != nil || !reflect.DeepEqual(got, c.want) {
				t.Errorf("Spans(%d, %d) = %+v, %v; want %+v", c.off, c.n, got, err, c.want)
			}
		})
	}
}

func TestSpansStopsAtTheFirstError(t *testing.T) {
	const p = MinVolumeSize - VolumeHeaderSize
	stop := errors.New("volume 2 missing")
	calls := 0
	err := Layout{VolumeSize: MinVolumeSize}.Spans(0, 3*p, func(s Span) error {
		calls++
		if s.Volume == 2 {
			return stop
		}
		return nil
	})
	if err != stop || calls != 2 {
		t.Fatalf("Spans returned %v after %d calls; want the callback's error after 2", err, calls)
	}
}

func TestVolumeNames(t *testing.T) {
	for _, c := range []struct {
		path string
		base string
		n    uint32
		ok   bool
	}{
		{"a.001", "a", 1, true},
		{"a.002", "a", 2, true},
		{"a.999", "a", 999, true},
		{"a.1000", "a", 1000, true},
		{"a.4294967295", "a", math.MaxUint32, true},
		{"dir.x/a.001", "dir.x/a", 1, true},
		{"/abs/backup.tar.017", "/abs/backup.tar", 17, true},
		{"a.01", "", 0, false},   // fewer than three digits
		{"a.1", "", 0, false},    // fewer than three digits
		{"a.000", "", 0, false},  // volumes count from 1
		{"a.0001", "", 0, false}, // VolumeName writes a.001
		{"a.0999", "", 0, false},
		{"a.00x", "", 0, false},
		{"a.+01", "", 0, false},
		{"a.-01", "", 0, false},
		{"a. 01", "", 0, false},
		{"a.4294967296", "", 0, false}, // beyond uint32
		{"a", "", 0, false},
		{"a.", "", 0, false},
		{"dir.001/a", "", 0, false}, // the dot is in a directory name
		{"", "", 0, false},
	} {
		base, n, ok := ParseVolumeName(c.path)
		if base != c.base || n != c.n || ok != c.ok {
			t.Errorf("ParseVolumeName(%q) = %q, %d, %v; want %q, %d, %v", c.path, base, n, ok, c.base, c.n, c.ok)
		}
		if c.ok {
			if got := VolumeName(base, n); got != c.path {
				t.Errorf("VolumeName(%q, %d) = %q, want %q", base, n, got, c.path)
			}
		}
	}
}

// OpenFile opens regular files only, and a FIFO without waiting for a
// writer.
func TestOpenFileRefusesWhatIsNotARegularFile(t *testing.T) {
	dir := t.TempDir()
	fifo, reg := filepath.Join(dir, "a.002"), filepath.Join(dir, "a.001")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(reg, []byte("x"), 0o644)
	for p, want := range map[string]error{fifo: ErrNotRegular, dir: ErrNotRegular, reg: nil} {
		f, err := OpenFile(p)
		if !errors.Is(err, want) {
			t.Errorf("%s: %v, want %v", p, err, want)
		}
		if f != nil {
			var b [1]byte
			if n, _ := f.Read(b[:]); n != 1 {
				t.Errorf("%s: read %d bytes", p, n)
			}
			f.Close()
		}
	}
}

// SetEnd finds where the named volume's archive ends though volumes
// before its end are lost, as long as its last volume says so and most of
// the volumes up to there are its own.
func TestSetEndFindsTheArchivesLastVolumeThroughLostOnes(t *testing.T) {
	newID, oldID := ArchiveID{1}, ArchiveID{2}
	vol := func(id ArchiveID, n uint32) VolumeHeader {
		return VolumeHeader{Version: Version, ID: id, Number: n, VolumeSize: 1 << 20}
	}
	// A newer archive of 4 volumes over an older one of 9.
	set := func(drop ...uint32) map[uint32]VolumeHeader {
		h := map[uint32]VolumeHeader{}
		for n := uint32(1); n <= 9; n++ {
			h[n] = vol(oldID, n)
		}
		for n := uint32(1); n <= 4; n++ {
			h[n] = vol(newID, n)
		}
		for _, n := range drop {
			delete(h, n)
		}
		return h
	}
	footers := map[uint32]Footer{4: {ID: newID, VolumeCount: 4}, 9: {ID: oldID, VolumeCount: 9}}
	footer := func(n uint32) (Footer, error) {
		if f, ok := footers[n]; ok {
			return f, nil
		}
		return Footer{}, ErrCorrupt
	}
	for _, c := range []struct {
		name    string
		headers map[uint32]VolumeHeader
		first   uint32
		last    uint32
		ok      bool
	}{
		{"whole", set(), 1, 4, true},
		{"a volume lost before the end", set(2), 1, 4, true},
		{"two lost", set(2, 3), 1, 4, true},
		{"named from a later volume", set(2), 3, 4, true},
		{"its last volume lost", set(4), 1, 3, false},
		{"the first one named lost", set(1), 1, 0, false},
		{"the older archive named", set(2), 7, 9, true},
		// The newer archive's 2 of 4 against the older one's 2 of
		// them: no longer most of them.
		{"as many of another archive's up to its end", func() map[uint32]VolumeHeader {
			h := set()
			h[2], h[3] = vol(oldID, 2), vol(oldID, 3)
			return h
		}(), 1, 4, false},
	} {
		last, ok := SetEnd(c.headers, c.first, footer)
		if ok != c.ok || ok && last != c.last {
			t.Errorf("%s: SetEnd = %d, %v; want %d, %v", c.name, last, ok, c.last, c.ok)
		}
	}
}
