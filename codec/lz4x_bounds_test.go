//go:build unix

package codec

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"runtime/debug"
	"testing"

	"github.com/pierrec/lz4/v4"
	"golang.org/x/sys/unix"
)

// fenced is memory with inaccessible pages on both sides: a slice placed
// against either fence faults on the first byte read or written past it.
type fenced struct {
	mem  []byte // the whole mapping
	data []byte // between the fences
}

func newFenced(t testing.TB, n int) *fenced {
	t.Helper()
	ps := unix.Getpagesize()
	pages := (n+ps-1)/ps + 2
	mem, err := unix.Mmap(-1, 0, pages*ps, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
	if err != nil {
		t.Skip("mmap:", err)
	}
	t.Cleanup(func() { unix.Munmap(mem) })
	if err := unix.Mprotect(mem[:ps], unix.PROT_NONE); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mprotect(mem[len(mem)-ps:], unix.PROT_NONE); err != nil {
		t.Fatal(err)
	}
	return &fenced{mem: mem, data: mem[ps : len(mem)-ps]}
}

// atEnd returns n bytes holding p's first n bytes that end against the
// upper fence; atStart, n bytes that begin against the lower one.
func (f *fenced) atEnd(p []byte, n int) []byte {
	b := f.data[len(f.data)-n:]
	copy(b, p)
	return b[:n:n]
}

func (f *fenced) atStart(p []byte, n int) []byte {
	b := f.data[:n]
	copy(b, p)
	return b[:n:n]
}

// hostileLZ4X returns a block of random sequences whose literal and match
// lengths and offsets cluster around the decoders' thresholds (copy widths
// 8, 16, 18, 32, 48, 64, 256, the tile and splat periods, the start of the
// block), with now and then a broken one (offset 0 or too far, a length
// past the end, a cut). size is what the sequences would produce.
func hostileLZ4X(r *rand.Rand) (block []byte, size int) { return hostileBlock(r, 3, 1<<24, true) }

// hostileBlock is hostileLZ4X with offBytes-byte offsets, taken modulo
// offMod, broken only where damage is set.
func hostileBlock(r *rand.Rand, offBytes, offMod int, damage bool) (block []byte, size int) {
	pick := func(vals ...int) int { return vals[r.IntN(len(vals))] }
	var out []byte
	putLen := func(n int) {
		for ; n >= 255; n -= 255 {
			out = append(out, 255)
		}
		out = append(out, byte(n))
	}
	d := 0
	for seqs := r.IntN(12); seqs >= 0; seqs-- {
		lit := pick(0, 1, 3, 7, 8, 13, 14, 15, 16, 17, 31, 32, 47, 48, 49, 64, 300, r.IntN(40))
		ml := pick(4, 5, 8, 15, 16, 17, 18, 19, 20, 31, 32, 33, 63, 64, 65, 255, 256, 257, 300, 1000, 5000, 60000, 4+r.IntN(60))
		off := pick(1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 15, 16, 17, 24, 31, 32, 33, 64, 100, 512, 16384, d, d, d+1, 1+r.IntN(d+1))
		if r.IntN(30) == 0 {
			off = 0
		}
		tok := byte(min(lit, 15)) << 4
		last := seqs == 0 && r.IntN(4) != 0
		if !last {
			tok |= byte(min(ml-minMatch, 15))
		}
		out = append(out, tok)
		if lit >= 15 {
			putLen(lit - 15)
		}
		for range lit {
			out = append(out, byte(r.IntN(4))+'a')
		}
		d += lit
		if last {
			break
		}
		off %= offMod
		for k := range offBytes {
			out = append(out, byte(off>>(8*k)))
		}
		if ml-minMatch >= 15 {
			putLen(ml - minMatch - 15)
		}
		d += ml
	}
	if !damage {
		return out, d
	}
	switch r.IntN(5) {
	case 0:
		out = out[:r.IntN(len(out)+1)]
	case 1:
		if len(out) > 0 {
			out[r.IntN(len(out))] ^= byte(1 + r.IntN(255))
		}
	}
	return out, d
}

// decodeFenced runs dec with src and dst each placed against a fence, and
// turns a fault into an error.
func decodeFenced(dec func(dst, src []byte) error, dst, src []byte) (err error, fault error) {
	old := debug.SetPanicOnFault(true)
	defer debug.SetPanicOnFault(old)
	defer func() {
		if r := recover(); r != nil {
			fault = fmt.Errorf("%v", r)
		}
	}()
	return dec(dst, src), nil
}

func TestDecodeLZ4XStaysInsideItsBuffers(t *testing.T) {
	decoders := map[string]func(dst, src []byte) error{"asm": decodeLZ4X, "go": decodeLZ4XGo}
	const maxSize = 1 << 17
	srcMem, dstMem := newFenced(t, 1<<16), newFenced(t, maxSize)
	r := rand.New(rand.NewPCG(7, 8))
	valid := 0
	for i := range 20000 {
		src, size := hostileLZ4X(r)
		if len(src) == 0 || len(src) > 1<<16 {
			continue
		}
		if size > maxSize || r.IntN(3) == 0 {
			size = r.IntN(maxSize + 1)
		}
		var outs [2][]byte
		var errs [2]error
		for k, name := range []string{"asm", "go"} {
			for _, place := range []string{"end", "start"} {
				s, d := srcMem.atEnd(src, len(src)), dstMem.atEnd(nil, size)
				if place == "start" {
					s, d = srcMem.atStart(src, len(src)), dstMem.atStart(nil, size)
				}
				err, fault := decodeFenced(decoders[name], d, s)
				if fault != nil {
					t.Fatalf("case %d, %s decoder, buffers at the fences' %s: %v\nsrc %x, size %d", i, name, place, fault, src, size)
				}
				if place == "end" {
					outs[k], errs[k] = bytes.Clone(d), err
				}
			}
		}
		if (errs[0] == nil) != (errs[1] == nil) || errs[0] == nil && !bytes.Equal(outs[0], outs[1]) {
			t.Fatalf("case %d: decoders disagree: asm %v, go %v\nsrc %x, size %d", i, errs[0], errs[1], src, size)
		}
		if errs[0] == nil {
			valid++
		}
	}
	if valid < 1000 {
		t.Fatalf("only %d valid blocks", valid)
	}
}

// A dst slice of a larger buffer (a cache slab, a batch's arena) has
// neighbours past its length: no decoder may write into its capacity.
func TestDecodeLZ4XLeavesCapacityAlone(t *testing.T) {
	const guard = 256
	r := rand.New(rand.NewPCG(3, 4))
	for i := range 20000 {
		src, size := hostileLZ4X(r)
		if size > 20000 || r.IntN(3) == 0 {
			size = r.IntN(3000)
		}
		for name, dec := range map[string]func(dst, src []byte) error{"asm": decodeLZ4X, "go": decodeLZ4XGo} {
			buf := bytes.Repeat([]byte{0xC3}, guard+size+guard)
			dec(buf[guard:guard+size], src)
			if !bytes.Equal(buf[:guard], bytes.Repeat([]byte{0xC3}, guard)) || !bytes.Equal(buf[guard+size:], bytes.Repeat([]byte{0xC3}, guard)) {
				t.Fatalf("case %d: %s decoder wrote outside dst[:%d]\nsrc %x", i, name, size, src)
			}
		}
	}
}

// Valid LZ4 decodes the same with pierrec/lz4 and, with its offsets
// widened to 3 bytes, with both lz4x decoders; pierrec/lz4 also stays
// inside its buffers (Decode hands it lz4 blocks).
func TestDecodeLZ4XAgreesWithPierrec(t *testing.T) {
	const maxSize = 1 << 17
	srcMem, dstMem := newFenced(t, 1<<16), newFenced(t, maxSize)
	pierrec := func(dst, src []byte) error {
		n, err := lz4.UncompressBlock(src, dst)
		if err == nil && n != len(dst) {
			err = errShort
		}
		return err
	}
	agreed := 0
	for i := range 20000 {
		seed := rand.NewPCG(11, uint64(i))
		block, size := hostileBlock(rand.New(seed), 2, 1<<16, false)
		seed.Seed(11, uint64(i))
		wide, _ := hostileBlock(rand.New(seed), 3, 1<<16, false)
		if len(block) == 0 || len(block) > 1<<16 || size > maxSize {
			continue
		}
		for _, place := range []string{"end", "start"} {
			s, d := srcMem.atEnd(block, len(block)), dstMem.atEnd(nil, size)
			if place == "start" {
				s, d = srcMem.atStart(block, len(block)), dstMem.atStart(nil, size)
			}
			if _, fault := decodeFenced(pierrec, d, s); fault != nil {
				t.Fatalf("case %d, pierrec/lz4, buffers at the fences' %s: %v\nsrc %x, size %d", i, place, fault, block, size)
			}
		}
		want := make([]byte, size)
		if pierrec(want, block) != nil {
			continue
		}
		agreed++
		for name, dec := range map[string]func(dst, src []byte) error{"asm": decodeLZ4X, "go": decodeLZ4XGo} {
			got := make([]byte, size)
			if err := dec(got, wide); err != nil || !bytes.Equal(got, want) {
				t.Fatalf("case %d: %s decoder: %v, equal %v\nlz4 %x\nlz4x %x", i, name, err, bytes.Equal(got, want), block, wide)
			}
		}
	}
	if agreed < 1000 {
		t.Fatalf("only %d valid blocks", agreed)
	}
}
