package writer

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"sync/atomic"
	"testing"

	"arc/codec"
	"arc/format"
)

// fakeDevice is a BatchEncoder that answers as a misbehaving device would:
// each batch compressed by the CPU encoder, then spoilt by how.
type fakeDevice struct {
	how   string
	calls atomic.Int64
}

func (f *fakeDevice) BatchBytes() int { return 4 * (64 << 10) }

func (f *fakeDevice) EncodeBatch(opt codec.Options, raws [][]byte) ([]uint8, [][]byte, error) {
	f.calls.Add(1)
	enc, err := codec.NewEncoder(codec.Options{Codec: "lz4", Level: codec.LevelFast})
	if err != nil {
		return nil, nil, err
	}
	ids, stored := make([]uint8, len(raws)), make([][]byte, len(raws))
	for i, r := range raws {
		id, s := enc.Encode(r)
		ids[i], stored[i] = id, bytes.Clone(s)
	}
	switch f.how {
	case "fails":
		return nil, nil, errors.New("device lost")
	case "panics": // a bug in an engine's host code
		var m map[string]int
		m["boom"]++
	case "answers one block short":
		return ids[:len(ids)-1], stored[:len(ids)-1], nil
	case "calls a short block raw":
		ids[0], stored[0] = format.CodecRaw, raws[0][:len(raws[0])/2]
	case "names an unknown codec":
		ids[len(ids)-1] = 77
	case "breaks LZ4's end rules":
		for i, r := range raws {
			if len(r) >= 32 && bytes.Equal(r[8:], r[:len(r)-8]) { // period 8
				ids[i], stored[i] = format.CodecLZ4, lateMatch(r)
			}
		}
	}
	return ids, stored, nil
}

// lateMatch encodes r (period 8, at least 32 bytes) as an LZ4 block that
// decodes to r but whose last match starts 11 bytes before the end: 8
// literals, a match of period 8 up to 11 bytes before the end, a 4-byte
// match, 7 literals. liblz4 refuses it; arc's decoder reads it.
func lateMatch(r []byte) []byte {
	n := len(r)
	ml := n - 11 - 8
	b := []byte{8<<4 | byte(min(ml-4, 15))}
	b = append(b, r[:8]...)
	b = append(b, 8, 0)
	if rest := ml - 4 - 15; rest >= 0 {
		for ; rest >= 255; rest -= 255 {
			b = append(b, 255)
		}
		b = append(b, byte(rest))
	}
	b = append(b, 0x00, 8, 0) // no literals, a 4-byte match at offset 8
	b = append(b, 7<<4)
	return append(b, r[n-7:]...)
}

// A batch the format could not hold, or that the device failed or
// panicked on, goes to the CPU compressors whole: the
// archive reads back byte-identical, every stored LZ4 block keeps LZ4's
// end-of-block rules, and a well-behaved device's blocks are kept.
func TestBatchEncoderAnswersAreCheckedBeforeUse(t *testing.T) {
	src := t.TempDir()
	files := map[string][]byte{
		"period8": bytes.Repeat([]byte("abcdefgh"), 90<<10), // 720 KiB (dedup leaves a few blocks)
		"letters": letters(7, 2<<20),                        // 2 MiB of compressible, unrepeated bytes: 32 blocks
		"random":  randBytes(5, 300<<10),
		"tail":    bytes.Repeat([]byte("01234567"), 5000),
	}
	writeTree(t, src, files)
	for _, how := range []string{"well-behaved", "fails", "panics", "answers one block short", "calls a short block raw", "names an unknown codec", "breaks LZ4's end rules"} {
		dev := &fakeDevice{how: how}
		o := small()
		o.BatchEncoder = dev
		res, err := Create(context.Background(), filepath.Join(t.TempDir(), "a"), []string{src}, o)
		if err != nil {
			t.Fatalf("%s: %v", how, err)
		}
		if dev.calls.Load() == 0 {
			t.Fatalf("%s: the device was never asked", how)
		}
		// A device whose every answer is refused is given up after 3
		// batches in a row (one more may be in flight
		// on the other batcher); the tree makes about 10 batches.
		if alwaysBad := how != "well-behaved" && how != "breaks LZ4's end rules"; alwaysBad && dev.calls.Load() > 3+batchers-1 {
			t.Errorf("%s: the device was asked %d times; want it given up after 3", how, dev.calls.Load())
		}
		if how == "well-behaved" && dev.calls.Load() < 6 {
			t.Fatalf("%s: only %d batches: the test does not reach the limit", how, dev.calls.Load())
		}
		a := readBack(t, res.Volumes, 0)
		for p, want := range files {
			if got := a.content[p]; !bytes.Equal(got, want) {
				t.Errorf("%s: %s: %d bytes back, want %d identical", how, p, len(got), len(want))
			}
		}
		raw, lz4 := 0, 0
		for b := 0; b < a.idx.Blocks.Count(); b++ {
			id := a.idx.Blocks.Codec[b]
			switch id {
			case format.CodecRaw:
				raw++
			case format.CodecLZ4:
				lz4++
			}
			stored := a.stream[a.idx.BlockStoredOff[b]:a.idx.BlockStoredOff[b+1]]
			if err := codec.CheckEndRules(id, stored, int(a.idx.BlockRawOff[b+1]-a.idx.BlockRawOff[b])); err != nil {
				t.Errorf("%s: block %d: %v", how, b, err)
			}
		}
		if lz4 == 0 || raw == 0 {
			t.Errorf("%s: %d lz4 and %d raw blocks; want both", how, lz4, raw)
		}
	}
}

// letters is n pseudo-random bytes from an 8-letter alphabet: compressible,
// but with no repeats long enough for dedup.
func letters(seed int64, n int) []byte {
	b := randBytes(seed, n)
	for i := range b {
		b[i] = 'a' + b[i]&7
	}
	return b
}
