package termsafe

import (
	"os/exec"
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
		{"escapes after a long plain run", strings.Repeat("a/", 40) + "\x1b\\" + strings.Repeat("b", 40), strings.Repeat("a/", 40) + `\033\\` + strings.Repeat("b", 40)},
		{"only escapes", "\n\t\\", `\n\t\\`},
	} {
		if got := Name(tc.in); got != tc.want {
			t.Errorf("%s: Name(%q) = %s, want %s", tc.name, tc.in, got, tc.want)
		}
	}
}

// A plain name, what nearly every archive holds, is returned as it is:
// listing a million paths, or one 600 KB deep, copies none of them.
func TestAPlainNameIsNotCopied(t *testing.T) {
	name := strings.Repeat("src/pkg-1.2_x~y=z@w, (copy) #1/", 100)
	if allocs := testing.AllocsPerRun(10, func() { _ = Name(name) }); allocs != 0 {
		t.Errorf("Name of a plain name allocated %v times, want none", allocs)
	}
	if got := Name(name); got != name {
		t.Errorf("Name changed a plain name: %q", got)
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

func TestWidthCountsTerminalColumns(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     int
	}{
		{"empty", "", 0},
		{"ASCII", "root/wheel 1234", 15},
		{"Latin-1 precomposed", "héllo", 5},
		{"combining acute accent", "he\u0301llo", 5},
		{"enclosing circle", "a\u20dd", 1},
		{"CJK ideographs", "日本語", 6},
		{"CJK mixed with ASCII", "用户/grp", 8},
		{"ideographic space and punctuation", "\u3000。", 4},
		{"hiragana and katakana", "ひらカタ", 8},
		{"halfwidth katakana", "ｶﾀｶﾅ", 4},
		{"Hangul syllables", "한국어", 6},
		{"Hangul jamo that join into one syllable", "\u1112\u1161\u11ab", 2},
		{"fullwidth letters", "ＡＢＣ", 6},
		{"fullwidth yen sign", "￥", 2},
		{"CJK Extension B", "\U00020000", 2},
		{"emoji", "😀🤖", 4},
		{"emoji drawn as text by default", "☺", 1},
		{"emoji presentation selector", "☺\ufe0f", 2},
		{"zero-width joiner and non-joiner", "a\u200db\u200cc", 3},
		{"emoji joined by a zero-width joiner into one picture", "👩\u200d💻", 2},
		{"escapes as Name prints them", Name("a\x1b\u202e"), 1 + 4 + 12},
		{"invalid UTF-8 byte", "a\xffb", 3},
	} {
		if got := Width(tc.in); got != tc.want {
			t.Errorf("%s: Width(%q) = %d, want %d", tc.name, tc.in, got, tc.want)
		}
	}
}

func TestWordPastesBackAsThePath(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"/mnt/backup", "/mnt/backup"},
		{"backup-2024_v1.2,x+y=z:a@b%c~d.001", "backup-2024_v1.2,x+y=z:a@b%c~d.001"},
		{"my mnt", `"my mnt"`},
		{"it's", `"it's"`},
		{"~home", `"~home"`},
		{"", `""`},
		{"a*b?[c]", `"a*b?[c]"`},
		{"$HOME", `'$HOME'`},
		{"say \"hi\"", `'say "hi"'`},
		{"it's $5", `'it'"'"'s $5'`},
		{"wow!", `'wow!'`},
	} {
		got := Word(tc.in)
		if got != tc.want {
			t.Errorf("Word(%q) = %s, want %s", tc.in, got, tc.want)
		}
		if Name(got) != got {
			t.Errorf("Word(%q) = %s, which Name changes to %s", tc.in, got, Name(got))
		}
		if out, err := exec.Command("sh", "-c", `printf %s `+got).Output(); err != nil || string(out) != tc.in {
			t.Errorf("sh reads %s as %q (%v), want %q", got, out, err, tc.in)
		}
	}
}
