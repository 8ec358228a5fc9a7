package codec

import (
	"bytes"
	"errors"
	"testing"

	"arc/format"

	"github.com/pierrec/lz4/v4"
)

// FuzzDecodeLZ4X feeds arbitrary bytes to both lz4x decoders (the assembly
// one where there is one, and the portable one): neither may panic or write
// outside dst (dst sits inside a larger buffer whose margins are checked),
// and they must agree on success and output.
func FuzzDecodeLZ4X(f *testing.F) {
	e, _ := NewEncoder(Options{Codec: "lz4x", Level: LevelHigh})
	m := newMatcher(levels[LevelDefault].Near)
	for _, s := range [][]byte{[]byte("hello hello hello hello hello hello"), bytes.Repeat([]byte{0}, 300), []byte("abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz")} {
		dst := make([]byte, len(s))
		if n, _ := m.compress(dst, s, len(s)); n > 0 {
			f.Add(dst[:n], uint16(len(s)))
		}
		_, st := e.Encode(s)
		f.Add(bytes.Clone(st), uint16(len(s)))
	}
	f.Add([]byte{0x1f, 'a', 1, 0, 0, 255, 10, 0x00}, uint16(300))
	f.Add([]byte{0x10, 'a', 1, 0, 0}, uint16(5)) // ends right after a match
	f.Fuzz(func(t *testing.T, src []byte, size uint16) {
		const margin = 64
		buf1 := bytes.Repeat([]byte{0xAA}, int(size)+2*margin)
		buf2 := bytes.Clone(buf1)
		err1 := decodeLZ4X(buf1[margin:margin+int(size)], src)
		err2 := decodeLZ4XGo(buf2[margin:margin+int(size)], src)
		for _, b := range [][]byte{buf1, buf2} {
			for i := 0; i < margin; i++ {
				if b[i] != 0xAA || b[len(b)-1-i] != 0xAA {
					t.Fatal("decoder wrote outside dst")
				}
			}
		}
		if (err1 == nil) != (err2 == nil) {
			t.Fatalf("decoders disagree: asm %v, go %v", err1, err2)
		}
		if err1 == nil && !bytes.Equal(buf1, buf2) {
			t.Fatal("decoders disagree on output")
		}
	})
}

// FuzzRoundTrip checks encode→decode equality for every codec and level.
func FuzzRoundTrip(f *testing.F) {
	f.Add([]byte("hello hello hello hello hello hello"), uint8(0))
	f.Add(bytes.Repeat([]byte("abc"), 100), uint8(7))
	f.Add(make([]byte, 1000), uint8(9))
	encs := make([]*Encoder, len(allOptions))
	for i, o := range allOptions {
		encs[i], _ = NewEncoder(o)
	}
	d := NewDecoder()
	f.Fuzz(func(t *testing.T, src []byte, which uint8) {
		e := encs[int(which)%len(encs)]
		id, stored := e.Encode(src)
		if id != format.CodecRaw && len(stored) >= len(src) {
			t.Fatalf("codec %d stored %d bytes for %d", id, len(stored), len(src))
		}
		dst := make([]byte, len(src))
		if err := d.Decode(id, dst, stored); err != nil {
			t.Fatalf("codec %d: %v", id, err)
		}
		if !bytes.Equal(dst, src) {
			t.Fatalf("codec %d: round trip differs", id)
		}
	})
}

// FuzzDecode feeds arbitrary stored bytes to Decoder.Decode under every
// codec id the format knows (raw, lz4, lz4x, zstd) and one it does not:
// no panic, no write outside dst (its margins are checked), and success
// only for exactly the raw size. What decodes must also pass the block
// checksum path the reader takes, so Checksum runs on it.
func FuzzDecode(f *testing.F) {
	src := []byte("hello hello hello hello hello hello, arc fuzzes every block codec")
	for _, o := range allOptions {
		e, err := NewEncoder(o)
		if err != nil {
			f.Fatal(err)
		}
		id, st := e.Encode(src)
		f.Add(id, bytes.Clone(st), uint16(len(src)))
	}
	f.Add(uint8(format.CodecRaw), []byte("abc"), uint16(3))
	f.Add(uint8(format.CodecZstd), []byte{0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x58, 0x00, 0x00}, uint16(0))
	f.Add(uint8(4), []byte{1}, uint16(1))
	d := NewDecoder()
	f.Fuzz(func(t *testing.T, id uint8, stored []byte, size uint16) {
		const margin = 64
		buf := bytes.Repeat([]byte{0xAA}, int(size)+2*margin)
		dst := buf[margin : margin+int(size)]
		err := d.Decode(id%5, dst, stored)
		for i := 0; i < margin; i++ {
			if buf[i] != 0xAA || buf[len(buf)-1-i] != 0xAA {
				t.Fatalf("codec %d wrote outside dst", id%5)
			}
		}
		if err != nil {
			if !errors.Is(err, ErrBlock) {
				t.Fatalf("codec %d: error %v does not wrap ErrBlock", id%5, err)
			}
			return
		}
		if id%5 > format.CodecZstd {
			t.Fatalf("unknown codec %d decoded", id%5)
		}
		_ = Checksum(dst)
	})
}

// FuzzDecompressIndex feeds arbitrary stored bytes and a claimed raw size
// (up to the format's limit) to the index decompressor: no panic, no
// allocation of the claim up front (a hostile footer may claim 16 GiB of a
// few bytes), and success only for exactly the claimed size with the
// index magic.
func FuzzDecompressIndex(f *testing.F) {
	raw := append(append([]byte{}, format.IndexMagic[:]...), []byte("an encoded index follows the magic")...)
	st, err := CompressIndex(raw)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(st, uint64(len(raw)))
	f.Add(st, uint64(format.MaxIndexSize))
	f.Add(st, uint64(len(raw)-1))
	f.Add([]byte{0x28, 0xb5, 0x2f, 0xfd}, uint64(8))
	f.Fuzz(func(t *testing.T, stored []byte, rawSize uint64) {
		out, err := DecompressIndex(stored, rawSize%(format.MaxIndexSize+2))
		if err != nil {
			return
		}
		if uint64(len(out)) != rawSize%(format.MaxIndexSize+2) || !bytes.HasPrefix(out, format.IndexMagic[:]) {
			t.Fatalf("accepted %d bytes for a claim of %d", len(out), rawSize)
		}
	})
}

// FuzzGreedyNear checks greedyNear (levels fast and default) against the
// general greedy scan on arbitrary bytes, cut into two blocks that go
// through one table, with the window of the near finder or a smaller one.
func FuzzGreedyNear(f *testing.F) {
	f.Add([]byte("hello hello hello hello hello hello"), uint16(7), uint16(0))
	f.Add(bytes.Repeat([]byte("abcdefgh"), 100), uint16(300), uint16(17))
	f.Add(bytes.Repeat([]byte{0}, 3000), uint16(1000), uint16(0))
	f.Fuzz(func(t *testing.T, src []byte, cut, win uint16) {
		for _, l := range []Level{LevelFast, LevelDefault} {
			near, gen := newMatcher(levels[l].Near), newMatcher(levels[l].Near)
			blocks := [][]byte{src[:int(cut)%(len(src)+1)], src[int(cut)%(len(src)+1):]}
			for _, b := range blocks {
				window := min(maxOffsetLZ4, len(b)-1)
				if win > 0 {
					window = min(window, int(win))
				}
				out := [2][]byte{
					scanBlock(near, make([]byte, len(b)), b, window, true),
					scanBlock(gen, make([]byte, len(b)), b, window, false),
				}
				if !bytes.Equal(out[0], out[1]) {
					t.Fatalf("level %s, %d bytes, window %d: greedyNear wrote %d bytes, greedy %d", l, len(b), window, len(out[0]), len(out[1]))
				}
				if out[0] != nil {
					dst := make([]byte, len(b))
					if n, err := lz4.UncompressBlock(out[0], dst); err != nil || n != len(b) || !bytes.Equal(dst, b) {
						t.Fatalf("level %s: output does not decode with pierrec/lz4: %v", l, err)
					}
				}
			}
		}
	})
}

// FuzzHashChain runs the hash-chain parse of levels high and max (near
// and far finders, with windows down to a few bytes) on arbitrary bytes
// cut into two blocks through one matcher: the output must decode to the
// input and keep LZ4's end rules, and the second block must come out as
// it does from a matcher that compressed other blocks before (the
// matchers live across inputs: their tables are large). Small inputs
// reach the far table only through finders scaled down to them: a chain
// of 8 links (so "far" starts at 8 bytes back) and a 64-entry far table
// filled at every 1st, 3rd or 8th position, or seeds at 1 in 2 or 4.
func FuzzHashChain(f *testing.F) {
	f.Add([]byte("hello hello hello hello hello hello"), uint16(7), uint16(0))
	f.Add(bytes.Repeat([]byte("abcdefgh"), 100), uint16(300), uint16(17))
	f.Add(bytes.Repeat([]byte{0}, 3000), uint16(1000), uint16(0))
	f.Add([]byte("abcabcabdabcabcabdabcabcabcabdabdabd0123456789abcabcabd"), uint16(20), uint16(9))
	var finders []matchParams
	for _, l := range []Level{LevelHigh, LevelMax} {
		finders = append(finders, levels[l].Near, *levels[l].Far)
	}
	for _, step := range []int{1, 3, 8} {
		p := *levels[LevelMax].Far
		p.ChainLog, p.HashLog, p.FarLog, p.FarStep = 3, 6, 6, step
		finders = append(finders, p)
	}
	for _, seedLog := range []int{1, 2} {
		p := *levels[LevelHigh].Far
		p.ChainLog, p.HashLog, p.FarLog, p.SeedLog = 3, 6, 6, seedLog
		finders = append(finders, p)
	}
	both, second := make([]*matcher, len(finders)), make([]*matcher, len(finders))
	for k, p := range finders {
		both[k], second[k] = newMatcher(p), newMatcher(p)
	}
	d := NewDecoder()
	f.Fuzz(func(t *testing.T, src []byte, cut, win uint16) {
		for k, p := range finders {
			m := both[k]
			c := int(cut) % (len(src) + 1)
			for j, b := range [][]byte{src[:c], src[c:]} {
				window := min(p.Window, len(b)-1)
				if win > 0 {
					window = min(window, int(win))
				}
				if window < 1 {
					continue
				}
				dst := make([]byte, len(b))
				n, maxOff := m.compress(dst, b, window)
				if j == 1 {
					want := make([]byte, len(b))
					if n2, _ := second[k].compress(want, b, window); n2 != n || !bytes.Equal(want[:max(n2, 0)], dst[:max(n, 0)]) {
						t.Fatalf("finder %d: the second block depends on the first", k)
					}
				}
				if n < 0 {
					continue
				}
				id := uint8(format.CodecLZ4X)
				if window <= maxOffsetLZ4 {
					id = format.CodecLZ4
				}
				if maxOff > window {
					t.Fatalf("finder %d: offset %d past the window %d", k, maxOff, window)
				}
				if err := CheckEndRules(id, dst[:n], len(b)); err != nil {
					t.Fatalf("finder %d: %v", k, err)
				}
				out := make([]byte, len(b))
				if err := d.Decode(id, out, dst[:n]); err != nil || !bytes.Equal(out, b) {
					t.Fatalf("finder %d, %d bytes, window %d: round trip failed: %v", k, len(b), window, err)
				}
			}
		}
	})
}
