package main

import (
	"bytes"
	"errors"
	"testing"

	"arc/gpu"
)

// The engine's log lines reach the terminal escaped: a failed batch's
// error may hold what a hostile archive chose (a decoder's panic value).
func TestGPULogLinesAreEscaped(t *testing.T) {
	var b bytes.Buffer
	err := errors.New("decoder panicked: x\x1b]0;pwned\x07\u009b\u202e\nnext")
	gpuLogf(&b)("gpu: device %s: decode batch failed, decoding on the CPU: %v", "0:0", err)
	want := `arcpack: gpu: device 0:0: decode batch failed, decoding on the CPU: decoder panicked: x\033]0;pwned\007\302\233\342\200\256\nnext` + "\n"
	if b.String() != want {
		t.Errorf("log line %q, want %q", b.String(), want)
	}
}

// arcpack gpu prints what OpenCL drivers say of their devices escaped: a
// platform or device name, a version, or a failed build's log could hold
// what acts on the terminal.
func TestGPUDeviceLinesAreEscaped(t *testing.T) {
	d := gpu.DeviceInfo{
		ID: "0:0", Platform: "pocl\x1b]0;pwned\x07", Name: "gpu\u009b2J\u202eevil", Type: "GPU\t",
		Version: "OpenCL 3.0\nfake line", Driver: "6.0\x1b[31m",
		GlobalMem: 2 << 30, MaxAlloc: 1 << 30, LocalMem: 64 << 10, ComputeUnits: 8, MaxWorkGroup: 256, ClockMHz: 1500,
	}
	for _, tc := range []struct {
		name     string
		selfTest func(gpu.DeviceInfo) error
		last     string
	}{
		{"without the self-test", nil, ""},
		{"with a failed self-test", func(gpu.DeviceInfo) error { return errors.New("build log:\n\x1b[2Jerror") },
			`        self-test: FAILED: build log:\n\033[2Jerror` + "\n"},
	} {
		var b bytes.Buffer
		writeGPUDevices(&b, []gpu.DeviceInfo{d}, tc.selfTest)
		want := `platform "pocl\033]0;pwned\007"` + "\n" +
			`  0:0  GPU\t gpu\302\2332J\342\200\256evil` + "\n" +
			"        8 compute units at 1500 MHz, 2048 MiB memory (largest buffer 1024 MiB), 64 KiB local memory, work-groups up to 256\n" +
			`        OpenCL 3.0\nfake line, driver 6.0\033[31m` + "\n" + tc.last
		if b.String() != want {
			t.Errorf("%s: wrote %q, want %q", tc.name, b.String(), want)
		}
	}
}
