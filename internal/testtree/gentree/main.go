// Command gentree makes a test tree with package testtree, or compares two
// trees: the sample and benchmark scripts use it.
//
//	gentree [-seed N] [-files N] [-large SIZE] DIR
//	gentree -compare [-no-sparse] [-ignore-root] [-ignore-owner] [-dedup-links] SRC DST
//	gentree -record FILE DIR
//
// -record writes a snapshot of the tree DIR to FILE (Tree.MarshalText);
// -compare takes such a file for SRC as well as a tree.
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
		record  string
	)
	flag.Uint64Var(&opt.Seed, "seed", 1, "seed of the generated tree")
	flag.IntVar(&opt.Files, "files", 0, "ordinary files (0 = default)")
	flag.StringVar(&large, "large", "0", "size of one large file, e.g. 20M (0 = none)")
	flag.IntVar(&opt.MaxFileSize, "max-file-size", 0, "largest ordinary file in bytes (0 = default)")
	flag.IntVar(&opt.DupSize, "dup-size", 0, "size of the file copied for whole-file dedup in bytes (0 = default)")
	flag.BoolVar(&compare, "compare", false, "compare SRC (a tree, or a file written by -record) and DST instead of generating")
	flag.StringVar(&record, "record", "", "write a snapshot of the tree DIR to this file instead of generating")
	flag.BoolVar(&cmp.NoSparse, "no-sparse", false, "with -compare: do not check that holes stay holes")
	flag.BoolVar(&cmp.IgnoreRoot, "ignore-root", false, "with -compare: skip the top directories' own metadata")
	flag.BoolVar(&cmp.IgnoreOwner, "ignore-owner", false, "with -compare: skip uid/gid")
	flag.BoolVar(&cmp.DedupLinks, "dedup-links", false, "with -compare: allow identical files to be hardlinked in DST")
	flag.Parse()
	if compare {
		if flag.NArg() != 2 {
			fail("want SRC and DST")
		}
		src, err := tree(flag.Arg(0))
		if err != nil {
			fail(err.Error())
		}
		dst, err := testtree.Snapshot(flag.Arg(1))
		if err != nil {
			fail(err.Error())
		}
		if d := testtree.CompareTrees(src, dst, cmp); len(d) != 0 {
			fail(d.Error())
		}
		fmt.Printf("gentree: %s and %s are the same tree\n", flag.Arg(0), flag.Arg(1))
		return
	}
	if flag.NArg() != 1 {
		fail("want DIR")
	}
	if record != "" {
		t, err := testtree.Snapshot(flag.Arg(0))
		if err != nil {
			fail(err.Error())
		}
		text, err := t.MarshalText()
		if err == nil {
			err = os.WriteFile(record, text, 0o644)
		}
		if err != nil {
			fail(err.Error())
		}
		fmt.Printf("gentree: %s: %d entries recorded in %s\n", flag.Arg(0), len(t), record)
		return
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

// tree is the snapshot of the tree at p, or the one recorded in the file p.
func tree(p string) (testtree.Tree, error) {
	st, err := os.Stat(p)
	if err != nil {
		return nil, err
	}
	if st.IsDir() {
		return testtree.Snapshot(p)
	}
	text, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	t, err := testtree.ParseTree(text)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	return t, nil
}
