// Command readamp computes, from an archive's index alone, what copying
// directories out of it costs a reader: the bytes of distinct blocks that
// must be decoded per byte of file content ("read amplification"), and the
// extents and blocks involved. It is how docs/DEDUP.md compares dedup
// settings and stream orders without timing anything.
//
// Usage: readamp ARCHIVE.001 [PREFIX...]   (a PREFIX of "" is the whole tree)
//
// Output: one line per prefix.
package main

import (
	"bytes"
	"fmt"
	"os"

	"arc/format"
	"arc/reader"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: readamp ARCHIVE.001 [PREFIX...]")
		os.Exit(2)
	}
	a, err := reader.Open(os.Args[1], reader.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "readamp:", err)
		os.Exit(1)
	}
	defer a.Close()
	prefixes := os.Args[2:]
	if len(prefixes) == 0 {
		prefixes = []string{""}
	}
	x := a.Index()
	for _, prefix := range prefixes {
		blocks := map[uint32]bool{}
		var content, files, extents uint64
		_ = x.Walk(func(path []byte, d uint32) error {
			ino := x.Dirents.Inode[d]
			if !bytes.HasPrefix(path, []byte(prefix)) || x.Inodes.Mode[ino]&format.ModeType != format.ModeReg {
				return nil
			}
			files++
			content += x.Inodes.Size[ino]
			s, e := x.FileExtents(ino)
			for i := s; i < e; i++ {
				off, n := x.Extents.Off[i], x.Extents.Len[i]
				if off == format.Hole || n == 0 {
					continue
				}
				extents++
				for b := x.BlockAt(off); int(b) < x.Blocks.Count() && x.BlockRawOff[b] < off+n; b++ {
					blocks[b] = true
				}
			}
			return nil
		})
		var decoded uint64
		for b := range blocks {
			decoded += uint64(x.Blocks.RawSize[b])
		}
		amp := 0.0
		if content > 0 {
			amp = float64(decoded) / float64(content)
		}
		fmt.Printf("%-32q files %7d content %12d extents %8d blocks %6d amplification %.2f\n", prefix, files, content, extents, len(blocks), amp)
	}
}
