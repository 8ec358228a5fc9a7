package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"arc/codec"
	"arc/gpu"
	"arc/internal/bytesize"
	"arc/internal/termsafe"
	"arc/reader"
	"arc/writer"

	"github.com/spf13/cobra"
)

func init() { extraCommands = append(extraCommands, newGPUCommand) }

func newGPUCommand() *cobra.Command {
	var noTest bool
	c := &cobra.Command{
		Use:   "gpu",
		Short: "List OpenCL platforms and devices with their capabilities and self-test results",
		Long: `gpu lists every OpenCL device of every platform (CPU ones such as PoCL too),
with memory, compute units, local memory and work-group limit, builds arc's
kernels on each and runs them against the CPU. The ID in the first column is
what --gpu-device takes.`,
		Example: `  arcpack gpu
  arcpack gpu --no-self-test`,
		Args: exactArgs(0),
		RunE: func(c *cobra.Command, args []string) error {
			return runGPU(c.OutOrStdout(), !noTest)
		},
	}
	c.Flags().BoolVar(&noTest, "no-self-test", false, "list devices without building and testing the kernels")
	return c
}

func runGPU(w io.Writer, selfTest bool) error {
	infos, err := gpu.ListDevices()
	if err != nil {
		// Then what --gpu=auto comes to all the same, as the last line
		// always says.
		fmt.Fprintf(w, "no OpenCL devices: %s\n", termsafe.Name(err.Error()))
	}
	test := gpu.SelfTest
	if !selfTest {
		test = nil
	}
	writeGPUDevices(w, infos, test)
	e, err := gpu.New(gpu.Options{Mode: gpu.ModeAuto})
	if err != nil {
		return err
	}
	defer e.Close()
	fmt.Fprintf(w, "--gpu=auto: %s\n", termsafe.Name(e.Describe()))
	return nil
}

// writeGPUDevices writes what `arcpack gpu` says of each device, under a
// line naming its platform, with the result of selfTest when it is not
// nil. What the driver says (names, versions, a failed build's log in the
// self-test's error) is escaped through termsafe.Name as names are.
func writeGPUDevices(w io.Writer, infos []gpu.DeviceInfo, selfTest func(gpu.DeviceInfo) error) {
	for i, d := range infos {
		if i == 0 || d.Platform != infos[i-1].Platform {
			fmt.Fprintf(w, "platform \"%s\"\n", termsafe.Name(d.Platform))
		}
		fmt.Fprintf(w, "  %s  %-4s %s\n", d.ID, termsafe.Name(d.Type), termsafe.Name(d.Name))
		fmt.Fprintf(w, "        %d compute units at %d MHz, %d MiB memory (largest buffer %d MiB), %d KiB local memory, work-groups up to %d\n",
			d.ComputeUnits, d.ClockMHz, d.GlobalMem>>20, d.MaxAlloc>>20, d.LocalMem>>10, d.MaxWorkGroup)
		fmt.Fprintf(w, "        %s, driver %s\n", termsafe.Name(d.Version), termsafe.Name(d.Driver))
		if selfTest == nil {
			continue
		}
		if err := selfTest(d); err != nil {
			fmt.Fprintf(w, "        self-test: FAILED: %s\n", termsafe.Name(err.Error()))
		} else {
			fmt.Fprintf(w, "        self-test: ok (BLAKE3, LZ4 and lz4x decode, LZ4 compression)\n")
		}
	}
}

// gpuUse says what each command that takes --gpu does on the device, and
// the engine's transfer buffer for it: compression keeps the device busy
// with 64 MiB (4096 segment searches) and the writer then holds less in
// flight; decompression needs hundreds of blocks per launch
// (gpu/BENCHMARKS.md), 0 is the engine's default.
func gpuUse(command string) (use string, batchBytes int) {
	switch command {
	case "create":
		return "compress blocks", 64 << 20
	case "verify", "extract":
		return "decompress blocks in batches", 0
	}
	return "", 0
}

type gpuEngineKey struct{}

// addGPUFlags gives create, verify and extract --gpu and --gpu-device, and
// wraps their RunE so that the engine is opened (and its choice said in
// one line when the flags were given) before the command runs and closed
// after; the command takes it with gpuBatchEncoder or gpuDecodeBatch.
func addGPUFlags(root *cobra.Command) {
	for _, c := range root.Commands() {
		use, batchBytes := gpuUse(c.Name())
		if use == "" {
			continue
		}
		var mode, device string
		// Off unless asked: on the H200 machine with 16 cores every one of
		// these commands ran faster on the CPU (gpu/BENCHMARKS.md).
		c.Flags().StringVar(&mode, "gpu", "off", use+" on a GPU: off, auto (a GPU that passes its self-test, else the CPU) or on (fail without one)")
		c.Flags().StringVar(&device, "gpu-device", "", "OpenCL device to use, as 'arcpack gpu' lists it (PLATFORM:DEVICE); any type, a CPU one too")
		run := c.RunE
		c.RunE = func(c *cobra.Command, args []string) error {
			m, err := gpu.ParseMode(mode)
			if err != nil {
				return usageErrorf("%s: --gpu: %v", c.Name(), err)
			}
			if device != "" {
				if err := gpu.CheckDeviceID(device); err != nil {
					return usageErrorf("%s: --gpu-device: %v", c.Name(), err)
				}
			}
			if m == gpu.ModeOff && device != "" {
				if c.Flags().Changed("gpu") {
					return usageErrorf("%s: --gpu-device %s with --gpu=off", c.Name(), device)
				}
				m = gpu.ModeOn // naming a device asks for it
			}
			logf := gpuLogf(os.Stderr)
			eng, err := gpu.New(gpu.Options{Mode: m, Device: device, BatchBytes: batchBytes, Logf: logf})
			if err != nil {
				return fmt.Errorf("%s: %w", c.Name(), err)
			}
			defer eng.Close()
			if c.Flags().Changed("gpu") && m != gpu.ModeOff || device != "" {
				// What a device asked for came to ("off" is as said).
				logf("%s", eng.Describe())
			}
			c.SetContext(context.WithValue(c.Context(), gpuEngineKey{}, eng))
			return run(c, args)
		}
	}
}

// gpuLogf is the engine's Logf: one line "arcpack: gpu: ..." on w, escaped,
// since the lines hold what the driver says (build logs) and the errors of
// failed batches, a decoder's panic met on an archive's bytes among them.
func gpuLogf(w io.Writer) func(format string, a ...any) {
	return func(format string, a ...any) {
		fmt.Fprintf(w, "arcpack: %s\n", termsafe.Name(fmt.Sprintf(format, a...)))
	}
}

// gpuEngine is the engine addGPUFlags opened for c, nil when it uses no
// device.
func gpuEngine(c *cobra.Command) *gpu.Engine {
	if c.Context() == nil {
		return nil
	}
	eng, _ := c.Context().Value(gpuEngineKey{}).(*gpu.Engine)
	if eng == nil || !eng.OnDevice() {
		return nil
	}
	return eng
}

// gpuBatchEncoder is writer.Options.BatchEncoder for create at copt and
// blockSize (0: the level's): the engine's, or nil when no device is used,
// the device does not compress at that codec and level, or its blocks do
// not fit the device's transfer buffer (saying so when --gpu was asked
// for).
func gpuBatchEncoder(c *cobra.Command, copt codec.Options, blockSize int64) writer.BatchEncoder {
	eng := gpuEngine(c)
	if eng == nil {
		return nil
	}
	if !gpu.CompressesLike(copt) {
		if copt.Codec == "raw" {
			return nil // nothing to compress, anywhere
		}
		fmt.Fprintf(os.Stderr, "arcpack: gpu: compression at --codec %s --level %s stays on the CPU (the device does LZ4 at levels fast and default)\n", copt.Codec, copt.Level)
		return nil
	}
	if limit := int64(eng.MaxBlockBytes()); blockSize > limit {
		fmt.Fprintf(os.Stderr, "arcpack: gpu: compression of --block-size %s stays on the CPU (the device takes blocks up to %s)\n", bytesize.Format(blockSize), bytesize.Format(limit))
		return nil
	}
	return eng.WriterEncoder(0)
}

// gpuDecode is the reader options of verify and extract that hand batches
// to the engine (DecodeBatch, and DecodeBatchBytes to fill its transfer
// buffers); none without a device (the reader's CPU workers).
func gpuDecode(c *cobra.Command) reader.Options {
	eng := gpuEngine(c)
	if eng == nil {
		return reader.Options{}
	}
	return reader.Options{DecodeBatch: eng.DecodeFunc(), DecodeBatchBytes: eng.DecodeCallBytes()}
}
