//go:build !noopencl

package gpu

import (
	"bytes"
	"unsafe"

	"arc/format"
)

// encodeBatch compresses blocks[idx[k]] on the device and returns those
// left to the CPU (larger than a slot). Blocks that do not shrink are
// stored raw, as the CPU encoder does.
func (d *device) encodeBatch(blocks []EncBlock, idx []int) (rest []int, err error) {
	next := 0
	err = d.run(func(s *slot) (bool, error) {
		desc := u32s(&s.desc)
		var mine []int
		in := 0
		for next < len(idx) && len(mine) < d.maxN {
			b := &blocks[idx[next]]
			n := (len(b.Src) + 15) &^ 15
			if len(b.Src) == 0 {
				b.Codec, b.Stored = format.CodecRaw, b.Src
				next++
				continue
			}
			if n > d.batch {
				rest = append(rest, idx[next])
				next++
				continue
			}
			if in+n > d.batch {
				break
			}
			j := len(mine)
			// Output goes at the same offset; it must come out smaller.
			desc[4*j], desc[4*j+1], desc[4*j+2], desc[4*j+3] = uint32(in), uint32(len(b.Src)), uint32(in), uint32(len(b.Src)-1)
			mine = append(mine, idx[next])
			in += n
			next++
		}
		if len(mine) == 0 {
			return next < len(idx), nil
		}
		k := len(mine)
		parallel(k, func(j int) { copy(s.in.b[desc[4*j]:], blocks[mine[j]].Src) })
		if err := s.write(s.dIn, &s.in, in); err != nil {
			return false, err
		}
		if err := s.write(s.dDesc, &s.desc, 16*k); err != nil {
			return false, err
		}
		if err := d.launch(s, s.kLZ4Enc, k*lz4Local, lz4Local, s.dIn, s.dOut, s.dDesc, s.dRes); err != nil {
			return false, err
		}
		if err := s.read(&s.out, s.dOut, in); err != nil {
			return false, err
		}
		if err := s.read(&s.res, s.dRes, 4*k); err != nil {
			return false, err
		}
		s.kernelBytes = int64(in)
		s.collect = func() {
			n := unsafe.Slice((*int32)(unsafe.Pointer(&s.res.b[0])), k)
			parallel(k, func(j int) {
				b := &blocks[mine[j]]
				if n[j] < 0 {
					b.Codec, b.Stored = format.CodecRaw, b.Src
					return
				}
				o := desc[4*j+2]
				b.Codec, b.Stored = format.CodecLZ4, bytes.Clone(s.out.b[o:o+uint32(n[j])])
			})
		}
		return next < len(idx), nil
	})
	return rest, err
}
