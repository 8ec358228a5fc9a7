//go:build !noopencl

package gpu

/*
#cgo pkg-config: OpenCL
#cgo CFLAGS: -DCL_TARGET_OPENCL_VERSION=120
#include <CL/cl.h>
*/
import "C"

import (
	"cmp"
	"embed"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/jgillich/go-opencl/cl"
)

//go:embed kernels/*.cl
var kernelFS embed.FS

// defaultBatch is Options.BatchBytes' default: 256 MiB on a GPU, 64 MiB
// on other devices. 512 MiB batches decode 1 MiB blocks at 53-58 GB/s of
// kernel time against 36-39 (H200, 2026-12-05, BENCHMARKS.md), but end to
// end only 4-13% faster, and the engine takes 0.65 s longer to open and
// close with them: a verify gains only past 100-300 GB. About 2.3 times a
// batch is pinned per slot, two slots per device, so it is held to a 32nd
// of the host's memory (mem, 0 when unknown; per device: a host with many
// GPUs pins more), and not below 64 MiB.
func defaultBatch(isGPU bool, mem uint64) int {
	if !isGPU {
		return 64 << 20
	}
	b := 256 << 20
	if mem > 0 {
		b = int(min(uint64(b), max(mem/32, 64<<20)))
	}
	return b
}

// inPad is slack after a slot's input buffer, so that a kernel may load a
// vector that starts inside the last block and runs past it.
const inPad = 64

// localSize is the work-group size of the BLAKE3 kernels: small enough for
// any OpenCL 1.2 device, and a multiple of NVIDIA's warp of 32.
const localSize = 64

// lz4Local is the decode kernel's work-group size: one warp, so that its
// many barriers are cheap. On the H100 it decoded 64 KiB blocks at 59 GB/s
// against 37 with 64 work-items and 29 with 128 (BENCHMARKS.md).
const lz4Local = 32

// lz4ParLocal is the work-group size of lz4_decode_par (its LZ4P_WG), and
// lz4ParMin the smallest raw block size it decodes; smaller blocks go to
// lz4_decode. On the H200 (BENCHMARKS.md, 256 MiB batches) lz4_decode_par
// decodes 1 MiB blocks at 26-28 GB/s against 5.7-6.5, 256 KiB at 48
// against 17 and 64 KiB at 59 against 49. 256 work-items: NVIDIA reports
// no more for it (CL_KERNEL_WORK_GROUP_SIZE), and 512 measured no faster.
const (
	lz4ParLocal = 256
	lz4ParMin   = 64 << 10
)

// encSeg is the segment of a block that one search of the compression
// kernels covers (their SEG). matchLocal* are the work-group sizes of
// lz4_match_fast and lz4_match_default: their searches have tables of 2^12
// and 2^13 16-bit positions, 8 and 16 KiB, so 4 and 2 share 32 KiB.
const (
	encSeg            = 16 << 10
	matchLocalFast    = 4
	matchLocalDefault = 2
	coopLanes         = 32
)

// maxSegs bounds the segments of one sub-batch: its bytes in whole
// segments plus one partial segment per block.
func (d *device) maxSegs() int { return d.batch/encSeg + d.maxN }

// segScratch is the scratch a sub-batch of n bytes in segs segments needs
// (the kernels' seg_scratch of the end).
func segScratch(n, segs int) int { return n + n/64 + segs*64 }

// ListDevices lists every device of every OpenCL platform, CPU ones
// included. A machine with an OpenCL loader but no platform gets an error.
func ListDevices() ([]DeviceInfo, error) {
	plats, err := cl.GetPlatforms()
	if err != nil {
		return nil, fmt.Errorf("no OpenCL platform (%v)", err)
	}
	if len(plats) == 0 {
		return nil, fmt.Errorf("no OpenCL platform")
	}
	var out []DeviceInfo
	for pi, p := range plats {
		devs, err := p.GetDevices(cl.DeviceTypeAll)
		if err != nil {
			continue // a platform without devices answers with an error
		}
		for di, d := range devs {
			out = append(out, describe(pi, di, p, d))
		}
	}
	return out, nil
}

func describe(pi, di int, p *cl.Platform, d *cl.Device) DeviceInfo {
	t := d.Type()
	return DeviceInfo{
		ID:           fmt.Sprintf("%d:%d", pi, di),
		Platform:     strings.TrimSpace(p.Name()),
		Name:         strings.TrimSpace(d.Name()),
		Vendor:       strings.TrimSpace(d.Vendor()),
		Version:      strings.TrimSpace(d.Version()),
		Driver:       strings.TrimSpace(d.DriverVersion()),
		Type:         strings.TrimSpace(t.String()),
		IsGPU:        t&cl.DeviceTypeGPU != 0,
		GlobalMem:    d.GlobalMemSize(),
		MaxAlloc:     d.MaxMemAllocSize(),
		LocalMem:     d.LocalMemSize(),
		ComputeUnits: d.MaxComputeUnits(),
		MaxWorkGroup: d.MaxWorkGroupSize(),
		ClockMHz:     d.MaxClockFrequency(),
	}
}

// findDevice returns the cl.Device behind info.ID.
func findDevice(id string) (*cl.Device, error) {
	var pi, di int
	if _, err := fmt.Sscanf(id, "%d:%d", &pi, &di); err != nil {
		return nil, fmt.Errorf("device id %q: want platform:device", id)
	}
	plats, err := cl.GetPlatforms()
	if err != nil || pi < 0 || pi >= len(plats) {
		return nil, fmt.Errorf("no OpenCL platform %d", pi)
	}
	devs, err := plats[pi].GetDevices(cl.DeviceTypeAll)
	if err != nil || di < 0 || di >= len(devs) {
		return nil, fmt.Errorf("no device %d on platform %d", di, pi)
	}
	return devs[di], nil
}

// device is one OpenCL device with its context, program and two slots of
// buffers, so that one sub-batch is packed and collected on the host while
// the other is transferred and computed.
type device struct {
	info  DeviceInfo
	cld   *cl.Device
	ctx   *cl.Context
	prog  *cl.Program
	batch int // bytes of one slot's input (and output) buffer
	maxN  int // inputs or blocks per sub-batch
	lz4WG int // the decode kernel's work-group size
	// parWG is lz4_decode_par's work-group size, parMin the smallest
	// raw size that it decodes (blocks below go to lz4_decode).
	parWG, parMin int
	parWhy        string // why parMin is -1
	parForce      bool
	// matchWG are the work-group sizes of lz4_match_fast and
	// lz4_match_default (searches sharing a group's local memory).
	matchWG [2]int
	// coop: the compression searches are lz4_coop_* (a work-group of
	// coopLanes per segment), else lz4_match_* (a work-item per segment);
	// coopWhy says why lz4_coop was chosen but not kept.
	coop    bool
	coopWhy string

	mu    sync.Mutex // one batch at a time
	slots [2]*slot
	spans []span // the kernel intervals of the call run is in (under mu)

	// inject, when set, makes the next kernel launch fail (tests of the
	// CPU fallback); injectPanic makes the next sub-batch's collect step
	// panic once it has copied its results out (tests of run's recover:
	// the real host code gives no input on which it panics).
	inject, injectPanic atomic.Bool

	stats stats
}

// stats accumulate device-side times, read by the benchmarks.
type stats struct {
	kernelNs atomic.Int64 // kernel execution, from profiling events, summed
	joinNs   atomic.Int64 // of which lz4_join (compression's second kernel)
	xferNs   atomic.Int64 // host<->device copies, from profiling events
	xferB    atomic.Int64 // bytes of those copies
	bytes    atomic.Int64 // bytes the kernels timed produced (decode) or read (hash)
	calls    atomic.Int64 // batches the device took (run calls)

	// busy is the time at least one kernel ran, the union of their
	// intervals on the device clock: the two slots' queues run kernels at
	// the same time, so kernelNs counts such time twice (their durations
	// stretch while they share the device). run adds each call's union;
	// calls never overlap (run holds d.mu and waits for both slots), so
	// the sum is the union over all of them.
	busy atomic.Int64
}

type span struct{ start, end int64 }

// unionNs is the length of the union of the intervals; it sorts sp.
func unionNs(sp []span) int64 {
	slices.SortFunc(sp, func(a, b span) int { return cmp.Compare(a.start, b.start) })
	var ns, end int64
	for _, x := range sp {
		if x.start > end {
			end = x.start
		}
		if x.end > end {
			ns += x.end - end
			end = x.end
		}
	}
	return ns
}

// pinned is a host-allocated OpenCL buffer kept mapped: the driver can DMA
// from it directly, and it is C memory, so non-blocking transfers to and
// from it break no cgo rule.
type pinned struct {
	buf *cl.MemObject
	m   *cl.MappedMemObject
	b   []byte
}

type slot struct {
	q                  *cl.CommandQueue
	in, out, desc, res pinned
	dIn, dOut, dDesc   *cl.MemObject
	dRes, dCV, dTmp    *cl.MemObject
	dScratch, dInfo    *cl.MemObject // compression: segments' sequences and summaries
	kChunks, kParents  *cl.Kernel
	kLZ4, kLZ4Par      *cl.Kernel
	kMatchFast         *cl.Kernel
	kMatchDef, kJoin   *cl.Kernel
	events             []*cl.Event // to wait for
	kernels, xfers     []*cl.Event // to time
	joins              []*cl.Event // lz4_join's, timed apart (and as kernels)
	collect            func()      // copies results out once events completed
	kernelBytes        int64
	xferBytes          int64
}

func openDevice(info DeviceInfo, opt Options) (d *device, err error) {
	batch := opt.BatchBytes
	if batch <= 0 {
		batch = defaultBatch(info.IsGPU, physicalMemory())
	}
	batch = max(batch, 1<<20)
	if info.MaxAlloc > 0 && int64(batch) > info.MaxAlloc/2 {
		batch = int(info.MaxAlloc / 2)
	}
	cld, err := findDevice(info.ID)
	if err != nil {
		return nil, err
	}
	d = &device{info: info, cld: cld, batch: batch, maxN: batch / 256, lz4WG: lz4Local, matchWG: [2]int{matchLocalFast, matchLocalDefault}}
	if opt.lz4Group > 0 {
		d.lz4WG = opt.lz4Group
	}
	d.parWG, d.parMin = lz4ParLocal, lz4ParMin
	if opt.parGroup > 0 {
		d.parWG = opt.parGroup
	}
	if opt.parMin != 0 {
		d.parMin = opt.parMin
	}
	d.parForce = opt.parForce
	d.coop = opt.wantCoop(info)
	coopFlag := "-DNO_COOP"
	if d.coop {
		coopFlag = opt.coopFlags
	}
	for i, wg := range opt.matchGroup {
		if wg > 0 {
			d.matchWG[i] = wg
		}
	}
	dev := d // the error returns below set d to nil
	defer func() {
		if err != nil {
			dev.close()
		}
	}()
	d.ctx, err = cl.CreateContext([]*cl.Device{cld})
	if err != nil {
		return nil, fmt.Errorf("context: %w", err)
	}
	var src []string
	names, _ := kernelFS.ReadDir("kernels")
	sort.Slice(names, func(i, j int) bool { return names[i].Name() < names[j].Name() })
	for _, n := range names {
		b, err := kernelFS.ReadFile("kernels/" + n.Name())
		if err != nil {
			return nil, err
		}
		src = append(src, string(b))
	}
	d.prog, err = d.ctx.CreateProgramWithSource([]string{strings.Join(src, "\n")})
	if err != nil {
		return nil, fmt.Errorf("program: %w", err)
	}
	if err := d.prog.BuildProgram([]*cl.Device{cld}, fmt.Sprintf("-cl-std=CL1.2 -DLZ4_WG=%d -DLZ4P_WG=%d -DSEG=%d -DFAST_WG=%d -DDEF_WG=%d -DLANES=%d %s %s", d.lz4WG, d.parWG, encSeg, d.matchWG[0], d.matchWG[1], coopLanes, coopFlag, opt.buildFlags)); err != nil {
		return nil, fmt.Errorf("building kernels: %w", err)
	}
	for i := range d.slots {
		// Stored before the check: close frees what a half-made slot holds.
		s, err := d.newSlot()
		d.slots[i] = s
		if err != nil {
			return nil, fmt.Errorf("buffers: %w", err)
		}
	}
	return d, nil
}

func (d *device) newSlot() (s *slot, err error) {
	s = &slot{}
	s.q, err = d.ctx.CreateCommandQueue(d.cld, cl.CommandQueueProfilingEnable)
	if err != nil {
		return s, err
	}
	descBytes := 4 * (6*d.maxN + d.batch/1024 + d.maxSegs())
	cvBytes := 32 * (d.batch/1024 + d.maxN)
	for _, p := range []struct {
		pin  *pinned
		size int
	}{{&s.in, d.batch + inPad}, {&s.out, d.batch}, {&s.desc, descBytes}, {&s.res, 4 * d.maxN}} {
		if err := d.pin(s.q, p.pin, p.size); err != nil {
			return s, err
		}
	}
	for _, b := range []struct {
		m    **cl.MemObject
		size int
	}{{&s.dIn, d.batch + inPad}, {&s.dOut, d.batch}, {&s.dDesc, descBytes}, {&s.dRes, 4 * d.maxN}, {&s.dCV, cvBytes}, {&s.dTmp, cvBytes},
		{&s.dScratch, segScratch(d.batch, d.maxSegs())}, {&s.dInfo, 20 * d.maxSegs()}} {
		if *b.m, err = d.ctx.CreateEmptyBuffer(cl.MemReadWrite, b.size); err != nil {
			return s, err
		}
	}
	for _, k := range []struct {
		k    **cl.Kernel
		name string
	}{{&s.kChunks, "blake3_chunks"}, {&s.kParents, "blake3_parents"}, {&s.kLZ4, "lz4_decode"}, {&s.kLZ4Par, "lz4_decode_par"}, {&s.kMatchFast, "lz4_" + d.search() + "_fast"},
		{&s.kMatchDef, "lz4_" + d.search() + "_default"}, {&s.kJoin, "lz4_join"}} {
		if *k.k, err = d.prog.CreateKernel(k.name); err != nil {
			return s, fmt.Errorf("kernel %s: %w", k.name, err)
		}
	}
	// A device (or a build of the kernel) that cannot run lz4_decode_par's
	// work-group decodes every block with lz4_decode.
	if n, err := s.kLZ4Par.WorkGroupSize(d.cld); !d.parForce && (err != nil || n < d.parWG || d.info.MaxWorkGroup < d.parWG) {
		d.parMin = -1
		d.parWhy = fmt.Sprintf("lz4_decode_par: work-groups up to %d (%v), device %d, want %d", n, err, d.info.MaxWorkGroup, d.parWG)
	}
	return s, nil
}

func (d *device) pin(q *cl.CommandQueue, p *pinned, size int) error {
	var err error
	p.buf, err = d.ctx.CreateEmptyBuffer(cl.MemReadWrite|cl.MemAllocHostPtr, size)
	if err != nil {
		return err
	}
	p.m, _, err = q.EnqueueMapBuffer(p.buf, true, cl.MapFlagRead|cl.MapFlagWrite, 0, size, nil)
	if err != nil {
		return err
	}
	p.b = unsafe.Slice((*byte)(p.m.Ptr()), size)
	return nil
}

func (d *device) close() {
	for i, s := range d.slots {
		if s == nil {
			continue
		}
		s.wait()
		elapsed(s.kernels, nil)
		elapsed(s.joins, nil)
		elapsed(s.xfers, nil)
		for _, p := range []*pinned{&s.in, &s.out, &s.desc, &s.res} {
			if p.m != nil {
				if ev, err := s.q.EnqueueUnmapMemObject(p.buf, p.m, nil); err == nil {
					ev.Release()
				}
			}
		}
		if s.q != nil {
			s.q.Finish()
		}
		for _, p := range []*pinned{&s.in, &s.out, &s.desc, &s.res} {
			if p.buf != nil {
				p.buf.Release()
			}
		}
		for _, m := range []*cl.MemObject{s.dIn, s.dOut, s.dDesc, s.dRes, s.dCV, s.dTmp, s.dScratch, s.dInfo} {
			if m != nil {
				m.Release()
			}
		}
		for _, k := range []*cl.Kernel{s.kChunks, s.kParents, s.kLZ4, s.kLZ4Par, s.kMatchFast, s.kMatchDef, s.kJoin} {
			if k != nil {
				k.Release()
			}
		}
		if s.q != nil {
			s.q.Release()
		}
		d.slots[i] = nil
	}
	if d.prog != nil {
		d.prog.Release()
		d.prog = nil
	}
	if d.ctx != nil {
		d.ctx.Release()
		d.ctx = nil
	}
}

// flush submits the queue's commands without waiting for them. go-opencl's
// Flush calls clFinish, which would serialise the two slots; its
// CommandQueue keeps the cl_command_queue as its first field.
func flush(q *cl.CommandQueue) error {
	if rc := C.clFlush(*(*C.cl_command_queue)(unsafe.Pointer(q))); rc != C.CL_SUCCESS {
		return fmt.Errorf("clFlush: error %d", int(rc))
	}
	return nil
}

// buildLog is the program's build log on the device (benchmarks: with
// -cl-nv-verbose, NVIDIA's register counts). go-opencl's Program and
// Device keep their handles as their first fields.
func buildLog(p *cl.Program, d *cl.Device) string {
	prog := *(*C.cl_program)(unsafe.Pointer(p))
	dev := *(*C.cl_device_id)(unsafe.Pointer(d))
	var n C.size_t
	if C.clGetProgramBuildInfo(prog, dev, C.CL_PROGRAM_BUILD_LOG, 0, nil, &n) != C.CL_SUCCESS || n == 0 {
		return ""
	}
	b := make([]byte, n)
	if C.clGetProgramBuildInfo(prog, dev, C.CL_PROGRAM_BUILD_LOG, n, unsafe.Pointer(&b[0]), nil) != C.CL_SUCCESS {
		return ""
	}
	return strings.TrimRight(string(b), "\x00\n ")
}

// wait blocks until the slot's submitted work is done, then runs its
// collect step; the error is the first failed command's.
func (s *slot) wait() error {
	if len(s.events) == 0 {
		return nil
	}
	err := cl.WaitForEvents(s.events)
	s.xfers = append(s.xfers, s.events...) // released once timed
	s.events = s.events[:0]
	collect := s.collect
	s.collect = nil
	if err == nil && collect != nil {
		collect()
	}
	return err
}

// kernelTime adds up and releases the slot's timed events.
func (d *device) kernelTime(s *slot) {
	join := elapsed(s.joins, &d.spans)
	d.stats.joinNs.Add(join)
	if ns := elapsed(s.kernels, &d.spans) + join; ns > 0 {
		d.stats.kernelNs.Add(ns)
		d.stats.bytes.Add(s.kernelBytes)
	}
	s.joins = s.joins[:0]
	d.stats.xferNs.Add(elapsed(s.xfers, nil))
	d.stats.xferB.Add(s.xferBytes)
	s.kernels, s.xfers = s.kernels[:0], s.xfers[:0]
	s.kernelBytes, s.xferBytes = 0, 0
}

// elapsed sums the events' device times and releases them; spans, when
// not nil, gets their intervals.
func elapsed(evs []*cl.Event, spans *[]span) int64 {
	var ns int64
	for _, ev := range evs {
		a, err1 := ev.GetEventProfilingInfo(cl.ProfilingInfoCommandStart)
		b, err2 := ev.GetEventProfilingInfo(cl.ProfilingInfoCommandEnd)
		if err1 == nil && err2 == nil && b > a {
			ns += b - a
			if spans != nil {
				*spans = append(*spans, span{a, b})
			}
		}
		ev.Release()
	}
	return ns
}

// launch enqueues k over global work-items in groups of local.
func (d *device) launch(s *slot, k *cl.Kernel, global, local int, args ...any) error {
	if d.inject.Swap(false) {
		return errInjected
	}
	if err := k.SetArgs(args...); err != nil {
		return err
	}
	global = (global + local - 1) / local * local
	ev, err := s.q.EnqueueNDRangeKernel(k, nil, []int{global}, []int{local}, nil)
	if err != nil {
		return err
	}
	s.kernels = append(s.kernels, ev)
	return nil
}

// write and read enqueue non-blocking transfers between a pinned buffer
// and a device buffer.
func (s *slot) write(dst *cl.MemObject, src *pinned, n int) error {
	if n == 0 {
		return nil
	}
	ev, err := s.q.EnqueueWriteBuffer(dst, false, 0, n, src.m.Ptr(), nil)
	if err != nil {
		return err
	}
	s.xfers = append(s.xfers, ev)
	s.xferBytes += int64(n)
	return nil
}

func (s *slot) read(dst *pinned, src *cl.MemObject, n int) error {
	if n == 0 {
		return nil
	}
	ev, err := s.q.EnqueueReadBuffer(src, false, 0, n, dst.m.Ptr(), nil)
	if err != nil {
		return err
	}
	s.events = append(s.events, ev)
	s.xferBytes += int64(n)
	return nil
}

// run pipelines sub-batches over the two slots: fill packs the next
// sub-batch into a slot and enqueues its work (returning false when there
// is none left); a slot is waited for (and collected) before it is refilled.
//
// A panic in fill or in a collect step (a bug in the host code that packs
// a sub-batch or unpacks its results, also on their copies' worker
// goroutines, which parallel raises again here) is returned as the
// batch's error, errBatchPanic, as a failed OpenCL command is: the engine
// logs that error and redoes the batch on the CPU (hashing, decoding,
// Encoder), or returns it to the writer, which compresses the batch on
// the CPU (WriterEncoder), so decoding, hashing and compression all
// recover here, in one place. Raised further, it would end the process:
// run's callers are onDevices' goroutines, which no caller's recover
// reaches. Nor may it leave a slot's work pending: at the next call's
// wait, its collect would write the abandoned batch's results into
// buffers the caller has reused since.
func (d *device) run(fill func(s *slot) (more bool, err error)) (err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.stats.calls.Add(1)
	defer func() {
		if r := recover(); r != nil {
			for _, s := range d.slots {
				s.q.Finish()
				s.xfers = append(s.xfers, s.events...) // released once timed
				s.events = s.events[:0]
				s.collect = nil
				d.kernelTime(s)
			}
			d.spans = d.spans[:0]
			err = fmt.Errorf("%w: %v", errBatchPanic, r)
		}
	}()
	var firstErr error
	for cur, more := 0, true; more; cur ^= 1 {
		s := d.slots[cur]
		if err := s.wait(); err != nil {
			firstErr = err
			break
		}
		d.kernelTime(s)
		var err error
		more, err = fill(s)
		if err == nil && len(s.events) > 0 {
			if d.injectPanic.Swap(false) {
				collect := s.collect
				s.collect = func() {
					if collect != nil {
						collect()
					}
					panic("injected panic")
				}
			}
			err = flush(s.q)
		}
		if err != nil {
			firstErr = err
			break
		}
	}
	for _, s := range d.slots {
		if err := s.wait(); err != nil && firstErr == nil {
			firstErr = err
		}
		if firstErr != nil {
			s.q.Finish()
			s.collect = nil
		}
		d.kernelTime(s)
	}
	d.stats.busy.Add(unionNs(d.spans))
	d.spans = d.spans[:0]
	return firstErr
}

// errBatchPanic is the error of a device batch whose host code panicked.
var errBatchPanic = errors.New("batch panicked")

func u32s(p *pinned) []uint32 {
	return unsafe.Slice((*uint32)(unsafe.Pointer(&p.b[0])), len(p.b)/4)
}

// batchBytes is the size of one slot's input buffer.
func (d *device) batchBytes() int { return d.batch }

// search is the name of the compression search kernels' family.
func (d *device) search() string {
	if d.coop {
		return "coop"
	}
	return "match"
}
