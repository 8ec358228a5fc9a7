package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"

	"arc/format"
	"arc/internal/hint"
	"arc/reader"

	"github.com/spf13/cobra"
)

func newCatCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "cat ARCHIVE PATH",
		Short: "Write one file's content to stdout",
		Long: `Write the content of the regular file PATH (relative to the archive root) to
stdout, reading only the blocks it needs. A damaged block stops the output with
exit 1.`,
		Example: `  arcpack cat backup.001 etc/hosts
  arcpack cat backup.001 photos/2024/a.jpg > a.jpg`,
		Args: exactArgs(2),
		RunE: func(c *cobra.Command, args []string) error {
			return runCat(c.OutOrStdout(), args[0], args[1])
		},
	}
}

func runCat(out io.Writer, archive, path string) error {
	a, err := reader.Open(archive, reader.Options{})
	if err != nil {
		return openError(archive, err)
	}
	defer a.Close()
	x := a.Index()
	d, err := resolve(x, strings.Trim(path, "/"))
	if err != nil {
		return fmt.Errorf("cat %s: %s: %w", archive, path, err)
	}
	ino := x.Dirents.Inode[d]
	if x.Inodes.Mode[ino]&format.ModeType != format.ModeReg {
		return fmt.Errorf("cat %s: %s: not a regular file (%s)", archive, path, typeName(x.Inodes.Mode[ino]))
	}
	w := bufio.NewWriterSize(outWriter{out}, 1<<20)
	_, err = io.Copy(w, io.NewSectionReader(a.File(ino), 0, int64(x.Inodes.Size[ino])))
	// What was read before a damaged block goes out in full.
	if ferr := w.Flush(); ferr != nil && err == nil {
		err = ferr
	}
	if err != nil {
		var we *writeError
		if errors.As(err, &we) {
			// Where the output goes failed (a full disk): not damage,
			// and nothing repair could mend.
			return fmt.Errorf("cat %s: %s: %w", archive, path, we.err)
		}
		if format.TooManyOpen(err) { // the process's limit, not damage
			return fmt.Errorf("cat %s: %s: %w%s", archive, path, err, hint.Limit(err))
		}
		err = fmt.Errorf("cat %s: %s: %w", archive, path, err)
		if h := hint.Repair(archive); h != "" {
			err = fmt.Errorf("%w; %s", err, h)
		}
		return &exitError{code: exitDamage, err: err}
	}
	return nil
}

// writeError is a failure to write the output, told apart from a failure
// to read the archive.
type writeError struct{ err error }

func (e *writeError) Error() string { return e.err.Error() }

// writingFailed words err as "CMD ARCHIVE: writing the WHAT: ..." where
// it is a failure to write the output (a full disk), which names neither
// the command nor the archive by itself; other errors pass as they are.
func writingFailed(err error, cmd, archive, what string) error {
	var we *writeError
	if errors.As(err, &we) {
		return fmt.Errorf("%s %s: writing the %s: %w", cmd, archive, what, we.err)
	}
	return err
}

// outWriter marks its writer's errors as writeErrors.
type outWriter struct{ w io.Writer }

func (o outWriter) Write(p []byte) (int, error) {
	n, err := o.w.Write(p)
	if err != nil {
		err = &writeError{err}
	}
	return n, err
}
