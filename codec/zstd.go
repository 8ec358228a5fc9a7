package codec

import (
	"errors"
	"fmt"

	"arc/format"

	"github.com/klauspost/compress/zstd"
)

// zstdLevel maps arc's level ladder onto klauspost/compress's zstd levels.
func zstdLevel(l Level) zstd.EncoderLevel {
	switch l {
	case LevelFast:
		return zstd.SpeedFastest
	case LevelHigh:
		return zstd.SpeedBetterCompression
	case LevelMax:
		return zstd.SpeedBestCompression
	}
	return zstd.SpeedDefault
}

// newZstdEncoder makes the block encoder: one frame per block, no frame
// checksum (arc checksums every block's raw bytes itself), a window as
// large as lz4x's so the two codecs see the same matches.
func newZstdEncoder(l Level) (*zstd.Encoder, error) {
	return zstd.NewWriter(nil,
		zstd.WithEncoderLevel(zstdLevel(l)),
		zstd.WithEncoderConcurrency(1),
		zstd.WithEncoderCRC(false),
		zstd.WithWindowSize(MaxOffsetLZ4X+1))
}

var errZstdSize = errors.New("frame declares another size than the block's raw size")

// decodeZstd decodes one zstd frame into dst. A declared content size must
// be len(dst); decoding is capped at cap(dst) either way, so nothing is
// allocated from the stored bytes' claims.
func (d *Decoder) decodeZstd(dst, src []byte) error {
	var h zstd.Header
	if err := h.Decode(src); err != nil {
		return err
	}
	if h.HasFCS && h.FrameContentSize != uint64(len(dst)) {
		return errZstdSize
	}
	if d.zstd == nil {
		z, err := zstd.NewReader(nil,
			zstd.WithDecoderConcurrency(1),
			zstd.WithDecoderMaxMemory(format.MaxBlockSize),
			zstd.WithDecoderMaxWindow(format.MaxBlockSize),
			zstd.WithDecodeAllCapLimit(true))
		if err != nil {
			return err
		}
		d.zstd = z
	}
	out, err := d.zstd.DecodeAll(src, dst[:0:len(dst)])
	if err != nil {
		return err
	}
	if len(out) != len(dst) {
		return fmt.Errorf("frame gave %d bytes, want %d", len(out), len(dst))
	}
	if len(out) > 0 && &out[0] != &dst[0] {
		copy(dst, out)
	}
	return nil
}
