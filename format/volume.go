// Package format holds arc's on-disk structures: the volume header, the
// layout that maps the archive's logical byte stream onto volumes, the footer
// and the index. It encodes, decodes and validates them and nothing more:
// compression and checksums that need third-party code live in codec, so
// this package depends on the standard library alone.
//
// docs/FORMAT.md is the byte-level specification; this package is its
// reference implementation and the two must agree.
package format

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// Version is the format version written by this package and the only one it reads.
const Version = 1

// VolumeHeaderSize is the size of the header at the start of every volume.
const VolumeHeaderSize = 48

// MinVolumeSize is the smallest split size accepted: a volume must hold its
// header and a whole footer with room to spare.
const MinVolumeSize = 4096

// VolumeMagic opens every volume. The CR LF bytes catch text-mode
// transfers that would silently corrupt the archive.
var VolumeMagic = [8]byte{'A', 'R', 'C', 'V', 'O', 'L', '\r', '\n'}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ArchiveID identifies one archive; every volume and the footer carry it so
// that volumes of different archives are never mixed.
type ArchiveID [16]byte

func (id ArchiveID) String() string { return fmt.Sprintf("%x", id[:]) }

// VolumeHeader is the fixed header at offset 0 of every volume.
type VolumeHeader struct {
	Version    uint16
	Flags      uint16
	Number     uint32 // 1-based
	ID         ArchiveID
	VolumeSize uint64 // split size of the set; 0 means the archive is one volume
}

// MarshalBinary encodes h into its 48-byte form.
func (h VolumeHeader) MarshalBinary() ([]byte, error) {
	b := make([]byte, VolumeHeaderSize)
	copy(b[0:8], VolumeMagic[:])
	binary.LittleEndian.PutUint16(b[8:], h.Version)
	binary.LittleEndian.PutUint16(b[10:], h.Flags)
	binary.LittleEndian.PutUint32(b[12:], h.Number)
	copy(b[16:32], h.ID[:])
	binary.LittleEndian.PutUint64(b[32:], h.VolumeSize)
	// b[40:44] reserved, zero
	binary.LittleEndian.PutUint32(b[44:], crc32.Checksum(b[:44], castagnoli))
	return b, nil
}

// ParseVolumeHeader decodes and validates a volume header.
func ParseVolumeHeader(b []byte) (VolumeHeader, error) {
	var h VolumeHeader
	if len(b) < VolumeHeaderSize {
		return h, fmt.Errorf("%w: volume header is %d bytes, want %d", ErrTruncated, len(b), VolumeHeaderSize)
	}
	if [8]byte(b[0:8]) != VolumeMagic {
		return h, fmt.Errorf("%w: no volume magic", ErrNotArchive)
	}
	if got, want := binary.LittleEndian.Uint32(b[44:]), crc32.Checksum(b[:44], castagnoli); got != want {
		return h, fmt.Errorf("%w: volume header checksum %08x, want %08x", ErrCorrupt, got, want)
	}
	h.Version = binary.LittleEndian.Uint16(b[8:])
	h.Flags = binary.LittleEndian.Uint16(b[10:])
	h.Number = binary.LittleEndian.Uint32(b[12:])
	copy(h.ID[:], b[16:32])
	h.VolumeSize = binary.LittleEndian.Uint64(b[32:])
	if h.Version != Version {
		return h, fmt.Errorf("%w: format version %d (this program reads %d)", ErrVersion, h.Version, Version)
	}
	if h.Flags != 0 {
		return h, fmt.Errorf("%w: unknown volume flags %#x", ErrVersion, h.Flags)
	}
	if binary.LittleEndian.Uint32(b[40:]) != 0 {
		return h, fmt.Errorf("%w: reserved volume header bytes are set", ErrCorrupt)
	}
	if h.Number == 0 {
		return h, fmt.Errorf("%w: volume number 0", ErrCorrupt)
	}
	if h.VolumeSize != 0 && (h.VolumeSize < MinVolumeSize || h.VolumeSize > math.MaxInt64) {
		return h, fmt.Errorf("%w: volume size %d out of range", ErrCorrupt, h.VolumeSize)
	}
	return h, nil
}

// WholeSet reports whether volume 1's archive is whole from it on: every
// volume of its ID, VolumeSize and own Number (headers, valid ones, by the
// number in the file's name), the middle ones full (sizes: the files'
// sizes), up to one whose footer (read by footer) says it is the last. It
// returns that last volume's number. Files numbered past it are not of
// the set, however many they are (an older, larger archive's volumes,
// left behind).
func WholeSet(headers map[uint32]VolumeHeader, sizes map[uint32]int64, footer func(n uint32) (Footer, error)) (last uint32, ok bool) {
	first, ok := headers[1]
	if !ok {
		return 0, false
	}
	of := func(n uint32) bool {
		h, ok := headers[n]
		return ok && h.ID == first.ID && h.Number == n && h.VolumeSize == first.VolumeSize
	}
	for k := uint32(1); of(k); k++ {
		if first.VolumeSize != 0 && sizes[k] == int64(first.VolumeSize) && of(k+1) {
			continue // a volume of the middle
		}
		f, err := footer(k)
		return k, err == nil && f.ID == first.ID && f.VolumeCount == k
	}
	return 0, false
}

// SetEnd reports where the archive of volume first ends, where that can
// be told though volumes before its end are missing or damaged: at the
// highest-numbered volume whose header (headers: valid ones, by the number
// in the file's name) names first's archive, VolumeSize and its own
// Number, when that volume's footer (read by footer) says it is the
// archive's last, and when more of the volumes numbered up to there are
// that archive's (each at its own number) than any other's: a volume
// copied in from another archive, the last of a shorter one, must not end
// the set. Files numbered past it are not of the set, however many they
// are: an older, larger archive's volumes, left behind by a copy that
// does not delete or a create --force stopped before it removed them,
// which would otherwise outvote what is left of the set once it lost a
// volume (WholeSet needs them all). Where both readings fit (a set whose
// first volumes are lost, beside a copy of another archive's last volume
// numbered below the set's others), this takes the first volume's
// archive: the other's volumes are then strays and its parity foreign,
// which is refused, where taking the majority let repair rewrite the
// intact volumes of a newer archive into an older one.
func SetEnd(headers map[uint32]VolumeHeader, first uint32, footer func(n uint32) (Footer, error)) (last uint32, ok bool) {
	h, ok := headers[first]
	if !ok || h.Number != first {
		return 0, false
	}
	last = first
	for n, o := range headers {
		if n > last && o.ID == h.ID && o.Number == n && o.VolumeSize == h.VolumeSize {
			last = n
		}
	}
	votes := map[ArchiveID]int{}
	for n, o := range headers {
		if n <= last && o.Number == n {
			votes[o.ID]++
		}
	}
	for id, v := range votes {
		if id != h.ID && v >= votes[h.ID] {
			return last, false
		}
	}
	f, err := footer(last)
	return last, err == nil && f.ID == h.ID && f.VolumeCount == last
}

// Layout maps offsets of the archive's logical stream (the concatenation of
// every volume's bytes after its header) to volumes and file offsets.
type Layout struct {
	// VolumeSize is the size of every volume but the last, header included;
	// 0 means one volume of any size.
	VolumeSize int64
}

// Payload is how many stream bytes one full volume holds.
func (l Layout) Payload() int64 {
	if l.VolumeSize == 0 {
		return math.MaxInt64
	}
	return l.VolumeSize - VolumeHeaderSize
}

// Locate returns the 1-based volume holding stream offset off and the offset
// of that byte inside the volume's file.
func (l Layout) Locate(off int64) (volume uint32, fileOff int64) {
	p := l.Payload()
	return uint32(off/p) + 1, off%p + VolumeHeaderSize
}

// Span is a piece of a stream range that lies in one volume.
type Span struct {
	Volume  uint32 // 1-based
	FileOff int64  // offset inside the volume file
	Len     int64
}

// Spans splits the stream range [off, off+n) at volume boundaries, calling fn
// for each piece in order; it stops at the first error fn returns.
func (l Layout) Spans(off, n int64, fn func(Span) error) error {
	p := l.Payload()
	for n > 0 {
		vol, fo := l.Locate(off)
		take := p - off%p
		if take > n {
			take = n
		}
		if err := fn(Span{Volume: vol, FileOff: fo, Len: take}); err != nil {
			return err
		}
		off += take
		n -= take
	}
	return nil
}

// VolumeCount is how many volumes a stream of the given length occupies.
func (l Layout) VolumeCount(streamLen int64) uint32 {
	if streamLen <= 0 {
		return 1
	}
	return uint32((streamLen-1)/l.Payload()) + 1
}

// VolumeName is the file name of volume n (1-based) of the archive base:
// base.001 … base.999, then base.1000 and on.
func VolumeName(base string, n uint32) string {
	return fmt.Sprintf("%s.%03d", base, n)
}

// ParseVolumeName splits a volume's path into the archive base and the
// volume number. ok is false unless the name ends in .NNN as VolumeName
// writes it: three digits or more, no needless leading zero, not 0.
func ParseVolumeName(path string) (base string, n uint32, ok bool) {
	i := strings.LastIndexByte(path, '.')
	if i < 0 || len(path)-i-1 < 3 || strings.ContainsRune(path[i:], '/') {
		return "", 0, false
	}
	v, err := strconv.ParseUint(path[i+1:], 10, 32)
	if err != nil || v == 0 {
		return "", 0, false
	}
	// Only the name VolumeName gives: "a.0001" is not volume 1 of "a", whose
	// file is "a.001", and a reader must not open one for the other.
	if VolumeName(path[:i], uint32(v)) != path {
		return "", 0, false
	}
	return path[:i], uint32(v), true
}

// ListVolumes returns the numbers of the volumes of the archive base that
// are present in its directory: files named exactly as VolumeName names
// them. The writer uses it to find an archive it would replace, the reader
// to find the set it opens.
func ListVolumes(base string) ([]uint32, error) {
	nums, err := listNumbered(base, func(e os.DirEntry) (string, int, bool) {
		b, n, ok := ParseVolumeName(e.Name())
		return b, int(n), ok && VolumeName(b, n) == e.Name()
	})
	out := make([]uint32, len(nums))
	for i, n := range nums {
		out[i] = uint32(n)
	}
	return out, err
}

// beside lists the directory that base's files are in (dir, "." for a
// bare name) and gives the name's last element, prefix.
func beside(base string) (dir, prefix string, ents []os.DirEntry, err error) {
	dir, prefix = filepath.Split(base)
	if dir == "" {
		dir = "."
	}
	ents, err = os.ReadDir(dir)
	return dir, prefix, ents, err
}

// listNumbered returns, in order, the numbers of the entries beside base
// that parse (into a base and a number) as base's.
func listNumbered(base string, parse func(os.DirEntry) (string, int, bool)) ([]int, error) {
	_, prefix, ents, err := beside(base)
	if err != nil {
		return nil, err
	}
	var out []int
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), prefix+".") {
			continue
		}
		if b, n, ok := parse(e); ok && b == prefix {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out, nil
}

// OpenFile opens a volume or recovery volume for reading. It refuses
// anything but a regular file, and opens without waiting: a FIFO named like
// a volume would otherwise block the open (and every command) until
// something writes to it.
func OpenFile(path string) (*os.File, error) { return OpenFileAt(atFDCWD, path, path) }

// descriptorReserve is what DescriptorBudget leaves to the rest of the
// process before sharing out what is free: Go's runtime (its poller's
// epoll and eventfd, made at first need: without them it dies), the
// standard streams, the mount's /dev/fuse, the files being written.
const descriptorReserve = 32

// DescriptorBudget is how many files each of share holders (a reader's
// set of volumes, an extraction's chains of directories) may keep open:
// half of the descriptors free under the process's limit past
// descriptorReserve, shared among them, from least to most; most where the
// limit is too high to matter (over a million) or cannot be read. A holder
// given fewer opens files again as it needs them.
func DescriptorBudget(share, least, most int) int {
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil || lim.Cur > 1<<20 {
		return most
	}
	used := descriptorReserve // where /proc cannot tell
	if ents, err := os.ReadDir("/proc/self/fd"); err == nil {
		used = len(ents)
	}
	return min(most, max(least, (int(lim.Cur)-used-descriptorReserve)/2/share))
}

// TooManyOpen reports an open that failed on the process's or the
// system's limit of open files: not damage, nor the volume's fault.
func TooManyOpen(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE)
}

// atFDCWD is Linux's AT_FDCWD, which package syscall does not name.
const atFDCWD = -100

// OpenFileAt is OpenFile of name in directory dirfd (path: the file's
// path, for the file's name and messages). A set of volumes opened again
// later through a descriptor of their directory taken at first reaches
// them even where something was mounted over that path since (arcmount
// over the archive's own directory).
func OpenFileAt(dirfd int, name, path string) (*os.File, error) {
	for {
		fd, err := syscall.Openat(dirfd, name, syscall.O_RDONLY|syscall.O_CLOEXEC|syscall.O_NONBLOCK, 0)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return nil, &os.PathError{Op: "open", Path: path, Err: err}
		}
		var st syscall.Stat_t
		if err := syscall.Fstat(fd, &st); err != nil {
			syscall.Close(fd)
			return nil, &os.PathError{Op: "stat", Path: path, Err: err}
		}
		if st.Mode&syscall.S_IFMT != syscall.S_IFREG {
			syscall.Close(fd)
			return nil, &os.PathError{Op: "open", Path: path, Err: ErrNotRegular}
		}
		if err := syscall.SetNonblock(fd, false); err != nil {
			syscall.Close(fd)
			return nil, &os.PathError{Op: "open", Path: path, Err: err}
		}
		return os.NewFile(uintptr(fd), path), nil
	}
}

// RecoveryName is the file name of recovery volume n (1-based) of the
// archive base: base.r01 … base.r99, then base.r100 and on ("Recovery
// volumes" in docs/FORMAT.md).
func RecoveryName(base string, n int) string {
	return fmt.Sprintf("%s.r%02d", base, n)
}

// ParseRecoveryName splits a recovery volume's path into the archive base
// and its number; ok only for the exact form RecoveryName writes.
func ParseRecoveryName(path string) (base string, n int, ok bool) {
	i := strings.LastIndexByte(path, '.')
	if i < 0 || len(path)-i-1 < 3 || path[i+1] != 'r' || strings.ContainsRune(path[i:], '/') {
		return "", 0, false
	}
	v, err := strconv.ParseUint(path[i+2:], 10, 31)
	if err != nil || v == 0 || RecoveryName(path[:i], int(v)) != path {
		return "", 0, false
	}
	return path[:i], int(v), true
}

// ListRecoveryVolumes returns the paths of the recovery volumes of the
// archive base that exist, in number order. It only looks at names.
func ListRecoveryVolumes(base string) ([]string, error) {
	nums, err := listNumbered(base, func(e os.DirEntry) (string, int, bool) {
		if e.IsDir() {
			return "", 0, false
		}
		return ParseRecoveryName(e.Name())
	})
	var out []string
	for _, n := range nums {
		out = append(out, RecoveryName(base, n))
	}
	return out, err
}
