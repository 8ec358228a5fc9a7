package recovery

import (
	"errors"
	"fmt"
	"os"

	"arc/format"
)

// tempFiles are new files written under temporary names beside their
// final ones (NAME.r01.tmp-…, which no reader takes for a volume) and
// renamed into place only when all of them are complete.
type tempFiles struct {
	files []*os.File
	final []string
	// Files renamed as they are at commit, after the new files: a
	// volume intact under a name outside the set (moves[i][0]) taking
	// its own (moves[i][1]).
	moves [][2]string
}

// move has commit rename from to to.
func (t *tempFiles) move(from, to string) { t.moves = append(t.moves, [2]string{from, to}) }

// create makes the temporary file for final, size bytes long (sparse
// until written), with the mode and owner of the file at like where like
// is not "" (sameModeAs).
func (t *tempFiles) create(final string, size int64, like string) (*os.File, error) {
	// Like os.CreateTemp, but with the mode create gives data volumes
	// (0644 less the umask), not 0600: under umask 000, 0666 made them
	// writable by anyone, beside data volumes that are not.
	f, err := os.OpenFile(format.TempName(final, format.NewTempTag()), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", final, err)
	}
	t.files = append(t.files, f)
	t.final = append(t.final, final)
	if err := f.Truncate(size); err != nil {
		return nil, fmt.Errorf("%s: %w", f.Name(), err)
	}
	if err := sameModeAs(f, like); err != nil {
		return nil, err
	}
	return f, nil
}

// commit closes the files after fsync and gives each its final name, then
// makes the moves, in one journaled commit of the archive called base
// (format.Commit): killed part way, the next arcpack that takes the
// archive's lock finishes it, rather than remove as a dead writer's the
// temporary file that may hold a volume's only copy (a swap of two).
func (t *tempFiles) commit(base string) error {
	renames := make([]format.Rename, 0, len(t.files)+len(t.moves))
	for i, f := range t.files {
		if err := f.Sync(); err != nil {
			return fmt.Errorf("sync %s: %w", f.Name(), err)
		}
		if err := f.Close(); err != nil {
			return fmt.Errorf("close %s: %w", f.Name(), err)
		}
		renames = append(renames, format.Rename{From: f.Name(), To: t.final[i]})
	}
	for _, m := range t.moves {
		renames = append(renames, format.Rename{From: m[0], To: m[1]})
	}
	renamed, err := format.Commit(base, renames)
	if renamed || errors.Is(err, format.ErrCommitUnfinished) {
		clear(t.files) // in place, or the journal's to finish
	}
	return err
}

// remove deletes whatever was not renamed into place.
func (t *tempFiles) remove() {
	for _, f := range t.files {
		if f != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}
}
