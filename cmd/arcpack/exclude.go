package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"arc/internal/exclude"

	"github.com/spf13/cobra"
)

// addExcludeFlags adds --exclude and --exclude-from to c, kept in args in
// the order given; more says where its help describes the patterns.
func addExcludeFlags(c *cobra.Command, args *[]excludeArg, more string) {
	fl := c.Flags()
	fl.Var(excludeFlag{args, false}, "exclude", "leave out the paths that `PATTERN` matches, and what lies below a directory it matches (repeatable; "+more+")")
	fl.Var(excludeFlag{args, true}, "exclude-from", "read exclude patterns from `FILE`, one a line; blank lines and lines starting with # are skipped (repeatable)")
}

// excludeArg is one --exclude (a pattern) or --exclude-from (a file).
// Both flags add to one list, in the order given: the last pattern that
// matches a path decides, so that a pattern given after a file comes
// after the file's patterns, as with tar and rsync.
type excludeArg struct {
	file  bool
	value string
}

// excludeFlag is --exclude (file false) or --exclude-from (true).
type excludeFlag struct {
	args *[]excludeArg
	file bool
}

func (f excludeFlag) Set(v string) error {
	*f.args = append(*f.args, excludeArg{f.file, v})
	return nil
}

func (f excludeFlag) String() string { return "" }
func (f excludeFlag) Type() string   { return "stringArray" }

// excludeList makes the patterns of --exclude and --exclude-from into one
// list, in the order given; nil when there are none.
func excludeList(args []excludeArg) (*exclude.List, error) {
	if len(args) == 0 {
		return nil, nil
	}
	l := &exclude.List{}
	for _, a := range args {
		if !a.file {
			if err := l.Add(a.value); err != nil {
				return nil, fmt.Errorf("--exclude: %w", err)
			}
			continue
		}
		f, err := os.Open(a.value)
		if err != nil {
			return nil, fmt.Errorf("--exclude-from: %w", err)
		}
		err = l.AddFrom(f, a.value)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("--exclude-from %w", err)
		}
	}
	return l, nil
}

// excludeTags checks the names of --exclude-if-present and keeps each
// once, in the order first given.
func excludeTags(names []string) ([]string, error) {
	var tags []string
	for _, tag := range names {
		if tag == "" || tag == "." || tag == ".." || strings.ContainsAny(tag, "/\n\x00") {
			return nil, fmt.Errorf("--exclude-if-present %q: want the name of a file or directory, such as .nobackup (no '/')", tag)
		}
		if !slices.Contains(tags, tag) {
			tags = append(tags, tag)
		}
	}
	return tags, nil
}

// checkExcludeRoots refuses a pattern that spells a source's own path
// ("/home/me/.cache" for the source /home/me, or "src/.cache" for the
// source src given so): patterns match paths inside the archive, where a
// directory source is the root and several sources are entries under
// their base names, so such a pattern would leave out nothing, silently
// (restic and tar users write them so). The error gives the pattern that
// means it.
func checkExcludeRoots(l *exclude.List, sources []string) error {
	single := false
	if len(sources) == 1 {
		// As the writer takes it: a symlink to a directory is an entry.
		st, err := os.Lstat(sources[0])
		single = err == nil && st.IsDir()
	}
	// The sources' absolute paths that a pattern could spell: not /, whose
	// paths are the system's, nor one of several right below / (the
	// source /etc among several is the entry etc, which /etc/ssh does
	// name).
	// A path with a glob's characters in it is not spelled by a pattern
	// that starts with the same text: there they are a glob ("a[1]/x"
	// matches a1/x), which may well be meant.
	literal := func(p string) bool { return !strings.ContainsAny(p, `*?[\`) }
	var roots []string
	for _, src := range sources {
		if abs, err := filepath.Abs(src); err == nil && abs != "/" && (single || filepath.Dir(abs) != "/") && literal(abs) {
			roots = append(roots, abs)
		}
	}
	// The sources' paths relative to the current directory, as the
	// command line gave them or as they lie below it: what a pattern
	// without a leading '/' could spell. (A pattern with a '.' or '..'
	// name is refused by the exclude package.)
	type spelled struct{ rel, abs string }
	var rels []spelled
	cwd, cwdErr := os.Getwd()
	for _, src := range sources {
		abs, err := filepath.Abs(src)
		if err != nil {
			continue
		}
		for _, rel := range []string{filepath.Clean(src), relativeTo(cwd, cwdErr, abs)} {
			if rel != "" && !filepath.IsAbs(rel) && rel != "." && !strings.HasPrefix(rel, "../") && rel != ".." && literal(rel) &&
				!slices.Contains(rels, spelled{rel, abs}) {
				rels = append(rels, spelled{rel, abs})
			}
		}
	}
	// rootHas reports whether the archive's root holds an entry called
	// name: then a pattern starting with name/ is written from the root
	// rightly, whatever a source is called (the source src holding a
	// directory src).
	rootHas := func(name string) bool {
		if single {
			_, err := os.Lstat(filepath.Join(sources[0], name))
			return err == nil
		}
		return slices.ContainsFunc(sources, func(src string) bool { return filepath.Base(filepath.Clean(src)) == name })
	}
	for _, p := range l.Patterns() {
		neg := strings.HasPrefix(p, "!")
		body := strings.TrimPrefix(p, "!")
		trimmed := strings.TrimRight(body, "/")
		slash := body[len(trimmed):]
		// spells: the source's path as the pattern may spell it, and
		// the source's absolute path, for the message.
		check := func(spells, abs string) error {
			rest, below := strings.CutPrefix(trimmed, spells+"/")
			if !below && trimmed != spells {
				return nil
			}
			where, meant := "the root", "/"+rest
			if !single {
				where = "the entry " + filepath.Base(abs)
				meant = "/" + filepath.Base(abs)
				if below {
					meant += "/" + rest
				}
			} else if !below {
				return fmt.Errorf("exclude pattern \"%s\" names the source %s itself, which is the archive's root and cannot be left out", p, abs)
			}
			if neg {
				meant = "!" + meant
			}
			return fmt.Errorf("exclude pattern \"%s\" starts with the path of the source %s, but patterns match paths inside the archive (as 'arcpack list' prints them), where that source is %s: write \"%s\"",
				p, abs, where, meant+slash)
		}
		if strings.HasPrefix(body, "/") {
			for _, abs := range roots {
				if err := check(abs, abs); err != nil {
					return err
				}
			}
			continue
		}
		// Relative: only a pattern with a '/' before its end is anchored
		// at the root (one without matches a name at any depth), and
		// only sources given as relative paths below the current
		// directory can be spelled so.
		first, _, anchored := strings.Cut(trimmed, "/")
		if !anchored || rootHas(first) {
			continue
		}
		for _, s := range rels {
			if err := check(s.rel, s.abs); err != nil {
				return err
			}
		}
	}
	return nil
}

// relativeTo is abs relative to the directory cwd, where it lies below it
// ("" where it does not, or cwd is not known).
func relativeTo(cwd string, cwdErr error, abs string) string {
	if cwdErr != nil {
		return ""
	}
	rel, err := filepath.Rel(cwd, abs)
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return ""
	}
	return rel
}
