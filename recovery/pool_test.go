package recovery

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// A volumeFiles holds no more files open than its budget, even with more
// readers than that reading at once (each waits for a file given back),
// and every byte read is the file's.
func TestVolumeFilesHoldNoMoreThanTheirBudget(t *testing.T) {
	dir := t.TempDir()
	var paths []string
	var contents [][]byte
	for i := range 20 {
		b := make([]byte, 4096)
		for j := range b {
			b[j] = byte(i*31 + j)
		}
		p := filepath.Join(dir, fmt.Sprintf("v%02d", i))
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		paths, contents = append(paths, p), append(contents, b)
	}
	for _, budget := range []int{1, 3} {
		v := newVolumeFiles(paths, budget)
		var wg sync.WaitGroup
		var mu sync.Mutex
		most := 0
		for w := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := rand.New(rand.NewPCG(uint64(w), 1))
				buf := make([]byte, 100)
				for range 2000 {
					i, off := r.IntN(len(paths)), int64(r.IntN(4096-100+1))
					if _, err := v.ReadAt(i, buf, off); err != nil {
						t.Error(err)
						return
					}
					if !bytes.Equal(buf, contents[i][off:off+100]) {
						t.Errorf("volume %d at %d: wrong bytes", i, off)
						return
					}
					v.mu.Lock()
					n := len(v.open)
					v.mu.Unlock()
					mu.Lock()
					most = max(most, n)
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		v.Close()
		if most > budget {
			t.Errorf("budget %d: %d files open at once", budget, most)
		}
	}
}
