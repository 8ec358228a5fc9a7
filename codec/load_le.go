//go:build (amd64 || arm64) && !purego

package codec

import "unsafe"

// Loads and stores for greedyNear's loop, where the indices are in range by
// construction (see there): one unaligned little-endian access each, no
// bounds checks. load_other.go has the same functions, checked (also
// built with -tags purego).

// load64 returns b[i:i+8] as a little-endian number; i+8 <= len(b).
func load64(b []byte, i int) uint64 {
	return *(*uint64)(unsafe.Add(unsafe.Pointer(unsafe.SliceData(b)), i))
}

// load32 returns b[i:i+4] as a little-endian number; i+4 <= len(b).
func load32(b []byte, i int) uint32 {
	return *(*uint32)(unsafe.Add(unsafe.Pointer(unsafe.SliceData(b)), i))
}

// store64 writes v to b[i:i+8], little-endian; i+8 <= len(b).
func store64(b []byte, i int, v uint64) {
	*(*uint64)(unsafe.Add(unsafe.Pointer(unsafe.SliceData(b)), i)) = v
}

// store16 writes v to b[i:i+2], little-endian; i+2 <= len(b).
func store16(b []byte, i int, v uint16) {
	*(*uint16)(unsafe.Add(unsafe.Pointer(unsafe.SliceData(b)), i)) = v
}

// tableAt returns &t[h]; h < len(t).
func tableAt(t []uint32, h uint64) *uint32 {
	return (*uint32)(unsafe.Add(unsafe.Pointer(unsafe.SliceData(t)), h*4))
}
