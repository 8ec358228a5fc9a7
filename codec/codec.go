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

	"github.com/klauspost/compress/zstd"
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

// Codecs lists the names Options.Codec accepts.
var Codecs = []string{"auto", "raw", "lz4", "lz4x", "zstd"}

// Validate reports whether o names a known codec and level.
func (o Options) Validate() error {
	switch o.Codec {
	case "auto", "raw", "lz4", "lz4x", "zstd":
	default:
		return fmt.Errorf("unknown codec %q (want auto, raw, lz4, lz4x or zstd)", o.Codec)
	}
	if o.Level < LevelFast || o.Level > LevelMax {
		return fmt.Errorf("level %d out of range", o.Level)
	}
	return nil
}

// resolved is the codec that "auto" stands for at o.Level: lz4x at every
// level (it writes standard LZ4 for blocks whose matches all lie within
// 64 KiB, and raw for blocks that do not shrink).
func (o Options) resolved() string {
	if o.Codec == "auto" {
		return "lz4x"
	}
	return o.Codec
}

// Params describes o for the archive's parameter table, so that an archive
// says how it was made: the codec and level asked for, and the encoder
// settings that level means.
func (o Options) Params() []format.KV {
	kv := []format.KV{
		{Key: "codec", Value: o.Codec},
		{Key: "level", Value: o.Level.String()},
	}
	switch o.resolved() {
	case "lz4x":
		kv = append(kv, format.KV{Key: "lz4x", Value: levels[o.Level].String()})
	case "lz4":
		kv = append(kv, format.KV{Key: "lz4", Value: lz4Setting(o.Level)})
	case "zstd":
		kv = append(kv, format.KV{Key: "zstd", Value: zstdLevel(o.Level).String()})
	}
	return kv
}

func lz4Setting(l Level) string {
	switch l {
	case LevelHigh:
		return "pierrec/lz4 hc level 6"
	case LevelMax:
		return "pierrec/lz4 hc level 9"
	}
	return "pierrec/lz4 fast"
}

// Encoder compresses blocks.
type Encoder struct {
	opts  Options
	codec string // resolved codec
	fast  lz4.Compressor
	hc    lz4.CompressorHC
	spec  levelSpec
	near  *matcher // lz4x levels: 64 KiB window
	far   *matcher // lz4x levels: 16 MiB window, made on first use
	zstd  *zstd.Encoder
	buf   []byte
}

// NewEncoder returns an encoder for o.
func NewEncoder(o Options) (*Encoder, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	e := &Encoder{opts: o, codec: o.resolved()}
	switch e.codec {
	case "lz4":
		switch o.Level {
		case LevelHigh:
			e.hc.Level = lz4.Level6
		case LevelMax:
			e.hc.Level = lz4.Level9
		}
	case "lz4x":
		e.spec = levels[o.Level]
		e.near = newMatcher(e.spec.Near)
	case "zstd":
		z, err := newZstdEncoder(o.Level)
		if err != nil {
			return nil, err
		}
		e.zstd = z
	}
	return e, nil
}

// Encode compresses src. It returns the codec id and the stored bytes,
// which alias src when the block is stored raw (because compression would
// not make it smaller) and otherwise the encoder's scratch buffer, valid
// until the next call. The output depends only on src and the options.
func (e *Encoder) Encode(src []byte) (id uint8, stored []byte) {
	if len(src) == 0 || e.codec == "raw" {
		return format.CodecRaw, src
	}
	switch e.codec {
	case "lz4x":
		return e.encodeLZ4X(src)
	case "zstd":
		out := e.zstd.EncodeAll(src, e.scratch(len(src))[:0])
		if len(out) >= len(src) {
			return format.CodecRaw, src
		}
		if cap(out) > cap(e.buf) {
			e.buf = out[:cap(out)]
		}
		return format.CodecZstd, out
	}
	bound := lz4.CompressBlockBound(len(src))
	dst := e.scratch(bound)
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

// encodeLZ4X runs arc's own encoder (see levelSpec): standard LZ4 from
// the near finder; lz4x (or LZ4, when its offsets fit in two bytes) from
// the far one where the level runs it, kept when smaller, or run alone
// when its seeds pass SeedGate; raw when nothing shrinks.
func (e *Encoder) encodeLZ4X(src []byte) (uint8, []byte) {
	spec := e.spec
	dst := e.scratch(2 * len(src))
	a, b := dst[:len(src)], dst[len(src):]
	if spec.Far != nil && len(src) >= spec.FarFrom {
		if e.far == nil {
			e.far = newMatcher(*spec.Far)
		}
		window := min(spec.Far.Window, len(src)-1)
		if spec.SeedGate > 0 {
			cover := e.far.farSeeds(src, window)
			if float64(cover) < spec.SeedGate*float64(len(src)) {
				e.far.seed.drop()
				return e.encodeNear(src, a)
			}
			if id, stored, ok := e.encodeFar(src, b, window); ok {
				return id, stored
			}
			return e.encodeNear(src, a)
		}
		farID, far, ok := e.encodeFar(src, b, window)
		nearID, near := e.encodeNear(src, a)
		if ok && len(far) < len(near) {
			return farID, far
		}
		return nearID, near
	}
	return e.encodeNear(src, a)
}

// encodeNear runs the near finder into dst: LZ4, or raw when the block
// does not shrink.
func (e *Encoder) encodeNear(src, dst []byte) (uint8, []byte) {
	if n, _ := e.near.compress(dst, src, min(maxOffsetLZ4, len(src)-1)); n >= 0 {
		return format.CodecLZ4, dst[:n]
	}
	return format.CodecRaw, src
}

// encodeFar runs the far finder into dst: lz4x, or LZ4 when every offset
// fits in two bytes; ok is false when the block does not shrink.
func (e *Encoder) encodeFar(src, dst []byte, window int) (id uint8, stored []byte, ok bool) {
	n, maxOff := e.far.compress(dst, src, window)
	if n < 0 {
		return 0, nil, false
	}
	if maxOff <= maxOffsetLZ4 {
		return format.CodecLZ4, dst[:lz4xToLZ4(dst[:n])], true
	}
	return format.CodecLZ4X, dst[:n], true
}

// scratch returns the reused output buffer with at least n bytes.
func (e *Encoder) scratch(n int) []byte {
	if cap(e.buf) < n {
		e.buf = make([]byte, n)
	}
	return e.buf[:n]
}

// ErrBlock is wrapped by every decoding failure: the stored bytes do not
// decode to exactly the block's raw size.
var ErrBlock = errors.New("block does not decode")

// Decoder decompresses blocks.
type Decoder struct {
	zstd *zstd.Decoder // made on first use
}

// NewDecoder returns a decoder.
func NewDecoder() *Decoder { return &Decoder{} }

// Decode decompresses src, stored with codec id, into dst, whose length must
// be the block's raw size. Output of any other length is an error; dst's
// contents are unspecified after an error. Decode allocates nothing whose
// size comes from src.
func (d *Decoder) Decode(id uint8, dst, src []byte) error {
	switch id {
	case format.CodecRaw:
		if len(src) != len(dst) {
			return fmt.Errorf("%w: raw block holds %d bytes, want %d", ErrBlock, len(src), len(dst))
		}
		copy(dst, src)
		return nil
	case format.CodecLZ4:
		if dst == nil {
			// pierrec/lz4's assembly, like decodeLZ4X's, would store at
			// address 0 for a nil dst; an empty one has an address.
			dst = []byte{}
		}
		n, err := lz4.UncompressBlock(src, dst)
		if err != nil {
			return fmt.Errorf("%w: lz4: %v", ErrBlock, err)
		}
		if n != len(dst) {
			return fmt.Errorf("%w: lz4 gave %d bytes, want %d", ErrBlock, n, len(dst))
		}
		return nil
	case format.CodecLZ4X:
		if err := decodeLZ4X(dst, src); err != nil {
			return fmt.Errorf("%w: lz4x: %v", ErrBlock, err)
		}
		return nil
	case format.CodecZstd:
		if err := d.decodeZstd(dst, src); err != nil {
			return fmt.Errorf("%w: zstd: %v", ErrBlock, err)
		}
		return nil
	default:
		return fmt.Errorf("%w: codec %d is not supported by this build", ErrBlock, id)
	}
}
