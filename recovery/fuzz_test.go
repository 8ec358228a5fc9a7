package recovery

import (
	"bytes"
	"testing"
)

// FuzzParseHeader: any bytes either are refused or decode to a header
// that encodes back to exactly those bytes; never a panic or a huge
// allocation.
func FuzzParseHeader(f *testing.F) {
	dir := f.TempDir()
	base := makeSet(f, dir, 16<<10, 3*(16<<10-48)-100, 3)
	if _, err := Add(ctx, base, Options{Percent: 30}); err != nil {
		f.Fatal(err)
	}
	h, err := readAnyHeader(base + ".r01")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(h.encode(1))
	f.Add(h.encode(2))
	f.Add([]byte("ARCREC\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := parseHeader(b)
		if err != nil {
			return
		}
		if got := h.encode(h.number); !bytes.Equal(got, b) {
			t.Fatalf("re-encoded header differs")
		}
	})
}
