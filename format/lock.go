package format

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// LockName is the lock file of the archive called base while a create, a
// repair or a `recovery add` writes it: two of them at once would each
// rename their volumes into place, and could leave a set mixing the two
// archives (or parity over another archive), both reporting success. The
// lock is flock(2)'s, held on the open file: a process that dies releases
// it, and the file it leaves behind locks nothing.
func LockName(base string) string { return base + ".arcpack-lock" }

// Leftovers is what LockArchive found of a writer of the archive that was
// killed: the names an interrupted commit (Commit) had yet to give, given
// now (Finished), and the temporary files it left, removed (Removed).
type Leftovers struct {
	Finished []string
	Removed  []string
}

// LockArchive takes the lock of the archive called base, or fails at once
// when another process holds it. unlock removes the file and releases the
// lock. Holding it, it first finishes the renames of a commit that a
// writer of this archive was killed in (finishCommit), then removes the
// temporary files such a writer left (removeStaleTemps: a volume's size
// each, at times), and says what it did. A journal it cannot read, or a
// rename it cannot do, is an error, with the lock released.
func LockArchive(base string) (unlock func(), left Leftovers, err error) {
	unlock, guarded, err := lockArchive(base)
	if err != nil || !guarded {
		return unlock, left, err
	}
	if left.Finished, err = finishCommit(base); err != nil {
		unlock()
		return nil, left, err
	}
	left.Removed = removeStaleTemps(base)
	return unlock, left, nil
}

// NewTempTag is a new writer's tag for its temporary files: 12 random
// lowercase hex digits (TempName).
func NewTempTag() string {
	var t [6]byte
	rand.Read(t[:]) // never fails (crypto/rand)
	return hex.EncodeToString(t[:])
}

// TempName is the name the writer tagged tag (NewTempTag) writes the
// volume or recovery volume final under until it is complete: final,
// ".tmp-", the tag. A reader takes it for no volume, and the next holder
// of the archive's lock knows it for a dead writer's (isTempOf).
func TempName(final, tag string) string { return final + ".tmp-" + tag }

// removeStaleTemps removes the files named like the temporary volumes of
// a writer of the archive called base (NAME.003.tmp-1a2b3c4d5e6f,
// NAME.r01.tmp-…: TempName) and returns the names of those removed. Only
// the holder of the archive's lock writes such files, so with the lock
// held they are a dead writer's.
func removeStaleTemps(base string) []string {
	dir, prefix, ents, _ := beside(base)
	var removed []string
	for _, e := range ents {
		if isTempOf(prefix, e.Name()) && os.Remove(filepath.Join(dir, e.Name())) == nil {
			removed = append(removed, base+strings.TrimPrefix(e.Name(), prefix))
		}
	}
	return removed
}

// isTempOf reports whether name is a temporary volume of the archive
// called prefix (TempName): a volume's or a recovery volume's name, then
// ".tmp-" and the 12 lowercase hex digits of the writer's tag.
func isTempOf(prefix, name string) bool {
	// The last ".tmp-": the archive's own name may hold one.
	i := strings.LastIndex(name, ".tmp-")
	if i < 0 {
		return false
	}
	vol, tag := name[:i], name[i+len(".tmp-"):]
	if len(tag) != 12 || strings.Trim(tag, "0123456789abcdef") != "" {
		return false
	}
	return isArchiveName(prefix, vol)
}

// lockArchive is LockArchive without the clean-up; guarded is false on a
// filesystem without flock, where the lock guards nothing.
func lockArchive(base string) (unlock func(), guarded bool, err error) {
	name := LockName(base)
	for {
		// Read-only, so that a file another user left behind (in a
		// shared directory) can be locked too; no symlink followed.
		f, err := os.OpenFile(name, os.O_RDONLY|os.O_CREATE|unix.O_NOFOLLOW, 0o644)
		if errors.Is(err, fs.ErrPermission) {
			// Another user's file in a sticky directory, where
			// fs.protected_regular refuses O_CREAT on it.
			f2, err2 := os.OpenFile(name, os.O_RDONLY|unix.O_NOFOLLOW, 0)
			if !errors.Is(err2, fs.ErrNotExist) {
				f, err = f2, err2
			} // else: no file, a directory this user may not write
		}
		if err != nil {
			if _, serr := os.Lstat(name); serr != nil { // no file: the directory refused it
				return nil, false, fmt.Errorf("lock %s: %w", name, err)
			}
			return nil, false, fmt.Errorf("lock %s: %w (if no arcpack is writing this archive, remove the file)", name, err)
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
			return nil, false, fmt.Errorf("another arcpack is writing this archive now (it holds %s)", name)
		} else if err != nil {
			// A filesystem without flock (some network ones): the
			// writer goes on unguarded, as before there was a lock.
			return release, false, nil
		}
		// A writer finishing meanwhile removes the file it held: the lock
		// counts only on the file that is still at name.
		var held, now unix.Stat_t
		if unix.Fstat(fd, &held) == nil && unix.Stat(name, &now) == nil && held.Dev == now.Dev && held.Ino == now.Ino {
			return release, true, nil
		}
		f.Close()
	}
}
