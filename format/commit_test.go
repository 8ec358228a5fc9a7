package format

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
)

// swapSet lays out, beside base, what a repair that swaps volumes 2 and 3
// back commits: NAME.002 holds volume 3 and NAME.003 volume 2, each
// copied out to a temporary file for the other's name, and NAME.009 is
// volume 4 under a name outside the set. It returns the commit's renames
// and each final name's content once they are done.
func swapSet(t *testing.T, base string) ([]Rename, map[string]string) {
	t.Helper()
	files := map[string]string{
		VolumeName(base, 1): "volume 1",
		VolumeName(base, 2): "volume 3",
		VolumeName(base, 3): "volume 2",
		VolumeName(base, 9): "volume 4",
	}
	t2 := TempName(VolumeName(base, 2), NewTempTag())
	t3 := TempName(VolumeName(base, 3), NewTempTag())
	files[t2], files[t3] = "volume 2", "volume 3"
	for name, content := range files {
		if err := os.WriteFile(name, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	renames := []Rename{
		{t2, VolumeName(base, 2)},
		{t3, VolumeName(base, 3)},
		{VolumeName(base, 9), VolumeName(base, 4)},
	}
	want := map[string]string{
		VolumeName(base, 1): "volume 1", VolumeName(base, 2): "volume 2",
		VolumeName(base, 3): "volume 3", VolumeName(base, 4): "volume 4",
	}
	return renames, want
}

// checkFiles fails unless dir holds exactly want (by base name) and the
// lock file it may hold.
func checkFiles(t *testing.T, dir string, want map[string]string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".arcpack-lock") {
			got = append(got, e.Name())
		}
	}
	var names []string
	for name, content := range want {
		names = append(names, filepath.Base(name))
		if b, err := os.ReadFile(name); err != nil || string(b) != content {
			t.Errorf("%s: %q, %v; want %q", filepath.Base(name), b, err, content)
		}
	}
	slices.Sort(got)
	slices.Sort(names)
	if !slices.Equal(got, names) {
		t.Errorf("files %q, want %q", got, names)
	}
}

// A commit killed after any number of its renames is finished by the next
// holder of the archive's lock: the temporary file that holds a volume's
// only copy (the swap) is renamed into place, not removed as a dead
// writer's.
func TestCommitKilledPartWayIsFinishedByTheNextLockHolder(t *testing.T) {
	for stop := range 4 {
		dir := t.TempDir()
		base := filepath.Join(dir, "a")
		unlock, _, err := LockArchive(base)
		if err != nil {
			t.Fatal(err)
		}
		renames, want := swapSet(t, base)
		renamed, err := commit(base, renames, stop, SyncDir)
		if renamed || err != nil {
			t.Fatalf("stop %d: renamed %t, %v", stop, renamed, err)
		}
		unlock() // killed: the kernel drops its lock
		unlock, left, err := LockArchive(base)
		if err != nil {
			t.Fatalf("stop %d: %v", stop, err)
		}
		unlock()
		var finished []string
		for _, r := range renames[stop:] {
			finished = append(finished, r.To)
		}
		if !slices.Equal(left.Finished, finished) || len(left.Removed) != 0 {
			t.Errorf("stop %d: finished %q, removed %q; want %q finished", stop, left.Finished, left.Removed, finished)
		}
		checkFiles(t, dir, want)
	}
}

// A commit that is not killed leaves no journal, and what it renamed is
// there.
func TestCommitRenamesAndRemovesItsJournal(t *testing.T) {
	dir := t.TempDir()
	base := filepath.Join(dir, "a")
	renames, want := swapSet(t, base)
	renamed, err := Commit(base, renames)
	if !renamed || err != nil {
		t.Fatalf("renamed %t, %v", renamed, err)
	}
	checkFiles(t, dir, want)
}

// The journal names the files it renames by identity too: a file made
// under a temporary name after the commit stopped is not the one it
// meant, and is removed as a dead writer's, not renamed into place; a
// rename the commit did is not done again.
func TestCommitJournalRenamesOnlyTheFilesItNamed(t *testing.T) {
	dir := t.TempDir()
	base := filepath.Join(dir, "a")
	renames, want := swapSet(t, base)
	if _, err := commit(base, renames, 1, SyncDir); err != nil {
		t.Fatal(err)
	}
	// The first rename's source made again, and the second's replaced.
	if err := os.WriteFile(renames[0].From, []byte("another"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(renames[1].From); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(renames[1].From, []byte("another"), 0o644); err != nil {
		t.Fatal(err)
	}
	unlock, left, err := LockArchive(base)
	if err != nil {
		t.Fatal(err)
	}
	unlock()
	if !slices.Equal(left.Finished, []string{renames[2].To}) {
		t.Errorf("finished %q, want %q", left.Finished, renames[2].To)
	}
	if slices.Sort(left.Removed); len(left.Removed) != 2 {
		t.Errorf("removed %q, want the two files made again", left.Removed)
	}
	want[VolumeName(base, 3)] = "volume 2" // its rename was not done
	checkFiles(t, dir, want)
}

// Names are kept exactly, whatever bytes they hold.
func TestCommitJournalKeepsOddNames(t *testing.T) {
	dir := t.TempDir()
	base := filepath.Join(dir, "a b\n\"c\"\xff\\")
	renames, want := swapSet(t, base)
	if _, err := commit(base, renames, 0, SyncDir); err != nil {
		t.Fatal(err)
	}
	unlock, left, err := LockArchive(base)
	if err != nil {
		t.Fatal(err)
	}
	unlock()
	if len(left.Finished) != 3 {
		t.Errorf("finished %q", left.Finished)
	}
	checkFiles(t, dir, want)
}

// A journal that cannot be read stops the next holder of the lock, naming
// it, and the files it would rename stay; one never put in place (killed
// while it was written) is removed, and the commit's temporary files with
// it: it had renamed nothing.
func TestUnreadableCommitJournal(t *testing.T) {
	for _, tc := range []struct {
		name, journal string
		// make, when set, puts the journal in place instead of a
		// file of this user's holding journal.
		make func(t *testing.T, name string)
		why  string // in the error, when set
	}{
		{name: "a line over a MiB", journal: commitMagic + "\n1 2 3 4 \"" + strings.Repeat("x", 2<<20) + "\" \"a.003\"\nend\n", why: "too long"},
		{name: "another user's", make: func(t *testing.T, name string) {
			if os.Geteuid() != 0 {
				t.Skip("needs root to give the journal to another user")
			}
			good := commitMagic + "\nend\n" // readable: refused for its owner alone
			if err := os.WriteFile(name, []byte(good), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Lchown(name, 65534, 65534); err != nil {
				t.Fatal(err)
			}
		}, why: "not a file of this user's (uid 65534"},
		{name: "a symlink to a journal", make: func(t *testing.T, name string) {
			if err := os.WriteFile(name+"-target", []byte(commitMagic+"\nend\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(filepath.Base(name)+"-target", name); err != nil {
				t.Fatal(err)
			}
		}, why: "not a file of this user's"},
		{name: "not a journal", journal: "hello\n"},
		{name: "cut short", journal: commitMagic + "\n1 2 3 4 \"a.002\" \"a.003\"\n"},
		{name: "unquoted name", journal: commitMagic + "\n1 2 3 4 a.002 \"a.003\"\nend\n"},
		{name: "one name", journal: commitMagic + "\n1 2 3 4 \"a.002\"\nend\n"},
		{name: "a directory in a name", journal: commitMagic + "\n1 2 3 4 \"../a.002\" \"a.003\"\nend\n"},
		{name: "no inode", journal: commitMagic + "\n1 2 3 \"a.002\" \"a.003\"\nend\n"},
		{name: "after its end", journal: commitMagic + "\nend\nend\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			base := filepath.Join(dir, "a")
			renames, _ := swapSet(t, base)
			if tc.make != nil {
				tc.make(t, CommitName(base))
			} else if err := os.WriteFile(CommitName(base), []byte(tc.journal), 0o644); err != nil {
				t.Fatal(err)
			}
			_, _, err := LockArchive(base)
			if err == nil || !strings.Contains(err.Error(), CommitName(base)) || !strings.Contains(err.Error(), tc.why) {
				t.Errorf("%s: %v, want an error naming the journal (and %q)", tc.name, err, tc.why)
			}
			if _, err := os.Stat(renames[0].From); err != nil {
				t.Errorf("%s: a file the journal may rename: %v", tc.name, err)
			}
			// The lock was given back.
			unlock, _, err := lockArchive(base)
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			unlock()
		})
	}

	dir := t.TempDir()
	base := filepath.Join(dir, "a")
	renames, _ := swapSet(t, base)
	if err := os.WriteFile(CommitName(base)+".new", []byte(commitMagic+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	unlock, left, err := LockArchive(base)
	if err != nil {
		t.Fatal(err)
	}
	unlock()
	if len(left.Finished) != 0 || len(left.Removed) != 2 {
		t.Errorf("a journal never put in place: finished %q, removed %q", left.Finished, left.Removed)
	}
	if _, err := os.Stat(CommitName(base) + ".new"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the journal never put in place: %v", err)
	}
	if _, err := os.Stat(renames[2].From); err != nil {
		t.Errorf("NAME.009: %v", err)
	}
}

// A journal is still followed after the archive's filesystem was mounted
// again (a crash, a reboot, a disk plugged in elsewhere): the device
// number a file has then is another (btrfs, NFS, a USB disk's sdb that is
// now sdc), and on FAT and exFAT so is its inode number. The file that
// holds a swapped volume's only copy must be renamed into place, not
// taken for another and removed as a dead writer's.
func TestCommitJournalOutlivesNewDeviceAndInodeNumbers(t *testing.T) {
	dir := t.TempDir()
	base := filepath.Join(dir, "a")
	renames, want := swapSet(t, base)
	if _, err := commit(base, renames, 1, SyncDir); err != nil {
		t.Fatal(err)
	}
	// The journal as the files' new numbers no longer match it.
	b, err := os.ReadFile(CommitName(base))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(b), "\n")
	for i := 1; i <= len(renames); i++ {
		f := strings.SplitN(lines[i], " ", 3)
		lines[i] = "4242 4343 " + f[2]
	}
	if err := os.WriteFile(CommitName(base), []byte(strings.Join(lines, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	unlock, left, err := LockArchive(base)
	if err != nil {
		t.Fatal(err)
	}
	unlock()
	if w := []string{renames[1].To, renames[2].To}; !slices.Equal(left.Finished, w) || len(left.Removed) != 0 {
		t.Errorf("finished %q, removed %q; want %q finished", left.Finished, left.Removed, w)
	}
	checkFiles(t, dir, want)
}

// A commit whose journal cannot be made durable (the directory's sync
// fails) does no rename and says so with an error that is not
// ErrCommitUnfinished: its caller then removes its temporary files. No
// journal may stay behind for the next holder of the lock to follow: its
// renames of files not temporary would be done alone. Here a repair had
// copied volume 5 out of NAME.004 into a temporary file for NAME.005, and
// NAME.009 (volume 4) was to take NAME.004: done alone, that rename
// removes volume 5's only copy.
func TestCommitWhoseJournalCannotBeSyncedLeavesNoJournal(t *testing.T) {
	dir := t.TempDir()
	base := filepath.Join(dir, "a")
	t5 := TempName(VolumeName(base, 5), NewTempTag())
	files := map[string]string{
		VolumeName(base, 4): "volume 5",
		VolumeName(base, 9): "volume 4",
		t5:                  "volume 5",
	}
	for name, content := range files {
		if err := os.WriteFile(name, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	failing := func(string) error { return errors.New("sync: input/output error") }
	renamed, err := commit(base, []Rename{{t5, VolumeName(base, 5)}, {VolumeName(base, 9), VolumeName(base, 4)}}, -1, failing)
	if renamed || err == nil || errors.Is(err, ErrCommitUnfinished) {
		t.Fatalf("renamed %t, %v; want an error, nothing renamed", renamed, err)
	}
	if _, err := os.Lstat(CommitName(base)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the journal of a commit that renamed nothing: %v", err)
	}
	// The caller's clean-up (tempFiles.remove, volumeWriter.abort).
	if err := os.Remove(t5); err != nil {
		t.Fatal(err)
	}
	unlock, left, err := LockArchive(base)
	if err != nil {
		t.Fatal(err)
	}
	unlock()
	if len(left.Finished) != 0 {
		t.Errorf("finished %q", left.Finished)
	}
	checkFiles(t, dir, map[string]string{VolumeName(base, 4): "volume 5", VolumeName(base, 9): "volume 4"})
}

// An archive whose name holds ".tmp-" has its temporary files known as
// such: its journal is followed, and its killed writer's files removed.
func TestCommitOfAnArchiveNamedWithTmp(t *testing.T) {
	dir := t.TempDir()
	base := filepath.Join(dir, "a.tmp-0123456789ab")
	renames, want := swapSet(t, base)
	if _, err := commit(base, renames, 1, SyncDir); err != nil {
		t.Fatal(err)
	}
	unlock, left, err := LockArchive(base)
	if err != nil {
		t.Fatal(err)
	}
	unlock()
	if len(left.Finished) != 2 {
		t.Errorf("finished %q", left.Finished)
	}
	checkFiles(t, dir, want)
	stale := TempName(VolumeName(base, 7), NewTempTag())
	if err := os.WriteFile(stale, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	unlock, left, err = LockArchive(base)
	if err != nil {
		t.Fatal(err)
	}
	unlock()
	if !slices.Equal(left.Removed, []string{stale}) {
		t.Errorf("removed %q, want %q", left.Removed, stale)
	}
	checkFiles(t, dir, want)
}

// A journal renames only the archive's own files: a volume or recovery
// volume, or a temporary file of one, to a volume's or recovery volume's
// name. One that names any other file beside it (written by another user
// in a shared directory such as /tmp, or damaged) is refused, naming the
// journal, and renames nothing, even with each file's identity right.
func TestCommitJournalRenamesOnlyTheArchivesFiles(t *testing.T) {
	for _, tc := range []struct{ name, from, to string }{
		{"another file into the set", "notes", "a.001"},
		{"a volume out of the set", "a.001", "notes"},
		{"a volume onto the lock", "a.001", "a.arcpack-lock"},
		{"a volume onto the journal", "a.001", "a.arcpack-commit"},
		{"a volume to another archive", "a.001", "b.001"},
		{"another archive's volume", "b.001", "a.001"},
		{"a temporary file onto a temporary name", "a.001.tmp-0123456789ab", "a.002.tmp-0123456789ab"},
		{"the directory above", "..", "a.001"},
	} {
		dir := t.TempDir()
		base := filepath.Join(dir, "a")
		from := filepath.Join(dir, tc.from)
		if tc.from != ".." {
			if err := os.WriteFile(from, []byte(tc.from), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		var st syscall.Stat_t
		if err := syscall.Lstat(from, &st); err != nil {
			t.Fatal(err)
		}
		journal := fmt.Sprintf("%s\n%d %d %d %d %q %q\n%s\n", commitMagic,
			st.Dev, st.Ino, st.Size, st.Mtim.Nano(), tc.from, tc.to, commitEnd)
		if err := os.WriteFile(CommitName(base), []byte(journal), 0o644); err != nil {
			t.Fatal(err)
		}
		unlock, left, err := LockArchive(base)
		if err == nil {
			unlock()
		}
		if err == nil || !strings.Contains(err.Error(), CommitName(base)) || len(left.Finished) != 0 {
			t.Errorf("%s: finished %q, %v; want an error naming the journal", tc.name, left.Finished, err)
		}
		if _, err := os.Lstat(from); err != nil {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
}
