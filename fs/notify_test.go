package fs

import (
	"bytes"
	"os"
	"strconv"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// connOf reads the connection number this kernel shows in the fdinfo of
// /dev/fuse file fd; ok is false where it shows none.
func connOf(t *testing.T, fd int) (uint64, bool) {
	t.Helper()
	info, err := os.ReadFile("/proc/self/fdinfo/" + strconv.Itoa(fd))
	if err != nil {
		t.Fatal(err)
	}
	for line := range bytes.SplitSeq(info, []byte("\n")) {
		if v, ok := bytes.CutPrefix(line, []byte("fuse_connection:")); ok {
			c, err := strconv.ParseUint(string(bytes.TrimSpace(v)), 10, 64)
			return c, err == nil
		}
	}
	return 0, false
}

// kernelConn is the connection number the kernel gives the mount at dir.
func kernelConn(t *testing.T, dir string) uint64 {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(dir, &st); err != nil {
		t.Fatal(err)
	}
	return uint64(unix.Major(st.Dev))<<20 | uint64(unix.Minor(st.Dev))
}

// Two mounts in one process: each stores through a file of its own
// connection, and the walk reads the right bytes through it.
func TestStoresGoStraightToEachMountsOwnConnection(t *testing.T) {
	es := walkTree()
	type mounted struct {
		dir  string
		fsys *FS
	}
	var ms []mounted
	for range 2 {
		dir, fsys := mountFS(t, build(es), Options{})
		ms = append(ms, mounted{dir, fsys})
	}
	for i, m := range ms {
		c := &m.fsys.conn
		c.mu.RLock()
		open, fd := c.open, c.fd
		c.mu.RUnlock()
		if !open {
			t.Skip("no /dev/fuse file of the mount found by its connection (a kernel whose fdinfo does not name it?)")
		}
		got, ok := connOf(t, fd)
		if want := kernelConn(t, m.dir); !ok || got != want {
			t.Fatalf("mount %d stores through connection %d (shown: %v), want its own, %d", i, got, ok, want)
		}
	}
	for _, m := range ms {
		walk(t, m.dir, es, "")
		waitPushIdle(m.fsys)
		if n := m.fsys.conn.stores.Load(); n == 0 || m.fsys.push.stored.Load() == 0 {
			t.Errorf("%s: %d stores through the connection, %d bytes stored: want some", m.dir, n, m.fsys.push.stored.Load())
		}
	}
}

// Without the connection (a kernel that does not name it, or after
// close) the push stores through go-fuse, and the walk reads the same.
func TestStoresGoThroughGoFuseWithoutTheConnection(t *testing.T) {
	es := walkTree()
	dir, fsys := mountFS(t, build(es), Options{})
	fsys.conn.close()
	walk(t, dir, es, "")
	waitPushIdle(fsys)
	if fsys.push.stored.Load() == 0 {
		t.Error("nothing stored")
	}
	if n := fsys.conn.stores.Load(); n != 0 {
		t.Errorf("%d stores through a closed connection", n)
	}
	if _, ok := fsys.conn.store(1, 0, make([]byte, 4096)); ok {
		t.Error("a closed connection took a store")
	}
}

// The server's end closes the duplicate: a file of the process left open
// would be one more with every mount.
func TestTheEndOfTheMountClosesTheConnection(t *testing.T) {
	dir, srv, fsys := mountServer(t, build(walkTree()), Options{})
	fsys.conn.mu.RLock()
	open, fd := fsys.conn.open, fsys.conn.fd
	fsys.conn.mu.RUnlock()
	if !open {
		t.Skip("no /dev/fuse file of the mount found by its connection")
	}
	conn := kernelConn(t, dir)
	if err := srv.Unmount(); err != nil {
		t.Fatalf("unmount %s: %v", dir, err)
	}
	srv.Wait()
	if fsys.conn.open {
		t.Fatal("still open after the mount ended")
	}
	if l, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(fd)); err == nil && l == "/dev/fuse" {
		if c, ok := connOf(t, fd); ok && c == conn {
			t.Errorf("fd %d still open on the ended mount's connection", fd)
		}
	}
}
