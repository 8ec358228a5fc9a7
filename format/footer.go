package format

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"math"
)

// FooterSize is the size of the footer that ends the archive's stream.
// The writer never lets the footer cross a volume boundary, so it is always
// the last FooterSize bytes of the last volume.
const FooterSize = 80

// FooterMagic ends the last volume.
var FooterMagic = [8]byte{'A', 'R', 'C', 'E', 'N', 'D', '\r', '\n'}

// MaxIndexSize bounds the decompressed index a reader accepts (and so the
// memory it allocates on the word of an untrusted footer).
const MaxIndexSize = 16 << 30

// Footer locates the index and describes the whole volume set.
type Footer struct {
	IndexOffset   uint64 // stream offset of the compressed index
	IndexSize     uint64 // stored (compressed) size of the index
	IndexRawSize  uint64 // decompressed size of the index
	IndexChecksum uint64 // XXH3-64 of the stored index bytes
	VolumeCount   uint32
	Version       uint16
	Flags         uint16
	ID            ArchiveID
	StreamSize    uint64 // length of the logical stream, footer included
}

// MarshalBinary encodes f into its 80-byte form.
func (f Footer) MarshalBinary() ([]byte, error) {
	b := make([]byte, FooterSize)
	binary.LittleEndian.PutUint64(b[0:], f.IndexOffset)
	binary.LittleEndian.PutUint64(b[8:], f.IndexSize)
	binary.LittleEndian.PutUint64(b[16:], f.IndexRawSize)
	binary.LittleEndian.PutUint64(b[24:], f.IndexChecksum)
	binary.LittleEndian.PutUint32(b[32:], f.VolumeCount)
	binary.LittleEndian.PutUint16(b[36:], f.Version)
	binary.LittleEndian.PutUint16(b[38:], f.Flags)
	copy(b[40:56], f.ID[:])
	binary.LittleEndian.PutUint64(b[56:], f.StreamSize)
	// b[64:68] reserved, zero
	binary.LittleEndian.PutUint32(b[68:], crc32.Checksum(b[:68], castagnoli))
	copy(b[72:80], FooterMagic[:])
	return b, nil
}

// ReadFooter reads and validates the footer of a last volume of size
// bytes: its last FooterSize bytes (ParseFooter).
func ReadFooter(r io.ReaderAt, size int64) (Footer, error) {
	if size < VolumeHeaderSize+FooterSize {
		return Footer{}, fmt.Errorf("%w: %d bytes cannot hold a footer", ErrTruncated, size)
	}
	b := make([]byte, FooterSize)
	if _, err := r.ReadAt(b, size-FooterSize); err != nil {
		return Footer{}, err
	}
	return ParseFooter(b)
}

// ParseFooter decodes and validates a footer: magic, checksum, version and
// the internal consistency of its offsets. It does not know the volume files;
// the reader checks those against VolumeCount and StreamSize.
func ParseFooter(b []byte) (Footer, error) {
	var f Footer
	if len(b) < FooterSize {
		return f, fmt.Errorf("%w: footer is %d bytes, want %d", ErrTruncated, len(b), FooterSize)
	}
	b = b[len(b)-FooterSize:]
	if [8]byte(b[72:80]) != FooterMagic {
		return f, fmt.Errorf("%w: no footer magic at the end of the last volume", ErrNotArchive)
	}
	if got, want := binary.LittleEndian.Uint32(b[68:]), crc32.Checksum(b[:68], castagnoli); got != want {
		return f, fmt.Errorf("%w: footer checksum %08x, want %08x", ErrCorrupt, got, want)
	}
	f.IndexOffset = binary.LittleEndian.Uint64(b[0:])
	f.IndexSize = binary.LittleEndian.Uint64(b[8:])
	f.IndexRawSize = binary.LittleEndian.Uint64(b[16:])
	f.IndexChecksum = binary.LittleEndian.Uint64(b[24:])
	f.VolumeCount = binary.LittleEndian.Uint32(b[32:])
	f.Version = binary.LittleEndian.Uint16(b[36:])
	f.Flags = binary.LittleEndian.Uint16(b[38:])
	copy(f.ID[:], b[40:56])
	f.StreamSize = binary.LittleEndian.Uint64(b[56:])
	if f.Version != Version {
		return f, fmt.Errorf("%w: format version %d (this program reads %d)", ErrVersion, f.Version, Version)
	}
	if f.Flags != 0 {
		return f, fmt.Errorf("%w: unknown footer flags %#x", ErrVersion, f.Flags)
	}
	if binary.LittleEndian.Uint32(b[64:]) != 0 {
		return f, fmt.Errorf("%w: reserved footer bytes are set", ErrCorrupt)
	}
	if f.VolumeCount == 0 {
		return f, fmt.Errorf("%w: footer says 0 volumes", ErrCorrupt)
	}
	if f.StreamSize > math.MaxInt64 || f.StreamSize < FooterSize {
		return f, fmt.Errorf("%w: stream size %d", ErrCorrupt, f.StreamSize)
	}
	end := f.IndexOffset + f.IndexSize
	if end < f.IndexOffset || end > f.StreamSize-FooterSize {
		return f, fmt.Errorf("%w: index [%d,+%d) lies outside the stream of %d bytes", ErrCorrupt, f.IndexOffset, f.IndexSize, f.StreamSize)
	}
	if f.IndexRawSize > MaxIndexSize {
		return f, fmt.Errorf("%w: index claims %d bytes decompressed (limit %d)", ErrLimit, f.IndexRawSize, uint64(MaxIndexSize))
	}
	return f, nil
}
