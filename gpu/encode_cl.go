//go:build !noopencl

package gpu

import (
	"bytes"
	"unsafe"

	"arc/format"

	"github.com/jgillich/go-opencl/cl"
)

// encodeBatch compresses blocks[idx[k]] on the device, with the smaller
// tables of lz4_match_fast when fast is set, and returns those left to the
// CPU (larger than a slot). Blocks that do not shrink are stored raw, as
// the CPU encoder does.
func (d *device) encodeBatch(blocks []EncBlock, idx []int, fast bool) (rest []int, err error) {
	// kMatch returns the search kernel, its work-items per segment and
	// its work-group size.
	kMatch := func(s *slot) (*cl.Kernel, int, int) {
		k, wg := s.kMatchDef, d.matchWG[1]
		if fast {
			k, wg = s.kMatchFast, d.matchWG[0]
		}
		if d.coop {
			return k, coopLanes, coopLanes
		}
		return k, 1, wg
	}
	next := 0
	err = d.run(func(s *slot) (bool, error) {
		desc := u32s(&s.desc)
		var mine []int
		in, segs := 0, 0
		maxSegs := d.maxSegs()
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
			ns := (len(b.Src) + encSeg - 1) / encSeg
			if in+n > d.batch || segs+ns > maxSegs {
				break
			}
			j := len(mine)
			// Output goes at the same offset; it must come out smaller.
			copy(desc[6*j:6*j+6], []uint32{uint32(in), uint32(len(b.Src)), uint32(in), uint32(len(b.Src) - 1), uint32(segs), uint32(ns)})
			mine = append(mine, idx[next])
			in += n
			segs += ns
			next++
		}
		if len(mine) == 0 {
			return next < len(idx), nil
		}
		k := len(mine)
		sdoff := 6 * k
		for j := 0; j < k; j++ {
			for g := desc[6*j+4]; g < desc[6*j+4]+desc[6*j+5]; g++ {
				desc[sdoff+int(g)] = uint32(j)
			}
		}
		parallel(k, func(j int) { copy(s.in.b[desc[6*j]:], blocks[mine[j]].Src) })
		if err := s.write(s.dIn, &s.in, in); err != nil {
			return false, err
		}
		if err := s.write(s.dDesc, &s.desc, 4*(sdoff+segs)); err != nil {
			return false, err
		}
		k1, per, wg := kMatch(s)
		if err := d.launch(s, k1, segs*per, wg, s.dIn, s.dScratch, s.dDesc, uint32(sdoff), uint32(segs), s.dInfo); err != nil {
			return false, err
		}
		if err := d.launch(s, s.kJoin, k*joinLocal, joinLocal, s.dIn, s.dScratch, s.dOut, s.dDesc, s.dInfo, s.dRes); err != nil {
			return false, err
		}
		last := len(s.kernels) - 1
		s.joins = append(s.joins, s.kernels[last])
		s.kernels = s.kernels[:last]
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
				o := desc[6*j+2]
				b.Codec, b.Stored = format.CodecLZ4, bytes.Clone(s.out.b[o:o+uint32(n[j])])
			})
		}
		return next < len(idx), nil
	})
	return rest, err
}

// joinLocal is lz4_join's work-group size: the copies of one block.
const joinLocal = 64
