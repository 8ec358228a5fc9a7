package format

import (
	"bytes"
	"math"
	"testing"
)

// testFooter describes a consistent two-volume archive of 98 MiB volumes:
// 149,879,000 bytes of blocks, the index right after them, the footer right
// after the index (no padding needed).
func testFooter() Footer {
	return Footer{
		IndexOffset:   149_879_000,
		IndexSize:     120_920,
		IndexRawSize:  481_337,
		IndexChecksum: 0x0123456789abcdef,
		VolumeCount:   2,
		Version:       Version,
		ID:            testID,
		StreamSize:    150_000_000,
	}
}

func TestFooterRoundTrips(t *testing.T) {
	for _, f := range []Footer{
		testFooter(),
		// The smallest archive: no blocks, an index, nothing else.
		{IndexSize: 20, IndexRawSize: 300, VolumeCount: 1, Version: Version, StreamSize: 20 + FooterSize},
		// Limits that are still accepted.
		{IndexOffset: math.MaxInt64 - 2*FooterSize, IndexSize: FooterSize, IndexRawSize: MaxIndexSize,
			VolumeCount: math.MaxUint32, Version: Version, ID: testID, StreamSize: math.MaxInt64},
	} {
		b := mustMarshal(t, f)
		if len(b) != FooterSize {
			t.Fatalf("footer is %d bytes, want %d", len(b), FooterSize)
		}
		got, err := ParseFooter(b)
		if err != nil || got != f {
			t.Errorf("ParseFooter(Marshal(%+v)) = %+v, %v", f, got, err)
		}
	}
}

func TestParseFooterReadsTheLastFooterSizeBytes(t *testing.T) {
	f := testFooter()
	tail := append(bytes.Repeat([]byte{0xee}, 1000), mustMarshal(t, f)...)
	if got, err := ParseFooter(tail); err != nil || got != f {
		t.Fatalf("ParseFooter(end of volume) = %+v, %v", got, err)
	}
}

func TestParseFooterRejects(t *testing.T) {
	wantErrors(t, badFooters(t), func(b []byte) error { _, err := ParseFooter(b); return err })
}

func badFooters(t testing.TB) []byteCase {
	valid := mustMarshal(t, testFooter())
	with := func(edit func(f *Footer)) []byte { return edited(t, testFooter(), edit) }
	raw := func(edit func(b []byte)) []byte { return patched(valid, edit) }
	return []byteCase{
		{"nothing", nil, ErrTruncated},
		{"one byte short", valid[1:], ErrTruncated},
		{"last volume cut short", valid[:FooterSize-1], ErrTruncated},
		{"no magic at the end", raw(func(b []byte) { b[79] = 0 }), ErrNotArchive},
		{"a volume header's magic", raw(func(b []byte) { copy(b[72:], VolumeMagic[:]) }), ErrNotArchive},
		{"the footer followed by junk", append(append([]byte(nil), valid...), 0), ErrNotArchive},
		{"flipped bit in the index offset", raw(func(b []byte) { b[3] ^= 4 }), ErrCorrupt},
		{"flipped bit in the archive id", raw(func(b []byte) { b[50] ^= 1 }), ErrCorrupt},
		{"flipped bit in the checksum", raw(func(b []byte) { b[68] ^= 1 }), ErrCorrupt},
		{"newer version", with(func(f *Footer) { f.Version = Version + 1 }), ErrVersion},
		{"version 0", with(func(f *Footer) { f.Version = 0 }), ErrVersion},
		{"unknown flags", with(func(f *Footer) { f.Flags = 0x8000 }), ErrVersion},
		{"reserved bytes set", raw(func(b []byte) { b[64] = 1; reseal(b, 68) }), ErrCorrupt},
		{"zero volumes", with(func(f *Footer) { f.VolumeCount = 0 }), ErrCorrupt},
		{"stream shorter than a footer", with(func(f *Footer) { f.StreamSize, f.IndexOffset, f.IndexSize = FooterSize-1, 0, 0 }), ErrCorrupt},
		{"stream beyond int64", with(func(f *Footer) { f.StreamSize = math.MaxInt64 + 1 }), ErrCorrupt},
		{"index overlaps the footer", with(func(f *Footer) { f.IndexSize++ }), ErrCorrupt},
		{"index starts past the stream", with(func(f *Footer) { f.IndexOffset = f.StreamSize }), ErrCorrupt},
		{"index end overflows", with(func(f *Footer) { f.IndexOffset = math.MaxUint64 - 10 }), ErrCorrupt},
		{"index size of all ones", with(func(f *Footer) { f.IndexSize = math.MaxUint64 }), ErrCorrupt},
		{"index larger than MaxIndexSize once decompressed", with(func(f *Footer) { f.IndexRawSize = MaxIndexSize + 1 }), ErrLimit},
		{"absurd decompressed index size", with(func(f *Footer) { f.IndexRawSize = math.MaxUint64 }), ErrLimit},
	}
}

// The example footer must describe what its numbers say: the test pins the
// arithmetic that docs/FORMAT.md walks through.
func TestExampleFooterIsConsistentWithItsLayout(t *testing.T) {
	f := testFooter()
	l := Layout{VolumeSize: 98 << 20}
	if got := l.VolumeCount(int64(f.StreamSize)); got != f.VolumeCount {
		t.Errorf("stream of %d bytes fills %d volumes, footer says %d", f.StreamSize, got, f.VolumeCount)
	}
	if f.IndexOffset+f.IndexSize != f.StreamSize-FooterSize {
		t.Error("the example is meant to need no padding")
	}
	if v, _ := l.Locate(int64(f.StreamSize - FooterSize)); v != f.VolumeCount {
		t.Errorf("footer starts in volume %d, not the last", v)
	}
}
