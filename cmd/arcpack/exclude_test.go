package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"arc/internal/exclude"
)

// rootsCase: patterns given with sources, and a fragment of the error
// checkExcludeRoots must give ("" for none).
type rootsCase struct {
	sources  []string
	patterns []string
	want     string
}

func checkRoots(t *testing.T, cases []rootsCase) {
	t.Helper()
	for _, tt := range cases {
		l := &exclude.List{}
		for _, p := range tt.patterns {
			if err := l.Add(p); err != nil {
				t.Fatal(err)
			}
		}
		err := checkExcludeRoots(l, tt.sources)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%q with sources %q: %v, want no error", tt.patterns, tt.sources, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%q with sources %q: %v, want an error with %q", tt.patterns, tt.sources, err, tt.want)
		}
	}
}

func TestPatternsSpellingASourcesPathAreRefusedWithTheOneMeant(t *testing.T) {
	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	etc := filepath.Join(dir, "etc")
	for _, d := range []string{home, etc} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	file := filepath.Join(dir, "f")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	checkRoots(t, []rootsCase{
		{[]string{home}, []string{home + "/.cache"}, `write "/.cache"`},
		{[]string{home}, []string{home + "/tmp/"}, `write "/tmp/"`},
		{[]string{home}, []string{"!" + home + "/keep"}, `write "!/keep"`},
		{[]string{home}, []string{home}, "the archive's root and cannot be left out"},
		{[]string{home, etc}, []string{etc + "/ssh"}, `where that source is the entry etc: write "/etc/ssh"`},
		{[]string{home, etc}, []string{etc}, `write "/etc"`},
		{[]string{file}, []string{file}, `write "/f"`},
		// Not a source's path: left alone.
		{[]string{home}, []string{"/.cache", ".cache", home[1:] + "/x", "/*.o"}, ""},
		{[]string{home}, []string{home + "2/x"}, ""},
		{[]string{"/"}, []string{"/home/me/.cache"}, ""},             // the root: archive paths are the system's
		{[]string{"/etc", "/opt"}, []string{"/etc/ssh", "/opt"}, ""}, // entries etc and opt: rightly named
		{[]string{"/etc"}, []string{"/etc/ssh"}, `write "/ssh"`},     // the root, /etc alone
	})
}

// A pattern may spell a source as the command line gave it, relative to
// the current directory ("src/seq.txt" for the source src): refused as the
// absolute spelling is, unless the archive's root holds an entry of that
// first name, which the pattern then rightly names.
func TestPatternsSpellingARelativeSourcePathAreRefused(t *testing.T) {
	t.Chdir(t.TempDir())
	abs := func(p string) string {
		a, err := filepath.Abs(p)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	for _, d := range []string{"proj/inner", "a/proj", "etc", "repo/repo", "g[1]/g1"} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	checkRoots(t, []rootsCase{
		{[]string{"proj"}, []string{"proj/seq.txt"}, `starts with the path of the source`},
		{[]string{"proj"}, []string{"proj/seq.txt"}, `write "/seq.txt"`},
		{[]string{"proj"}, []string{"!proj/keep/"}, `write "!/keep/"`},
		{[]string{"./proj/"}, []string{"proj/inner/*.o"}, `write "/inner/*.o"`},
		{[]string{"a/proj"}, []string{"a/proj/x"}, `write "/x"`},
		{[]string{"a/proj"}, []string{"a/proj"}, "the archive's root and cannot be left out"},
		{[]string{"a/proj", "etc"}, []string{"a/proj/x"}, `where that source is the entry proj: write "/proj/x"`},
		// Not a source's path as the archive sees it: left alone.
		{[]string{"proj"}, []string{"proj", "proj/", "*.o", "inner/x", "/proj/x"}, ""},
		{[]string{"repo"}, []string{"repo/x"}, ""},           // repo holds a directory repo
		{[]string{"a/proj", "etc"}, []string{"etc/ssh"}, ""}, // the entry etc
		{[]string{"proj"}, []string{"projx/y"}, ""},
		// A source given by its absolute path, spelled from here.
		{[]string{abs("proj")}, []string{"proj/inner/x"}, `write "/inner/x"`},
		{[]string{abs("a/proj"), abs("etc")}, []string{"a/proj/x"}, `write "/proj/x"`},
		// A source whose name holds a glob's characters: the pattern's
		// text is a glob there ("g[1]/g1" is g1/g1), which may be meant.
		{[]string{"g[1]"}, []string{"g[1]/g1"}, ""},
		{[]string{abs("g[1]")}, []string{abs("g[1]") + "/g1"}, ""},
	})
}
