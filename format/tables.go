package format

import (
	"encoding/binary"
	"unsafe"
)

// An index's tables are little-endian arrays. Decoding copies each into
// a slice of its own, unless the bytes are an arena: a buffer the decoder
// owns (DecodeOwnedIndex; each section DecodeIndexFrom reads). There a
// table's bytes are moved back to the first offset past the tables before
// it that suits their type, and the slice is a view of them: the index
// then costs its decompressed size once instead of twice. In a fresh
// process every byte allocated is a page first touched, which is most of
// what opening an archive costs (a mount's time until it is ready), so
// the copy's memory mattered more than its time.
//
// Moving back never overwrites an unread byte, nor a table carved before:
// carve writes only between the tables carved so far and the end of the
// bytes it moves, and copies the table instead where the aligned place
// would lie past its bytes. That does not happen in a valid index: a table
// starts past the headers and counts before it (at least 8 bytes in each
// section), and a move loses at most 7 of that slack to alignment. On a
// big-endian machine tables are copied as before.

// arena is a buffer whose bytes, once read, may be overwritten by the
// tables carved from it.
type arena struct {
	buf  []byte
	used int // buf[:used] holds the tables carved so far
}

// newArena returns an arena over b, or nil where tables cannot be views
// of it: a big-endian machine, or b not 8-byte aligned. Go's allocations
// of 16 bytes or more are; smaller pointer-free ones come from the tiny
// allocator and may not be, which leaves a tiny section copied.
func newArena(b []byte) *arena {
	if len(b) == 0 || binary.NativeEndian.Uint16([]byte{1, 0}) != 1 || uintptr(unsafe.Pointer(unsafe.SliceData(b)))%8 != 0 {
		return nil
	}
	return &arena{buf: b}
}

// carve moves p, bytes read from the arena, to the first offset past the
// tables carved so far that is a multiple of align, and returns them
// there; nil where p is not the arena's or would move forward.
func (a *arena) carve(p []byte, align int) []byte {
	if a == nil || len(p) == 0 {
		return nil
	}
	base := uintptr(unsafe.Pointer(unsafe.SliceData(a.buf)))
	at := uintptr(unsafe.Pointer(unsafe.SliceData(p)))
	if at < base || at-base > uintptr(len(a.buf)-len(p)) {
		return nil
	}
	from := int(at - base)
	to := (a.used + align - 1) &^ (align - 1)
	if to > from {
		return nil
	}
	copy(a.buf[to:], p) // a memmove: the two may overlap
	a.used = to + len(p)
	return a.buf[to:a.used:a.used]
}

// table reads n little-endian values of T: a view of the arena where
// r has one, a copy otherwise. An error leaves an empty table (r.err says
// why).
func table[T uint16 | uint32 | uint64 | int64](r *rbuf, n int) []T {
	size := int(unsafe.Sizeof(T(0)))
	p := r.take(size * n)
	if len(p) == 0 {
		return make([]T, 0)
	}
	if v := r.ar.carve(p, size); v != nil {
		return unsafe.Slice((*T)(unsafe.Pointer(unsafe.SliceData(v))), len(v)/size)
	}
	t := make([]T, len(p)/size)
	for i := range t {
		switch size {
		case 2:
			t[i] = T(binary.LittleEndian.Uint16(p[2*i:]))
		case 4:
			t[i] = T(binary.LittleEndian.Uint32(p[4*i:]))
		default:
			t[i] = T(binary.LittleEndian.Uint64(p[8*i:]))
		}
	}
	return t
}

func (r *rbuf) u16s(n int) []uint16 { return table[uint16](r, n) }
func (r *rbuf) u32s(n int) []uint32 { return table[uint32](r, n) }
func (r *rbuf) u64s(n int) []uint64 { return table[uint64](r, n) }
func (r *rbuf) i64s(n int) []int64  { return table[int64](r, n) }

// bytesOf returns p, bytes read by r, to be kept: moved within the arena
// where r has one, aliased where r's buffer is its own, copied otherwise
// (an alias into a caller's whole index would keep it alive for as long
// as the bytes are in use).
func (r *rbuf) bytesOf(p []byte) []byte {
	if len(p) == 0 {
		return nil
	}
	if v := r.ar.carve(p, 1); v != nil {
		return v
	}
	if r.own {
		return p
	}
	return append([]byte(nil), p...)
}
