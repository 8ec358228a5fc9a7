package writer

import (
	"bytes"
	"testing"
	"unsafe"
)

// The scan keeps a node per path, a million of them for a million files:
// what few nodes have (a symlink's target, a device's number, xattrs)
// lives in nodeExtra, and the rest is laid out without padding. With all
// of it in the node, a node took 200 bytes.
func TestANodeStaysSmall(t *testing.T) {
	if size, limit := unsafe.Sizeof(node{}), uintptr(136); size > limit {
		t.Errorf("a node takes %d bytes, want at most %d", size, limit)
	}
}

// Nodes copied from one another (a tar stream's hardlinks) share their
// extra fields; setting one node's leaves the other's as they were, and a
// node whose extra fields are all empty keeps none.
func TestSettingANodesExtraFieldsLeavesItsCopiesAlone(t *testing.T) {
	var a node
	a.setExtra(func(e *nodeExtra) { e.xattrs = []xattr{{name: []byte("user.k"), value: []byte("v")}} })
	b := a
	b.setExtra(func(e *nodeExtra) { e.target = []byte("t") })
	if len(a.xattrs()) != 1 || a.target() != nil {
		t.Errorf("the original has xattrs %q and target %q, want its one xattr and none", a.xattrs(), a.target())
	}
	if len(b.xattrs()) != 1 || !bytes.Equal(b.target(), []byte("t")) {
		t.Errorf("the copy has xattrs %q and target %q, want the shared xattr and its own target", b.xattrs(), b.target())
	}
	b.setExtra(func(e *nodeExtra) { e.xattrs, e.target = nil, nil })
	if b.extra != nil || len(a.xattrs()) != 1 {
		t.Errorf("emptied: the copy keeps %+v, the original %d xattrs; want nothing, and one", b.extra, len(a.xattrs()))
	}
	var dev node
	dev.setExtra(func(e *nodeExtra) { e.rdev = 0x0801 })
	if dev.rdev() != 0x0801 || (&node{}).rdev() != 0 {
		t.Errorf("rdev %#x, and %#x without extra fields; want 0x801 and 0", dev.rdev(), (&node{}).rdev())
	}
}

// Every scanned path sets its xattrs, most of them none: that costs no
// allocation.
func TestSettingNoExtraFieldsAllocatesNothing(t *testing.T) {
	var n node
	if allocs := testing.AllocsPerRun(100, func() { n.setExtra(func(e *nodeExtra) { e.xattrs = nil }) }); allocs != 0 {
		t.Errorf("setExtra keeping nothing allocated %v times, want none", allocs)
	}
}
