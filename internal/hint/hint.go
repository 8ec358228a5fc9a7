// Package hint words what arcpack and arcmount say when an archive name
// does not lead to an archive, with the fix: the name a user most likely
// meant, the volumes that are there, or `arcpack repair` when recovery
// volumes are there.
package hint

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"arc/format"
	"arc/internal/termsafe"
	"arc/recovery"
)

// Repair points at `arcpack repair` when the archive has recovery volumes
// beside it, or when an arcpack killed while it gave the volumes their
// names left renames to do (its journal, which repair finishes: the set
// reads as one whose last volume is missing until then); "" otherwise.
func Repair(archive string) string {
	if _, err := os.Lstat(format.CommitName(recovery.Base(archive))); err == nil {
		return fmt.Sprintf("an arcpack killed while it gave the volumes their names left renames to do: 'arcpack repair %s' finishes them", termsafe.Word(archive))
	}
	// Another archive's, repair would refuse: not counted.
	parity, err := recovery.FindOwn(archive)
	if err != nil || len(parity) == 0 {
		return ""
	}
	// Whether they cover the damage only a check of every volume tells
	// (verify, repair): not claimed here.
	return fmt.Sprintf("%d recovery volume(s) found: 'arcpack repair %s' rebuilds what is missing or damaged if they cover all of it (otherwise it changes nothing)", len(parity), termsafe.Word(archive))
}

// Misnamed explains, with the fix, why archive names no volume: a
// directory, a recovery volume, a name that is not there (a volume name
// cut short, a base without .001, a volume past the last one). It returns
// "" when archive names a file that is there, or a base whose first
// volume is there: the reader's own message says what is wrong then.
func Misnamed(archive string) string {
	st, err := os.Stat(archive)
	switch {
	case err == nil && st.IsDir():
		return fmt.Sprintf("a directory, not an archive volume (to pack it: arcpack create %s -o NAME)", termsafe.Word(archive))
	case err == nil:
		if base := recovery.Base(archive); base != archive {
			if _, _, ok := format.ParseVolumeName(archive); !ok {
				return fmt.Sprintf("a recovery volume, not a data volume (give the archive's first volume, %s; 'arcpack repair %s' uses the recovery volumes)",
					format.VolumeName(base, 1), termsafe.Word(format.VolumeName(base, 1)))
			}
		}
		if _, _, ok := format.ParseVolumeName(archive); !ok {
			if c := firstVolumes(archive); len(c) > 0 {
				return "not an arc volume name (want NAME.001, NAME.002, ...; did you mean " + strings.Join(c, " or ") + "?)"
			}
		}
		return ""
	case !errors.Is(err, fs.ErrNotExist):
		return ""
	}
	base, _, isVolume := format.ParseVolumeName(archive)
	what := "no such file or directory"
	if !isVolume {
		if _, err := os.Stat(format.VolumeName(archive, 1)); err == nil {
			return "" // NAME for NAME.001: readers take it
		}
		base = archive
		what = "no such file or directory, nor " + format.VolumeName(archive, 1)
	}
	if nums, err := format.ListVolumes(base); err == nil && len(nums) > 0 {
		first, last := format.VolumeName(base, nums[0]), format.VolumeName(base, nums[len(nums)-1])
		if first == last {
			return what + " (the archive's only volume here is " + first + ")"
		}
		return fmt.Sprintf("%s (the archive's volumes here are %s to %s)", what, first, last)
	}
	if c := firstVolumes(archive); len(c) > 0 {
		return what + " (did you mean " + strings.Join(c, " or ") + "?)"
	}
	return what
}

// firstVolumes lists, in the directory of name, up to three first volumes
// (NAME.001) whose names start with name's base up to its last dot: the
// archives that a mistyped or shortened name most likely meant.
func firstVolumes(name string) []string {
	dir, file := filepath.Split(name)
	prefix := file
	if i := strings.LastIndexByte(file, '.'); i > 0 {
		prefix = file[:i]
	}
	if prefix == "" {
		return nil
	}
	look := dir
	if look == "" {
		look = "."
	}
	ents, err := os.ReadDir(look)
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range ents {
		if _, n, ok := format.ParseVolumeName(e.Name()); ok && n == 1 && strings.HasPrefix(e.Name(), prefix) {
			out = append(out, dir+e.Name())
			if len(out) == 3 {
				break
			}
		}
	}
	return out
}

// Limit is what to do about err where it is the process's limit of open
// files, to follow its message; "" otherwise.
func Limit(err error) string {
	if errors.Is(err, syscall.EMFILE) {
		return " (the limit of open files this process may have: raise it, ulimit -n)"
	}
	return ""
}
