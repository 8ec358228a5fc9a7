//go:build !noopencl

package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"arc/gpu"
)

// anyDevice is the first OpenCL device of any type (PoCL in CI); the test
// skips where there is none.
func anyDevice(t *testing.T) string {
	infos, err := gpu.ListDevices()
	if err != nil || len(infos) == 0 {
		// Unless clinfo (the OpenCL ICD's own tool) lists one: then
		// ListDevices is what failed.
		if out, cerr := exec.Command("clinfo", "-l").Output(); cerr == nil && strings.Contains(string(out), "Device #") {
			t.Fatalf("no OpenCL device (%v); but clinfo lists one:\n%s", err, out)
		}
		t.Skipf("no OpenCL device (%v): install pocl-opencl-icd", err)
	}
	return infos[0].ID
}

// words returns n bytes of text drawn from a small vocabulary: it
// compresses about 3:1 and has no long repeats for dedup to take.
func words(n int, seed uint64) []byte {
	vocab := strings.Fields("block frame volume index the of arc func return err != nil { } ( ) := if for range")
	x := seed*0x9E3779B97F4A7C15 + 1
	var b []byte
	for len(b) < n {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		b = append(b, vocab[x%uint64(len(vocab))]...)
		b = append(b, " \n\t"[x>>62%3])
	}
	return b[:n]
}

func TestGPUFlagsRoundTripBothWays(t *testing.T) {
	dev := anyDevice(t)
	src := t.TempDir()
	files := map[string][]byte{
		"a.txt":     words(600000, 1),
		"sub/b.txt": words(200000, 2),
		"c.bin":     []byte("short"),
	}
	for name, b := range files {
		p := filepath.Join(src, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	on := []string{"--gpu=on", "--gpu-device", dev}
	off := []string{"--gpu=off"}
	for _, c := range []struct {
		name           string
		create, reader []string
	}{
		{"made on the device, read on the CPU", on, off},
		{"made on the CPU, read on the device", off, on},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			out := filepath.Join(dir, "a")
			args := append([]string{"create", src, "-o", out, "--block-size", "64K", "--progress", "never"}, c.create...)
			if code := run(args); code != exitOK {
				t.Fatalf("%v: exit %d", args, code)
			}
			args = append([]string{"verify", out + ".001", "--progress", "never"}, c.reader...)
			if code := run(args); code != exitOK {
				t.Fatalf("%v: exit %d", args, code)
			}
			dest := filepath.Join(dir, "x")
			args = append([]string{"extract", out + ".001", "-o", dest, "--progress", "never"}, c.reader...)
			if code := run(args); code != exitOK {
				t.Fatalf("%v: exit %d", args, code)
			}
			for name, want := range files {
				got, err := os.ReadFile(filepath.Join(dest, name))
				if err != nil || !bytes.Equal(got, want) {
					t.Fatalf("%s: %d bytes back, want %d (%v)", name, len(got), len(want), err)
				}
			}
		})
	}
}

func TestGPUFlagMistakesAreUsageErrors(t *testing.T) {
	src := t.TempDir()
	out := filepath.Join(t.TempDir(), "a")
	for _, args := range [][]string{
		{"create", src, "-o", out, "--gpu=maybe"},
		{"create", src, "-o", out, "--gpu=off", "--gpu-device", "0:0"},
		{"verify", out + ".001", "--gpu=sometimes"},
		{"verify", out + ".001", "--gpu="},
		{"create", src, "-o", out, "--gpu-device", "99:99"},
	} {
		if code := run(args); code != exitFatal {
			t.Errorf("%s: exit %d, want %d", strings.Join(args, " "), code, exitFatal)
		}
		if _, err := os.Stat(out + ".001"); err == nil {
			t.Fatalf("%s left an archive behind", strings.Join(args, " "))
		}
	}
}

// --gpu=on with blocks larger than the device's transfer buffer says that
// their compression stays on the CPU, and the archive is made there.
func TestGPUCreateSaysBlocksTooLargeForTheDeviceStayOnTheCPU(t *testing.T) {
	dev := anyDevice(t)
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "a.txt"), words(100000, 3), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "a")
	_, stderr, code := arcpack(t, "create", src, "-o", out, "--block-size", "128M", "--frame-size", "128M",
		"--progress", "never", "--gpu=on", "--gpu-device", dev)
	if code != exitOK || !strings.Contains(stderr, "compression of --block-size 128M stays on the CPU (the device takes blocks up to 64M)") {
		t.Errorf("exit %d, stderr %q; want exit 0 and the note", code, stderr)
	}
}
