package writer

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"arc/format"
)

// A block whose submit fails before it is queued (pipeline failed or context
// done) goes back to the raw pool: otherwise shutdown's Close, which unmaps
// only when every buffer is back, would leave the slabs mapped for good.
func TestFailedSubmitGivesItsBufferBack(t *testing.T) {
	o := small()
	if err := o.normalize(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	// submit's first select picks at random between queueing the block
	// and the done context: many pipelines, so that some block fails
	// before it is queued.
	for round := 0; round < 20; round++ {
		vw, err := newVolumeWriter(filepath.Join(t.TempDir(), "a"), 0)
		if err != nil {
			t.Fatal(err)
		}
		bw := newBlockPipeline(ctx, &o, vw)
		// As streamer.cut does: hand full blocks on until submit fails,
		// then stop (run's error path puts back only st.buf, which cut
		// cleared).
		failed := 0
		for i := 0; i < 50 && failed == 0; i++ {
			if bw.submit(bw.rawBufs.Get()[:o.BlockSize]) != nil {
				failed++
			}
		}
		bw.abort()
		vw.abort()
		if failed == 0 {
			t.Fatal("no submit failed on a cancelled pipeline")
		}
		if out := bw.rawBufs.Outstanding(); out != 0 {
			t.Fatalf("round %d: %d raw buffers still out after abort", round, out)
		}
	}
}

func threads() int {
	b, _ := os.ReadFile("/proc/self/status")
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "Threads:") {
			n, _ := strconv.Atoi(strings.TrimSpace(l[8:]))
			return n
		}
	}
	return 0
}

// Full volumes are synced in the background, but only a few at once: with
// the smallest volumes, a create must not pile up goroutines (each an OS
// thread blocked in fsync, with its descriptor open).
func TestBackgroundVolumeSyncsAreBounded(t *testing.T) {
	src := t.TempDir()
	files := map[string][]byte{}
	for i := 0; i < 8; i++ { // about 2,000 volumes
		files["f"+strconv.Itoa(i)] = randBytes(int64(i), 1<<20)
	}
	writeTree(t, src, files)
	o := small()
	o.VolumeSize = format.MinVolumeSize
	o.ChunkSize = -1
	var peakG, peakT atomic.Int64
	stop := make(chan struct{})
	go func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			if g := int64(runtime.NumGoroutine()); g > peakG.Load() {
				peakG.Store(g)
			}
			if th := int64(threads()); th > peakT.Load() {
				peakT.Store(th)
			}
			time.Sleep(200 * time.Microsecond)
		}
	}()
	dir := t.TempDir()
	res, err := Create(context.Background(), filepath.Join(dir, "a"), []string{src}, o)
	close(stop)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d volumes; peak goroutines %d, peak OS threads %d", len(res.Volumes), peakG.Load(), peakT.Load())
	if peakG.Load() > 30 {
		t.Errorf("peak goroutines %d, OS threads %d: background syncs are not bounded", peakG.Load(), peakT.Load())
	}
}
