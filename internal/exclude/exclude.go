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
//     '/', "[a-z]" one of a class ("[!a-z]" or "[^a-z]" one not in it),
//     and "\" takes the character after it literally. A "**" that is a
//     whole part of a pattern matches any number of names, none included:
//     "**/testdata", "a/**/b", "logs/**" (elsewhere, as in "a**b", it is
//     a "*").
//   - A trailing '/' makes a pattern match directories only: "tmp/".
//   - A leading '!' takes a path matched by an earlier pattern back in;
//     "\!" matches a name that starts with '!'. The last pattern that
//     matches a path decides. A directory left out is not read at all, so
//     nothing below it can be taken back in.
//
// Names are bytes: "?" matches one UTF-8 character, or one byte of a name
// that is not valid UTF-8 there.
package exclude

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
)

// List is an ordered list of patterns. Its zero value excludes nothing.
type List struct {
	rules []rule
	// whole: some rule matches the whole path, so callers must build it
	// (WholePath); otherwise the name alone decides.
	whole bool
}

type rule struct {
	text    string   // as given, for messages
	negate  bool     // '!': a match takes the path back in
	dirOnly bool     // trailing '/': matches directories only
	name    string   // a pattern for the name alone; "" when parts is set
	parts   []string // a pattern for the whole path, '/'-separated parts
	literal bool     // name or every part has no wildcard: compared as is
}

// Add appends one pattern. It fails, naming the pattern, on one that is
// empty or malformed (an unclosed '[', a trailing '\').
func (l *List) Add(pattern string) error {
	r, err := parse(pattern)
	if err != nil {
		return fmt.Errorf("exclude pattern %q: %w", pattern, err)
	}
	l.rules = append(l.rules, r)
	l.whole = l.whole || r.parts != nil
	return nil
}

// AddFrom appends the patterns of an exclude file read from r: one a
// line; blank lines and lines starting with '#' are skipped ("\#" starts
// a pattern with '#'), and so is a line's trailing whitespace unless it
// is escaped with '\'. name is the file's, for messages, which give the
// line number.
func (l *List) AddFrom(r io.Reader, name string) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSuffix(sc.Text(), "\r")
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

// trimTrailingSpace drops the spaces and tabs that end line, but not one
// escaped with '\' (an odd run of backslashes before it).
func trimTrailingSpace(line string) string {
	end := len(line)
	for end > 0 && (line[end-1] == ' ' || line[end-1] == '\t') {
		end--
	}
	if end < len(line) {
		slashes := 0
		for i := end - 1; i >= 0 && line[i] == '\\'; i-- {
			slashes++
		}
		if slashes%2 == 1 {
			end++ // keep the escaped blank
		}
	}
	return line[:end]
}

// Empty reports whether the list has no pattern.
func (l *List) Empty() bool { return l == nil || len(l.rules) == 0 }

// WholePath reports whether some pattern matches against the whole path;
// where none does, Excluded needs only the entry's name, and callers may
// pass that instead of building the path.
func (l *List) WholePath() bool { return l != nil && l.whole }

// Excluded reports whether the entry at p (its archive path, or only its
// name where WholePath is false) is left out; dir says whether it is a
// directory. The archive root ("") is never left out.
func (l *List) Excluded(p string, dir bool) bool {
	if l == nil || p == "" {
		return false
	}
	name := p[strings.LastIndexByte(p, '/')+1:]
	out := false
	for i := len(l.rules) - 1; i >= 0; i-- { // the last match decides
		r := &l.rules[i]
		if r.dirOnly && !dir {
			continue
		}
		if r.matches(p, name) {
			out = !r.negate
			break
		}
	}
	return out
}

// ExcludedWithin reports whether the entry at archive path p (always the
// whole path) is left out, itself or with a directory above it: what a
// walk that never goes into a directory left out would leave out, for a
// path met whole (a tar member's, an extraction's). itself says that p
// matched, and no directory above it did.
func (l *List) ExcludedWithin(p string, dir bool) (excluded, itself bool) {
	if l.Empty() || p == "" {
		return false, false
	}
	start := 0 // of the name being looked at
	for i := 0; i < len(p); i++ {
		if p[i] != '/' {
			continue
		}
		if l.Excluded(l.subject(p, start, i), true) {
			return true, false
		}
		start = i + 1
	}
	if l.Excluded(l.subject(p, start, len(p)), dir) {
		return true, true
	}
	return false, false
}

// subject is what Excluded takes for the entry whose path is p[:end] and
// whose name starts at start: the path, or the name where that is enough.
func (l *List) subject(p string, start, end int) string {
	if l.whole {
		return p[:end]
	}
	return p[start:end]
}

func (r *rule) matches(p, name string) bool {
	if r.parts == nil {
		if r.literal {
			return name == r.name
		}
		ok, _ := path.Match(r.name, name) // validated by parse
		return ok
	}
	if r.literal {
		return p == r.name
	}
	return matchParts(r.parts, p)
}

// matchParts matches the parts of a pattern against path p, part by name;
// a "**" part takes any number of names, none included. On a mismatch it
// goes back only to the last "**", which then takes one name more: the
// way "*" is matched in a string, and for the same reason (an earlier
// "**" taking more could only leave the later one less to take), in time
// the product of the parts and the names however many "**" there are.
func matchParts(parts []string, p string) bool {
	// nameAt is the name that starts at byte at of p and where the next
	// one starts (past the end of p: none).
	nameAt := func(at int) (string, int) {
		if i := strings.IndexByte(p[at:], '/'); i >= 0 {
			return p[at : at+i], at + i + 1
		}
		return p[at:], len(p) + 1
	}
	pi, at := 0, 0
	star, starAt := -1, 0 // the last "**" seen, and where its names end
	for at <= len(p) {
		if pi < len(parts) && parts[pi] == "**" {
			star, starAt = pi, at
			pi++
			continue
		}
		name, next := nameAt(at)
		if pi < len(parts) {
			if ok, _ := path.Match(parts[pi], name); ok { // validated by parse
				pi, at = pi+1, next
				continue
			}
		}
		if star < 0 {
			return false
		}
		_, starAt = nameAt(starAt)
		pi, at = star+1, starAt
	}
	for pi < len(parts) && parts[pi] == "**" {
		pi++
	}
	return pi == len(parts)
}

func parse(pattern string) (rule, error) {
	r := rule{text: pattern}
	p := pattern
	switch {
	case strings.HasPrefix(p, "!"):
		r.negate, p = true, p[1:]
	case strings.HasPrefix(p, `\!`):
		p = p[1:]
	}
	for strings.HasSuffix(p, "/") {
		r.dirOnly, p = true, p[:len(p)-1]
	}
	anchored := strings.Contains(p, "/")
	p = strings.TrimLeft(p, "/")
	if p == "" {
		return r, errors.New("empty (a pattern needs a name to match)")
	}
	p = classNegation(p)
	if !anchored {
		if _, err := path.Match(p, ""); err != nil {
			return r, errMalformed
		}
		r.name, r.literal = p, !hasMeta(p)
		if r.literal {
			r.name = unescape(p)
		}
		return r, nil
	}
	r.parts = strings.Split(p, "/")
	r.literal = true
	for i, part := range r.parts {
		if part == "" {
			return r, errors.New("an empty name between two '/'")
		}
		if part == "**" {
			r.literal = false
			continue
		}
		if _, err := path.Match(part, ""); err != nil {
			return r, errMalformed
		}
		if hasMeta(part) {
			r.literal = false
		} else {
			r.parts[i] = unescape(part)
		}
	}
	if r.literal {
		r.name = strings.Join(r.parts, "/")
	}
	if len(r.parts) > 0 && r.parts[len(r.parts)-1] == "**" {
		// "logs/**" is what lies below logs, not logs: a name at least.
		r.parts = append(r.parts, "*")
	}
	return r, nil
}

var errMalformed = errors.New("malformed (an unclosed '[', or a backslash with nothing after it)")

// classNegation spells a class's "[!" as "[^", which path.Match reads as
// negation (fnmatch and .gitignore take both).
func classNegation(p string) string {
	if !strings.Contains(p, "[!") {
		return p
	}
	b := []byte(p)
	for i := 0; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++ // an escaped character is no class's start
		case '[':
			if i+1 < len(b) && b[i+1] == '!' {
				b[i+1] = '^'
			}
			// Skip to the class's end so that a '[' inside it is not taken
			// for another class's start.
			for i++; i < len(b) && b[i] != ']'; i++ {
				if b[i] == '\\' {
					i++
				}
			}
		}
	}
	return string(b)
}

// hasMeta reports whether part has a wildcard path.Match would read as one.
func hasMeta(part string) bool { return strings.ContainsAny(part, `*?[`) }

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
