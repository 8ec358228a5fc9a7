package fs

import (
	"bytes"
	"errors"
	"math"
	"os"
	"runtime"
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
// fdinfo (kernels of 2025 on; where it is not found, stores go through
// go-fuse), and keeps a duplicate of its own, so that the number stays
// that file until close, whatever go-fuse does with its own: close waits
// for the stores under way.
type conn struct {
	mu sync.RWMutex
	fd int // valid where open
	// open: fd is the duplicate; false until connect finds the
	// connection, and again after close.
	open bool
	// stores: messages written, for tests
	stores atomic.Int64
}

// errNoConn: no open file of the process is the mount's connection.
var errNoConn = errors.New("no /dev/fuse file of this mount among the open files")

// connect finds the process's /dev/fuse file whose connection is the
// mount with device number dev (st_dev of its root) and keeps a
// duplicate of it.
func (c *conn) connect(dev uint64) error {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return err
	}
	// The kernel names a connection by its superblock's device number in
	// the kernel's own encoding.
	want := uint64(unix.Major(dev))<<20 | uint64(unix.Minor(dev))
	for _, e := range ents {
		n, err := strconv.Atoi(e.Name())
		if err != nil || !isConn(n, nil) {
			continue
		}
		d, err := unix.FcntlInt(uintptr(n), unix.F_DUPFD_CLOEXEC, 0)
		if err != nil {
			continue
		}
		// Asked again of the duplicate: n may have been closed and its
		// number reused in between.
		if isConn(d, &want) {
			c.mu.Lock()
			defer c.mu.Unlock()
			if c.open {
				unix.Close(c.fd)
			}
			c.fd, c.open = d, true
			return nil
		}
		unix.Close(d)
	}
	return errNoConn
}

// isConn says whether fd is a /dev/fuse file and, with want, whether its
// connection is *want.
func isConn(fd int, want *uint64) bool {
	p := "/proc/self/fd/" + strconv.Itoa(fd)
	if t, err := os.Readlink(p); err != nil || t != "/dev/fuse" {
		return false
	}
	if want == nil {
		return true
	}
	info, err := os.ReadFile("/proc/self/fdinfo/" + strconv.Itoa(fd))
	if err != nil {
		return false
	}
	for line := range bytes.SplitSeq(info, []byte("\n")) {
		if v, ok := bytes.CutPrefix(line, []byte("fuse_connection:")); ok {
			c, err := strconv.ParseUint(string(bytes.TrimSpace(v)), 10, 64)
			return err == nil && c == *want
		}
	}
	return false
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
	c.mu.RLock()
	defer c.mu.RUnlock()
	if !c.open {
		return 0, false
	}
	if len(data) > math.MaxUint32-int(unsafe.Sizeof(storeOut{})) {
		return syscall.EINVAL, true // the message's length is 32 bits
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
	_, _, e := unix.Syscall(unix.SYS_WRITEV, uintptr(c.fd), uintptr(unsafe.Pointer(&iov[0])), uintptr(n))
	runtime.KeepAlive(&h)
	runtime.KeepAlive(data)
	c.stores.Add(1)
	return e, true
}

// close closes c's duplicate once the stores under way are done; later
// stores report no connection.
func (c *conn) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.open {
		unix.Close(c.fd)
		c.open = false
	}
}
