package main

import (
	"bytes"
	"errors"
	"testing"
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
