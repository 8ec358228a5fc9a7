package reader

import (
	"fmt"
	"io/fs"
	"strings"
)

// Resolve returns the dirent of path, given relative to the archive root
// with '/' separators ("" or "/" is the root). Empty and "." components are
// skipped; ".." is refused.
func (a *Archive) Resolve(path string) (uint32, error) {
	x := a.idx
	var d uint32
	for _, comp := range strings.Split(path, "/") {
		if comp == "" || comp == "." {
			continue
		}
		if comp == ".." {
			return 0, fmt.Errorf("%s: '..' is not allowed in archive paths", path)
		}
		dir := x.Dirents.Inode[d]
		if !x.IsDir(dir) {
			return 0, fmt.Errorf("%s: %s is not a directory", path, a.Path(d))
		}
		c, ok := x.Lookup(dir, []byte(comp))
		if !ok {
			return 0, fmt.Errorf("%s: %w", path, fs.ErrNotExist)
		}
		d = c
	}
	return d, nil
}

// Path returns dirent d's path relative to the root ("" for the root).
func (a *Archive) Path(d uint32) string {
	parents := a.parentTable()
	if int(d) >= len(parents) {
		return ""
	}
	var parts []string
	for d != 0 {
		parts = append(parts, string(a.idx.Name(d)))
		d = parents[d]
	}
	for i, j := 0, len(parts)-1; i < j; i, j = i+1, j-1 {
		parts[i], parts[j] = parts[j], parts[i]
	}
	return strings.Join(parts, "/")
}

// parentTable maps each dirent to its parent directory's dirent; built on
// first use (format validated that parents precede their children).
func (a *Archive) parentTable() []uint32 {
	a.parents.once.Do(func() {
		x := a.idx
		p := make([]uint32, x.Dirents.Count())
		for d := range p {
			ino := x.Dirents.Inode[d]
			if !x.IsDir(ino) {
				continue
			}
			s, e := x.Children(ino)
			for c := s; c < e; c++ {
				p[c] = uint32(d)
			}
		}
		a.parents.of = p
	})
	return a.parents.of
}
