package codec

import (
	"errors"
	"testing"

	"arc/format"
)

func TestCheckEndRules(t *testing.T) {
	// "abcd", a 4-byte match at offset 4 covering output [4,8), then n literals.
	block := func(offBytes, n int) []byte {
		b := []byte{0x40, 'a', 'b', 'c', 'd', 4, 0}
		if offBytes == 3 {
			b = append(b, 0)
		}
		b = append(b, byte(n<<4))
		for i := range n {
			b = append(b, byte('e'+i))
		}
		return b
	}
	for _, c := range []struct {
		name   string
		id     uint8
		stored []byte
		rawLen int
		ok     bool
	}{
		{"lz4, last match 12 bytes before the end", format.CodecLZ4, block(2, 8), 16, true},
		{"lz4, last match 11 bytes before the end", format.CodecLZ4, block(2, 7), 15, false},
		{"lz4x, last match 12 bytes before the end", format.CodecLZ4X, block(3, 8), 16, true},
		{"lz4x, last match 11 bytes before the end", format.CodecLZ4X, block(3, 7), 15, false},
		{"literals only", format.CodecLZ4, []byte{0x30, 'x', 'y', 'z'}, 3, true},
		{"literals cut short", format.CodecLZ4, []byte{0x30, 'x', 'y'}, 3, false},
		{"length continuation missing", format.CodecLZ4, []byte{0xf0}, 15, false},
		{"offset cut short", format.CodecLZ4, []byte{0x40, 'a', 'b', 'c', 'd', 4}, 8, false},
		{"empty block", format.CodecLZ4, nil, 0, false},
		{"another codec is not walked", format.CodecZstd, []byte{1, 2, 3}, 99, true},
	} {
		err := CheckEndRules(c.id, c.stored, c.rawLen)
		if c.ok && err != nil {
			t.Errorf("%s: %v", c.name, err)
		}
		if !c.ok && !errors.Is(err, ErrBlock) {
			t.Errorf("%s: got %v, want an error wrapping ErrBlock", c.name, err)
		}
	}
}
