// lz4_decode_par: LZ4 and lz4x blocks (as lz4_decode, same descriptors
// and status codes) with LZ4P_WG work-items per block and the parse itself
// spread over them, for large blocks, where lz4_decode's serial parse is
// the bound (BENCHMARKS.md). Uses helpers of lz4.cl (the kernels' sources
// are joined in name order).
//
// 1. Speculative parse: the block's stored bytes are cut into LZ4P_WG spans
//    of a multiple of 32 bytes; item i parses from its span's start as if a
//    token began there until it passes the span's end (its exit), noting
//    the first LZ4P_K token positions of its chain. Then, in rounds, item i
//    takes item i-1's exit as its start; a start that changed is parsed
//    again only until it meets a noted position (LZ4 parses fall into
//    step after a few sequences), from where the exit is known; one that
//    does not meet them is parsed whole. Item 0 starts at 0, so after
//    round r items 0..r hold the true chain: at most LZ4P_WG+1 rounds.
//    A block whose true chain does not end exactly at its last byte fails
//    here.
// 2. Each item walks its span's part of the true chain again and writes its
//    tokens as a bitmap (bit p: a token at byte p) into scratch.
// 3. Waves of up to LZ4P_WG sequences, in order: the items find the next
//    LZ4P_R waves' tokens in the bitmap (popcounts, a prefix sum), each
//    decodes one sequence and checks its bounds (output positions by a
//    prefix sum of the sequences' lengths), copies its literals, then the
//    matches go in rounds, one barrier each: a match copies once no match
//    still pending in this wave writes a byte it reads (a binary search of
//    the wave's output positions finds the sequences its source overlaps;
//    bytes of earlier waves and literals are final). A match that does not
//    overlap itself and reads only bytes of one earlier match of the wave
//    reads them where that match copies them from instead (repeatedly):
//    this halves the rounds on source code (BENCHMARKS.md).
//
// Every read of the stored bytes is bounded by the block's length (the
// 16-byte windows of rd may read up to 15 bytes past it, into the
// buffer's padding), every write by the raw size; hostile input gets a
// non-zero status, never a read or write outside its block.

#ifndef LZ4P_WG
#define LZ4P_WG 256
#endif
#ifndef LZ4P_K
#define LZ4P_K 8
#endif
#ifndef LZ4P_R
#define LZ4P_R 4 // waves of tokens found at once
#endif
#ifndef LZ4P_REDIR
#define LZ4P_REDIR 16
#endif
#define LZ4P_NONE 0xffffffffu

// lz4p_step returns the position after the sequence whose token is at pos:
// slen for the last sequence (literals only, ending the block), LZ4P_NONE
// when it runs past the input.
inline uint lz4p_step(const global uchar *in, uint slen, uint pos, uint wide,
                      uint *wb, ulong2 *q) {
  if (pos >= slen)
    return LZ4P_NONE;
  uint token = rd(in, pos++, wb, q);
  uint ll = token >> 4;
  if (ll == 15 && !extend(in, slen, &pos, &ll, wb, q))
    return LZ4P_NONE;
  if (ll > slen - pos)
    return LZ4P_NONE;
  pos += ll;
  if (pos == slen) // the last sequence: its match length must be 0
    return token & 15 ? LZ4P_NONE : slen;
  if (slen - pos < 2 + wide)
    return LZ4P_NONE;
  pos += 2 + wide;
  if ((token & 15) == 15) {
    uint ml = 0;
    if (!extend(in, slen, &pos, &ml, wb, q))
      return LZ4P_NONE;
  }
  return pos;
}

// lz4p_span parses from g until the chain reaches lim and returns where it
// did (LZ4P_NONE if it broke first), noting its first LZ4P_K positions in
// chain[j*LZ4P_WG] and their number in *cnt.
inline uint lz4p_span(const global uchar *in, uint slen, uint wide, uint g,
                      uint lim, local uint *chain, uint *cnt) {
  uint wb = LZ4P_NONE - 64;
  ulong2 q = (ulong2)(0, 0);
  uint n = 0, pos = g;
  while (pos < lim) {
    if (n < LZ4P_K)
      chain[n++ * LZ4P_WG] = pos;
    pos = lz4p_step(in, slen, pos, wide, &wb, &q);
  }
  *cnt = n;
  return pos;
}

// lz4p_meet parses from g until the chain meets one of the cnt noted
// positions (returns 1: the exit is the noted chain's) or can no longer
// meet them (returns 0).
inline int lz4p_meet(const global uchar *in, uint slen, uint wide, uint g,
                     uint lim, const local uint *chain, uint cnt) {
  uint wb = LZ4P_NONE - 64;
  ulong2 q = (ulong2)(0, 0);
  uint j = 0, pos = g;
  while (pos < lim) {
    while (j < cnt && chain[j * LZ4P_WG] < pos)
      j++;
    if (j == cnt)
      return 0;
    if (chain[j * LZ4P_WG] == pos)
      return 1;
    pos = lz4p_step(in, slen, pos, wide, &wb, &q);
  }
  return 0;
}

// lz4p_below returns the last j <= k with o[j] < x (o ascending; o[0] < x
// is the caller's to ensure): the last sequence of the wave starting below
// output position x.
inline uint lz4p_below(const local uint *o, uint k, uint x) {
  uint lo = 0, hi = k;
  while (lo < hi) {
    uint mid = (lo + hi + 1) >> 1;
    if (o[mid] < x)
      lo = mid;
    else
      hi = mid - 1;
  }
  return lo;
}

// lz4p_scan returns the exclusive prefix sum of v over the work-group and
// sets *total to the sum of all; buf holds 2*LZ4P_WG (Hillis-Steele, one
// barrier per step: each step reads one half and writes the other).
inline ulong lz4p_scan(ulong v, local ulong *buf, uint lid, ulong *total) {
  local ulong *a = buf, *b = buf + LZ4P_WG;
  a[lid] = v;
  barrier(CLK_LOCAL_MEM_FENCE);
  for (uint d = 1; d < LZ4P_WG; d <<= 1) {
    ulong x = a[lid];
    if (lid >= d)
      x += a[lid - d];
    b[lid] = x;
    barrier(CLK_LOCAL_MEM_FENCE);
    local ulong *t = a;
    a = b;
    b = t;
  }
  ulong incl = a[lid];
  *total = a[LZ4P_WG - 1];
  barrier(CLK_LOCAL_MEM_FENCE);
  return incl - v;
}

// reqd_work_group_size lets the compiler fit the registers to the group
// (NVIDIA otherwise allows only 256 work-items).
kernel __attribute__((reqd_work_group_size(LZ4P_WG, 1, 1))) void
lz4_decode_par(const global uchar *restrict src,
                           global uchar *restrict dst, const global uint *desc,
                           global int *status, global uint *scratch,
                           uint first) {
  uint b = first + get_group_id(0), lid = get_local_id(0);
  uint soff = desc[5 * b], slen = desc[5 * b + 1];
  uint doff = desc[5 * b + 2], dlen = desc[5 * b + 3];
  uint wide = desc[5 * b + 4] == 2; // lz4x: 3-byte offsets
  const global uchar *in = src + soff;
  global uchar *out = dst + doff;
  // The token bitmap: the block's input starts 16-byte aligned and takes
  // at least slen rounded up to 16 bytes, so soff/16 words leave room for
  // its ceil(slen/32).
  global uint *bm = scratch + soff / 16;
  uint nw = (slen + 31) / 32;

  local uint chain[LZ4P_K * LZ4P_WG];
  local uint ex[LZ4P_WG];
  local ulong sbuf[2 * LZ4P_WG];
  local uint tp[LZ4P_R * LZ4P_WG], o[LZ4P_WG + 1], md[LZ4P_WG], moff[LZ4P_WG];
  local uchar pend[2][LZ4P_WG];
  local int flag[3], werr, wlast;
  local uint wnext;

  // 1. Speculative parse and convergence.
  uint span = ((slen + LZ4P_WG - 1) / LZ4P_WG + 31) & ~31u;
  uint s0 = min(lid * span, slen), lim = min((lid + 1) * span, slen);
  if (lid == LZ4P_WG - 1)
    lim = slen;
  uint g = s0, cnt = 0;
  uint cexit = lz4p_span(in, slen, wide, g, lim, chain + lid, &cnt);
  uint e = cexit;
  ex[lid] = e;
  if (lid < 3)
    flag[lid] = 0;
  for (uint r = 0;; r++) {
    barrier(CLK_LOCAL_MEM_FENCE);
    uint ng = lid == 0 ? 0 : ex[lid - 1];
    if (lid == 0)
      flag[(r + 1) % 3] = 0;
    barrier(CLK_LOCAL_MEM_FENCE);
    if (ng != g) {
      g = ng;
      if (g == LZ4P_NONE)
        e = LZ4P_NONE;
      else if (g >= lim)
        e = g;
      else if (lz4p_meet(in, slen, wide, g, lim, chain + lid, cnt))
        e = cexit;
      else
        e = cexit = lz4p_span(in, slen, wide, g, lim, chain + lid, &cnt);
      ex[lid] = e;
      flag[r % 3] = 1;
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    if (!flag[r % 3])
      break;
  }
  int err = slen == 0 || ex[LZ4P_WG - 1] != slen ? E_TRUNC : 0;
#ifdef LZ4P_STOP1 // benchmarks: the cost of step 1 alone
  if (lid == 0)
    status[b] = err;
  return;
#endif

  // 2. The true chain's tokens into the bitmap, each item its own words.
  if (!err) {
    uint w = (s0 + 31) / 32, w1 = (lim + 31) / 32, acc = 0;
    uint wb = LZ4P_NONE - 64;
    ulong2 q = (ulong2)(0, 0);
    for (uint pos = g; pos < lim;) {
      uint pw = pos >> 5;
      for (; w < pw; w++) {
        bm[w] = acc;
        acc = 0;
      }
      acc |= 1u << (pos & 31);
      pos = lz4p_step(in, slen, pos, wide, &wb, &q);
    }
    for (; w < w1; w++) {
      bm[w] = acc;
      acc = 0;
    }
  }
  barrier(CLK_GLOBAL_MEM_FENCE | CLK_LOCAL_MEM_FENCE);
#ifdef LZ4P_STOP2 // benchmarks: steps 1 and 2
  if (lid == 0)
    status[b] = err;
  return;
#endif

  // 3. Waves.
  uint P = 0, op = 0, tb = 0, tc = 0;
  int lastLit = 0;
  while (!err) {
    if (tb == tc) {
      if (P >= slen)
        break;
      // The next tokens from P, up to LZ4P_R waves of them: item t counts
      // word P/32 + t (and on, in passes, while fewer were found).
      const uint want = LZ4P_R * LZ4P_WG;
      uint found = 0;
      for (uint pass = 0;; pass++) {
        uint w = (P >> 5) + pass * LZ4P_WG + lid;
        uint bits = w < nw ? bm[w] : 0;
        if (pass == 0 && lid == 0)
          bits &= ~0u << (P & 31);
        ulong tot;
        uint r = found + (uint)lz4p_scan(popcount(bits), sbuf, lid, &tot);
        while (bits != 0 && r < want) {
          uint low = bits & (0u - bits);
          tp[r++] = w * 32 + (31 - clz(low));
          bits ^= low;
        }
        found = (uint)min((ulong)want, found + tot);
        if (found == want || (P >> 5) + (pass + 1) * LZ4P_WG >= nw)
          break;
      }
      if (found == 0) {
        err = E_TRUNC;
        break;
      }
      tb = 0;
      tc = found;
    }
    if (lid == 0) {
      werr = 0;
      flag[0] = flag[1] = flag[2] = 0;
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    uint n = min((uint)LZ4P_WG, tc - tb), k = lid;
    // Each item decodes one sequence.
    uint ll = 0, ml = 0, off = 0, lsrc = 0, end = 0;
    int last = 0, e2 = 0;
    if (k < n) {
      uint wb = LZ4P_NONE - 64;
      ulong2 q = (ulong2)(0, 0);
      uint pos = tp[tb + k];
      uint token = rd(in, pos++, &wb, &q);
      ll = token >> 4;
      if (ll == 15 && !extend(in, slen, &pos, &ll, &wb, &q))
        e2 = E_TRUNC;
      else if (ll > slen - pos)
        e2 = E_LIT;
      else {
        lsrc = pos;
        pos += ll;
        if (pos == slen && (token & 15))
          e2 = E_TRUNC; // a last sequence has a match length of 0
        else if (pos == slen)
          last = 1;
        else if (slen - pos < 2 + wide)
          e2 = E_TRUNC;
        else {
          off = rd(in, pos, &wb, &q) | (rd(in, pos + 1, &wb, &q) << 8);
          if (wide)
            off |= rd(in, pos + 2, &wb, &q) << 16;
          pos += 2 + wide;
          ml = (token & 15) + 4;
          if ((token & 15) == 15 && !extend(in, slen, &pos, &ml, &wb, &q))
            e2 = E_TRUNC;
        }
      }
      end = pos;
      if (e2)
        ll = ml = 0;
    }
    ulong tot;
    ulong start = op + lz4p_scan((ulong)ll + ml, sbuf, lid, &tot);
    if (k < n && !e2) {
      if (start + ll + ml > dlen)
        e2 = E_MATCH;
      else if (ml > 0 && (off == 0 || off > start + ll))
        e2 = E_OFF;
    }
    if (k < n) {
      o[k] = (uint)start; // all within dlen unless e2 is set
      md[k] = (uint)start + ll;
      moff[k] = off;
      pend[0][k] = ml > 0;
      if (k == n - 1) {
        o[n] = (uint)(start + ll + ml);
        wnext = end;
        wlast = last;
      }
    }
    if (e2)
      werr = e2;
    barrier(CLK_LOCAL_MEM_FENCE);
    err = werr;
    if (err)
      break;
    if (ll > 0)
      copy_fwd(out + (uint)start, in + lsrc, ll);
    barrier(CLK_GLOBAL_MEM_FENCE);
    // The matches, in rounds.
    uint d = md[k < n ? k : 0], a = d - off, bnd = a + min(ml, off);
    uint w0 = o[0];
    int pending = ml > 0;
    // A match that does not overlap itself and reads bytes that a match j
    // of this wave writes (all of them) reads them from where j copies
    // them instead, off_j further back (out[x] == out[x - off_j] for every
    // x that j writes): the dependency chains of repeated strings within a
    // wave then cost no rounds.
    if (pending && ml <= off) {
      for (uint it = 0; it < LZ4P_REDIR && bnd > w0; it++) {
        uint lo = lz4p_below(o, k, bnd);
        if (a < md[lo] || bnd > o[lo + 1])
          break;
        a -= moff[lo];
        bnd -= moff[lo];
      }
    }
#ifdef LZ4P_NOMATCH // benchmarks: all but the matches
    pending = 0;
#endif
    // One barrier a round: round r reads pend[r&1] and writes
    // pend[~r&1]; flag[r%3] says some match is still pending after it.
    for (uint r = 0;; r++) {
      const local uchar *cur = pend[r & 1];
      int ready = 0;
      if (pending) {
        ready = 1;
        if (bnd > w0) {
          uint lo = lz4p_below(o, k, bnd);
          for (int j = (int)lo; j >= 0; j--) {
            if (o[j + 1] <= a)
              break;
            if (j != (int)k && cur[j] && md[j] < bnd) {
              ready = 0;
              break;
            }
          }
        }
        if (ready) {
          if (ml <= off)
            copy_fwd(out + d, out + a, ml);
          else
            copy_match(out + d, off, ml);
          pending = 0;
        }
      }
      if (k < n)
        pend[~r & 1][k] = pending;
      if (lid == 0)
        flag[(r + 1) % 3] = 0;
      if (pending)
        flag[r % 3] = 1;
      barrier(CLK_GLOBAL_MEM_FENCE | CLK_LOCAL_MEM_FENCE);
      if (!flag[r % 3])
        break;
    }
    op += (uint)tot;
    P = wnext;
    lastLit = wlast;
    tb += n;
  }
  if (!err && !lastLit && !wide)
    err = E_TRUNC; // LZ4 ends with a literals-only sequence
  if (!err && op != dlen)
    err = E_LEN;
  if (lid == 0)
    status[b] = err;
}
