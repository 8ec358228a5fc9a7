// LZ4 block compression (the standard block format, codec id 1), one
// work-group per block. The work-group clears a hash table of 2^14 16-bit entries (32 KiB)
// positions in local memory together; then work-item 0 runs a greedy
// match search (4-byte hash, the newest position per bucket, backward
// extension, skip acceleration after misses) and writes the sequences.
// Everything depends only on the block's bytes, so the output is the same
// on every device and every run. The LZ4 end rules hold: the last 5 bytes
// are literals and the last match starts at least 12 bytes before the end.
// A block whose output would not be smaller than its input gets length -1
// (the host stores it raw).

#define ENC_HLOG 14

inline uint ld32(const global uchar *p) {
  return (uint)p[0] | ((uint)p[1] << 8) | ((uint)p[2] << 16) |
         ((uint)p[3] << 24);
}

inline uint hash4(uint v) { return (v * 2654435761u) >> (32 - ENC_HLOG); }

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

kernel void lz4_encode(const global uchar *restrict src,
                       global uchar *restrict dst, const global uint *desc,
                       global int *outlen) {
  uint b = get_group_id(0), lid = get_local_id(0);
  uint soff = desc[4 * b], slen = desc[4 * b + 1];
  uint doff = desc[4 * b + 2], cap = desc[4 * b + 3];
  const global uchar *in = src + soff;
  global uchar *o = dst + doff;
  // The low 16 bits of a position: matches reach back at most 65535 bytes,
  // so the nearest earlier position with those bits is the one meant. A
  // stale or empty entry only costs a comparison that fails (or finds
  // equal bytes, which is a match all the same).
  local ushort table[1 << ENC_HLOG];

  for (uint i = lid; i < (1u << ENC_HLOG); i += get_local_size(0))
    table[i] = 0;
  barrier(CLK_LOCAL_MEM_FENCE);
  if (lid != 0)
    return;

  uint op = 0, anchor = 0, ip = 0;
  if (slen >= 13) {
    uint mflimit = slen - 12, matchlimit = slen - 5;
    while (ip < mflimit) {
      uint v = ld32(in + ip);
      uint h = hash4(v);
      uint ref = (ip & ~0xffffu) | table[h];
      if (ref >= ip)
        ref -= 0x10000; // wraps below 0 for the first 64 KiB: rejected
      table[h] = (ushort)ip;
      if (ref < ip && ld32(in + ref) == v) {
        uint ml = 4;
        while (ip + ml < matchlimit && in[ref + ml] == in[ip + ml])
          ml++;
        while (ip > anchor && ref > 0 && in[ip - 1] == in[ref - 1]) {
          ip--;
          ref--;
          ml++;
        }
        op = emit(o, op, cap, in + anchor, ip - anchor, ip - ref, ml);
        if (op == 0xffffffffu) {
          outlen[b] = -1;
          return;
        }
        ip += ml;
        anchor = ip;
        if (ip - 2 < mflimit) // feed the table inside the match
          table[hash4(ld32(in + ip - 2))] = (ushort)(ip - 2);
      } else {
        ip += 1 + ((ip - anchor) >> 7);
      }
    }
  }
  op = emit(o, op, cap, in + anchor, slen - anchor, 0, 0);
  outlen[b] = op == 0xffffffffu ? -1 : (int)op;
}
