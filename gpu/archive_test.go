//go:build !noopencl

package gpu

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"arc/codec"
	"arc/format"
	"arc/reader"
	"arc/writer"
)

// Archives through the whole writer and reader, with the engine on the
// test device (PoCL in CI) on one side and the CPU on the other.

const (
	archBlock = 64 << 10
	archFrame = 256 << 10
)

// sourceTree writes a few MiB of files: Go sources where Go is installed,
// text-like and incompressible files of awkward sizes, an empty file and a
// duplicate. It returns the tree's root and its files' contents by name.
func sourceTree(t *testing.T) (string, map[string][]byte) {
	t.Helper()
	dir := t.TempDir()
	files := map[string][]byte{
		"empty":          nil,
		"one":            {'x'},
		"words-300k":     compressible(300000, 1),
		"words-1m":       compressible(1<<20+17, 2),
		"random-200k":    testBytes(200000, 3),
		"mixed-130k":     append(compressible(70000, 4), testBytes(60000, 5)...),
		"sub/words-dup":  compressible(300000, 1),
		"sub/repeat-90k": bytes.Repeat([]byte("0123456789abcdef"), 90000/16),
	}
	for i, b := range realFiles(t, 40) {
		files[filepath.Join("go", string(rune('a'+i/26))+string(rune('a'+i%26))+".go")] = b
	}
	for name, b := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir, files
}

// countingEncoder counts the batches and the compressed blocks the wrapped
// encoder answered.
type countingEncoder struct {
	writer.BatchEncoder
	calls, compressed atomic.Int64
}

func (c *countingEncoder) EncodeBatch(opt codec.Options, raws [][]byte) ([]uint8, [][]byte, error) {
	ids, stored, err := c.BatchEncoder.EncodeBatch(opt, raws)
	if err == nil {
		c.calls.Add(1)
		for _, id := range ids {
			if id != format.CodecRaw {
				c.compressed.Add(1)
			}
		}
	}
	return ids, stored, err
}

func createArchive(t *testing.T, src string, enc writer.BatchEncoder) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "a")
	_, err := writer.Create(context.Background(), out, []string{src}, writer.Options{
		BlockSize: archBlock, FrameSize: archFrame, BatchEncoder: enc, Workers: 2,
	})
	if err != nil {
		t.Fatal(err)
	}
	return format.VolumeName(out, 1)
}

// readBack verifies the archive and extracts it, comparing every file
// byte for byte; decode is the reader's DecodeBatch (nil: the CPU).
func readBack(t *testing.T, archive string, files map[string][]byte, decode func(ids []uint8, dsts, srcs [][]byte) []error) {
	t.Helper()
	a, err := reader.Open(archive, reader.Options{DecodeBatch: decode})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	rep, err := a.Verify(reader.VerifyOptions{})
	if err != nil || !rep.Intact() {
		t.Fatalf("verify: %v, damaged %v, index %v", err, rep.Damaged, rep.IndexErr)
	}
	dest := t.TempDir()
	if _, err := a.Extract(dest, reader.ExtractOptions{}); err != nil {
		t.Fatal(err)
	}
	for name, want := range files {
		got, err := os.ReadFile(filepath.Join(dest, name))
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%s: extracted %d bytes, want %d (%v)", name, len(got), len(want), err)
		}
	}
}

func TestArchiveCompressedOnDeviceReadsOnCPU(t *testing.T) {
	e := testEngine(t, 1<<20)
	src, files := sourceTree(t)
	enc := &countingEncoder{BatchEncoder: e.WriterEncoder(8 * archBlock)}
	archive := createArchive(t, src, enc)
	if enc.calls.Load() < 2 || enc.compressed.Load() == 0 {
		t.Fatalf("device compressed %d blocks in %d batches: the test does not reach it", enc.compressed.Load(), enc.calls.Load())
	}
	readBack(t, archive, files, nil)
}

func TestArchiveCompressedOnCPUDecodesOnDevice(t *testing.T) {
	e := testEngine(t, 1<<20)
	src, files := sourceTree(t)
	archive := createArchive(t, src, nil)
	var batches, blocks atomic.Int64
	dec := e.DecodeFunc()
	readBack(t, archive, files, func(ids []uint8, dsts, srcs [][]byte) []error {
		batches.Add(1)
		for _, id := range ids {
			if onDevice(id) {
				blocks.Add(1)
			}
		}
		return dec(ids, dsts, srcs)
	})
	if batches.Load() == 0 || blocks.Load() == 0 {
		t.Fatalf("the device decoded %d blocks in %d batches", blocks.Load(), batches.Load())
	}
}

func TestArchiveFallsBackToCPUOnKernelFailure(t *testing.T) {
	e := testEngine(t, 1<<20)
	var notes atomic.Int64
	e.logf = func(string, ...any) { notes.Add(1) }
	src, files := sourceTree(t)

	// The first compression launch fails: that batch is compressed on the
	// CPU, the others on the device.
	enc := &countingEncoder{BatchEncoder: e.WriterEncoder(8 * archBlock)}
	e.devs[0].inject.Store(true)
	archive := createArchive(t, src, enc)
	if notes.Load() != 1 || enc.calls.Load() == 0 {
		t.Fatalf("%d fallback notes, %d batches on the device; want 1 and some", notes.Load(), enc.calls.Load())
	}
	// A failed decode launch is redone on the CPU the same way.
	e.devs[0].inject.Store(true)
	readBack(t, archive, files, e.DecodeFunc())
	if notes.Load() != 2 {
		t.Fatalf("%d fallback notes after reading, want 2", notes.Load())
	}
}

// A device that fails batch after batch is given up for the archive after
// giveUpAfter failures in a row (one note), instead of being tried and
// noted once per batch; a batch that succeeds resets the count.
func TestWriterEncoderGivesUpOnARepeatedlyFailingDevice(t *testing.T) {
	e := testEngine(t, 1<<20)
	var notes atomic.Int64
	e.logf = func(string, ...any) { notes.Add(1) }
	opt := codec.Options{Codec: "auto", Level: codec.LevelDefault}
	raws := [][]byte{compressible(100000, 1), compressible(70000, 2)}
	w := e.WriterEncoder(0)
	encode := func(fail bool) error {
		e.devs[0].inject.Store(fail)
		_, _, err := w.EncodeBatch(opt, raws)
		return err
	}
	// fail, succeed, fail twice: two in a row, still tried.
	for i, fail := range []bool{true, false, true, true} {
		if err := encode(fail); (err != nil) != fail {
			t.Fatalf("batch %d: err %v, want failure %t", i, err, fail)
		}
	}
	if err := encode(true); err == nil || errors.Is(err, ErrGaveUp) {
		t.Fatalf("third failure in a row: %v, want the device's own error", err)
	}
	if err := encode(true); !errors.Is(err, ErrGaveUp) {
		t.Fatalf("after three failures in a row: %v, want ErrGaveUp", err)
	}
	if e.devs[0].inject.Load() {
		e.devs[0].inject.Store(false)
	} else {
		t.Error("the given-up device was asked again")
	}
	if n := notes.Load(); n != 5 {
		t.Errorf("%d notes, want 5 (4 failed batches, then giving up once)", n)
	}
}

// A panic in a compression batch of create fails that batch as a failed
// launch does: one note, and the writer compresses the batch on the CPU.
// With the whole tree in that one batch, the archive's data is then a
// CPU-only run's byte for byte, and it reads back whole; nothing is left
// pending on the device nor a goroutine running.
func TestArchiveWithAPanickingCompressionBatchIsTheCPUs(t *testing.T) {
	e := testEngine(t, 1<<20)
	src, files := sourceTree(t)
	notes, before := armPanic(t, e)
	archive := createArchive(t, src, e.WriterEncoder(64<<20)) // one batch
	checkRecovered(t, e, *notes, before)
	if got, want := archiveData(t, archive), archiveData(t, createArchive(t, src, nil)); !bytes.Equal(got, want) {
		t.Fatalf("the archive's data (%d bytes) differs from a CPU-only run's (%d bytes)", len(got), len(want))
	}
	readBack(t, archive, files, nil)
}

// archiveData is a one-volume archive's stream up to its index: the
// stored blocks, without the archive's ID and creation time.
func archiveData(t *testing.T, archive string) []byte {
	t.Helper()
	a, err := reader.Open(archive, reader.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if vols := a.Volumes(); len(vols) != 1 {
		t.Fatalf("%d volumes, want 1", len(vols))
	}
	b, err := os.ReadFile(archive)
	if err != nil {
		t.Fatal(err)
	}
	return b[format.VolumeHeaderSize : format.VolumeHeaderSize+a.Footer().IndexOffset]
}
