package testtree

import (
	"testing"

	"golang.org/x/sys/unix"
)

// WithOpenFiles runs f with the process's soft limit on open files lowered
// to n, and puts the limit back when f returns or fails: how a test shows
// that code opens a bounded number of files however deep a tree goes. The
// limit is the whole process's: tests that use it must not run in
// parallel with others.
func WithOpenFiles(t testing.TB, n uint64, f func()) {
	t.Helper()
	var old unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &old); err != nil {
		t.Fatal(err)
	}
	low := old
	low.Cur = min(n, old.Max)
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &low); err != nil {
		t.Fatal(err)
	}
	defer unix.Setrlimit(unix.RLIMIT_NOFILE, &old)
	f()
}
