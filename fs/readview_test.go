package fs

import (
	"bytes"
	"errors"
	"testing"

	"arc/internal/slab"
)

// pieceViewer serves a file as the pieces given, each viewed where it
// lies (in a slice of a "decoded block"); it counts the pins it hands out
// and those released.
type pieceViewer struct {
	pieces [][]byte
	fail   int // the piece whose View fails; -1: none
	hole   int // the piece that is a hole (a copy is needed); -1: none
	pinned int
}

func (v *pieceViewer) View(ino uint32, off int64, max int) ([]byte, func(), error) {
	for i, p := range v.pieces {
		if off >= int64(len(p)) {
			off -= int64(len(p))
			continue
		}
		if i == v.fail {
			return nil, nil, errors.New("damaged block")
		}
		if i == v.hole {
			return nil, nil, nil
		}
		v.pinned++
		d := p[off:]
		return d[:min(len(d), max)], func() { v.pinned-- }, nil
	}
	return nil, nil, errors.New("past the end")
}

func TestReadIsViewedFromTheBlocksItLiesIn(t *testing.T) {
	block := bytes.Repeat([]byte("0123456789abcdef"), 64) // 1 KiB "decoded block"
	other := bytes.Repeat([]byte("ZYXW"), 64)
	many := make([][]byte, maxViews+1)
	for i := range many {
		many[i] = other[i%2*2 : i%2*2+1] // bytes 0 and 2 by turns: never next to each other
	}
	tests := []struct {
		name    string
		pieces  [][]byte
		fail    int
		hole    int
		off     int64
		want    int
		vectors int // 0: not viewed (copied instead)
	}{
		{"one piece", [][]byte{block}, -1, -1, 10, 100, 1},
		{"pieces next to each other in one block make one vector", [][]byte{block[:100], block[100:300], block[300:]}, -1, -1, 50, 500, 1},
		{"pieces of two blocks", [][]byte{block[:100], other, block[100:]}, -1, -1, 0, 1000, 3},
		{"a hole is copied", [][]byte{block[:100], make([]byte, 50), block[100:]}, -1, 1, 0, 300, 0},
		{"damage is copied (and reported by the copy)", [][]byte{block[:100], block[200:]}, 1, -1, 0, 300, 0},
		{"too many vectors for one writev are copied", many, -1, -1, 0, len(many), 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := &pieceViewer{pieces: tc.pieces, fail: tc.fail, hole: tc.hole}
			r := viewRead(v, 1, tc.off, tc.want)
			if tc.vectors == 0 {
				if r != nil {
					t.Fatalf("viewed in %d vectors, want a copy", len(r.views))
				}
				if v.pinned != 0 {
					t.Errorf("%d pins left after falling back to a copy", v.pinned)
				}
				return
			}
			if r == nil {
				t.Fatal("not viewed")
			}
			vecs, _ := r.Slices()
			if len(vecs) != tc.vectors {
				t.Errorf("%d vectors, want %d", len(vecs), tc.vectors)
			}
			var whole []byte
			for _, p := range tc.pieces {
				whole = append(whole, p...)
			}
			got, _ := r.Bytes(nil)
			if r.Size() != tc.want || !bytes.Equal(got, whole[tc.off:tc.off+int64(tc.want)]) {
				t.Errorf("reply of %d bytes differs from the file's [%d, %d)", r.Size(), tc.off, tc.off+int64(tc.want))
			}
			if v.pinned == 0 {
				t.Error("the blocks are not pinned while the reply waits to be written")
			}
			r.Done()
			r.Done() // go-fuse calls it once; twice must not unpin twice
			if v.pinned != 0 {
				t.Errorf("%d pins left after Done", v.pinned)
			}
		})
	}
}

func TestCopiedReadGivesItsBufferBackOnceWritten(t *testing.T) {
	pool := slab.New(maxIO)
	defer pool.Close()
	buf := pool.Get()[:100]
	r := &bufResult{buf, pool}
	// Vectored, so that go-fuse keeps it until the reply is written
	// instead of calling Done as soon as it took the bytes.
	if vecs, _ := r.Slices(); len(vecs) != 1 || len(vecs[0]) != 100 {
		t.Fatalf("Slices gave %d vectors", len(vecs))
	}
	if pool.Outstanding() != 1 {
		t.Fatalf("%d buffers out before Done, want 1", pool.Outstanding())
	}
	r.Done()
	r.Done()
	if pool.Outstanding() != 0 {
		t.Errorf("%d buffers out after Done, want 0", pool.Outstanding())
	}
}
