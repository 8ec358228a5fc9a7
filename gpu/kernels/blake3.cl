// BLAKE3-256 of many independent inputs in one launch.
//
// The host packs every input at a 64-byte aligned offset of one buffer and
// zero-fills the tail of its last 64-byte block, so a block is always loaded
// whole and its padding already reads as the zeros BLAKE3 wants.
//
// Pass 1 (blake3_chunks): one work-item per 1 KiB chunk of any input. A
// one-chunk input is its own root and writes its digest directly; other
// chunks write their chaining value.
// Pass 2 (blake3_parents): one work-group per input; the group merges
// chaining values level by level (pairs left to right, an odd last node
// carried up unchanged, which is exactly BLAKE3's left-complete tree), ping-
// ponging between two buffers, and the last merge is the root.

#define CHUNK_START 1u
#define CHUNK_END 2u
#define PARENT 4u
#define ROOT 8u

#define IV0 0x6A09E667u
#define IV1 0xBB67AE85u
#define IV2 0x3C6EF372u
#define IV3 0xA54FF53Au
#define IV4 0x510E527Fu
#define IV5 0x9B05688Cu
#define IV6 0x1F83D9ABu
#define IV7 0x5BE0CD19u

#define ROTR(x, n) rotate((x), (uint)(32 - (n)))

#define G(a, b, c, d, x, y)                                                    \
  do {                                                                         \
    v[a] = v[a] + v[b] + (x);                                                  \
    v[d] = ROTR(v[d] ^ v[a], 16);                                              \
    v[c] = v[c] + v[d];                                                        \
    v[b] = ROTR(v[b] ^ v[c], 12);                                              \
    v[a] = v[a] + v[b] + (y);                                                  \
    v[d] = ROTR(v[d] ^ v[a], 8);                                               \
    v[c] = v[c] + v[d];                                                        \
    v[b] = ROTR(v[b] ^ v[c], 7);                                               \
  } while (0)

// The message schedule is unrolled with constant indices so that m[] and
// v[] stay in registers.
#define ROUND(s0, s1, s2, s3, s4, s5, s6, s7, s8, s9, s10, s11, s12, s13, s14, \
              s15)                                                             \
  G(0, 4, 8, 12, m[s0], m[s1]);                                                \
  G(1, 5, 9, 13, m[s2], m[s3]);                                                \
  G(2, 6, 10, 14, m[s4], m[s5]);                                               \
  G(3, 7, 11, 15, m[s6], m[s7]);                                               \
  G(0, 5, 10, 15, m[s8], m[s9]);                                               \
  G(1, 6, 11, 12, m[s10], m[s11]);                                             \
  G(2, 7, 8, 13, m[s12], m[s13]);                                              \
  G(3, 4, 9, 14, m[s14], m[s15]);

// compress updates cv in place with the first 8 words of the output.
inline void compress(uint cv[8], const uint m[16], ulong counter, uint blen,
                     uint flags) {
  uint v[16];
  v[0] = cv[0]; v[1] = cv[1]; v[2] = cv[2]; v[3] = cv[3];
  v[4] = cv[4]; v[5] = cv[5]; v[6] = cv[6]; v[7] = cv[7];
  v[8] = IV0; v[9] = IV1; v[10] = IV2; v[11] = IV3;
  v[12] = (uint)counter; v[13] = (uint)(counter >> 32);
  v[14] = blen; v[15] = flags;
  ROUND(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)
  ROUND(2, 6, 3, 10, 7, 0, 4, 13, 1, 11, 12, 5, 9, 14, 15, 8)
  ROUND(3, 4, 10, 12, 13, 2, 7, 14, 6, 5, 9, 0, 11, 15, 8, 1)
  ROUND(10, 7, 12, 9, 14, 3, 13, 15, 4, 0, 11, 2, 5, 8, 1, 6)
  ROUND(12, 13, 9, 11, 15, 10, 14, 8, 7, 2, 5, 3, 0, 1, 6, 4)
  ROUND(9, 14, 11, 5, 8, 12, 15, 1, 13, 3, 0, 10, 2, 6, 4, 7)
  ROUND(11, 15, 5, 0, 1, 9, 8, 6, 14, 10, 2, 12, 3, 4, 7, 13)
  cv[0] = v[0] ^ v[8]; cv[1] = v[1] ^ v[9]; cv[2] = v[2] ^ v[10];
  cv[3] = v[3] ^ v[11]; cv[4] = v[4] ^ v[12]; cv[5] = v[5] ^ v[13];
  cv[6] = v[6] ^ v[14]; cv[7] = v[7] ^ v[15];
}

inline void iv(uint cv[8]) {
  cv[0] = IV0; cv[1] = IV1; cv[2] = IV2; cv[3] = IV3;
  cv[4] = IV4; cv[5] = IV5; cv[6] = IV6; cv[7] = IV7;
}

inline void store_cv(global uint *dst, const uint cv[8]) {
  vstore8((uint8)(cv[0], cv[1], cv[2], cv[3], cv[4], cv[5], cv[6], cv[7]), 0,
          dst);
}

inline void load_cv(uint cv[8], const global uint *src) {
  uint8 x = vload8(0, src);
  cv[0] = x.s0; cv[1] = x.s1; cv[2] = x.s2; cv[3] = x.s3;
  cv[4] = x.s4; cv[5] = x.s5; cv[6] = x.s6; cv[7] = x.s7;
}

// desc holds 3 words per input: byte offset in data, length, first chunk;
// from word map_off on, it maps every chunk to its input.
kernel void blake3_chunks(const global uint *data, const global uint *desc,
                          uint map_off, uint nchunks, global uint *cvs,
                          global uint *digests) {
  uint c = get_global_id(0);
  if (c >= nchunks)
    return;
  uint in = desc[map_off + c];
  uint off = desc[3 * in], len = desc[3 * in + 1], first = desc[3 * in + 2];
  uint idx = c - first;
  uint total = len == 0 ? 1 : (len + 1023) / 1024;
  uint start = idx * 1024;
  uint clen = min(len - start, 1024u);
  uint nblocks = clen == 0 ? 1 : (clen + 63) / 64;
  const global uint *p = data + (off + start) / 4;
  uint cv[8];
  iv(cv);
  for (uint b = 0; b < nblocks; b++) {
    uint m[16];
    // Two 8-word loads, not one of 16: PoCL's CPU targets without
    // AVX-512 warned of a uint16's ABI on every build ("1 warning
    // generated." on stderr); the bytes loaded are the same.
    uint8 lo = vload8(2 * b, p), hi = vload8(2 * b + 1, p);
    m[0] = lo.s0; m[1] = lo.s1; m[2] = lo.s2; m[3] = lo.s3;
    m[4] = lo.s4; m[5] = lo.s5; m[6] = lo.s6; m[7] = lo.s7;
    m[8] = hi.s0; m[9] = hi.s1; m[10] = hi.s2; m[11] = hi.s3;
    m[12] = hi.s4; m[13] = hi.s5; m[14] = hi.s6; m[15] = hi.s7;
    uint blen = min(clen - b * 64, 64u);
    uint flags = (b == 0 ? CHUNK_START : 0u);
    if (b == nblocks - 1)
      flags |= CHUNK_END | (total == 1 ? ROOT : 0u);
    compress(cv, m, (ulong)idx, blen, flags);
  }
  if (total == 1)
    store_cv(digests + 8 * in, cv);
  else
    store_cv(cvs + 8 * c, cv);
}

inline void parent(uint out[8], const global uint *l, const global uint *r,
                   uint flags) {
  uint m[16];
  uint8 a = vload8(0, l), b = vload8(0, r);
  m[0] = a.s0; m[1] = a.s1; m[2] = a.s2; m[3] = a.s3;
  m[4] = a.s4; m[5] = a.s5; m[6] = a.s6; m[7] = a.s7;
  m[8] = b.s0; m[9] = b.s1; m[10] = b.s2; m[11] = b.s3;
  m[12] = b.s4; m[13] = b.s5; m[14] = b.s6; m[15] = b.s7;
  iv(out);
  compress(out, m, 0, 64, flags);
}

kernel void blake3_parents(const global uint *desc, global uint *cvs,
                           global uint *tmp, global uint *digests) {
  uint in = get_group_id(0);
  uint lid = get_local_id(0), lsize = get_local_size(0);
  uint len = desc[3 * in + 1], first = desc[3 * in + 2];
  uint n = len == 0 ? 1 : (len + 1023) / 1024;
  if (n < 2)
    return;
  global uint *src = cvs + 8 * first;
  global uint *dst = tmp + 8 * first;
  while (n > 2) {
    uint pairs = n / 2;
    for (uint i = lid; i < pairs; i += lsize) {
      uint cv[8];
      parent(cv, src + 16 * i, src + 16 * i + 8, PARENT);
      store_cv(dst + 8 * i, cv);
    }
    if ((n & 1) && lid == 0) {
      uint cv[8];
      load_cv(cv, src + 8 * (n - 1));
      store_cv(dst + 8 * pairs, cv);
    }
    barrier(CLK_GLOBAL_MEM_FENCE);
    n = pairs + (n & 1);
    global uint *t = src;
    src = dst;
    dst = t;
  }
  if (lid == 0) {
    uint cv[8];
    parent(cv, src, src + 8, PARENT | ROOT);
    store_cv(digests + 8 * in, cv);
  }
}
