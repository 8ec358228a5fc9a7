package codec

import "math/bits"

// The hash-chain match finder of levels high and max. Every position of a
// block is linked to the previous position with the same 4-byte hash, so
// a search sees the most recent candidates, newest first, however they
// fall into hash buckets; and the parse (hc) looks past each match for a
// longer one that starts inside it and moves the boundary between them,
// as LZ4's HC mode does. On the distinct Go files that parse, 4 links
// deep, is as small as `lz4 -3` and 2.5% larger than `lz4 -9`
// (docs/FORMAT.md). With a far table the same parse also takes matches
// up to 16 MiB back, for lz4x.

// hcSlots is how many chain links a matcher keeps: a position farther
// than this behind a search may have had its link overwritten, so the
// window searched through the chain is at most hcSlots-1.
func (p matchParams) hcSlots() int { return 1 << p.ChainLog }

// hcInsert links the positions from m.next up to i (exclusive) into their
// chains, and every FarStep-th of them into the far table. Positions are
// inserted in order and none is skipped, so every link of a position of
// this block within the window was written in this block: what earlier
// blocks left in the tables never changes the output.
func (m *matcher) hcInsert(src []byte, i int) {
	head, chain := m.table, m.chain
	cmask := len(chain) - 1
	hb := 64 - 8*uint(m.p.HashBytes)
	shift := m.shift & 63
	base := int(m.base)
	for j := m.next; j < i; j++ {
		h := ((load64(src, j) << hb) * hashPrime) >> shift
		t := tableAt(head, h)
		p := base + j
		*tableAt(chain, uint64(p&cmask)) = *t
		*t = uint32(p)
	}
	if far := m.far; far != nil {
		fs := uint(64-m.p.FarLog) & 63
		step := m.p.FarStep
		for j := (m.next + step - 1) / step * step; j < i; j += step {
			*tableAt(far, (load64(src, j)*hashPrime)>>fs) = uint32(base + j)
		}
	}
	m.next = max(m.next, i)
}

// hcFind returns the longest match for position i among the first
// m.p.Chain candidates of its chain, within win bytes, extended backwards
// down to low (low <= i) but not past the block's start, if it is longer
// than longest: the match starts at s, is n bytes long (n == 0: none) and
// has offset off. With a far table, a first search (longest == 0; every
// search with FarAll) also tries the table's candidate for i's 8 bytes,
// beyond the chain's window and within m.farWin; with seeds instead,
// every search tries the seed that holds i. A match farther than 64 KiB
// must be FarMin bytes long. It links the positions up to i first
// (hcScan does).
func (m *matcher) hcFind(src []byte, i, low, limit, win, longest int) (s, n, off int) {
	s, n, off, _ = m.hcScan(src, i, low, i, limit, win, longest)
	return s, n, off
}

// hcScan searches from i on for a match longer than longest, as hcFind
// at each position j that the literal scan visits (every one, then
// farther apart as literals pile up since low, SkipLog), up to last
// (hcFind: last is i). Each position is linked as it is searched, with
// one hash and one table access for both, after what the parse skipped
// before it (inside a match). It returns the match (n == 0: none) and the
// position j it was found at (past last when none).
func (m *matcher) hcScan(src []byte, i, low, last, limit, win, longest int) (s, n, off, at int) {
	head, chain := m.table, m.chain
	cmask := len(chain) - 1
	hb := 64 - 8*uint(m.p.HashBytes)
	shift := m.shift & 63
	base := int(m.base)
	skipLog := uint(m.p.SkipLog)
	for ; i <= last; i += 1 + (i-low)>>skipLog {
		if m.next < i {
			m.hcInsert(src, i)
		}
		x := load64(src, i)
		t := tableAt(head, ((x<<hb)*hashPrime)>>shift)
		c := int(*t)
		p := base + i
		*tableAt(chain, uint64(p&cmask)) = uint32(c)
		*t = uint32(p)
		m.next = i + 1
		w := min(win, i) // i - w: the block's first position
		best := max(longest, minMatch-1)
		for k := m.p.Chain; k > 0; k-- {
			o := p - c
			if o <= 0 || o > w {
				break // before the block or outside the window
			}
			ci := i - o
			// Without a look back, a longer match must also hold the 4
			// bytes ending where the best one ends.
			if load32(src, ci) == uint32(x) && (low < i || load32(src, ci+best-3) == load32(src, i+best-3)) {
				f := minMatch + matchLen(src, ci+minMatch, i+minMatch, limit)
				b := hcBack(src, i, ci, low)
				if b+f > best {
					s, n, off, best = i-b, b+f, o, b+f
					if i+f >= limit {
						return s, n, off, i
					}
				}
			}
			c = int(*tableAt(chain, uint64(c&cmask)))
		}
		if m.seed != nil {
			// The seed holding i gives its match at once: its bytes
			// from i on are known to repeat up to its end.
			if sd, ok := m.seed.holding(i); ok && sd.off > w && sd.off <= min(m.farWin, i) {
				f := sd.e - i
				b := hcBack(src, i, i-sd.off, low)
				if b+f > best && b+f >= m.p.FarMin {
					s, n, off = i-b, b+f, sd.off
				}
			}
		} else if m.far != nil {
			ft := tableAt(m.far, (x*hashPrime)>>(uint(64-m.p.FarLog)&63))
			// i+8 <= limit: the 8 bytes taken as matching must end
			// before the block's last literals.
			if o := p - int(*ft); (longest == 0 || m.p.FarAll) && o > w && o <= min(m.farWin, i) && i+8 <= limit {
				ci := i - o
				if load64(src, ci) == x {
					f := 8 + matchLen(src, ci+8, i+8, limit)
					b := hcBack(src, i, ci, low)
					if b+f > best && b+f >= m.p.FarMin {
						s, n, off = i-b, b+f, o
					}
				}
			}
			// Linked after the search, which probes the far table for i.
			if i%m.p.FarStep == 0 {
				*ft = uint32(p)
			}
		}
		if n > 0 {
			return s, n, off, i
		}
	}
	return 0, 0, 0, i
}

// hcBack counts the bytes before a match at i (candidate ci) that match
// too, down to low and the block's start.
func hcBack(src []byte, i, ci, low int) int {
	s, _ := extendBack(src, low, i, ci, 0)
	return i - s
}

// hcMatch is a match of the hash-chain parse: n bytes at s, offset off.
type hcMatch struct{ s, n, off int }

func (a hcMatch) end() int { return a.s + a.n }

// hcShort is the length up to which a match's length fits in its token:
// the parse prefers to cut a following match rather than one this short.
const hcShort = minMatch + 14

// hc is the hash-chain parse (levels high and max). With a match m1 in
// hand it looks, two bytes before m1's end, for a longer match m2 that
// may start inside m1 (extended backwards); with m2, for a longer m3 near
// m2's end; and it keeps the boundaries that cover most with fewest
// sequences: m1 is dropped for m2 when m2 starts within 3 bytes of it, m2
// for m3 when m2 would be left under 4 bytes, and overlapping matches are
// cut so that the first keeps up to hcShort bytes. It returns where the
// pending literals start (-1 when the output ran out of room) and the
// largest offset used.
func (m *matcher) hc(w *seqWriter, src []byte, window int) (anchor, maxOff int) {
	last := len(src) - mfLimit
	limit := len(src) - lastLiterals
	win := min(window, m.p.hcSlots()-1)
	m.farWin = window
	m.next = 0
	if m.seed != nil {
		if window > win && !m.seed.foundIn(src) {
			m.farSeeds(src, window)
		}
		defer m.seed.drop() // they were this block's
	}
	ok := true
	// put emits a match and the literals before it. A match starting
	// past last (cut forward near the block's end) stays literals.
	put := func(a hcMatch) {
		if a.s > last || !ok {
			return
		}
		if !w.emit(src[anchor:a.s], a.off, a.n) {
			ok = false
			return
		}
		maxOff = max(maxOff, a.off)
		anchor = a.end()
	}
	// find searches at i for a match longer than longest, looking back
	// to low; ok reports whether there was one.
	find := func(i, low, longest int) (hcMatch, bool) {
		if i > last {
			return hcMatch{}, false
		}
		s, n, off := m.hcFind(src, i, low, limit, win, longest)
		return hcMatch{s, n, off}, n > 0
	}
	// cut moves the start of m2 forward so that m1 keeps up to hcShort
	// bytes, while m2 keeps at least minMatch.
	cut := func(m1 hcMatch, m2 *hcMatch) {
		if m2.s-m1.s >= hcShort {
			return
		}
		n := min(m1.n, hcShort)
		if m1.s+n > m2.end()-minMatch {
			n = m2.end() - minMatch - m1.s
		}
		if c := n - (m2.s - m1.s); c > 0 {
			m2.s += c
			m2.n -= c
		}
	}
	i := 0
	for i <= last && ok {
		var m1 hcMatch
		m1.s, m1.n, m1.off, i = m.hcScan(src, i, anchor, last, limit, win, 0)
		if m1.n == 0 {
			break
		}
		m0 := m1 // the first match, kept in case m1 moves too far
	search2:
		m2, found := find(m1.end()-2, m1.s, m1.n)
		if !found {
			put(m1)
			i = m1.end()
			continue
		}
		if m0.s < m1.s && m2.s < m1.s+m0.n {
			m1 = m0
		}
		if m2.s-m1.s < 3 {
			m1 = m2 // m1 would be too short: literals, then m2
			goto search2
		}
	search3:
		cut(m1, &m2)
		m3, found := find(m2.end()-3, m2.s, m2.n)
		if !found {
			if m2.s < m1.end() {
				m1.n = m2.s - m1.s
			}
			put(m1)
			put(m2)
			i = m2.end()
			continue
		}
		if m3.s < m1.end()+3 {
			// No room for m2 between m1 and m3.
			if m3.s >= m1.end() {
				if c := m1.end() - m2.s; c > 0 {
					m2.s += c
					m2.n -= c
					if m2.n < minMatch {
						m2 = m3
					}
				}
				put(m1)
				m1, m0 = m3, m2
				goto search2
			}
			m2 = m3
			goto search3
		}
		if m2.s < m1.end() {
			cut(m1, &m2)
			m1.n = m2.s - m1.s
		}
		put(m1)
		m1, m2 = m2, m3
		goto search3
	}
	if !ok {
		return -1, 0
	}
	return anchor, maxOff
}

// farSeed is a repeat found by farSeeds: src[s:e] equals the bytes off
// before it.
type farSeed struct{ s, e, off int }

// seedState is a seeded matcher's: the seeds of the block about to be
// parsed and farSeeds' table and scratch.
type seedState struct {
	tab   []uint32 // sampled positions by their 8 bytes
	seeds []farSeed
	block []byte // the block the seeds were found in
	at    int    // the first seed that may hold the position searched
	// One chunk's sampled positions, and what the table held for each.
	samples, cands [4096]uint32
}

// holding returns the seed that holds position i, if any. The cursor
// follows i, which steps back a little at times (the parse's next search
// starts 2 or 3 bytes before a match's end).
func (st *seedState) holding(i int) (farSeed, bool) {
	sd, k := st.seeds, st.at
	for k > 0 && sd[k-1].e > i {
		k--
	}
	for k < len(sd) && sd[k].e <= i {
		k++
	}
	st.at = k
	if k < len(sd) && sd[k].s <= i {
		return sd[k], true
	}
	return farSeed{}, false
}

// foundIn reports whether the seeds were found in src (the parse takes
// their bytes as repeating without looking).
func (st *seedState) foundIn(src []byte) bool {
	return len(st.block) == len(src) && len(src) > 0 && &st.block[0] == &src[0]
}

// drop forgets the seeds: the next parse finds its own.
func (st *seedState) drop() {
	st.seeds, st.block, st.at = st.seeds[:0], nil, 0
}

// farSeeds finds, ahead of the parse, the repeats of src that lie more
// than win bytes back (up to farWin) and hold one of the positions its 4
// bytes choose (1 in 2^SeedLog, the same places in both copies of a
// repeat), each extended both ways as far as it goes; they do not
// overlap. The parse then takes far matches from these (hcFind) instead
// of probing a far table at every search: a probe per sampled position
// rather than one per position, and no far table written at every
// FarStep-th position. It returns how many bytes the seeds cover, and
// the next parse of src uses them.
func (m *matcher) farSeeds(src []byte, farWin int) (cover int) {
	win := m.p.hcSlots() - 1
	limit := len(src) - lastLiterals
	st := m.seed
	tab := st.tab[:min(len(st.tab), max(1<<10, 1<<bits.Len(uint(len(src)>>m.p.SeedLog))))]
	clear(tab)
	shift := uint(64-bits.Len(uint(len(tab)-1))) & 63
	mask := uint64(len(tab) - 1)
	sb := uint(32-m.p.SeedLog) & 31
	seeds := st.seeds[:0]
	end := 0 // the end of the last seed
	samp := &st.samples
	// A chunk's sampled positions are listed first, then looked up: the
	// table lookups, most of them cache misses, no longer wait one for
	// another behind the scan's branches.
	for lo := 0; lo+8 <= limit; lo += len(samp) {
		hi := min(lo+len(samp), limit-7)
		n := 0
		// n grows by one exactly when j's top SeedLog hash bits are all
		// zero. Four positions come from one load (the scan is a
		// quarter of the seeds' time).
		j := lo
		for ; j+4 <= hi; j += 4 {
			x := load64(src, j)
			samp[n&(len(samp)-1)] = uint32(j)
			n += int((uint64((uint32(x)*2654435761)>>sb) - 1) >> 63)
			samp[n&(len(samp)-1)] = uint32(j + 1)
			n += int((uint64((uint32(x>>8)*2654435761)>>sb) - 1) >> 63)
			samp[n&(len(samp)-1)] = uint32(j + 2)
			n += int((uint64((uint32(x>>16)*2654435761)>>sb) - 1) >> 63)
			samp[n&(len(samp)-1)] = uint32(j + 3)
			n += int((uint64((uint32(x>>24)*2654435761)>>sb) - 1) >> 63)
		}
		for ; j < hi; j++ {
			samp[n&(len(samp)-1)] = uint32(j)
			n += int((uint64((load32(src, j)*2654435761)>>sb) - 1) >> 63)
		}
		// The lookups, with no branch on what they load, so that their
		// cache misses overlap; then the candidates are looked at.
		cand := &st.cands
		for k, j32 := range samp[:n] {
			t := tableAt(tab, (load64(src, int(j32))*hashPrime)>>shift&mask)
			cand[k&(len(cand)-1)] = *t
			*t = j32 + 1
		}
		for k, j32 := range samp[:n] {
			j := int(j32)
			c := int(cand[k&(len(cand)-1)]) - 1
			if j < end || c < 0 {
				continue
			}
			x := load64(src, j)
			o := j - c
			if o <= win || o > farWin || load64(src, c) != x {
				continue
			}
			e := j + 8 + matchLen(src, c+8, j+8, limit)
			s, _ := extendBack(src, end, j, c, 0)
			seeds = append(seeds, farSeed{s, e, o})
			cover += e - s
			end = e
		}
	}
	st.seeds, st.block, st.at = seeds, src, 0
	return cover
}
