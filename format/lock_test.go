package format

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// The lock's holder removes what a killed writer of the same archive left,
// and nothing else: another archive's temporary files, the volumes, and
// files only named alike stay.
func TestLockRemovesOnlyAKilledWritersTemporaryVolumes(t *testing.T) {
	dir := t.TempDir()
	base := filepath.Join(dir, "a[1]") // glob characters in the name are literal
	stale := []string{".001.tmp-0123456789ab", ".r01.tmp-00ff00ff00ff", ".1000.tmp-abcdefabcdef"}
	kept := []string{".001", ".r01", ".001.tmp-0123456789AB", ".001.tmp-0123456789abc", ".01.tmp-0123456789ab",
		".r1.tmp-0123456789ab", ".notes.tmp-0123456789ab", "b.001.tmp-0123456789ab", ".001.tmp-0123456789ab.x"}
	for _, s := range append(slices.Clone(stale), kept...) {
		if err := os.WriteFile(base+s, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "a1.001.tmp-0123456789ab"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	unlock, left, err := LockArchive(base)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	removed := left.Removed
	var want []string
	for _, s := range stale {
		want = append(want, base+s)
	}
	slices.Sort(want)
	slices.Sort(removed)
	if !slices.Equal(removed, want) {
		t.Errorf("removed %q, want %q", removed, want)
	}
	for _, s := range kept {
		if _, err := os.Stat(base + s); err != nil {
			t.Errorf("%s: %v", s, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "a1.001.tmp-0123456789ab")); err != nil {
		t.Errorf("another archive's temporary file: %v", err)
	}
}

// A writer's temporary volume (TempName) is removed only by the next
// holder of the lock: not while its writer holds it and another is
// refused.
func TestTemporaryVolumesAreRemovedOnlyByTheLocksNextHolder(t *testing.T) {
	base := filepath.Join(t.TempDir(), "a")
	unlock, _, err := LockArchive(base)
	if err != nil {
		t.Fatal(err)
	}
	tmp := TempName(VolumeName(base, 3), NewTempTag())
	if err := os.WriteFile(tmp, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LockArchive(base); err == nil {
		t.Fatal("a second lock was taken while the first was held")
	}
	if _, err := os.Stat(tmp); err != nil {
		t.Fatalf("the holder's temporary volume, after another was refused the lock: %v", err)
	}
	unlock()
	unlock, left, err := LockArchive(base)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	if !slices.Equal(left.Removed, []string{tmp}) {
		t.Errorf("the next holder removed %q, want %q", left.Removed, tmp)
	}
}
