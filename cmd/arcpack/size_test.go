package main

import (
	"math"
	"testing"
)

// Sizes for people go up to EiB, and the holes of sparse files, which add
// up past int64's range, are shown from their unsigned count: info had
// said "-6144.0 PiB" of two 5 EiB files' holes.
func TestSizesArePrintedInUnitsUpToEiB(t *testing.T) {
	for _, tc := range []struct {
		n    uint64
		want string
	}{
		{0, "0 B"},
		{1023, "1023 B"},
		{1024, "1.0 KiB"},
		{1536000, "1.5 MiB"},
		{5 << 40, "5.0 TiB"},
		{3 << 50, "3.0 PiB"},
		{10 << 60, "10.0 EiB"},
		{math.MaxUint64, "16.0 EiB"},
	} {
		if got := humanUBytes(tc.n); got != tc.want {
			t.Errorf("humanUBytes(%d) = %q, want %q", tc.n, got, tc.want)
		}
		if tc.n <= math.MaxInt64 {
			if got := humanBytes(int64(tc.n)); got != tc.want {
				t.Errorf("humanBytes(%d) = %q, want %q", tc.n, got, tc.want)
			}
		}
	}
	if got := (&units{bytes: true}).usize(math.MaxUint64); got != "18446744073709551615 B" {
		t.Errorf("--bytes: %q", got)
	}
	if got := humanBytes(-2048); got != "-2.0 KiB" {
		t.Errorf("humanBytes(-2048) = %q", got)
	}
}
