package codec

import (
	"bytes"
	"fmt"

	"arc/format"

	"github.com/klauspost/compress/zstd"
)

// CompressIndex compresses the encoded index with zstd. zstd decodes several
// times faster than zlib at the same size, and the index is read at every
// open and mount.
func CompressIndex(raw []byte) ([]byte, error) {
	enc, err := zstd.NewWriter(nil,
		zstd.WithEncoderLevel(zstd.SpeedBetterCompression),
		zstd.WithEncoderCRC(true),
		zstd.WithEncoderConcurrency(1),
		zstd.WithWindowSize(8<<20))
	if err != nil {
		return nil, err
	}
	defer enc.Close()
	return enc.EncodeAll(raw, make([]byte, 0, len(raw)/4+64)), nil
}

// DecompressIndex decompresses a stored index whose footer claims rawSize
// bytes. It never allocates more than rawSize (itself capped by
// format.MaxIndexSize) and fails unless the output is exactly rawSize bytes.
func DecompressIndex(stored []byte, rawSize uint64) ([]byte, error) {
	if rawSize > format.MaxIndexSize {
		return nil, fmt.Errorf("%w: index of %d bytes", format.ErrLimit, rawSize)
	}
	dec, err := zstd.NewReader(nil,
		zstd.WithDecoderConcurrency(1),
		// The cap covers the frame's window too, which the encoder may
		// declare larger than a small index: allow at least 16 MiB.
		zstd.WithDecoderMaxMemory(max(rawSize+1, 16<<20)),
		zstd.WithDecoderMaxWindow(64<<20))
	if err != nil {
		return nil, err
	}
	defer dec.Close()
	// The footer's rawSize is a claim: reserve only what the stored bytes
	// can plausibly expand to and let the output grow (to at most rawSize,
	// the decoder's memory cap), so that a few hostile bytes claiming
	// 16 GiB do not allocate it.
	out, err := dec.DecodeAll(stored, make([]byte, 0, min(rawSize, 1<<20+64*uint64(len(stored)))))
	if err != nil {
		return nil, fmt.Errorf("%w: index does not decompress: %v", format.ErrCorrupt, err)
	}
	if uint64(len(out)) != rawSize {
		return nil, fmt.Errorf("%w: index decompresses to %d bytes, footer says %d", format.ErrCorrupt, len(out), rawSize)
	}
	if !bytes.HasPrefix(out, format.IndexMagic[:]) {
		return nil, fmt.Errorf("%w: decompressed index has no magic", format.ErrCorrupt)
	}
	return out, nil
}
