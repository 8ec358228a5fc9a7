// Package integration tests arcpack (and arcmount, in mount_test.go)
// end to end through the built binaries.
package integration

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"arc/internal/testtree"
)

// Paths of the binaries TestMain builds; arcmountBin is "" when
// cmd/arcmount does not build (mount tests skip then).
var (
	arcpackBin  string
	arcmountBin string
)

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "arc-integration-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	defer os.RemoveAll(dir)
	// Other users (the unreadable-file test runs arcpack as nobody) must
	// reach the binary.
	os.Chmod(dir, 0o755)
	build := func(name string) (string, error) {
		out := filepath.Join(dir, name)
		cmd := exec.Command("go", "build", "-o", out, "arc/cmd/"+name)
		if b, err := cmd.CombinedOutput(); err != nil {
			return "", fmt.Errorf("go build %s: %v\n%s", name, err, b)
		}
		return out, nil
	}
	if arcpackBin, err = build("arcpack"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	if arcmountBin, err = build("arcmount"); err != nil {
		fmt.Fprintf(os.Stderr, "integration: arcmount not built, mount tests will skip: %v\n", err)
		arcmountBin = ""
	}
	return m.Run()
}

// result is what one run of a binary did.
type result struct {
	code           int
	stdout, stderr string
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
}

// runOpts change how a binary runs.
type runOpts struct {
	uid, gid int // run as this user when non-zero (the test is root)
	dir      string
	env      []string // added to the environment
}

// arcpack runs the arcpack binary with args and returns what it did; it
// fails the test only when the binary cannot run or hangs.
func arcpack(t *testing.T, args ...string) result {
	t.Helper()
	return runBin(t, runOpts{}, arcpackBin, args...)
}

// mustArcpack runs arcpack and fails the test unless it exits 0.
func mustArcpack(t *testing.T, args ...string) result {
	t.Helper()
	r := arcpack(t, args...)
	if r.code != 0 {
		t.Fatalf("arcpack %s: %v", strings.Join(args, " "), r)
	}
	return r
}

func runBin(t *testing.T, o runOpts, bin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = o.dir
	if o.env != nil {
		cmd.Env = append(os.Environ(), o.env...)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if o.uid != 0 {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(o.uid), Gid: uint32(o.gid)}}
	}
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("%s %s: hung for 2 minutes", filepath.Base(bin), strings.Join(args, " "))
	}
	r := result{stdout: stdout.String(), stderr: stderr.String()}
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("%s: %v", bin, err)
		}
		r.code = ee.ExitCode()
	}
	if strings.Contains(r.stderr, "goroutine ") || strings.Contains(r.stderr, "panic:") {
		t.Errorf("%s %s panicked:\n%s", filepath.Base(bin), strings.Join(args, " "), r.stderr)
	}
	return r
}

// wantFail checks a failed run: its exit code, and that stderr is exactly
// one line "arcpack: ..." containing every fragment.
func wantFail(t *testing.T, r result, code int, fragments ...string) {
	t.Helper()
	if r.code != code {
		t.Errorf("exit %d, want %d\n%v", r.code, code, r)
	}
	lines := strings.Split(strings.TrimRight(r.stderr, "\n"), "\n")
	last := lines[len(lines)-1]
	if !strings.HasPrefix(last, "arcpack: ") {
		t.Errorf("last stderr line %q does not start with \"arcpack: \"", last)
	}
	for _, f := range fragments {
		if !strings.Contains(last, f) {
			t.Errorf("error line %q lacks %q", last, f)
		}
	}
}

// genTree makes a testtree tree in a fresh temp dir and returns its path.
func genTree(t *testing.T, opt testtree.Options) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "src")
	rep, err := testtree.Generate(dir, opt)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range rep.Skipped {
		t.Logf("testtree left out: %s", s)
	}
	return dir
}

// small archive parameters keep multi-frame, multi-volume cases fast.
var small = []string{"--volume-size", "256K", "--frame-size", "128K", "--block-size", "64K", "--progress", "never"}

// pack creates an archive of srcs under a temp dir and returns its base name.
func pack(t *testing.T, extra []string, srcs ...string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "archive")
	args := append([]string{"create"}, srcs...)
	args = append(args, "-o", out)
	args = append(args, extra...)
	mustArcpack(t, args...)
	return out
}

// fillRandom fills b with one draw of r a byte: incompressible data, the
// same for the same seed.
func fillRandom(r *rand.Rand, b []byte) {
	for i := range b {
		b[i] = byte(r.Uint32())
	}
}

// volumes lists OUT.NNN files of an archive base.
func volumes(t *testing.T, base string) []string {
	t.Helper()
	m, err := filepath.Glob(base + ".[0-9][0-9][0-9]")
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// compare fails the test with Compare's diff.
func compare(t *testing.T, src, dst string, opt testtree.CompareOptions) {
	t.Helper()
	if d := testtree.Compare(src, dst, opt); len(d) != 0 {
		t.Fatalf("%s and %s differ: %v", src, dst, d)
	}
}

// rsyncSame checks with rsync that dst matches src by content and metadata.
func rsyncSame(t *testing.T, src, dst string) {
	t.Helper()
	rsync, err := exec.LookPath("rsync")
	if err != nil {
		t.Log("rsync not installed: rsync check skipped")
		return
	}
	out, err := exec.Command(rsync, "-a", "-H", "-X", "-A", "--checksum", "--dry-run", "--itemize-changes",
		src+"/", dst+"/").CombinedOutput()
	if err != nil {
		t.Fatalf("rsync: %v\n%s", err, out)
	}
	if s := strings.TrimSpace(string(out)); s != "" {
		t.Fatalf("rsync sees differences between %s and %s:\n%s", src, dst, s)
	}
}

// defaultSignals has the commands the test starts begin with SIGINT,
// SIGTERM and SIGHUP at their default, for a test that sends them one: a
// signal the test runs with ignored (SIGHUP under nohup, SIGINT in a
// background job) they inherit ignored, and rightly keep so. Caught here
// until the test ends, they are the default again across exec.
func defaultSignals(t *testing.T) {
	c := make(chan os.Signal, 3)
	signal.Notify(c, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	t.Cleanup(func() { signal.Stop(c) })
}

// sharedTempDir makes a directory named like prefix under the system's
// temporary directory with mode perm, removed when the test ends: one that
// a test's commands run as another user (nobody) can reach, which
// t.TempDir's (0700, in a 0700 parent) is not.
func sharedTempDir(t *testing.T, prefix string, perm os.FileMode) string {
	t.Helper()
	top, err := os.MkdirTemp("", prefix)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(top) })
	if err := os.Chmod(top, perm); err != nil {
		t.Fatal(err)
	}
	return top
}
