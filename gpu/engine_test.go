package gpu

import (
	"runtime"
	"slices"
	"sync/atomic"
	"testing"
	"time"
)

// withProcs runs the test with GOMAXPROCS at least n, so that parallel
// hands f to worker goroutines rather than running it on the caller's
// (which it does with one P).
func withProcs(t *testing.T, n int) {
	t.Helper()
	if old := runtime.GOMAXPROCS(0); old < n {
		runtime.GOMAXPROCS(n)
		t.Cleanup(func() { runtime.GOMAXPROCS(old) })
	}
}

// waitGoroutines waits until no more than n goroutines run, failing the
// test if some are still there after a few seconds (a worker left behind).
func waitGoroutines(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > n {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines left, want at most %d: a worker left behind", runtime.NumGoroutine(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// A panic in f on one of parallel's worker goroutines reaches the caller,
// where a recover can take it (device.run's), instead of
// ending the process; the caller resumes only once every worker has
// stopped, the others take no more indices, and parallel works again
// afterwards.
func TestParallelRaisesAWorkersPanicInTheCaller(t *testing.T) {
	withProcs(t, 4)
	before := runtime.NumGoroutine()
	const n = 10000
	var running, calls atomic.Int64
	caller := func() (r any) {
		defer func() { r = recover() }()
		parallel(n, func(i int) {
			if i == 3 {
				panic("hostile bytes")
			}
			running.Add(1)
			defer running.Add(-1)
			calls.Add(1)
			time.Sleep(100 * time.Microsecond)
		})
		return nil
	}
	if r := caller(); r != "hostile bytes" {
		t.Fatalf("the caller recovered %v, want the worker's panic", r)
	}
	if k := running.Load(); k != 0 {
		t.Fatalf("parallel raised the panic while %d workers still ran f", k)
	}
	// Only the calls begun before the panic stopped them are made.
	if k := calls.Load(); k > n/2 {
		t.Errorf("the workers went on after the panic: %d of %d calls", k, n)
	}
	waitGoroutines(t, before)

	var done [100]atomic.Int32
	parallel(len(done), func(i int) { done[i].Add(1) })
	for i := range done {
		if k := done[i].Load(); k != 1 {
			t.Fatalf("after a panic, parallel ran f(%d) %d times", i, k)
		}
	}
}

// split cuts a batch into one run per device, of about equal weight (an
// item weighs its bytes and one more, so empty inputs count too), in
// order; devices beyond the items get empty runs.
func TestSplitCutsABatchIntoRunsOfAboutEqualWeight(t *testing.T) {
	for _, tc := range []struct {
		name    string
		weights []int
		n       int
		want    []int
	}{
		{"one device takes all", []int{5, 9, 1}, 1, []int{0, 3}},
		{"equal items, two devices", []int{8, 8, 8, 8}, 2, []int{0, 2, 4}},
		{"equal items, three devices", []int{8, 8, 8, 8, 8, 8}, 3, []int{0, 2, 4, 6}},
		{"a heavy first item is a run of its own", []int{100, 1, 1, 1, 1}, 2, []int{0, 1, 5}},
		{"empty items weigh too", []int{0, 0, 0, 0}, 2, []int{0, 2, 4}},
		{"more devices than items", []int{7}, 3, []int{0, 1, 1, 1}},
		{"no items", nil, 2, []int{0, 0, 0}},
	} {
		got := split(tc.weights, tc.n, func(w int) int { return w })
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: split(%v, %d) = %v, want %v", tc.name, tc.weights, tc.n, got, tc.want)
		}
	}
}
