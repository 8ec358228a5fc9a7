package reader

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"

	"arc/format"
)

// asides holds what an extraction with overwrite moved aside in dest: the
// user's entries at paths where the archive has its own. The tree is made
// first and the files are filled after, in the archive's order, so an
// extraction that stops halfway (interrupted, the disk full) would
// otherwise leave emptied every file of the user's that it never reached.
// An entry is removed once what replaces it is whole (release, settle), and
// put back where that never comes (settle): the extraction stopped first,
// or the archive's file is damaged or too large for dest.
//
// Killed outright, an extraction leaves them under their hidden names
// (.arcpack-replaced.N, beside where they were), as they were.
type asides struct {
	list []movedAside
	// Made by index before the files are filled, read-only after: the
	// entries moved aside for the paths of each file's content (its first
	// path and those linked to it), and where each path's is.
	owned map[uint32][]int
	at    map[uint32]int
	// state of list[i]: 0 not settled, replaced whole (the content
	// written), removed. Each element is written by the one worker that
	// writes its file.
	state []uint8
}

const (
	asideOpen uint8 = iota
	asideWhole
	asideGone
)

// movedAside is an entry of dest's moved aside, within its directory, for
// dirent d.
type movedAside struct {
	d    uint32
	name string // its name now
}

// putAside moves dest's entry dirfd/name, where the archive has dirent d
// (overwrite), to a hidden name beside it. The name is one the archive
// does not have in that directory, so that nothing the extraction makes
// there meets it; RENAME_NOREPLACE keeps any of the user's files of that
// name (a killed extraction's) as they are.
func (e *extractor) putAside(dirfd int, name string, d uint32) error {
	x := e.a.idx
	dir := x.Dirents.Inode[e.parents[d]]
	for i := 0; i < 1000; i++ {
		aside := fmt.Sprintf(".arcpack-replaced.%d", d)
		if i > 0 {
			aside += fmt.Sprintf(".%d", i)
		}
		if _, ok := x.Lookup(dir, []byte(aside)); ok {
			continue // the archive's own entry
		}
		err := unix.Renameat2(dirfd, name, dirfd, aside, unix.RENAME_NOREPLACE)
		if errors.Is(err, unix.EINVAL) {
			// A filesystem without RENAME_NOREPLACE: look first.
			var st unix.Stat_t
			if err = unix.Fstatat(dirfd, aside, &st, unix.AT_SYMLINK_NOFOLLOW); err == nil {
				err = unix.EEXIST
			} else if errors.Is(err, unix.ENOENT) {
				err = unix.Renameat(dirfd, name, dirfd, aside)
			}
		}
		if errors.Is(err, unix.EEXIST) {
			continue
		}
		if err != nil {
			return fmt.Errorf("%s: moving the existing entry aside to replace it: %w", e.path(d), err)
		}
		e.aside.list = append(e.aside.list, movedAside{d, aside})
		return nil
	}
	return fmt.Errorf("%s: moving the existing entry aside to replace it: no free name", e.path(d))
}

// index readies s for the files' content: which entries each file's
// content settles (its paths' own).
func (s *asides) index(e *extractor) {
	if len(s.list) == 0 {
		return
	}
	x := e.a.idx
	s.owned, s.at, s.state = map[uint32][]int{}, map[uint32]int{}, make([]uint8, len(s.list))
	for i, m := range s.list {
		s.at[m.d] = i
		if x.Inodes.Mode[x.Dirents.Inode[m.d]]&format.ModeType != format.ModeReg {
			continue
		}
		owner, ok := e.linkOwner[m.d]
		if !ok {
			owner = m.d
		}
		s.owned[owner] = append(s.owned[owner], i)
	}
}

// leftAs says, for a message about dirent d's file not coming out whole,
// what d's path is left as: dest's own entry, where one was moved aside
// for it (put back by settle), else what the caller says ("": nothing).
func (s *asides) leftAs(d uint32, otherwise string) string {
	if _, ok := s.at[d]; ok {
		return "what DEST had there is kept"
	}
	return otherwise
}

// release removes, once file d's content is written whole, the entries
// moved aside for its paths that now hold it; dirs is the caller's chain
// (a content worker's).
func (s *asides) release(e *extractor, dirs *dirChain, d uint32) {
	for _, i := range s.owned[d] {
		s.state[i] = asideWhole
		m := s.list[i]
		pfd, name, err := dirs.parentOf(m.d)
		if err != nil {
			continue // settle tries again, and says what fails
		}
		var st unix.Stat_t
		if unix.Fstatat(pfd, name, &st, unix.AT_SYMLINK_NOFOLLOW) == nil && unix.Unlinkat(pfd, m.name, 0) == nil {
			s.state[i] = asideGone
		}
	}
}

// settle ends what putAside began, the files being written or not (made:
// after the tree is made, for the entries whose replacement is whole
// already; finished: after every file was written). An entry whose
// replacement is in place and whole is removed: a symlink or node once
// made; a file (or a link to one) once its content is written whole; a
// directory once everything was written. Any other goes back to its name
// (in place of a directory only while that is empty). What cannot be done
// is warned about, with where the entry is.
func (e *extractor) settle(made, finished bool) {
	s := &e.aside
	x := e.a.idx
	kept := s.list[:0]
	for i, m := range s.list {
		state := asideOpen
		if s.state != nil {
			state = s.state[i]
		}
		if state == asideGone {
			continue
		}
		typ := x.Inodes.Mode[x.Dirents.Inode[m.d]] & format.ModeType
		file, dir := typ == format.ModeReg, typ == format.ModeDir
		if made && (file || dir) {
			kept = append(kept, m)
			continue
		}
		dirfd, name, err := e.links.parentOf(m.d)
		if err == nil {
			var st unix.Stat_t
			whole := unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW) == nil
			switch {
			case file:
				whole = whole && state == asideWhole
			case dir:
				whole = whole && finished
			}
			switch {
			case whole:
				err = unix.Unlinkat(dirfd, m.name, 0)
			case st.Mode&unix.S_IFMT == unix.S_IFDIR && unix.Unlinkat(dirfd, name, unix.AT_REMOVEDIR) != nil:
				// rename would not replace it
				err = errors.New("the directory made in its place holds what was extracted into it")
			default:
				err = unix.Renameat(dirfd, m.name, dirfd, name)
			}
		}
		if err != nil {
			e.warn(fmt.Errorf("%s: what was there before is left as %s: %w", e.path(m.d), m.name, err))
		}
	}
	s.list = kept
}
