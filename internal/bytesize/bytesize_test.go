package bytesize

import "testing"

func TestParseAcceptsSuffixesInPowersOf1024(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int64
	}{
		{"0", 0}, {"100", 100}, {"1K", 1024}, {"1k", 1024}, {"16M", 16 << 20},
		{"16MiB", 16 << 20}, {"16mib", 16 << 20}, {"16MB", 16 << 20}, {"98M", 98 << 20},
		{"2G", 2 << 30}, {"1T", 1 << 40}, {"4096B", 4096}, {" 64K ", 64 << 10},
		{"8388607T", 8388607 << 40}, // the largest that fits an int64
	} {
		got, err := Parse(c.in)
		if err != nil || got != c.want {
			t.Errorf("Parse(%q) = %d, %v; want %d", c.in, got, err, c.want)
		}
	}
}

func TestParseRejectsWhatIsNotASize(t *testing.T) {
	for _, in := range []string{
		"", "M", "B", "iB", "-1", "+1", "1.5M", "1X", "abc", "1MM", "0x10", "1 M",
		"512I", // a lone "i" is no unit
		"8388608T", "99999999999T", "99999999999999999999",
	} {
		if n, err := Parse(in); err == nil {
			t.Errorf("Parse(%q) = %d, want an error", in, n)
		}
	}
}

func TestFormatRoundTrips(t *testing.T) {
	for _, c := range []struct {
		n    int64
		want string
	}{
		{0, "0"}, {1, "1"}, {1023, "1023"}, {1024, "1K"}, {1536 << 10, "1536K"},
		{16 << 20, "16M"}, {98 << 20, "98M"}, {3 << 40, "3T"},
	} {
		s := Format(c.n)
		got, err := Parse(s)
		if s != c.want || err != nil || got != c.n {
			t.Errorf("Format(%d) = %q (want %q), read back as %d, %v", c.n, s, c.want, got, err)
		}
	}
}
