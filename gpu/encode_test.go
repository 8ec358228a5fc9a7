//go:build !noopencl

package gpu

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	"arc/codec"
	"arc/format"
)

func encodeInputs(t *testing.T) [][]byte {
	var raws [][]byte
	for i, n := range []int{1, 5, 12, 13, 14, 17, 64, 100, 1000, 4096, 65535, 65536, 65537, 300000, 1 << 20} {
		raws = append(raws, compressible(n, uint64(i)), bytes.Repeat([]byte{byte(i)}, n))
	}
	raws = append(raws, nil, testBytes(50000, 4), farRepeats(40, 3))
	// Repeats exactly 65536 bytes apart: one past the longest LZ4 offset.
	r := testBytes(65536, 6)
	raws = append(raws, bytes.Repeat(r, 3), append(append(bytes.Clone(r), compressible(1000, 7)...), r...))
	raws = append(raws, realFiles(t, 30)...)
	// Blocks ending 1 to 7 bytes past a segment boundary: the segment before
	// the last must still keep its matches 12 bytes from the block's end.
	for _, seg := range []int{encSeg, 2 * encSeg} {
		for d := 1; d <= 7; d++ {
			raws = append(raws, bytes.Repeat([]byte("abcdefgh"), (seg+d+7)/8)[:seg+d])
		}
	}
	return raws
}

func TestEncodeOutputDecodesWithTheCPUDecoder(t *testing.T) {
	for _, search := range []searchKind{searchSerial, searchCoop} {
		for _, fast := range []bool{false, true} {
			name := "default"
			if fast {
				name = "fast"
			}
			name += map[searchKind]string{searchSerial: "/lz4_match", searchCoop: "/lz4_coop"}[search]
			t.Run(name, func(t *testing.T) { testEncodeDecodes(t, fast, search) })
		}
	}
}

func testEncodeDecodes(t *testing.T, fast bool, search searchKind) {
	e := testEngineWith(t, Options{BatchBytes: 1 << 20, search: search})
	if e.devs[0].coop != (search == searchCoop) {
		t.Fatalf("the device compresses with lz4_coop: %t (%s)", e.devs[0].coop, e.devs[0].coopWhy)
	}
	raws := encodeInputs(t)
	blocks := encodeAll(t, e, raws, fast, false)
	dec := codec.NewDecoder()
	var gpuStored, cpuStored, lz4 int
	level := codec.LevelDefault
	if fast {
		level = codec.LevelFast
	}
	enc, err := codec.NewEncoder(codec.Options{Codec: "auto", Level: level})
	if err != nil {
		t.Fatal(err)
	}
	for i, b := range blocks {
		if b.Codec == format.CodecRaw {
			if !bytes.Equal(b.Stored, raws[i]) {
				t.Fatalf("block %d: raw but stored bytes differ", i)
			}
		} else {
			lz4++
			if len(b.Stored) >= len(raws[i]) {
				t.Fatalf("block %d: %d bytes compressed to %d", i, len(raws[i]), len(b.Stored))
			}
		}
		if err := codec.CheckEndRules(b.Codec, b.Stored, len(raws[i])); err != nil {
			t.Errorf("block %d (%d bytes): %v", i, len(raws[i]), err)
		}
		dst := make([]byte, len(raws[i]))
		if err := dec.Decode(b.Codec, dst, b.Stored); err != nil || !bytes.Equal(dst, raws[i]) {
			t.Fatalf("block %d (%d bytes): CPU decoder: %v", i, len(raws[i]), err)
		}
		gpuStored += len(b.Stored)
		_, s := enc.Encode(raws[i])
		cpuStored += len(s)
	}
	if lz4 < len(blocks)/2 {
		t.Fatalf("only %d of %d blocks compressed", lz4, len(blocks))
	}
	t.Logf("stored %d bytes against the CPU's %d (level %s)", gpuStored, cpuStored, level)
	if gpuStored > cpuStored+cpuStored/20 {
		t.Fatalf("the kernel's output is more than 5%% larger than the CPU's at level %s", level)
	}

	// The decode kernel reads it too, and a second run, with the blocks in
	// the other order (other places in the batch), writes the same bytes.
	dblocks := make([]Block, len(raws))
	for i := range raws {
		dblocks[i] = Block{Codec: blocks[i].Codec, Src: blocks[i].Stored, Dst: make([]byte, len(raws[i]))}
	}
	again := encodeAll(t, e, raws, fast, true)
	for i := range again {
		if again[i].Codec != blocks[i].Codec || !bytes.Equal(again[i].Stored, blocks[i].Stored) {
			t.Fatalf("block %d: a second run wrote different bytes", i)
		}
	}
	if err := e.Decoder().DecodeBatch(dblocks); err != nil {
		t.Fatal(err)
	}
	checkDecoded(t, dblocks, raws)
}

func TestEncodeFallsBackToCPUOnKernelFailure(t *testing.T) {
	e := testEngine(t, 1<<20)
	notes := 0
	e.logf = func(string, ...any) { notes++ }
	raws := [][]byte{compressible(100000, 1), compressible(70, 2)}
	blocks := []EncBlock{{Src: raws[0]}, {Src: raws[1]}}
	e.devs[0].inject.Store(true)
	if err := e.Encoder().EncodeBatch(blocks); err != nil {
		t.Fatal(err)
	}
	if notes != 1 {
		t.Fatalf("%d fallback notes, want 1", notes)
	}
	for i, b := range blocks {
		dst := make([]byte, len(raws[i]))
		if err := codec.NewDecoder().Decode(b.Codec, dst, b.Stored); err != nil || !bytes.Equal(dst, raws[i]) {
			t.Fatalf("block %d after fallback: %v", i, err)
		}
	}
}

// A panic in a compression batch's host code (injected in a collect step
// once it has written its blocks out, while the next sub-batch is pending
// on the other slot) fails the device's part as an OpenCL error does: one
// note, and every block is the CPU twin's, byte for byte (none of the
// device's abandoned output is kept); nothing is left pending on the
// device nor a worker running, and the device compresses the next batch
// without the abandoned one's collect writing into the caller's blocks.
func TestPanicInACompressionBatchFallsBackToCPU(t *testing.T) {
	e := testEngine(t, 1<<20)
	// Each pair fills most of a 1 MiB slot: a sub-batch of its own.
	var raws [][]byte
	for i := 0; i < 3; i++ {
		raws = append(raws, compressible(600000, uint64(i)), testBytes(5000, uint64(i)))
	}
	blocks := make([]EncBlock, len(raws))
	want := make([]EncBlock, len(raws))
	for i := range raws {
		blocks[i].Src, want[i].Src = raws[i], raws[i]
	}
	if err := (CPUEncoder{}).EncodeBatch(want); err != nil {
		t.Fatal(err)
	}
	notes, before := armPanic(t, e)
	if err := e.Encoder().EncodeBatch(blocks); err != nil {
		t.Fatal(err)
	}
	checkRecovered(t, e, *notes, before)
	same := func() {
		t.Helper()
		for i := range blocks {
			if blocks[i].Codec != want[i].Codec || !bytes.Equal(blocks[i].Stored, want[i].Stored) {
				t.Fatalf("block %d: codec %d, %d bytes; the CPU's: codec %d, %d bytes", i, blocks[i].Codec, len(blocks[i].Stored), want[i].Codec, len(want[i].Stored))
			}
		}
	}
	same()

	again := encodeAll(t, e, raws, false, false)
	for i, b := range again {
		dst := make([]byte, len(raws[i]))
		if err := codec.NewDecoder().Decode(b.Codec, dst, b.Stored); err != nil || !bytes.Equal(dst, raws[i]) {
			t.Fatalf("block %d compressed on the device after a panic: %v", i, err)
		}
	}
	same()
}

func TestCompressionSearchFollowsTheDeviceType(t *testing.T) {
	for _, c := range []struct {
		search searchKind
		coop   func(isGPU bool) bool
	}{
		{searchAuto, func(isGPU bool) bool { return isGPU }},
		{searchSerial, func(bool) bool { return false }},
		{searchCoop, func(bool) bool { return true }},
	} {
		e := testEngineWith(t, Options{BatchBytes: 1 << 20, search: c.search})
		d := e.devs[0]
		if want := c.coop(d.info.IsGPU); d.coop != want {
			t.Errorf("search %d on a device with IsGPU %t: coop %t, want %t", c.search, d.info.IsGPU, d.coop, want)
		}
	}
}

// encodeAll compresses raws on e's device and returns the blocks;
// reversed submits them last first (other places in the batch).
func encodeAll(t *testing.T, e *Engine, raws [][]byte, fast, reversed bool) []EncBlock {
	t.Helper()
	blocks := make([]EncBlock, len(raws))
	idx := make([]int, len(raws))
	for i := range raws {
		blocks[i].Src, idx[i] = raws[i], i
	}
	if reversed {
		slices.Reverse(idx)
	}
	if rest, err := e.devs[0].encodeBatch(blocks, idx, fast); err != nil || len(rest) > 0 {
		t.Fatalf("device left %v to the CPU (%v)", rest, err)
	}
	return blocks
}

// With the skip step held at 1 (SKIP=31: it grows after 2^31 literals),
// a window of lz4_coop covers exactly the positions the one-work-item
// search probes one by one, so the two must write the same bytes: the
// window's candidates, its first match, its inserts (the newest of equal
// hashes), the look back and the extension rounds all follow the greedy
// search.
func TestCoopWritesTheGreedySearchsBytesAtAFixedStep(t *testing.T) {
	raws := encodeInputs(t)
	r := testBytes(40000, 11)
	for _, at := range []int{0, 3, 127, 128, 129, 255, 256, 1000, 16379, 16384} {
		b := append(bytes.Clone(r[:20000]), r[:20000]...)
		b[20000+at] ^= 1 // a match that ends at, or across, an extension round
		raws = append(raws, b)
	}
	for period := 1; period <= 40; period++ {
		raws = append(raws, append(testBytes(100, uint64(period)), bytes.Repeat(testBytes(period, 7), 3000/period)...))
	}
	ce := testEngineWith(t, Options{BatchBytes: 4 << 20, search: searchCoop, buildFlags: "-DSKIP=31"})
	ge := testEngineWith(t, Options{BatchBytes: 4 << 20, search: searchSerial, buildFlags: "-DSKIP=31"})
	if !ce.devs[0].coop || ge.devs[0].coop {
		t.Fatalf("lz4_coop on the two engines: %t and %t, want true and false", ce.devs[0].coop, ge.devs[0].coop)
	}
	for _, fast := range []bool{false, true} {
		coop, greedy := encodeAll(t, ce, raws, fast, false), encodeAll(t, ge, raws, fast, false)
		for i := range raws {
			c, g := coop[i].Stored, greedy[i].Stored
			if coop[i].Codec != greedy[i].Codec || !bytes.Equal(c, g) {
				at := 0
				for at < min(len(c), len(g)) && c[at] == g[at] {
					at++
				}
				t.Fatalf("fast %t, block %d (%d bytes): lz4_coop (%d bytes) and lz4_match (%d bytes) differ from byte %d", fast, i, len(raws[i]), len(c), len(g), at)
			}
			dst := make([]byte, len(raws[i]))
			if err := codec.NewDecoder().Decode(coop[i].Codec, dst, coop[i].Stored); err != nil || !bytes.Equal(dst, raws[i]) {
				t.Fatalf("fast %t, block %d: %v", fast, i, err)
			}
		}
	}
}

func TestCoopThatDoesNotBuildFallsBackToLz4Match(t *testing.T) {
	// A macro that breaks lz4_coop's source, and only its.
	e := testEngineWith(t, Options{BatchBytes: 1 << 20, search: searchCoop, coopFlags: "-Dcoop_segment=1"})
	d := e.devs[0]
	if d.coop || d.coopWhy == "" || !strings.Contains(e.Describe(), "lz4_match") {
		t.Fatalf("coop %t, why %q, engine %q", d.coop, d.coopWhy, e.Describe())
	}
	raws := [][]byte{compressible(100000, 3), compressible(3*encSeg+5, 4)}
	for i, b := range encodeAll(t, e, raws, false, false) {
		dst := make([]byte, len(raws[i]))
		if err := codec.NewDecoder().Decode(b.Codec, dst, b.Stored); err != nil || !bytes.Equal(dst, raws[i]) || b.Codec != format.CodecLZ4 {
			t.Fatalf("block %d (codec %d): %v", i, b.Codec, err)
		}
	}
}
