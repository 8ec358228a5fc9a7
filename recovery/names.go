// Package recovery adds Reed-Solomon parity volumes (NAME.r01, NAME.r02, …)
// to a finished arc volume set (NAME.001, …), checks a set against them and
// rebuilds missing or damaged volumes. docs/FORMAT.md ("Recovery volumes")
// is the byte-level specification; this package is its implementation.
//
// The data volumes are treated as opaque files: parity protects their bytes
// exactly as written, headers, index and footer included, so any volume can
// be rebuilt without being able to read it.
package recovery

import (
	"fmt"

	"arc/format"
)

// Name is the file name of recovery volume n (1-based) of the archive base:
// base.r01 … base.r99, then base.r100 and on (format.RecoveryName).
func Name(base string, n int) string { return format.RecoveryName(base, n) }

// Base is the archive name (NAME) that archive refers to: a data volume
// (NAME.001), a recovery volume (NAME.r01), or NAME itself.
func Base(archive string) string {
	if b, _, ok := format.ParseVolumeName(archive); ok {
		return b
	}
	if b, _, ok := format.ParseRecoveryName(archive); ok {
		return b
	}
	return archive
}

// Find returns the recovery volumes present beside the archive that volume
// (any data or recovery volume's name, or the archive's NAME) belongs to,
// in number order; nil when there are none. It only looks at names: Check
// says whether they belong to this archive and are intact.
func Find(volume string) ([]string, error) {
	base := Base(volume)
	out, err := format.ListRecoveryVolumes(base)
	if err != nil {
		return nil, fmt.Errorf("recovery volumes of %s: %w", base, err)
	}
	return out, nil
}

// FindOwn is Find less the recovery volumes made for another archive
// than the one most of the data volumes' headers name (left beside it by
// a copy, or by a create --force stopped early: Check and Repair refuse
// them). One whose header cannot be read is kept: it may be this
// archive's, damaged, which Check tells. It reads every volume's header,
// which Find does not: for where a command met damage and points at
// repair.
func FindOwn(volume string) ([]string, error) {
	paths, err := Find(volume)
	if err != nil || len(paths) == 0 {
		return paths, err
	}
	df := readDataFiles(Base(volume))
	votes := map[format.ArchiveID]int{}
	var top format.ArchiveID
	for _, n := range df.nums { // in number order: a tie goes to the first
		if h, ok := df.headers[n]; ok {
			if votes[h.ID]++; votes[h.ID] > votes[top] {
				top = h.ID
			}
		}
	}
	if len(votes) == 0 {
		return paths, nil // nothing to tell them by
	}
	var own []string
	for _, p := range paths {
		if h, err := readAnyHeader(p); err != nil || h.id == top {
			own = append(own, p)
		}
	}
	return own, nil
}
