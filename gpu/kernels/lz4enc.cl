// LZ4 block compression (the standard block format, codec id 1) with many
// searches per block. A block is cut into segments of SEG bytes; each
// segment has its own search (a work-item of lz4_match_*, or a work-group
// of lz4_coop_* on GPUs) and its own small hash table in local memory,
// seeded with the HIST bytes before the segment so that matches reach
// back across the cut. Matches never cross a segment's end. lz4_join then
// stitches the segments of each block into one standard LZ4 block: the
// literals left at the end of one segment become the head of the next
// segment's first sequence. Every step depends only on the block's bytes,
// so the output is the same on every device and every run.
//
// Both searches write per segment g (info[5g..5g+4]): the first match's
// position, offset and length (length 0: no match), the end of the last
// match, and how many bytes the remaining sequences took in scratch, or
// 0xffffffff when they did not fit.

// ld64 reads the 8 bytes at p with three aligned 32-bit loads (and
// funnel shifts; little-endian devices: the self-test rejects others)
// instead of eight byte loads: 24-26% faster compression on the H200 for
// the same output. It reads up to 11 bytes past p: blocks sit 16-byte
// aligned in a batch buffer with slack at its end.
inline ulong ld64(const global uchar *p) {
  const global uint *w = (const global uint *)((size_t)p & ~(size_t)3);
  uint sh = ((uint)(size_t)p & 3) * 8;
  ulong lo = (ulong)w[0] | ((ulong)w[1] << 32);
  return sh ? (lo >> sh) | ((ulong)w[2] << (64 - sh)) : lo;
}

inline uint ld32(const global uchar *p) {
  const global uint *w = (const global uint *)((size_t)p & ~(size_t)3);
  uint sh = ((uint)(size_t)p & 3) * 8;
  return sh ? (w[0] >> sh) | (w[1] << (32 - sh)) : w[0];
}

// put_len writes a length's extension bytes (n is the part past 15).
inline uint put_len(global uchar *o, uint op, uint n) {
  for (; n >= 255; n -= 255)
    o[op++] = 255;
  o[op++] = (uchar)n;
  return op;
}

// lit_at is where the literals of a sequence at op go: after its token
// and the extension bytes of a literal length ll.
inline uint lit_at(uint op, uint ll) {
  return op + 1 + (ll >= 15 ? 1 + (ll - 15) / 255 : 0);
}

// put_head writes what surrounds a sequence's ll literals: the token and
// literal length at op, and after the literals (at lit_at(op, ll) + ll)
// the offset and the match length ml (at least 4).
inline void put_head(global uchar *o, uint op, uint ll, uint off, uint ml) {
  o[op] = (uchar)(((ll < 15 ? ll : 15) << 4) | (ml - 4 < 15 ? ml - 4 : 15));
  if (ll >= 15)
    put_len(o, op + 1, ll - 15);
  uint mp = lit_at(op, ll) + ll;
  o[mp++] = (uchar)off;
  o[mp++] = (uchar)(off >> 8);
  if (ml - 4 >= 15)
    put_len(o, mp, ml - 4 - 15);
}

// seqlen is the encoded size of a sequence of ll literals and a match of
// ml bytes (ml == 0: the last, literals only).
inline uint seqlen(uint ll, uint ml) {
  uint n = 1 + ll + (ll >= 15 ? 1 + (ll - 15) / 255 : 0);
  if (ml)
    n += 2 + (ml - 4 >= 15 ? 1 + (ml - 4 - 15) / 255 : 0);
  return n;
}

// emit writes one sequence (ml >= 4). It returns the new output position,
// or 0xffffffff when cap would be passed.
inline uint emit(global uchar *o, uint op, uint cap, const global uchar *lit,
                 uint ll, uint off, uint ml) {
  uint need = 1 + ll + ll / 255 + 1 + 2 + (ml - 4) / 255 + 1;
  if (op + need > cap)
    return 0xffffffffu;
  put_head(o, op, ll, off, ml);
  uint lp = lit_at(op, ll);
  for (uint i = 0; i < ll; i++)
    o[lp + i] = lit[i];
  return op + seqlen(ll, ml);
}

#ifndef SEG
#define SEG 16384
#endif
// HIST: bytes before a segment its table is seeded with. Table positions
// are 16 bits from the seed's start, 0xffff marks an empty entry: HIST +
// SEG stays below 65535, and so does every match offset.
#ifndef HIST
#define HIST (49152 - 1)
#endif
// The table sizes (log2 entries) of the two settings and the work-group
// sizes that fit their tables in 32 KiB of local memory.
#ifndef FAST_HLOG
#define FAST_HLOG 12
#endif
#ifndef FAST_WG
#define FAST_WG 4
#endif
#ifndef DEF_HLOG
#define DEF_HLOG 13
#endif
#ifndef DEF_WG
#define DEF_WG 2
#endif
#ifndef SKIP
#define SKIP 7
#endif
// SEED_STEP: every how many history bytes a position is put in the table.
// Every 4th: 40% faster than every position for 1% of ratio (H200,
// gpu/BENCHMARKS.md).
#ifndef SEED_STEP
#define SEED_STEP 4
#endif
#define EMPTY 0xffffu

// hash5 hashes the low 5 bytes of v (LZ4's 5-byte hash, as codec's
// levels use: better buckets for text than 4 bytes), mhash the 5 bytes
// at p.
inline uint hash5(ulong v, uint hlog) {
  return (uint)(((v << 24) * 889523592379ul) >> (64 - hlog)); // << 24 keeps 5
}

inline uint mhash(const global uchar *p, uint hlog) {
  return hash5(ld64(p), hlog);
}

// seg_scratch is where segment g, starting at batch offset pos, keeps its
// sequences: room for pos's bytes, 1/64 more and 64 more per segment,
// which any LZ4 encoding of those bytes fits in.
inline uint seg_scratch(uint pos, uint g) { return pos + pos / 64 + g * 64; }

// segment is what the descriptors say of segment g. Block descriptor (6
// words): source offset, length, output offset, output capacity, first
// segment, segment count. Segment descriptors (their block) follow the
// block descriptors at word sdoff. A match starts where its first 4
// bytes fit before the segment's end and 12 bytes before the block's
// (LZ4's end rules: below mflimit), and ends by both (matchlimit). (A
// segment ending 1 to 7 bytes short of the block's end still stops its
// matches 12 bytes before the block's end.) With slen < 13 no match is
// taken, and mflimit and matchlimit mean nothing.
typedef struct {
  const global uchar *in; // the block
  global uchar *o;        // the segment's scratch
  uint slen, start, cap;  // block length, segment start, scratch room
  uint mflimit, matchlimit;
  uint base; // the seed's start: HIST bytes before start, or the block's
} segment;

inline segment segment_of(const global uchar *src, global uchar *scratch,
                          const global uint *bdesc, uint sdoff, uint g) {
  segment sg;
  uint b = bdesc[sdoff + g];
  uint soff = bdesc[6 * b], slen = bdesc[6 * b + 1];
  uint start = (g - bdesc[6 * b + 4]) * SEG, end = min(start + SEG, slen);
  sg.in = src + soff;
  sg.o = scratch + seg_scratch(soff + start, g);
  sg.slen = slen;
  sg.start = start;
  sg.cap = end - start + (end - start) / 64 + 64;
  sg.mflimit = end < slen ? min(end - 4, slen - 12) : slen - 12;
  sg.matchlimit = min(end, slen - 5);
  sg.base = start > HIST ? start - HIST : 0;
  return sg;
}

// put_info writes segment g's summary for lz4_join.
inline void put_info(global uint *info, uint g, uint fpos, uint foff,
                     uint flen, uint end, uint rest) {
  info[5 * g] = fpos;
  info[5 * g + 1] = foff;
  info[5 * g + 2] = flen;
  info[5 * g + 3] = end;
  info[5 * g + 4] = rest;
}

// match_segment is one work-item's greedy search of segment g with the
// table tbl of 2^hlog entries: a 5-byte hash, the newest position per
// bucket, backward extension, skip acceleration after misses.
inline void match_segment(const global uchar *restrict src,
                          global uchar *restrict scratch,
                          const global uint *bdesc, uint sdoff, uint nseg,
                          global uint *info, local ushort *tbl, uint hlog) {
  uint g = get_global_id(0);
  if (g >= nseg)
    return;
  for (uint i = 0; i < (1u << hlog); i += 8)
    vstore8((ushort8)(EMPTY), i / 8, tbl);
  segment sg = segment_of(src, scratch, bdesc, sdoff, g);
  const global uchar *in = sg.in;
  uint fpos = 0, foff = 0, flen = 0, op = 0;
  uint anchor = sg.start;
  if (sg.slen >= 13) {
    uint mflimit = sg.mflimit, matchlimit = sg.matchlimit, base = sg.base;
    for (uint p = base; p < sg.start; p += SEED_STEP)
      tbl[mhash(in + p, hlog)] = (ushort)(p - base);
    uint ip = sg.start;
    while (ip < mflimit) {
      uint v = ld32(in + ip);
      uint h = mhash(in + ip, hlog);
      uint t = tbl[h];
      tbl[h] = (ushort)(ip - base);
      uint ref = base + t;
      if (t != EMPTY && ref < ip && ld32(in + ref) == v) {
        uint ml = 4;
        // 4 bytes a step; the first differing byte ends the match.
        uint x = 0;
        for (; ip + ml + 4 <= matchlimit; ml += 4) {
          x = ld32(in + ref + ml) ^ ld32(in + ip + ml);
          if (x)
            break;
        }
        if (x)
          ml += (31 - clz(x & (0u - x))) >> 3;
        else
          while (ip + ml < matchlimit && in[ref + ml] == in[ip + ml])
            ml++;
        while (ip > anchor && ref > 0 && in[ip - 1] == in[ref - 1]) {
          ip--;
          ref--;
          ml++;
        }
        if (flen == 0) {
          fpos = ip;
          foff = ip - ref;
          flen = ml;
        } else if (op != 0xffffffffu) {
          op = emit(sg.o, op, sg.cap, in + anchor, ip - anchor, ip - ref, ml);
        }
        ip += ml;
        anchor = ip;
        if (ip - 2 < mflimit) // feed the table inside the match
          tbl[mhash(in + ip - 2, hlog)] = (ushort)(ip - 2 - base);
      } else {
        ip += 1 + ((ip - anchor) >> SKIP);
      }
    }
  }
  put_info(info, g, fpos, foff, flen, anchor, op);
}

// lz4_match_fast and lz4_match_default search one segment per work-item,
// with tables of 2^FAST_HLOG and 2^DEF_HLOG entries in local memory (within
// 5% of codec's levels fast and default on Go source; gpu/BENCHMARKS.md).
kernel __attribute__((reqd_work_group_size(FAST_WG, 1, 1))) void
lz4_match_fast(const global uchar *restrict src, global uchar *restrict scratch,
               const global uint *bdesc, uint sdoff, uint nseg,
               global uint *info) {
  local ushort tables[FAST_WG << FAST_HLOG];
  match_segment(src, scratch, bdesc, sdoff, nseg, info,
                tables + (get_local_id(0) << FAST_HLOG), FAST_HLOG);
}

kernel __attribute__((reqd_work_group_size(DEF_WG, 1, 1))) void
lz4_match_default(const global uchar *restrict src,
                  global uchar *restrict scratch, const global uint *bdesc,
                  uint sdoff, uint nseg, global uint *info) {
  local ushort tables[DEF_WG << DEF_HLOG];
  match_segment(src, scratch, bdesc, sdoff, nseg, info,
                tables + (get_local_id(0) << DEF_HLOG), DEF_HLOG);
}

// copy_bytes copies n bytes from s to d with the nl (at least 4) work-items
// of a group: the bytes up to d's first 4-byte boundary and after its last
// one singly, the rest a word a work-item (s read as ld32 does, up to 3
// bytes past its n): a quarter of the stores of a byte-by-byte copy.
inline void copy_bytes(global uchar *d, const global uchar *s, uint n,
                       uint lid, uint nl) {
  uint head = min(n, (4 - ((uint)(size_t)d & 3)) & 3);
  if (lid < head)
    d[lid] = s[lid];
  uint words = (n - head) / 4, tail = head + 4 * words;
  global uint *dw = (global uint *)(d + head);
  for (uint i = lid; i < words; i += nl)
    dw[i] = ld32(s + head + 4 * i);
  if (lid < n - tail)
    d[tail + lid] = s[tail + lid];
}

// lz4_join writes block b's LZ4 block from its segments' matches, one
// work-group per block; outlen[b] is its length, or -1 when it would not
// fit in the capacity (the host stores the block raw).
kernel void lz4_join(const global uchar *restrict src,
                     const global uchar *restrict scratch,
                     global uchar *restrict dst, const global uint *bdesc,
                     global const uint *info, global int *outlen) {
  uint b = get_group_id(0), lid = get_local_id(0), nl = get_local_size(0);
  uint soff = bdesc[6 * b], slen = bdesc[6 * b + 1];
  uint doff = bdesc[6 * b + 2], cap = bdesc[6 * b + 3];
  uint first = bdesc[6 * b + 4], nseg = bdesc[6 * b + 5];
  const global uchar *in = src + soff;
  global uchar *o = dst + doff;

  // The size of everything: every work-item walks the segments (a few
  // dozen per MiB), so that all know every segment's place.
  uint prev = 0, total = 0;
  for (uint k = 0; k < nseg; k++) {
    uint g = first + k;
    uint flen = info[5 * g + 2];
    if (flen == 0)
      continue;
    uint rest = info[5 * g + 4];
    if (rest == 0xffffffffu) {
      total = 0xffffffffu;
      break;
    }
    total += seqlen(info[5 * g] - prev, flen) + rest;
    prev = info[5 * g + 3];
  }
  if (total != 0xffffffffu)
    total += seqlen(slen - prev, 0);
  if (total == 0xffffffffu || total > cap) {
    if (lid == 0)
      outlen[b] = -1;
    return;
  }
  if (lid == 0)
    outlen[b] = (int)total;

  prev = 0;
  uint op = 0;
  for (uint k = 0; k < nseg; k++) {
    uint g = first + k;
    uint flen = info[5 * g + 2];
    if (flen == 0)
      continue;
    uint fpos = info[5 * g], foff = info[5 * g + 1];
    uint rest = info[5 * g + 4];
    uint ll = fpos - prev;
    // Header, literals (all work-items), match, then the segment's other
    // sequences copied from scratch.
    if (lid == 0)
      put_head(o, op, ll, foff, flen);
    copy_bytes(o + lit_at(op, ll), in + prev, ll, lid, nl);
    op += seqlen(ll, flen);
    uint start = (g - first) * SEG;
    copy_bytes(o + op, scratch + seg_scratch(soff + start, g), rest, lid, nl);
    op += rest;
    prev = info[5 * g + 3];
  }
  uint ll = slen - prev;
  if (lid == 0) {
    o[op] = (uchar)((ll < 15 ? ll : 15) << 4);
    if (ll >= 15)
      put_len(o, op + 1, ll - 15);
  }
  copy_bytes(o + lit_at(op, ll), in + prev, ll, lid, nl);
}

#ifndef NO_COOP
// The cooperative search: a work-group of LANES work-items searches one
// segment with one table, LANES positions at a time (a window, all at the
// same step). Every position of a window looks up what the positions
// before it inserted, as the one-work-item search does: an earlier
// position of the window with the same hash, else the table as it stood
// before the window. The window's first match is the greedy search's
// next match; the positions up to it are inserted (the newest of equal
// hashes wins), and the match is extended LANES*4 bytes a round. So the
// output is the greedy search's, except that the skip step is fixed per
// window (0.004-0.005% larger output on the encode tests' data); and a group
// holds one table where a work-item of lz4_match_* did, so a
// multiprocessor runs as many searches, each LANES wide: 1.26-1.49 times
// faster on the H200 (BENCHMARKS.md).
#ifndef LANES
#define LANES 32
#endif
#define NONE 0xffffffffu

// emit_coop is emit for the whole group: work-item 0 writes the token,
// lengths and offset, all copy the literals. Every item gets the new
// output position (NONE when cap would be passed).
inline uint emit_coop(global uchar *o, uint op, uint cap,
                      const global uchar *lit, uint ll, uint off, uint ml,
                      uint l) {
  uint n = seqlen(ll, ml);
  if (op + n > cap)
    return NONE;
  if (l == 0)
    put_head(o, op, ll, off, ml);
  copy_bytes(o + lit_at(op, ll), lit, ll, l, LANES);
  return op + n;
}

// coop_segment is the group's search of segment get_group_id(0), with the
// same block and segment descriptors, scratch and info as match_segment.
// Table entries are positions from the seed's start plus 1 (0: empty),
// so that the newest of two is the larger. red holds three slots for the
// group's minimum reductions, taken in turn: a reduction's slot is read
// after its one barrier, and reset by work-item 0 two reductions later,
// when every item has read it. hw holds the window's hashes, cw their
// candidates, bc the match's start after the look back.
//
// A window costs three barriers (and one more per 128 bytes of match) and
// as many rounds of global loads (the window's bytes, the candidates', the
// extension's): the look back runs beside the first extension round, and
// the position inside the match that feeds the table is inserted with the
// next window's loads. This form measured 5-8% faster on the H200 than
// one with a single barrier at the loop's top (BENCHMARKS.md), but PoCL
// 5.0's compiler aborts the process on it (PoCL 3.1 builds it): CPU
// devices do not build it unless asked (opencl.go).
inline void coop_segment(const global uchar *restrict src,
                         global uchar *restrict scratch,
                         const global uint *bdesc, uint sdoff, uint nseg,
                         global uint *info, local ushort *tbl, uint hlog,
                         local uint *hw, local uint *cw, local uint *red,
                         local uint *bc) {
  uint g = get_group_id(0), l = get_local_id(0);
  if (g >= nseg)
    return; // the whole group
  for (uint i = l; i < (1u << hlog) / 8; i += LANES)
    vstore8((ushort8)(0), i, tbl);
  if (l < 3)
    red[l] = NONE;
  uint r = 0; // reductions taken
  segment sg = segment_of(src, scratch, bdesc, sdoff, g);
  const global uchar *in = sg.in;
  uint fpos = 0, foff = 0, flen = 0, op = 0;
  uint anchor = sg.start;
  barrier(CLK_LOCAL_MEM_FENCE);
  if (sg.slen >= 13) {
    uint mflimit = sg.mflimit, matchlimit = sg.matchlimit, base = sg.base;
    // The seed, LANES positions a round; of equal hashes the last wins.
    for (uint q0 = base; q0 < sg.start; q0 += LANES * SEED_STEP) {
      uint q = q0 + l * SEED_STEP;
      uint h = q < sg.start ? mhash(in + q, hlog) : NONE;
      hw[l] = h;
      barrier(CLK_LOCAL_MEM_FENCE);
      bool last = h != NONE;
      for (uint j = 0; j < LANES; j++)
        last = last && (j <= l || hw[j] != h);
      if (last)
        tbl[h] = (ushort)(q - base + 1);
      barrier(CLK_LOCAL_MEM_FENCE);
    }
    uint ip = sg.start;
    uint feed = NONE; // a position inside the last match, for the table
    while (ip < mflimit) {
      uint step = 1 + ((ip - anchor) >> SKIP);
      uint p = ip + l * step;
      bool valid = p < mflimit;
      ulong v = valid ? ld64(in + p) : 0;
      uint h = valid ? hash5(v, hlog) : NONE;
      hw[l] = h;
      if (l == 0 && feed != NONE)
        tbl[mhash(in + feed, hlog)] = (ushort)(feed - base + 1);
      barrier(CLK_LOCAL_MEM_FENCE);
      // The newest earlier position of the window with the same hash,
      // and the first later one.
      uint prev = NONE, next = LANES;
      for (uint j = 0; j < LANES; j++) {
        bool same = hw[j] == h;
        prev = same && j < l ? j : prev;
        next = same && j > l && next == LANES ? j : next;
      }
      uint c = 0;
      bool has = false;
      if (valid) {
        if (prev != NONE) {
          c = ip + prev * step;
          has = true;
        } else {
          uint t = tbl[h];
          c = base + t - 1;
          has = t != 0;
        }
      }
      if (has && ld32(in + c) == (uint)v)
        atomic_min(&red[r % 3], l);
      cw[l] = c;
      barrier(CLK_LOCAL_MEM_FENCE);
      uint f = red[r % 3];
      if (l == 0)
        red[(r + 2) % 3] = NONE;
      r++;
      uint upto = min(f, LANES - 1u);
      if (valid && l <= upto && next > upto)
        tbl[h] = (ushort)(p - base + 1);
      feed = NONE;
      if (f == NONE) {
        ip += LANES * step;
        barrier(CLK_LOCAL_MEM_FENCE); // inserts and reads of hw done
        continue;
      }
      uint pf = ip + f * step, off = pf - cw[f];
      if (l == f) {
        uint s = pf;
        while (s > anchor && s > off && in[s - 1] == in[s - 1 - off])
          s--;
        bc[0] = s;
      }
      // Forward from the 4 bytes found, LANES*4 bytes a round: the
      // first differing byte (or matchlimit) ends the match.
      uint e = pf + 4;
      for (;;) {
        uint q = e + 4 * l, d = 0;
        if (q + 4 <= matchlimit) {
          uint x = ld32(in + q) ^ ld32(in + q - off);
          d = x ? (31 - clz(x & (0u - x))) >> 3 : 4;
        } else {
          while (q + d < matchlimit && in[q + d] == in[q + d - off])
            d++;
        }
        if (d < 4)
          atomic_min(&red[r % 3], 4 * l + d);
        barrier(CLK_LOCAL_MEM_FENCE);
        uint m = red[r % 3];
        if (l == 0)
          red[(r + 2) % 3] = NONE;
        r++;
        if (m != NONE) {
          e += m;
          break;
        }
        e += 4 * LANES;
      }
      uint s = bc[0];
      if (flen == 0) {
        fpos = s;
        foff = off;
        flen = e - s;
      } else if (op != NONE) {
        op = emit_coop(sg.o, op, sg.cap, in + anchor, s - anchor, off, e - s,
                       l);
      }
      ip = anchor = e;
      if (e - 2 < mflimit)
        feed = e - 2;
    }
  }
  if (l == 0)
    put_info(info, g, fpos, foff, flen, anchor, op);
}

kernel __attribute__((reqd_work_group_size(LANES, 1, 1))) void
lz4_coop_fast(const global uchar *restrict src, global uchar *restrict scratch,
              const global uint *bdesc, uint sdoff, uint nseg,
              global uint *info) {
  local ushort tbl[1 << FAST_HLOG];
  local uint hw[LANES], cw[LANES], red[3], bc[1];
  coop_segment(src, scratch, bdesc, sdoff, nseg, info, tbl, FAST_HLOG, hw, cw,
               red, bc);
}

kernel __attribute__((reqd_work_group_size(LANES, 1, 1))) void
lz4_coop_default(const global uchar *restrict src,
                 global uchar *restrict scratch, const global uint *bdesc,
                 uint sdoff, uint nseg, global uint *info) {
  local ushort tbl[1 << DEF_HLOG];
  local uint hw[LANES], cw[LANES], red[3], bc[1];
  coop_segment(src, scratch, bdesc, sdoff, nseg, info, tbl, DEF_HLOG, hw, cw,
               red, bc);
}
#endif // NO_COOP
