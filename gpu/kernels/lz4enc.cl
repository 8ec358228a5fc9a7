// LZ4 block compression (the standard block format, codec id 1) with many
// searches per block. A block is cut into segments of SEG bytes; lz4_match gives each segment its own work-item
// and its own small hash table in local memory, seeded with the HIST bytes
// before the segment so that matches reach back across the cut. Matches
// never cross a segment's end. lz4_join then stitches the segments of each
// block into one standard LZ4 block: the literals left at the end of one
// segment become the head of the next segment's first sequence. Every
// step depends only on the block's bytes, so the output is the same on
// every device and every run.
//
// lz4_match writes per segment g (info[5g..5g+4]): the first match's
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

// emit writes one sequence; ml == 0 writes the last, literals only. It
// returns the new output position, or 0xffffffff when cap would be passed.
inline uint emit(global uchar *o, uint op, uint cap, const global uchar *lit,
                 uint ll, uint off, uint ml) {
  uint need = 1 + ll + ll / 255 + 1 + (ml ? 2 + (ml - 4) / 255 + 1 : 0);
  if (op + need > cap)
    return 0xffffffffu;
  uint tok = (ll < 15 ? ll : 15) << 4;
  if (ml)
    tok |= (ml - 4 < 15 ? ml - 4 : 15);
  o[op++] = (uchar)tok;
  if (ll >= 15)
    op = put_len(o, op, ll - 15);
  for (uint i = 0; i < ll; i++)
    o[op + i] = lit[i];
  op += ll;
  if (ml) {
    o[op++] = (uchar)off;
    o[op++] = (uchar)(off >> 8);
    if (ml - 4 >= 15)
      op = put_len(o, op, ml - 4 - 15);
  }
  return op;
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

// mhash hashes the 5 bytes at p (LZ4's 5-byte hash, as codec's levels
// use: better buckets for text than 4 bytes).
inline uint mhash(const global uchar *p, uint hlog) {
  ulong v = ld64(p); // << 24 drops all but the low 5 bytes
  return (uint)(((v << 24) * 889523592379ul) >> (64 - hlog));
}

// seg_scratch is where segment g, starting at batch offset pos, keeps its
// sequences: room for pos's bytes, 1/64 more and 64 more per segment,
// which any LZ4 encoding of those bytes fits in.
inline uint seg_scratch(uint pos, uint g) { return pos + pos / 64 + g * 64; }

// seqlen is the encoded size of a sequence of ll literals and a match of
// ml bytes (ml == 0: the last, literals only).
inline uint seqlen(uint ll, uint ml) {
  uint n = 1 + ll + (ll >= 15 ? 1 + (ll - 15) / 255 : 0);
  if (ml)
    n += 2 + (ml - 4 >= 15 ? 1 + (ml - 4 - 15) / 255 : 0);
  return n;
}

// match_segment is one work-item's greedy search of segment g with the
// table tbl of 2^hlog entries: a 5-byte hash, the newest position per
// bucket, backward extension, skip acceleration after misses.
//
// Block descriptor (6 words): source offset, length, output offset, output
// capacity, first segment, segment count. Segment descriptors (its block)
// follow the block descriptors at word sdoff.
inline void match_segment(const global uchar *restrict src,
                          global uchar *restrict scratch,
                          const global uint *bdesc, uint sdoff, uint nseg,
                          global uint *info, local ushort *tbl, uint hlog) {
  uint g = get_global_id(0);
  if (g >= nseg)
    return;
  for (uint i = 0; i < (1u << hlog); i += 8)
    vstore8((ushort8)(EMPTY), i / 8, tbl);
  uint b = bdesc[sdoff + g];
  uint soff = bdesc[6 * b], slen = bdesc[6 * b + 1];
  uint first = bdesc[6 * b + 4];
  uint start = (g - first) * SEG, end = min(start + SEG, slen);
  const global uchar *in = src + soff;
  global uchar *o = scratch + seg_scratch(soff + start, g);
  uint cap = end - start + (end - start) / 64 + 64;
  uint fpos = 0, foff = 0, flen = 0, op = 0;
  uint anchor = start;
  if (slen >= 13) {
    // A match starts where its first 4 bytes fit before the segment's end
    // and 12 bytes before the block's (LZ4's end rules), ends by both.
    // (A segment ending 1 to 7 bytes short of the block's end still
    // stops its matches 12 bytes before the block's end.)
    uint mflimit = end < slen ? min(end - 4, slen - 12) : slen - 12;
    uint matchlimit = min(end, slen - 5);
    uint base = start > HIST ? start - HIST : 0;
    for (uint p = base; p < start; p += SEED_STEP)
      tbl[mhash(in + p, hlog)] = (ushort)(p - base);
    uint ip = start;
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
          op = emit(o, op, cap, in + anchor, ip - anchor, ip - ref, ml);
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
  info[5 * g] = fpos;
  info[5 * g + 1] = foff;
  info[5 * g + 2] = flen;
  info[5 * g + 3] = anchor;
  info[5 * g + 4] = op;
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
    uint lit = op + 1 + (ll >= 15 ? 1 + (ll - 15) / 255 : 0);
    if (lid == 0) {
      uint tok = (ll < 15 ? ll : 15) << 4;
      tok |= (flen - 4 < 15 ? flen - 4 : 15);
      o[op] = (uchar)tok;
      if (ll >= 15)
        put_len(o, op + 1, ll - 15);
      uint mp = lit + ll;
      o[mp++] = (uchar)foff;
      o[mp++] = (uchar)(foff >> 8);
      if (flen - 4 >= 15)
        put_len(o, mp, flen - 4 - 15);
    }
    for (uint i = lid; i < ll; i += nl)
      o[lit + i] = in[prev + i];
    op += seqlen(ll, flen);
    uint start = (g - first) * SEG;
    const global uchar *s = scratch + seg_scratch(soff + start, g);
    for (uint i = lid; i < rest; i += nl)
      o[op + i] = s[i];
    op += rest;
    prev = info[5 * g + 3];
  }
  uint ll = slen - prev;
  uint lit = op + 1 + (ll >= 15 ? 1 + (ll - 15) / 255 : 0);
  if (lid == 0) {
    o[op] = (uchar)((ll < 15 ? ll : 15) << 4);
    if (ll >= 15)
      put_len(o, op + 1, ll - 15);
  }
  for (uint i = lid; i < ll; i += nl)
    o[lit + i] = in[prev + i];
}
