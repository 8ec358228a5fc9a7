package slab

import "unsafe"

// uintptrOf is the address of a mapping's first byte, for alignment.
func uintptrOf(b []byte) uintptr { return uintptr(unsafe.Pointer(unsafe.SliceData(b))) }
