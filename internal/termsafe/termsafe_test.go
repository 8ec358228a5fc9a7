package termsafe

import (
	"strings"
	"testing"
)

func TestNameLeavesNothingATerminalActsOn(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"plain", "a/b c.txt", "a/b c.txt"},
		{"printable unicode", "héllo/日本", "héllo/日本"},
		{"backslash", `a\b`, `a\\b`},
		{"newline and tab", "a\nb\tc", `a\nb\tc`},
		{"C0 controls and DEL", "\x1b[31m\x7f", `\033[31m\177`},
		{"invalid UTF-8", "a\xffb", `a\377b`},
		{"C1 CSI", "a\u009b31mb", `a\302\23331mb`},
		{"C1 NEL", "a\u0085b", `a\302\205b`},
		{"right-to-left override", "gpj\u202e.exe", `gpj\342\200\256.exe`},
		{"isolate and mark", "\u2066x\u2069\u200f", `\342\201\246x\342\201\251\342\200\217`},
		{"line separator", "a\u2028b\u2029", `a\342\200\250b\342\200\251`},
		{"arabic letter mark", "a\u061cb", `a\330\234b`},
		{"zero-width space", "a\u200bb", `a\342\200\213b`},
		{"byte order mark", "\ufeffa", `\357\273\277a`},
		{"soft hyphen", "a\u00adb", `a\302\255b`},
		{"joiners kept", "👩\u200d💻 \u200c", "👩\u200d💻 \u200c"},
	} {
		if got := Name(tc.in); got != tc.want {
			t.Errorf("%s: Name(%q) = %s, want %s", tc.name, tc.in, got, tc.want)
		}
	}
}

func TestWriterEscapesEachLineButItsNewline(t *testing.T) {
	var b strings.Builder
	w := Writer{&b}
	for _, line := range []string{"arcmount: /a\x1b[2Jb: EIO\n", "no newline\u202e"} {
		if n, err := w.Write([]byte(line)); err != nil || n != len(line) {
			t.Fatalf("Write(%q) = %d, %v", line, n, err)
		}
	}
	if want := `arcmount: /a\033[2Jb: EIO` + "\n" + `no newline\342\200\256`; b.String() != want {
		t.Fatalf("wrote %q, want %q", b.String(), want)
	}
}
