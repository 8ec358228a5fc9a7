package writer

import (
	"os"
	"slices"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// deepDirs opens the files of directories deep down (nodes past
// anchorPath, which keep no path) relative to their directory, held open
// here, rather than by their paths. By path, the kernel walked every
// level above a file again for each file (in steps of PATH_MAX past
// that), and a tree with a file at each of its levels took time in the
// square of its depth: 4.7 s to pack a chain of 8,000 directories with a
// file in each, against 0.5 s for the chain alone (0.9 s now). The reads
// go in path order within groups of files alike, deepest first at times,
// so the next file's directory is mostly one held or a level below or
// above one: an openat or two a level, the chain's files in linear time.
//
// The directories are opened a level at a time, without following a
// symlink (the scan listed each as a directory), from the nearest one
// held, up from one held (the parent of siblings), or from the nearest one
// that keeps its path. Held open, a directory renamed since the scan is
// still read where it went; every file opened is checked against the
// scan's device and inode as before, and one not reached this way (a
// directory swapped for a symlink, moved, gone) is opened by its path
// (packer.openListed), so that what the reads are told is what the path
// gives.
type deepDirs struct {
	mu    sync.Mutex
	fds   map[int32]int // by node: O_PATH descriptors of directories
	order []int32       // the nodes of fds, oldest first
	opens int           // directories opened, for tests
	// max: directories held at most, maxDeepDirs or an eighth of the
	// limit on open files where that is less (set at the first hold):
	// under a low limit they must leave room for the reads and volumes.
	max int
}

// maxDeepDirs bounds the directories held: a walk in path order needs the
// one its files are in and the few above it that it comes back to.
const maxDeepDirs = 16

// openAt opens node n of nodes, which keeps no path (past anchorPath), as
// openAt (scan.go) does in its directory. The path of its errors is the
// name alone: the caller knows the whole.
func (d *deepDirs) openAt(nodes *nodeList, n *node, flags int, is func(*unix.Stat_t) bool) (int, unix.Stat_t, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	dirfd, err := d.dir(nodes, n.parent)
	if err == unix.EMFILE || err == unix.ENFILE {
		// The directories held take what the rest needs: let them go,
		// and try once more.
		d.release()
		dirfd, err = d.dir(nodes, n.parent)
	}
	if err != nil {
		return -1, unix.Stat_t{}, &os.PathError{Op: "open", Path: string(n.name), Err: err}
	}
	return openAt(dirfd, string(n.name), string(n.name), flags, is)
}

// dir returns a descriptor of directory node idx, held in d.
func (d *deepDirs) dir(nodes *nodeList, idx int32) (int, error) {
	// Up to a directory held, one reached up from a directory held (a
	// sibling's parent, say), or one that keeps its path; then down.
	var down []int32
	fd, held := -1, false
	for i, level := idx, 0; ; level++ {
		if f, ok := d.fds[i]; ok {
			fd, held = f, true
			break
		}
		if level <= maxUp {
			if f, ok := d.up(nodes, i); ok {
				d.hold(i, f)
				fd, held = f, true
				break
			}
		}
		nd := nodes.at(i)
		if nd.path != "" || nd.parent < 0 {
			dirfd, rest, err := descend(nd.path)
			if err != nil {
				return -1, err
			}
			fd, err = unix.Openat(dirfd, rest, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
			if dirfd != unix.AT_FDCWD {
				unix.Close(dirfd)
			}
			if err != nil {
				return -1, err
			}
			d.opens++
			break
		}
		down = append(down, i)
		i = nd.parent
	}
	for k := len(down) - 1; k >= 0; k-- {
		next, err := unix.Openat(fd, string(nodes.at(down[k]).name), unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if !held {
			unix.Close(fd)
		}
		if err != nil {
			return -1, err
		}
		d.opens++
		fd, held = next, false
	}
	if !held {
		d.hold(idx, fd)
	}
	return fd, nil
}

// maxUp is how far above a directory held dir looks for the one wanted.
const maxUp = 64

// up opens directory node idx as the parent, or the parent's parent..., of
// a directory held, the nearest, if one is at most maxUp levels below it:
// the reads also go up the tree (they are in path order within groups of
// files alike, see pathOrder). It must be the directory the scan listed.
func (d *deepDirs) up(nodes *nodeList, idx int32) (int, bool) {
	from, levels := int32(-1), maxUp+1
	for c := range d.fds {
		i := c
		for k := 1; k < levels && i >= 0; k++ {
			i = nodes.at(i).parent
			if i == idx {
				from, levels = c, k
				break
			}
		}
	}
	if from < 0 {
		return -1, false
	}
	dots := strings.Repeat("../", levels)
	fd, err := unix.Openat(d.fds[from], dots[:len(dots)-1], unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, false
	}
	d.opens++
	var st unix.Stat_t
	if n := nodes.at(idx); unix.Fstat(fd, &st) != nil || st.Dev != n.dev || st.Ino != n.ino {
		unix.Close(fd) // moved since the scan: go down to it instead
		return -1, false
	}
	return fd, true
}

// hold keeps fd as directory node idx's, letting the oldest go past
// d.max.
func (d *deepDirs) hold(idx int32, fd int) {
	if d.fds == nil {
		d.fds = map[int32]int{}
	}
	if d.max == 0 {
		d.max = maxDeepDirs
		var lim unix.Rlimit
		if unix.Getrlimit(unix.RLIMIT_NOFILE, &lim) == nil {
			d.max = max(1, min(maxDeepDirs, int(lim.Cur/8)))
		}
	}
	if len(d.order) >= d.max {
		old := d.order[0]
		unix.Close(d.fds[old])
		delete(d.fds, old)
		d.order = slices.Delete(d.order, 0, 1)
	}
	d.fds[idx] = fd
	d.order = append(d.order, idx)
}

// close lets every directory go.
func (d *deepDirs) close() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.release()
}

// release closes the directories held; d.mu is held.
func (d *deepDirs) release() {
	for _, fd := range d.fds {
		unix.Close(fd)
	}
	d.fds, d.order = nil, nil
}
