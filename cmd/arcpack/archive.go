package main

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"arc/format"
	"arc/internal/hint"
)

// openError words a failure to open an archive (exit 2) as
// "open ARCHIVE: what is wrong", naming the archive once, and says what to
// do about it where that is known: a directory given for an archive, a
// name that is not there (a partial volume name, a base without .001, a
// volume past the last one).
func openError(archive string, err error) error {
	msg := err.Error()
	named := archive
	if _, _, ok := format.ParseVolumeName(archive); !ok && strings.HasPrefix(msg, format.VolumeName(archive, 1)+": ") {
		named = format.VolumeName(archive, 1) // NAME stood for NAME.001, which the error names
	}
	if rest, ok := strings.CutPrefix(msg, named+": "); ok {
		err = &rewordedError{"open " + named + ": " + rest, err}
	} else if !strings.Contains(msg, archive) {
		err = fmt.Errorf("open %s: %w", archive, err)
	}
	if m := misnamedError(archive, err); m != nil {
		err = m
	} else if format.TooManyOpen(err) {
		err = &rewordedError{err.Error() + hint.Limit(err), err}
	} else if h := hint.Repair(archive); h != "" && !errors.Is(err, fs.ErrPermission) {
		// (A volume the user cannot read is not damage repair mends.)
		err = &rewordedError{err.Error() + "; " + h, err}
	}
	return &exitError{code: exitFatal, err: err}
}

// misnamedError is err reworded as "open ARCHIVE: what to give instead"
// where archive names no archive in a way hint.Misnamed knows (a
// directory, a partial volume name, a base without .001), else nil.
func misnamedError(archive string, err error) error {
	if m := hint.Misnamed(archive); m != "" {
		return &rewordedError{"open " + archive + ": " + m, err}
	}
	return nil
}

// rewordedError replaces an error's message and keeps it for errors.Is.
type rewordedError struct {
	msg string
	err error
}

func (e *rewordedError) Error() string { return e.msg }
func (e *rewordedError) Unwrap() error { return e.err }
