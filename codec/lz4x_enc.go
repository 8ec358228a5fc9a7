package codec

import (
	"encoding/binary"
	"fmt"
	"math/bits"
)

// matchParams are the match finder's knobs. Levels fix them (see levels);
// they are recorded in the archive's parameters so an archive says how it
// was made. Two finders use them:
//
//   - levels fast and default: a one-candidate greedy scan (greedyNear),
//     a hash table of 2^HashLog positions keyed by HashBytes bytes, which
//     the OpenCL encoder mirrors;
//   - levels high and max (Chain > 0): a hash chain (hc.go) that links
//     every position to the previous one with the same hash, in a ring of
//     2^ChainLog links, and follows up to Chain links per search; with
//     FarLog > 0 a second table of 2^FarLog entries holds every
//     FarStep-th position by its 8 bytes, for matches beyond the chain's
//     64 KiB (lz4x), tried at the first search for each match (and at
//     the searches that move its end too, with FarAll); with SeedLog > 0
//     instead, the far matches are found before the parse at 1 in
//     2^SeedLog positions chosen by their content (farSeeds, through a
//     table of up to 2^FarLog entries) and tried at every search.
//
// And both:
//   - skip acceleration: after a miss the scan advances by
//     1 + (bytes since the last match >> SkipLog), so incompressible data
//     costs few probes;
//   - a match farther than 64 KiB must be at least FarMin bytes long;
//   - Window bounds the offsets searched: 64 KiB - 1 writes standard LZ4,
//     16 MiB - 1 allows lz4x (see levelSpec for which blocks get which).
type matchParams struct {
	HashLog   int
	HashBytes int
	Chain     int
	ChainLog  int
	FarLog    int
	FarStep   int
	FarAll    bool
	SeedLog   int
	SkipLog   int
	FarMin    int
	Window    int
}

func (p matchParams) String() string {
	if p.Chain == 0 {
		return fmt.Sprintf("hashlog=%d hashbytes=%d skiplog=%d farmin=%d window=%d",
			p.HashLog, p.HashBytes, p.SkipLog, p.FarMin, p.Window)
	}
	s := fmt.Sprintf("hashlog=%d hashbytes=%d chain=%d chainlog=%d skiplog=%d", p.HashLog, p.HashBytes, p.Chain, p.ChainLog, p.SkipLog)
	if p.SeedLog > 0 {
		s += fmt.Sprintf(" farlog=%d seedlog=%d farmin=%d", p.FarLog, p.SeedLog, p.FarMin)
	} else if p.FarLog > 0 {
		s += fmt.Sprintf(" farlog=%d farstep=%d farall=%t farmin=%d", p.FarLog, p.FarStep, p.FarAll, p.FarMin)
	}
	return s + fmt.Sprintf(" window=%d", p.Window)
}

// levelSpec is what a level does with a block. Every offset of an lz4x
// block costs a third byte, which pays only when far matches are many
// (large blocks holding near-duplicates of what came megabytes before;
// docs/FORMAT.md), so each level has a Near finder (64 KiB window,
// standard LZ4 output) and may have a Far one (16 MiB window, lz4x
// output, or LZ4 when its offsets happen to fit in two bytes) whose
// output is kept when it is the smaller, or which runs instead of Near
// where its seeds say far repeats are many (SeedGate).
type levelSpec struct {
	Near    matchParams
	Far     *matchParams // nil: never lz4x
	FarFrom int          // blocks of at least this many bytes may run Far
	// SeedGate > 0 (a seeded Far only): the share of a block that Far's
	// seeds (farSeeds) must cover for Far to run, alone; below it Near
	// runs alone. An lz4x sequence costs a byte more, so far matches must
	// cover much to pay, and the seeds say so before either parse runs:
	// one parse a block. SeedGate 0: both run, the smaller is kept.
	SeedGate float64
}

func (l levelSpec) String() string {
	s := "near: " + l.Near.String()
	if l.Far != nil {
		s += fmt.Sprintf("; far: %v; far-from=%d", *l.Far, l.FarFrom)
		if l.SeedGate > 0 {
			s += fmt.Sprintf(" seed-gate=%g", l.SeedGate)
		}
	}
	return s
}

// levels is the lz4x level ladder, chosen by measurement on the Go
// toolchains tree (docs/FORMAT.md): fast and default are one-candidate
// greedy scans with a 64 KiB window (standard LZ4 output, smaller than
// pierrec's fast mode at about its speed); high and max are hash-chain
// parses, 4 and 64 links deep, that also parse large blocks with a
// 16 MiB window (lz4x). High parses a block of 4 MiB or more once: with
// the 16 MiB window where far repeats found at 1 in 16 positions cover
// 19% of it or more, else with 64 KiB (on the distinct Go files at
// 16 MiB blocks the far parse won on every block above 19.3% and lost
// on every one below 18.4%). Max parses every block of 256 KiB and more
// both ways, with a far table probed at every search, and keeps the
// smaller.
var levels = map[Level]levelSpec{
	LevelFast:    {Near: matchParams{HashLog: 13, HashBytes: 5, SkipLog: 6, FarMin: 8, Window: maxOffsetLZ4}},
	LevelDefault: {Near: matchParams{HashLog: 16, HashBytes: 5, SkipLog: 7, FarMin: 8, Window: maxOffsetLZ4}},
	LevelHigh: {
		Near:     hcParams(4, 17),
		Far:      seedParams(hcParams(4, 17), 20, 4),
		FarFrom:  4 << 20,
		SeedGate: 0.19,
	},
	LevelMax: {
		Near:    hcParams(64, 17),
		Far:     farParams(hcParams(64, 17), 22, 4, true),
		FarFrom: 256 << 10,
	},
}

// hcParams are the hash-chain settings of levels high and max: a 4-byte
// hash (LZ4's minimum match) and a chain over the 64 KiB window.
func hcParams(chain, hashLog int) matchParams {
	return matchParams{HashLog: hashLog, HashBytes: 4, Chain: chain, ChainLog: 16, SkipLog: 8, FarMin: 8, Window: maxOffsetLZ4}
}

// seedParams gives p far seeds (farSeeds): the same parse over a 16 MiB
// window, its far matches found ahead at sampled positions.
func seedParams(p matchParams, farLog, seedLog int) *matchParams {
	p.FarLog, p.SeedLog, p.Window = farLog, seedLog, MaxOffsetLZ4X
	return &p
}

// farParams adds a far table to p: the same parse over a 16 MiB window.
func farParams(p matchParams, farLog, farStep int, all bool) *matchParams {
	p.FarLog, p.FarStep, p.FarAll, p.Window = farLog, farStep, all, MaxOffsetLZ4X
	return &p
}

const hashPrime = 0x9E3779B185EBCA87

// matcher is one encoder's match-finding state. Table entries are absolute
// positions base+i; entries below base belong to earlier blocks (and lie
// more than 64 KiB below it, see endBlock) or are empty (0), and are never
// used, so the table is not cleared between blocks and the output does not
// depend on what the encoder compressed before.
type matcher struct {
	p      matchParams
	table  []uint32
	chain  []uint32   // hash-chain levels: each position's predecessor (hc.go)
	far    []uint32   // hash-chain levels with a far table: every FarStep-th position by its 8 bytes
	seed   *seedState // hash-chain levels with seeds (SeedLog > 0; hc.go)
	next   int        // hash-chain levels: the first position not yet linked
	farWin int        // hash-chain levels: the window of the block being compressed
	base   uint32
	shift  uint
}

func newMatcher(p matchParams) *matcher {
	m := &matcher{p: p, table: make([]uint32, 1<<p.HashLog), base: baseGap, shift: uint(64 - p.HashLog)}
	if p.Chain > 0 {
		m.chain = make([]uint32, p.hcSlots())
		if p.SeedLog > 0 {
			m.seed = &seedState{tab: make([]uint32, 1<<p.FarLog)}
		} else if p.FarLog > 0 {
			m.far = make([]uint32, 1<<p.FarLog)
		}
	}
	return m
}

// startBlock makes the positions of a block of n bytes start at m.base.
func (m *matcher) startBlock(n int) {
	if uint64(m.base)+uint64(n)+baseGap >= 1<<32 {
		clear(m.table)
		clear(m.far) // chain links are reached only through the table
		m.base = baseGap
	}
}

// endBlock moves m.base past the block and a gap of baseGap positions, so
// that an entry of an earlier block (or an empty one, 0) is more than
// 64 KiB behind every position of the next: a 64 KiB window check alone
// rejects it (greedyNear relies on this; the others also test c < 0).
func (m *matcher) endBlock(n int) { m.base += uint32(n) + baseGap }

// baseGap is the distance kept between the positions of consecutive blocks.
const baseGap = maxOffsetLZ4 + 2

// seqWriter appends sequences to dst; ok turns false once the output would
// reach the input's size (the block is then stored raw).
type seqWriter struct {
	dst      []byte
	d        int
	offBytes int // 2 (lz4) or 3 (lz4x)
}

func (w *seqWriter) room(n int) bool { return len(w.dst)-w.d >= n }

// emit writes literals lit and a match of length ml at offset off (ml == 0:
// the last sequence). It reports false when dst has no room.
func (w *seqWriter) emit(lit []byte, off, ml int) bool {
	ll := len(lit)
	if !w.room(ll + ll/255 + 2 + w.offBytes + ml/255 + 1) {
		return false
	}
	dst, d := w.dst, w.d
	tokPos := d
	d++
	var tok byte
	if ll >= 15 {
		tok = 15 << 4
		d = putLen(dst, d, ll-15)
	} else {
		tok = byte(ll) << 4
	}
	d += copy(dst[d:], lit)
	if ml > 0 {
		dst[d] = byte(off)
		dst[d+1] = byte(off >> 8)
		if w.offBytes == 3 {
			dst[d+2] = byte(off >> 16)
		}
		d += w.offBytes
		mc := ml - minMatch
		if mc >= 15 {
			tok |= 15
			d = putLen(dst, d, mc-15)
		} else {
			tok |= byte(mc)
		}
	}
	dst[tokPos] = tok
	w.d = d
	return true
}

// putLen writes a length extension: 255s while r >= 255, then the rest.
func putLen(dst []byte, d, r int) int {
	for ; r >= 255; r -= 255 {
		dst[d] = 255
		d++
	}
	dst[d] = byte(r)
	return d + 1
}

// matchLen counts equal bytes of src[a:] and src[b:] (a < b), not past limit
// for b.
func matchLen(src []byte, a, b, limit int) int {
	n := 0
	for b+n+8 <= limit {
		x := binary.LittleEndian.Uint64(src[a+n:]) ^ binary.LittleEndian.Uint64(src[b+n:])
		if x != 0 {
			return n + bits.TrailingZeros64(x)>>3
		}
		n += 8
	}
	for b+n < limit && src[a+n] == src[b+n] {
		n++
	}
	return n
}

// compress encodes src as sequences with offsets up to window into dst
// and returns the length written and the largest offset used (a bound,
// window, when window <= 64 KiB - 1: only the far finder's is looked at);
// n < 0 means the output would not be smaller than src. With window <=
// 64 KiB - 1 the output is standard LZ4 (2-byte offsets), else lz4x.
func (m *matcher) compress(dst, src []byte, window int) (n, maxOff int) {
	if len(dst) > len(src) {
		dst = dst[:len(src)]
	}
	w := seqWriter{dst: dst, offBytes: 3}
	if window <= maxOffsetLZ4 {
		w.offBytes = 2
	}
	m.startBlock(len(src))
	defer m.endBlock(len(src))
	var anchor int
	if len(src) >= mfLimit+1 {
		if m.p.Chain > 0 {
			anchor, maxOff = m.hc(&w, src, window)
		} else if m.p.HashBytes == 5 && window <= maxOffsetLZ4 {
			anchor = m.greedyNear(&w, src, window)
			maxOff = window
		} else {
			anchor, maxOff = m.greedy(&w, src, window)
		}
		if anchor < 0 {
			return -1, 0
		}
	}
	if !w.emit(src[anchor:], 0, 0) || w.d >= len(src) {
		return -1, 0
	}
	return w.d, maxOff
}

// greedy is the one-candidate match finder, the plain form of greedyNear
// (which levels fast and default run, and which is tested against it):
// any hash length and window. The LZ4 "fast" scan.
// One 8-byte load serves probes at i, i+1 and i+2, then the scan skips a
// position (3 of 4 probed) plus the acceleration. It
// returns where the pending literals start (-1 when the output ran out of
// room) and the largest offset used.
func (m *matcher) greedy(w *seqWriter, src []byte, window int) (anchor, maxOff int) {
	table := m.table
	base := int(m.base)
	last := len(src) - mfLimit       // last position a match may start at
	limit := len(src) - lastLiterals // matches end before this
	skipLog := uint(m.p.SkipLog)
	farMin := m.p.FarMin
	hb := 64 - 8*uint(m.p.HashBytes)
	shift := m.shift
	mask := len(table) - 1
	i := 0
	for i+2 <= last {
		x := binary.LittleEndian.Uint64(src[i:])
		h0 := int(((x<<hb)*hashPrime)>>shift) & mask
		h1 := int((((x>>8)<<hb)*hashPrime)>>shift) & mask
		c := int(table[h0]) - base
		c1 := int(table[h1]) - base
		table[h0] = uint32(base + i)
		table[h1] = uint32(base + i + 1)
		// c >= i happens after a rejected far match: i+1 was inserted.
		if c < 0 || c >= i || i-c > window || binary.LittleEndian.Uint32(src[c:]) != uint32(x) {
			i++
			c = c1
			if c < 0 || c >= i || i-c > window || binary.LittleEndian.Uint32(src[c:]) != uint32(x>>8) {
				h2 := int((((x>>16)<<hb)*hashPrime)>>shift) & mask
				c = int(table[h2]) - base
				i++
				table[h2] = uint32(base + i)
				if c < 0 || c >= i || i-c > window || binary.LittleEndian.Uint32(src[c:]) != uint32(x>>16) {
					i += 2 + (i-anchor)>>skipLog
					continue
				}
			}
		}
		off := i - c
		ml := minMatch + matchLen(src, c+minMatch, i+minMatch, limit)
		if off > maxOffsetLZ4 && ml < farMin {
			i++
			continue
		}
		i, ml = extendBack(src, anchor, i, c, ml)
		if !w.emit(src[anchor:i], off, ml) {
			return -1, 0
		}
		maxOff = max(maxOff, off)
		i += ml
		anchor = i
		if i-2 <= last {
			// Feed the table with the match's tail, as LZ4 does.
			x := binary.LittleEndian.Uint64(src[i-2:])
			table[int(((x<<hb)*hashPrime)>>shift)&mask] = uint32(base + i - 2)
		}
	}
	return anchor, maxOff
}

// greedyNear is greedy for one-candidate finders with a 5-byte hash and
// a window of at most 64 KiB - 1 (levels fast and default): the same scan
// and the same output (TestGreedyNearIsGreedy), written for speed: loads
// without bounds checks (load_le.go), a candidate tested by one unsigned
// compare (offset in [1, window]: entries of earlier blocks are farther,
// see endBlock), no far-match test, the match length inline, and
// sequences of up to 14 literals and a match of up to 18 bytes written
// with fixed-size copies. On the first 100 MB of the distinct Go files,
// 1 MiB blocks, one core: fast 330 -> 484 MB/s, default 234 -> 326. It
// returns where the pending literals start, -1 when dst ran out of room.
func (m *matcher) greedyNear(w *seqWriter, src []byte, window int) (anchor int) {
	// Every access below is in range: i <= last keeps i+8 <= len(src); a
	// candidate passed the window test is an entry of this block (endBlock),
	// so 0 <= i-off < i; table indices are hashes of HashLog bits and
	// len(table) = 2^HashLog (Bucket 1); the match length's loads end
	// before limit; the short-sequence path checks its room in dst and src.
	table := m.table[:1<<m.p.HashLog]
	base := int(m.base)
	last := len(src) - mfLimit       // last position a match may start at
	limit := len(src) - lastLiterals // matches end before this
	skipLog := uint(m.p.SkipLog) & 63
	shift := m.shift & 63
	win := uint(window)
	dst := w.dst
	d := w.d
	i := 0
	for i+2 <= last {
		x := load64(src, i)
		t0 := tableAt(table, ((x<<24)*hashPrime)>>shift)
		t1 := tableAt(table, (((x>>8)<<24)*hashPrime)>>shift)
		p := base + i
		c0, c1 := int(*t0), int(*t1)
		*t0 = uint32(p)
		*t1 = uint32(p + 1)
		off := p - c0
		if uint(off-1) >= win || load32(src, i-off) != uint32(x) {
			i++
			off = p + 1 - c1
			if uint(off-1) >= win || load32(src, i-off) != uint32(x>>8) {
				t2 := tableAt(table, (((x>>16)<<24)*hashPrime)>>shift)
				c2 := int(*t2)
				*t2 = uint32(p + 2)
				i++
				off = p + 2 - c2
				if uint(off-1) >= win || load32(src, i-off) != uint32(x>>16) {
					i += 2 + (i-anchor)>>skipLog
					continue
				}
			}
		}
		c := i - off
		ml := minMatch
		for {
			if i+ml+8 > limit {
				for i+ml < limit && src[c+ml] == src[i+ml] {
					ml++
				}
				break
			}
			if y := load64(src, c+ml) ^ load64(src, i+ml); y != 0 {
				ml += bits.TrailingZeros64(y) >> 3
				break
			}
			ml += 8
		}
		for i > anchor && c > 0 && src[i-1] == src[c-1] {
			i--
			c--
			ml++
		}
		ll := i - anchor
		if ll < 15 && ml < 15+minMatch && len(dst)-d >= 19 && anchor+16 <= len(src) {
			// token, up to 14 literals (16 copied), 2-byte offset
			dst[d] = byte(ll<<4 | (ml - minMatch))
			store64(dst, d+1, load64(src, anchor))
			store64(dst, d+9, load64(src, anchor+8))
			d += 1 + ll
			store16(dst, d, uint16(off))
			d += 2
		} else {
			w.d = d
			if !w.emit(src[anchor:i], off, ml) {
				return -1
			}
			d = w.d
		}
		i += ml
		anchor = i
		if i-2 <= last {
			// Feed the table with the match's tail, as LZ4 does.
			*tableAt(table, ((load64(src, i-2)<<24)*hashPrime)>>shift) = uint32(base + i - 2)
		}
	}
	w.d = d
	return anchor
}

// extendBack grows a match at i (candidate c) backwards over pending
// literals, which start at anchor.
func extendBack(src []byte, anchor, i, c, ml int) (int, int) {
	for i > anchor && c > 0 && src[i-1] == src[c-1] {
		i--
		c--
		ml++
	}
	return i, ml
}

// lz4xToLZ4 rewrites, in place, an lz4x block whose offsets all fit in two
// bytes as a standard LZ4 block, one byte shorter per match. It returns the
// new length.
func lz4xToLZ4(b []byte) int {
	r, w := 0, 0
	for {
		tok := b[r]
		b[w] = tok
		r++
		w++
		lit := int(tok >> 4)
		if lit == 15 {
			for {
				x := b[r]
				b[w] = x
				r++
				w++
				lit += int(x)
				if x != 255 {
					break
				}
			}
		}
		copy(b[w:w+lit], b[r:r+lit])
		r += lit
		w += lit
		if r == len(b) {
			return w
		}
		b[w], b[w+1] = b[r], b[r+1]
		r += 3
		w += 2
		if tok&15 == 15 {
			for {
				x := b[r]
				b[w] = x
				r++
				w++
				if x != 255 {
					break
				}
			}
		}
	}
}
