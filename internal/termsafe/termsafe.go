// Package termsafe spells text that an archive, a tar stream or a tree
// controls (file names, owner names, parameters, messages that hold them)
// so that printing it cannot act on a terminal or pass for other text, and
// measures text in the columns a terminal draws it in (Width), for output
// laid out in columns, and quotes paths in the commands that messages
// suggest (Word).
package termsafe

import (
	"fmt"
	"io"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Name makes a file name (or any text an archive or a tar stream controls)
// printable on one line: C escapes for control bytes, backslashes and
// bytes that are not valid UTF-8; and, as octal bytes like `ls` writes
// them, the characters a terminal would act on or that would make a name
// read as another: C1 controls (U+009B starts a terminal escape sequence
// as ESC [ does), the line and paragraph separators, and the invisible
// format characters (Unicode's Cf: bidirectional controls such as U+202E,
// which shows "gpj.exe" as "exe.jpg", zero-width spaces, soft hyphens),
// but for the zero-width joiner and non-joiner, which emoji and several
// scripts need.
//
// A name of printable ASCII alone, most of them, comes back as it is,
// without a copy; elsewhere runs of it are copied whole.
func Name(s string) string {
	i := plain(s)
	if i == len(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + len(s)/8)
	b.WriteString(s[:i])
	for i < len(s) {
		if n := plain(s[i:]); n > 0 {
			b.WriteString(s[i : i+n])
			i += n
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n <= 1:
			fmt.Fprintf(&b, `\%03o`, s[i])
		case r >= 0x80 && r <= 0x9f || r == 0x2028 || r == 0x2029 || unicode.Is(unicode.Cf, r) && r != 0x200c && r != 0x200d:
			for _, c := range []byte(s[i : i+n]) {
				fmt.Fprintf(&b, `\%03o`, c)
			}
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\%03o`, r)
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

// plain is the length of s's leading run of bytes that Name leaves as
// they are and needs not decode: printable ASCII but the backslash.
func plain(s string) int {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '\\' {
			return i
		}
	}
	return len(s)
}

// Writer escapes what is written through it as Name does, except the
// newline that ends each write: a log.Logger writes one line a call.
type Writer struct{ W io.Writer }

func (w Writer) Write(p []byte) (int, error) {
	s := string(p)
	nl := strings.HasSuffix(s, "\n")
	s = Name(strings.TrimSuffix(s, "\n"))
	if nl {
		s += "\n"
	}
	if _, err := w.W.Write([]byte(s)); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Word spells a path for a command line that a message suggests (`arcpack
// repair NAME`, `fusermount3 -u DIR`), so that pasting it into a POSIX
// shell gives the path back: as it is where the shell reads it so
// (letters, digits and -_.,/+=:@%~ but a leading '~'), else in double
// quotes where none of $ ` \ " ! is in it, else in single quotes, a '
// written as '"'"'. It writes no backslash, so that Name, which the
// messages go through, leaves it as it is; a path that Name must escape
// (a control character, a backslash) is shown safe but does not paste.
func Word(s string) string {
	if s != "" && s[0] != '~' && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.,/+=:@%~") == "" {
		return s
	}
	if !strings.ContainsAny(s, "$`\\\"!") {
		return `"` + s + `"`
	}
	return "'" + strings.ReplaceAll(s, "'", `'"'"'`) + "'"
}
