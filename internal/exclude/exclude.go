// Package exclude holds the patterns that leave paths out of an archive
// (`arcpack create --exclude`, `--exclude-from`) and matches archive paths
// against them.
//
// The rules are those users know from .gitignore and rsync:
//
//   - A path is the entry's path inside the archive, '/'-separated, with
//     no leading '/' (as `arcpack list` prints it).
//   - A pattern without a '/' (a trailing one aside) matches an entry's
//     name at any depth: "*.o", "node_modules", ".cache".
//   - A pattern with a '/' at its start or in its middle matches the whole
//     path from the archive root: "/build", "src/gen/*.go"; a leading '/'
//     only says so.
//   - "*" matches any run of characters but '/', "?" one character but
//     '/', "[a-z]" one of a class ("[!a-z]" or "[^a-z]" one not in it;
//     a ']' first and a '-' that makes no range, "[a-]" or "[a-b-c]",
//     are themselves), and "\" takes the character after it literally.
//     A "**" (or more stars) that is a whole part of a pattern matches
//     any number of names, none included: "**/testdata", "a/**/b",
//     "logs/**" (elsewhere, as in "a**b", it is a "*").
//   - A trailing '/' makes a pattern match directories only: "tmp/".
//   - A leading '!' takes a path matched by an earlier pattern back in;
//     "\!" matches a name that starts with '!'. The last pattern that
//     matches a path decides. A directory left out is not read at all, so
//     nothing below it can be taken back in.
//
// Names are bytes: "?" and a class match one UTF-8 character, or one byte
// of a name that is not valid UTF-8 there; a pattern's other characters
// match bytes as they are. Refused rather than matched differently: POSIX
// classes such as "[[:alpha:]]", a byte that is not UTF-8 inside a class,
// an empty name ("a//b", "//a", "a//"), and patterns of more than 62 names.
//
// A walk keeps a Dir for each directory it goes into (Root, then Enter a
// name at a time) and asks Excluded of each entry: the patterns that match
// whole paths are followed a name at a time, so that a path thousands of
// levels deep costs its length, not its length for each of its levels.
package exclude

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
	"unicode/utf8"
)

// List is an ordered list of patterns. Its zero value excludes nothing.
type List struct {
	rules []rule
	// whole: the rules that match whole paths, in order; rule.k is a
	// rule's place here, and a Dir's too.
	whole []int
}

type rule struct {
	text    string // as given
	negate  bool   // '!': a match takes the path back in
	dirOnly bool   // trailing '/': matches directories only
	name    part   // the pattern for the name alone, where parts is nil
	parts   []part // the pattern for the whole path, one part a name
	k       int    // the rule's place in List.whole
}

// part matches one name: as is (lit), by path.Match (glob), or any
// number of names ("**").
type part struct {
	lit, glob string
	isGlob    bool
	any       bool
}

func (p *part) matches(name string) bool {
	if !p.isGlob {
		return name == p.lit
	}
	ok, _ := path.Match(p.glob, name) // validated by parse
	return ok
}

// maxParts bounds the names a pattern may have: a Dir keeps where each
// whole-path pattern stands in one uint64, a bit a part.
const maxParts = 63

// A Dir is where the whole-path patterns stand in a directory: for each,
// a bit i set where the directory's path matches its first i parts. The
// zero Dir is the archive root's where no pattern needs more than a name.
type Dir struct{ at []uint64 }

// Tracked reports whether d holds anything: whether a walk must keep it
// for the directory (where no pattern needs more than names, it need not).
func (d Dir) Tracked() bool { return d.at != nil }

// Add appends one pattern. It fails, naming the pattern, on one that is
// empty or malformed (an unclosed '[', a trailing '\').
func (l *List) Add(pattern string) error {
	r, err := parse(pattern)
	if err != nil {
		return fmt.Errorf("exclude pattern \"%s\": %w", pattern, err)
	}
	if r.parts != nil {
		r.k = len(l.whole)
		l.whole = append(l.whole, len(l.rules))
	}
	l.rules = append(l.rules, r)
	return nil
}

// AddFrom appends the patterns of an exclude file read from r: one a
// line; blank lines and lines starting with '#' are skipped ("\#" starts
// a pattern with '#'), and so are a line's trailing spaces unless escaped
// with '\' (as git reads .gitignore). name is the file's, for messages,
// which give the line number.
func (l *List) AddFrom(r io.Reader, name string) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSuffix(sc.Text(), "\r")
		if n == 1 {
			line = strings.TrimPrefix(line, "\ufeff") // a byte order mark
		}
		line = trimTrailingSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		if err := l.Add(line); err != nil {
			return fmt.Errorf("%s:%d: %w", name, n, err)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// trimTrailingSpace drops the spaces that end line, but not one escaped
// with '\' (an odd run of backslashes before it).
func trimTrailingSpace(line string) string {
	end := len(line)
	for end > 0 && line[end-1] == ' ' {
		end--
	}
	if end < len(line) {
		slashes := 0
		for i := end - 1; i >= 0 && line[i] == '\\'; i-- {
			slashes++
		}
		if slashes%2 == 1 {
			end++ // keep the escaped space
		}
	}
	return line[:end]
}

// Patterns are the list's patterns as given, in order.
func (l *List) Patterns() []string {
	if l == nil {
		return nil
	}
	out := make([]string, len(l.rules))
	for i, r := range l.rules {
		out[i] = r.text
	}
	return out
}

// Empty reports whether the list has no pattern.
func (l *List) Empty() bool { return l == nil || len(l.rules) == 0 }

// Root is the archive root's Dir.
func (l *List) Root() Dir {
	if l == nil || len(l.whole) == 0 {
		return Dir{}
	}
	d := Dir{at: make([]uint64, len(l.whole))}
	for k, i := range l.whole {
		d.at[k] = closure(l.rules[i].parts, 1)
	}
	return d
}

// Enter is the Dir of directory name of in.
func (l *List) Enter(in Dir, name string) Dir {
	if l == nil || len(l.whole) == 0 {
		return Dir{}
	}
	d := Dir{at: make([]uint64, len(l.whole))}
	for k, i := range l.whole {
		d.at[k] = step(l.rules[i].parts, in.at[k], name)
	}
	return d
}

// Excluded reports whether entry name of the directory whose Dir is in is
// left out; dir says whether the entry is a directory. No name ("", the
// root's) is.
func (l *List) Excluded(in Dir, name string, dir bool) bool {
	if l == nil || name == "" {
		return false
	}
	for i := len(l.rules) - 1; i >= 0; i-- { // the last match decides
		r := &l.rules[i]
		if r.dirOnly && !dir {
			continue
		}
		var hit bool
		if r.parts == nil {
			hit = r.name.matches(name)
		} else {
			hit = step(r.parts, in.at[r.k], name)&(1<<len(r.parts)) != 0
		}
		if hit {
			return !r.negate
		}
	}
	return false
}

// ExcludedWithin reports what of the entry at archive path p is left out,
// itself or with a directory above it, as a walk that never goes into a
// directory left out would leave it: the length of p's prefix that is the
// path left out (len(p): p itself), or -1 where p is kept. It is for a
// path met whole (a tar member's); its cost is p's length. The root ("")
// is never left out.
func (l *List) ExcludedWithin(p string, dir bool) int {
	if l.Empty() || p == "" {
		return -1
	}
	in := l.Root()
	start := 0 // of the name being looked at
	for i := 0; i < len(p); i++ {
		if p[i] != '/' {
			continue
		}
		name := p[start:i]
		if l.Excluded(in, name, true) {
			return i
		}
		in = l.Enter(in, name)
		start = i + 1
	}
	if l.Excluded(in, p[start:], dir) {
		return len(p)
	}
	return -1
}

// closure adds to bits (bit i: the first i parts matched) what a "**"
// matching no name adds: past each "**" reached.
func closure(parts []part, bits uint64) uint64 {
	for i, p := range parts {
		if p.any && bits&(1<<i) != 0 {
			bits |= 1 << (i + 1)
		}
	}
	return bits
}

// step is where parts stand after one more name, from bits: a part
// reached that matches the name is passed, a "**" reached stays reached.
func step(parts []part, bits uint64, name string) uint64 {
	var next uint64
	for i := range parts {
		if bits&(1<<i) == 0 {
			continue
		}
		switch {
		case parts[i].any:
			next |= 1 << i
		case parts[i].matches(name):
			next |= 1 << (i + 1)
		}
	}
	return closure(parts, next)
}

func parse(pattern string) (rule, error) {
	r := rule{text: pattern}
	p := pattern
	if strings.ContainsAny(p, "\n\x00") {
		// No name holds a NUL; a newline would split the pattern in two
		// in an exclude file and in the archive's record of them.
		return r, errors.New("a newline or NUL in a pattern")
	}
	switch {
	case strings.HasPrefix(p, "!"):
		r.negate, p = true, p[1:]
	case strings.HasPrefix(p, `\!`):
		p = p[1:]
	}
	if strings.HasSuffix(p, "/") {
		r.dirOnly, p = true, p[:len(p)-1]
	}
	anchored := strings.Contains(p, "/")
	p = strings.TrimPrefix(p, "/") // one: "//a" and "a//" have an empty name, as "a//b"
	if p == "" {
		return r, errors.New("empty (a pattern needs a name to match)")
	}
	names := strings.Split(p, "/")
	if len(names) > maxParts-1 { // one more for a trailing "**"
		return r, fmt.Errorf("more than %d names", maxParts-1)
	}
	parts := make([]part, len(names))
	for i, name := range names {
		if name == "" {
			return r, errors.New("an empty name between two '/'")
		}
		if name == "." || name == ".." {
			// No archive path holds one, so the pattern would match
			// nothing, silently. "./src/big" is how tar users write a
			// path from the root: say so.
			if i == 0 && name == "." && len(names) > 1 {
				meant := "/" + strings.Join(names[1:], "/")
				if r.dirOnly {
					meant += "/"
				}
				if r.negate {
					meant = "!" + meant
				}
				return r, fmt.Errorf("a leading './': archive paths have none (as 'arcpack list' prints them); for the path from the root, write \"%s\"", meant)
			}
			return r, fmt.Errorf("a '%s' name: archive paths hold none (as 'arcpack list' prints them), so it would match nothing", name)
		}
		if len(name) >= 2 && strings.Trim(name, "*") == "" && anchored {
			parts[i].any = true // "***" too, as git takes it
			continue
		}
		pt, err := parsePart(name)
		switch {
		case err == errUnclosed && strings.Contains(strings.Join(names[i+1:], "/"), "]"):
			return r, errors.New("a '/' inside [...]: a class matches one character of a name, never a '/'")
		case err == errTrailingBackslash && i+1 < len(names):
			return r, errors.New("a '\\' before a '/': a '/' always separates names and cannot be escaped")
		case err != nil:
			return r, err
		}
		parts[i] = pt
	}
	if !anchored {
		r.name = parts[0]
		return r, nil
	}
	if parts[len(parts)-1].any {
		// "logs/**" is what lies below logs, not logs: a name at least.
		parts = append(parts, part{glob: "*", isGlob: true})
	}
	r.parts = parts
	return r, nil
}

// parsePart makes a matcher of one name of a pattern.
func parsePart(name string) (part, error) {
	glob, err := translateClasses(name)
	if err != nil {
		return part{}, err
	}
	if _, err := path.Match(glob, ""); err != nil {
		switch {
		case trailingBackslash(glob):
			return part{}, errTrailingBackslash
		case !utf8.ValidString(glob):
			// path.Match reads a class by characters.
			return part{}, errors.New("a byte that is not UTF-8 inside [...] is not supported (outside a class it matches as is)")
		}
		return part{}, errUnclosed
	}
	if !strings.ContainsAny(glob, `*?[`) {
		return part{lit: unescape(glob)}, nil
	}
	return part{glob: glob, isGlob: true}, nil
}

var (
	errUnclosed          = errors.New("an unclosed '['")
	errTrailingBackslash = errors.New("a '\\' with nothing after it")
)

// trailingBackslash reports whether p ends in an odd run of backslashes: a
// last '\' that escapes nothing.
func trailingBackslash(p string) bool {
	n := len(p) - len(strings.TrimRight(p, `\`))
	return n%2 == 1
}

// translateClasses spells the classes of a pattern's name as
// path.Match reads them with the meaning fnmatch and .gitignore give
// them: "[!" as "[^" (negation), a ']' first in a class and a '-' that
// makes no range (first, last, or right after a range: "[a-b-c]" is a to
// b, '-' and c) as themselves. A POSIX class ("[[:alpha:]]") is refused:
// path.Match would take it for a class of its letters.
func translateClasses(p string) (string, error) {
	if !strings.Contains(p, "[") {
		return p, nil
	}
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c == '\\' && i+1 < len(p) {
			b.WriteString(p[i : i+2])
			i++
			continue
		}
		if c != '[' {
			b.WriteByte(c)
			continue
		}
		end := classEnd(p, i)
		if end < 0 {
			// Unclosed, which path.Match would not always say: it reads
			// "[!]" as a class of '!', where git matches nothing.
			return "", errUnclosed
		}
		b.WriteByte('[')
		j := i + 1
		if p[j] == '!' || p[j] == '^' {
			b.WriteByte('^')
			j++
		}
		if posixClass(p[j:end]) {
			return "", errors.New("POSIX classes such as [[:alpha:]] are not supported; spell the class out, such as [a-zA-Z]")
		}
		for k := j; k < end; {
			lo, n := classElem(p[k:end])
			if k+n+1 < end && p[k+n] == '-' { // lo-hi
				hi, m := classElem(p[k+n+1 : end])
				b.WriteString(lo + "-" + hi)
				k += n + 1 + m
				continue
			}
			b.WriteString(lo)
			k += n
		}
		b.WriteByte(']')
		i = end
	}
	return b.String(), nil
}

// classElem is the first character of a class's body c (an escaped one,
// or ']' and '-' escaped) as path.Match reads it, and its length in c.
func classElem(c string) (string, int) {
	switch {
	case c[0] == '\\' && len(c) > 1:
		return c[:2], 2
	case c[0] == ']' || c[0] == '-':
		return `\` + c[:1], 1
	}
	_, n := utf8.DecodeRuneInString(c)
	return c[:n], n
}

// posixClass reports whether a class's body holds a POSIX class, such as
// "[:alpha:" of "[[:alpha:]]" (the class ends at its first ']'), rather
// than a '[' and a ':' of its own ("[a[:]").
func posixClass(body string) bool {
	i := strings.Index(body, "[:")
	if i < 0 || i+3 > len(body) || !strings.HasSuffix(body, ":") {
		return false // no name between "[:" and a ':' that ends the body
	}
	name := body[i+2 : len(body)-1]
	return name != "" && strings.Trim(name, "abcdefghijklmnopqrstuvwxyz") == ""
}

// classEnd is the index of the ']' that closes the class opened at
// p[open], or -1: a ']' right after the '[' (or its '!' or '^') belongs to
// the class, and '\\' escapes.
func classEnd(p string, open int) int {
	j := open + 1
	if j < len(p) && (p[j] == '!' || p[j] == '^') {
		j++
	}
	if j < len(p) && p[j] == ']' {
		j++
	}
	for ; j < len(p); j++ {
		switch p[j] {
		case '\\':
			j++
		case ']':
			return j
		}
	}
	return -1
}

// unescape drops the '\' of escaped characters in a pattern without
// wildcards, which is then compared as is.
func unescape(p string) string {
	if !strings.Contains(p, `\`) {
		return p
	}
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		if p[i] == '\\' && i+1 < len(p) {
			i++
		}
		b.WriteByte(p[i])
	}
	return b.String()
}
