//go:build !noopencl

package gpu

import (
	"bytes"
	"fmt"

	"arc/codec"
	"arc/format"

	"github.com/zeebo/blake3"
)

// selfTest runs every kernel on a small batch that covers its edges and
// compares with the CPU twin. A device whose compiler or hardware gets any
// of it wrong is not used.
func (d *device) selfTest() error {
	data := testBytes(70001, 1)
	var inputs [][]byte
	for _, n := range []int{0, 1, 63, 64, 65, 1023, 1024, 1025, 2048, 2049, 4097, 70001} {
		inputs = append(inputs, data[:n])
	}
	got := make([][32]byte, len(inputs))
	if err := d.hashBatch(inputs, got); err != nil {
		return fmt.Errorf("self-test: BLAKE3: %w", err)
	}
	for i, in := range inputs {
		if got[i] != blake3.Sum256(in) {
			return fmt.Errorf("self-test: BLAKE3 of %d bytes differs from the CPU's", len(in))
		}
	}
	enc, err := codec.NewEncoder(codec.Options{Codec: "lz4", Level: codec.LevelDefault})
	if err != nil {
		return err
	}
	var blocks []Block
	var want [][]byte
	for _, raw := range [][]byte{bytes.Repeat([]byte("arc self-test "), 900), compressible(20000, 2), bytes.Repeat([]byte{7}, 5000)} {
		id, stored := enc.Encode(raw)
		if id != format.CodecLZ4 {
			return fmt.Errorf("self-test: test block did not compress")
		}
		blocks = append(blocks, Block{Codec: id, Src: bytes.Clone(stored), Dst: make([]byte, len(raw))})
		want = append(want, raw)
	}
	// lz4x, built by hand so that it does not depend on the encoder's
	// choices: a match 70001 bytes back needs the third offset byte.
	far, farRaw := seqW(nil, nil, data[:70001], 70001, 3000, 3)
	far, farRaw = seqW(far, farRaw, data[:9], 0, 0, 3)
	blocks = append(blocks, Block{Codec: format.CodecLZ4X, Src: far, Dst: make([]byte, len(farRaw))})
	want = append(want, farRaw)
	// A corrupt copy of the first block: the kernel must reject it.
	bad := bytes.Clone(blocks[0].Src)
	bad = bad[:len(bad)-3]
	blocks = append(blocks, Block{Codec: format.CodecLZ4, Src: bad, Dst: make([]byte, len(want[0]))})
	idx := []int{0, 1, 2, 3, 4}
	rest, err := d.decodeBatch(blocks, idx)
	if err != nil {
		return fmt.Errorf("self-test: LZ4: %w", err)
	}
	if len(rest) != 1 || rest[0] != 4 {
		return fmt.Errorf("self-test: LZ4: kernel rejected blocks %v, want only the corrupt one (4)", rest)
	}
	for i := range want {
		if !bytes.Equal(blocks[i].Dst, want[i]) {
			return fmt.Errorf("self-test: LZ4 block %d decodes differently from the CPU", i)
		}
	}
	// The same blocks through lz4_decode_par (which takes only large
	// blocks in use); a device that fails it decodes with lz4_decode.
	if d.parMin >= 0 {
		keep := d.parMin
		d.parMin = 1
		for i := range want {
			clear(blocks[i].Dst)
		}
		rest, err := d.decodeBatch(blocks, idx)
		d.parMin = keep
		ok := err == nil && len(rest) == 1 && rest[0] == 4
		for i := range want {
			ok = ok && bytes.Equal(blocks[i].Dst, want[i])
		}
		if !ok {
			d.parMin = -1
			d.parWhy = fmt.Sprintf("lz4_decode_par failed the self-test (%v, rejected %v)", err, rest)
		}
	}
	// Compression, both table sizes: the CPU decoder must read what the
	// kernels write (a block of several segments included).
	big := compressible(3*encSeg+100, 3)
	for _, fast := range []bool{false, true} {
		comp := []EncBlock{{Src: want[0]}, {Src: want[1]}, {Src: data[:20000]}, {Src: big}}
		if rest, err := d.encodeBatch(comp, []int{0, 1, 2, 3}, fast); err != nil || len(rest) > 0 {
			return fmt.Errorf("self-test: LZ4 compression: %v", err)
		}
		dec := codec.NewDecoder()
		for i, b := range comp {
			dst := make([]byte, len(b.Src))
			if err := dec.Decode(b.Codec, dst, b.Stored); err != nil || !bytes.Equal(dst, b.Src) {
				return fmt.Errorf("self-test: LZ4 compression of block %d does not decode on the CPU: %v", i, err)
			}
		}
		if comp[0].Codec != format.CodecLZ4 || comp[3].Codec != format.CodecLZ4 || comp[2].Codec != format.CodecRaw {
			return fmt.Errorf("self-test: LZ4 compression chose codecs %d, %d and %d, want %d, %d and %d",
				comp[0].Codec, comp[3].Codec, comp[2].Codec, format.CodecLZ4, format.CodecLZ4, format.CodecRaw)
		}
	}
	return nil
}
