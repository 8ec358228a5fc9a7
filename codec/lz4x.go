package codec

import (
	"encoding/binary"
	"errors"
)

// The lz4x block format (codec id format.CodecLZ4X) is the LZ4 block format
// with one change: a match offset takes 3 bytes, little-endian, instead of 2.
// Offsets run from 1 to MaxOffsetLZ4X (16 MiB - 1), but a match never reaches
// before the start of its block: blocks stay independent.
//
// A block is a run of sequences. Each sequence is
//
//	token            1 byte: high nibble = literal length L, low nibble = match length M-4
//	L extension      if L == 15: bytes added to L, each 255 means "another byte follows"
//	literals         L bytes
//	offset           3 bytes little-endian, 1..2^24-1   } absent in the last sequence,
//	M extension      if M-4 == 15: like the L extension  } which ends after its literals
//	                                                        and has M-4 = 0 in its token
//
// and the LZ4 end-of-block rules hold for what the encoder writes: the last
// sequence is literals only, the last 5 bytes of a block are literals, and
// the last match starts at least 12 bytes before the end. The decoders do
// not need these rules to be safe and check only what makes the output
// exact: they also accept a block that ends right after a match.
const (
	MaxOffsetLZ4X = 1<<24 - 1
	maxOffsetLZ4  = 1<<16 - 1
	minMatch      = 4
	lastLiterals  = 5  // the last 5 bytes of a block are literals
	mfLimit       = 12 // the last match starts at least 12 bytes before the end
)

var (
	errTruncated = errors.New("stored block ends inside a sequence")
	errOffset    = errors.New("match offset is zero or reaches before the block")
	errOverrun   = errors.New("sequence writes past the block's raw size")
	errShort     = errors.New("sequences end before the block's raw size")
)

// decodeLZ4XGo decodes the lz4x block src into dst, which must be exactly the
// block's raw size. It reads and writes only inside src and dst, allocates
// nothing, and fails unless the sequences produce exactly len(dst) bytes.
//
// Speed comes from copying short literals and matches in 8- and 16-byte
// steps when both buffers have room for the overshoot (bytes written past the
// sequence's end are overwritten by the following sequences, and the final
// length is checked), and from doubling copies for overlapping matches.
func decodeLZ4XGo(dst, src []byte) error {
	if len(src) == 0 {
		return errTruncated
	}
	d, s := 0, 0
	for {
		if s >= len(src) {
			// After a match: tolerated when the output is complete (the
			// encoder never writes this; the assembly decoder accepts it).
			if d != len(dst) {
				return errShort
			}
			return nil
		}
		tok := int(src[s])
		s++

		// Literals.
		lit := tok >> 4
		if lit == 15 {
			for {
				if s >= len(src) {
					return errTruncated
				}
				b := int(src[s])
				s++
				lit += b
				if b != 255 {
					break
				}
				if lit > len(dst) {
					return errOverrun
				}
			}
		}
		if lit <= 16 && len(src)-s >= 16 && len(dst)-d >= 16 {
			// Short literals: copy 16 bytes, keep lit of them.
			binary.LittleEndian.PutUint64(dst[d:], binary.LittleEndian.Uint64(src[s:]))
			binary.LittleEndian.PutUint64(dst[d+8:], binary.LittleEndian.Uint64(src[s+8:]))
		} else {
			if lit > len(src)-s {
				return errTruncated
			}
			if lit > len(dst)-d {
				return errOverrun
			}
			copy(dst[d:d+lit], src[s:s+lit])
		}
		d += lit
		s += lit

		if s == len(src) {
			// The last sequence: literals only, match length zero.
			if tok&15 != 0 {
				return errTruncated
			}
			if d != len(dst) {
				return errShort
			}
			return nil
		}

		// Match.
		if len(src)-s < 3 {
			return errTruncated
		}
		off := int(src[s]) | int(src[s+1])<<8 | int(src[s+2])<<16
		s += 3
		if off == 0 || off > d {
			return errOffset
		}
		ml := tok&15 + minMatch
		if ml == 15+minMatch {
			for {
				if s >= len(src) {
					return errTruncated
				}
				b := int(src[s])
				s++
				ml += b
				if b != 255 {
					break
				}
				if ml > len(dst) {
					return errOverrun
				}
			}
		}
		m := d - off
		if ml <= 16 && off >= 16 && len(dst)-d >= 16 {
			// Short, non-overlapping within 16 bytes: two 8-byte steps.
			binary.LittleEndian.PutUint64(dst[d:], binary.LittleEndian.Uint64(dst[m:]))
			binary.LittleEndian.PutUint64(dst[d+8:], binary.LittleEndian.Uint64(dst[m+8:]))
			d += ml
			continue
		}
		if ml > len(dst)-d {
			return errOverrun
		}
		end := d + ml
		switch {
		case off >= ml:
			copy(dst[d:end], dst[m:m+ml])
			d = end
		case off >= 8 && len(dst)-end >= 8:
			// Overlapping, but every 8-byte step reads bytes already written.
			for d < end {
				binary.LittleEndian.PutUint64(dst[d:], binary.LittleEndian.Uint64(dst[m:]))
				d += 8
				m += 8
			}
			d = end
		default:
			// Short period: the repeated pattern dst[m:d] doubles with every copy.
			for d < end {
				d += copy(dst[d:end], dst[m:d])
			}
		}
	}
}
