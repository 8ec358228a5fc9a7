package codec

import (
	"bytes"
	"fmt"
	"io"

	"arc/format"
	"arc/internal/hugepage"

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
// A frame that declares its content size has that much reserved at once
// (up to rawSize), so a reader uses it for small claims only and streams
// large ones (OpenIndex).
func DecompressIndex(stored []byte, rawSize uint64) ([]byte, error) {
	if rawSize > format.MaxIndexSize {
		return nil, fmt.Errorf("%w: index of %d bytes", format.ErrLimit, rawSize)
	}
	dec, err := newIndexDecoder(nil, rawSize)
	if err != nil {
		return nil, err
	}
	defer dec.Close()
	// The output becomes the index's tables (format.DecodeOwnedIndex) and
	// lives as long as the archive is open: huge pages make its first
	// touch cheap (internal/hugepage).
	out, err := dec.DecodeAll(stored, hugepage.Make[byte](int(indexAlloc(stored, rawSize)))[:0])
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

// newIndexDecoder returns a zstd decoder for an index of rawSize bytes.
func newIndexDecoder(r io.Reader, rawSize uint64) (*zstd.Decoder, error) {
	return zstd.NewReader(r,
		zstd.WithDecoderConcurrency(1),
		// The cap covers the frame's window too, which the encoder may
		// declare larger than a small index: allow at least 16 MiB.
		zstd.WithDecoderMaxMemory(max(rawSize+1, 16<<20)),
		zstd.WithDecoderMaxWindow(64<<20))
}

// indexAlloc is what may be allocated for the decompressed index (or one
// of its sections) before its bytes arrive. The footer's rawSize is a
// claim: reserve only what the stored bytes can plausibly expand to and
// let the output grow as it comes (to at most rawSize, the decoder's
// memory cap), so that a few hostile bytes claiming 16 GiB do not
// allocate it.
func indexAlloc(stored []byte, rawSize uint64) uint64 {
	return min(rawSize, 1<<20+64*uint64(len(stored)))
}

// IndexReader streams a stored index's decompressed bytes, for
// format.DecodeIndexFrom: an archive is then opened without holding the
// whole decompressed index beside its decoded tables.
type IndexReader struct {
	dec   *zstd.Decoder
	Alloc uint64 // what DecodeIndexFrom may allocate before bytes arrive
}

// OpenIndex starts decompressing a stored index whose footer claims
// rawSize bytes; End checks that it holds exactly that many. The decoder
// allocates the window its frame declares, at most 64 MiB (what
// docs/FORMAT.md lets readers accept), before any byte arrives; nothing
// is allocated on the claim itself.
func OpenIndex(stored []byte, rawSize uint64) (*IndexReader, error) {
	if rawSize > format.MaxIndexSize {
		return nil, fmt.Errorf("%w: index of %d bytes", format.ErrLimit, rawSize)
	}
	dec, err := newIndexDecoder(bytes.NewReader(stored), rawSize)
	if err != nil {
		return nil, err
	}
	return &IndexReader{dec: dec, Alloc: indexAlloc(stored, rawSize)}, nil
}

func (r *IndexReader) Read(p []byte) (int, error) { return r.dec.Read(p) }

// End reports an error unless the stream ends here: nothing decompresses
// past the footer's size, and the frame's checksum holds.
func (r *IndexReader) End() error {
	var one [1]byte
	n, err := io.ReadFull(r.dec, one[:])
	if n > 0 {
		return fmt.Errorf("%w: index decompresses to more than the footer says", format.ErrCorrupt)
	}
	if err != io.EOF {
		return fmt.Errorf("%w: index does not decompress: %v", format.ErrCorrupt, err)
	}
	return nil
}

// Close releases the decoder.
func (r *IndexReader) Close() { r.dec.Close() }
