package format

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"golang.org/x/sys/unix"
)

// LockName is the lock file of the archive called base while a create, a
// repair or a `recovery add` writes it: two of them at once would each
// rename their volumes into place, and could leave a set mixing the two
// archives (or parity over another archive), both reporting success. The
// lock is flock(2)'s, held on the open file: a process that dies releases
// it, and the file it leaves behind locks nothing.
func LockName(base string) string { return base + ".arcpack-lock" }

// LockArchive takes the lock of the archive called base, or fails at once
// when another process holds it. unlock removes the file and releases the
// lock.
func LockArchive(base string) (unlock func(), err error) {
	name := LockName(base)
	for {
		// Read-only, so that a file another user left behind (in a
		// shared directory) can be locked too; no symlink followed.
		f, err := os.OpenFile(name, os.O_RDONLY|os.O_CREATE|unix.O_NOFOLLOW, 0o644)
		if errors.Is(err, fs.ErrPermission) {
			// Another user's file in a sticky directory, where
			// fs.protected_regular refuses O_CREAT on it.
			f, err = os.OpenFile(name, os.O_RDONLY|unix.O_NOFOLLOW, 0)
		}
		if err != nil {
			return nil, fmt.Errorf("lock %s: %w (if no arcpack is writing this archive, remove the file)", name, err)
		}
		// Readable by all whatever the umask, so that other users can
		// lock it too (a file not ours keeps its mode).
		_ = f.Chmod(0o644)
		release := func() {
			os.Remove(name)
			f.Close()
		}
		fd := int(f.Fd())
		if err := unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB); errors.Is(err, unix.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("another arcpack is writing this archive now (it holds %s)", name)
		} else if err != nil {
			// A filesystem without flock (some network ones): the
			// writer goes on unguarded, as before there was a lock.
			return release, nil
		}
		// A writer finishing meanwhile removes the file it held: the lock
		// counts only on the file that is still at name.
		var held, now unix.Stat_t
		if unix.Fstat(fd, &held) == nil && unix.Stat(name, &now) == nil && held.Dev == now.Dev && held.Ino == now.Ino {
			return release, nil
		}
		f.Close()
	}
}
