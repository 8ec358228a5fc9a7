//go:build noopencl

package gpu

import (
	"errors"
	"strings"
	"testing"

	"github.com/zeebo/blake3"
)

func TestBuiltWithoutOpenCLRunsOnTheCPU(t *testing.T) {
	if _, err := ListDevices(); !errors.Is(err, ErrNoOpenCL) {
		t.Fatalf("ListDevices: %v, want ErrNoOpenCL", err)
	}
	if _, err := New(Options{Mode: ModeOn}); !errors.Is(err, ErrNoDevice) || !strings.Contains(err.Error(), "built without OpenCL") {
		t.Fatalf("--gpu=on: %v", err)
	}
	e, err := New(Options{Mode: ModeAuto})
	if err != nil || e.OnDevice() || !strings.Contains(e.Describe(), "built without OpenCL") {
		t.Fatalf("auto: %v %q", err, e.Describe())
	}
	got, err := e.Hasher().HashBatch([][]byte{[]byte("x")})
	if err != nil || got[0] != blake3.Sum256([]byte("x")) {
		t.Fatal("CPU hash wrong")
	}
}
