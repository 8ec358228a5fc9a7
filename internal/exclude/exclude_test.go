package exclude

import (
	"math/rand/v2"
	"path"
	"strings"
	"testing"
)

func TestPatternsMatchAsGitignoreDoes(t *testing.T) {
	type probe struct {
		path string
		dir  bool
		out  bool
	}
	tests := []struct {
		name     string
		patterns []string
		probes   []probe
	}{
		{"a name matches at any depth", []string{"node_modules"}, []probe{
			{"node_modules", true, true},
			{"web/app/node_modules", true, true},
			{"web/app/node_modules.txt", false, false},
			{"web/node_modules2", true, false},
		}},
		{"a star stays within a name", []string{"*.o"}, []probe{
			{"a.o", false, true},
			{"src/lib/b.o", false, true},
			{"src/b.o/c", false, false},
			{"b.oo", false, false},
		}},
		{"a slash anchors the pattern at the root", []string{"/build"}, []probe{
			{"build", true, true},
			{"build", false, true},
			{"src/build", true, false},
		}},
		{"a middle slash anchors too", []string{"src/*.go"}, []probe{
			{"src/a.go", false, true},
			{"x/src/a.go", false, false},
			{"src/sub/a.go", false, false},
		}},
		{"a trailing slash matches directories only", []string{"tmp/"}, []probe{
			{"tmp", true, true},
			{"a/tmp", true, true},
			{"tmp", false, false},
			{"a/tmp", false, false},
		}},
		{"leading double star matches at any depth", []string{"**/testdata"}, []probe{
			{"testdata", true, true},
			{"a/b/testdata", true, true},
			{"a/testdata2", true, false},
		}},
		{"middle double star matches no name or many", []string{"a/**/z"}, []probe{
			{"a/z", false, true},
			{"a/b/z", false, true},
			{"a/b/c/d/z", false, true},
			{"b/a/z", false, false},
			{"a/z/y", false, false},
		}},
		{"trailing double star matches what is below, not the directory", []string{"logs/**"}, []probe{
			{"logs", true, false},
			{"logs/a", false, true},
			{"logs/a/b", false, true},
			{"x/logs/a", false, false},
		}},
		{"a double star inside a name is a star", []string{"a**b"}, []probe{
			{"axyb", false, true},
			{"d/ab", false, true},
		}},
		{"question mark matches one character, a multi-byte one too", []string{"?.txt"}, []probe{
			{"a.txt", false, true},
			{"é.txt", false, true},
			{"ab.txt", false, false},
			{"\xff.txt", false, true}, // not UTF-8: one byte
		}},
		{"classes, negated with ! or ^", []string{"[a-c].1", "[!a-c].2", "[^a-c].3"}, []probe{
			{"b.1", false, true},
			{"d.1", false, false},
			{"d.2", false, true},
			{"a.2", false, false},
			{"d.3", false, true},
			{"a.3", false, false},
		}},
		{"a backslash takes the next character literally", []string{`\*.log`, `\[x]`}, []probe{
			{"*.log", false, true},
			{"a.log", false, false},
			{"[x]", false, true},
			{"x", false, false},
		}},
		{"the last matching pattern decides", []string{"*.log", "!keep.log", "keep.log/"}, []probe{
			{"a.log", false, true},
			{"keep.log", false, false},
			{"d/keep.log", false, false},
			{"keep.log", true, true},
		}},
		{"an escaped backslash in a pattern with a slash", []string{`**/a\\b`, `/x/c\\d`}, []probe{
			{`a\b`, false, true},
			{`d/a\b`, false, true},
			{"ab", false, false},
			{`x/c\d`, false, true},
			{"x/cd", false, false},
		}},
		{"a ] first in a class and a - at its edges are themselves", []string{"[]]x", "[!]]y", "[a-]z", "[-b]w"}, []probe{
			{"]x", false, true},
			{"ax", false, false},
			{"ay", false, true},
			{"]y", false, false},
			{"-z", false, true},
			{"az", false, true},
			{"bz", false, false},
			{"-w", false, true},
			{"bw", false, true},
			{"cw", false, false},
		}},
		{"a - right after a range is itself, as git reads it", []string{"[a-b-c]1", "[!a-c-e]2", "[--a]3"}, []probe{
			{"a1", false, true},
			{"b1", false, true},
			{"-1", false, true},
			{"c1", false, true},
			{"d1", false, false},
			{"d2", false, true},
			{"e2", false, false},
			{"-2", false, false},
			{"b2", false, false},
			{"-3", false, true},
			{"Z3", false, true}, // '-' to 'a' holds the capitals
			{"b3", false, false},
		}},
		{"a [ and a : in a class that are not a POSIX class", []string{"[a[:]x"}, []probe{
			{"ax", false, true},
			{"[x", false, true},
			{":x", false, true},
			{"bx", false, false},
		}},
		{"three stars as a whole name are two", []string{"***/b", "a/***"}, []probe{
			{"b", false, true},
			{"x/y/b", false, true},
			{"a/x/y", false, true},
			{"a", true, false},
		}},
		{"an escaped bang is a name", []string{`\!important`}, []probe{
			{"!important", false, true},
			{"important", false, false},
		}},
		{"literal anchored paths", []string{"/a/b/c"}, []probe{
			{"a/b/c", false, true},
			{"a/b", true, false},
			{"a/b/c/d", false, false},
			{"x/a/b/c", false, false},
		}},
		{"the root is never left out", []string{"*"}, []probe{
			{"", true, false},
			{"anything", false, true},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var l List
			for _, p := range tt.patterns {
				if err := l.Add(p); err != nil {
					t.Fatal(err)
				}
			}
			for _, pr := range tt.probes {
				if got := matchPath(&l, pr.path, pr.dir); got != pr.out {
					t.Errorf("Excluded(%q, dir=%v) = %v, want %v", pr.path, pr.dir, got, pr.out)
				}
			}
		})
	}
}

func TestMalformedPatternsAreRefusedByNameWithTheReason(t *testing.T) {
	for _, c := range []struct{ pattern, why string }{
		{"", "empty"},
		{"/", "empty"},
		{"!", "empty"},
		{"//", "empty"},
		{"//a", "empty name"},
		{"a//", "empty name"},
		{"a//b", "empty name"},
		{"[a", "an unclosed '['"},
		{"src/[x", "an unclosed '['"},
		{"[!]", "an unclosed '['"},
		{"[!]x", "an unclosed '['"},
		{"x[!]", "an unclosed '['"},
		{`a\`, "a '\\' with nothing after it"},
		{`a\/b`, "cannot be escaped"},
		{"[a/b]", "a '/' inside [...]"},
		{"x/[a/b]", "a '/' inside [...]"},
		{"[[:alpha:]]", "POSIX classes"},
		{"x/[![:digit:]]", "POSIX classes"},
		{"[x[:digit:]]", "POSIX classes"},
		{"[\xfe]", "not UTF-8"},
		{"a\nb", "a newline or NUL"},
		{"a\x00", "a newline or NUL"},
		// tar's spelling of a path from the root: the one meant is said.
		{"./src/big", `a leading './': archive paths have none (as 'arcpack list' prints them); for the path from the root, write "/src/big"`},
		{"!./keep/", `write "!/keep/"`},
		{".", "a '.' name"},
		{"..", "a '..' name"},
		{"../src/x", "a '..' name"},
		{"a/./b", "a '.' name"},
		{"a/..", "a '..' name"},
	} {
		var l List
		err := l.Add(c.pattern)
		if err == nil {
			t.Errorf("Add(%q) = nil, want an error", c.pattern)
			continue
		}
		if !strings.Contains(err.Error(), `"`+c.pattern+`"`) || !strings.Contains(err.Error(), c.why) {
			t.Errorf("Add(%q): %v; want the pattern named and %q", c.pattern, err, c.why)
		}
	}
}

func TestAnExcludeFileSkipsCommentsBlanksAndTrailingSpace(t *testing.T) {
	file := "\ufeff*.o\n" + // after a byte order mark
		"# build output\n" +
		"\n" +
		"   \n" +
		"tmp/   \n" +
		`\#notes` + "\n" +
		`trailing\ ` + "\n" +
		"crlf\r\n" +
		"tab\t\n"
	var l List
	if err := l.AddFrom(strings.NewReader(file), "rules"); err != nil {
		t.Fatal(err)
	}
	for _, pr := range []struct {
		name string
		dir  bool
		out  bool
	}{
		{"a.o", false, true},
		{"tmp", true, true},
		{"#notes", false, true},
		{"# build output", false, false},
		{"trailing ", false, true},
		{"trailing", false, false},
		{"crlf", false, true},
		{"tab\t", false, true}, // git trims spaces only
		{"tab", false, false},
		{"   ", false, false},
	} {
		if got := l.Excluded(l.Root(), pr.name, pr.dir); got != pr.out {
			t.Errorf("Excluded(%q) = %v, want %v", pr.name, got, pr.out)
		}
	}
}

func TestAnExcludeFilesBadLineIsNamedWithItsNumber(t *testing.T) {
	var l List
	err := l.AddFrom(strings.NewReader("*.o\n# ok\n[oops\n"), "ex.txt")
	if err == nil || !strings.HasPrefix(err.Error(), `ex.txt:3: exclude pattern "[oops"`) {
		t.Fatalf("got %v, want an error starting ex.txt:3: exclude pattern \"[oops\"", err)
	}
}

func TestAnEmptyListExcludesNothing(t *testing.T) {
	var l *List
	if l.Excluded(l.Root(), "a", false) || !l.Empty() || l.ExcludedWithin("a/b", false) >= 0 {
		t.Fatal("a nil List excludes, or says it is not empty")
	}
}

func FuzzMatchNeverPanics(f *testing.F) {
	f.Add("a/**/b", "a/x/b", true)
	f.Add("[!a-", "x", false)
	f.Add(`\`, "", false)
	f.Fuzz(func(t *testing.T, pattern, p string, dir bool) {
		var l List
		if l.Add(pattern) != nil {
			return
		}
		matchPath(&l, p, dir)
		l.ExcludedWithin(p, dir)
	})
}

func TestManyDoubleStarsOnADeepPathTakeLinearTime(t *testing.T) {
	var l List
	if err := l.Add("**/a/**/a/**/a/**/a/**/b"); err != nil {
		t.Fatal(err)
	}
	deep := strings.Repeat("a/", 5000) + "c"
	// Backtracking into every "**" would try about 5000^4 splits; followed
	// a name at a time, the path costs 5000 steps of 9 parts (a test of the
	// algorithm, not of the clock: a slow one never ends).
	if matchPath(&l, deep, false) {
		t.Fatal("excluded a path that does not end in b")
	}
	if !matchPath(&l, strings.Repeat("a/", 5000)+"b", false) {
		t.Fatal("did not exclude a path that matches")
	}
}

// slowMatch is matchParts by trying every split: the reference.
func slowMatch(parts, names []string) bool {
	if len(parts) == 0 {
		return len(names) == 0
	}
	if parts[0] == "**" {
		for i := 0; i <= len(names); i++ {
			if slowMatch(parts[1:], names[i:]) {
				return true
			}
		}
		return false
	}
	if len(names) == 0 {
		return false
	}
	ok, _ := path.Match(parts[0], names[0])
	return ok && slowMatch(parts[1:], names[1:])
}

func TestDoubleStarMatchingAgreesWithTryingEverySplit(t *testing.T) {
	pick := []string{"a", "b", "*", "**", "?", "a*", "[ab]", "??"}
	names := []string{"a", "b", "ab", "ba", "abc"}
	r := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		parts := make([]string, 1+r.IntN(5))
		for i := range parts {
			parts[i] = pick[r.IntN(len(pick))]
		}
		p := make([]string, 1+r.IntN(6))
		for i := range p {
			p[i] = names[r.IntN(len(names))]
		}
		compiled := make([]part, len(parts))
		for i, s := range parts {
			if s == "**" {
				compiled[i].any = true
				continue
			}
			var err error
			if compiled[i], err = parsePart(s); err != nil {
				t.Fatal(err)
			}
		}
		bits := closure(compiled, 1)
		for _, name := range p {
			bits = step(compiled, bits, name)
		}
		got, want := bits&(1<<len(compiled)) != 0, slowMatch(parts, p)
		if got != want {
			t.Fatalf("parts %q against %q: %v, trying every split gives %v", parts, strings.Join(p, "/"), got, want)
		}
	}
}

func TestAPathIsExcludedWithADirectoryAboveIt(t *testing.T) {
	for _, tt := range []struct {
		patterns []string
		path     string
		dir      bool
		at       int // the length of the prefix left out; -1: kept
	}{
		{[]string{"tmp/"}, "a/tmp/x", false, len("a/tmp")},
		{[]string{"tmp/"}, "a/tmp", false, -1}, // a file called tmp
		{[]string{"tmp/"}, "a/tmp", true, len("a/tmp")},
		{[]string{"/a/b"}, "a/b/c/d", false, len("a/b")},
		{[]string{"/a/b"}, "x/a/b", false, -1},
		{[]string{"logs/**"}, "logs/old/b.log", false, len("logs/old")},
		{[]string{"*.o"}, "src/x.o", false, len("src/x.o")},
		{[]string{"*.o", "!keep.o"}, "src/keep.o", false, -1},
		{[]string{"*"}, "", true, -1},
	} {
		var l List
		for _, p := range tt.patterns {
			if err := l.Add(p); err != nil {
				t.Fatal(err)
			}
		}
		if at := l.ExcludedWithin(tt.path, tt.dir); at != tt.at {
			t.Errorf("%q: ExcludedWithin(%q, dir=%v) = %d, want %d", tt.patterns, tt.path, tt.dir, at, tt.at)
		}
	}
}

// matchPath is whether l leaves out the entry at p by itself (not with a
// directory above it), followed a name at a time from the root.
func matchPath(l *List, p string, dir bool) bool {
	in := l.Root()
	for {
		name, rest, more := strings.Cut(p, "/")
		if !more {
			return l.Excluded(in, name, dir)
		}
		in, p = l.Enter(in, name), rest
	}
}
