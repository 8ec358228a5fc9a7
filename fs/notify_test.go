package fs

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"strconv"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// shownConn reads the connection number this kernel shows in the fdinfo
// of /dev/fuse file fd; ok is false where it shows none, or where fd was
// closed meanwhile (the last store out closes the connection's duplicate,
// perhaps just after /proc/self/fd listed it). The tests read it
// themselves, not through connOf, so that what they skip for does not
// depend on the code they test.
func shownConn(t *testing.T, fd int) (uint64, bool) {
	t.Helper()
	info, err := os.ReadFile("/proc/self/fdinfo/" + strconv.Itoa(fd))
	if errors.Is(err, fs.ErrNotExist) {
		return 0, false
	}
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

// fuseFiles lists the process's /dev/fuse files and the connection number
// each shows (ok false where the kernel shows none).
func fuseFiles(t *testing.T) map[int]uint64 {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	files := map[int]uint64{}
	for _, e := range ents {
		n, err := strconv.Atoi(e.Name())
		if l, lerr := os.Readlink("/proc/self/fd/" + e.Name()); err != nil || lerr != nil || l != "/dev/fuse" {
			continue
		}
		if c, ok := shownConn(t, n); ok {
			files[n] = c
		}
	}
	return files
}

// skipUnlessNamed skips where no /dev/fuse file of the process shows its
// connection: a kernel without it, where stores go through go-fuse.
func skipUnlessNamed(t *testing.T) {
	t.Helper()
	if len(fuseFiles(t)) == 0 {
		t.Skip("this kernel shows no connection in a /dev/fuse file's fdinfo")
	}
}

// kernelConn is the connection number the kernel gives the mount at dir.
func kernelConn(t *testing.T, dir string) uint64 {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(dir, &st); err != nil {
		t.Fatal(err)
	}
	return connID(st.Dev)
}

// connFD is c's duplicate; ok is false where c has none.
func connFD(c *conn) (fd int, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := c.refs.Load()
	return c.fd, r > 0 && r&closing == 0
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
	skipUnlessNamed(t)
	for i, m := range ms {
		fd, ok := connFD(&m.fsys.conn)
		if !ok {
			t.Fatalf("mount %d found no connection of its own; the process's /dev/fuse files: %v", i, fuseFiles(t))
		}
		got, ok := shownConn(t, fd)
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

// A file of an earlier mount, unmounted, that is still open (go-fuse
// closes its own after Wait returns) shows the number a new mount often
// takes again: the new mount must not take that dead connection for its
// own.
func TestANewMountDoesNotTakeTheDeadConnectionOfAnEarlierOne(t *testing.T) {
	es := walkTree()
	dir, srv, fsys := mountServer(t, build(es), Options{})
	skipUnlessNamed(t)
	fd, ok := connFD(&fsys.conn)
	if !ok {
		t.Fatal("no connection found")
	}
	old := kernelConn(t, dir)
	var st syscall.Stat_t
	if err := syscall.Stat(dir, &st); err != nil {
		t.Fatal(err)
	}
	dead, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(dead)
	if err := srv.Unmount(); err != nil {
		t.Fatal(err)
	}
	srv.Wait()
	// Only the dead file shows the number now.
	var c conn
	if err := c.connect(st.Dev); err == nil {
		c.close()
		t.Fatal("connected to the connection of an unmounted mount")
	}

	dir2, fsys2 := mountFS(t, build(es), Options{})
	if kernelConn(t, dir2) != old {
		t.Skipf("the new mount took another number (%d, the old %d)", kernelConn(t, dir2), old)
	}
	fd2, ok := connFD(&fsys2.conn)
	if !ok {
		t.Fatal("the new mount found no connection")
	}
	if !live(fd2) {
		t.Fatalf("the new mount took a dead connection: an empty store to its root says %v", writeStore(fd2, nodeID(0), 0, nil))
	}
	if live(dead) {
		t.Errorf("the old mount's connection looks live (an empty store to its root says %v): the test shows nothing", writeStore(dead, nodeID(0), 0, nil))
	}
	walk(t, dir2, es, "")
	waitPushIdle(fsys2)
	if fsys2.push.stored.Load() == 0 {
		t.Error("nothing stored")
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
// would be one more with every mount, and would keep its connection alive.
func TestTheEndOfTheMountClosesTheConnection(t *testing.T) {
	dir, srv, fsys := mountServer(t, build(walkTree()), Options{})
	skipUnlessNamed(t)
	fd, ok := connFD(&fsys.conn)
	if !ok {
		t.Fatal("no connection found")
	}
	conn := kernelConn(t, dir)
	if err := srv.Unmount(); err != nil {
		t.Fatalf("unmount %s: %v", dir, err)
	}
	srv.Wait()
	if _, ok := connFD(&fsys.conn); ok {
		t.Fatal("still open after the mount ended")
	}
	if c, open := fuseFiles(t)[fd]; open && c == conn {
		t.Errorf("fd %d still open on the ended mount's connection", fd)
	}
}

// close does not wait for a store under way (it may wait in the kernel
// for a READ that nobody answers any more): the store that ends last
// closes the file.
func TestCloseLeavesTheFileToTheLastStore(t *testing.T) {
	fd, err := unix.Open("/dev/null", unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	var c conn
	c.fd = fd
	c.refs.Store(1)
	if !c.acquire() { // a store under way
		t.Fatal("no connection")
	}
	c.close()
	if c.acquire() {
		t.Fatal("a store after close got the connection")
	}
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != nil {
		t.Fatalf("closed under the store under way: %v", err)
	}
	c.release()
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != unix.EBADF {
		t.Fatalf("the last store out left the file open: %v", err)
	}
	c.close() // again: nothing
}
