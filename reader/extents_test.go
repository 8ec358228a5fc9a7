package reader

import (
	"bytes"
	"fmt"
	"io"
	"testing"

	"arc/format"
)

// fragmented returns a file made as segment deduplication makes them:
// short repeats of an earlier file's bytes, from blocks all over it and
// across block ends, with a piece of new data and a hole among them; and
// the earlier file.
// spread: each repeat from another block than the one before (else they
// alternate between two neighbouring blocks, moving on every 64).
func fragmented(blockSize, blocks, repeats int, spread bool) (base, mix entry, want []byte) {
	baseData := randBytes(blockSize*blocks, 7)
	var segs []seg
	for i := range repeats {
		b := (i/64 + i%2) % blocks
		if spread {
			b = i * 5 % blocks
		}
		n := 97 + i*53%500
		at := min(b*blockSize+i*131%blockSize, len(baseData)-n) // some across a block's end
		segs = append(segs, seg{repeatAt: uint64(at), repeatLen: uint64(n)})
		want = append(want, baseData[at:at+n]...)
		switch i {
		case repeats / 3:
			fresh := randBytes(777, 9)
			segs = append(segs, seg{data: fresh})
			want = append(want, fresh...)
		case 2 * repeats / 3:
			segs = append(segs, seg{hole: 5000})
			want = append(want, make([]byte, 5000)...)
		}
	}
	mix = reg("mix", nil)
	mix.segs = segs
	return reg("base", baseData), mix, want
}

// A file of many short extents spread over more blocks than one read
// keeps hold of reads back byte for byte, whatever the read size and
// however small the cache (blocks held by a read outlive their eviction).
func TestAFileOfManyShortExtentsReadsBackWhole(t *testing.T) {
	const blockSize, blocks = 4096, 8
	for _, spread := range []bool{false, true} {
		base, mix, want := fragmented(blockSize, blocks, 300, spread)
		ar := buildArchive(t, t.TempDir(), "arc", []entry{base, mix}, buildOpts{blockSize: blockSize, frameBlocks: 2})
		for _, cacheSize := range []int64{2 * blockSize, 64 * blockSize} {
			for _, readSize := range []int{len(want), 1000, blockSize + 1, 128 << 10} {
				t.Run(fmt.Sprintf("spread %v cache %d read %d", spread, cacheSize, readSize), func(t *testing.T) {
					a := openBuiltWith(t, ar, Options{CacheSize: cacheSize})
					ino := inodeOf(t, a, "mix")
					got := make([]byte, 0, len(want))
					p := make([]byte, readSize)
					for off := int64(0); ; off += int64(readSize) {
						n, err := a.ReadAt(ino, p, off)
						got = append(got, p[:n]...)
						if err == io.EOF {
							break
						}
						if err != nil {
							t.Fatalf("ReadAt at %d: %v", off, err)
						}
					}
					if !bytes.Equal(got, want) {
						t.Fatalf("read %d bytes, want %d; first difference at %d", len(got), len(want), firstDiff(got, want))
					}
					noneLent(t, a)
				})
			}
		}
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// The sequence tracker hears of every change of block a read goes
// through, whether the block was held already or not: read-ahead measures
// the distance between a run's blocks in such changes (runGap).
func TestAReadTellsTheTrackerOfEveryChangeOfBlock(t *testing.T) {
	const blockSize, blocks = 4096, 8
	for _, spread := range []bool{false, true} {
		t.Run(fmt.Sprintf("spread %v", spread), func(t *testing.T) {
			base, mix, want := fragmented(blockSize, blocks, 300, spread)
			ar := buildArchive(t, t.TempDir(), "arc", []entry{base, mix}, buildOpts{blockSize: blockSize, frameBlocks: 2})
			a := openBuiltWith(t, ar, Options{CacheSize: 64 * blockSize, Prefetch: -1})
			ino := inodeOf(t, a, "mix")
			x := a.Index()
			changes, last, any := uint64(0), uint32(0), false
			s, e := x.FileExtents(ino)
			for i := s; i < e; i++ {
				o, n := x.Extents.Off[i], x.Extents.Len[i]
				if o == format.Hole {
					continue
				}
				for b := x.BlockAt(o); b <= x.BlockAt(o+n-1); b++ {
					if !any || b != last {
						changes++
					}
					last, any = b, true
				}
			}
			before := a.seq.count
			p := make([]byte, len(want))
			if n, err := a.ReadAt(ino, p, 0); n != len(want) || err != nil {
				t.Fatalf("ReadAt: %d bytes, %v", n, err)
			}
			if got := a.seq.count - before; got != changes {
				t.Errorf("the tracker heard of %d changes of block, the read made %d", got, changes)
			}
		})
	}
}

// A read keeps at most heldMax blocks and heldMaxBytes of them, or its
// newest block alone where that is larger: large blocks are let go one by
// one, as before.
func TestAReadHoldsAtMostItsBoundOfBlocks(t *testing.T) {
	for _, tc := range []struct {
		blockSize int
		want      int // blocks held after going through six
	}{
		{4096, heldMax},
		{heldMaxBytes / 2, 2},
		{heldMaxBytes, 1},
	} {
		t.Run(fmt.Sprint(tc.blockSize), func(t *testing.T) {
			ar := buildArchive(t, t.TempDir(), "arc", []entry{reg("f", randBytes(6*tc.blockSize, 3))}, buildOpts{blockSize: tc.blockSize, frameBlocks: 2})
			a := openBuiltWith(t, ar, Options{CacheSize: 64 << 20})
			var held heldBlocks
			for b := range uint32(6) {
				buf, err := a.hold(&held, b)
				if err != nil {
					t.Fatal(err)
				}
				if again, _ := a.hold(&held, b); again != buf {
					t.Fatalf("block %d held, but asked again it came back another", b)
				}
			}
			if held.n != tc.want || held.keys[held.n-1] != 5 {
				t.Errorf("holding %d blocks, the newest %d; want %d, the newest 5", held.n, held.keys[held.n-1], tc.want)
			}
			if held.n > 1 && held.bytes > heldMaxBytes {
				t.Errorf("holding %d bytes in %d blocks, more than %d", held.bytes, held.n, heldMaxBytes)
			}
			held.release()
			if held.n != 0 || held.bytes != 0 {
				t.Errorf("after release: %d blocks, %d bytes held", held.n, held.bytes)
			}
			noneLent(t, a)
		})
	}
}
