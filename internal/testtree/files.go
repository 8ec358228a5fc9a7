package testtree

import (
	"os"
	"testing"
)

// CopyFile copies the file at from to to (mode 0644), failing the test on
// any error: how tests put one archive's volume in place of another's.
func CopyFile(t testing.TB, from, to string) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, data, 0o644); err != nil {
		t.Fatal(err)
	}
}
