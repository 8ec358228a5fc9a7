// Batch decompression of LZ4 blocks (the standard block format) and lz4x
// blocks (the same with 3-byte match offsets, codec/lz4x.go), one
// work-group per block.
//
// Work-item 0 parses a wave of up to LZ4_WG sequences into local memory and
// checks every bound as it goes (a literal run or match past either end, a
// zero offset or one before the block's start, output not exactly the raw
// size): a block that fails gets a non-zero status and the host never uses
// its output. Then each work-item copies one sequence: all literal runs at
// once, then the matches in rounds: a match may copy once every byte it
// reads is final, that is, lies below the lowest output position of any
// match still pending (a match that overlaps itself copies forwards byte by
// byte, which is what LZ4 means by it). No sub-groups: only local memory
// and barriers, as on NVIDIA's OpenCL.
//
// Blocks of lz4ParMin raw bytes and more go to lz4_decode_par (lz4par.cl),
// which spreads the parse over the work-group.

#ifndef LZ4_WG
#define LZ4_WG 32
#endif

#define E_TRUNC 1 // input ends inside a sequence
#define E_LIT 2   // literal run past the input or the output
#define E_OFF 3   // zero offset, or one before the block's start
#define E_MATCH 4 // match past the output
#define E_LEN 5   // output shorter than the raw size

// copy_fwd copies n bytes from s to d in 16-, 8- and 4-byte steps whose
// loads are independent of each other (one memory latency per step rather
// than one per byte). Safe when the ranges do not overlap, or when d - s is
// at least min(16, n): every step then reads only bytes already final.
inline void copy_fwd(global uchar *d, const global uchar *s, uint n) {
  uint i = 0;
  for (; i + 16 <= n; i += 16)
    vstore16(vload16(0, s + i), 0, d + i);
  if (i + 8 <= n) {
    vstore8(vload8(0, s + i), 0, d + i);
    i += 8;
  }
  if (i + 4 <= n) {
    vstore4(vload4(0, s + i), 0, d + i);
    i += 4;
  }
  for (; i < n; i++)
    d[i] = s[i];
}

// copy_match writes a match of n bytes at d from off bytes back.
inline void copy_match(global uchar *d, uint off, uint n) {
  if (off >= 16 || off >= n) {
    copy_fwd(d, d - off, n);
    return;
  }
  // A short period: the output repeats the off bytes before d, so load
  // them once and store the first whole periods of 16 bytes or more
  // without reading back what was just written; a long match then copies
  // the rest from that far back, 16 bytes a step.
  uchar pat[16];
  for (uint k = 0; k < off; k++)
    pat[k] = d[(int)k - (int)off];
  uint p = off * ((16 + off - 1) / off); // 16..30: whole periods
  uint head = n > 2 * p ? p : n;
  for (uint i = 0, k = 0; i < head; i++) {
    d[i] = pat[k];
    k = k + 1 == off ? 0 : k + 1;
  }
  if (head < n)
    copy_fwd(d + p, d, n - p);
}

// rd returns the byte at pos through a 16-byte window of the input held in
// registers (*q covers [*wb, *wb+16)); only a position past the window
// loads, 16 bytes at once. The parse is one dependent chain, so a sequence
// whose token, offset and length bytes share a window costs one memory
// latency instead of four or five. Windows may read up to 15 bytes past a
// block (the host pads the buffer); bounds are checked against slen.
inline uint rd(const global uchar *in, uint pos, uint *wb, ulong2 *q) {
  uint k = pos - *wb;
  if (k >= 16) {
    *wb = pos;
    *q = as_ulong2(vload16(0, in + pos));
    k = 0;
  }
  ulong w = k < 8 ? (*q).x : (*q).y;
  return (uint)(w >> (8 * (k & 7))) & 255u;
}

// extend adds a length's extension bytes (each 255 says another follows)
// to *n; false when the input ends first.
inline bool extend(const global uchar *in, uint slen, uint *ip, uint *n,
                   uint *wb, ulong2 *q) {
  uint x;
  do {
    // A length past 2^31 fits no buffer: fail before it can wrap.
    if (*ip >= slen || *n >= 0x80000000u)
      return false;
    x = rd(in, (*ip)++, wb, q);
    *n += x;
  } while (x == 255);
  return true;
}

kernel void lz4_decode(const global uchar *restrict src,
                       global uchar *restrict dst,
                       const global uint *desc, global int *status) {
  uint b = get_group_id(0), lid = get_local_id(0);
  uint soff = desc[5 * b], slen = desc[5 * b + 1];
  uint doff = desc[5 * b + 2], dlen = desc[5 * b + 3];
  uint wide = desc[5 * b + 4] == 2; // lz4x: 3-byte offsets
  const global uchar *in = src + soff;
  global uchar *out = dst + doff;

  local uint lit_src[LZ4_WG], lit_len[LZ4_WG], out_pos[LZ4_WG];
  local uint m_off[LZ4_WG], m_len[LZ4_WG];
  local int wave_n, wave_err, wave_fin;
  local uint min_pending;

  uint ip = 0, op = 0; // work-item 0's parse state
  uint wb = 0;
  ulong2 q = as_ulong2(vload16(0, in));
  int err = 0;
  for (;;) {
    if (lid == 0) {
      int n = 0, fin = 0;
      while (n < LZ4_WG) {
        if (ip >= slen) {
          // lz4x (like its CPU decoder) accepts a block that ends right
          // after a match when the output is complete.
          if (wide && ip > 0 && op == dlen)
            fin = 1;
          else
            err = E_TRUNC;
          break;
        }
        uint token = rd(in, ip++, &wb, &q);
        uint ll = token >> 4;
        if (ll == 15 && !extend(in, slen, &ip, &ll, &wb, &q)) {
          err = E_TRUNC;
          break;
        }
        if (ll > slen - ip || ll > dlen - op) {
          err = E_LIT;
          break;
        }
        lit_src[n] = ip;
        lit_len[n] = ll;
        out_pos[n] = op;
        ip += ll;
        op += ll;
        if (ip == slen) { // the last sequence has literals only
          if (token & 15) { // and a match length of 0, as the CPU's
            err = E_TRUNC;
            break;
          }
          m_len[n] = 0;
          m_off[n] = 0;
          n++;
          fin = 1;
          break;
        }
        if (slen - ip < 2 + wide) {
          err = E_TRUNC;
          break;
        }
        uint off = rd(in, ip, &wb, &q) | (rd(in, ip + 1, &wb, &q) << 8);
        if (wide)
          off |= rd(in, ip + 2, &wb, &q) << 16;
        ip += 2 + wide;
        if (off == 0 || off > op) {
          err = E_OFF;
          break;
        }
        uint ml = (token & 15) + 4;
        if ((token & 15) == 15 && !extend(in, slen, &ip, &ml, &wb, &q)) {
          err = E_TRUNC;
          break;
        }
        if (ml > dlen - op) {
          err = E_MATCH;
          break;
        }
        m_off[n] = off;
        m_len[n] = ml;
        op += ml;
        n++;
      }
      if (!err && fin && op != dlen)
        err = E_LEN;
      wave_n = n;
      wave_err = err;
      wave_fin = fin;
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    int n = wave_n, fin = wave_fin;
    err = wave_err;
    if (err)
      break;

    uint mdst = 0, moff = 0, mlen = 0;
#ifdef LZ4_PARSE_ONLY // benchmarks: what the serial parse alone costs
    if (fin)
      break;
    barrier(CLK_LOCAL_MEM_FENCE);
    continue;
#endif
    if (lid < (uint)n) {
      uint s = lit_src[lid], l = lit_len[lid], o = out_pos[lid];
      copy_fwd(out + o, in + s, l);
      mdst = o + l;
      moff = m_off[lid];
      mlen = m_len[lid];
    }
    int pending = mlen > 0;
    barrier(CLK_GLOBAL_MEM_FENCE | CLK_LOCAL_MEM_FENCE);
    for (;;) {
      if (lid == 0)
        min_pending = 0xffffffffu;
      barrier(CLK_LOCAL_MEM_FENCE);
      if (pending)
        atomic_min(&min_pending, mdst);
      barrier(CLK_LOCAL_MEM_FENCE);
      uint mp = min_pending;
      if (mp == 0xffffffffu)
        break;
      if (pending && mdst - moff + min(mlen, moff) <= mp) {
        copy_match(out + mdst, moff, mlen);
        pending = 0;
      }
      barrier(CLK_GLOBAL_MEM_FENCE | CLK_LOCAL_MEM_FENCE);
    }
    if (fin)
      break;
    barrier(CLK_LOCAL_MEM_FENCE); // all have read the wave before the next
  }
  if (lid == 0)
    status[b] = err;
}
