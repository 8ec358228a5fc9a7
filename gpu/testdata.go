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
