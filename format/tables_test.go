package format

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"reflect"
	"testing"
	"unsafe"
)

// oddIndex is a valid index whose tables have the row counts given, so
// that between them every table starts at every alignment: files regular
// files of holes, each with its own extents (1 to 3) and, every other one,
// an xattr; blocks raw blocks in one frame.
func oddIndex(files, blocks int) *Index {
	x := minimalIndex()
	b := blobBuilder{x}
	x.Inodes.DataStart[0], x.Inodes.DataCount[0] = 1, uint32(files)
	for i := range files {
		ext, xatt := uint32(i%3+1), uint32(i%2)
		ino := inodeRow{mode: ModeReg | 0o644, size: uint64(ext) * 10, dataStart: uint64(len(x.Extents.Len)), dataCount: ext,
			xattrStart: uint32(len(x.Xattrs.NameLen)), xatt: xatt}
		for range ext {
			x.Extents.Off = append(x.Extents.Off, Hole)
			x.Extents.Len = append(x.Extents.Len, 10)
		}
		if xatt != 0 {
			b.xattr("user.k", fmt.Sprint(i))
		}
		b.inode(ino)
		b.dirent(uint32(i+1), fmt.Sprintf("f%03d", i))
	}
	for range blocks {
		x.Blocks.Codec = append(x.Blocks.Codec, CodecRaw)
		x.Blocks.RawSize = append(x.Blocks.RawSize, 10)
		x.Blocks.StoredSize = append(x.Blocks.StoredSize, 10)
		x.Blocks.Sum = append(x.Blocks.Sum, 7)
	}
	if blocks > 0 {
		x.Frames = []uint32{uint32(blocks)}
	}
	return x
}

// aligned returns a copy of b at an 8-byte boundary, as a decompressor's
// output is.
func aligned(b []byte) []byte {
	w := make([]uint64, (len(b)+7)/8)
	c := unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(w))), len(b))
	copy(c, b)
	return c
}

// tablesOutside names the stored tables of x that are not views of buf,
// or views not aligned for their type.
func tablesOutside(x *Index, buf []byte) []string {
	lo := uintptr(unsafe.Pointer(unsafe.SliceData(buf)))
	hi := lo + uintptr(len(buf))
	var out []string
	var walk func(v reflect.Value, name string)
	walk = func(v reflect.Value, name string) {
		switch v.Kind() {
		case reflect.Struct:
			for i := range v.NumField() {
				walk(v.Field(i), name+"."+v.Type().Field(i).Name)
			}
		case reflect.Slice:
			if v.Len() == 0 || v.Type().Elem().Kind() == reflect.Struct {
				return // Params, Stats, Users, Groups: rows, not tables
			}
			p, size := v.Pointer(), v.Type().Elem().Size()
			if end := p + uintptr(v.Len())*size; p < lo || end > hi {
				out = append(out, name)
			} else if p%size != 0 {
				out = append(out, name+" (misaligned)")
			}
		}
	}
	walk(reflect.ValueOf(storedFields(x)), "Index")
	return out
}

func TestAnOwnedIndexIsDecodedInPlace(t *testing.T) {
	if binary.NativeEndian.Uint16([]byte{1, 0}) != 1 {
		t.Skip("tables are views only on little-endian machines")
	}
	cases := []*Index{sampleIndex(), minimalIndex()}
	for files := range 5 {
		for _, blocks := range []int{0, 1, 2, 3, 5} {
			cases = append(cases, oddIndex(files, blocks))
		}
	}
	for i, c := range cases {
		enc := EncodeIndex(c)
		want, err := DecodeIndex(enc)
		if err != nil {
			t.Fatalf("case %d: DecodeIndex: %v", i, err)
		}
		buf := aligned(enc)
		got, err := DecodeOwnedIndex(buf)
		if err != nil {
			t.Fatalf("case %d: DecodeOwnedIndex: %v", i, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("case %d: decoded in place:\n%+v\ncopied:\n%+v", i, got, want)
		}
		if out := tablesOutside(got, buf); len(out) != 0 {
			t.Errorf("case %d: tables copied rather than used in place: %v", i, out)
		}
		// Streamed, each section is a buffer of the decoder's own, and its
		// tables are views of it: nothing to check from here but the result.
		if xs, err := DecodeIndexFrom(bytes.NewReader(enc), uint64(len(enc)), 1<<20); err != nil || !reflect.DeepEqual(xs, want) {
			t.Fatalf("case %d: streamed: %v (or a different index)", i, err)
		}
	}
}

func TestAnOwnedIndexOffItsAlignmentIsCopied(t *testing.T) {
	enc := EncodeIndex(oddIndex(3, 3))
	want, err := DecodeIndex(enc)
	if err != nil {
		t.Fatal(err)
	}
	buf := aligned(append([]byte{0}, enc...))[1:]
	got, err := DecodeOwnedIndex(buf)
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("DecodeOwnedIndex of a buffer off 8-byte alignment: %v (or a different index)", err)
	}
	if out := tablesOutside(got, buf); len(out) == 0 {
		t.Error("tables were made views of a buffer not aligned for them")
	}
}

func TestDecodeOwnedIndexRejectsWhatDecodeIndexRejects(t *testing.T) {
	wantErrors(t, badIndexEncodings(t), func(b []byte) error { _, err := DecodeOwnedIndex(aligned(b)); return err })
}
