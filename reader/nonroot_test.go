package reader

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// TestExtractAsNonRoot runs the extraction of every entry type as an
// ordinary user: as root it re-runs this test binary as nobody.
func TestExtractAsNonRoot(t *testing.T) {
	if os.Geteuid() == 0 {
		runAsNobody(t, "TestExtractAsNonRoot")
		return
	}
	a, _ := openBuilt(t, fullTree(), buildOpts{})
	dest := filepath.Join(t.TempDir(), "out")
	// Read-only directories would stop TempDir's cleanup as non-root.
	t.Cleanup(func() {
		filepath.Walk(dest, func(p string, info os.FileInfo, err error) error {
			if err == nil && info.IsDir() {
				os.Chmod(p, 0o700)
			}
			return nil
		})
	})
	var warns []string
	res, err := a.Extract(dest, ExtractOptions{Warn: func(err error) { warns = append(warns, err.Error()) }})
	if err != nil {
		t.Fatal(err)
	}
	joined := strings.Join(warns, "\n")
	for _, w := range []string{"d/chr: device node not created", "d/xattr: xattr trusted.t not restored"} {
		if !strings.Contains(joined, w) {
			t.Errorf("warnings lack %q:\n%s", w, joined)
		}
	}
	if res.Skipped != 1 {
		t.Errorf("skipped %d", res.Skipped)
	}
	if _, err := os.Lstat(filepath.Join(dest, "d/chr")); err == nil {
		t.Error("device node created")
	}
	a.Index().Walk(func(p []byte, d uint32) error {
		if string(p) != "d/chr" {
			checkEntry(t, a, dest, string(p), false)
		}
		return nil
	})
	if st := lstat(t, dest+"/d/setuid"); st.Mode&(unix.S_ISUID|unix.S_ISGID) != 0 || st.Uid != uint32(os.Geteuid()) {
		t.Errorf("setuid file: mode %o owner %d", st.Mode, st.Uid)
	}
	var v [8]byte
	if n, err := unix.Lgetxattr(dest+"/d/xattr", "user.two", v[:]); err != nil || string(v[:n]) != "zwei" {
		t.Errorf("user xattr: %q %v", v[:n], err)
	}
}

// runAsNobody re-runs test name of this binary as user nobody, with a
// temporary directory that user may write.
func runAsNobody(t *testing.T, name string) {
	t.Helper()
	dir := t.TempDir()
	// t.TempDir's parent is root's alone: open both to nobody.
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o777); err != nil {
			t.Fatal(err)
		}
	}
	// The test binary's own directory is root's: copy it where nobody may run it.
	bin := filepath.Join(dir, "reader.test")
	src, err := os.Open(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	dst, err := os.OpenFile(bin, os.O_CREATE|os.O_WRONLY, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.Copy(dst, src)
	src.Close()
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(dir, "tmp")
	os.Mkdir(tmp, 0o777)
	os.Chmod(tmp, 0o777)
	cmd := exec.Command(bin, "-test.run=^"+name+"$", "-test.v")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "TMPDIR="+tmp, "HOME="+tmp)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("as nobody: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "--- PASS: "+name) {
		t.Fatalf("as nobody, the test did not pass:\n%s", out)
	}
}
