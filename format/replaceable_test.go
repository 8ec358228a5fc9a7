package format

import (
	"os"
	"path/filepath"
	"testing"
)

// In a sticky directory only a file's owner, the directory's owner (and
// root) may rename over it: said before any work, for anyone else.
func TestAFileOfAnotherUserInAStickyDirectoryIsNotReplaceable(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give files to other users")
	}
	const dirOwner, fileOwner, other = 1001, 1002, 1003
	for _, sticky := range []bool{true, false} {
		dir := filepath.Join(t.TempDir(), "shared")
		os.Mkdir(dir, 0o777)
		mode := os.FileMode(0o777)
		if sticky {
			mode |= os.ModeSticky
		}
		os.Chmod(dir, mode)
		os.Chown(dir, dirOwner, dirOwner)
		f := filepath.Join(dir, "a.001")
		os.WriteFile(f, []byte("x"), 0o644)
		os.Chown(f, fileOwner, fileOwner)
		for _, tc := range []struct {
			euid int
			ok   bool
		}{{fileOwner, true}, {dirOwner, true}, {0, true}, {other, !sticky}} {
			if err := replaceableBy(f, tc.euid); (err == nil) != tc.ok {
				t.Errorf("sticky %v, uid %d: %v, want ok %v", sticky, tc.euid, err, tc.ok)
			}
		}
	}
	if err := replaceableBy(filepath.Join(t.TempDir(), "none"), 1003); err != nil {
		t.Errorf("a file that is not there: %v", err)
	}
}
