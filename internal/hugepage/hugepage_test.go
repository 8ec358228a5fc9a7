package hugepage

import (
	"bufio"
	"fmt"
	"os"
	"strings"
	"testing"
	"unsafe"
)

// hugeKiBAt returns the AnonHugePages of the mapping of this process that
// holds address p (/proc/self/smaps).
func hugeKiBAt(t *testing.T, p uintptr) int {
	t.Helper()
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Skip(err)
	}
	defer f.Close()
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		var lo, hi uintptr
		if n, _ := fmt.Sscanf(line, "%x-%x", &lo, &hi); n == 2 && strings.Contains(line, " ") {
			in = lo <= p && p < hi
			continue
		}
		var kib int
		if in && strings.HasPrefix(line, "AnonHugePages:") {
			fmt.Sscanf(strings.TrimPrefix(line, "AnonHugePages:"), "%d", &kib)
			return kib
		}
	}
	t.Fatalf("no mapping holds %#x", p)
	return 0
}

func TestAMadeBufferIsBackedByHugePages(t *testing.T) {
	mode, err := os.ReadFile("/sys/kernel/mm/transparent_hugepage/enabled")
	if err != nil || strings.Contains(string(mode), "[never]") {
		t.Skipf("transparent huge pages are off here (%q)", mode)
	}
	fallbacks := thpFallbacks(t)
	b := Make[byte](16 << 20)
	for i := 0; i < len(b); i += 4096 {
		b[i] = 1
	}
	// At least the 2 MiB page in the middle, which the advice covers
	// wherever the buffer starts.
	if kib := hugeKiBAt(t, uintptr(unsafe.Pointer(&b[len(b)/2]))); kib < Size>>10 {
		if thpFallbacks(t) > fallbacks {
			t.Skip("the kernel had no huge page to give (thp_fault_fallback rose): memory is fragmented")
		}
		t.Fatalf("%d KiB of huge pages under a touched 16 MiB buffer; want at least %d", kib, Size>>10)
	}
}

// thpFallbacks is /proc/vmstat's thp_fault_fallback: faults that asked for
// a huge page and got small ones.
func thpFallbacks(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile("/proc/vmstat")
	if err != nil {
		t.Skip(err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		var n int
		if _, err := fmt.Sscanf(line, "thp_fault_fallback %d", &n); err == nil {
			return n
		}
	}
	return 0
}

func TestMakeGivesZeroValuesAndAdviceTakesAnyBuffer(t *testing.T) {
	for _, n := range []int{0, 1, 4095, Size - 1, Size, 3*Size + 5} {
		s := Make[uint64](n)
		if len(s) != n {
			t.Fatalf("Make(%d): %d values", n, len(s))
		}
		for i, v := range s {
			if v != 0 {
				t.Fatalf("Make(%d)[%d] = %d", n, i, v)
			}
		}
		b := make([]byte, n)
		for _, off := range []int{0, 1, 4096} {
			if off <= n {
				advise(b[off:]) // never fails, never touches
			}
		}
	}
}
