// Package hugepage asks the kernel to back large buffers with transparent
// huge pages where it does so only when asked (THP "madvise", as on the
// machines this was measured on): the first touch of such a buffer then
// costs a page fault per 2 MiB instead of one per 4 KiB. Under a
// hypervisor a fault is costly, and faults were most of what opening an
// archive cost in a fresh process (bench/README.md).
package hugepage

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// Size is the huge page size advice is rounded to: the PMD size of x86-64
// and arm64 with 4 KiB pages.
const Size = 2 << 20

// advise asks for huge pages under b's whole huge pages, the part of b
// from its first Size boundary to its last. It helps only where b has not
// been touched yet. The advice is a hint: a kernel without THP refuses it,
// and that is ignored.
func advise(b []byte) {
	if len(b) < Size {
		return
	}
	base := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	start := (base + Size - 1) &^ (Size - 1)
	end := (base + uintptr(len(b))) &^ (Size - 1)
	if end <= start {
		return
	}
	_ = unix.Madvise(unsafe.Slice((*byte)(unsafe.Add(unsafe.Pointer(unsafe.SliceData(b)), start-base)), end-start), unix.MADV_HUGEPAGE)
}

// Make returns a slice of n zero values of T whose memory is advised.
// While the heap grows, Go's large allocations come untouched from the
// system and the advice applies before the first fault; memory the heap
// reuses is zeroed by make, touched before the advice.
//
// The advice belongs to the address range, not to the slice: it outlives
// a slice dropped, where the runtime reuses the memory or returns it
// (where khugepaged may then make it whole huge pages again). Make is for
// buffers that live as long as what they serve, not for scratch.
func Make[T any](n int) []T {
	s := make([]T, n)
	if n > 0 {
		advise(unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(s))), uintptr(n)*unsafe.Sizeof(s[0])))
	}
	return s
}
