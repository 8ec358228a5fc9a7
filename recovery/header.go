package recovery

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"

	"arc/format"

	"github.com/zeebo/xxh3"
)

// Magic opens every header copy; TrailerMagic ends every recovery volume.
var (
	Magic        = [8]byte{'A', 'R', 'C', 'R', 'E', 'C', '\r', '\n'}
	TrailerMagic = [8]byte{'A', 'R', 'C', 'R', 'T', 'A', 'I', 'L'}
)

const (
	headerFixed = 80 // bytes before the base name
	trailerSize = 16 // u64 header size + TrailerMagic
	version     = 1
)

// ErrHeader is wrapped by every reason a header copy is refused.
var ErrHeader = errors.New("bad recovery header")

// header is what every recovery volume of a set repeats (twice): the
// geometry, the data volumes and the checksum of every shard.
type header struct {
	number     int // this recovery volume, 1-based
	count      int // recovery volumes in the set
	id         format.ArchiveID
	base       string // the archive's NAME when the parity was made (information only)
	g          *geometry
	dataSums   []uint64
	paritySums []uint64
}

func headerSize(baseLen int, nvol int, d, p int64) int64 {
	return headerFixed + int64(baseLen) + 8*(int64(nvol)+d+p) + 8
}

func (h *header) size() int64 {
	return headerSize(len(h.base), len(h.g.sizes), h.g.dataShards(), h.g.parityShards())
}

// encode writes the header copy of recovery volume number (1-based).
func (h *header) encode(number int) []byte {
	g := h.g
	b := make([]byte, h.size())
	copy(b, Magic[:])
	le := binary.LittleEndian
	le.PutUint16(b[8:], version)
	le.PutUint16(b[10:], 0)
	le.PutUint32(b[12:], uint32(number))
	le.PutUint32(b[16:], uint32(h.count))
	le.PutUint32(b[20:], uint32(g.shardSize))
	le.PutUint32(b[24:], uint32(g.stripes))
	le.PutUint16(b[28:], uint16(g.k))
	le.PutUint16(b[30:], uint16(g.m))
	le.PutUint32(b[32:], uint32(g.perVol))
	le.PutUint32(b[36:], uint32(len(g.sizes)))
	copy(b[40:56], h.id[:])
	le.PutUint64(b[56:], uint64(g.dataShards()))
	le.PutUint64(b[64:], uint64(len(b)))
	le.PutUint16(b[72:], uint16(len(h.base)))
	// b[74:80] reserved, zero
	o := headerFixed + copy(b[headerFixed:], h.base)
	for _, s := range g.sizes {
		le.PutUint64(b[o:], uint64(s))
		o += 8
	}
	for _, s := range h.dataSums {
		le.PutUint64(b[o:], s)
		o += 8
	}
	for _, s := range h.paritySums {
		le.PutUint64(b[o:], s)
		o += 8
	}
	le.PutUint64(b[o:], xxh3.Hash(b[:o]))
	return b
}

func trailer(h int64) []byte {
	b := make([]byte, trailerSize)
	binary.LittleEndian.PutUint64(b, uint64(h))
	copy(b[8:], TrailerMagic[:])
	return b
}

// readHeaderAt reads and validates the header copy at off in f, whose
// file is size bytes long; it reads nothing beyond what the fixed part
// promises and the file holds.
func readHeaderAt(f io.ReaderAt, off, size int64) (*header, error) {
	if off == 0 && size < headerFixed {
		return nil, fmt.Errorf("%w: the file is %d bytes, shorter than a header", ErrHeader, size)
	}
	if off < 0 || size-off < headerFixed {
		return nil, fmt.Errorf("%w: no room for a header at offset %d", ErrHeader, off)
	}
	fixed := make([]byte, headerFixed)
	if _, err := f.ReadAt(fixed, off); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrHeader, err)
	}
	if [8]byte(fixed[:8]) != Magic {
		return nil, fmt.Errorf("%w: no magic at %d", ErrHeader, off)
	}
	// A copy fits in what the file holds from off on (the first copy of
	// a volume cut short still does; the second, found through the
	// trailer, ends where the trailer begins), which also bounds what is
	// read here by the file's size.
	hs := int64(binary.LittleEndian.Uint64(fixed[64:]))
	if hs < headerFixed+16 || hs > size-off {
		return nil, fmt.Errorf("%w: header size %d does not fit the file", ErrHeader, hs)
	}
	b := make([]byte, hs)
	if _, err := f.ReadAt(b, off); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrHeader, err)
	}
	return parseHeader(b)
}

// parseHeader decodes and validates one header copy (exactly its bytes).
func parseHeader(b []byte) (*header, error) {
	le := binary.LittleEndian
	if len(b) < headerFixed+8 || [8]byte(b[:8]) != Magic {
		return nil, fmt.Errorf("%w: no magic", ErrHeader)
	}
	if int64(le.Uint64(b[64:])) != int64(len(b)) {
		return nil, fmt.Errorf("%w: header size field %d, copy is %d bytes", ErrHeader, le.Uint64(b[64:]), len(b))
	}
	if got, want := le.Uint64(b[len(b)-8:]), xxh3.Hash(b[:len(b)-8]); got != want {
		return nil, fmt.Errorf("%w: checksum %016x, want %016x", ErrHeader, got, want)
	}
	if v := le.Uint16(b[8:]); v != version || le.Uint16(b[10:]) != 0 {
		return nil, fmt.Errorf("%w: version %d flags %#x (this program reads version %d)", ErrHeader, v, le.Uint16(b[10:]), version)
	}
	if slices.ContainsFunc(b[74:80], func(c byte) bool { return c != 0 }) {
		return nil, fmt.Errorf("%w: reserved bytes set", ErrHeader)
	}
	h := &header{number: int(le.Uint32(b[12:])), count: int(le.Uint32(b[16:]))}
	copy(h.id[:], b[40:56])
	nvol := int64(le.Uint32(b[36:]))
	d := int64(le.Uint64(b[56:]))
	baseLen := int64(le.Uint16(b[72:]))
	stripes, m := int64(le.Uint32(b[24:])), int64(le.Uint16(b[30:]))
	if nvol < 1 || nvol > maxDataVolumes || d < 1 || d > maxTotalShards || baseLen > maxBaseLen ||
		stripes < 1 || stripes > maxTotalShards || m < 1 || m > maxStripeShards {
		return nil, fmt.Errorf("%w: field out of range", ErrHeader)
	}
	p := stripes * m
	if headerSize(int(baseLen), int(nvol), d, p) != int64(len(b)) {
		return nil, fmt.Errorf("%w: %d bytes do not hold %d volumes and %d+%d shard checksums", ErrHeader, len(b), nvol, d, p)
	}
	o := int64(headerFixed)
	h.base = string(b[o : o+baseLen])
	o += baseLen
	sizes := make([]int64, nvol)
	for i := range sizes {
		sizes[i] = int64(le.Uint64(b[o:]))
		o += 8
	}
	g, err := newGeometry(sizes, int(le.Uint32(b[20:])), int(stripes), int(le.Uint16(b[28:])), int(m), int(le.Uint32(b[32:])))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrHeader, err)
	}
	if g.dataShards() != d {
		return nil, fmt.Errorf("%w: %d data shards recorded, the volume sizes make %d", ErrHeader, d, g.dataShards())
	}
	h.g = g
	if h.count != g.recoveryCount() || h.number < 1 || h.number > h.count {
		return nil, fmt.Errorf("%w: recovery volume %d of %d, geometry makes %d", ErrHeader, h.number, h.count, g.recoveryCount())
	}
	h.dataSums = make([]uint64, d)
	for i := range h.dataSums {
		h.dataSums[i] = le.Uint64(b[o:])
		o += 8
	}
	h.paritySums = make([]uint64, p)
	for i := range h.paritySums {
		h.paritySums[i] = le.Uint64(b[o:])
		o += 8
	}
	return h, nil
}

// recoverySize is the exact size of recovery volume v (0-based).
func (h *header) recoverySize(v int) int64 {
	return 2*h.size() + int64(h.g.paritiesIn(v))*int64(h.g.shardSize) + trailerSize
}

// readAnyHeader returns the first header copy of path that validates: the
// one at the start, else the one the trailer points at.
func readAnyHeader(path string) (*header, error) {
	f, err := format.OpenFile(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	h, err1 := readHeaderAt(f, 0, st.Size())
	if err1 == nil {
		return h, nil
	}
	t := make([]byte, trailerSize)
	if st.Size() < trailerSize {
		return nil, fmt.Errorf("%s: %w", path, err1)
	}
	if _, err := f.ReadAt(t, st.Size()-trailerSize); err != nil || [8]byte(t[8:]) != TrailerMagic {
		return nil, fmt.Errorf("%s: %w (and no trailer)", path, err1)
	}
	hs := int64(binary.LittleEndian.Uint64(t))
	if hs <= 0 || hs > st.Size()-trailerSize {
		return nil, fmt.Errorf("%s: %w (and its trailer's header size %d is out of range)", path, err1, hs)
	}
	h, err2 := readHeaderAt(f, st.Size()-trailerSize-hs, st.Size()-trailerSize)
	if err2 != nil {
		return nil, fmt.Errorf("%s: %w (second copy: %v)", path, err1, err2)
	}
	return h, nil
}
