package testtree

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/sys/unix"
)

// CompareOptions relax Compare where a round trip legitimately differs.
type CompareOptions struct {
	// Atime compares access times too (off by default: reading the source
	// to archive it may update them).
	Atime bool
	// IgnoreOwner skips uid/gid (an extract as non-root cannot restore them).
	IgnoreOwner bool
	// IgnoreRoot skips the metadata of the two top directories themselves.
	IgnoreRoot bool
	// DedupLinks allows dst to hardlink regular files that src holds as
	// separate identical files (extract --dedup-links hardlink).
	DedupLinks bool
	// NoSparse skips the check that holes stay holes.
	NoSparse bool
}

// Diff lists every difference found, one line each, sorted by path.
type Diff []string

func (d Diff) Error() string {
	return fmt.Sprintf("%d difference(s):\n  %s", len(d), strings.Join(d, "\n  "))
}

// Err returns d as an error, or nil when the trees are equal.
func (d Diff) Err() error {
	if len(d) == 0 {
		return nil
	}
	return d
}

type entry struct {
	st   unix.Stat_t
	path string
}

// Compare checks that dst holds the same tree as src: the same paths with
// the same type, permission bits (setuid, setgid, sticky included), owner,
// size, mtime to the nanosecond, content, symlink target, device number,
// hardlink structure, xattrs (ACLs included) and holes.
func Compare(src, dst string, opt CompareOptions) Diff {
	var d Diff
	add := func(rel, format string, a ...any) {
		d = append(d, fmt.Sprintf("%q: %s", rel, fmt.Sprintf(format, a...)))
	}
	se, err := scan(src)
	if err != nil {
		return Diff{fmt.Sprintf("scan source: %v", err)}
	}
	de, err := scan(dst)
	if err != nil {
		return Diff{fmt.Sprintf("scan destination: %v", err)}
	}
	for rel := range se {
		if _, ok := de[rel]; !ok {
			add(rel, "missing in destination")
		}
	}
	for rel := range de {
		if _, ok := se[rel]; !ok {
			add(rel, "extra in destination")
		}
	}
	// Inode groups for the hardlink check: src inode → dst inode.
	srcToDst := map[[2]uint64]map[[2]uint64]bool{}
	dstToSrc := map[[2]uint64]map[[2]uint64]bool{}
	for rel, s := range se {
		t, ok := de[rel]
		if !ok {
			continue
		}
		a, b := &s.st, &t.st
		if a.Mode&unix.S_IFMT != b.Mode&unix.S_IFMT {
			add(rel, "type %s, destination %s", typeOf(a.Mode), typeOf(b.Mode))
			continue
		}
		isRoot := rel == "."
		if !(isRoot && opt.IgnoreRoot) {
			if a.Mode&unix.S_IFMT != unix.S_IFLNK && a.Mode&0o7777 != b.Mode&0o7777 {
				add(rel, "mode %04o, destination %04o", a.Mode&0o7777, b.Mode&0o7777)
			}
			if !opt.IgnoreOwner && (a.Uid != b.Uid || a.Gid != b.Gid) {
				add(rel, "owner %d:%d, destination %d:%d", a.Uid, a.Gid, b.Uid, b.Gid)
			}
			if ma, mb := a.Mtim.Nano(), b.Mtim.Nano(); ma != mb {
				add(rel, "mtime %d, destination %d (ns)", ma, mb)
			}
			if opt.Atime && a.Atim.Nano() != b.Atim.Nano() {
				add(rel, "atime %d, destination %d (ns)", a.Atim.Nano(), b.Atim.Nano())
			}
			if err := compareXattrs(s.path, t.path); err != nil {
				add(rel, "%v", err)
			}
		}
		switch a.Mode & unix.S_IFMT {
		case unix.S_IFREG:
			if a.Size != b.Size {
				add(rel, "size %d, destination %d", a.Size, b.Size)
				break
			}
			if err := compareContent(s.path, t.path); err != nil {
				add(rel, "%v", err)
			}
			if !opt.NoSparse {
				if msg := compareHoles(a, b); msg != "" {
					add(rel, "%s", msg)
				}
			}
			ka, kb := [2]uint64{a.Dev, a.Ino}, [2]uint64{b.Dev, b.Ino}
			if srcToDst[ka] == nil {
				srcToDst[ka] = map[[2]uint64]bool{}
			}
			srcToDst[ka][kb] = true
			if dstToSrc[kb] == nil {
				dstToSrc[kb] = map[[2]uint64]bool{}
			}
			dstToSrc[kb][ka] = true
		case unix.S_IFLNK:
			ta, _ := os.Readlink(s.path)
			tb, _ := os.Readlink(t.path)
			if ta != tb {
				add(rel, "symlink to %q, destination to %q", ta, tb)
			}
		case unix.S_IFCHR, unix.S_IFBLK:
			if a.Rdev != b.Rdev {
				add(rel, "device %d:%d, destination %d:%d", unix.Major(a.Rdev), unix.Minor(a.Rdev), unix.Major(b.Rdev), unix.Minor(b.Rdev))
			}
		}
	}
	// Hardlinks: paths sharing an inode in src share one in dst, and
	// (unless DedupLinks) paths apart in src stay apart in dst.
	names := func(m map[[2]uint64]bool) int { return len(m) }
	for ka, dsts := range srcToDst {
		if names(dsts) > 1 {
			add(pathsOf(se, ka), "hardlinked in source, split into %d inodes in destination", len(dsts))
		}
	}
	if !opt.DedupLinks {
		for kb, srcs := range dstToSrc {
			if names(srcs) > 1 {
				add(pathsOf(de, kb), "separate files in source, hardlinked in destination")
			}
		}
	}
	sort.Strings(d)
	return d
}

func pathsOf(m map[string]entry, k [2]uint64) string {
	var p []string
	for rel, e := range m {
		if e.st.Dev == k[0] && e.st.Ino == k[1] {
			p = append(p, rel)
		}
	}
	sort.Strings(p)
	return strings.Join(p, ", ")
}

func scan(root string) (map[string]entry, error) {
	m := map[string]entry{}
	err := filepath.WalkDir(root, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return fmt.Errorf("lstat %s: %w", p, err)
		}
		m[rel] = entry{st, p}
		return nil
	})
	return m, err
}

func typeOf(mode uint32) string {
	switch mode & unix.S_IFMT {
	case unix.S_IFREG:
		return "file"
	case unix.S_IFDIR:
		return "directory"
	case unix.S_IFLNK:
		return "symlink"
	case unix.S_IFIFO:
		return "fifo"
	case unix.S_IFCHR:
		return "char device"
	case unix.S_IFBLK:
		return "block device"
	case unix.S_IFSOCK:
		return "socket"
	}
	return fmt.Sprintf("type %o", mode&unix.S_IFMT)
}

func compareContent(a, b string) error {
	fa, err := os.Open(a)
	if err != nil {
		return fmt.Errorf("read source: %v", err)
	}
	defer fa.Close()
	fb, err := os.Open(b)
	if err != nil {
		return fmt.Errorf("read destination: %v", err)
	}
	defer fb.Close()
	ba, bb := make([]byte, 1<<20), make([]byte, 1<<20)
	var off int64
	for {
		na, ea := io.ReadFull(fa, ba)
		nb, eb := io.ReadFull(fb, bb)
		if na != nb || !bytes.Equal(ba[:na], bb[:nb]) {
			i := 0
			for i < na && i < nb && ba[i] == bb[i] {
				i++
			}
			return fmt.Errorf("content differs at byte %d", off+int64(i))
		}
		off += int64(na)
		doneA := errors.Is(ea, io.EOF) || errors.Is(ea, io.ErrUnexpectedEOF)
		doneB := errors.Is(eb, io.EOF) || errors.Is(eb, io.ErrUnexpectedEOF)
		if ea != nil && !doneA {
			return fmt.Errorf("read source: %v", ea)
		}
		if eb != nil && !doneB {
			return fmt.Errorf("read destination: %v", eb)
		}
		if doneA || doneB {
			return nil
		}
	}
}

// compareHoles reports a source file with holes whose copy lost them. The
// copy may allocate a little more (filesystem granularity), not the holes.
func compareHoles(a, b *unix.Stat_t) string {
	allocA, allocB := a.Blocks*512, b.Blocks*512
	if allocA >= a.Size {
		return ""
	}
	const slack = 128 << 10
	if allocB > allocA+slack {
		return fmt.Sprintf("sparse: source allocates %d of %d bytes, destination %d", allocA, a.Size, allocB)
	}
	return ""
}

func listXattrs(p string) (map[string]string, error) {
	sz, err := unix.Llistxattr(p, nil)
	if err != nil {
		if errors.Is(err, unix.ENOTSUP) {
			return nil, nil
		}
		return nil, err
	}
	buf := make([]byte, sz)
	sz, err = unix.Llistxattr(p, buf)
	if err != nil {
		return nil, err
	}
	m := map[string]string{}
	for _, name := range strings.Split(string(buf[:sz]), "\x00") {
		if name == "" || name == "security.selinux" {
			continue
		}
		vs, err := unix.Lgetxattr(p, name, nil)
		if err != nil {
			return nil, fmt.Errorf("get xattr %s: %v", name, err)
		}
		v := make([]byte, vs)
		vs, err = unix.Lgetxattr(p, name, v)
		if err != nil {
			return nil, fmt.Errorf("get xattr %s: %v", name, err)
		}
		m[name] = string(v[:vs])
	}
	return m, nil
}

func compareXattrs(a, b string) error {
	xa, err := listXattrs(a)
	if err != nil {
		return fmt.Errorf("source xattrs: %v", err)
	}
	xb, err := listXattrs(b)
	if err != nil {
		return fmt.Errorf("destination xattrs: %v", err)
	}
	var msgs []string
	for k, v := range xa {
		w, ok := xb[k]
		switch {
		case !ok:
			msgs = append(msgs, fmt.Sprintf("xattr %s missing", k))
		case v != w:
			msgs = append(msgs, fmt.Sprintf("xattr %s = %q, destination %q", k, v, w))
		}
	}
	for k := range xb {
		if _, ok := xa[k]; !ok {
			msgs = append(msgs, fmt.Sprintf("xattr %s extra in destination", k))
		}
	}
	if len(msgs) == 0 {
		return nil
	}
	sort.Strings(msgs)
	return errors.New(strings.Join(msgs, "; "))
}
