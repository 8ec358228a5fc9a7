package writer

import (
	"bytes"
	"fmt"
	"slices"
	"testing"

	"golang.org/x/sys/unix"
)

func TestNodePathJoinsTheNamesBelowTheNearestKeptPath(t *testing.T) {
	for _, c := range []struct{ top, want string }{
		{"/src", "/src/a/b/c"},
		{"/src/", "/src/a/b/c"},
		{"/", "/a/b/c"},
		{"src", "src/a/b/c"},
		{"", "a/b/c"}, // a tar stream's root: members keep relative paths
	} {
		nodes := newNodeList(
			node{path: c.top, parent: -1},
			node{name: []byte("a"), parent: 0},
			node{name: []byte("b"), parent: 1},
			node{name: []byte("c"), parent: 2},
		)
		if got := nodePath(nodes, nodes.at(3)); got != c.want {
			t.Errorf("below %q: %q, want %q", c.top, got, c.want)
		}
		nodes.at(2).path = "/kept/b"
		if got, want := nodePath(nodes, nodes.at(3)), "/kept/b/c"; got != want {
			t.Errorf("below %q, kept on the way: %q, want %q", c.top, got, want)
		}
	}
}

// A file deep down is opened in its directory, held open, reached from a
// directory held near it (a level or a few up or down) rather than from
// the top: however the reads go through the tree, the directories opened
// grow with its depth, not with the depth times the files.
func TestDeepDirsOpenFilesAtEveryLevelInLinearWork(t *testing.T) {
	const depth = 3000
	src := t.TempDir()
	levels := make([]int, depth+1)
	for i := range levels {
		levels[i] = i
	}
	chain(t, src, depth, levels...)
	// The scan's nodes: the chain's directories (0 is src, which keeps
	// its path; none below it does), then a file node in each.
	nodes := newNodeList(node{path: src, parent: -1})
	for level := 1; level <= depth; level++ {
		nodes.add(node{name: []byte("d"), parent: int32(level - 1)})
	}
	files := make([]int32, depth+1) // by level
	for level := range files {
		files[level] = nodes.len()
		nodes.add(node{name: []byte("f"), parent: int32(level)})
	}
	// The scan's identities, read through the chain itself (the first
	// directory keeps its path: its identity is not looked at).
	var scan deepDirs
	for level := 1; level <= depth; level++ {
		fd, err := scan.dir(nodes, int32(level))
		if err != nil {
			t.Fatalf("level %d: %v", level, err)
		}
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			t.Fatal(err)
		}
		nodes.at(int32(level)).dev, nodes.at(int32(level)).ino = st.Dev, st.Ino
	}
	for level, f := range files {
		var st unix.Stat_t
		dir, _ := scan.dir(nodes, int32(level))
		if err := unix.Fstatat(dir, "f", &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			t.Fatal(err)
		}
		nodes.at(f).dev, nodes.at(f).ino = st.Dev, st.Ino
	}
	scan.close()

	down := slices.Clone(levels)
	up := slices.Clone(levels)
	slices.Reverse(up)
	jittered := slices.Clone(levels) // three readers taking turns
	for i := 0; i+2 < len(jittered); i += 3 {
		jittered[i], jittered[i+2] = jittered[i+2], jittered[i]
	}
	for _, c := range []struct {
		name  string
		order []int
	}{{"down the tree", down}, {"up the tree", up}, {"down, readers out of step", jittered}} {
		t.Run(c.name, func(t *testing.T) {
			var d deepDirs
			defer d.close()
			for _, level := range c.order {
				n := nodes.at(files[level])
				fd, _, err := d.openAt(nodes, n, 0, func(st *unix.Stat_t) bool { return st.Dev == n.dev && st.Ino == n.ino })
				if err != nil {
					t.Fatalf("level %d: %v", level, err)
				}
				got := make([]byte, 64)
				k, _ := unix.Read(fd, got)
				unix.Close(fd)
				if !bytes.Equal(got[:k], fileData(level)) {
					t.Fatalf("level %d: read %q, want %q", level, got[:k], fileData(level))
				}
			}
			// One open a level, once down to the first file, then a few
			// for each step; by path from the top it was one a level
			// for every file (4.5 million here).
			if limit := 4 * depth; d.opens > limit {
				t.Errorf("%d directories opened for %d files %d levels deep, want at most %d", d.opens, len(c.order), depth, limit)
			}
			t.Logf("%d directories opened", d.opens)
			if len(d.fds) > maxDeepDirs {
				t.Errorf("%d directories held, want at most %d", len(d.fds), maxDeepDirs)
			}
		})
	}
}

// A directory deep down with width subdirectories, a file in each, read in
// path order: each subdirectory is reached up from the one before (their
// parent) and a level down, not from the top (200,200 directories opened
// for these 100 files, one descent each).
func TestDeepDirsReachSiblingsInLinearWork(t *testing.T) {
	const depth, width = 2000, 100
	src := t.TempDir()
	wideDeep(t, src, depth, width)
	nodes := newNodeList(node{path: src, parent: -1})
	for level := 1; level <= depth; level++ {
		nodes.add(node{name: []byte("d"), parent: int32(level - 1)})
	}
	var subs, files []int32
	for i := range width {
		subs = append(subs, nodes.len())
		nodes.add(node{name: fmt.Appendf(nil, "s%03d", i), parent: depth})
	}
	for _, s := range subs {
		files = append(files, nodes.len())
		nodes.add(node{name: []byte("f"), parent: s})
	}
	var scan deepDirs // the scan's identities
	for i := int32(1); i < nodes.len(); i++ {
		n := nodes.at(i)
		dir, err := scan.dir(nodes, n.parent)
		if err != nil {
			t.Fatal(err)
		}
		var st unix.Stat_t
		if err := unix.Fstatat(dir, string(n.name), &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			t.Fatal(err)
		}
		n.dev, n.ino = st.Dev, st.Ino
	}
	scan.close()
	var d deepDirs
	defer d.close()
	for _, f := range files {
		n := nodes.at(f)
		fd, _, err := d.openAt(nodes, n, 0, func(st *unix.Stat_t) bool { return st.Dev == n.dev && st.Ino == n.ino })
		if err != nil {
			t.Fatal(err)
		}
		unix.Close(fd)
	}
	if limit := 4 * (depth + width); d.opens > limit {
		t.Errorf("%d directories opened for %d files %d levels deep, want at most %d", d.opens, width, depth, limit)
	}
}
