package testtree

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"

	"golang.org/x/sys/unix"
)

// Trees deeper than PATH_MAX: the kernel refuses a path of 4096 bytes or
// more passed whole (ENAMETOOLONG), so GenerateDeep and ReadDeep go
// through directory descriptors, one name at a time, at any depth.

// DeepLevels is how many directories GenerateDeep nests, each with a
// 200-byte name: about 9,000 bytes of path below the root, past PATH_MAX
// twice over.
const DeepLevels = 45

// DeepEntry is an entry as ReadDeep sees it.
type DeepEntry struct {
	Mode    uint32            // st_mode: type and permission bits
	Mtime   int64             // nanoseconds since 1970
	Content string            // regular files
	Target  string            // symlinks
	Xattrs  map[string]string // user.* attributes of regular files and directories
	LinkOf  string            // a second path of an inode: its first path in walk order
}

// deepName is the name of directory level i (from 1) of the deep tree.
func deepName(i int) string { return fmt.Sprintf("%02d-%s", i, strings.Repeat("d", 197)) }

// GenerateDeep creates below dir (made if missing): top.txt, and a chain
// of DeepLevels directories holding a file f every 15 levels; at the
// bottom a 200 KB file with a user xattr, a symlink to the f 15 levels up,
// a hardlink to top.txt, a FIFO, an empty directory, and a user xattr on
// the bottom directory itself. It reports whether the filesystem took the
// xattrs (user xattrs are optional).
func GenerateDeep(dir string) (xattrs bool, err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return false, err
	}
	root, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return false, err
	}
	defer unix.Close(root)
	if err := writeAt(root, "top.txt", []byte("at the top\n")); err != nil {
		return false, err
	}
	fd, err := unix.Dup(root)
	if err != nil {
		return false, err
	}
	defer func() { unix.Close(fd) }()
	for i := 1; i <= DeepLevels; i++ {
		if err := unix.Mkdirat(fd, deepName(i), 0o755); err != nil {
			return false, fmt.Errorf("testtree: level %d: %w", i, err)
		}
		sub, err := unix.Openat(fd, deepName(i), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return false, fmt.Errorf("testtree: level %d: %w", i, err)
		}
		unix.Close(fd)
		fd = sub
		if i%15 == 0 {
			if err := writeAt(fd, "f", deepContent(i, 5000+i)); err != nil {
				return false, err
			}
		}
	}
	for _, e := range []error{
		writeAt(fd, "file", deepContent(0, 200_000)),
		unix.Symlinkat(strings.Repeat("../", 15)+"f", fd, "link"),
		unix.Linkat(root, "top.txt", fd, "hard", 0),
		unix.Mknodat(fd, "fifo", unix.S_IFIFO|0o640, 0),
		unix.Mkdirat(fd, "empty", 0o700),
	} {
		if e != nil {
			return false, fmt.Errorf("testtree: at the bottom: %w", e)
		}
	}
	file, err := unix.Openat(fd, "file", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return false, err
	}
	defer unix.Close(file)
	err = unix.Fsetxattr(file, "user.deep", []byte("the bottom file"), 0)
	if err == nil {
		err = unix.Fsetxattr(fd, "user.deep-dir", []byte("the bottom directory"), 0)
	}
	if errors.Is(err, unix.ENOTSUP) {
		return false, nil
	}
	return err == nil, err
}

// deepContent is n bytes that differ with seed and do not repeat much.
func deepContent(seed, n int) []byte {
	b := make([]byte, n)
	x := uint32(seed)*2654435761 + 1
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x)
	}
	return b
}

// writeAt creates file name in dirfd with data.
func writeAt(dirfd int, name string, data []byte) error {
	fd, err := unix.Openat(dirfd, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, 0o640)
	if err != nil {
		return fmt.Errorf("testtree: %s: %w", name, err)
	}
	_, err = unix.Write(fd, data)
	if cerr := unix.Close(fd); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("testtree: %s: %w", name, err)
	}
	return nil
}

// ReadDeep reads every entry below root (not root itself), keyed by path
// relative to root, at any depth.
func ReadDeep(root string) (map[string]DeepEntry, error) {
	fd, err := unix.Open(root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	m := map[string]DeepEntry{}
	err = readDeepDir(os.NewFile(uintptr(fd), root), "", m, map[[2]uint64]string{})
	return m, err
}

// readDeepDir reads directory dir, whose path below the root is prefix,
// into m, and closes dir. first maps inodes met to their first path.
func readDeepDir(dir *os.File, prefix string, m map[string]DeepEntry, first map[[2]uint64]string) error {
	defer dir.Close()
	names, err := dir.Readdirnames(-1)
	if err != nil {
		return fmt.Errorf("%s: %w", ShortPath(prefix), err)
	}
	slices.Sort(names)
	dirfd := int(dir.Fd())
	for _, name := range names {
		rel := prefix + name
		var st unix.Stat_t
		if err := unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("%s: %w", ShortPath(rel), err)
		}
		e := DeepEntry{Mode: st.Mode, Mtime: st.Mtim.Nano()}
		typ := st.Mode & unix.S_IFMT
		if typ != unix.S_IFDIR && st.Nlink > 1 {
			k := [2]uint64{st.Dev, st.Ino}
			if p, ok := first[k]; ok {
				m[rel] = DeepEntry{LinkOf: p}
				continue
			}
			first[k] = rel
		}
		switch typ {
		case unix.S_IFLNK:
			buf := make([]byte, unix.PathMax)
			n, err := unix.Readlinkat(dirfd, name, buf)
			if err != nil {
				return fmt.Errorf("%s: %w", ShortPath(rel), err)
			}
			e.Target = string(buf[:n])
		case unix.S_IFREG, unix.S_IFDIR:
			fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
			if err != nil {
				return fmt.Errorf("%s: %w", ShortPath(rel), err)
			}
			f := os.NewFile(uintptr(fd), name)
			if e.Xattrs, err = userXattrs(fd); err != nil {
				f.Close()
				return fmt.Errorf("%s: %w", ShortPath(rel), err)
			}
			if typ == unix.S_IFDIR {
				m[rel] = e
				if err := readDeepDir(f, rel+"/", m, first); err != nil {
					return err
				}
				continue
			}
			b, err := io.ReadAll(f)
			f.Close()
			if err != nil {
				return fmt.Errorf("%s: %w", ShortPath(rel), err)
			}
			e.Content = string(b)
		}
		m[rel] = e
	}
	return nil
}

// userXattrs reads the user.* attributes of an open file, nil for none.
func userXattrs(fd int) (map[string]string, error) {
	buf := make([]byte, 64<<10)
	n, err := unix.Flistxattr(fd, buf)
	if errors.Is(err, unix.ENOTSUP) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var m map[string]string
	for _, name := range strings.Split(string(buf[:n]), "\x00") {
		if !strings.HasPrefix(name, "user.") {
			continue
		}
		v := make([]byte, 64<<10)
		k, err := unix.Fgetxattr(fd, name, v)
		if err != nil {
			return nil, fmt.Errorf("xattr %s: %w", name, err)
		}
		if m == nil {
			m = map[string]string{}
		}
		m[name] = string(v[:k])
	}
	return m, nil
}

// DiffDeep lists how tree b (as ReadDeep reads it) differs from tree a,
// one line per entry, paths shortened by ShortPath.
func DiffDeep(a, b map[string]DeepEntry) Diff {
	var d Diff
	for _, p := range slices.Sorted(maps.Keys(a)) {
		eb, ok := b[p]
		switch {
		case !ok:
			d = append(d, ShortPath(p)+": missing")
		case !equalDeep(a[p], eb):
			d = append(d, fmt.Sprintf("%s: %+v, want %+v", ShortPath(p), brief(eb), brief(a[p])))
		}
	}
	for _, p := range slices.Sorted(maps.Keys(b)) {
		if _, ok := a[p]; !ok {
			d = append(d, ShortPath(p)+": extra")
		}
	}
	return d
}

func equalDeep(a, b DeepEntry) bool {
	return a.Mode == b.Mode && a.Mtime == b.Mtime && a.Content == b.Content && a.Target == b.Target &&
		maps.Equal(a.Xattrs, b.Xattrs) && a.LinkOf == b.LinkOf
}

// brief is e with its content shortened to its length, for messages.
func brief(e DeepEntry) DeepEntry {
	e.Content = fmt.Sprintf("(%d bytes)", len(e.Content))
	e.LinkOf = ShortPath(e.LinkOf)
	return e
}

// ShortPath writes a path of the deep tree (or a message naming one) with
// each 200-byte directory name as its level number.
func ShortPath(p string) string {
	for i := 1; i <= DeepLevels; i++ {
		p = strings.ReplaceAll(p, deepName(i), fmt.Sprintf("%02d", i))
	}
	return p
}
