//go:build !noopencl

package gpu

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"arc/codec"
	"arc/format"

	"github.com/zeebo/blake3"
)

// testEngine opens the device the tests run on: $ARC_GPU_DEVICE, else the
// first GPU, else the first device of any type (PoCL in CI). Small transfer
// buffers make every batch span several sub-batches of both slots.
func testEngine(t testing.TB, batch int) *Engine {
	t.Helper()
	return testEnginePar(t, batch, 0)
}

// testEnginePar is testEngine with lz4_decode_par taking blocks of parMin
// raw bytes and more (1: every block, -1: none).
func testEnginePar(t testing.TB, batch, parMin int) *Engine {
	t.Helper()
	return testEngineWith(t, Options{BatchBytes: batch, parMin: parMin})
}

// testEngineWith opens the test device (ARC_GPU_DEVICE, else a GPU, else
// the first device) with opt's other settings, failing on any fallback.
func testEngineWith(t testing.TB, opt Options) *Engine {
	t.Helper()
	infos, err := ListDevices()
	if err != nil || len(infos) == 0 {
		skipNoOpenCL(t, fmt.Sprintf("no OpenCL platform on this machine (%v): install pocl-opencl-icd to run the kernels", err))
	}
	id := os.Getenv("ARC_GPU_DEVICE")
	if id == "" {
		id = infos[0].ID
		for _, in := range infos {
			if in.IsGPU {
				id = in.ID
				break
			}
		}
	}
	for _, in := range infos {
		if in.ID == id && opt.wantCoop(in) && !coopBuilds(in) {
			t.Skipf("lz4_coop is known to build only on GPUs and PoCL 3 (PoCL 5.0's compiler aborts on it); device %s is %s %s", id, in.Platform, in.Driver)
		}
	}
	// A fallback to the CPU would hide a kernel bug behind a correct
	// result: here it fails the test.
	opt.Mode, opt.Device, opt.Logf = ModeOn, id, t.Errorf
	e, err := New(opt)
	if err != nil {
		t.Fatal(err)
	}
	// Nor may lz4_coop fall back to lz4_match, unless the test breaks it.
	if why := e.devs[0].coopWhy; why != "" && opt.coopFlags == "" {
		e.Close()
		t.Fatalf("device %s compresses with lz4_match: %s", id, why)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

// coopBuilds reports whether lz4_coop may be built on the device: a GPU,
// or PoCL 3 (CI's); other CPU platforms are untried or, PoCL 5.0, abort
// the process.
func coopBuilds(in DeviceInfo) bool {
	return in.IsGPU || strings.Contains(in.Platform, "Portable Computing Language") && strings.HasPrefix(in.Driver, "3.")
}

func TestHashMatchesCPUAtEveryLength(t *testing.T) {
	e := testEngine(t, 1<<20)
	data := testBytes(3<<20+200, 7)
	var inputs [][]byte
	for n := 0; n <= 3000; n++ {
		inputs = append(inputs, data[n%97:n%97+n])
	}
	for k := 3; k <= 40; k++ {
		for _, d := range []int{-1, 0, 1} {
			n := k*1024 + d
			inputs = append(inputs, data[k:k+n])
		}
	}
	// MiB sizes: a full slot, a tree with odd levels, and one too large for
	// a slot (hashed on the CPU).
	inputs = append(inputs, data[:1<<20-64], data[5:5+(1<<20)/3+17], data[:3<<20+100])
	hashChecked(t, e, inputs, "")
}

// hashChecked hashes inputs on e and fails the test (saying when: what)
// unless every digest is the CPU's.
func hashChecked(t *testing.T, e *Engine, inputs [][]byte, what string) [][32]byte {
	t.Helper()
	got, err := e.Hasher().HashBatch(inputs)
	if err != nil {
		t.Fatal(err)
	}
	for i, in := range inputs {
		if got[i] != blake3.Sum256(in) {
			t.Fatalf("input %d (%d bytes)%s: digest %x, want the CPU's %x", i, len(in), what, got[i], blake3.Sum256(in))
		}
	}
	return got
}

func TestHashRealFiles(t *testing.T) {
	e := testEngine(t, 4<<20)
	files := realFiles(t, 200)
	if len(files) == 0 {
		t.Skip("no Go sources here for real data")
	}
	hashChecked(t, e, files, " of real files")
}

// realFiles reads up to n files of the Go distribution's sources.
func realFiles(t testing.TB, n int) [][]byte {
	paths, _ := filepath.Glob(filepath.Join(runtime.GOROOT(), "src", "net", "http", "*.go"))
	more, _ := filepath.Glob(filepath.Join(runtime.GOROOT(), "src", "runtime", "*.go"))
	paths = append(paths, more...)
	var out [][]byte
	for _, p := range paths {
		if len(out) == n {
			break
		}
		if b, err := os.ReadFile(p); err == nil {
			out = append(out, b)
		}
	}
	return out // none where Go is not installed (the GPU machine)
}

// lz4Blocks compresses each raw block with the CPU encoder.
func lz4Blocks(t testing.TB, raws [][]byte, level codec.Level) []Block {
	return encodeBlocks(t, raws, "lz4", level)
}

func encodeBlocks(t testing.TB, raws [][]byte, name string, level codec.Level) []Block {
	enc, err := codec.NewEncoder(codec.Options{Codec: name, Level: level})
	if err != nil {
		t.Fatal(err)
	}
	blocks := make([]Block, len(raws))
	for i, raw := range raws {
		id, stored := enc.Encode(raw)
		blocks[i] = Block{Codec: id, Src: bytes.Clone(stored), Dst: make([]byte, len(raw))}
	}
	return blocks
}

func checkDecoded(t *testing.T, blocks []Block, raws [][]byte) {
	t.Helper()
	for i := range blocks {
		if blocks[i].Err != nil {
			t.Fatalf("block %d: %v", i, blocks[i].Err)
		}
		if !bytes.Equal(blocks[i].Dst, raws[i]) {
			t.Fatalf("block %d (%d bytes, codec %d) decodes differently from the CPU", i, len(raws[i]), blocks[i].Codec)
		}
	}
}

func TestDecodeMatchesCPU(t *testing.T) {
	forDecodeKernels(t, 1<<20, testDecodeMatchesCPU1)
}

func testDecodeMatchesCPU1(t *testing.T, e *Engine) {
	var raws [][]byte
	for i, n := range []int{1, 4, 12, 13, 15, 16, 17, 100, 255, 256, 1000, 4096, 65535, 65536, 65537, 200000, 1 << 20} {
		raws = append(raws, compressible(n, uint64(i)))
		raws = append(raws, bytes.Repeat([]byte{byte(i)}, n))
	}
	raws = append(raws, testBytes(70000, 3)) // incompressible: stored raw
	for _, f := range realFiles(t, 40) {
		raws = append(raws, f)
	}
	// Matches farther than 64 KiB: lz4x needs its third offset byte.
	raws = append(raws, farRepeats(40, 1), farRepeats(200, 2))
	seen := map[uint8]int{}
	for _, c := range []struct {
		codec string
		level codec.Level
		id    uint8
	}{{"lz4", codec.LevelFast, format.CodecLZ4}, {"lz4", codec.LevelHigh, format.CodecLZ4},
		{"lz4x", codec.LevelDefault, format.CodecLZ4X}, {"lz4x", codec.LevelMax, format.CodecLZ4X}} {
		t.Run(c.codec+"-"+c.level.String(), func(t *testing.T) {
			blocks := encodeBlocks(t, raws, c.codec, c.level)
			n := 0
			for _, b := range blocks {
				if b.Codec == c.id {
					n++
				}
			}
			seen[c.id] += n
			var idx []int
			for i, b := range blocks {
				if onDevice(b.Codec) {
					idx = append(idx, i)
				}
			}
			// Straight to the device: no block may be left to the CPU.
			rest, err := e.devs[0].decodeBatch(blocks, idx)
			if err != nil || len(rest) > 0 {
				t.Fatalf("device left blocks %v to the CPU (%v)", rest, err)
			}
			if err := e.Decoder().DecodeBatch(blocks); err != nil {
				t.Fatal(err)
			}
			checkDecoded(t, blocks, raws)
		})
	}
	// Each codec must have reached the kernel (the encoder may choose
	// standard LZ4 for blocks whose matches are all near).
	if seen[format.CodecLZ4] < 4 || seen[format.CodecLZ4X] < 1 {
		t.Fatalf("blocks per codec id %v: too few to test the kernels", seen)
	}
}

// TestDecodeHandMadeSequences covers what an encoder rarely emits: matches
// that overlap themselves at every short offset, and length extensions of
// 15, 15+255 and beyond for both literals and matches.
func TestDecodeHandMadeSequences(t *testing.T) {
	forDecodeKernels(t, 1<<20, testDecodeHandMadeSequences1)
}

func testDecodeHandMadeSequences1(t *testing.T, e *Engine) {
	var blocks []Block
	var raws [][]byte
	add := func(src, raw []byte) {
		blocks = append(blocks, Block{Codec: format.CodecLZ4, Src: src, Dst: make([]byte, len(raw))})
		raws = append(raws, raw)
	}
	for off := 1; off <= 20; off++ {
		for _, ml := range []int{4, 18, 19, 19 + 255, 19 + 600} {
			lit := testBytes(off, uint64(off))
			src, raw := seq(nil, nil, lit, off, ml)
			src, raw = seq(src, raw, []byte("tail!"), 0, 0)
			add(src, raw)
		}
	}
	for _, ll := range []int{0, 14, 15, 16, 15 + 255, 15 + 256, 3000} {
		src, raw := seq(nil, nil, testBytes(ll+1, 9), 1, 10)
		src, raw = seq(src, raw, testBytes(ll, 10), 0, 0)
		add(src, raw)
	}
	// lz4x: offsets past 64 KiB, up to the 16 MiB window, and a block that
	// ends right after a match (which lz4x's decoders accept).
	for _, off := range []int{1, 3, 65535, 65536, 70001, 1<<20 + 3} {
		src, raw := seqW(nil, nil, testBytes(off, uint64(off)), off, 40, 3)
		if off < 70000 {
			src, raw = seqW(src, raw, []byte("end"), 0, 0, 3)
		}
		blocks = append(blocks, Block{Codec: format.CodecLZ4X, Src: src, Dst: make([]byte, len(raw))})
		raws = append(raws, raw)
	}
	if err := e.Decoder().DecodeBatch(blocks); err != nil {
		t.Fatal(err)
	}
	checkDecoded(t, blocks, raws)
	// The CPU decoder agrees with the expectations too.
	for i := range blocks {
		dst := make([]byte, len(raws[i]))
		if err := codec.NewDecoder().Decode(blocks[i].Codec, dst, blocks[i].Src); err != nil || !bytes.Equal(dst, raws[i]) {
			t.Fatalf("hand-made block %d is not what the CPU decodes: %v", i, err)
		}
	}
}

func TestDecodeRejectsCorruptBlocksOneByOne(t *testing.T) {
	forDecodeKernels(t, 1<<20, testDecodeRejectsCorruptBlocksOneByOne1)
}

func testDecodeRejectsCorruptBlocksOneByOne1(t *testing.T, e *Engine) {
	raw := compressible(50000, 11)
	good := lz4Blocks(t, [][]byte{raw}, codec.LevelDefault)[0]
	if good.Codec != format.CodecLZ4 {
		t.Fatal("test block did not compress")
	}
	badOffset, _ := seq(nil, nil, []byte("ab"), 3, 4)
	badOffset, _ = seq(badOffset, nil, []byte("x"), 0, 0)
	cases := []struct {
		name string
		src  []byte
		dst  int
	}{
		{"truncated", good.Src[:len(good.Src)-7], len(raw)},
		{"raw size one larger", good.Src, len(raw) + 1},
		{"raw size one smaller", good.Src, len(raw) - 1},
		{"offset before start", badOffset, 7},
		{"garbage", testBytes(3000, 5), 9000},
		{"empty input", nil, 10},
	}
	var blocks []Block
	for _, c := range cases {
		blocks = append(blocks, Block{Codec: format.CodecLZ4, Src: c.src, Dst: make([]byte, c.dst)})
		blocks = append(blocks, Block{Codec: format.CodecLZ4, Src: good.Src, Dst: make([]byte, len(raw))})
	}
	err := e.Decoder().DecodeBatch(blocks)
	if !errors.Is(err, codec.ErrBlock) {
		t.Fatalf("batch error %v, want one wrapping codec.ErrBlock", err)
	}
	for i, c := range cases {
		if !errors.Is(blocks[2*i].Err, codec.ErrBlock) {
			t.Errorf("%s: error %v, want codec.ErrBlock", c.name, blocks[2*i].Err)
		}
		if blocks[2*i+1].Err != nil || !bytes.Equal(blocks[2*i+1].Dst, raw) {
			t.Errorf("good block beside %s: %v", c.name, blocks[2*i+1].Err)
		}
	}

	// The reader's shape of the decoder (DecodeFunc) reports each block's
	// own error: verify must not count a bad block's neighbours as bad.
	ids := make([]uint8, len(blocks))
	dsts, srcs := make([][]byte, len(blocks)), make([][]byte, len(blocks))
	for i, b := range blocks {
		ids[i], srcs[i], dsts[i] = b.Codec, b.Src, make([]byte, len(b.Dst))
	}
	errs := e.DecodeFunc()(ids, dsts, srcs)
	for i, c := range cases {
		if !errors.Is(errs[2*i], codec.ErrBlock) {
			t.Errorf("DecodeFunc, %s: error %v, want codec.ErrBlock", c.name, errs[2*i])
		}
		if errs[2*i+1] != nil || !bytes.Equal(dsts[2*i+1], raw) {
			t.Errorf("DecodeFunc, good block beside %s: %v", c.name, errs[2*i+1])
		}
	}
}

func TestInjectedKernelFailureFallsBackToCPU(t *testing.T) {
	var notes atomic.Int32
	infos, err := ListDevices()
	if err != nil || len(infos) == 0 {
		skipNoOpenCL(t, fmt.Sprintf("no OpenCL platform on this machine (%v)", err))
	}
	e := testEngine(t, 1<<20)
	e.logf = func(f string, a ...any) {
		notes.Add(1)
		t.Logf(f, a...)
	}
	inputs := [][]byte{nil, testBytes(5000, 1), testBytes(300000, 2)}
	for _, d := range e.devs {
		d.inject.Store(true)
	}
	hashChecked(t, e, inputs, " after fallback")
	raws := [][]byte{compressible(100000, 1), compressible(3000, 2)}
	blocks := lz4Blocks(t, raws, codec.LevelDefault)
	for _, d := range e.devs {
		d.inject.Store(true)
	}
	if err := e.Decoder().DecodeBatch(blocks); err != nil {
		t.Fatal(err)
	}
	checkDecoded(t, blocks, raws)
	if notes.Load() != 2 {
		t.Fatalf("%d fallback notes, want 2 (one per failed batch)", notes.Load())
	}
	// The device works again afterwards.
	blocks = lz4Blocks(t, raws, codec.LevelDefault)
	if err := e.Decoder().DecodeBatch(blocks); err != nil {
		t.Fatal(err)
	}
	checkDecoded(t, blocks, raws)
	if notes.Load() != 2 {
		t.Fatal("device still failing after the injected failure")
	}
}

func TestDeviceIDsAreTwoNumbers(t *testing.T) {
	for id, ok := range map[string]bool{"0:0": true, "1:12": true, "abc": false, "1:": false, ":1": false, "1:2:3": false, "-1:0": false, "0x1:0": false, "00:1": false, "+1:0": false, "": false} {
		if err := CheckDeviceID(id); (err == nil) != ok {
			t.Errorf("CheckDeviceID(%q) = %v, want ok %v", id, err, ok)
		}
	}
}

func TestModes(t *testing.T) {
	for _, c := range []struct {
		in   string
		want Mode
		err  bool
	}{{"auto", ModeAuto, false}, {"on", ModeOn, false}, {"OFF", ModeOff, false}, {"gpu", 0, true}, {"", 0, true}} {
		m, err := ParseMode(c.in)
		if (err != nil) != c.err || err == nil && m != c.want {
			t.Errorf("ParseMode(%q) = %v, %v", c.in, m, err)
		}
	}
	e, err := New(Options{Mode: ModeOff})
	if err != nil || e.OnDevice() || !strings.Contains(e.Describe(), "CPU") {
		t.Errorf("off: %v %q", err, e.Describe())
	}
	if _, err := New(Options{Mode: ModeOn, Device: "99:99"}); !errors.Is(err, ErrNoDevice) {
		t.Errorf("on with a missing device: %v, want ErrNoDevice", err)
	}
	e, err = New(Options{Mode: ModeAuto, Device: "99:99"})
	if err != nil || e.OnDevice() || !strings.Contains(e.Describe(), "using the CPU") {
		t.Errorf("auto with a missing device: %v %q", err, e.Describe())
	}
}

func TestListedDevicesPassSelfTest(t *testing.T) {
	infos, err := ListDevices()
	if err != nil || len(infos) == 0 {
		skipNoOpenCL(t, fmt.Sprintf("no OpenCL platform on this machine (%v)", err))
	}
	for _, in := range infos {
		if in.ComputeUnits <= 0 || in.GlobalMem <= 0 || in.MaxWorkGroup < localSize {
			t.Errorf("device %s: implausible capabilities %+v", in.ID, in)
		}
		if err := SelfTest(in); err != nil {
			t.Errorf("device %s: %v", in.ID, err)
		}
	}
}

// farRepeats returns k pieces of random bytes, each followed by some text,
// and then the same random pieces again with other text: the random
// pieces' only matches lie more than 64 KiB back, and the text between
// keeps an encoder's skip acceleration from jumping over them.
func farRepeats(k int, seed uint64) []byte {
	var a, b []byte
	for i := 0; i < k; i++ {
		r := testBytes(1500, seed*1000+uint64(i))
		a = append(append(a, r...), compressible(500, uint64(i))...)
		b = append(append(b, r...), compressible(500, uint64(i)+7)...)
	}
	for len(a) < 70000 {
		a = append(a, compressible(1000, uint64(len(a)))...)
	}
	return append(a, b...)
}

// The benchmark's kernel time is the time at least one kernel ran: the
// two slots' kernels overlap on the device, and adding their durations
// would count that time twice.
func TestKernelTimeIsTheUnionOfKernelIntervals(t *testing.T) {
	for _, tc := range []struct {
		name  string
		spans []span
		want  int64
	}{
		{"none", nil, 0},
		{"one", []span{{10, 30}}, 20},
		{"disjoint", []span{{10, 20}, {30, 35}}, 15},
		{"overlapping", []span{{10, 20}, {15, 30}}, 20},
		{"nested", []span{{10, 40}, {15, 20}, {25, 30}}, 30},
		{"touching", []span{{10, 20}, {20, 30}}, 20},
		{"out of order", []span{{30, 40}, {0, 5}, {35, 50}, {4, 10}}, 30},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := unionNs(slices.Clone(tc.spans)); got != tc.want {
				t.Fatalf("unionNs of %v = %d, want %d", tc.spans, got, tc.want)
			}
		})
	}
}

func TestDefaultBatchIsHeldToTheHostsMemory(t *testing.T) {
	const MiB, GiB = 1 << 20, 1 << 30
	for _, tc := range []struct {
		gpu  bool
		mem  uint64
		want int
	}{
		{true, 128 * GiB, 256 * MiB},
		{true, 0, 256 * MiB}, // unknown
		{true, 8 * GiB, 256 * MiB},
		{true, 4 * GiB, 128 * MiB},
		{true, 1 * GiB, 64 * MiB},
		{false, 128 * GiB, 64 * MiB},
	} {
		if got := defaultBatch(tc.gpu, tc.mem); got != tc.want {
			t.Errorf("defaultBatch(gpu %v, %d GiB) = %d MiB, want %d", tc.gpu, tc.mem/GiB, got/MiB, tc.want/MiB)
		}
	}
}

// The writer's call holds both transfer buffers of every device, since
// the engine splits a call over the devices; past the first device's
// share it is held to a 32nd of the host's memory.
func TestTheWritersCallGivesEveryDeviceBothBuffers(t *testing.T) {
	const MiB, GiB = 1 << 20, 1 << 30
	devs := func(n, batch int) []*device {
		var ds []*device
		for range n {
			ds = append(ds, &device{batch: batch})
		}
		return ds
	}
	for _, tc := range []struct {
		name string
		devs []*device
		mem  uint64
		want int
	}{
		{"no device", nil, 128 * GiB, 64 * MiB},
		{"one GPU", devs(1, 256*MiB), 128 * GiB, 512 * MiB},
		{"two GPUs", devs(2, 256*MiB), 128 * GiB, 1 * GiB},
		{"eight GPUs", devs(8, 256*MiB), 128 * GiB, 4 * GiB},
		{"eight GPUs, 64 GiB host", devs(8, 256*MiB), 64 * GiB, 2 * GiB},
		{"eight GPUs, 8 GiB host", devs(8, 256*MiB), 8 * GiB, 512 * MiB},
		{"eight GPUs, memory unknown", devs(8, 256*MiB), 0, 4 * GiB},
	} {
		if got := writerCallBytes(tc.devs, tc.mem); got != tc.want {
			t.Errorf("%s: writerCallBytes = %d MiB, want %d", tc.name, got/MiB, tc.want/MiB)
		}
	}
}

// testTwoDeviceEngine opens an engine of two devices: the test device
// (testEngineWith's) and another GPU where the machine has one, else the
// test device again (a second context, with queues and buffers of its
// own), failing on any fallback.
func testTwoDeviceEngine(t *testing.T, opt Options) *Engine {
	t.Helper()
	e := testEngineWith(t, opt)
	infos, err := ListDevices()
	if err != nil {
		t.Fatal(err)
	}
	first := e.devs[0].info
	second := first
	for _, in := range infos {
		if in.IsGPU && first.IsGPU && in.ID != first.ID {
			second = in
			break
		}
	}
	d, err := openChecked(second, opt)
	if err != nil {
		t.Fatal(err)
	}
	e.devs = append(e.devs, d) // e's cleanup closes it
	t.Logf("devices %s %q and %s %q", first.ID, first.Name, second.ID, second.Name)
	return e
}

// An engine of two devices splits each batch between them, and they run
// their parts at once: hashing, decoding and compressing give what one
// device gives (the CPU's digests, each block's raw bytes, blocks the CPU
// decodes), and both devices took part in each.
func TestAnEngineOfTwoDevicesSplitsEachBatchBetweenThem(t *testing.T) {
	e := testTwoDeviceEngine(t, Options{BatchBytes: 1 << 20})
	var raws [][]byte
	for i := range 24 {
		raws = append(raws, compressible(40000+i*3000, uint64(i)))
	}
	raws = append(raws, farRepeats(40, 1), testBytes(70000, 3))
	both := func(what string, run func()) {
		t.Helper()
		before := [2]int64{e.devs[0].stats.calls.Load(), e.devs[1].stats.calls.Load()}
		run()
		for i, d := range e.devs {
			if d.stats.calls.Load() == before[i] {
				t.Errorf("%s: device %d (%s) took no batch", what, i, d.info.ID)
			}
		}
	}
	both("hashing", func() { hashChecked(t, e, raws, " on two devices") })
	both("decoding", func() {
		blocks := encodeBlocks(t, raws, "lz4x", codec.LevelMax)
		if err := e.Decoder().DecodeBatch(blocks); err != nil {
			t.Fatal(err)
		}
		checkDecoded(t, blocks, raws)
	})
	both("compressing", func() {
		blocks := make([]EncBlock, len(raws))
		for i := range raws {
			blocks[i].Src = raws[i]
		}
		if err := e.Encoder().EncodeBatch(blocks); err != nil {
			t.Fatal(err)
		}
		dec := codec.NewDecoder()
		for i, b := range blocks {
			got := make([]byte, len(raws[i]))
			if err := dec.Decode(b.Codec, got, b.Stored); err != nil || !bytes.Equal(got, raws[i]) {
				t.Fatalf("block %d (%d bytes): the CPU decodes the device's codec %d block wrongly (%v)", i, len(raws[i]), b.Codec, err)
			}
		}
	})
}

// A panic while a batch is being packed fails that batch (device.run's
// error: DecodeBatch sends it to the CPU) and leaves nothing pending on
// the device: the next batch must not write the abandoned one's results
// into its old buffers, which the caller may have reused.
func TestPanicMidBatchLeavesNoPendingWork(t *testing.T) {
	e := testEngine(t, 1<<20)
	d := e.devs[0]
	raws := [][]byte{compressible(600000, 1), compressible(600000, 2)}
	blocks := lz4Blocks(t, raws, codec.LevelDefault)
	// Index 99 does not exist: packing panics after block 0's batch went
	// out on one slot (each block fills most of a 1 MiB slot).
	if _, err := d.decodeBatch(blocks, []int{0, 1, 99}); !errors.Is(err, errBatchPanic) {
		t.Fatalf("decodeBatch with a panic: %v, want errBatchPanic", err)
	}
	for i := range blocks[0].Dst {
		blocks[0].Dst[i] = 'X' // the caller reuses the buffer
	}
	again := lz4Blocks(t, raws[1:], codec.LevelDefault)
	if err := e.Decoder().DecodeBatch(again); err != nil {
		t.Fatal(err)
	}
	checkDecoded(t, again, raws[1:])
	if bytes.Count(blocks[0].Dst, []byte("X")) != len(blocks[0].Dst) {
		t.Fatal("the abandoned batch's results were written into a buffer reused since")
	}
}

// A panic on a worker goroutine of a batch's parallel copy (packing or
// collecting hostile data) fails the batch, as a panic in the packing
// itself does: run leaves nothing pending on the device and returns it as
// its error (its caller sends the batch to the CPU) instead of the
// process ending, no worker is left behind, and the device works for the
// next batch. The data cannot make the real copies panic, so the
// sub-batches here are the test's own.
func TestPanicInABatchsParallelCopyLeavesNoPendingWork(t *testing.T) {
	withProcs(t, 4)
	e := testEngine(t, 1<<20)
	d := e.devs[0]
	before := runtime.NumGoroutine()
	collected := false
	fills := 0
	err := d.run(func(s *slot) (bool, error) {
		fills++
		if fills == 1 {
			// A sub-batch goes out on one slot; its collect step is
			// pending while the next one is packed.
			if err := s.write(s.dIn, &s.in, 4096); err != nil {
				return false, err
			}
			if err := s.read(&s.out, s.dIn, 4096); err != nil {
				return false, err
			}
			s.collect = func() { collected = true }
			return true, nil
		}
		parallel(8, func(j int) {
			if j == 5 {
				panic("hostile bytes")
			}
		})
		return false, nil
	})
	if !errors.Is(err, errBatchPanic) || !strings.Contains(err.Error(), "hostile bytes") {
		t.Fatalf("device.run returned %v after its copy panicked, want errBatchPanic with the copy's panic", err)
	}
	checkIdle(t, d)
	waitGoroutines(t, before)
	raws := [][]byte{compressible(600000, 1), compressible(3000, 2)}
	blocks := lz4Blocks(t, raws, codec.LevelDefault)
	if err := e.Decoder().DecodeBatch(blocks); err != nil {
		t.Fatal(err)
	}
	checkDecoded(t, blocks, raws)
	if collected {
		t.Fatal("the abandoned sub-batch's collect step ran")
	}
}

// checkIdle fails the test if a slot of d still has work or a collect
// step pending: the next batch would wait for it and run that collect,
// writing an abandoned batch's results into its caller's buffers.
func checkIdle(t *testing.T, d *device) {
	t.Helper()
	for i, s := range d.slots {
		if len(s.events) > 0 || s.collect != nil {
			t.Fatalf("slot %d: %d commands and a collect step (%t) left pending", i, len(s.events), s.collect != nil)
		}
	}
}

// armPanic makes the collect step of the next sub-batch on e's device
// panic, with GOMAXPROCS at least 4 (the copies run on parallel's
// workers) and the engine's fallback notes kept in a list, which the test
// reads once the batch returned (onDevices has joined the goroutines that
// note); before is how many goroutines run.
func armPanic(t *testing.T, e *Engine) (notes *[]string, before int) {
	withProcs(t, 4)
	notes = new([]string)
	e.logf = func(f string, a ...any) { *notes = append(*notes, fmt.Sprintf(f, a...)) }
	e.devs[0].injectPanic.Store(true)
	return notes, runtime.NumGoroutine()
}

// checkRecovered fails the test unless the panic armPanic set was reached
// and noted once as its batch's failure, leaving nothing pending on the
// device and no more goroutines than before running.
func checkRecovered(t *testing.T, e *Engine, notes []string, before int) {
	t.Helper()
	d := e.devs[0]
	if d.injectPanic.Load() {
		t.Fatal("the batch never reached the injected panic")
	}
	if len(notes) != 1 || !strings.Contains(notes[0], errBatchPanic.Error()+": injected panic") {
		t.Fatalf("fallback notes %q, want one of the batch's panic", notes)
	}
	checkIdle(t, d)
	waitGoroutines(t, before)
}

// A panic in a hashing batch's host code (injected in a collect step once
// it has copied its digests out, while the next sub-batch is pending on
// the other slot) fails the device's part as an OpenCL error does: one
// note, the part hashed on the CPU, every digest the CPU's, nothing left
// pending on the device nor a worker running, and the device hashes the
// next batch without the abandoned one's collect writing into the
// caller's reused results.
func TestPanicInAHashBatchFallsBackToCPU(t *testing.T) {
	e := testEngine(t, 1<<20)
	// Each pair fills most of a 1 MiB slot: a sub-batch of its own.
	var inputs [][]byte
	for i := 0; i < 5; i++ {
		inputs = append(inputs, testBytes(600000, uint64(i)), testBytes(1000+i, uint64(10+i)))
	}
	notes, before := armPanic(t, e)
	got := hashChecked(t, e, inputs, " after the panic")
	checkRecovered(t, e, *notes, before)

	clear(got) // the caller reuses its results
	hashChecked(t, e, inputs, " on the device after a panic")
	for i := range inputs {
		if got[i] != ([32]byte{}) {
			t.Fatalf("input %d: the abandoned batch's digest was written into results reused since", i)
		}
	}
	if len(*notes) != 1 {
		t.Fatalf("the device still fails after the panic: %q", *notes)
	}
}

// Close, called while a batch runs on the device, waits for it: the batch
// ends with correct results (the device's or the CPU's) instead of the
// device's queues and pinned buffers being released under it, and the
// batches after Close run on the CPU.
func TestCloseWaitsForABatchInFlight(t *testing.T) {
	var raws [][]byte
	for i := range 40 {
		raws = append(raws, compressible(600000, uint64(i)))
	}
	for _, tc := range []struct {
		name  string
		batch func(t *testing.T, e *Engine)
	}{
		{"hashing", func(t *testing.T, e *Engine) { hashChecked(t, e, raws, "") }},
		{"decoding", func(t *testing.T, e *Engine) {
			blocks := lz4Blocks(t, raws, codec.LevelDefault)
			if err := e.Decoder().DecodeBatch(blocks); err != nil {
				t.Error(err)
			}
			checkDecoded(t, blocks, raws)
		}},
		{"compressing", func(t *testing.T, e *Engine) {
			blocks := make([]EncBlock, len(raws))
			for i := range raws {
				blocks[i].Src = raws[i]
			}
			if err := e.Encoder().EncodeBatch(blocks); err != nil {
				t.Error(err)
			}
			for i, b := range blocks {
				got := make([]byte, len(raws[i]))
				if err := codec.NewDecoder().Decode(b.Codec, got, b.Stored); err != nil || !bytes.Equal(got, raws[i]) {
					t.Errorf("block %d: codec %d does not decode to its source (%v)", i, b.Codec, err)
					return
				}
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := testEngine(t, 1<<20)
			d := e.devs[0]
			before := d.stats.calls.Load() // the self-test's
			done := make(chan struct{})
			go func() {
				defer close(done)
				tc.batch(t, e)
			}()
			for d.stats.calls.Load() == before {
				time.Sleep(100 * time.Microsecond)
			}
			e.Close()
			<-done
			if e.OnDevice() {
				t.Fatal("the engine uses a device after Close")
			}
			tc.batch(t, e)
		})
	}
}

// When no device builds the kernels, the engine's reason is one line, as
// when lz4_coop is dropped: the build log a driver returns spans many
// lines (all of it is `arcpack gpu`'s self-test), and --gpu=auto's line
// or --gpu=on's error printed it whole.
func TestADeviceThatDoesNotBuildIsExplainedInOneLine(t *testing.T) {
	infos, err := ListDevices()
	if err != nil || len(infos) == 0 {
		skipNoOpenCL(t, fmt.Sprintf("no OpenCL platform on this machine (%v)", err))
	}
	// A macro that breaks the kernels' source.
	opt := Options{Device: infos[0].ID, BatchBytes: 1 << 20, buildFlags: "-Dlz4_join=1"}
	for _, tc := range []struct {
		mode Mode
		says func(e *Engine, err error) string
	}{
		{ModeAuto, func(e *Engine, err error) string {
			if err != nil || e.OnDevice() {
				t.Fatalf("auto: %v, on a device %t; want the CPU", err, e.OnDevice())
			}
			return e.Describe()
		}},
		{ModeOn, func(e *Engine, err error) string {
			if !errors.Is(err, ErrNoDevice) {
				t.Fatalf("on: %v, want ErrNoDevice", err)
			}
			return err.Error()
		}},
	} {
		opt.Mode = tc.mode
		e, err := New(opt)
		line := tc.says(e, err)
		if !strings.Contains(line, "building kernels") || strings.ContainsAny(line, "\n\x00") {
			t.Errorf("%v: %q, want one line saying the kernels did not build", tc.mode, line)
		}
	}
}

// skipNoOpenCL skips a test that ListDevices found no device for, unless
// clinfo (the OpenCL ICD's own tool) lists one: then ListDevices is what
// failed, and the test fails instead of every kernel test skipping.
func skipNoOpenCL(t testing.TB, why string) {
	t.Helper()
	if out, err := exec.Command("clinfo", "-l").Output(); err == nil && strings.Contains(string(out), "Device #") {
		t.Fatalf("%s; but clinfo lists a device:\n%s", why, out)
	}
	t.Skip(why)
}
