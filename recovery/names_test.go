package recovery

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestFindListsOnlyExactRecoveryNamesInOrder(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{"a.001", "a.002", "a.r02", "a.r01", "a.r100", "a.r1", "a.r001", "a.r01.partial", "ab.r01", "a.b.r01", "a.rx1"} {
		if err := os.WriteFile(filepath.Join(dir, n), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{filepath.Join(dir, "a.r01"), filepath.Join(dir, "a.r02"), filepath.Join(dir, "a.r100")}
	for _, arg := range []string{"a", "a.001", "a.002", "a.r02"} {
		got, err := Find(filepath.Join(dir, arg))
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, want) {
			t.Errorf("Find(%s) = %q, want %q", arg, got, want)
		}
	}
	got, err := Find(filepath.Join(dir, "none.001"))
	if err != nil || got != nil {
		t.Errorf("Find(none.001) = %q, %v; want nil, nil", got, err)
	}
	if _, err := Find(filepath.Join(dir, "missing-dir", "x.001")); err == nil {
		t.Error("Find in a missing directory: no error")
	}
}

func TestBaseOfEveryKindOfName(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"d/a.001", "d/a"}, {"d/a.r01", "d/a"}, {"d/a", "d/a"}, {"d.x/a.b.1000", "d.x/a.b"}, {"a.r1", "a.r1"},
	} {
		if got := Base(c.in); got != c.want {
			t.Errorf("Base(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
