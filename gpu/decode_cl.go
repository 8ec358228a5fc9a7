//go:build !noopencl

package gpu

import "unsafe"

// decodeBatch decodes the LZ4 and lz4x blocks blocks[idx[k]] on the device
// (lz4_decode for blocks under d.parMin raw bytes, lz4_decode_par for the
// rest) and returns those it did not decode: blocks too large for a slot
// and blocks the kernel rejected, which the caller redoes on the CPU (whose
// error is then the one reported). Blocks it returns not are done, Err nil.
func (d *device) decodeBatch(blocks []Block, idx []int) (rest []int, err error) {
	next := 0
	err = d.run(func(s *slot) (bool, error) {
		desc := u32s(&s.desc)
		// Blocks for lz4_decode first, then those for lz4_decode_par.
		var mine, large []int
		var largeDesc [][5]uint32
		in, out := 0, 0
		for next < len(idx) && len(mine)+len(large) < d.maxN {
			b := &blocks[idx[next]]
			sn, dn := (len(b.Src)+15)&^15, (len(b.Dst)+15)&^15
			if sn > d.batch || dn > d.batch || len(b.Dst) == 0 {
				rest = append(rest, idx[next])
				next++
				continue
			}
			if in+sn > d.batch || out+dn > d.batch {
				break
			}
			e := [5]uint32{uint32(in), uint32(len(b.Src)), uint32(out), uint32(len(b.Dst)), uint32(b.Codec)}
			if d.parMin >= 0 && len(b.Dst) >= d.parMin {
				large = append(large, idx[next])
				largeDesc = append(largeDesc, e)
			} else {
				copy(desc[5*len(mine):], e[:])
				mine = append(mine, idx[next])
			}
			in += sn
			out += dn
			next++
		}
		small := len(mine)
		for j, e := range largeDesc {
			copy(desc[5*(small+j):], e[:])
		}
		mine = append(mine, large...)
		if len(mine) == 0 {
			return next < len(idx), nil
		}
		parallel(len(mine), func(j int) {
			copy(s.in.b[desc[5*j]:], blocks[mine[j]].Src)
		})
		k := len(mine)
		if err := s.write(s.dIn, &s.in, in); err != nil {
			return false, err
		}
		if err := s.write(s.dDesc, &s.desc, 20*k); err != nil {
			return false, err
		}
		if small > 0 {
			if err := d.launch(s, s.kLZ4, small*d.lz4WG, d.lz4WG, s.dIn, s.dOut, s.dDesc, s.dRes); err != nil {
				return false, err
			}
		}
		if k > small {
			// The token bitmaps go to the compression scratch (a
			// block's at word soff/16, segScratch >= d.batch/4 bytes).
			if err := d.launch(s, s.kLZ4Par, (k-small)*d.parWG, d.parWG, s.dIn, s.dOut, s.dDesc, s.dRes, s.dScratch, uint32(small)); err != nil {
				return false, err
			}
		}
		if err := s.read(&s.out, s.dOut, out); err != nil {
			return false, err
		}
		if err := s.read(&s.res, s.dRes, 4*k); err != nil {
			return false, err
		}
		s.kernelBytes = int64(out)
		s.collect = func() {
			status := unsafe.Slice((*int32)(unsafe.Pointer(&s.res.b[0])), k)
			parallel(k, func(j int) {
				b := &blocks[mine[j]]
				if status[j] != 0 {
					return
				}
				o := desc[5*j+2]
				copy(b.Dst, s.out.b[o:o+uint32(len(b.Dst))])
				b.Err = nil
			})
			for j := range mine {
				if status[j] != 0 {
					rest = append(rest, mine[j])
				}
			}
		}
		return next < len(idx), nil
	})
	return rest, err
}
