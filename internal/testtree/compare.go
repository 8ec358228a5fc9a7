package testtree

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
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

// Compare checks that dst holds the same tree as src: the same paths with
// the same type, permission bits (setuid, setgid, sticky included), owner,
// size, mtime to the nanosecond, content, symlink target, device number,
// hardlink structure, xattrs (ACLs included) and holes.
func Compare(src, dst string, opt CompareOptions) Diff {
	se, err := Snapshot(src)
	if err != nil {
		return Diff{fmt.Sprintf("scan source: %v", err)}
	}
	de, err := Snapshot(dst)
	if err != nil {
		return Diff{fmt.Sprintf("scan destination: %v", err)}
	}
	return CompareTrees(se, de, opt)
}

// CompareTrees is Compare of two snapshots; either may be one recorded
// earlier (ParseTree), which is how an archive made by an earlier release
// is checked against the tree it was made of.
func CompareTrees(se, de Tree, opt CompareOptions) Diff {
	var d Diff
	add := func(rel, format string, a ...any) {
		d = append(d, fmt.Sprintf("%q: %s", rel, fmt.Sprintf(format, a...)))
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
	// Inode groups for the hardlink check, each named by its Link: the
	// source's groups → the destination's, and back.
	srcToDst := map[string]map[string]bool{}
	dstToSrc := map[string]map[string]bool{}
	for rel, a := range se {
		b, ok := de[rel]
		if !ok {
			continue
		}
		if a.Err != "" {
			add(rel, "source: %s", a.Err)
		}
		if b.Err != "" {
			add(rel, "destination: %s", b.Err)
		}
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
			if a.Mtime != b.Mtime {
				add(rel, "mtime %d, destination %d (ns)", a.Mtime, b.Mtime)
			}
			if opt.Atime && a.Atime != b.Atime {
				add(rel, "atime %d, destination %d (ns)", a.Atime, b.Atime)
			}
			if msg := compareXattrs(a.Xattrs, b.Xattrs); msg != "" {
				add(rel, "%s", msg)
			}
		}
		switch a.Mode & unix.S_IFMT {
		case unix.S_IFREG:
			if a.Size != b.Size {
				add(rel, "size %d, destination %d", a.Size, b.Size)
				break
			}
			if a.SHA256 != b.SHA256 {
				add(rel, "%s", contentDiffers(a, b))
			}
			if !opt.NoSparse {
				if msg := compareHoles(a, b); msg != "" {
					add(rel, "%s", msg)
				}
			}
			if srcToDst[a.Link] == nil {
				srcToDst[a.Link] = map[string]bool{}
			}
			srcToDst[a.Link][b.Link] = true
			if dstToSrc[b.Link] == nil {
				dstToSrc[b.Link] = map[string]bool{}
			}
			dstToSrc[b.Link][a.Link] = true
		case unix.S_IFLNK:
			if a.Target != b.Target {
				add(rel, "symlink to %q, destination to %q", a.Target, b.Target)
			}
		case unix.S_IFCHR, unix.S_IFBLK:
			if a.Rdev != b.Rdev {
				add(rel, "device %d:%d, destination %d:%d", unix.Major(a.Rdev), unix.Minor(a.Rdev), unix.Major(b.Rdev), unix.Minor(b.Rdev))
			}
		}
	}
	// Hardlinks: paths sharing an inode in src share one in dst, and
	// (unless DedupLinks) paths apart in src stay apart in dst.
	for ka, dsts := range srcToDst {
		if len(dsts) > 1 {
			add(se.linked(ka), "hardlinked in source, split into %d inodes in destination", len(dsts))
		}
	}
	if !opt.DedupLinks {
		for kb, srcs := range dstToSrc {
			if len(srcs) > 1 {
				add(de.linked(kb), "separate files in source, hardlinked in destination")
			}
		}
	}
	sort.Strings(d)
	return d
}

// linked lists the paths of the inode group named link.
func (t Tree) linked(link string) string {
	var p []string
	for rel, e := range t {
		if e.Link == link && e.Mode&unix.S_IFMT == unix.S_IFREG {
			p = append(p, rel)
		}
	}
	sort.Strings(p)
	return strings.Join(p, ", ")
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

// contentDiffers says how two files of one size differ: at which byte,
// where both are on disk to look at, else by their digests.
func contentDiffers(a, b *Entry) string {
	if a.abs == "" || b.abs == "" {
		return fmt.Sprintf("content differs (sha256 %.16s…, destination %.16s…)", a.SHA256, b.SHA256)
	}
	off, err := firstDifference(a.abs, b.abs)
	if err != nil {
		return err.Error()
	}
	return fmt.Sprintf("content differs at byte %d", off)
}

// firstDifference is the offset of the first byte at which files a and b
// differ (the shorter one's size if one is a prefix of the other).
func firstDifference(a, b string) (int64, error) {
	fa, err := os.Open(a)
	if err != nil {
		return 0, fmt.Errorf("read source: %v", err)
	}
	defer fa.Close()
	fb, err := os.Open(b)
	if err != nil {
		return 0, fmt.Errorf("read destination: %v", err)
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
			return off + int64(i), nil
		}
		off += int64(na)
		doneA := errors.Is(ea, io.EOF) || errors.Is(ea, io.ErrUnexpectedEOF)
		doneB := errors.Is(eb, io.EOF) || errors.Is(eb, io.ErrUnexpectedEOF)
		if ea != nil && !doneA {
			return 0, fmt.Errorf("read source: %v", ea)
		}
		if eb != nil && !doneB {
			return 0, fmt.Errorf("read destination: %v", eb)
		}
		if doneA || doneB {
			// Equal as far as both go; the digests differed, so the files
			// changed while they were being read.
			return off, nil
		}
	}
}

// compareHoles reports a source file with holes whose copy lost them. The
// copy may allocate a little more (filesystem granularity), not the holes.
func compareHoles(a, b *Entry) string {
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

func compareXattrs(xa, xb map[string]string) string {
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
	sort.Strings(msgs)
	return strings.Join(msgs, "; ")
}
