package main

import (
	"fmt"
	"io"

	"arc/gpu"

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
		fmt.Fprintf(w, "no OpenCL devices: %v\n", err)
		return nil
	}
	platform := ""
	for _, d := range infos {
		if d.Platform != platform {
			platform = d.Platform
			fmt.Fprintf(w, "platform %q\n", platform)
		}
		fmt.Fprintf(w, "  %s  %-4s %s\n", d.ID, d.Type, d.Name)
		fmt.Fprintf(w, "        %d compute units at %d MHz, %d MiB memory (largest buffer %d MiB), %d KiB local memory, work-groups up to %d\n",
			d.ComputeUnits, d.ClockMHz, d.GlobalMem>>20, d.MaxAlloc>>20, d.LocalMem>>10, d.MaxWorkGroup)
		fmt.Fprintf(w, "        %s, driver %s\n", d.Version, d.Driver)
		if selfTest {
			if err := gpu.SelfTest(d); err != nil {
				fmt.Fprintf(w, "        self-test: FAILED: %v\n", err)
			} else {
				fmt.Fprintf(w, "        self-test: ok (BLAKE3, LZ4 and lz4x decode, LZ4 compression)\n")
			}
		}
	}
	e, err := gpu.New(gpu.Options{Mode: gpu.ModeAuto})
	if err != nil {
		return err
	}
	defer e.Close()
	fmt.Fprintf(w, "--gpu=auto: %s\n", e.Describe())
	return nil
}
