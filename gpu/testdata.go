package gpu

// testBytes returns n pseudo-random bytes (xorshift), the same for a seed.
func testBytes(n int, seed uint64) []byte {
	b := make([]byte, n)
	x := seed*0x9E3779B97F4A7C15 + 1
	for i := range b {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		b[i] = byte(x >> 32)
	}
	return b
}

// compressible returns n bytes that LZ4 compresses about 2:1: words drawn
// from a small vocabulary, with short and long repeats and runs.
func compressible(n int, seed uint64) []byte {
	words := []string{"block", "frame", "volume", "index", "the ", "of ", "arc ", "\n", "0123", "    ", "func ", "return ", "err != nil"}
	r := testBytes(n+16, seed)
	b := make([]byte, 0, n+16)
	for i := 0; len(b) < n; i++ {
		switch v := r[i%len(r)]; {
		case v < 200:
			b = append(b, words[int(v)%len(words)]...)
		case v < 230:
			b = append(b, r[i:i+8]...)
		default:
			for k := 0; k < int(v)-200; k++ {
				b = append(b, 'z')
			}
		}
	}
	return b[:n]
}

// seq appends one LZ4 sequence (literals, then a match of length ml at
// offset off; ml == 0 for the last sequence) to src, and its output to raw.
func seq(src, raw, lit []byte, off, ml int) ([]byte, []byte) {
	return seqW(src, raw, lit, off, ml, 2)
}

// seqW is seq with offsets of offBytes bytes (3 for lz4x).
func seqW(src, raw, lit []byte, off, ml, offBytes int) ([]byte, []byte) {
	ext := func(n int) {
		for ; n >= 255; n -= 255 {
			src = append(src, 255)
		}
		src = append(src, byte(n))
	}
	tok := byte(min(len(lit), 15)) << 4
	if ml > 0 {
		tok |= byte(min(ml-4, 15))
	}
	src = append(src, tok)
	if len(lit) >= 15 {
		ext(len(lit) - 15)
	}
	src = append(src, lit...)
	raw = append(raw, lit...)
	if ml == 0 {
		return src, raw
	}
	src = append(src, byte(off), byte(off>>8))
	if offBytes == 3 {
		src = append(src, byte(off>>16))
	}
	if ml-4 >= 15 {
		ext(ml - 4 - 15)
	}
	for i := 0; i < ml; i++ {
		if off > len(raw) { // an invalid block, built to be rejected
			raw = append(raw, 0)
			continue
		}
		raw = append(raw, raw[len(raw)-off])
	}
	return src, raw
}
