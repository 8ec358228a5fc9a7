package format

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// A commit gives finished files their names: a writer's temporary volumes
// become NAME.001, NAME.002, …; a repair's rebuilt volumes replace the
// damaged ones, and a volume found under another volume's name takes its
// own. Renamed one by one, a crash part way through would leave a set
// mixing old and new volumes, and where a repair swaps two volumes, the
// only copy of one under a temporary name that the next holder of the
// lock removes as a dead writer's (LockArchive). So a commit first writes
// the renames it is about to do into a journal beside the archive
// (CommitName), durably, and removes it once they are all done; the next
// holder of the lock finds a journal left behind and does what it says
// is not yet done before anything else.

// CommitName is the journal of a commit in progress of the archive called
// base (Commit).
func CommitName(base string) string { return base + ".arcpack-commit" }

// Rename is one rename of a commit: From takes the name To. Both lie in
// the archive's directory.
type Rename struct{ From, To string }

// ErrCommitUnfinished is in the error of a commit that stopped part way
// through its renames: its journal stays, and so must the files it names,
// for the next holder of the archive's lock to finish (LockArchive).
var ErrCommitUnfinished = errors.New("the next arcpack that writes this archive finishes the renames")

// commitMagic is the journal's first line; commitEnd its last.
const (
	commitMagic = "arcpack commit 1"
	commitEnd   = "end"
)

// Commit does renames, in order, with the lock of the archive called base
// held (LockArchive): it journals them first, so that if it is killed
// part way through, the next holder of the lock finishes them. Every
// From must exist. renamed reports whether every rename was done: an
// error with renamed true is one of making them durable (the directory's
// sync), or of removing the journal (the next holder of the lock then
// finds nothing left to do). An error with renamed false is
// ErrCommitUnfinished where a rename failed, or the journal could be
// neither made durable nor removed: the journal stays, and the files it
// names must too; otherwise none was done, and no journal stays.
func Commit(base string, renames []Rename) (renamed bool, err error) {
	return commit(base, renames, -1, SyncDir)
}

// commit is Commit stopping, as if killed, after stop renames (stop < 0:
// never), with syncJournal making the journal durable (SyncDir; a test's
// fails).
func commit(base string, renames []Rename, stop int, syncJournal func(dir string) error) (renamed bool, err error) {
	dir := filepath.Dir(base)
	var j bytes.Buffer
	j.WriteString(commitMagic + "\n")
	for _, r := range renames {
		if filepath.Dir(r.From) != dir || filepath.Dir(r.To) != dir {
			return false, fmt.Errorf("internal error: commit of %s renames %s to %s, outside its directory", base, r.From, r.To)
		}
		var st unix.Stat_t
		if err := unix.Lstat(r.From, &st); err != nil {
			return false, fmt.Errorf("commit %s: %w", r.From, err)
		}
		// The file's identity: the next holder of the lock renames only
		// the file that was there, never one made later under its name,
		// by its size and modification time (finishCommit: the device
		// and inode numbers are written, not compared).
		id := fileID{uint64(st.Dev), uint64(st.Ino), st.Size, st.Mtim.Nano()}
		fmt.Fprintf(&j, "%d %d %d %d %s %s\n", id.dev, id.ino, id.size, id.mtime,
			strconv.Quote(filepath.Base(r.From)), strconv.Quote(filepath.Base(r.To)))
	}
	j.WriteString(commitEnd + "\n")
	journal := CommitName(base)
	if err := writeSynced(journal+".new", j.Bytes()); err != nil {
		return false, err
	}
	if err := os.Rename(journal+".new", journal); err != nil {
		os.Remove(journal + ".new")
		return false, fmt.Errorf("commit %s: %w", base, err)
	}
	// The journal is on the disk before the first rename. If it cannot
	// be, the commit renames nothing, and its journal goes: its caller
	// removes the temporary files, and the next holder of the lock would
	// do the other renames alone. A journal that stays keeps the files
	// too, for the next holder to do every rename.
	if err := syncJournal(dir); err != nil {
		if rerr := os.Remove(journal); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
			return false, fmt.Errorf("%w; remove %s: %w (%w)", err, journal, rerr, ErrCommitUnfinished)
		}
		return false, err
	}
	for i, r := range renames {
		if i == stop {
			return false, nil
		}
		if err := os.Rename(r.From, r.To); err != nil {
			return false, fmt.Errorf("rename %s: %w (%w)", r.From, err, ErrCommitUnfinished)
		}
	}
	if stop == len(renames) {
		return false, nil // killed before the journal was removed
	}
	if err := SyncDir(dir); err != nil {
		return true, err
	}
	if err := os.Remove(journal); err != nil {
		return true, fmt.Errorf("commit %s: %w", base, err)
	}
	return true, nil
}

// writeSynced writes b to a new file name, on the disk when it returns.
func writeSynced(name string, b []byte) error {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|unix.O_NOFOLLOW, 0o644)
	if err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(name)
		return fmt.Errorf("write %s: %w", name, err)
	}
	return nil
}

// SyncDir flushes a directory's entries (renames, new names) to the disk.
// Filesystems that cannot sync a directory (EINVAL) are taken as done.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

// finishCommit does what the journal of an interrupted commit of the
// archive called base says is not yet done, and removes the journal. It
// returns the names it gave. A journal that cannot be read is an error
// that names it: the temporary files beside it may hold the only copy of
// a volume, and are left where they are.
func finishCommit(base string) (finished []string, err error) {
	journal := CommitName(base)
	// A journal not yet in place: its commit renamed nothing.
	os.Remove(journal + ".new")
	var jst unix.Stat_t
	if err := unix.Lstat(journal, &jst); errors.Is(err, unix.ENOENT) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("%s: %w", journal, err)
	}
	// Ours alone: one another user left (in a shared directory) would
	// have us rename our volumes over each other.
	if jst.Mode&unix.S_IFMT != unix.S_IFREG || int(jst.Uid) != os.Geteuid() {
		return nil, fmt.Errorf("%s, the journal of an interrupted commit: not a file of this user's (uid %d, not %d)%s", journal, jst.Uid, os.Geteuid(), journalLeft)
	}
	b, err := os.ReadFile(journal)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", journal, err)
	}
	renames, ids, err := parseJournal(b)
	if err != nil {
		return nil, fmt.Errorf("%s, the journal of an interrupted commit: %w%s", journal, err, journalLeft)
	}
	// Only the archive's own files, as a commit renames them: a journal
	// left by another user in a shared directory, or damaged, renames
	// nothing else beside it (the lock, the journal itself, another
	// archive's volumes, any file).
	prefix := filepath.Base(base)
	for i, r := range renames {
		if !isArchiveName(prefix, r.To) || !isArchiveName(prefix, r.From) && !isTempOf(prefix, r.From) {
			return nil, fmt.Errorf("%s, the journal of an interrupted commit: line %d renames %s to %s, not both the archive's%s",
				journal, i+2, strconv.Quote(r.From), strconv.Quote(r.To), journalLeft)
		}
	}
	dir := filepath.Dir(base)
	for i, r := range renames {
		from, to := filepath.Join(dir, r.From), filepath.Join(dir, r.To)
		// The size and the modification time tell the file the commit
		// meant from one made later under its name. Not the device and
		// inode numbers: after a crash they may be others for the same
		// file (a device number is given at mount, on btrfs, NFS, a disk
		// plugged in elsewhere; FAT and exFAT number inodes anew), and a
		// temporary file taken for another is removed as a dead
		// writer's, with the only copy of a volume it may hold.
		var st unix.Stat_t
		if err := unix.Lstat(from, &st); err != nil && !errors.Is(err, unix.ENOENT) {
			// Not known to be done: the file stays, and the journal.
			return finished, fmt.Errorf("finish the interrupted commit in %s: %s: %w", journal, from, err)
		} else if err != nil || st.Size != ids[i].size || st.Mtim.Nano() != ids[i].mtime {
			continue // done before the commit stopped
		}
		if err := os.Rename(from, to); err != nil {
			return finished, fmt.Errorf("finish the interrupted commit in %s: rename %s: %w", journal, from, err)
		}
		finished = append(finished, to)
	}
	if err := SyncDir(dir); err != nil {
		return finished, err
	}
	if err := os.Remove(journal); err != nil {
		return finished, fmt.Errorf("%s: %w", journal, err)
	}
	return finished, nil
}

// journalLeft ends the error of a journal finishCommit will not follow.
const journalLeft = "; it and the files it renames are left as they are (do its renames by hand, a line each: from, then to; removed, it gives its temporary files up to removal as a killed writer's)"

// isArchiveName reports whether name is a volume's or a recovery volume's
// of the archive whose base name is prefix.
func isArchiveName(prefix, name string) bool {
	b, _, ok := ParseVolumeName(name)
	if !ok {
		b, _, ok = ParseRecoveryName(name)
	}
	return ok && b == prefix
}

// fileID is a file's identity as the journal records it; only the size
// and the modification time are compared (finishCommit).
type fileID struct {
	dev, ino    uint64
	size, mtime int64
}

// parseJournal reads a commit's journal: its renames (base names) and the
// identity of each From.
func parseJournal(b []byte) (renames []Rename, ids []fileID, err error) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	if !sc.Scan() || sc.Text() != commitMagic {
		return nil, nil, errors.New("not a commit journal")
	}
	for sc.Scan() {
		line := sc.Text()
		if line == commitEnd {
			if sc.Scan() {
				return nil, nil, errors.New("text after its end")
			}
			return renames, ids, nil
		}
		var id fileID
		var r Rename
		f := strings.SplitN(line, " ", 5)
		if len(f) == 5 {
			_, err = fmt.Sscanf(strings.Join(f[:4], " "), "%d %d %d %d", &id.dev, &id.ino, &id.size, &id.mtime)
			if err == nil {
				r.From, r.To, err = twoQuoted(f[4])
			}
		}
		if len(f) != 5 || err != nil || r.From == "" || r.To == "" || strings.Contains(r.From+r.To, "/") {
			return nil, nil, fmt.Errorf("line %d unreadable", len(renames)+2)
		}
		renames = append(renames, r)
		ids = append(ids, id)
	}
	if err := sc.Err(); err != nil {
		return nil, nil, err
	}
	return nil, nil, errors.New("cut short")
}

// twoQuoted splits s into two Go-quoted strings separated by a space.
func twoQuoted(s string) (a, b string, err error) {
	q, err := strconv.QuotedPrefix(s)
	if err != nil {
		return "", "", err
	}
	rest, ok := strings.CutPrefix(s[len(q):], " ")
	if !ok {
		return "", "", errors.New("no second name")
	}
	if a, err = strconv.Unquote(q); err != nil {
		return "", "", err
	}
	if b, err = strconv.Unquote(rest); err != nil {
		return "", "", err
	}
	return a, b, nil
}

// Replaceable says why renaming a new file over path would be refused,
// before any work is done: a file of another user in a sticky directory
// (such as /tmp), which only its owner or the directory's may replace or
// remove. nil where it would not be refused, or where that cannot be told
// (root is taken to have CAP_FOWNER).
func Replaceable(path string) error { return replaceableBy(path, os.Geteuid()) }

func replaceableBy(path string, euid int) error {
	if euid == 0 {
		return nil
	}
	dir := filepath.Dir(path)
	var st, dst unix.Stat_t
	if unix.Lstat(path, &st) != nil || unix.Stat(dir, &dst) != nil {
		return nil
	}
	if dst.Mode&unix.S_ISVTX != 0 && int(st.Uid) != euid && int(dst.Uid) != euid {
		return fmt.Errorf("%s is another user's (uid %d), in a sticky directory (%s) that lets only its owner replace or remove it", path, st.Uid, dir)
	}
	return nil
}
