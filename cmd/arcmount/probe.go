package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"

	"arc/gpu"
)

// gpuProbeFlag is the hidden flag of listDevices.
//
// Why a child: the OpenCL drivers a process loads to look for a device
// stay in its memory for good, used or not. PoCL, the CPU implementation
// many systems have, brings LLVM and clang: about 60 MiB that a mount with
// no GPU to use (--gpu=auto, the default) kept beside its --cache-size, past
// the cache + 100 MiB it promises. A child looks instead; only when it
// finds a device to use does the mount load the drivers itself.
const gpuProbeFlag = "gpu-probe"

// probeWaitDelay is how long a probe killed is waited for: a child stuck in
// a driver's call must not hold up the end of a mount for long.
const probeWaitDelay = 2 * time.Second

// listDevices writes the OpenCL devices, "ID\tgpu" or "ID\tother" a line,
// or one line "none\tWHY" when there are none.
func listDevices(w io.Writer) error {
	infos, err := gpu.ListDevices()
	if err != nil {
		_, err = fmt.Fprintf(w, "none\t%s\n", strings.ReplaceAll(err.Error(), "\n", " "))
		return err
	}
	for _, d := range infos {
		kind := "other"
		if d.IsGPU {
			kind = "gpu"
		}
		if _, err := fmt.Fprintf(w, "%s\t%s\n", d.ID, kind); err != nil {
			return err
		}
	}
	return nil
}

// probeDevices asks a child arcmount (listDevices) whether opt would find a
// device: the one opt names, else a GPU. When the child cannot say (it
// cannot be run, it fails or hangs), use is true: the engine then looks
// itself, as it did before there was a probe.
//
// Cancelling ctx ends the child (the mount ends before the probe does).
func probeDevices(ctx context.Context, opt gpu.Options) (use bool, why string) {
	exe, err := os.Executable()
	if err != nil {
		return true, ""
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, exe, "--"+gpuProbeFlag)
	// Killed (the timeout, or the mount ending), it gets a moment to go,
	// and what it left holding its output does not hold the probe.
	cmd.WaitDelay = probeWaitDelay
	out, err := cmd.Output()
	if err != nil {
		return true, ""
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		id, kind, _ := strings.Cut(sc.Text(), "\t")
		switch {
		case id == "none":
			return false, kind
		case opt.Wants(id, kind == "gpu"):
			return true, ""
		}
	}
	return false, opt.NoDevice()
}
