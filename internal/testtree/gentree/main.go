// Command gentree makes a test tree with package testtree, or compares two
// trees: the sample and benchmark scripts use it.
//
//	gentree [-seed N] [-files N] [-large SIZE] DIR
//	gentree -compare [-no-sparse] [-ignore-root] [-ignore-owner] [-dedup-links] SRC DST
package main

import (
	"flag"
	"fmt"
	"os"

	"arc/internal/bytesize"
	"arc/internal/testtree"
)

func main() {
	var (
		opt     testtree.Options
		cmp     testtree.CompareOptions
		large   string
		compare bool
	)
	flag.Uint64Var(&opt.Seed, "seed", 1, "seed of the generated tree")
	flag.IntVar(&opt.Files, "files", 0, "ordinary files (0 = default)")
	flag.StringVar(&large, "large", "0", "size of one large file, e.g. 20M (0 = none)")
	flag.BoolVar(&compare, "compare", false, "compare SRC and DST instead of generating")
	flag.BoolVar(&cmp.NoSparse, "no-sparse", false, "with -compare: do not check that holes stay holes")
	flag.BoolVar(&cmp.IgnoreRoot, "ignore-root", false, "with -compare: skip the top directories' own metadata")
	flag.BoolVar(&cmp.IgnoreOwner, "ignore-owner", false, "with -compare: skip uid/gid")
	flag.BoolVar(&cmp.DedupLinks, "dedup-links", false, "with -compare: allow identical files to be hardlinked in DST")
	flag.Parse()
	if compare {
		if flag.NArg() != 2 {
			fail("want SRC and DST")
		}
		if d := testtree.Compare(flag.Arg(0), flag.Arg(1), cmp); len(d) != 0 {
			fail(d.Error())
		}
		fmt.Printf("gentree: %s and %s are the same tree\n", flag.Arg(0), flag.Arg(1))
		return
	}
	if flag.NArg() != 1 {
		fail("want DIR")
	}
	n, err := bytesize.Parse(large)
	if err != nil {
		fail(err.Error())
	}
	opt.LargeSize = n
	rep, err := testtree.Generate(flag.Arg(0), opt)
	if err != nil {
		fail(err.Error())
	}
	fmt.Printf("gentree: %s: %d files, %d bytes\n", flag.Arg(0), rep.Files, rep.Bytes)
	for _, s := range rep.Skipped {
		fmt.Printf("gentree: left out: %s\n", s)
	}
}

func fail(msg string) {
	fmt.Fprintln(os.Stderr, "gentree: "+msg)
	os.Exit(1)
}
