package main

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"arc/format"
	"arc/internal/termsafe"
	"arc/reader"

	"github.com/spf13/cobra"
)

type listFlags struct {
	long bool
	json bool
}

func newListCommand(u *units) *cobra.Command {
	f := &listFlags{}
	c := &cobra.Command{
		Use:   "list ARCHIVE [PATH...]",
		Short: "List the entries of an archive",
		Long: `List the paths in ARCHIVE (any of its volumes), or only those at and below each
PATH. -l adds mode, owner, size (KiB, MiB, ...; exact bytes with --bytes) and
modification time like 'tar tv' (and like tar, the size column moves right
when a long owner name needs it, and stays there); --json writes one JSON
object per entry, with exact sizes (docs/CLI.md lists its fields). Names are
printed with C escapes for bytes that are not printable (\n, \t, \\, \ooo).`,
		Example: `  arcpack list backup.001
  arcpack list backup.001 -l etc/ssh
  arcpack list backup.001 --json | jq -r 'select(.type=="file") | .path'`,
		Aliases: []string{"ls"},
		Args:    minArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			return writingFailed(runList(outWriter{c.OutOrStdout()}, u, f, args[0], args[1:]), "list", args[0], "listing")
		},
	}
	c.Flags().BoolVarP(&f.long, "long", "l", false, "long listing: mode, owner/group, size, mtime, path, link target")
	c.Flags().BoolVar(&f.json, "json", false, "one JSON object per line for each entry (fields: docs/CLI.md)")
	return c
}

func runList(out io.Writer, u *units, f *listFlags, archive string, paths []string) error {
	a, err := reader.Open(archive, reader.Options{})
	if err != nil {
		return openError(archive, err)
	}
	defer a.Close()
	x := a.Index()
	w := bufio.NewWriter(out)
	defer w.Flush()
	l := &lister{x: x, w: w, u: u, long: f.long, json: f.json, first: map[uint32]string{}, names: ownerNames(x)}
	if len(paths) == 0 {
		if err := x.Walk(func(p []byte, d uint32) error { return l.entry(p, d) }); err != nil {
			return err
		}
		return w.Flush()
	}
	// The first path of every hardlinked inode is its "link to" target, so
	// the whole tree is walked even when listing parts of it.
	prefixes := make([][]byte, len(paths))
	for i, p := range paths {
		if _, err := resolve(x, p); err != nil {
			return fmt.Errorf("list %s: %s: %w", archive, p, err)
		}
		prefixes[i] = []byte(cleanPath(p))
	}
	l.filter = func(p []byte) bool {
		for _, pre := range prefixes {
			if len(pre) == 0 || bytes.Equal(p, pre) || (bytes.HasPrefix(p, pre) && p[len(pre)] == '/') {
				return true
			}
		}
		return false
	}
	if err := x.Walk(func(p []byte, d uint32) error { return l.entry(p, d) }); err != nil {
		return err
	}
	return w.Flush()
}

// cleanPath is an archive path as the walk spells it: the '/'-separated
// names only, without empty and "." ones ("" is the root). resolve has
// refused "..".
func cleanPath(p string) string {
	var parts []string
	for _, part := range strings.Split(p, "/") {
		if part != "" && part != "." {
			parts = append(parts, part)
		}
	}
	return strings.Join(parts, "/")
}

// resolve finds the dirent at a '/'-separated path relative to the root.
func resolve(x *format.Index, p string) (uint32, error) {
	d := uint32(0)
	if p == "" {
		return 0, nil
	}
	for _, part := range strings.Split(p, "/") {
		if part == "" || part == "." {
			continue
		}
		ino := x.Dirents.Inode[d]
		if !x.IsDir(ino) {
			return 0, fmt.Errorf("not in the archive (a parent is not a directory)")
		}
		c, ok := x.Lookup(ino, []byte(part))
		if !ok {
			return 0, fmt.Errorf("not in the archive")
		}
		d = c
	}
	return d, nil
}

type owners struct{ users, groups map[uint32]string }

func ownerNames(x *format.Index) owners {
	o := owners{map[uint32]string{}, map[uint32]string{}}
	for _, u := range x.Users {
		o.users[u.ID] = u.Name
	}
	for _, g := range x.Groups {
		o.groups[g.ID] = g.Name
	}
	return o
}

type lister struct {
	x      *format.Index
	w      *bufio.Writer
	u      *units
	long   bool
	json   bool
	filter func([]byte) bool
	first  map[uint32]string // inode → first path, for hardlinks
	names  owners
	// ugsWidth is where list -l's size column ends, in terminal columns
	// counted from the owner: it grows to the widest owner/group and size
	// seen so far (as GNU tar's verbose listing does), so that columns
	// stay aligned without reading the whole listing first.
	ugsWidth int
}

// minUGSWidth is ugsWidth at the start: "root/root" and a size of up to
// ten characters.
const minUGSWidth = 20

// jsonEntry is one line of `list --json`. Its fields are a stable interface
// documented in docs/CLI.md: add fields, never rename or remove them.
type jsonEntry struct {
	Path         string  `json:"path"`
	PathBase64   string  `json:"path_base64,omitempty"` // exact bytes when path is not valid UTF-8
	Type         string  `json:"type"`
	Mode         string  `json:"mode"` // octal permission bits incl. setuid/setgid/sticky
	UID          uint32  `json:"uid"`
	GID          uint32  `json:"gid"`
	User         string  `json:"user,omitempty"`
	Group        string  `json:"group,omitempty"`
	Size         uint64  `json:"size"`
	Mtime        string  `json:"mtime"` // RFC 3339 with nanoseconds, UTC
	MtimeNs      int64   `json:"mtime_ns"`
	Target       string  `json:"target,omitempty"`         // symlink target
	TargetBase64 string  `json:"target_base64,omitempty"`  // exact bytes when target is not valid UTF-8
	LinkTo       string  `json:"link_to,omitempty"`        // hardlink: first path of the same inode, as its path is written
	LinkToBase64 string  `json:"link_to_base64,omitempty"` // exact bytes when link_to is not valid UTF-8
	Nlink        uint32  `json:"nlink"`
	Inode        uint32  `json:"inode"`
	DevMajor     *uint32 `json:"dev_major,omitempty"`
	DevMinor     *uint32 `json:"dev_minor,omitempty"`
}

func (l *lister) entry(p []byte, d uint32) error {
	x := l.x
	ino := x.Dirents.Inode[d]
	path := string(p)
	linkTo := ""
	if !x.IsDir(ino) && x.Nlink[ino] > 1 {
		if first, ok := l.first[ino]; ok {
			linkTo = first
		} else {
			l.first[ino] = path
		}
	}
	if l.filter != nil && !l.filter(p) {
		return nil
	}
	mode := x.Inodes.Mode[ino]
	if l.json {
		e := jsonEntry{
			Type: typeName(mode), Mode: fmt.Sprintf("%04o", mode&format.ModePerm),
			UID: x.Inodes.UID[ino], GID: x.Inodes.GID[ino],
			User: l.names.users[x.Inodes.UID[ino]], Group: l.names.groups[x.Inodes.GID[ino]],
			Size: x.Inodes.Size[ino], MtimeNs: x.Inodes.Mtime[ino],
			Mtime: time.Unix(0, x.Inodes.Mtime[ino]).UTC().Format(rfc3339NanoFixed),
			Nlink: x.Nlink[ino], Inode: ino,
		}
		e.Path, e.PathBase64 = jsonName(path)
		e.LinkTo, e.LinkToBase64 = jsonName(linkTo)
		if mode&format.ModeType == format.ModeLink {
			e.Target, e.TargetBase64 = jsonName(string(x.Symlink(ino)))
		}
		if t := mode & format.ModeType; t == format.ModeChr || t == format.ModeBlk {
			maj, min := devNumbers(x.Inodes.Rdev[ino])
			e.DevMajor, e.DevMinor = &maj, &min
		}
		b, err := json.Marshal(e)
		if err != nil {
			return err
		}
		l.w.Write(b)
		return l.w.WriteByte('\n')
	}
	if !l.long {
		fmt.Fprintln(l.w, termsafe.Name(path))
		return nil
	}
	owner := l.names.users[x.Inodes.UID[ino]]
	if owner == "" {
		owner = strconv.FormatUint(uint64(x.Inodes.UID[ino]), 10)
	}
	group := l.names.groups[x.Inodes.GID[ino]]
	if group == "" {
		group = strconv.FormatUint(uint64(x.Inodes.GID[ino]), 10)
	}
	size := l.u.size(int64(x.Inodes.Size[ino]))
	if l.u != nil && l.u.bytes {
		size = strconv.FormatUint(x.Inodes.Size[ino], 10)
	}
	if t := mode & format.ModeType; t == format.ModeChr || t == format.ModeBlk {
		maj, min := devNumbers(x.Inodes.Rdev[ino])
		size = fmt.Sprintf("%d,%d", maj, min)
	}
	mt := time.Unix(0, x.Inodes.Mtime[ino]).Local().Format("2006-01-02 15:04")
	ug := termsafe.Name(owner) + "/" + termsafe.Name(group)
	// Counted in terminal columns, as printed: a CJK owner takes two a
	// character, a combining accent none. size is ASCII, so the %*s
	// below, which pads by runes, puts ugsWidth-w spaces before it.
	w := termsafe.Width(ug) + 1 + len(size)
	l.ugsWidth = max(l.ugsWidth, minUGSWidth, w)
	fmt.Fprintf(l.w, "%s %s %*s %s %s", modeString(mode), ug, l.ugsWidth-w+len(size), size, mt, termsafe.Name(path))
	// A hardlink says which path it is, whatever its type (a hardlinked
	// symlink too), as tar tv does; the first path, the symlink's target.
	switch {
	case linkTo != "":
		fmt.Fprintf(l.w, " link to %s", termsafe.Name(linkTo))
	case mode&format.ModeType == format.ModeLink:
		fmt.Fprintf(l.w, " -> %s", termsafe.Name(string(x.Symlink(ino))))
	case x.IsDir(ino):
		l.w.WriteByte('/')
	}
	return l.w.WriteByte('\n')
}

// devNumbers splits a Linux dev_t into major and minor numbers.
func devNumbers(rdev uint64) (major, minor uint32) {
	major = uint32((rdev>>8)&0xfff) | uint32((rdev>>32)&^0xfff)
	minor = uint32(rdev&0xff) | uint32((rdev>>12)&^0xff)
	return
}

func typeName(mode uint32) string {
	switch mode & format.ModeType {
	case format.ModeDir:
		return "dir"
	case format.ModeReg:
		return "file"
	case format.ModeLink:
		return "symlink"
	case format.ModeFifo:
		return "fifo"
	case format.ModeChr:
		return "char"
	case format.ModeBlk:
		return "block"
	case format.ModeSock:
		return "socket"
	}
	return "unknown"
}

// modeString renders mode as ls -l does: drwxr-sr-t and friends.
func modeString(mode uint32) string {
	var b [10]byte
	switch mode & format.ModeType {
	case format.ModeDir:
		b[0] = 'd'
	case format.ModeLink:
		b[0] = 'l'
	case format.ModeFifo:
		b[0] = 'p'
	case format.ModeChr:
		b[0] = 'c'
	case format.ModeBlk:
		b[0] = 'b'
	case format.ModeSock:
		b[0] = 's'
	default:
		b[0] = '-'
	}
	const rwx = "rwxrwxrwx"
	for i := 0; i < 9; i++ {
		if mode&(1<<(8-i)) != 0 {
			b[1+i] = rwx[i]
		} else {
			b[1+i] = '-'
		}
	}
	special := func(bit uint32, pos int, lower, upper byte) {
		if mode&bit == 0 {
			return
		}
		if b[pos] == 'x' {
			b[pos] = lower
		} else {
			b[pos] = upper
		}
	}
	special(0o4000, 3, 's', 'S')
	special(0o2000, 6, 's', 'S')
	special(0o1000, 9, 't', 'T')
	return string(b[:])
}

// rfc3339NanoFixed is RFC 3339 with all nine digits of nanoseconds, so
// that every entry's mtime has the same form (time.RFC3339Nano drops
// trailing zeros, and whole seconds lose the fraction).
const rfc3339NanoFixed = "2006-01-02T15:04:05.000000000Z07:00"

// jsonName is a name (a path, a symlink target) as list --json writes it:
// as it is when it is valid UTF-8, else escaped (termsafe.Name) with its exact
// bytes in base64 beside it. One spelling for all, so that "link_to" is
// exactly the "path" of the entry it names.
func jsonName(name string) (text, exact string) {
	if utf8.ValidString(name) {
		return name, ""
	}
	return termsafe.Name(name), base64.StdEncoding.EncodeToString([]byte(name))
}
