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
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"arc/format"
)

// Name is the file name of recovery volume n (1-based) of the archive base:
// base.r01 … base.r99, then base.r100 and on.
func Name(base string, n int) string {
	return fmt.Sprintf("%s.r%02d", base, n)
}

// parseName splits a recovery volume's path into the archive base and its
// number; ok only for the exact form Name writes.
func parseName(path string) (base string, n int, ok bool) {
	i := strings.LastIndexByte(path, '.')
	if i < 0 || len(path)-i-1 < 3 || path[i+1] != 'r' || strings.ContainsRune(path[i:], '/') {
		return "", 0, false
	}
	v, err := strconv.ParseUint(path[i+2:], 10, 31)
	if err != nil || v == 0 || Name(path[:i], int(v)) != path {
		return "", 0, false
	}
	return path[:i], int(v), true
}

// Base is the archive name (NAME) that archive refers to: a data volume
// (NAME.001), a recovery volume (NAME.r01), or NAME itself.
func Base(archive string) string {
	if b, _, ok := format.ParseVolumeName(archive); ok {
		return b
	}
	if b, _, ok := parseName(archive); ok {
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
	dir, prefix := filepath.Split(base)
	if dir == "" {
		dir = "."
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("recovery volumes of %s: %w", base, err)
	}
	type found struct {
		n    int
		path string
	}
	var fs []found
	for _, e := range ents {
		name := e.Name()
		if !strings.HasPrefix(name, prefix+".r") || e.IsDir() {
			continue
		}
		if b, n, ok := parseName(name); ok && b == prefix {
			fs = append(fs, found{n, filepath.Join(filepath.Dir(base), name)})
		}
	}
	if len(fs) == 0 {
		return nil, nil
	}
	slices.SortFunc(fs, func(a, b found) int { return a.n - b.n })
	out := make([]string, len(fs))
	for i, f := range fs {
		out[i] = f.path
	}
	return out, nil
}
