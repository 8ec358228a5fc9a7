package format

import "errors"

// Sentinel errors; every error this package returns wraps one of them so
// that callers can tell damage from a foreign file with errors.Is.
var (
	// ErrNotArchive: the bytes are not an arc volume header or footer at all
	// (no magic). An index without its magic is ErrCorrupt: the footer
	// that points at it says the archive is there.
	ErrNotArchive = errors.New("not an arc archive")
	// ErrVersion: an arc structure of a version or with features this program does not read.
	ErrVersion = errors.New("unsupported arc format")
	// ErrTruncated: the structure ends before its declared size.
	ErrTruncated = errors.New("truncated")
	// ErrCorrupt: the structure is arc's but fails a checksum or a consistency check.
	ErrCorrupt = errors.New("corrupt")
	// ErrLimit: a declared size is beyond what this program accepts.
	ErrLimit = errors.New("size limit exceeded")
	// ErrNotRegular: a path named like a volume is not a regular file
	// (OpenFile).
	ErrNotRegular = errors.New("not a regular file")
)
