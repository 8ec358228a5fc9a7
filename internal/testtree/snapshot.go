package testtree

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Entry is what Compare checks of one path of a tree. A snapshot of a tree
// keeps these alone, so that a tree can be compared with one recorded
// long before (integration's archives made by earlier releases).
type Entry struct {
	Mode         uint32 // st_mode: the type and the permission bits
	Uid, Gid     uint32
	Size         int64
	Blocks       int64 // st_blocks (512-byte units): holes, within a slack
	Atime, Mtime int64 // nanoseconds since the epoch
	Rdev         uint64
	Target       string            // symlinks
	SHA256       string            // regular files, in hex
	Xattrs       map[string]string // security.selinux left out (the host's, not the tree's)
	// Link names the inode of a regular file: the first path, in byte
	// order, among the tree's paths to it. Hardlinked paths share it.
	Link string
	// Err is why part of the entry could not be read (its content, xattrs
	// or target); Compare reports it as a difference.
	Err string

	abs string // where it lives, for a closer look; empty when parsed
}

// Tree maps each path of a tree, relative to its root ("." for the root
// itself), to its entry.
type Tree map[string]*Entry

// Snapshot records the tree under root. Only an error walking it is
// returned; what cannot be read of one entry is in its Err.
func Snapshot(root string) (Tree, error) {
	t := Tree{}
	inodes := map[[2]uint64][]string{}
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
		e := &Entry{
			Mode: st.Mode, Uid: st.Uid, Gid: st.Gid, Size: st.Size, Blocks: st.Blocks,
			Atime: st.Atim.Nano(), Mtime: st.Mtim.Nano(), abs: p,
		}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFREG:
			k := [2]uint64{st.Dev, st.Ino}
			inodes[k] = append(inodes[k], rel)
		case unix.S_IFLNK:
			target, err := os.Readlink(p)
			if err != nil {
				e.addErr(fmt.Sprintf("readlink: %v", err))
			}
			e.Target = target
		case unix.S_IFCHR, unix.S_IFBLK:
			e.Rdev = st.Rdev
		}
		x, err := listXattrs(p)
		if err != nil {
			e.addErr(fmt.Sprintf("xattrs: %v", err))
		}
		e.Xattrs = x
		t[rel] = e
		return nil
	})
	if err != nil {
		return t, err
	}
	// The contents are read once every entry is stat'ed: reading a file
	// may change its atime, which a later path to the same inode would see.
	for _, paths := range inodes {
		sort.Strings(paths)
		sum, err := digest(t[paths[0]].abs)
		for _, rel := range paths {
			e := t[rel]
			e.Link, e.SHA256 = paths[0], sum
			if err != nil {
				e.addErr(err.Error())
			}
		}
	}
	return t, nil
}

func (e *Entry) addErr(msg string) {
	if e.Err != "" {
		e.Err += "; "
	}
	e.Err += msg
}

func digest(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", fmt.Errorf("read: %v", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("read: %v", err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
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

// The text form of a snapshot: a header line, then one line per path in
// byte order: the path quoted as Go does (any byte survives), then
// key=value fields, each value a number, hex, or a quoted string; an
// xattr is xattr="NAME"="VALUE". Numbers are decimal but for mode (octal).
const treeHeader = "arc testtree snapshot 1"

// MarshalText writes the snapshot in its text form. A snapshot with an
// entry that could not be read is refused: it would record a wrong tree.
func (t Tree) MarshalText() ([]byte, error) {
	paths := make([]string, 0, len(t))
	for rel, e := range t {
		if e.Err != "" {
			return nil, fmt.Errorf("%q: %s", rel, e.Err)
		}
		paths = append(paths, rel)
	}
	sort.Strings(paths)
	var b bytes.Buffer
	b.WriteString(treeHeader + "\n")
	for _, rel := range paths {
		e := t[rel]
		fmt.Fprintf(&b, "%s mode=%o uid=%d gid=%d size=%d blocks=%d atime=%d mtime=%d",
			strconv.Quote(rel), e.Mode, e.Uid, e.Gid, e.Size, e.Blocks, e.Atime, e.Mtime)
		switch e.Mode & unix.S_IFMT {
		case unix.S_IFREG:
			fmt.Fprintf(&b, " sha256=%s link=%s", e.SHA256, strconv.Quote(e.Link))
		case unix.S_IFLNK:
			fmt.Fprintf(&b, " target=%s", strconv.Quote(e.Target))
		case unix.S_IFCHR, unix.S_IFBLK:
			fmt.Fprintf(&b, " rdev=%d", e.Rdev)
		}
		names := make([]string, 0, len(e.Xattrs))
		for n := range e.Xattrs {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			fmt.Fprintf(&b, " xattr=%s=%s", strconv.Quote(n), strconv.Quote(e.Xattrs[n]))
		}
		b.WriteByte('\n')
	}
	return b.Bytes(), nil
}

// ParseTree reads a snapshot's text form.
func ParseTree(text []byte) (Tree, error) {
	t := Tree{}
	sc := bufio.NewScanner(bytes.NewReader(text))
	sc.Buffer(nil, 1<<24)
	if !sc.Scan() || sc.Text() != treeHeader {
		return nil, fmt.Errorf("not a tree snapshot: the first line is not %q", treeHeader)
	}
	for n := 2; sc.Scan(); n++ {
		rel, e, err := parseEntry(sc.Text())
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		if _, dup := t[rel]; dup {
			return nil, fmt.Errorf("line %d: %q a second time", n, rel)
		}
		t[rel] = e
	}
	return t, sc.Err()
}

func parseEntry(line string) (string, *Entry, error) {
	rel, rest, err := quoted(line)
	if err != nil {
		return "", nil, fmt.Errorf("path: %w", err)
	}
	e := &Entry{}
	seen := map[string]bool{}
	for rest != "" {
		if rest[0] != ' ' {
			return "", nil, fmt.Errorf("%q: want a space before %q", rel, rest)
		}
		key, after, ok := strings.Cut(rest[1:], "=")
		if !ok {
			return "", nil, fmt.Errorf("%q: field %q has no value", rel, rest[1:])
		}
		if seen[key] && key != "xattr" {
			return "", nil, fmt.Errorf("%q: %s a second time", rel, key)
		}
		seen[key] = true
		var val string
		if strings.HasPrefix(after, `"`) {
			val, rest, err = quoted(after)
		} else {
			end := strings.IndexByte(after, ' ')
			if end < 0 {
				end = len(after)
			}
			val, rest = after[:end], after[end:]
		}
		if err != nil {
			return "", nil, fmt.Errorf("%q: %s: %w", rel, key, err)
		}
		if err := e.set(key, val, &rest); err != nil {
			return "", nil, fmt.Errorf("%q: %s: %w", rel, key, err)
		}
	}
	for _, k := range []string{"mode", "uid", "gid", "size", "blocks", "atime", "mtime"} {
		if !seen[k] {
			return "", nil, fmt.Errorf("%q: no %s", rel, k)
		}
	}
	return rel, e, nil
}

// set gives e the field key; an xattr's value follows in rest.
func (e *Entry) set(key, val string, rest *string) error {
	num := func(base, bits int) (uint64, error) { return strconv.ParseUint(val, base, bits) }
	snum := func() (int64, error) { return strconv.ParseInt(val, 10, 64) }
	var err error
	var u uint64
	switch key {
	case "mode":
		u, err = num(8, 32)
		e.Mode = uint32(u)
	case "uid":
		u, err = num(10, 32)
		e.Uid = uint32(u)
	case "gid":
		u, err = num(10, 32)
		e.Gid = uint32(u)
	case "rdev":
		e.Rdev, err = num(10, 64)
	case "size":
		e.Size, err = snum()
	case "blocks":
		e.Blocks, err = snum()
	case "atime":
		e.Atime, err = snum()
	case "mtime":
		e.Mtime, err = snum()
	case "sha256":
		if _, err = hex.DecodeString(val); err == nil && len(val) != 64 {
			err = fmt.Errorf("%d hex digits, want 64", len(val))
		}
		e.SHA256 = val
	case "link":
		e.Link = val
	case "target":
		e.Target = val
	case "xattr":
		if !strings.HasPrefix(*rest, "=") {
			return errors.New(`want ="VALUE" after the name`)
		}
		var v string
		if v, *rest, err = quoted((*rest)[1:]); err != nil {
			return err
		}
		if e.Xattrs == nil {
			e.Xattrs = map[string]string{}
		}
		if _, dup := e.Xattrs[val]; dup {
			return fmt.Errorf("%q a second time", val)
		}
		e.Xattrs[val] = v
	default:
		return errors.New("unknown field")
	}
	return err
}

// quoted takes the Go-quoted string s starts with and returns it unquoted
// with what follows.
func quoted(s string) (string, string, error) {
	q, err := strconv.QuotedPrefix(s)
	if err != nil {
		return "", "", fmt.Errorf("want a quoted string at %.40q", s)
	}
	v, err := strconv.Unquote(q)
	return v, s[len(q):], err
}
