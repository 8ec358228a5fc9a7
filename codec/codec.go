// Package codec compresses and decompresses arc's blocks and index, and
// computes their checksums. Every block is independent: its matches never
// reach outside it, so any block decodes alone.
//
// Encoders and decoders keep scratch state and are not safe for concurrent
// use: give each goroutine its own.
package codec

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"arc/format"

	"github.com/pierrec/lz4/v4"
	"github.com/zeebo/xxh3"
)

// Checksum is the checksum stored for every block's raw bytes and for the
// stored index: XXH3-64.
func Checksum(p []byte) uint64 { return xxh3.Hash(p) }

// Level is a point on the speed/ratio ladder, the same names for every codec.
type Level int

const (
	LevelFast    Level = 1
	LevelDefault Level = 2
	LevelHigh    Level = 3
	LevelMax     Level = 4
)

var levelNames = map[string]Level{"fast": LevelFast, "default": LevelDefault, "high": LevelHigh, "max": LevelMax}

// ParseLevel accepts a level's name or its number.
func ParseLevel(s string) (Level, error) {
	if l, ok := levelNames[strings.ToLower(s)]; ok {
		return l, nil
	}
	if n, err := strconv.Atoi(s); err == nil && n >= int(LevelFast) && n <= int(LevelMax) {
		return Level(n), nil
	}
	return 0, fmt.Errorf("unknown level %q (want fast, default, high, max or 1-4)", s)
}

func (l Level) String() string {
	for name, v := range levelNames {
		if v == l {
			return name
		}
	}
	return strconv.Itoa(int(l))
}

// Options choose how blocks are compressed.
type Options struct {
	// Codec is "auto" (the level's choice), "raw", "lz4", "lz4x" or "zstd".
	Codec string
	Level Level
}

// Validate reports whether o names a known codec and level.
func (o Options) Validate() error {
	switch o.Codec {
	case "auto", "raw", "lz4":
	default:
		return fmt.Errorf("unknown codec %q (want auto, raw or lz4)", o.Codec)
	}
	if o.Level < LevelFast || o.Level > LevelMax {
		return fmt.Errorf("level %d out of range", o.Level)
	}
	return nil
}

// Params describes o for the archive's parameter table, so that an archive
// says how it was made.
func (o Options) Params() []format.KV {
	return []format.KV{
		{Key: "codec", Value: o.Codec},
		{Key: "level", Value: o.Level.String()},
	}
}

// Encoder compresses blocks.
type Encoder struct {
	opts Options
	fast lz4.Compressor
	hc   lz4.CompressorHC
	buf  []byte
}

// NewEncoder returns an encoder for o.
func NewEncoder(o Options) (*Encoder, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	e := &Encoder{opts: o}
	switch o.Level {
	case LevelHigh:
		e.hc.Level = lz4.Level6
	case LevelMax:
		e.hc.Level = lz4.Level9
	}
	return e, nil
}

// Encode compresses src. It returns the codec id and the stored bytes,
// which alias src when the block is stored raw (because compression would
// not make it smaller) and otherwise the encoder's scratch buffer, valid
// until the next call.
func (e *Encoder) Encode(src []byte) (id uint8, stored []byte) {
	if len(src) == 0 || e.opts.Codec == "raw" {
		return format.CodecRaw, src
	}
	bound := lz4.CompressBlockBound(len(src))
	if cap(e.buf) < bound {
		e.buf = make([]byte, bound)
	}
	dst := e.buf[:bound]
	var n int
	var err error
	if e.opts.Level >= LevelHigh {
		n, err = e.hc.CompressBlock(src, dst)
	} else {
		n, err = e.fast.CompressBlock(src, dst)
	}
	if err != nil || n == 0 || n >= len(src) {
		return format.CodecRaw, src
	}
	return format.CodecLZ4, dst[:n]
}

// ErrBlock is wrapped by every decoding failure: the stored bytes do not
// decode to exactly the block's raw size.
var ErrBlock = errors.New("block does not decode")

// Decoder decompresses blocks.
type Decoder struct{}

// NewDecoder returns a decoder.
func NewDecoder() *Decoder { return &Decoder{} }

// Decode decompresses src, stored with codec id, into dst, whose length must
// be the block's raw size. Output of any other length is an error; dst's
// contents are unspecified after an error.
func (d *Decoder) Decode(id uint8, dst, src []byte) error {
	switch id {
	case format.CodecRaw:
		if len(src) != len(dst) {
			return fmt.Errorf("%w: raw block holds %d bytes, want %d", ErrBlock, len(src), len(dst))
		}
		copy(dst, src)
		return nil
	case format.CodecLZ4:
		n, err := lz4.UncompressBlock(src, dst)
		if err != nil {
			return fmt.Errorf("%w: lz4: %v", ErrBlock, err)
		}
		if n != len(dst) {
			return fmt.Errorf("%w: lz4 gave %d bytes, want %d", ErrBlock, n, len(dst))
		}
		return nil
	default:
		return fmt.Errorf("%w: codec %d is not supported by this build", ErrBlock, id)
	}
}
