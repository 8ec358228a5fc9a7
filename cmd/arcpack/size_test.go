package main

import "testing"

func TestParseSizeAcceptsSuffixesInPowersOf1024(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int64
	}{
		{"0", 0}, {"100", 100}, {"1K", 1024}, {"1k", 1024}, {"16M", 16 << 20},
		{"16MiB", 16 << 20}, {"16MB", 16 << 20}, {"98M", 98 << 20}, {"2G", 2 << 30},
		{"1T", 1 << 40}, {"4096B", 4096}, {" 64K ", 64 << 10},
	} {
		got, err := parseSize(c.in)
		if err != nil || got != c.want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", c.in, got, err, c.want)
		}
	}
}

func TestParseSizeRejectsGarbage(t *testing.T) {
	for _, in := range []string{"", "M", "-1", "1.5M", "1X", "abc", "99999999999T", "1MM", "0x10"} {
		if n, err := parseSize(in); err == nil {
			t.Errorf("parseSize(%q) = %d, want an error", in, n)
		}
	}
}

func TestFormatSizeRoundTrips(t *testing.T) {
	for _, n := range []int64{0, 1, 1023, 1024, 1536 << 10, 16 << 20, 98 << 20, 3 << 40} {
		got, err := parseSize(formatSize(n))
		if err != nil || got != n {
			t.Errorf("parseSize(formatSize(%d) = %q) = %d, %v", n, formatSize(n), got, err)
		}
	}
}
