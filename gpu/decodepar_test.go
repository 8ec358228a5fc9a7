//go:build !noopencl

package gpu

import (
	"bytes"
	"testing"

	"arc/codec"
	"arc/format"
)

// forDecodeKernels runs f with an engine whose blocks all go to lz4_decode
// and with one whose blocks all go to lz4_decode_par.
func forDecodeKernels(t *testing.T, batch int, f func(t *testing.T, e *Engine)) {
	for _, k := range []struct {
		name   string
		parMin int
	}{{"lz4_decode", -1}, {"lz4_decode_par", 1}} {
		t.Run(k.name, func(t *testing.T) {
			e := testEnginePar(t, batch, k.parMin)
			if k.parMin > 0 && e.devs[0].parMin != k.parMin {
				t.Skip("this device does not run lz4_decode_par: " + e.devs[0].parWhy)
			}
			f(t, e)
		})
	}
}

// randomSequences builds a valid block of n random sequences (literal runs
// of 0..maxLit, matches of 4..maxMatch at offsets up to maxOff, many of
// them short and overlapping themselves) with offBytes-byte offsets.
func randomSequences(n, maxLit, maxMatch, maxOff, offBytes int, seed uint64) (src, raw []byte) {
	r := testBytes(4*n+16, seed)
	lits := testBytes(n*maxLit/2+maxLit+16, seed+1)
	lp := 0
	for i := 0; i < n; i++ {
		v := func(k int) int { return int(r[4*i+k]) }
		ll := v(0) * (maxLit + 1) / 256
		if v(3) < 8 {
			ll = 0
		}
		lit := lits[lp%(len(lits)-ll) : lp%(len(lits)-ll)+ll]
		lp += ll + 1
		if len(raw)+ll == 0 {
			lit = lits[:1]
		}
		ml := 4 + v(1)*v(1)*(maxMatch-4)/65025
		var off int
		avail := len(raw) + len(lit)
		switch {
		case v(2) < 64: // short, overlapping
			off = 1 + v(2)%20
		case v(2) < 160: // near: likely inside a recent match
			off = 1 + (v(2)*v(3))%300
		default:
			off = 1 + (v(2)<<16|v(3)<<8|v(0))%maxOff
		}
		off = min(off, avail)
		src, raw = seqW(src, raw, lit, off, ml, offBytes)
	}
	return seqW(src, raw, lits[:7], 0, 0, offBytes)
}

// TestDecodeParEdges covers what spreads a block's parse and copies over
// many work-items: long literal runs and long matches whose length bytes
// cross spans, chains of overlapping and nested matches over many waves,
// lz4x offsets up to the 16 MiB window.
func TestDecodeParEdges(t *testing.T) {
	var blocks []Block
	var raws [][]byte
	add := func(c uint8, src, raw []byte) {
		blocks = append(blocks, Block{Codec: c, Src: src, Dst: make([]byte, len(raw))})
		raws = append(raws, raw)
	}
	// A 300 KB literal run between short sequences.
	src, raw := seq(nil, nil, []byte("abcdefgh"), 8, 40)
	src, raw = seq(src, raw, testBytes(300000, 1), 65000, 5000)
	for i := 0; i < 2000; i++ {
		src, raw = seq(src, raw, testBytes(i%7, uint64(i)), 1+i%5000, 4+i%30)
	}
	src, raw = seq(src, raw, []byte("the end"), 0, 0)
	add(format.CodecLZ4, src, raw)
	// 1 MiB of one byte and of a 3-byte pattern: one match each, about
	// 4 KB of 255s in the length.
	for _, p := range [][]byte{{0}, []byte("xyz")} {
		src, raw = seq(nil, nil, p, len(p), 1<<20)
		src, raw = seq(src, raw, []byte("tail!"), 0, 0)
		add(format.CodecLZ4, src, raw)
	}
	// Random sequences: thousands of waves' worth of dependencies.
	for i, c := range []struct {
		n, lit, match, off, ob int
		id                     uint8
	}{
		{20000, 20, 300, 65535, 2, format.CodecLZ4},
		{30000, 6, 40, 4000, 2, format.CodecLZ4},
		{20000, 40, 2000, 1 << 20, 3, format.CodecLZ4X},
		{3000, 300, 20, 100, 2, format.CodecLZ4},
	} {
		src, raw = randomSequences(c.n, c.lit, c.match, c.off, c.ob, uint64(10+i))
		add(c.id, src, raw)
	}
	// lz4x: a match at the largest offset, 16 MiB - 1 back.
	src, raw = seqW(nil, nil, compressible(1<<24-1, 4), 1<<24-1, 5000, 3)
	src, raw = seqW(src, raw, []byte("end"), 0, 0, 3)
	add(format.CodecLZ4X, src, raw)
	dec := codec.NewDecoder()
	for i := range blocks {
		dst := make([]byte, len(raws[i]))
		if err := dec.Decode(blocks[i].Codec, dst, blocks[i].Src); err != nil || !bytes.Equal(dst, raws[i]) {
			t.Fatalf("block %d: the CPU decoder disagrees with the test's expectation: %v", i, err)
		}
	}
	forDecodeKernels(t, 40<<20, func(t *testing.T, e *Engine) {
		for i := range blocks {
			clear(blocks[i].Dst)
		}
		idx := make([]int, len(blocks))
		for i := range idx {
			idx[i] = i
		}
		rest, err := e.devs[0].decodeBatch(blocks, idx)
		if err != nil || len(rest) > 0 {
			t.Fatalf("device rejected blocks %v (%v)", rest, err)
		}
		checkDecoded(t, blocks, raws)
	})
}

// TestDecodeParCorrupt cuts and flips bytes of valid blocks: whatever the
// kernel accepts, the CPU decoder must accept with the same output, and
// what the CPU accepts the kernel must too (no garbage, no false errors).
func TestDecodeParCorrupt(t *testing.T) {
	var good []Block
	for i, c := range []struct {
		ob int
		id uint8
	}{{2, format.CodecLZ4}, {3, format.CodecLZ4X}} {
		src, raw := randomSequences(3000, 12, 60, 3000, c.ob, uint64(50+i))
		good = append(good, Block{Codec: c.id, Src: src, Dst: raw})
	}
	var blocks []Block
	r := testBytes(4096, 77)
	for gi, g := range good {
		for k := 0; k < 40; k++ {
			src := bytes.Clone(g.Src)
			n := len(g.Dst)
			switch x := int(r[gi*400+k*3])<<8 | int(r[gi*400+k*3+1]); k % 4 {
			case 0: // cut
				src = src[:x*len(src)/65536]
			case 1: // flip one byte
				src[x*len(src)/65536] ^= 1 << (r[gi*400+k*3+2] & 7)
			case 2: // overwrite a run with garbage
				p := x * len(src) / 65536
				copy(src[p:], testBytes(50, uint64(k)))
			case 3: // wrong raw size
				n += int(r[gi*400+k*3+2]) - 128
			}
			blocks = append(blocks, Block{Codec: g.Codec, Src: src, Dst: make([]byte, max(n, 1))})
		}
	}
	kernelsAgreeWithCPU(t, blocks)
}

// kernelsAgreeWithCPU decodes blocks with each decode kernel and checks
// that it rejects exactly the blocks the CPU decoder rejects, and decodes
// the others to the CPU's bytes.
func kernelsAgreeWithCPU(t *testing.T, blocks []Block) {
	dec := codec.NewDecoder()
	forDecodeKernels(t, 1<<20, func(t *testing.T, e *Engine) {
		idx := make([]int, len(blocks))
		for i := range idx {
			idx[i] = i
			clear(blocks[i].Dst)
		}
		rest, err := e.devs[0].decodeBatch(blocks, idx)
		if err != nil {
			t.Fatal(err)
		}
		rejected := map[int]bool{}
		for _, i := range rest {
			rejected[i] = true
		}
		t.Logf("%d of %d damaged blocks rejected", len(rest), len(blocks))
		for i, b := range blocks {
			dst := make([]byte, len(b.Dst))
			cerr := dec.Decode(b.Codec, dst, b.Src)
			switch {
			case rejected[i] && cerr == nil:
				t.Errorf("block %d: kernel rejected a block the CPU decodes", i)
			case !rejected[i] && cerr != nil:
				t.Errorf("block %d: kernel accepted a block the CPU rejects (%v)", i, cerr)
			case !rejected[i] && !bytes.Equal(dst, b.Dst):
				t.Errorf("block %d: kernel output differs from the CPU's", i)
			}
		}
	})
}

// TestDecodeRejectsALastTokenWithAMatchLength: a block whose last
// sequence (literals only) has a non-zero match-length nibble is one the
// CPU decoders reject; the kernels must too, or a damaged archive verifies
// intact on the device and damaged on the CPU.
func TestDecodeRejectsALastTokenWithAMatchLength(t *testing.T) {
	var blocks []Block
	for _, c := range []struct {
		id  uint8
		ob  int
		raw []byte
	}{{format.CodecLZ4, 2, compressible(100000, 7)}, {format.CodecLZ4X, 3, compressible(100000, 8)}} {
		src, raw := seqW(nil, nil, c.raw[:20], 0, 0, c.ob)
		for _, nib := range []byte{1, 15} {
			bad := bytes.Clone(src)
			bad[0] |= nib
			blocks = append(blocks, Block{Codec: c.id, Src: bad, Dst: make([]byte, len(raw))})
		}
		// The same on a long block: the token of its last sequence.
		long, lraw := randomSequences(3000, 12, 60, 3000, c.ob, 9)
		last := len(long) - 8 // seqW's last sequence: a token, 7 literals
		if long[last]>>4 != 7 || long[last]&15 != 0 {
			t.Fatalf("last token %#x", long[last])
		}
		long[last] |= 1
		blocks = append(blocks, Block{Codec: c.id, Src: long, Dst: make([]byte, len(lraw))})
	}
	dec := codec.NewDecoder()
	for i, b := range blocks {
		if err := dec.Decode(b.Codec, make([]byte, len(b.Dst)), b.Src); err == nil {
			t.Fatalf("block %d: the CPU decodes it", i)
		}
	}
	kernelsAgreeWithCPU(t, blocks)
}
