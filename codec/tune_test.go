package codec

import (
	"fmt"
	"os"
	"testing"
	"time"
)

func TestTune(t *testing.T) {
	if os.Getenv("ARC_TUNE") == "" {
		t.Skip()
	}
	data, _ := os.ReadFile(os.Getenv("ARC_TUNE"))
	ps := []matchParams{
		{HashLog: 17, HashBytes: 5, Bucket: 16, Good: 128, Lazy: 1, SkipLog: 8, InsertStep: 1, FarMin: 8},
		{HashLog: 17, HashBytes: 5, Bucket: 8, Good: 64, Lazy: 1, SkipLog: 8, InsertStep: 1, FarMin: 8},
	}
	for _, bs := range []int{1 << 20, 4 << 20, 16 << 20} {
		for _, win := range []int{maxOffsetLZ4, MaxOffsetLZ4X} {
			for _, p := range ps {
				m := newMatcher(p)
				dst := make([]byte, bs)
				stored := 0
				t0 := time.Now()
				for off := 0; off < len(data); off += bs {
					src := data[off:min(off+bs, len(data))]
					n, maxOff := m.compress(dst, src, min(win, len(src)-1))
					if n < 0 {
						n = len(src)
					} else if maxOff <= maxOffsetLZ4 {
						n = lz4xToLZ4(dst[:n])
					}
					stored += n
				}
				fmt.Printf("bs %dK win %d %v: ratio %.4f %v\n", bs>>10, win, p, float64(len(data))/float64(stored), time.Since(t0))
			}
		}
		e, _ := NewEncoder(Options{"lz4", LevelDefault})
		stored := 0
		for off := 0; off < len(data); off += bs {
			_, s := e.Encode(data[off:min(off+bs, len(data))])
			stored += len(s)
		}
		fmt.Printf("bs %dK pierrec fast ratio %.4f\n", bs>>10, float64(len(data))/float64(stored))
	}
}
