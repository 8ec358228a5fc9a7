package codec

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"runtime"
	"testing"

	"arc/format"
)

// An index streamed through IndexReader must end exactly at the size the
// footer gives: End refuses a stream with bytes left, and a claim above
// format.MaxIndexSize is refused before anything is read.
func TestIndexReaderEndsExactlyAtTheFootersSize(t *testing.T) {
	raw := bytes.Repeat([]byte("index bytes, "), 10000)
	stored, err := CompressIndex(raw)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		read int
		ok   bool
	}{{len(raw), true}, {len(raw) - 1, false}} {
		r, err := OpenIndex(stored, uint64(len(raw)))
		if err != nil {
			t.Fatal(err)
		}
		got := make([]byte, tc.read)
		if _, err := io.ReadFull(r, got); err != nil || !bytes.Equal(got, raw[:tc.read]) {
			t.Fatalf("reading %d bytes: %v", tc.read, err)
		}
		if err := r.End(); (err == nil) != tc.ok {
			t.Fatalf("End after %d of %d bytes: %v", tc.read, len(raw), err)
		}
		r.Close()
	}
	if _, err := OpenIndex(stored, format.MaxIndexSize+1); !errors.Is(err, format.ErrLimit) {
		t.Fatalf("a claim over MaxIndexSize: %v, want ErrLimit", err)
	}
}

// A stored index of a few bytes whose frame declares a 64 MiB window and
// 16 GiB of content, under a footer that claims 16 GiB, is refused having
// allocated at most the window (the largest FORMAT.md lets readers
// accept), not the claim.
func TestAHugeIndexClaimAllocatesAtMostTheWindow(t *testing.T) {
	const claim = 16 << 30
	stored := []byte{0x28, 0xb5, 0x2f, 0xfd, 0xc4, 16 << 3} // magic; 8-byte content size, checksum; window 2^26
	stored = binary.LittleEndian.AppendUint64(stored, claim)
	rle := uint32(1<<1 | (128<<10)<<3) // an RLE block of 128 KiB, not the last
	stored = append(stored, byte(rle), byte(rle>>8), byte(rle>>16), 0)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	r, err := OpenIndex(stored, claim)
	if err != nil {
		t.Fatal(err)
	}
	_, err = format.DecodeIndexFrom(r, claim, r.Alloc)
	r.Close()
	runtime.ReadMemStats(&after)
	if !errors.Is(err, format.ErrCorrupt) {
		t.Fatalf("%v, want ErrCorrupt", err)
	}
	if got := after.TotalAlloc - before.TotalAlloc; got > 80<<20 {
		t.Fatalf("allocated %d bytes for a %d-byte stored index", got, len(stored))
	}
}
