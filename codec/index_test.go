package codec

import (
	"bytes"
	"errors"
	"io"
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
