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

// ArchiveOf returns the ID of the archive that recovery volume path was
// made for, from the first copy of its header that validates.
func ArchiveOf(path string) (format.ArchiveID, error) {
	h, err := readAnyHeader(path)
	if err != nil {
		return format.ArchiveID{}, err
	}
	return h.id, nil
}
