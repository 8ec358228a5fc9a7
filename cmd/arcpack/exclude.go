package main

import (
	"fmt"
	"os"

	"arc/internal/exclude"

	"github.com/spf13/cobra"
)

// addExcludeFlags adds --exclude and --exclude-from to c; more says where
// its help describes the patterns.
func addExcludeFlags(c *cobra.Command, patterns, files *[]string, more string) {
	fl := c.Flags()
	fl.StringArrayVar(patterns, "exclude", nil, "leave out the paths that `PATTERN` matches, and what lies below a directory it matches (repeatable; "+more+")")
	fl.StringArrayVar(files, "exclude-from", nil, "read exclude patterns from `FILE`, one a line; blank lines and lines starting with # are skipped (repeatable)")
}

// excludeList makes the patterns of --exclude and --exclude-from into one
// list, in that order (the last pattern that matches a path decides);
// nil when there are none.
func excludeList(patterns, files []string) (*exclude.List, error) {
	if len(patterns) == 0 && len(files) == 0 {
		return nil, nil
	}
	l := &exclude.List{}
	for _, p := range patterns {
		if err := l.Add(p); err != nil {
			return nil, fmt.Errorf("--exclude: %w", err)
		}
	}
	for _, name := range files {
		f, err := os.Open(name)
		if err != nil {
			return nil, fmt.Errorf("--exclude-from: %w", err)
		}
		err = l.AddFrom(f, name)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("--exclude-from %w", err)
		}
	}
	return l, nil
}
