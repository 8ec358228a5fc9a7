package fs

import (
	"bytes"
	"errors"
	"math"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// A conn writes FUSE_NOTIFY_STORE messages to the mount's /dev/fuse
// connection itself, one writev of a header on the stack and the data.
// go-fuse's InodeNotifyStoreCache builds a request for each (three slices
// and a map of notification codes) and writes it through the file's
// RawConn. A cold tar of the Go toolchains tree stores about 44,000
// times; writing them here took arcmount's CPU time in it from 1.88 and
// 1.94 s to 1.77 and 1.73 s (medians of two sets of cold tars taking
// turns, bench/README.md).
//
// The connection is go-fuse's file. connect finds it among the process's
// open files by the connection number the kernel shows in each one's
// fdinfo (recent kernels, 6.18 here; where it is not found, stores go
// through go-fuse), and keeps a duplicate of its own, so that the number
// stays that file for as long as a store may write to it, whatever
// go-fuse does with its own.
//
// close does not wait for the stores under way: where go-fuse stopped
// reading with the mount still there, a store may wait in the kernel for
// a page that a READ nobody will answer holds, until an unmount ends the
// connection (which our duplicate keeps alive meanwhile). The last store
// out closes the duplicate instead.
type conn struct {
	fd int // set before refs first leaves 0
	// refs: the stores under way, plus one for the conn itself from
	// connect to close, and closing once close was called; 0: none
	// found.
	refs atomic.Int64
	// mu orders connect's end and close (stores take no lock); closed:
	// close was called.
	mu     sync.Mutex
	closed bool
	// stores: messages written, successfully or not, for tests
	stores atomic.Int64
}

// errNoConn: no open file of the process is the mount's connection.
var errNoConn = errors.New("no live /dev/fuse file of this mount among the open files")

// connect finds the process's /dev/fuse file whose connection is the
// mount with device number dev (st_dev of its root) and keeps a
// duplicate of it. Call it once, before close.
func (c *conn) connect(dev uint64) error {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return err
	}
	want := connID(dev)
	for _, e := range ents {
		n, err := strconv.Atoi(e.Name())
		if err != nil || !isFuseFile(n) {
			continue
		}
		d, err := unix.FcntlInt(uintptr(n), unix.F_DUPFD_CLOEXEC, 0)
		if err != nil {
			continue
		}
		// Asked again of the duplicate: n may have been closed and its
		// number reused in between.
		if isFuseFile(d) && connOf(d) == want && live(d) {
			c.mu.Lock()
			defer c.mu.Unlock()
			if c.closed || c.refs.Load() != 0 {
				unix.Close(d) // closed already, or connected twice
				return nil
			}
			c.fd = d
			c.refs.Store(1)
			return nil
		}
		unix.Close(d)
	}
	return errNoConn
}

// connID is the number the kernel names the connection of the mount with
// device number dev (st_dev of its root) by: that device number in the
// kernel's own encoding.
func connID(dev uint64) uint64 {
	return uint64(unix.Major(dev))<<20 | uint64(unix.Minor(dev))
}

// isFuseFile says whether fd is a /dev/fuse file.
func isFuseFile(fd int) bool {
	t, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(fd))
	return err == nil && t == "/dev/fuse"
}

// connOf is the connection number the kernel shows in /dev/fuse file fd's
// fdinfo; 0 where it shows none (no connection is numbered 0: that
// device number is never given out).
func connOf(fd int) uint64 {
	info, err := os.ReadFile("/proc/self/fdinfo/" + strconv.Itoa(fd))
	if err != nil {
		return 0
	}
	for line := range bytes.SplitSeq(info, []byte("\n")) {
		if v, ok := bytes.CutPrefix(line, []byte("fuse_connection:")); ok {
			c, _ := strconv.ParseUint(string(bytes.TrimSpace(v)), 10, 64)
			return c
		}
	}
	return 0
}

// live says whether the connection of /dev/fuse file fd has a mount. The
// number may be that of an earlier mount in this process, unmounted,
// whose file go-fuse has not closed yet (a new mount often takes the
// number again). A live mount always has its root, and an empty store to
// it finds it: it succeeds, or fails with EINVAL where the kernel stores
// into regular files only (6.18 here); on a dead connection it finds no
// inode (ENOENT).
func live(fd int) bool {
	e := writeStore(fd, nodeID(0), 0, nil)
	return e == 0 || e == syscall.EINVAL
}

// storeOut is a FUSE_NOTIFY_STORE message's header: fuse_out_header
// (unique 0, the notification code where a reply has its error) and
// fuse_notify_store_out.
type storeOut struct {
	len    uint32
	code   int32
	unique uint64
	node   uint64
	off    uint64
	size   uint32
	_      uint32
}

const notifyStore = 4 // FUSE_NOTIFY_STORE

// store writes data into the kernel's cache of node at off; ok is false
// where c has no connection (the caller stores through go-fuse).
func (c *conn) store(node uint64, off int64, data []byte) (errno syscall.Errno, ok bool) {
	if !c.acquire() {
		return 0, false
	}
	defer c.release()
	c.stores.Add(1)
	return writeStore(c.fd, node, off, data), true
}

// writeStore writes one FUSE_NOTIFY_STORE message to /dev/fuse file fd.
func writeStore(fd int, node uint64, off int64, data []byte) syscall.Errno {
	if len(data) > math.MaxUint32-int(unsafe.Sizeof(storeOut{})) {
		return syscall.EINVAL // the message's length is 32 bits
	}
	h := storeOut{code: notifyStore, node: node, off: uint64(off), size: uint32(len(data))}
	h.len = uint32(unsafe.Sizeof(h)) + h.size
	iov := [2]unix.Iovec{{Base: (*byte)(unsafe.Pointer(&h))}, {Base: unsafe.SliceData(data)}}
	iov[0].SetLen(int(unsafe.Sizeof(h)))
	iov[1].SetLen(len(data))
	n := len(iov)
	if len(data) == 0 {
		n = 1
	}
	for {
		// As the syscall package passes a message whose iovecs are on
		// the stack (sendmsg): the stack does not move during the call.
		_, _, e := unix.Syscall(unix.SYS_WRITEV, uintptr(fd), uintptr(unsafe.Pointer(&iov[0])), uintptr(n))
		if e != syscall.EINTR {
			return e
		}
	}
}

// closing is the bit of conn.refs that close sets.
const closing = 1 << 62

// acquire takes a reference for a store; false: no connection.
func (c *conn) acquire() bool {
	for {
		r := c.refs.Load()
		if r == 0 || r&closing != 0 {
			return false
		}
		if c.refs.CompareAndSwap(r, r+1) {
			return true
		}
	}
}

// release drops a reference; the last after close closes the
// duplicate.
func (c *conn) release() {
	if c.refs.Add(-1) == closing {
		unix.Close(c.fd)
	}
}

// close gives up the conn's own reference: later stores find no
// connection, and the duplicate is closed once those under way are out.
func (c *conn) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.closed && c.refs.Load() > 0 {
		// The conn's own reference goes as closing comes.
		if c.refs.Add(closing-1) == closing {
			unix.Close(c.fd)
		}
	}
	c.closed = true
}
