//go:build amd64 && gc && !noasm

package codec

import "errors"

// hasAVX2 selects the assembly decoder's AVX2 loops, and hasPrefetchW the
// variant of them that prefetches for ownership.
var (
	hasAVX2      = cpuHasAVX2()
	hasPrefetchW = cpuHasPrefetchW()
)

//go:noescape
func cpuHasAVX2() bool

//go:noescape
func cpuHasPrefetchW() bool

// decodeLZ4XAsm is lz4x_amd64.s: it returns the bytes written to dst, or a
// negative number when src is not a valid block that fits in dst. dict is
// always empty here (blocks are independent).
//
//go:noescape
func decodeLZ4XAsm(dst, src, dict []byte) int

var errAsm = errors.New("invalid sequence")

// decodeLZ4X decodes with the assembly decoder; see decodeLZ4XGo for the
// contract, which both keep (the fuzz target compares them).
func decodeLZ4X(dst, src []byte) error {
	if len(src) == 0 {
		return errTruncated
	}
	if len(dst) == 0 {
		// The assembly's shortcut bound, &dst[0]+len(dst)-32, wraps for a
		// nil dst and lets it store 16 bytes at address 0.
		return decodeLZ4XGo(dst, src)
	}
	n := decodeLZ4XAsm(dst, src, nil)
	switch {
	case n < 0:
		return errAsm
	case n != len(dst):
		return errShort
	}
	return nil
}
