package reader

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// refuseFchmodat2 makes fchmodat2 fail with EPERM in this process, as a
// seccomp profile that does not know the call does (Docker's did).
func refuseFchmodat2(t *testing.T) {
	t.Helper()
	filter := []unix.SockFilter{
		{Code: unix.BPF_LD | unix.BPF_W | unix.BPF_ABS, K: 0}, // seccomp_data.nr
		{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, Jt: 0, Jf: 1, K: unix.SYS_FCHMODAT2},
		{Code: unix.BPF_RET | unix.BPF_K, K: unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM)},
		{Code: unix.BPF_RET | unix.BPF_K, K: unix.SECCOMP_RET_ALLOW},
	}
	prog := unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		t.Skipf("no_new_privs: %v", err)
	}
	if _, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, unix.SECCOMP_FILTER_FLAG_TSYNC, uintptr(unsafe.Pointer(&prog))); errno != 0 {
		t.Skipf("seccomp: %v", errno)
	}
}

// Where fchmodat2 is refused (a seccomp filter answers EPERM), modes are
// still set, through the entry pinned with O_PATH, and a symlink in an
// entry's place is still not followed. It runs in a child of the test
// binary, the filter being for the whole process.
func TestModesAreSetWhereFchmodat2IsRefused(t *testing.T) {
	if os.Getenv("ARC_TEST_NO_FCHMODAT2") == "" {
		cmd := exec.Command(os.Args[0], "-test.run=^TestModesAreSetWhereFchmodat2IsRefused$", "-test.v")
		cmd.Env = append(os.Environ(), "ARC_TEST_NO_FCHMODAT2=1")
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "--- PASS") {
			t.Fatalf("with fchmodat2 refused: %v\n%s", err, out)
		}
		return
	}
	refuseFchmodat2(t)
	dir := t.TempDir()
	if err := unix.Fchmodat(unix.AT_FDCWD, dir, 0o700, unix.AT_SYMLINK_NOFOLLOW); !errors.Is(err, unix.EPERM) {
		t.Skipf("fchmodat2 not refused: %v", err)
	}
	os.WriteFile(filepath.Join(dir, "f"), nil, 0o600)
	outside := filepath.Join(t.TempDir(), "outside")
	os.WriteFile(outside, nil, 0o600)
	os.Symlink(outside, filepath.Join(dir, "l"))
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := chmodAt(fd, "f", 0o751); err != nil {
		t.Errorf("chmodAt f: %v", err)
	}
	if err := chmodAt(fd, "l", 0o777); !errors.Is(err, unix.ELOOP) {
		t.Errorf("chmodAt of a symlink: %v, want ELOOP", err)
	}
	for p, want := range map[string]os.FileMode{filepath.Join(dir, "f"): 0o751, outside: 0o600} {
		if st, err := os.Stat(p); err != nil || st.Mode().Perm() != want {
			t.Errorf("%s: %v %v, want %v", p, st.Mode(), err, want)
		}
	}
}
