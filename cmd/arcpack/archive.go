package main

import (
	"errors"
	"fmt"
	"strings"

	"arc/format"
	"arc/reader"
)

// openError words a failure to open an archive (exit 2).
func openError(archive string, err error) error {
	if !strings.Contains(err.Error(), archive) {
		err = fmt.Errorf("open %s: %w", archive, err)
	}
	return &exitError{code: exitFatal, err: err}
}

// isDamage reports whether err means the archive is there but damaged
// (corrupt, truncated, or a volume missing or foreign), as opposed to not
// being an archive or not being readable at all.
func isDamage(err error) bool {
	return errors.Is(err, format.ErrCorrupt) || errors.Is(err, format.ErrTruncated) ||
		errors.Is(err, reader.ErrDamaged)
}
