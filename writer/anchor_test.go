package writer

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"arc/internal/testtree"
)

// openFiles is how many descriptors the process has open.
func openFiles(t *testing.T) int {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(fds)
}

// longPrefix makes under dir a chain of directories whose path passes
// anchorPath bytes, and returns its bottom.
func longPrefix(t *testing.T, dir string) string {
	t.Helper()
	for len(dir) <= anchorPath {
		dir = filepath.Join(dir, strings.Repeat("p", 200))
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// barrier holds the first n callers of wait until all n are there (or
// a while has passed, which it says).
type barrier struct {
	mu      sync.Mutex
	n       int
	open    chan struct{}
	timeout bool
}

func newBarrier(n int) *barrier { return &barrier{n: n, open: make(chan struct{})} }

func (b *barrier) wait() {
	b.mu.Lock()
	if b.n > 0 {
		b.n--
		if b.n == 0 {
			close(b.open)
		}
	}
	b.mu.Unlock()
	select {
	case <-b.open:
	case <-time.After(10 * time.Second):
		b.mu.Lock()
		b.timeout = true
		b.mu.Unlock()
	}
}

// The anchors held at once are at most maxAnchors, as RELIABILITY.md
// says, however many directories the scan's goroutines read at the same
// time: two wide directories deep down, read together (each has 256
// subdirectories), keep no more than maxAnchors descriptors between them.
func TestAnchorsStayBoundedWhenDirectoriesAreReadTogether(t *testing.T) {
	src := t.TempDir()
	w := filepath.Join(longPrefix(t, src), "w")
	const wide, width = 4, 256
	for i := range wide {
		for j := range width {
			if err := os.MkdirAll(filepath.Join(w, fmt.Sprint("w", i), fmt.Sprintf("s%03d", j)), 0o755); err != nil {
				t.Fatal(err)
			}
		}
	}
	before := openFiles(t)
	listed, first := newBarrier(2), newBarrier(2)
	var mu sync.Mutex
	seen := map[string]bool{} // the wide directories one of whose subdirectories came
	most := 0
	o := small()
	o.dirHook = func(path string) {
		rel, ok := strings.CutPrefix(path, w+"/")
		if !ok {
			return
		}
		wi, _, deeper := strings.Cut(rel, "/")
		if !deeper {
			listed.wait() // two wide directories read at once
			return
		}
		mu.Lock()
		again := seen[wi]
		seen[wi] = true
		mu.Unlock()
		if !again {
			first.wait() // both readings done
		}
		n := openFiles(t)
		mu.Lock()
		most = max(most, n)
		mu.Unlock()
	}
	res, err := Create(context.Background(), filepath.Join(t.TempDir(), "wide"), []string{src}, o)
	if err != nil {
		t.Fatal(err)
	}
	if listed.timeout || first.timeout {
		t.Fatal("the wide directories were not read at the same time")
	}
	if res.Skipped != 0 || res.Dirs != int64(wide*width+wide)+int64(strings.Count(w, "/")-strings.Count(src, "/")) {
		t.Errorf("%d dirs packed, %d skipped", res.Dirs, res.Skipped)
	}
	if held := most - before; held > maxAnchors+16 {
		t.Errorf("%d descriptors open at once during the scan, beyond the %d before it; want at most %d anchors and a few more", most, before, maxAnchors)
	}
}

// A source that fails after an earlier one's scan has gone onto its
// goroutines (here, one that is not there) ends the scan with no
// goroutine still at work and no anchor left open: the caller's
// cancelling ctx once Create has returned (a deferred cancel) must not
// leave the anchors of a wide directory deep down open for good. The
// scan of source a has gone down to that directory on a goroutine before
// the scan of source b, on Create's own, is let through.
func TestScanEndingOnALaterSourceLeavesNoAnchorOpen(t *testing.T) {
	src := t.TempDir()
	a, b := filepath.Join(src, "a"), filepath.Join(src, "b")
	w := filepath.Join(longPrefix(t, a), "w")
	for j := range 8 {
		if err := os.MkdirAll(filepath.Join(w, fmt.Sprint(j)), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(b, 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	atW := make(chan struct{})
	o := small()
	o.dirHook = func(path string) {
		switch path {
		case b:
			select {
			case <-atW:
			case <-time.After(10 * time.Second):
				t.Error("the scan of a never reached its wide directory")
			}
		case w:
			close(atW)
			select { // until Create has returned, or a while
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}
	before := openFiles(t)
	_, err := Create(ctx, filepath.Join(t.TempDir(), "out"), []string{a, b, filepath.Join(src, "missing")}, o)
	if err == nil || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("Create: %v; want the missing source's error", err)
	}
	cancel()
	n := 0
	for range 30 {
		if n = openFiles(t); n <= before {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Errorf("%d descriptors open 3 s after Create returned, %d before it", n, before)
}

// The anchors leave room for the rest of the scan under a low limit on
// open files: a directory deep down with 200 subdirectories, each with
// a file, is packed whole under a limit of 64 open files, as it was
// before anchors (TestDeepTreeIsScannedWithFewDescriptors, in depth).
func TestAnchorsLeaveRoomUnderALowLimit(t *testing.T) {
	src := t.TempDir()
	w := filepath.Join(longPrefix(t, src), "w")
	const wide, width = 4, 200
	for j := range wide * width {
		d := filepath.Join(w, fmt.Sprint(j%wide), fmt.Sprintf("s%03d", j), "d")
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "f"), []byte(d), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// The directories left out depend on the goroutines' timing: a few
	// tries, stopped at the first to leave any out.
	for try := range 5 {
		var warnings []string
		var mu sync.Mutex
		o := small()
		o.Warn = func(err error) {
			mu.Lock()
			warnings = append(warnings, err.Error())
			mu.Unlock()
		}
		var res *Result
		var err error
		testtree.WithOpenFiles(t, 64, func() {
			res, err = Create(context.Background(), filepath.Join(t.TempDir(), "wide"), []string{src}, o)
		})
		if err != nil {
			t.Fatal(err)
		}
		if res.Skipped != 0 || res.Files != wide*width || len(warnings) > 0 {
			first := ""
			if len(warnings) > 0 {
				first = warnings[0][max(0, len(warnings[0])-120):]
			}
			t.Fatalf("try %d: %d files packed, %d skipped, %d warnings (the first ends %q); want %d, 0, none", try, res.Files, res.Skipped, len(warnings), first, wide*width)
		}
	}
}
