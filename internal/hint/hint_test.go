package hint

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestMisnamedSaysWhatWasMeant(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"photos.001", "photos.002", "photos.003", "photos.r01", "notes.txt"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	os.Mkdir(filepath.Join(dir, "tree"), 0o755)
	p := func(name string) string { return filepath.Join(dir, name) }
	for _, c := range []struct {
		name, arg string
		want      string // "" = nothing to add: the reader says what is wrong
	}{
		{"a volume", p("photos.001"), ""},
		{"a later volume", p("photos.003"), ""},
		{"the base of an archive", p("photos"), ""},
		{"a directory", p("tree"), "a directory, not an archive volume (to pack it: arcpack create " + p("tree") + " -o NAME)"},
		{"a recovery volume", p("photos.r01"), "a recovery volume, not a data volume (give the archive's first volume, " + p("photos.001")},
		{"a volume name cut short", p("photos.00"), "did you mean " + p("photos.001") + "?"},
		{"a volume past the last", p("photos.007"), "no such file or directory (the archive's volumes here are " + p("photos.001") + " to " + p("photos.003") + ")"},
		{"a base with no volumes", p("other"), "no such file or directory, nor " + p("other.001")},
		{"a file that is no volume", p("notes.txt"), ""},
	} {
		got := Misnamed(c.arg)
		if (c.want == "") != (got == "") || !strings.Contains(got, c.want) {
			t.Errorf("%s: Misnamed(%q) = %q, want %q", c.name, c.arg, got, c.want)
		}
	}
}

func TestRepairWithRecoveryVolumesOrRenamesLeftToDo(t *testing.T) {
	dir := t.TempDir()
	a := filepath.Join(dir, "a.001")
	os.WriteFile(a, []byte("x"), 0o644)
	if h := Repair(a); h != "" {
		t.Errorf("no recovery volumes, yet Repair says %q", h)
	}
	os.WriteFile(filepath.Join(dir, "a.r01"), []byte("x"), 0o644)
	os.WriteFile(filepath.Join(dir, "a.r02"), []byte("x"), 0o644)
	if h, want := Repair(a), "2 recovery volume(s) found: 'arcpack repair "+a+"' rebuilds what is missing or damaged if they cover all of it"; !strings.HasPrefix(h, want) {
		t.Errorf("Repair = %q, want it to start %q", h, want)
	}
	// A killed run's renames left to do come first: repair finishes them.
	os.WriteFile(filepath.Join(dir, "a.arcpack-commit"), []byte("x"), 0o644)
	if h, want := Repair(a), "left renames to do: 'arcpack repair "+a+"' finishes them"; !strings.HasSuffix(h, want) {
		t.Errorf("Repair = %q, want it to end %q", h, want)
	}
}
