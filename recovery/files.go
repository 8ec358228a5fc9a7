package recovery

import (
	"fmt"
	"os"
	"path/filepath"

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
	done  bool
}

// move has commit rename from to to.
func (t *tempFiles) move(from, to string) { t.moves = append(t.moves, [2]string{from, to}) }

// create makes the temporary file for final, size bytes long (sparse
// until written), with the mode and owner of the file at like where like
// is not "" (sameModeAs).
func (t *tempFiles) create(final string, size int64, like string) (*os.File, error) {
	// Like os.CreateTemp, but with the mode new volumes get (0666 less the
	// umask), not 0600.
	f, err := os.OpenFile(format.TempName(final, format.NewTempTag()), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o666)
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

// commit closes the files (after fsync when durable) and renames each to
// its final name.
func (t *tempFiles) commit(durable bool) error {
	for _, f := range t.files {
		if durable {
			if err := f.Sync(); err != nil {
				return fmt.Errorf("sync %s: %w", f.Name(), err)
			}
		}
		if err := f.Close(); err != nil {
			return fmt.Errorf("close %s: %w", f.Name(), err)
		}
	}
	for i, f := range t.files {
		if err := os.Rename(f.Name(), t.final[i]); err != nil {
			return fmt.Errorf("rename %s: %w", f.Name(), err)
		}
		t.files[i] = nil
	}
	for _, m := range t.moves {
		if err := os.Rename(m[0], m[1]); err != nil {
			return fmt.Errorf("rename %s: %w", m[0], err)
		}
	}
	t.done = true
	// All are beside the archive's name: one directory.
	var one string
	if len(t.final) > 0 {
		one = t.final[0]
	} else if len(t.moves) > 0 {
		one = t.moves[0][1]
	}
	if durable && one != "" {
		if d, err := os.Open(filepath.Dir(one)); err == nil {
			d.Sync()
			d.Close()
		}
	}
	return nil
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
