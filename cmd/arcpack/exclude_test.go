package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"arc/internal/exclude"
)

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
	for _, tt := range []struct {
		sources  []string
		patterns []string
		want     string // a fragment of the error; "" for none
	}{
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
	} {
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
