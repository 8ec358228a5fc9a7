package gpu

import (
	"bytes"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"

	"arc/codec"
	"arc/format"

	"github.com/zeebo/blake3"
)

// Engine runs batches on the chosen devices, or on the CPU when there are
// none. It is safe for concurrent use; each device runs one batch at a
// time.
type Engine struct {
	// mu is held for reading by every batch while it uses devs, and by
	// Close for writing: Close waits for the batches in flight, and those
	// after it run on the CPU.
	mu   sync.RWMutex
	devs []*device
	line string
	logf func(format string, args ...any)
}

// New picks devices as opt says. In ModeAuto every GPU-type device (or
// only opt.Device) that builds the kernels and passes the self-test is
// used, else the CPU; in ModeOn failing that is an error; in ModeOff OpenCL
// is not touched. Describe says what was chosen and why.
func New(opt Options) (*Engine, error) {
	e := &Engine{logf: opt.Logf}
	if e.logf == nil {
		e.logf = func(string, ...any) {}
	}
	if opt.Mode == ModeOff {
		e.line = "gpu: off, using the CPU"
		return e, nil
	}
	devs, why := openDevices(opt)
	if len(devs) == 0 {
		if opt.Mode == ModeOn {
			asked := "--gpu=on" // what the user gave: a device named implies on
			if opt.Device != "" {
				asked = "--gpu-device " + opt.Device
			}
			return nil, fmt.Errorf("%s: %w: %s", asked, ErrNoDevice, why)
		}
		e.line = "gpu: using the CPU (" + why + ")"
		return e, nil
	}
	e.devs = devs
	names := ""
	for i, d := range devs {
		if i > 0 {
			names += ", "
		}
		// Quoted as it is: the commands escape the line when they print
		// it (termsafe), and %q would have escaped it twice.
		names += fmt.Sprintf("%s \"%s\"", d.info.ID, d.info.Name)
		if d.coopWhy != "" {
			names += " (compressing with lz4_match; " + d.coopWhy + ")"
		}
	}
	e.line = "gpu: using " + names
	return e, nil
}

// openDevices opens opt.Device, or every GPU-type device, keeping those
// that build and pass the self-test; why says what went wrong when none do.
func openDevices(opt Options) ([]*device, string) {
	infos, err := ListDevices()
	if err != nil {
		return nil, err.Error()
	}
	var devs []*device
	var problems []string
	for _, info := range infos {
		if !opt.Wants(info.ID, info.IsGPU) {
			continue
		}
		d, err := openChecked(info, opt)
		if err != nil {
			problems = append(problems, fmt.Sprintf("device %s %q: %s", info.ID, info.Name, firstLine(err)))
			continue
		}
		devs = append(devs, d)
	}
	if len(devs) > 0 {
		return devs, ""
	}
	if len(problems) > 0 {
		return nil, fmt.Sprint(problems)
	}
	return nil, opt.NoDevice()
}

// Wants says whether the engine would open the device id (a GPU or not):
// the one opt.Device names, else every GPU.
func (o Options) Wants(id string, isGPU bool) bool {
	if o.Device != "" {
		return id == o.Device
	}
	return isGPU
}

// NoDevice says why there is no device to open where none is as Wants
// wants.
func (o Options) NoDevice() string {
	if o.Device != "" {
		return fmt.Sprintf("no OpenCL device %q (see `arcpack gpu`)", o.Device)
	}
	return "no OpenCL GPU device found"
}

// openChecked opens a device and runs its self-test. A device on which
// lz4_coop was chosen but does not build or pass is opened again with
// lz4_match, so that a driver that cannot run one kernel keeps the others;
// coopWhy then says why, in one line. Benchmark variants (build flags) are
// not retried: their rows must time what they name.
func openChecked(info DeviceInfo, opt Options) (*device, error) {
	d, err := openDevice(info, opt)
	if err == nil && opt.buildFlags == "" { // variants are not meant to pass
		err = d.selfTest()
		if err != nil {
			d.close()
		}
	}
	if err == nil {
		return d, nil
	}
	if !opt.wantCoop(info) || opt.buildFlags != "" {
		return nil, err
	}
	opt.search = searchSerial
	d, err2 := openChecked(info, opt)
	if err2 != nil {
		return nil, fmt.Errorf("with lz4_coop: %s; with lz4_match: %v", firstLine(err), err2)
	}
	d.coopWhy = "with lz4_coop: " + firstLine(err)
	return d, nil
}

// firstLine is err's first line: a build error holds the driver's whole
// log, and the engine says why in one line.
func firstLine(err error) string {
	line, _, _ := strings.Cut(err.Error(), "\n")
	return line
}

// Describe is the one line saying which devices the engine uses.
func (e *Engine) Describe() string { return e.line }

// OnDevice reports whether any OpenCL device is in use.
func (e *Engine) OnDevice() bool {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return len(e.devs) > 0
}

// Close releases the devices, once the batches running on them are done;
// later batches run on the CPU.
func (e *Engine) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, d := range e.devs {
		d.close()
	}
	e.devs = nil
	return nil
}

// Hasher returns the engine's BLAKE3 hasher.
func (e *Engine) Hasher() Hasher { return engineHasher{e} }

// Decoder returns the engine's batch block decoder.
func (e *Engine) Decoder() BlockDecoder { return engineDecoder{e} }

type engineHasher struct{ e *Engine }

// HashBatch splits the inputs over the devices by bytes; a part that a
// device fails is hashed on the CPU.
func (h engineHasher) HashBatch(inputs [][]byte) ([][32]byte, error) {
	out := make([][32]byte, len(inputs))
	e := h.e
	e.mu.RLock()
	defer e.mu.RUnlock()
	if len(e.devs) == 0 {
		cpuHash(inputs, out)
		return out, nil
	}
	onDevices(e.devs, split(inputs, len(e.devs), func(p []byte) int { return len(p) }), func(d *device, lo, hi int) {
		if err := d.hashBatch(inputs[lo:hi], out[lo:hi]); err != nil {
			e.logf("gpu: device %s: BLAKE3 batch failed, hashing on the CPU: %v", d.info.ID, err)
			cpuHash(inputs[lo:hi], out[lo:hi])
		}
	})
	return out, nil
}

type engineDecoder struct{ e *Engine }

// onDevice reports whether the kernels decode codec id c.
func onDevice(c uint8) bool { return c == format.CodecLZ4 || c == format.CodecLZ4X }

// DecodeBatch decodes LZ4 and lz4x blocks on the devices,
// and everything else (and every block a device rejects) on the CPU, whose
// error is the one reported.
func (dd engineDecoder) DecodeBatch(blocks []Block) error {
	e := dd.e
	e.mu.RLock()
	defer e.mu.RUnlock()
	var gpuIdx, cpuIdx []int
	for i := range blocks {
		if len(e.devs) > 0 && onDevice(blocks[i].Codec) {
			gpuIdx = append(gpuIdx, i)
		} else {
			cpuIdx = append(cpuIdx, i)
		}
	}
	var mu sync.Mutex
	weight := func(i int) int { return len(blocks[i].Src) + len(blocks[i].Dst) }
	onDevices(e.devs, split(gpuIdx, len(e.devs), weight), func(d *device, lo, hi int) {
		failed, err := d.decodeBatch(blocks, gpuIdx[lo:hi])
		if err != nil {
			e.logf("gpu: device %s: decode batch failed, decoding on the CPU: %v", d.info.ID, err)
			failed = gpuIdx[lo:hi]
		}
		mu.Lock()
		cpuIdx = append(cpuIdx, failed...)
		mu.Unlock()
	})
	cpuDecode(blocks, cpuIdx)
	for i := range blocks {
		if blocks[i].Err != nil {
			return fmt.Errorf("block %d of batch: %w", i, blocks[i].Err)
		}
	}
	return nil
}

// onDevices runs f for each device's run parts[i]:parts[i+1] (skipping
// empty ones) concurrently and waits for all.
func onDevices(devs []*device, parts []int, f func(d *device, lo, hi int)) {
	var wg sync.WaitGroup
	for i, d := range devs {
		if parts[i] < parts[i+1] {
			wg.Add(1)
			go func() {
				defer wg.Done()
				f(d, parts[i], parts[i+1])
			}()
		}
	}
	wg.Wait()
}

// split cuts items into n runs of about equal weight; run i is
// items[b[i]:b[i+1]].
func split[T any](items []T, n int, weight func(T) int) []int {
	total := 0
	for _, it := range items {
		total += weight(it) + 1
	}
	b := make([]int, 0, n+1)
	b = append(b, 0)
	acc := 0
	for i, it := range items {
		acc += weight(it) + 1
		if len(b) < n && acc*n >= total*len(b) {
			b = append(b, i+1)
		}
	}
	for len(b) < n+1 {
		b = append(b, len(items))
	}
	return b
}

// Encoder returns the engine's batch LZ4 compressor (the kernel that stands
// for level default). Its device output is its own (greedy searches of
// 16 KiB segments with 2^13-entry tables in local memory), not
// byte-identical to the CPU's, but every block decodes with codec.Decoder.
func (e *Engine) Encoder() BlockEncoder { return engineEncoder{e} }

type engineEncoder struct{ e *Engine }

// EncodeBatch compresses on the devices; blocks a device cannot take, and
// every block of a failed batch, are compressed on the CPU.
func (ee engineEncoder) EncodeBatch(blocks []EncBlock) error {
	e := ee.e
	e.mu.RLock()
	defer e.mu.RUnlock()
	idx := make([]int, len(blocks))
	for i := range idx {
		idx[i] = i
	}
	if len(e.devs) == 0 {
		cpuEncode(blocks, idx)
		return nil
	}
	var mu sync.Mutex
	var rest []int
	onDevices(e.devs, split(idx, len(e.devs), func(i int) int { return len(blocks[i].Src) }), func(d *device, lo, hi int) {
		left, err := d.encodeBatch(blocks, idx[lo:hi], false)
		if err != nil {
			e.logf("gpu: device %s: compression batch failed, compressing on the CPU: %v", d.info.ID, err)
			left = idx[lo:hi]
		}
		mu.Lock()
		rest = append(rest, left...)
		mu.Unlock()
	})
	cpuEncode(blocks, rest)
	return nil
}

// CPUEncoder is the encoder's CPU twin: codec's LZ4 at LevelFast, blocks
// spread over GOMAXPROCS goroutines.
type CPUEncoder struct{}

// EncodeBatch compresses every block on the CPU.
func (CPUEncoder) EncodeBatch(blocks []EncBlock) error {
	idx := make([]int, len(blocks))
	for i := range idx {
		idx[i] = i
	}
	cpuEncode(blocks, idx)
	return nil
}

var encoders = sync.Pool{New: func() any {
	enc, err := codec.NewEncoder(codec.Options{Codec: "lz4", Level: codec.LevelFast})
	if err != nil {
		panic(err) // a constant, valid option set
	}
	return enc
}}

func cpuEncode(blocks []EncBlock, idx []int) {
	parallel(len(idx), func(k int) {
		b := &blocks[idx[k]]
		enc := encoders.Get().(*codec.Encoder)
		id, stored := enc.Encode(b.Src)
		if id != format.CodecRaw {
			stored = bytes.Clone(stored)
		} else {
			stored = b.Src
		}
		b.Codec, b.Stored = id, stored
		encoders.Put(enc)
	})
}

// CPUHasher is the hasher's CPU twin (github.com/zeebo/blake3, inputs
// spread over GOMAXPROCS goroutines).
type CPUHasher struct{}

// HashBatch hashes every input on the CPU.
func (CPUHasher) HashBatch(inputs [][]byte) ([][32]byte, error) {
	out := make([][32]byte, len(inputs))
	cpuHash(inputs, out)
	return out, nil
}

// CPUDecoder is the decoder's CPU twin (codec.Decoder, blocks spread over
// GOMAXPROCS goroutines).
type CPUDecoder struct{}

// DecodeBatch decodes every block on the CPU.
func (CPUDecoder) DecodeBatch(blocks []Block) error {
	idx := make([]int, len(blocks))
	for i := range idx {
		idx[i] = i
	}
	cpuDecode(blocks, idx)
	for i := range blocks {
		if blocks[i].Err != nil {
			return fmt.Errorf("block %d of batch: %w", i, blocks[i].Err)
		}
	}
	return nil
}

func cpuHash(inputs [][]byte, out [][32]byte) {
	parallel(len(inputs), func(i int) { out[i] = blake3.Sum256(inputs[i]) })
}

func cpuDecode(blocks []Block, idx []int) {
	parallel(len(idx), func(k int) {
		b := &blocks[idx[k]]
		b.Err = decodeOne(b)
	})
}

var decoders = sync.Pool{New: func() any { return codec.NewDecoder() }}

// decodeOne decodes a block on the CPU. A panic (a decoder bug met on
// hostile bytes) becomes the block's error: it runs on goroutines of the
// engine's own, where no caller could recover it, and a read must not end
// the process (a mount). The decoder it hit is not reused.
func decodeOne(b *Block) (err error) {
	d := decoders.Get().(*codec.Decoder)
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %v", errDecoderPanic, r)
			return
		}
		decoders.Put(d)
	}()
	return d.Decode(b.Codec, b.Dst, b.Src)
}

// errDecoderPanic is the error of a block whose CPU decoder panicked.
var errDecoderPanic = errors.New("decoder panicked")

// parallel runs f(0..n-1) on up to GOMAXPROCS goroutines. A panic in f
// stops the workers taking more indices and is raised again here, in the
// caller, once every worker has stopped: on a worker goroutine no recover
// of the caller's could catch it (device.run's, which clears the device's
// pending work and fails the batch, which then goes to the CPU), and it
// would end the process. The value is the first panic's; its stack is
// the caller's.
func parallel(n int, f func(i int)) {
	workers := min(runtime.GOMAXPROCS(0), n)
	if workers <= 1 {
		for i := 0; i < n; i++ {
			f(i)
		}
		return
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	var once sync.Once
	var caught any
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() {
				if r := recover(); r != nil {
					once.Do(func() { caught = r })
					next.Store(int64(n)) // the batch is abandoned: take no more
				}
			}()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				f(i)
			}
		}()
	}
	wg.Wait()
	if caught != nil {
		panic(caught)
	}
}

var errInjected = errors.New("injected kernel failure")

// SelfTest opens the device, builds the kernels, runs them on a small batch
// against the CPU twin and releases the device again.
func SelfTest(info DeviceInfo) error {
	d, err := openDevice(info, Options{BatchBytes: 1 << 20})
	if err != nil {
		return err
	}
	defer d.close()
	return d.selfTest()
}

// ErrUnsupported is returned by WriterEncoder.EncodeBatch for codec
// options the kernel does not stand for.
var ErrUnsupported = errors.New("compression setting not done on the device")

// ErrGaveUp is WriterEncoder's answer once the devices failed giveUpAfter
// batches in a row.
var ErrGaveUp = errors.New("devices given up for this archive")

// CompressesLike reports whether a device kernel stands for the CPU's
// compression at opt: LZ4 output for codec auto, lz4 or lz4x at levels
// fast and default (lz4_match_fast and lz4_match_default, each within 5%
// of that level's ratio on Go source, gpu/BENCHMARKS.md). Higher levels
// search far harder than one greedy pass, zstd and raw are not LZ4: those
// stay on the CPU.
func CompressesLike(opt codec.Options) bool {
	switch opt.Codec {
	case "auto", "lz4", "lz4x":
		return opt.Level == codec.LevelFast || opt.Level == codec.LevelDefault
	}
	return false
}

// WriterEncoder hands the writer's block batches (writer.BatchEncoder) to
// the devices. Unlike Encoder it does not fall back on its own: a batch
// that any device fails comes back as an error, and the writer compresses
// it on the CPU with the archive's own codec options.
type WriterEncoder struct {
	e     *Engine
	bytes int
	// failures counts batches the devices failed in a row; at
	// giveUpAfter gaveUp is set for good and the rest of the archive is
	// the CPU's, without trying (and noting) a broken device once per
	// batch. (Batches run concurrently: a later success must not turn
	// the devices back on.)
	failures atomic.Int32
	gaveUp   atomic.Bool
}

// giveUpAfter is how many failed batches in a row make WriterEncoder stop
// using the devices.
const giveUpAfter = 3

// WriterEncoder returns the writer hook; batchBytes is the raw bytes the
// writer gathers per call (several of the devices' transfer buffers, so
// that packing, transfers and kernels overlap within one call).
// 0 means writerCallBytes.
func (e *Engine) WriterEncoder(batchBytes int) *WriterEncoder {
	if batchBytes <= 0 {
		e.mu.RLock()
		defer e.mu.RUnlock()
		batchBytes = writerCallBytes(e.devs, physicalMemory())
	}
	return &WriterEncoder{e: e, bytes: batchBytes}
}

// writerCallBytes is the writer's default call: twice the transfer buffer
// of every device, since a call is split over the devices and each needs
// both of its buffers' worth for its copies to overlap its kernels. The
// writer keeps a few calls of blocks in flight, raw and compressed, so
// past the first device's share the call is held to a 32nd of the host's
// memory (mem, 0 when unknown: no hold) on hosts with many devices.
func writerCallBytes(devs []*device, mem uint64) int {
	if len(devs) == 0 {
		return 64 << 20
	}
	n := 0
	for _, d := range devs {
		n += 2 * d.batchBytes()
	}
	if mem > 0 {
		n = min(n, max(2*devs[0].batchBytes(), int(min(mem/32, 1<<62))))
	}
	return n
}

// BatchBytes is how many raw bytes the writer should gather per call.
func (w *WriterEncoder) BatchBytes() int { return w.bytes }

// EncodeBatch compresses raws on the devices.
func (w *WriterEncoder) EncodeBatch(opt codec.Options, raws [][]byte) ([]uint8, [][]byte, error) {
	e := w.e
	if !CompressesLike(opt) {
		return nil, nil, fmt.Errorf("codec %s at level %s: %w", opt.Codec, opt.Level, ErrUnsupported)
	}
	e.mu.RLock()
	defer e.mu.RUnlock()
	if len(e.devs) == 0 {
		return nil, nil, ErrNoDevice
	}
	if w.gaveUp.Load() {
		return nil, nil, fmt.Errorf("%d batches failed in a row: %w", giveUpAfter, ErrGaveUp)
	}
	// Blocks larger than a transfer buffer (--block-size above it) are
	// the CPU's, silently: a limit, not a failure to note per batch.
	for _, r := range raws {
		for _, d := range e.devs {
			if len(r) > d.batchBytes() {
				return nil, nil, fmt.Errorf("a %d-byte block: larger than device %s's transfer buffer: %w", len(r), d.info.ID, ErrUnsupported)
			}
		}
	}
	blocks := make([]EncBlock, len(raws))
	idx := make([]int, len(raws))
	for i := range raws {
		blocks[i].Src = raws[i]
		idx[i] = i
	}
	var mu sync.Mutex
	var firstErr error
	onDevices(e.devs, split(idx, len(e.devs), func(i int) int { return len(raws[i]) }), func(d *device, lo, hi int) {
		rest, err := d.encodeBatch(blocks, idx[lo:hi], opt.Level == codec.LevelFast)
		if err == nil && len(rest) > 0 {
			err = fmt.Errorf("%d blocks larger than a transfer buffer", len(rest))
		}
		if err != nil {
			e.logf("gpu: device %s: compression batch failed, compressing on the CPU: %v", d.info.ID, err)
			mu.Lock()
			if firstErr == nil {
				firstErr = fmt.Errorf("device %s: %w", d.info.ID, err)
			}
			mu.Unlock()
		}
	})
	if firstErr != nil {
		if w.failures.Add(1) >= giveUpAfter && !w.gaveUp.Swap(true) {
			e.logf("gpu: %d compression batches failed in a row: the CPU compresses the rest of this archive", giveUpAfter)
		}
		return nil, nil, firstErr
	}
	w.failures.Store(0)
	ids := make([]uint8, len(raws))
	stored := make([][]byte, len(raws))
	for i := range blocks {
		ids[i], stored[i] = blocks[i].Codec, blocks[i].Stored
	}
	return ids, stored, nil
}

// MaxBlockBytes is the largest raw block every device takes (one transfer
// buffer): larger ones are compressed on the CPU. 0 without a device.
func (e *Engine) MaxBlockBytes() int {
	e.mu.RLock()
	defer e.mu.RUnlock()
	n := 0
	for i, d := range e.devs {
		if b := d.batchBytes(); i == 0 || b < n {
			n = b
		}
	}
	return n
}

// DecodeCallBytes is how many raw bytes one call of the decoder should
// hold: both transfer buffers of every device, so that one batch's copies
// overlap the other's kernels (a call of one buffer's worth runs them one
// after the other, and the device waits for each); 0 without a device.
// A 64th of each buffer is left for the blocks' padding in it, so that a
// call does not spill a sliver into a third batch that overlaps nothing.
func (e *Engine) DecodeCallBytes() int {
	e.mu.RLock()
	defer e.mu.RUnlock()
	n := 0
	for _, d := range e.devs {
		b := d.batchBytes()
		n += 2 * (b - b/64)
	}
	return n
}

// DecodeFunc is the engine's decoder in the shape reader.Options.DecodeBatch
// takes: block i of codec ids[i] decoded from srcs[i] into dsts[i], errs[i]
// its error.
func (e *Engine) DecodeFunc() func(ids []uint8, dsts, srcs [][]byte) (errs []error) {
	dec := e.Decoder()
	return func(ids []uint8, dsts, srcs [][]byte) []error {
		blocks := make([]Block, len(ids))
		for i := range blocks {
			blocks[i] = Block{Codec: ids[i], Src: srcs[i], Dst: dsts[i]}
		}
		// Every failure is a block's own (DecodeBatch's error only repeats
		// the first of them): one bad block must not mark its batch bad.
		_ = dec.DecodeBatch(blocks)
		errs := make([]error, len(ids))
		for i := range blocks {
			errs[i] = blocks[i].Err
		}
		return errs
	}
}
