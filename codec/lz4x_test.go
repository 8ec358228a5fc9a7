package codec

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"testing"

	"arc/format"

	"github.com/pierrec/lz4/v4"
)

// corpus returns named inputs covering the shapes blocks take: text,
// binaries, zeros, random bytes, and repeats at distances around the two
// window limits (64 KiB for lz4, 16 MiB for lz4x).
func corpus(t testing.TB, long bool) map[string][]byte {
	t.Helper()
	r := rand.New(rand.NewPCG(1, 2))
	random := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		return b
	}
	// repeat puts the same random chunk at distance dist.
	repeat := func(dist, chunk int) []byte {
		b := make([]byte, dist+chunk)
		for i := range b {
			b[i] = byte(i * 7) // compressible filler with a short period
		}
		c := random(chunk)
		copy(b, c)
		copy(b[dist:], c)
		return b
	}
	c := map[string][]byte{
		"empty":       {},
		"one":         {42},
		"zeros-1M":    make([]byte, 1<<20),
		"random-256K": random(256 << 10),
		"text":        bytes.Repeat([]byte("the quick brown fox jumps over the lazy dog; "), 3000),
		"period-3":    bytes.Repeat([]byte{1, 2, 3}, 50000),
		"near-64K":    repeat(65535, 1000),
		"at-64K":      repeat(65536, 1000),
		"over-64K":    repeat(65537+100, 1000),
	}
	var half []byte
	half = append(half, random(100<<10)...)
	half = append(half, c["text"]...)
	half = append(half, random(100<<10)...)
	c["mixed"] = half
	if long {
		c["near-16M"] = repeat(MaxOffsetLZ4X, 4096)
		c["over-16M"] = repeat(MaxOffsetLZ4X+1, 4096)
	}
	for _, dir := range []string{filepath.Join(runtime.GOROOT(), "bin"), filepath.Join(runtime.GOROOT(), "src", "fmt")} {
		ents, _ := os.ReadDir(dir)
		for i, e := range ents {
			if i >= 3 || !e.Type().IsRegular() {
				continue
			}
			b, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err != nil {
				continue
			}
			if len(b) > 4<<20 {
				b = b[:4<<20]
			}
			c[filepath.Base(dir)+"/"+e.Name()] = b
		}
	}
	return c
}

var allOptions = func() []Options {
	var o []Options
	for _, c := range Codecs {
		for l := LevelFast; l <= LevelMax; l++ {
			o = append(o, Options{Codec: c, Level: l})
		}
	}
	return o
}()

func roundTrip(t testing.TB, e *Encoder, d *Decoder, src []byte) (uint8, []byte) {
	t.Helper()
	id, stored := e.Encode(src)
	stored = bytes.Clone(stored)
	if id != format.CodecRaw && len(stored) >= len(src) {
		t.Fatalf("codec %d stored %d bytes for %d raw", id, len(stored), len(src))
	}
	dst := make([]byte, len(src))
	if err := d.Decode(id, dst, stored); err != nil {
		t.Fatalf("decode codec %d (%d -> %d bytes): %v", id, len(src), len(stored), err)
	}
	if !bytes.Equal(dst, src) {
		t.Fatalf("codec %d: decoded bytes differ", id)
	}
	return id, stored
}

func TestRoundTripEveryCodecAndLevel(t *testing.T) {
	c := corpus(t, false)
	d := NewDecoder()
	for _, o := range allOptions {
		e, err := NewEncoder(o)
		if err != nil {
			t.Fatal(err)
		}
		for name, src := range c {
			t.Run(fmt.Sprintf("%s-%s/%s", o.Codec, o.Level, name), func(t *testing.T) {
				roundTrip(t, e, d, src)
			})
		}
	}
}

func TestLZ4XWindowLimits(t *testing.T) {
	if testing.Short() {
		t.Skip("16 MiB inputs")
	}
	c := corpus(t, true)
	d := NewDecoder()
	for _, l := range []Level{LevelHigh, LevelMax} {
		e, _ := NewEncoder(Options{Codec: "lz4x", Level: l})
		for _, name := range []string{"near-16M", "over-16M", "near-64K", "over-64K"} {
			id, stored := roundTrip(t, e, d, c[name])
			t.Logf("%s %s: codec %d, %d -> %d", l, name, id, len(c[name]), len(stored))
			// The 4 KiB random chunk repeats once: within the window it
			// is one match, beyond it it must be stored as literals.
			far := name == "over-16M"
			if !far && len(stored) > len(c[name])/8 {
				t.Errorf("%s %s: repeat within the window not found (%d bytes stored)", l, name, len(stored))
			}
			if far && len(stored) < 8192 {
				t.Errorf("%s: %d bytes stored for two distinct 4 KiB random chunks", name, len(stored))
			}
		}
	}
}

// TestBlockEnds covers every short length and what is left after a match
// near the end of a block.
func TestBlockEnds(t *testing.T) {
	d := NewDecoder()
	encs := map[string]*Encoder{}
	for _, o := range allOptions {
		e, _ := NewEncoder(o)
		encs[o.Codec+"-"+o.Level.String()] = e
	}
	pattern := bytes.Repeat([]byte("abcdefgh"), 64)
	for n := 0; n <= 20; n++ {
		for tail := 0; tail <= 20; tail++ {
			src := append(bytes.Clone(pattern[:n]), make([]byte, 0)...)
			src = append(src, pattern[:200]...)
			src = append(src, bytes.Repeat([]byte{9}, tail)...)
			src = src[len(src)-n-tail:] // lengths 0..40, ending in the run
			for name, e := range encs {
				t.Run(fmt.Sprintf("%s/%d+%d", name, n, tail), func(t *testing.T) { roundTrip(t, e, d, src) })
			}
		}
		for name, e := range encs {
			src := append(bytes.Clone(pattern), pattern[:n]...)
			t.Run(fmt.Sprintf("%s/pattern+%d", name, n), func(t *testing.T) { roundTrip(t, e, d, src) })
		}
	}
}

// TestLZ4XOutputKeepsEndRules checks the LZ4 end-of-block rules on what the
// encoder writes: the last 5 bytes are literals and the last match starts
// at least 12 bytes before the end.
func TestLZ4XOutputKeepsEndRules(t *testing.T) {
	for name, src := range corpus(t, false) {
		for l := LevelFast; l <= LevelMax; l++ {
			p := levels[l].Near
			if levels[l].Far != nil {
				p = *levels[l].Far
			}
			m := newMatcher(p)
			dst := make([]byte, len(src))
			window := min(len(src)-1, p.Window)
			n, _ := m.compress(dst, src, window)
			if n < 0 {
				continue
			}
			offBytes := 3
			if window <= maxOffsetLZ4 {
				offBytes = 2
			}
			lastStart, lastEnd, err := lastMatch(dst[:n], offBytes)
			if err != nil {
				t.Fatalf("%s level %s: %v", name, l, err)
			}
			if lastEnd > len(src)-lastLiterals || (lastEnd > 0 && lastStart > len(src)-mfLimit) {
				t.Errorf("%s level %s: last match [%d,%d) of %d bytes breaks the end rules", name, l, lastStart, lastEnd, len(src))
			}
		}
	}
}

// TestFarMatchAtTheEndKeepsEndRules: a far repeat that runs to the very
// end of the block must still leave its last 5 bytes as literals (the far
// search once took 8 bytes as matching at the last position a match may
// start, 4 bytes from the end).
func TestFarMatchAtTheEndKeepsEndRules(t *testing.T) {
	a := corpus(t, false)["random-256K"]
	src := slices.Concat(a, make([]byte, 20000), a[:12])
	for _, l := range []Level{LevelHigh, LevelMax} {
		p := *levels[l].Far
		m := newMatcher(p)
		dst := make([]byte, len(src))
		// A window over 64 KiB: 3-byte offsets whatever the offsets are.
		n, _ := m.compress(dst, src, len(src)-1)
		if n < 0 {
			t.Fatalf("level %s: the far finder did not shrink the block", l)
		}
		if err := CheckEndRules(format.CodecLZ4X, dst[:n], len(src)); err != nil {
			t.Errorf("level %s: %v", l, err)
		}
	}
}

func TestEncodeIsDeterministic(t *testing.T) {
	c := corpus(t, false)
	names := []string{"text", "mixed", "random-256K", "zeros-1M", "over-64K", "far-5M"}
	// Far repeats in a block large enough for high's and max's far parses.
	c["far-5M"] = levelStream(5<<20, 7, 1)
	for l := LevelFast; l <= LevelMax; l++ {
		a, _ := NewEncoder(Options{Codec: "lz4x", Level: l})
		first := map[string][]byte{}
		for _, n := range names {
			_, s := a.Encode(c[n])
			first[n] = bytes.Clone(s)
		}
		// The same encoder after other blocks, and a fresh one, in another order.
		b, _ := NewEncoder(Options{Codec: "lz4x", Level: l})
		for i := len(names) - 1; i >= 0; i-- {
			for _, e := range []*Encoder{a, b} {
				if _, s := e.Encode(c[names[i]]); !bytes.Equal(s, first[names[i]]) {
					t.Errorf("level %s %s: output depends on the encoder's history", l, names[i])
				}
			}
		}
	}
}

// TestMatcherBaseWrapsAround checks that a matcher whose positions run
// out of 32 bits starts over (tables cleared) with the output of a fresh
// encoder, whatever it compressed before: the near finder of high, and
// both finders of max on a block with far repeats. (A far table left
// uncleared would rarely show here: its stale entries must also match
// the new block's bytes to be taken.)
func TestMatcherBaseWrapsAround(t *testing.T) {
	for _, tc := range []struct {
		level       Level
		before, src []byte
	}{
		{LevelHigh, corpus(t, false)["mixed"], corpus(t, false)["text"]},
		{LevelMax, levelStream(3<<20, 5, 1), levelStream(3<<20, 4, 1)},
	} {
		fresh, _ := NewEncoder(Options{Codec: "lz4x", Level: tc.level})
		id, want := fresh.Encode(tc.src)
		e, _ := NewEncoder(Options{Codec: "lz4x", Level: tc.level})
		e.Encode(tc.before)
		// The next block does not fit: tables cleared.
		e.near.base = uint32(1<<32 - len(tc.src))
		if e.far != nil {
			e.far.base = e.near.base
		}
		if id2, got := e.Encode(tc.src); id2 != id || !bytes.Equal(got, want) {
			t.Fatalf("level %s: output changed when positions wrapped", tc.level)
		}
		if e.near.base != uint32(len(tc.src))+2*baseGap {
			t.Fatalf("level %s: base %d after wrap", tc.level, e.near.base)
		}
		if tc.level == LevelMax && id != format.CodecLZ4X {
			t.Fatalf("level max: codec %d; the test needs lz4x", id)
		}
	}
}

// scanBlock runs one block through m's greedyNear (near) or greedy scan
// as compress does, with dst as room, and returns the sequences written,
// last literals included; nil when dst ran out.
func scanBlock(m *matcher, dst, src []byte, window int, near bool) []byte {
	w := seqWriter{dst: dst[:len(src)], offBytes: 2}
	m.startBlock(len(src))
	defer m.endBlock(len(src))
	anchor := 0
	if len(src) >= mfLimit+1 {
		if near {
			anchor = m.greedyNear(&w, src, window)
		} else {
			anchor, _ = m.greedy(&w, src, window)
		}
	}
	if anchor < 0 || !w.emit(src[anchor:], 0, 0) {
		return nil
	}
	return w.dst[:w.d]
}

// TestGreedyNearIsGreedy checks that greedyNear, the near-only scan of
// levels fast and default, writes what the general greedy scan writes with
// the same settings, block after block through one table (entries of
// earlier blocks must never be used), in blocks cut at odd sizes and on
// blocks so small that the table has no room to fill. It also runs
// greedyNear after greedy on one matcher.
func TestGreedyNearIsGreedy(t *testing.T) {
	c := corpus(t, false)
	var stream []byte
	for _, name := range slices.Sorted(maps.Keys(c)) {
		stream = append(stream, c[name]...)
	}
	for _, l := range []Level{LevelFast, LevelDefault} {
		p := levels[l].Near
		near, gen := newMatcher(p), newMatcher(p)
		dst1, dst2 := make([]byte, 2<<20), make([]byte, 2<<20)
		blocks := 0
		for off, k := 0, 0; off < len(stream); k++ {
			n := []int{13, 100, 4 << 10, 65 << 10, 300 << 10, 1 << 20}[k%6] + k
			src := stream[off:min(off+n, len(stream))]
			off += len(src)
			window := min(maxOffsetLZ4, len(src)-1)
			got := scanBlock(near, dst1, src, window, true)
			want := scanBlock(gen, dst2, src, window, false)
			if !bytes.Equal(got, want) {
				t.Fatalf("level %s block %d (%d bytes at %d): greedyNear wrote %d bytes, greedy %d", l, blocks, len(src), off-len(src), len(got), len(want))
			}
			blocks++
		}
	}
	// A matcher used by greedy with a long window, then by greedyNear.
	src := c["mixed"]
	m, ref := newMatcher(levels[LevelDefault].Near), newMatcher(levels[LevelDefault].Near)
	a, b := make([]byte, len(src)), make([]byte, len(src))
	m.compress(a, src, len(src)-1) // greedy: window over 64 KiB
	n1, _ := m.compress(a, src[:60000], 59999)
	n2, _ := ref.compress(b, src[:60000], 59999)
	if n1 != n2 || !bytes.Equal(a[:max(n1, 0)], b[:max(n2, 0)]) {
		t.Fatal("greedyNear's output depends on what the matcher did before")
	}
}

// TestLZ4BlocksDecodeWithPierrec checks that the lz4x encoder's LZ4-format
// blocks (written when every offset fits in two bytes) are standard LZ4.
func TestLZ4BlocksDecodeWithPierrec(t *testing.T) {
	seen := 0
	for name, src := range corpus(t, false) {
		for l := LevelFast; l <= LevelMax; l++ {
			e, _ := NewEncoder(Options{Codec: "lz4x", Level: l})
			id, stored := e.Encode(src)
			if id != format.CodecLZ4 {
				continue
			}
			seen++
			dst := make([]byte, len(src))
			n, err := lz4.UncompressBlock(stored, dst)
			if err != nil || n != len(src) || !bytes.Equal(dst, src) {
				t.Errorf("%s level %s: pierrec decodes %d bytes, err %v", name, l, n, err)
			}
		}
	}
	if seen == 0 {
		t.Fatal("no block came out as LZ4")
	}
}

// TestLZ4BlocksDecodeWithLZ4Command wraps LZ4 blocks in the legacy LZ4
// frame format (magic 0x184C2102, then blocks of up to 8 MiB, each a 4-byte
// size and the block) and decodes them with the reference `lz4` tool, whose
// decoder also enforces the end-of-block rules.
func TestLZ4BlocksDecodeWithLZ4Command(t *testing.T) {
	bin, err := exec.LookPath("lz4")
	if err != nil {
		t.Skip("no lz4 command")
	}
	c := corpus(t, false)
	var frame, want []byte
	frame = binary.LittleEndian.AppendUint32(frame, 0x184C2102)
	blocks := 0
	for _, o := range []Options{{"lz4x", LevelFast}, {"lz4x", LevelDefault}, {"lz4x", LevelHigh}, {"lz4x", LevelMax}, {"lz4", LevelDefault}, {"lz4", LevelMax}} {
		e, _ := NewEncoder(o)
		for _, name := range []string{"text", "mixed", "zeros-1M", "near-64K", "period-3"} {
			// Legacy frames need every block but the last to be 8 MiB
			// raw; use single-block frames, one per input.
			id, stored := e.Encode(c[name])
			if id != format.CodecLZ4 {
				continue
			}
			f := binary.LittleEndian.AppendUint32(bytes.Clone(frame), uint32(len(stored)))
			f = append(f, stored...)
			blocks++
			out := decodeWithLZ4(t, bin, f)
			if !bytes.Equal(out, c[name]) {
				t.Errorf("%s %s: lz4 command decodes %d bytes, want %d", o.Codec, name, len(out), len(c[name]))
			}
		}
	}
	_ = want
	if blocks == 0 {
		t.Fatal("nothing checked")
	}
}

func decodeWithLZ4(t *testing.T, bin string, frame []byte) []byte {
	t.Helper()
	cmd := exec.Command(bin, "-d", "-c", "-q")
	cmd.Stdin = bytes.NewReader(frame)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("lz4 -d: %v: %s", err, errb.String())
	}
	return out.Bytes()
}

func TestDecodeRejectsBadBlocks(t *testing.T) {
	src := corpus(t, false)["random-256K"][:20000]
	e, _ := NewEncoder(Options{Codec: "lz4x", Level: LevelMax})
	big := append(bytes.Clone(src), make([]byte, 300000)...)
	big = append(big, src...) // a match farther than 64 KiB: lz4x
	id, good := e.Encode(big)
	if id != format.CodecLZ4X {
		t.Fatalf("expected an lz4x block, got codec %d", id)
	}
	good = bytes.Clone(good)
	d := NewDecoder()
	cases := map[string]struct {
		stored []byte
		size   int
	}{
		"truncated":        {good[:len(good)-1], len(big)},
		"half":             {good[:len(good)/2], len(big)},
		"size too small":   {good, len(big) - 1},
		"size too large":   {good, len(big) + 1},
		"empty stored":     {nil, 10},
		"offset zero":      {[]byte{0x10, 'a', 0, 0, 0, 0x00}, 10},
		"offset too far":   {[]byte{0x10, 'a', 2, 0, 0, 0x50, 1, 2, 3, 4, 5}, 10},
		"literal overrun":  {[]byte{0x50, 1, 2, 3, 4, 5}, 4},
		"huge length":      {append([]byte{0xf0}, bytes.Repeat([]byte{255}, 100)...), 10},
		"match past end":   {[]byte{0x1f, 'a', 1, 0, 0, 200, 0x00}, 30},
		"ends after match": {[]byte{0x10, 'a', 1, 0, 0}, 6},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			err := d.Decode(format.CodecLZ4X, make([]byte, c.size), c.stored)
			if !errors.Is(err, ErrBlock) {
				t.Fatalf("got %v, want ErrBlock", err)
			}
		})
	}
	// Flipping any single byte either fails or decodes to exactly the size.
	for i := range good {
		bad := bytes.Clone(good)
		bad[i] ^= 0x5a
		dst := make([]byte, len(big))
		if err := d.Decode(format.CodecLZ4X, dst, bad); err != nil && !errors.Is(err, ErrBlock) {
			t.Fatalf("byte %d: error %v does not wrap ErrBlock", i, err)
		}
	}
}

// A block of raw size 0 may come with a nil dst: the decoders must judge
// the stored bytes, not touch memory at address 0.
func TestDecodeIntoEmptyDst(t *testing.T) {
	hostile := append([]byte{0x10, 'a', 1, 0, 0}, make([]byte, 35)...)
	cases := map[string]struct {
		stored []byte
		ok     bool
	}{
		"empty block":         {[]byte{0x00}, true},
		"one literal":         {[]byte{0x10, 'a'}, false},
		"sequences past 17 B": {hostile, false},
		"long literals":       {append([]byte{0xf0, 40}, make([]byte, 60)...), false},
	}
	d := NewDecoder()
	for _, id := range []uint8{format.CodecLZ4, format.CodecLZ4X} {
		for name, c := range cases {
			for _, dst := range [][]byte{nil, {}} {
				t.Run(fmt.Sprintf("codec %d/%s/nil=%v", id, name, dst == nil), func(t *testing.T) {
					err := d.Decode(id, dst, c.stored)
					if (err == nil) != c.ok {
						t.Fatalf("got %v, want ok=%v", err, c.ok)
					}
				})
			}
		}
	}
}

func TestDecodeOverlappingMatches(t *testing.T) {
	// Hand-made blocks: literals then a match at each small period.
	d := NewDecoder()
	for off := 1; off <= 20; off++ {
		for _, ml := range []int{4, 7, 8, 15, 16, 17, 19, 40, 300} {
			lit := make([]byte, off)
			for i := range lit {
				lit[i] = byte('A' + i)
			}
			want := bytes.Clone(lit)
			for len(want) < off+ml {
				want = append(want, want[len(want)-off])
			}
			want = append(want, "tail!"...)
			w := seqWriter{dst: make([]byte, 1000), offBytes: 3}
			w.emit(lit, off, ml)
			w.emit([]byte("tail!"), 0, 0)
			got := make([]byte, len(want))
			if err := d.Decode(format.CodecLZ4X, got, w.dst[:w.d]); err != nil || !bytes.Equal(got, want) {
				t.Fatalf("off %d len %d: %v %q", off, ml, err, got)
			}
		}
	}
}

func TestZstdRejectsWrongSize(t *testing.T) {
	src := corpus(t, false)["text"]
	e, _ := NewEncoder(Options{Codec: "zstd", Level: LevelDefault})
	id, stored := e.Encode(src)
	if id != format.CodecZstd {
		t.Fatalf("codec %d", id)
	}
	d := NewDecoder()
	for _, n := range []int{len(src) - 1, len(src) + 1, 0} {
		if err := d.Decode(id, make([]byte, n), stored); !errors.Is(err, ErrBlock) {
			t.Errorf("size %d: %v", n, err)
		}
	}
	if err := d.Decode(id, make([]byte, len(src)), stored[:len(stored)-3]); !errors.Is(err, ErrBlock) {
		t.Errorf("truncated: %v", err)
	}
}

func TestOptionsParamsNameTheSettings(t *testing.T) {
	for _, o := range allOptions {
		if err := o.Validate(); err != nil {
			t.Fatal(err)
		}
		kv := o.Params()
		if len(kv) < 2 || kv[0].Key != "codec" || kv[1].Key != "level" {
			t.Fatalf("%v: %v", o, kv)
		}
		if o.Codec != "raw" && len(kv) != 3 {
			t.Errorf("%v: settings missing: %v", o, kv)
		}
	}
	if err := (Options{Codec: "lzma", Level: LevelFast}).Validate(); err == nil {
		t.Error("unknown codec accepted")
	}
}

// TestFormatWorkedExample is the example in docs/FORMAT.md, "Block codecs".
func TestFormatWorkedExample(t *testing.T) {
	stored := []byte{0x38, 'a', 'b', 'c', 0x03, 0x00, 0x00, 0x50, 'V', 'W', 'X', 'Y', 'Z'}
	want := []byte("abcabcabcabcabcVWXYZ")
	for name, dec := range map[string]func(dst, src []byte) error{"asm": decodeLZ4X, "go": decodeLZ4XGo} {
		got := make([]byte, len(want))
		if err := dec(got, stored); err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s: %q, %v", name, got, err)
		}
	}
}
