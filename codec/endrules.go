package codec

import (
	"fmt"

	"arc/format"
)

// CheckEndRules walks the sequences of an lz4 or lz4x block (without
// decoding it) and checks LZ4's end-of-block rules, which the reference
// decoder enforces and arc's own decoders do not: the last 5 bytes are
// literals and the last match starts at least 12 bytes before the end.
// rawLen is the block's decoded size. Other codecs pass. It is for
// encoders arc does not run itself (a GPU kernel): their output must be the
// standard format, not only something arc can read.
func CheckEndRules(id uint8, stored []byte, rawLen int) error {
	offBytes := 2
	switch id {
	case format.CodecLZ4:
	case format.CodecLZ4X:
		offBytes = 3
	default:
		return nil
	}
	start, end, err := lastMatch(stored, offBytes)
	if err != nil {
		return err
	}
	if end > 0 && (end > rawLen-lastLiterals || start > rawLen-mfLimit) {
		return fmt.Errorf("%w: last match [%d,%d) of a %d-byte block breaks the end-of-block rules", ErrBlock, start, end, rawLen)
	}
	return nil
}

var errSequencesPastEnd = fmt.Errorf("%w: sequences run past the block", ErrBlock)

// lastMatch returns where the last match of a block with offBytes-byte
// offsets starts and ends in the decoded output (0, 0 without a match).
func lastMatch(b []byte, offBytes int) (start, end int, err error) {
	// length reads a 255-continued length after the token's nibble.
	length := func(s, n int) (int, int, bool) {
		for {
			if s >= len(b) {
				return 0, 0, false
			}
			c := int(b[s])
			s++
			n += c
			if c != 255 {
				return s, n, true
			}
		}
	}
	s, d := 0, 0
	for s < len(b) {
		tok := b[s]
		s++
		lit := int(tok >> 4)
		if lit == 15 {
			var ok bool
			if s, lit, ok = length(s, lit); !ok {
				return 0, 0, errSequencesPastEnd
			}
		}
		s += lit
		d += lit
		if s == len(b) {
			return start, end, nil
		}
		s += offBytes
		ml := int(tok&15) + minMatch
		if tok&15 == 15 {
			var ok bool
			if s, ml, ok = length(s, ml); !ok {
				return 0, 0, errSequencesPastEnd
			}
		}
		if s > len(b) {
			return 0, 0, errSequencesPastEnd
		}
		start, end = d, d+ml
		d += ml
	}
	return 0, 0, errSequencesPastEnd
}
