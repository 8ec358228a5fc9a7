package fs

import (
	"sync"

	"arc/format"
)

// A READDIRPLUS reply may give each entry's node (attributes, a lookup
// the kernel then holds) or only its name and type (node ID 0). With
// nodes, tar, cp, rsync, du and `ls -l`, which stat every entry, pay no
// LOOKUP for them; but the kernel builds an inode and a dentry for every
// entry so given, which a program that only reads names (find, fd, ls
// without colours) never uses: find over a million files spent 3.9 s of
// its 5.2 s in the kernel doing that (bench/README.md).
//
// So listings give nodes by default, and each program (the thread named
// in the request) is watched: once in a while the first entry of one of
// its listings goes out without a node (a probe; only where that entry is
// not a directory). A program that stats what it lists sends a LOOKUP for
// that entry before it does anything else with the listing (tar, cp, du
// and rsync stat in listing order), and keeps getting nodes, having paid
// one round trip; one that lists its next directory without having
// looked it up gets names only from then on, until it looks up a
// non-directory of the listing it got last (it began to stat: nodes
// again).
// Subdirectories do not count: a walk looks them up to go in. Push-ahead's
// own listings always give nodes (it stores into them).
const (
	// probeEvery: a program's listings between probes.
	probeEvery = 64
	// maxCallers bounds the programs watched; past it all are forgotten.
	maxCallers = 256
)

// listMode is what a READDIRPLUS reply gives the kernel.
type listMode uint8

const (
	withNodes listMode = iota // every entry's node
	namesOnly                 // no entry's node
	probing                   // every node but the first entry's
)

// lister is what plusMode knows of one program.
type lister struct {
	listings int    // listings begun since the last probe
	names    bool   // it gets names only
	probe    uint32 // the directory probed, whose next look-up decides (noProbe: none)
	dir      uint32 // the directory it lists now, and how (a listing takes several requests)
	dirMode  listMode
}

const noProbe = ^uint32(0)

// plusMode decides, per program, whether listings give nodes.
type plusMode struct {
	mu      sync.Mutex
	callers map[uint32]*lister
}

// mode says what the READDIRPLUS of directory dir at offset off, asked by
// thread caller, gives.
func (m *plusMode) mode(x *format.Index, caller, dir uint32, off uint64) listMode {
	m.mu.Lock()
	defer m.mu.Unlock()
	l := m.callers[caller]
	if l == nil {
		if m.callers == nil || len(m.callers) >= maxCallers {
			m.callers = map[uint32]*lister{}
		}
		l = &lister{probe: noProbe, dir: noProbe}
		m.callers[caller] = l
	}
	if off > 0 {
		if l.dir == dir {
			return l.dirMode // the rest of a listing, as it began
		}
		if l.names {
			return namesOnly
		}
		return withNodes
	}
	if l.probe != noProbe && l.probe != dir {
		// It went on to another directory without looking up the
		// probed entry: it reads names only.
		l.names, l.probe = true, noProbe
	}
	l.dir, l.dirMode = dir, withNodes
	if l.names {
		l.dirMode = namesOnly
	} else if l.listings++; l.listings >= probeEvery && probeable(x, dir) {
		l.listings, l.probe, l.dirMode = 0, dir, probing
	}
	return l.dirMode
}

// probeable says whether directory dir may be probed: its first entry is
// not a directory.
func probeable(x *format.Index, dir uint32) bool {
	s, e := x.Children(dir)
	return s < e && !x.IsDir(x.Dirents.Inode[s])
}

// lookedUp is told of thread caller's LOOKUP of inode ino in directory
// dir: an entry of a listing that came without nodes, looked up, means
// the program stats what it lists.
func (m *plusMode) lookedUp(x *format.Index, caller, dir, ino uint32) {
	if x.IsDir(ino) {
		return // a walk goes into its subdirectories either way
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	l := m.callers[caller]
	if l == nil {
		return
	}
	if l.probe == dir || l.names && l.dir == dir {
		l.names, l.probe = false, noProbe
	}
}
