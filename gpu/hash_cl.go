//go:build !noopencl

package gpu

// hashBatch hashes inputs on the device into out. Inputs larger than one
// slot's buffer are hashed on the CPU (whole-file identity of huge files is
// a streaming job, not a batch one).
func (d *device) hashBatch(inputs [][]byte, out [][32]byte) error {
	next := 0
	var big []int
	err := d.run(func(s *slot) (bool, error) {
		desc := u32s(&s.desc)
		off, chunks := 0, 0
		type item struct{ in, off int }
		var items []item
		for next < len(inputs) && len(items) < d.maxN {
			n := len(inputs[next])
			padded := max(64, (n+63)&^63)
			if padded > d.batch {
				big = append(big, next)
				next++
				continue
			}
			if off+padded > d.batch {
				break
			}
			items = append(items, item{next, off})
			off += padded
			chunks += max(1, (n+1023)/1024)
			next++
		}
		if len(items) == 0 {
			return next < len(inputs), nil
		}
		k := len(items)
		mapOff := 3 * k
		c := 0
		multi := false
		for j, it := range items {
			n := len(inputs[it.in])
			nc := max(1, (n+1023)/1024)
			desc[3*j], desc[3*j+1], desc[3*j+2] = uint32(it.off), uint32(n), uint32(c)
			for x := 0; x < nc; x++ {
				desc[mapOff+c+x] = uint32(j)
			}
			c += nc
			multi = multi || nc > 1
		}
		parallel(k, func(j int) {
			it := items[j]
			n := copy(s.in.b[it.off:], inputs[it.in])
			end := it.off + max(64, (n+63)&^63)
			clear(s.in.b[it.off+n : end])
		})
		if err := s.write(s.dIn, &s.in, off); err != nil {
			return false, err
		}
		if err := s.write(s.dDesc, &s.desc, 4*(mapOff+chunks)); err != nil {
			return false, err
		}
		if err := d.launch(s, s.kChunks, chunks, localSize, s.dIn, s.dDesc, uint32(mapOff), uint32(chunks), s.dCV, s.dOut); err != nil {
			return false, err
		}
		if multi {
			if err := d.launch(s, s.kParents, k*localSize, localSize, s.dDesc, s.dCV, s.dTmp, s.dOut); err != nil {
				return false, err
			}
		}
		if err := s.read(&s.out, s.dOut, 32*k); err != nil {
			return false, err
		}
		s.kernelBytes = int64(off)
		s.collect = func() {
			for j, it := range items {
				copy(out[it.in][:], s.out.b[32*j:32*j+32])
			}
		}
		return next < len(inputs), nil
	})
	if err != nil {
		return err
	}
	cpuHashIdx(inputs, out, big)
	return nil
}

func cpuHashIdx(inputs [][]byte, out [][32]byte, idx []int) {
	if len(idx) == 0 {
		return
	}
	sub := make([][]byte, len(idx))
	res := make([][32]byte, len(idx))
	for k, i := range idx {
		sub[k] = inputs[i]
	}
	cpuHash(sub, res)
	for k, i := range idx {
		out[i] = res[k]
	}
}
