package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"arc/internal/testtree"
)

// The archives under testdata/compat were written once, each by the
// arcpack its made.txt names (testdata/compat/add.sh), and are never made
// again: every later release must read them as they were written. A test
// that packs and reads with the same build cannot see a change of format
// that both sides share; these can.

// compatCases lists the frozen archives: each folder holding a tree.txt.
func compatCases(t *testing.T) []string {
	t.Helper()
	trees, err := filepath.Glob("testdata/compat/*/tree.txt")
	if err != nil || len(trees) == 0 {
		t.Fatalf("no frozen archives under testdata/compat (%v)", err)
	}
	dirs := make([]string, len(trees))
	for i, p := range trees {
		dirs[i] = filepath.Dir(p)
	}
	return dirs
}

// frozenArchive copies the frozen archive in dir (volumes and recovery
// volumes) to a temp dir, so that no command can change testdata, and
// returns the copy's base name and the tree it was made of.
func frozenArchive(t *testing.T, dir string) (base string, want testtree.Tree) {
	t.Helper()
	text, err := os.ReadFile(filepath.Join(dir, "tree.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if want, err = testtree.ParseTree(text); err != nil {
		t.Fatalf("%s/tree.txt: %v", dir, err)
	}
	files, err := filepath.Glob(filepath.Join(dir, "arc.*"))
	if err != nil || len(files) == 0 {
		t.Fatalf("%s holds no volumes (%v)", dir, err)
	}
	out := t.TempDir()
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(out, filepath.Base(f)), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(out, "arc"), want
}

// sameAsRecorded fails the test where the tree at dir is not the recorded one.
func sameAsRecorded(t *testing.T, what string, want testtree.Tree, dir string) {
	t.Helper()
	got, err := testtree.Snapshot(dir)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if d := testtree.CompareTrees(want, got, testtree.CompareOptions{}); len(d) != 0 {
		t.Fatalf("%s is not the tree the archive was made of: %v", what, d)
	}
}

// TestArchivesMadeByEarlierReleasesReadBack: each frozen archive verifies
// intact, and its extraction and its mount are exactly the recorded tree:
// every type, mode, owner, nanosecond mtime, byte, hole, link, device
// number and xattr.
func TestArchivesMadeByEarlierReleasesReadBack(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the frozen trees have foreign owners and device nodes: extracting them needs root")
	}
	for _, dir := range compatCases(t) {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			base, want := frozenArchive(t, dir)
			if r := mustArcpack(t, "verify", base+".001"); !strings.Contains(r.stdout, ": intact: ") {
				t.Errorf("verify says %q", r.stdout)
			}
			mustArcpack(t, "info", base+".001")
			dst := filepath.Join(t.TempDir(), "dst")
			mustArcpack(t, "extract", base+".001", "-o", dst, "--progress", "never")
			sameAsRecorded(t, "the extraction", want, dst)
			needMount(t)
			sameAsRecorded(t, "the mount", want, mountArchive(t, base))
		})
	}
}

// TestRecoveryVolumesOfAnEarlierReleaseRepairItsArchive: the parity an
// earlier release wrote rebuilds a damaged volume and a lost one byte for
// byte.
func TestRecoveryVolumesOfAnEarlierReleaseRepairItsArchive(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the frozen trees have foreign owners and device nodes: extracting them needs root")
	}
	var dirs []string
	for _, dir := range compatCases(t) {
		if _, err := os.Stat(filepath.Join(dir, "arc.r01")); err == nil {
			dirs = append(dirs, dir)
		}
	}
	if len(dirs) == 0 {
		t.Fatal("no frozen archive has recovery volumes")
	}
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			base, want := frozenArchive(t, dir)
			original := archiveFiles(t, base)
			vols := volumes(t, base)
			if len(vols) < 3 {
				t.Fatalf("want 3 or more volumes, got %v", vols)
			}
			st, err := os.Stat(vols[1])
			if err != nil {
				t.Fatal(err)
			}
			flipByte(t, vols[1], st.Size()/2)
			if err := os.Remove(vols[len(vols)-1]); err != nil {
				t.Fatal(err)
			}
			wantFail(t, arcpack(t, "verify", base+".001", "--progress", "never"), 1, "repairable: run 'arcpack repair "+base+".001'")
			mustArcpack(t, "repair", base+".001")
			sameArchiveFiles(t, "after repair", archiveFiles(t, base), original)
			dst := filepath.Join(t.TempDir(), "dst")
			mustArcpack(t, "extract", base+".001", "-o", dst, "--progress", "never")
			sameAsRecorded(t, "the extraction after repair", want, dst)
		})
	}
}
