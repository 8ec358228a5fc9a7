// Package gpu runs arc's hot loops — BLAKE3 hashing, LZ4 block compression
// and batch LZ4/lz4x block decompression — on OpenCL devices, with the CPU as a twin that gives the
// same answers. An Engine picks the devices (--gpu=auto|on|off,
// --gpu-device) and hands out small batch interfaces; every batch that a
// device fails is redone on the CPU, so callers always get correct results.
//
// Built with the noopencl tag, the package needs no OpenCL loader and the
// engine always runs on the CPU.
package gpu

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Mode is the --gpu setting.
type Mode int

const (
	// ModeAuto uses GPU devices that build the kernels and pass the
	// self-test, else the CPU.
	ModeAuto Mode = iota
	// ModeOn requires a working device and fails otherwise.
	ModeOn
	// ModeOff never touches OpenCL.
	ModeOff
)

// CheckDeviceID checks the form of a device ID as 'arcpack gpu' lists it:
// PLATFORM:DEVICE, two numbers ("0:1"). Whether that device is there is
// for New to find.
func CheckDeviceID(id string) error {
	p, d, ok := strings.Cut(id, ":")
	pn, perr := strconv.ParseUint(p, 10, 31)
	dn, derr := strconv.ParseUint(d, 10, 31)
	// As 'arcpack gpu' writes them: "00:1" names no device it lists.
	if !ok || perr != nil || derr != nil || strconv.FormatUint(pn, 10) != p || strconv.FormatUint(dn, 10) != d {
		return fmt.Errorf("%q: want PLATFORM:DEVICE, two numbers as 'arcpack gpu' lists them (such as 0:1)", id)
	}
	return nil
}

// ParseMode reads auto, on or off.
func ParseMode(s string) (Mode, error) {
	switch strings.ToLower(s) {
	case "auto":
		return ModeAuto, nil
	case "on":
		return ModeOn, nil
	case "off":
		return ModeOff, nil
	}
	return 0, fmt.Errorf("%q: want auto, on or off", s)
}

func (m Mode) String() string {
	switch m {
	case ModeAuto:
		return "auto"
	case ModeOn:
		return "on"
	case ModeOff:
		return "off"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// Options choose the engine's devices.
type Options struct {
	Mode Mode
	// Device narrows the choice to one listed device, by its ID ("1:0",
	// platform and device index as `arcpack gpu` lists them). Any type of
	// device may be named, a CPU one too: that is how CI runs the GPU path
	// on PoCL. Empty means every GPU-type device that works.
	Device string
	// BatchBytes is the size of one transfer buffer (two per device, for
	// double buffering; about 2.3 times this is pinned in host memory per
	// slot). 0 means 256 MiB on a GPU (at most a 32nd of the host's
	// memory), where a launch needs hundreds of blocks to fill the chip
	// (measured in BENCHMARKS.md), and 64 MiB on other devices.
	BatchBytes int
	// Logf receives run-time fallback notes (a batch redone on the CPU);
	// nil discards them.
	Logf func(format string, args ...any)

	// buildFlags are extra kernel build options and lz4Group the decode
	// kernel's work-group size (benchmark variants; 0 = lz4Local).
	buildFlags string
	lz4Group   int
	// parGroup is lz4_decode_par's work-group size (0 = lz4ParLocal) and
	// parMin the smallest raw block size it takes (0 = lz4ParMin; -1 =
	// never, every block to lz4_decode).
	parGroup, parMin int
	// parForce skips the check of lz4_decode_par's work-group size
	// against what the driver reports (benchmarks).
	parForce bool
	// matchGroup are the compression kernels' work-group sizes (0 =
	// matchLocalFast, matchLocalDefault), for variants built with other table sizes.
	matchGroup [2]int
	// search picks the compression searches (searchAuto: lz4_coop_* on a
	// GPU, lz4_match_* on other devices); coopFlags are build options
	// for a program with lz4_coop (tests: one that fails the build).
	search    searchKind
	coopFlags string
}

// searchKind names a family of compression search kernels.
type searchKind int

const (
	searchAuto   searchKind = iota
	searchSerial            // lz4_match_*: a work-item per segment
	searchCoop              // lz4_coop_*: a work-group per segment
)

// wantCoop reports whether the compression searches on info are lz4_coop.
func (opt Options) wantCoop(info DeviceInfo) bool {
	// lz4_coop_* on GPUs, where they run 1.26-1.49 times faster
	// (BENCHMARKS.md); on a CPU device a work-group's barriers cost more
	// than its lanes gain (PoCL 3.1: 0.01 GB/s against 0.35), and PoCL
	// 5.0's compiler aborts the process on lz4_coop_*, so a CPU device
	// does not build them unless asked.
	return opt.search == searchCoop || opt.search == searchAuto && info.IsGPU
}

// ErrNoOpenCL is returned by discovery in a binary built with noopencl.
var ErrNoOpenCL = errors.New("built without OpenCL")

// ErrNoDevice is returned by New in ModeOn when no device works.
var ErrNoDevice = errors.New("no usable OpenCL GPU device")

// DeviceInfo describes one OpenCL device.
type DeviceInfo struct {
	ID           string // "platform:device", the --gpu-device value
	Platform     string
	Name         string
	Vendor       string
	Version      string // device OpenCL version
	Driver       string
	Type         string // GPU, CPU, accelerator
	IsGPU        bool
	GlobalMem    int64
	MaxAlloc     int64
	LocalMem     int64
	ComputeUnits int
	MaxWorkGroup int
	ClockMHz     int
}

func (d DeviceInfo) String() string {
	return fmt.Sprintf("%s %s %q (%s): %d compute units, %d MiB memory (largest buffer %d MiB), %d KiB local, work-groups up to %d",
		d.ID, d.Type, d.Name, d.Platform, d.ComputeUnits, d.GlobalMem>>20, d.MaxAlloc>>20, d.LocalMem>>10, d.MaxWorkGroup)
}

// Hasher computes BLAKE3-256 digests of many inputs.
type Hasher interface {
	HashBatch(inputs [][]byte) ([][32]byte, error)
}

// Block is one block to decode: Codec is the format's codec id, Src the
// stored bytes, Dst exactly the raw size. Err is set by DecodeBatch.
type Block struct {
	Codec uint8
	Src   []byte
	Dst   []byte
	Err   error
}

// BlockDecoder decodes many independent blocks. It sets each block's Err
// (wrapping codec.ErrBlock for a block that does not decode to exactly its
// raw size; Dst's contents are then unspecified) and returns the first such
// error, wrapped with the block's position in the batch.
type BlockDecoder interface {
	DecodeBatch(blocks []Block) error
}

// EncBlock is one block to compress: Src is its raw bytes. EncodeBatch sets
// Codec and Stored: format.CodecLZ4 and the compressed bytes, or
// format.CodecRaw and Stored == Src when compression would not make the
// block smaller.
type EncBlock struct {
	Src    []byte
	Codec  uint8
	Stored []byte
}

// BlockEncoder compresses many independent blocks into the standard LZ4
// block format, which codec.Decoder (and the decode kernel) read.
type BlockEncoder interface {
	EncodeBatch(blocks []EncBlock) error
}
