package integration

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"arc/format"
	"arc/internal/testtree"
)

func TestUsageErrorsExit2(t *testing.T) {
	src := t.TempDir()
	out := filepath.Join(t.TempDir(), "o")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"create", src}, "create: -o/--output is required"},
		{[]string{"create", "-o", out}, "create: want at least 1 argument(s), got 0"},
		{[]string{"create", src, "-o", out, "--volume-size", "12Q"}, `invalid size "12Q"`},
		{[]string{"create", src, "-o", out, "--level", "turbo"}, `unknown level "turbo"`},
		{[]string{"create", src, "-o", src + "/"}, `want the archive's name`},
		{[]string{"create", src, "-o", ""}, `want the archive's name`},
		{[]string{"create", src, "-o", out, "--progress", "sometimes"}, `invalid --progress "sometimes"`},
		{[]string{"list"}, "list: want at least 1 argument(s), got 0"},
		{[]string{"info", "a", "b"}, "info: want 1 argument(s), got 2"},
		{[]string{"extract", "x.001"}, "extract: -o/--output is required"},
		{[]string{"extract", "x.001", "-o", out, "--workers", "100000"}, "extract: --workers 100000: want 0 to 256"},
		{[]string{"create", src, "-o", out, "--workers", "100000"}, "create: --workers 100000: want 0 to 256"},
		{[]string{"create", src, "-o", out, "--workers", "-1"}, "create: --workers -1: want 0 to 256"},
		{[]string{"recovery", "add", "x.001", "--recovery", "10%", "--workers", "-1"}, "recovery add: --workers -1: want 0 to 256"},
		{[]string{"repair", "x.001", "--workers", "-1"}, "repair: --workers -1: want 0 to 256"},
		{[]string{"create", src, "-o", out, "--block-size", "0"}, "create: --block-size 0: want a size from 64K to 256M"},
		{[]string{"create", src, "-o", out, "--frame-size", "0"}, "create: --frame-size 0: want a multiple of the block size"},
		{[]string{"extract", "x.001", "-o", out, "--cache-size", "0"}, "extract: --cache-size 0: want a size above 0 (the default is 512M)"},
		{[]string{"extract", "x.001", "-o", out, "--cache-size", "lots"}, `invalid size "lots"`},
		{[]string{"bogus"}, `unknown command "bogus"`},
		{[]string{"recovery", "remove", "x.001"}, `recovery: unknown command "remove" (it has: add; see 'arcpack recovery --help')`},
		{[]string{"create", src, "-o", out, "--gpu", "maybe"}, `create: --gpu: "maybe": want auto, on or off`},
		{[]string{"create", src, "-o", out, "--gpu-device", "abc"}, `create: --gpu-device: "abc": want PLATFORM:DEVICE, two numbers`},
		{[]string{"extract", "x.001", "-o", out, "--gpu-device", "0:"}, `extract: --gpu-device: "0:": want PLATFORM:DEVICE`},
	} {
		wantFail(t, arcpack(t, c.args...), 2, c.want)
	}
}

func TestHelpShowsExamples(t *testing.T) {
	for _, sub := range []string{"", "create", "list", "info", "verify", "extract", "cat"} {
		args := []string{"--help"}
		if sub != "" {
			args = []string{sub, "--help"}
		}
		r := mustArcpack(t, args...)
		if !strings.Contains(r.stdout, "Examples:") {
			t.Errorf("arcpack %s --help shows no example", sub)
		}
	}
	if r := mustArcpack(t, "completion", "bash"); !strings.Contains(r.stdout, "complete") {
		t.Error("completion bash printed no completion script")
	}
}

func TestCreateRefusesExistingOutputWithoutForce(t *testing.T) {
	src := genTree(t, testtree.Options{Seed: 8, Files: 5, Depth: 2})
	base := pack(t, nil, src)
	wantFail(t, arcpack(t, "create", src, "-o", base), 2,
		"arcpack: create "+base+": "+base+".001 already exists (use --force to replace the archive)")
	mustArcpack(t, "create", src, "-o", base, "--force")
	mustArcpack(t, "verify", base+".001")
}

func TestCreateMissingSource(t *testing.T) {
	out := filepath.Join(t.TempDir(), "o")
	missing := filepath.Join(t.TempDir(), "nope")
	wantFail(t, arcpack(t, "create", missing, "-o", out), 2, "source "+missing+": no such file or directory")
	if v := volumes(t, out); len(v) != 0 {
		t.Errorf("failed create left %v", v)
	}
}

// unreadableTree makes a tree where "secret" cannot be read by the user
// arcpack runs as: chmod 000 works against anyone but root, so as root
// arcpack runs as nobody.
func unreadableTree(t *testing.T) (src, outDir string, o runOpts) {
	top := sharedTempDir(t, "arc-unreadable-", 0o777)
	src = filepath.Join(top, "src")
	outDir = filepath.Join(top, "out")
	os.Mkdir(src, 0o755)
	os.Mkdir(outDir, 0o777)
	os.Chmod(outDir, 0o777)
	os.WriteFile(filepath.Join(src, "public"), []byte("anyone may read this\n"), 0o644)
	os.WriteFile(filepath.Join(src, "secret"), []byte("nobody may read this\n"), 0o000)
	os.Mkdir(filepath.Join(src, "shut"), 0o700)
	os.WriteFile(filepath.Join(src, "shut", "inside"), []byte("nobody may list this\n"), 0o644)
	os.Chmod(filepath.Join(src, "shut"), 0o000)
	t.Cleanup(func() { os.Chmod(filepath.Join(src, "shut"), 0o700) })
	if os.Geteuid() == 0 {
		o = runOpts{uid: 65534, gid: 65534}
		// nobody must reach the binary and the temp dirs along the way.
		for p := filepath.Dir(arcpackBin); p != "/"; p = filepath.Dir(p) {
			if st, err := os.Stat(p); err == nil && st.Mode().Perm()&0o001 == 0 {
				t.Skipf("%s is not reachable by nobody", p)
			}
		}
	}
	if f, err := os.Open(filepath.Join(src, "secret")); err == nil && o.uid == 0 {
		f.Close()
		t.Skip("cannot make a file unreadable here")
	}
	return src, outDir, o
}

func TestUnreadableSourceIsSkippedWithWarning(t *testing.T) {
	src, outDir, o := unreadableTree(t)
	out := filepath.Join(outDir, "o")
	r := runBin(t, o, arcpackBin, "create", src, "-o", out)
	if r.code != 1 {
		t.Fatalf("exit %d, want 1 (files skipped)\n%v", r.code, r)
	}
	if !strings.Contains(r.stderr, "arcpack: warning: ") || !strings.Contains(r.stderr, "secret") || !strings.Contains(r.stderr, "permission denied") {
		t.Errorf("no warning naming secret:\n%s", r.stderr)
	}
	// The file and the directory that could not be listed, whose
	// entries are left out: the count says both.
	if !strings.Contains(r.stderr, "2 file(s) skipped") || !strings.Contains(r.stderr, "read directory "+filepath.Join(src, "shut")) {
		t.Errorf("the unlistable directory is not counted or named:\n%s", r.stderr)
	}
	l := mustArcpack(t, "list", out+".001")
	if l.stdout != "public\nshut\n" {
		t.Errorf("archive lists %q, want public and the empty shut", l.stdout)
	}
}

func TestUnreadableSourceIsFatalWithStrict(t *testing.T) {
	src, outDir, o := unreadableTree(t)
	out := filepath.Join(outDir, "o")
	r := runBin(t, o, arcpackBin, "create", src, "-o", out, "--strict")
	// The scan meets the directory it cannot list before any file is read.
	wantFail(t, r, 2, "shut", "permission denied")
	if v := volumes(t, out); len(v) != 0 {
		t.Errorf("--strict failure left volumes %v", v)
	}
}

// TestInterruptedCreateLeavesNoVolume sends SIGINT, SIGTERM or SIGHUP while
// create is busy and expects exit 130 and no file at all left in the
// output directory: neither a volume nor a temporary file.
func TestInterruptedCreateLeavesNoVolume(t *testing.T) {
	defaultSignals(t)
	src := randomTree(t, 12, 8<<20)
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP} {
		t.Run(sig.String(), func(t *testing.T) {
			outDir := t.TempDir()
			out := filepath.Join(outDir, "o")
			cmd, stderr := startCreate(t, outDir, src, "-o", out, "--volume-size", "4M", "--level", "max", "--workers", "1")
			time.Sleep(50 * time.Millisecond)
			interrupt(t, cmd, sig, stderr, "create", "arcpack: create "+out+": interrupted, no archive written")
			if ents, _ := os.ReadDir(outDir); len(ents) != 0 {
				t.Errorf("create stopped by %v left %v in the output directory", sig, names(ents))
			}
		})
	}
}

// TestInterruptedExtractSaysSo sends SIGINT, SIGTERM or SIGHUP while
// extract writes and expects exit 130 (docs/CLI.md), not death by the
// signal (a shell's 143 for SIGTERM), and a line saying what is left.
func TestInterruptedExtractSaysSo(t *testing.T) {
	defaultSignals(t)
	src := randomTree(t, 6, 8<<20)
	arc := filepath.Join(t.TempDir(), "a")
	mustArcpack(t, "create", src, "-o", arc, "--codec", "raw")
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP} {
		t.Run(sig.String(), func(t *testing.T) {
			dest := t.TempDir()
			cmd, stderr := startArcpack(t, dest, "extract", arc+".001", "-o", dest, "--workers", "1")
			interrupt(t, cmd, sig, stderr, "extract", "arcpack: extract "+arc+".001 to "+dest+": interrupted;")
		})
	}
}

// interrupt sends sig to the arcpack command what that cmd runs and
// expects exit 130 and the line want on its stderr; it skips the test when
// the command finished before the signal arrived.
func interrupt(t *testing.T, cmd *exec.Cmd, sig syscall.Signal, stderr *bytes.Buffer, what, want string) {
	t.Helper()
	cmd.Process.Signal(sig)
	err := cmd.Wait()
	if err == nil {
		t.Skip(what + " finished before the signal arrived")
	}
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 130 {
		t.Errorf("%s stopped by %v: %v, want exit 130; stderr %s", what, sig, err, stderr.String())
	}
	if !strings.Contains(stderr.String(), want) {
		t.Errorf("stderr %q lacks %q", stderr.String(), want)
	}
}

// TestIgnoredSignalsDoNotInterruptCreate runs create with SIGHUP and
// SIGINT ignored, as `nohup arcpack create ...` and a script's background
// job start it, and sends it both: it must finish the archive (exit 0), not
// stop at the hangup nohup is there to keep from it.
func TestIgnoredSignalsDoNotInterruptCreate(t *testing.T) {
	src := randomTree(t, 4, 8<<20)
	outDir := t.TempDir()
	out := filepath.Join(outDir, "o")
	// The shell's trap '' leaves the signals ignored across the exec.
	cmd := exec.Command("sh", "-c", `trap '' HUP INT; exec "$0" "$@"`, arcpackBin,
		"create", src, "-o", out, "--volume-size", "4M", "--level", "max", "--workers", "1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitForOutput(outDir)
	if exited(cmd.Process.Pid) {
		t.Skip("create finished before the signals could be sent")
	}
	cmd.Process.Signal(syscall.SIGHUP)
	cmd.Process.Signal(syscall.SIGINT)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("create with SIGHUP and SIGINT ignored, sent both: %v; stderr %s", err, stderr.String())
	}
	mustArcpack(t, "verify", out+".001")
}

// startCreate starts arcpack create with args in the background and
// returns once it has written something into outDir (waitForOutput).
func startCreate(t *testing.T, outDir string, args ...string) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	return startArcpack(t, outDir, append([]string{"create"}, args...)...)
}

// startArcpack starts arcpack with args, its stderr kept, and returns once
// it has written something into outDir (waitForOutput).
func startArcpack(t *testing.T, outDir string, args ...string) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	cmd := exec.Command(arcpackBin, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitForOutput(outDir)
	return cmd, &stderr
}

// waitForOutput returns once arcpack has written something into outDir
// besides create's lock file (create's scan is done by then), or after 20
// seconds.
func waitForOutput(outDir string) {
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(2 * time.Millisecond) {
		ents, _ := os.ReadDir(outDir)
		if slices.ContainsFunc(ents, func(e os.DirEntry) bool { return !strings.HasSuffix(e.Name(), ".arcpack-lock") }) {
			break
		}
	}
}

// randomTree makes a directory of n files of size random bytes each
// (incompressible: packing them takes real time and space).
func randomTree(t *testing.T, n, size int) string {
	t.Helper()
	src := filepath.Join(t.TempDir(), "src")
	os.Mkdir(src, 0o755)
	rnd := rand.New(rand.NewPCG(3, 4))
	buf := make([]byte, size)
	for i := 0; i < n; i++ {
		fillRandom(rnd, buf)
		os.WriteFile(filepath.Join(src, "f"+string(rune('a'+i))), buf, 0o644)
	}
	return src
}

func names(ents []os.DirEntry) []string {
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

// smallDisk mounts a 1 MiB tmpfs on a new temp dir, unmounted at the
// test's end, and returns it; it skips the test where that cannot be done.
func smallDisk(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting a small tmpfs needs root")
	}
	dir := t.TempDir()
	if b, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=1m,mode=0755", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs: %v %s", err, b)
	}
	t.Cleanup(func() {
		if b, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v %s", dir, err, b)
		}
	})
	return dir
}

// TestDiskFullIsACleanError packs onto a 1 MiB tmpfs: create must fail with
// one line naming the output and the cause, and leave nothing behind.
func TestDiskFullIsACleanError(t *testing.T) {
	src := randomTree(t, 3, 1<<20)
	outDir := smallDisk(t)
	for _, tc := range []struct {
		name, vs string
		full     bool // the disk is full before create starts: the first volume's header fails
	}{
		{"volume-size 0", "0", false},
		{"volume-size 256K", "256K", false},
		{"disk full from the start", "256K", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.full {
				fill := filepath.Join(outDir, "fill")
				f, err := os.Create(fill)
				if err != nil {
					t.Fatal(err)
				}
				f.Write(make([]byte, 2<<20)) // fails once the tmpfs is full
				f.Close()
				defer os.Remove(fill)
			}
			out := filepath.Join(outDir, "o")
			r := arcpack(t, "create", src, "-o", out, "--volume-size", tc.vs, "--progress", "never")
			wantFail(t, r, 2, "arcpack: create "+out+": ", "no space left on device")
			if strings.Count(r.stderr, "write ") > 1 {
				t.Errorf("the error repeats itself: %s", r.stderr)
			}
			ents, _ := os.ReadDir(outDir)
			ents = slices.DeleteFunc(ents, func(e os.DirEntry) bool { return e.Name() == "fill" })
			if len(ents) != 0 {
				t.Errorf("a failed create left %v on the full disk", names(ents))
			}
		})
	}
}

// TestExtractOntoAFullDiskGivesTheSpaceBack extracts a file of 3 MiB onto
// a 1 MiB tmpfs: the extraction stops (exit 2, naming the file and the cause) and
// the file it was writing is emptied again, as the ones not written yet
// are, where it had been left holding all the space there was.
func TestExtractOntoAFullDiskGivesTheSpaceBack(t *testing.T) {
	base := pack(t, nil, randomTree(t, 1, 3<<20))
	dest := smallDisk(t)
	r := arcpack(t, "extract", base+".001", "-o", filepath.Join(dest, "x"), "--progress", "never")
	wantFail(t, r, 2, "no space left on device", "emptied again, to give the space back", "extract again with --force")
	var used int64
	filepath.WalkDir(dest, func(p string, d os.DirEntry, err error) error {
		var st syscall.Stat_t
		if err == nil && syscall.Lstat(p, &st) == nil && d.Type().IsRegular() {
			used += st.Blocks * 512
		}
		return nil
	})
	if used > 128<<10 {
		t.Errorf("the stopped extraction left %d bytes of files on the full disk", used)
	}
	// With --force over a file DEST had: that file is as it was.
	if err := os.WriteFile(filepath.Join(dest, "x", "fa"), []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	r = arcpack(t, "extract", base+".001", "-o", filepath.Join(dest, "x"), "--force", "--progress", "never")
	wantFail(t, r, 2, "no space left on device", "or the file DEST had there put back; the files not written yet are as DEST had them")
	if b, err := os.ReadFile(filepath.Join(dest, "x", "fa")); err != nil || string(b) != "old" {
		t.Errorf("fa after a stopped extract --force: %q, %v; want what DEST had", b, err)
	}
}

// TestVanishingSourceIsSkippedWithWarning deletes a file after create has
// listed it and before it is read: a warning names it, the rest is packed.
// Files above the writer's whole-file limit (32 MiB) are opened only when
// the stream reaches them, so the victim is one, behind another.
func TestVanishingSourceIsSkippedWithWarning(t *testing.T) {
	src := filepath.Join(t.TempDir(), "src")
	os.Mkdir(src, 0o755)
	big := make([]byte, 40<<20)
	rnd := rand.New(rand.NewPCG(1, 2))
	for i := 0; i+8 <= len(big); i += 8 {
		binary.LittleEndian.PutUint64(big[i:], rnd.Uint64())
	}
	os.WriteFile(filepath.Join(src, "a-big"), big, 0o644)
	victim := filepath.Join(src, "zz-vanishes")
	os.WriteFile(victim, nil, 0o644)
	os.Truncate(victim, 33<<20)
	outDir := t.TempDir()
	out := filepath.Join(outDir, "o")
	// The scan is done once output appears; a-big then takes a while.
	cmd, stderr := startCreate(t, outDir, src, "-o", out, "--level", "high", "--workers", "1", "--progress", "never")
	if err := os.Remove(victim); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	if err == nil && !strings.Contains(stderr.String(), victim) {
		t.Skipf("create read the file before it vanished (stderr %q)", stderr.String())
	}
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Fatalf("create: %v, want exit 1; stderr %s", err, stderr.String())
	}
	if !strings.Contains(stderr.String(), "arcpack: warning: ") || !strings.Contains(stderr.String(), victim) || !strings.Contains(stderr.String(), "no such file or directory") {
		t.Errorf("no warning naming %s and saying why: %s", victim, stderr.String())
	}
	if l := mustArcpack(t, "list", out+".001"); l.stdout != "a-big\n" {
		t.Errorf("archive lists %q, want only a-big", l.stdout)
	}
	mustArcpack(t, "verify", out+".001")
}

// TestChangingSourceIsStoredConsistently packs a file that grows (appended
// to all along) and one that shrinks (truncated step by step) while create
// reads them. Every state of either is a prefix of its final (growing) or
// first (shrinking) content, so what create stores without a warning must
// be such a prefix; a file that changed during both of its reads is named
// in a warning (exit 1); either way the archived size is the bytes stored.
func TestChangingSourceIsStoredConsistently(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(path string, full []byte, stop <-chan struct{}) []byte // returns the content all states are prefixes of
	}{
		{"grows", func(path string, full []byte, stop <-chan struct{}) []byte {
			f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				t.Error(err)
				return nil
			}
			defer f.Close()
			grown := append([]byte{}, full...)
			for i := 0; ; i++ {
				select {
				case <-stop:
					return grown
				default:
				}
				line := []byte(fmt.Sprintf("line %d appended while packing\n", i))
				f.Write(line)
				grown = append(grown, line...)
				time.Sleep(50 * time.Microsecond)
			}
		}},
		{"shrinks", func(path string, full []byte, stop <-chan struct{}) []byte {
			for size := int64(len(full)); size > 0; size -= 4099 {
				select {
				case <-stop:
					return full
				default:
				}
				os.Truncate(path, size)
				time.Sleep(50 * time.Microsecond)
			}
			return full
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := filepath.Join(t.TempDir(), "src")
			os.Mkdir(src, 0o755)
			full := make([]byte, 12<<20)
			rnd := rand.New(rand.NewPCG(9, 9))
			fillRandom(rnd, full)
			path := filepath.Join(src, "moving")
			os.WriteFile(path, full, 0o644)
			stop := make(chan struct{})
			done := make(chan []byte)
			go func() { done <- tc.change(path, full, stop) }()
			out := filepath.Join(t.TempDir(), "o")
			r := arcpack(t, "create", src, "-o", out, "--progress", "never", "--level", "fast")
			close(stop)
			all := <-done
			if r.code != 0 && r.code != 1 {
				t.Fatalf("create: %v", r)
			}
			warned := strings.Contains(r.stderr, "arcpack: warning: "+path+" changed while being read")
			if (r.code == 1) != warned {
				t.Errorf("exit %d, but warned about %s: %v\n%v", r.code, path, warned, r)
			}
			got := mustArcpack(t, "cat", out+".001", "moving").stdout
			// Unwarned, the copy must be one state of the file. A file that
			// changed during both reads is kept as the second read got it,
			// which may mix states (a read racing a truncate can even see
			// zeros): then the warning is the promise.
			if !warned && (len(got) > len(all) || got != string(all[:len(got)])) {
				at := 0
				for at < len(got) && at < len(all) && got[at] == all[at] {
					at++
				}
				t.Fatalf("archived %d bytes without a warning that are no state of the file (states are prefixes of %d bytes): they differ from offset %d on", len(got), len(all), at)
			}
			var e struct {
				Size int `json:"size"`
			}
			if err := json.Unmarshal([]byte(mustArcpack(t, "list", "--json", out+".001", "moving").stdout), &e); err != nil || e.Size != len(got) {
				t.Errorf("archived size %d for %d bytes stored (%v)", e.Size, len(got), err)
			}
			t.Logf("stored %d of %d bytes; warned: %v", len(got), len(all), warned)
		})
	}
}

// corruptible makes an archive of a few files with known content, over
// three or more volumes.
func corruptible(t *testing.T) (src, base string) {
	src = filepath.Join(t.TempDir(), "src")
	os.Mkdir(src, 0o755)
	rnd := rand.New(rand.NewPCG(5, 6))
	for _, name := range []string{"victim", "bystander"} {
		b := make([]byte, 400<<10)
		fillRandom(rnd, b)
		os.WriteFile(filepath.Join(src, name), b, 0o644)
	}
	return src, pack(t, small, src)
}

// flipByte changes the byte at off in path (off < 0: from the end).
func flipByte(t *testing.T, path string, off int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if off < 0 {
		st, _ := f.Stat()
		off += st.Size()
	}
	b := []byte{0}
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0x40
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

func TestFlippedBlockByteIsNamedByVerify(t *testing.T) {
	src, base := corruptible(t)
	// The stream starts with the first file's blocks: "bystander" sorts first.
	flipByte(t, base+".001", format.VolumeHeaderSize+1000)
	r := arcpack(t, "verify", base+".001")
	wantFail(t, r, 1, "arcpack: verify "+base+".001: damaged: 1 bad block(s), 0 missing volume(s), 0 damaged volume(s), index intact; 1 file(s) affected")
	if !strings.Contains(r.stdout, "damaged block: block 0 (frame 0, volume "+base+".001): checksum ") {
		t.Errorf("verify does not name the block, frame and volume:\n%v", r)
	}
	if !strings.Contains(r.stdout, "damaged file: bystander\n") || strings.Contains(r.stdout, "victim") {
		t.Errorf("verify does not name exactly the damaged file:\n%v", r)
	}
	wantFail(t, arcpack(t, "cat", base+".001", "bystander"), 1, "arcpack: cat "+base+".001: bystander: block 0 (frame 0, volume "+base+".001): checksum ")
	if r := mustArcpack(t, "cat", base+".001", "victim"); len(r.stdout) != 400<<10 {
		t.Errorf("cat of the intact file wrote %d bytes", len(r.stdout))
	}
	dst := filepath.Join(t.TempDir(), "dst")
	e := arcpack(t, "extract", base+".001", "-o", dst)
	wantFail(t, e, 1, "arcpack: extract "+base+".001: 1 file could not be fully extracted")
	if !strings.Contains(e.stderr, "arcpack: warning: bystander: block 0 ") {
		t.Errorf("extract does not name the damaged file:\n%v", e)
	}
	if b, err := os.ReadFile(filepath.Join(src, "victim")); err != nil {
		t.Fatal(err)
	} else if got, _ := os.ReadFile(filepath.Join(dst, "victim")); !bytes.Equal(got, b) {
		t.Error("the intact file did not come back intact")
	}
}

func TestFlippedIndexByteIsDetected(t *testing.T) {
	_, base := corruptible(t)
	vols := volumes(t, base)
	flipByte(t, vols[len(vols)-1], -format.FooterSize-3) // inside the compressed index
	wantFail(t, arcpack(t, "verify", base+".001"), 1, "arcpack: verify "+base+".001: damaged: ", "index checksum", "corrupt")
	wantFail(t, arcpack(t, "list", base+".001"), 2, "arcpack: open "+base+".001: ", "index checksum", "corrupt")
}

func TestMissingVolumeIsNamed(t *testing.T) {
	_, base := corruptible(t)
	os.Remove(base + ".002")
	r := arcpack(t, "verify", base+".001")
	wantFail(t, r, 1, "arcpack: verify "+base+".001: damaged: ", "1 missing volume(s)")
	if !strings.Contains(r.stdout, "missing volume: "+base+".002\n") {
		t.Errorf("verify does not name the missing volume:\n%v", r)
	}
}

// Bytes appended to a volume that is not the last (a copy that went on,
// a stray write) are damage to that volume alone: verify names it and
// exits 1, list and extract read every file; until 2026-12-07 every
// command refused the whole archive.
func TestBytesAppendedToAMiddleVolumeStayLocal(t *testing.T) {
	src, base := corruptible(t)
	if len(volumes(t, base)) < 3 {
		t.Fatal("want three volumes or more")
	}
	f, err := os.OpenFile(base+".002", os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("extra\n")
	f.Close()
	r := arcpack(t, "verify", base+".001")
	wantFail(t, r, 1, "arcpack: verify "+base+".001: damaged: 0 bad block(s), 0 missing volume(s), 1 damaged volume(s), index intact; 0 file(s) affected")
	if !strings.Contains(r.stdout, "damaged volume: "+base+".002: corrupt: ") || !strings.Contains(r.stdout, "(trailing data)") {
		t.Errorf("verify does not name the volume and what is wrong:\n%v", r)
	}
	mustArcpack(t, "list", base+".001")
	if i := mustArcpack(t, "info", base+".001"); !strings.Contains(i.stdout, base+".002  ") || !strings.Contains(i.stdout, "  damaged: corrupt: ") {
		t.Errorf("info does not mark the volume damaged:\n%v", i)
	}
	dst := filepath.Join(t.TempDir(), "dst")
	mustArcpack(t, "extract", base+".001", "-o", dst)
	for _, name := range []string{"victim", "bystander"} {
		want, _ := os.ReadFile(filepath.Join(src, name))
		if got, err := os.ReadFile(filepath.Join(dst, name)); err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s did not come back intact: %v", name, err)
		}
	}
}

// Volume 1 lost: verify pointed at it (or at NAME), as users do, reports a
// missing volume and the files it held (exit 1), not "cannot be opened"
// (exit 2): the other volumes are there.
func TestMissingFirstVolumeNamedOnTheCommandLineIsDamage(t *testing.T) {
	_, base := corruptible(t)
	os.Remove(base + ".001")
	for _, name := range []string{base + ".001", base} {
		r := arcpack(t, "verify", name)
		wantFail(t, r, 1, "arcpack: verify "+name+": damaged: ", "1 missing volume(s)", "1 file(s) affected")
		if !strings.Contains(r.stdout, "missing volume: "+base+".001\n") || !strings.Contains(r.stdout, "damaged file: bystander\n") {
			t.Errorf("verify %s does not name the missing volume and the file it held:\n%v", name, r)
		}
	}
	// A volume past the last one is still a name that is not there.
	wantFail(t, arcpack(t, "verify", base+".009"), 2, base+".009")
}

// info counts a missing middle volume at the size it was written, so the
// ratio does not grow when volumes go missing, and says which is missing.
func TestInfoCountsAMissingVolumeAtItsSize(t *testing.T) {
	_, base := corruptible(t)
	var before, after struct {
		ArchiveBytes int64   `json:"archive_bytes"`
		Ratio        float64 `json:"ratio"`
		Volumes      []struct {
			Path    string `json:"path"`
			Missing bool   `json:"missing"`
		} `json:"volumes"`
	}
	if err := json.Unmarshal([]byte(mustArcpack(t, "info", base+".001", "--json").stdout), &before); err != nil {
		t.Fatal(err)
	}
	os.Remove(base + ".002")
	if err := json.Unmarshal([]byte(mustArcpack(t, "info", base+".001", "--json").stdout), &after); err != nil {
		t.Fatal(err)
	}
	if after.ArchiveBytes != before.ArchiveBytes || after.Ratio != before.Ratio {
		t.Errorf("with .002 missing: %d bytes, ratio %v; before: %d, %v", after.ArchiveBytes, after.Ratio, before.ArchiveBytes, before.Ratio)
	}
	for _, v := range after.Volumes {
		if v.Missing != (v.Path == base+".002") {
			t.Errorf("volume %s: missing %v", v.Path, v.Missing)
		}
	}
	if out := mustArcpack(t, "info", base+".001").stdout; !strings.Contains(out, base+".002  missing\n") {
		t.Errorf("info does not say .002 is missing:\n%s", out)
	}
	// A truncated volume counts as written too.
	if err := os.WriteFile(base+".002", []byte("short"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(mustArcpack(t, "info", base+".001", "--json").stdout), &after); err != nil {
		t.Fatal(err)
	}
	if after.ArchiveBytes != before.ArchiveBytes || after.Ratio != before.Ratio {
		t.Errorf("with .002 truncated: %d bytes, ratio %v; before: %d, %v", after.ArchiveBytes, after.Ratio, before.ArchiveBytes, before.Ratio)
	}
}

// TestTruncatedVolumeIsNamed: a short middle volume is named by verify and
// is local damage: the archive still lists, and extract names the files
// that lie past the volume's end.
func TestTruncatedVolumeIsNamed(t *testing.T) {
	_, base := corruptible(t)
	os.Truncate(base+".002", 1000)
	wantVolumeDamageLocal(t, base, base+".002: truncated: 1000 bytes, want 262144\n", "truncated")
}

// wantVolumeDamageLocal checks that volume damage in corruptible's archive
// base is named by verify (a "damaged volume: " line starting with
// volumeLine) and costs only files: the archive still lists, through
// another volume's name too, and extract names the files it could not
// write, saying why.
func wantVolumeDamageLocal(t *testing.T, base, volumeLine, why string) {
	t.Helper()
	r := arcpack(t, "verify", base+".001")
	wantFail(t, r, 1, "arcpack: verify "+base+".001: damaged: ")
	if !strings.Contains(r.stdout, "damaged volume: "+volumeLine) {
		t.Errorf("verify does not name the volume (%q):\n%v", volumeLine, r)
	}
	if l := mustArcpack(t, "list", base+".003"); l.stdout != "bystander\nvictim\n" {
		t.Errorf("list: %q", l.stdout)
	}
	e := arcpack(t, "extract", base+".001", "-o", filepath.Join(t.TempDir(), "dst"))
	wantFail(t, e, 1, " could not be fully extracted")
	if !strings.Contains(e.stderr, why) || !strings.Contains(e.stderr, base+".002") {
		t.Errorf("extract does not name the volume and say %q:\n%v", why, e)
	}
}

// A volume of another archive in the set's place (here another run's of
// the same tree) is named, and costs only the files with bytes in it: the
// others list and extract.
func TestVolumeOfAnotherArchiveIsNamed(t *testing.T) {
	src, base := corruptible(t)
	other := pack(t, small, src) // same content, another archive id
	b, _ := os.ReadFile(other + ".002")
	os.WriteFile(base+".002", b, 0o644)
	wantVolumeDamageLocal(t, base, base+".002: volume of another archive", "volume of another archive")
}

func TestExtractRefusesPathsOutsideTheArchive(t *testing.T) {
	_, base := corruptible(t)
	dst := filepath.Join(t.TempDir(), "dst")
	wantFail(t, arcpack(t, "extract", base+".001", "-o", dst, "../../etc/passwd"), 2,
		"arcpack: extract "+base+".001: ../../etc/passwd: not in the archive")
	wantFail(t, arcpack(t, "cat", base+".001", "victim/x"), 2,
		"arcpack: cat "+base+".001: victim/x: not in the archive (a parent is not a directory)")
}

// TestExtractDoesNotFollowSymlinksInDest: a symlink planted in DEST where
// the archive has a directory must not lead the extraction outside DEST.
func TestExtractDoesNotFollowSymlinksInDest(t *testing.T) {
	src := filepath.Join(t.TempDir(), "src")
	os.MkdirAll(filepath.Join(src, "a"), 0o755)
	os.WriteFile(filepath.Join(src, "a", "f"), []byte("data\n"), 0o644)
	base := pack(t, nil, src)
	outside := t.TempDir()
	dst := filepath.Join(t.TempDir(), "dst")
	os.Mkdir(dst, 0o755)
	os.Symlink(outside, filepath.Join(dst, "a"))
	arcpack(t, "extract", base+".001", "-o", dst, "--force")
	if ents, _ := os.ReadDir(outside); len(ents) != 0 {
		t.Fatalf("extract wrote through a symlink in DEST into %s: %v", outside, ents)
	}
}

func TestExtractRefusesExistingFilesWithoutForce(t *testing.T) {
	src := filepath.Join(t.TempDir(), "src")
	os.Mkdir(src, 0o755)
	os.WriteFile(filepath.Join(src, "f"), []byte("archived\n"), 0o644)
	base := pack(t, nil, src)
	dst := filepath.Join(t.TempDir(), "dst")
	os.Mkdir(dst, 0o755)
	os.WriteFile(filepath.Join(dst, "f"), []byte("mine\n"), 0o644)
	r := arcpack(t, "extract", base+".001", "-o", dst)
	if r.code == 0 {
		t.Fatalf("extract over an existing file without --force exited 0")
	}
	if b, _ := os.ReadFile(filepath.Join(dst, "f")); string(b) != "mine\n" {
		t.Errorf("existing file overwritten without --force: %q", b)
	}
	mustArcpack(t, "extract", base+".001", "-o", dst, "--force")
	if b, _ := os.ReadFile(filepath.Join(dst, "f")); string(b) != "archived\n" {
		t.Errorf("--force did not replace the file: %q", b)
	}
}

// A lock file that another user's killed create left in a shared
// directory locks nothing: a create as someone else goes on.
func TestAnotherUsersStaleLockFileLocksNothing(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to leave a file as another user")
	}
	src, outDir, o := unreadableTree(t)
	os.Chmod(outDir, 0o1777)
	out := filepath.Join(outDir, "o")
	if err := os.WriteFile(out+".arcpack-lock", nil, 0o644); err != nil { // root's, read-only to nobody
		t.Fatal(err)
	}
	r := runBin(t, o, arcpackBin, "create", filepath.Join(src, "public"), "-o", out, "--progress", "never")
	if r.code != 0 {
		t.Fatalf("create beside another user's stale lock file: %v", r)
	}
}

// While one arcpack writes an archive (here: the test holds its lock), a
// create --force, a repair and a recovery add of the same archive are
// refused at once: each renames files into place, and two at once could
// leave volumes of two archives, or parity over another, all exiting 0.
func TestWritersOfOneArchiveExcludeEachOther(t *testing.T) {
	src := randomTree(t, 3, 64<<10)
	base := pack(t, []string{"--recovery", "10%"}, src)
	unlock, _, err := format.LockArchive(base)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		says string // the command and archive the line names
	}{
		{[]string{"create", src, "-o", base, "--force", "--progress", "never"}, "create " + base},
		{[]string{"repair", base + ".001", "--progress", "never"}, "repair " + base + ".001: "},
		{[]string{"recovery", "add", base + ".001", "--recovery", "5%", "--force", "--progress", "never"}, "recovery add " + base + ".001: "},
	} {
		r := arcpack(t, tc.args...)
		wantFail(t, r, 2, "another arcpack is writing this archive now")
		if !strings.Contains(r.stderr, "arcpack: "+tc.says) {
			t.Errorf("%s: %q does not say %q", tc.args[0], r.stderr, tc.says)
		}
	}
	unlock()
	mustArcpack(t, "repair", base+".001", "--progress", "never")
	mustArcpack(t, "verify", base+".001")
}

// archiveWithRecoveryForNobody packs root's archive out, with recovery
// volumes, in outDir (writable by all), and gives the options that run a
// command as nobody; it skips the test unless it runs as root.
func archiveWithRecoveryForNobody(t *testing.T) (out, outDir string, o runOpts) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to run as another user")
	}
	var src string
	src, outDir, o = unreadableTree(t)
	out = filepath.Join(outDir, "o")
	mustArcpack(t, "create", filepath.Join(src, "public"), "-o", out, "--recovery", "10%", "--progress", "never")
	return out, outDir, o
}

// Where the archive's directory cannot be written, there is nothing to
// lock: repair still checks and reports (here: intact, exit 0).
func TestRepairInADirectoryItCannotWriteStillReports(t *testing.T) {
	out, outDir, o := archiveWithRecoveryForNobody(t)
	os.Chmod(outDir, 0o755) // root's: nobody may not create the lock file
	r := runBin(t, o, arcpackBin, "repair", out+".001", "--progress", "never")
	if r.code != 0 || !strings.Contains(r.stdout, "intact") {
		t.Fatalf("repair as a user who cannot write the directory: %v", r)
	}
}

// A create into a directory this user may not write fails with the
// cause, permission denied, and no advice to remove a lock file that
// is not there.
func TestCreateInADirectoryItCannotWriteSaysPermissionDenied(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run as another user")
	}
	src, outDir, o := unreadableTree(t)
	os.Chmod(outDir, 0o755) // root's: nobody may not create anything in it
	out := filepath.Join(outDir, "o")
	for _, args := range [][]string{
		{"create", filepath.Join(src, "public"), "-o", out, "--progress", "never"},
		{"create", filepath.Join(src, "public"), "-o", out, "--force", "--progress", "never"},
	} {
		r := runBin(t, o, arcpackBin, args...)
		wantFail(t, r, 2, "arcpack: create "+out+": ", "permission denied")
		if strings.Contains(r.stderr, "remove the file") || strings.Contains(r.stderr, "no such file") {
			t.Errorf("the error blames a lock file that is not there: %s", r.stderr)
		}
	}
}

// A lock file another user holds and that this user may not open (it was
// made under umask 077) in a directory this user may write is not skipped:
// that user's writer may be running. recovery add is refused.
func TestALockFileThatCannotBeOpenedIsNotSkipped(t *testing.T) {
	out, _, o := archiveWithRecoveryForNobody(t)
	vols, _ := filepath.Glob(out + ".*")
	for _, v := range vols {
		os.Chmod(v, 0o666)
	}
	f, err := os.OpenFile(format.LockName(out), os.O_RDONLY|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	r := runBin(t, o, arcpackBin, "recovery", "add", out+".001", "--recovery", "20%", "--force", "--progress", "never")
	wantFail(t, r, 2, "permission denied")
}

// A writer killed with SIGKILL leaves its temporary volumes (a volume's
// size each, at times); the next create, repair or recovery add of that
// archive removes them, under the archive's lock, and says so.
func TestTemporaryVolumesOfAKilledRunAreRemovedByTheNext(t *testing.T) {
	src := randomTree(t, 3, 64<<10)
	base := pack(t, []string{"--recovery", "10%"}, src)
	plant := func() []string {
		left := []string{base + ".002.tmp-0123456789ab", base + ".r01.tmp-abcdef012345"}
		for _, p := range left {
			if err := os.WriteFile(p, make([]byte, 4096), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return left
	}
	for _, args := range [][]string{
		{"repair", base + ".001", "--progress", "never"},
		{"create", src, "-o", base, "--force", "--progress", "never"},
	} {
		left := plant()
		r := mustArcpack(t, args...)
		if !strings.Contains(r.stdout, "removed 2 temporary file(s) left by an earlier run that was killed") {
			t.Errorf("%s does not say what it removed:\n%v", args[0], r)
		}
		for _, p := range left {
			if _, err := os.Stat(p); err == nil {
				t.Errorf("%s left %s", args[0], p)
			}
		}
	}
	mustArcpack(t, "verify", base+".001")
}

// A volume the user cannot read is not damage, nor missing: list, verify
// and extract run as that user fail to open the archive (exit 2), naming
// the volume and the permission, and do not send them to arcpack repair.
func TestUnreadableVolumeIsNamedNotMissing(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run arcpack as nobody")
	}
	top := sharedTempDir(t, "arc-unreadable-vol-", 0o777)
	src := filepath.Join(top, "src")
	os.Mkdir(src, 0o755)
	data := make([]byte, 3<<20)
	for i := range data {
		data[i] = byte(rand.Uint32())
	}
	os.WriteFile(filepath.Join(src, "r"), data, 0o644)
	base := filepath.Join(top, "a")
	mustArcpack(t, "create", src, "-o", base, "--volume-size", "1M", "--recovery", "10%", "--progress", "never")
	nobody := runOpts{uid: 65534, gid: 65534}
	vols, _ := filepath.Glob(base + ".0*")
	if len(vols) < 3 {
		t.Fatalf("volumes %v, want 3 or more", vols)
	}
	for i, vol := range vols[1:] {
		n := fmt.Sprint(i)
		if err := os.Chmod(vol, 0o600); err != nil {
			t.Fatal(err)
		}
		for _, args := range [][]string{
			{"list", base + ".001"},
			{"verify", base + ".001"},
			{"extract", base + ".001", "-o", filepath.Join(top, "x"+n), "--progress", "never"},
		} {
			r := runBin(t, nobody, arcpackBin, args...)
			wantFail(t, r, 2, vol, "permission denied")
			if strings.Contains(r.stderr, "missing") || strings.Contains(r.stderr, "repair") {
				t.Errorf("%s with %s unreadable: calls it missing or damaged:\n%v", args[0], vol, r)
			}
		}
		os.Chmod(vol, 0o644)
	}
	// Past the set's end (another user's file that happens to be called
	// NAME.029), an unreadable file is a stray like any other.
	stray := base + ".029"
	if err := os.WriteFile(stray, []byte("not yours"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := runBin(t, nobody, arcpackBin, "verify", "--progress", "never", base+".001")
	if r.code != 0 || !strings.Contains(r.stdout, "not part of the archive") || !strings.Contains(r.stdout, stray) {
		t.Errorf("verify with an unreadable %s past the end: %v; want exit 0, naming it a stray", stray, r)
	}
}

// In a sticky directory (as /tmp) only a file's owner, or the directory's,
// may rename over it or move it: create --force, and repair putting back a
// volume found under another name, refuse another user's files there
// before any work, where they packed or rebuilt everything, then failed
// at the rename and left a journal every later run failed on.
func TestAnotherUsersFilesInAStickyDirectoryAreRefusedBeforeAnyWork(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run arcpack as nobody")
	}
	top := sharedTempDir(t, "arc-sticky-", 0o777|os.ModeSticky)
	src := filepath.Join(top, "src")
	os.Mkdir(src, 0o755)
	data := make([]byte, 400<<10)
	fillRandom(rand.New(rand.NewPCG(7, 8)), data)
	os.WriteFile(filepath.Join(src, "r"), data, 0o644)
	base := filepath.Join(top, "a")
	mustArcpack(t, "create", src, "-o", base, "--volume-size", "64K", "--recovery", "30%", "--progress", "never")
	vols, _ := filepath.Glob(base + ".0*")
	last := vols[len(vols)-1]
	nobody := runOpts{uid: 65534, gid: 65534}
	journal := base + ".arcpack-commit"

	r := runBin(t, nobody, arcpackBin, "create", src, "-o", base, "--force", "--progress", "never")
	wantFail(t, r, 2, "another user's", "sticky directory", "--force cannot replace the archive")

	// The last volume under the next name: repair would move it back.
	if err := os.Rename(last, last+".x"); err != nil {
		t.Fatal(err)
	}
	next := fmt.Sprintf("%s.%03d", base, len(vols)+1)
	os.Rename(last+".x", next)
	r = runBin(t, nobody, arcpackBin, "repair", base+".001", "--progress", "never")
	wantFail(t, r, 2, next, "another user's")
	if _, err := os.Stat(journal); err == nil {
		t.Errorf("a refused repair left %s", journal)
	}
	mustArcpack(t, "repair", base+".001", "--progress", "never") // root may
	mustArcpack(t, "verify", base+".001", "--progress", "never")
}

// Under a low limit of open files, an archive of many volumes is read
// whole: the reader holds as many volumes open as the limit leaves room
// for (half of what is free past a reserve for the rest of the process),
// down to one, and reopens the others as it reads them; at a limit just
// above what opening needs, verify, cat and extract had died in Go's
// runtime (eventfd failed) or called the archive damaged. Recovery
// volumes are added, checked and repaired from under the same limit.
func TestTheLimitOfOpenFilesIsSaidAsSuch(t *testing.T) {
	src := filepath.Join(t.TempDir(), "src")
	os.Mkdir(src, 0o755)
	data := make([]byte, 600<<10)
	fillRandom(rand.New(rand.NewPCG(9, 10)), data)
	os.WriteFile(filepath.Join(src, "r"), data, 0o644)
	base := filepath.Join(t.TempDir(), "a")
	mustArcpack(t, "create", src, "-o", base, "--volume-size", "4K", "--progress", "never")
	if vols, _ := filepath.Glob(base + ".*"); len(vols) < 120 {
		t.Fatalf("%d volumes, want over 120", len(vols))
	}
	under := func(limit int, args ...string) result {
		return runBin(t, runOpts{}, "/bin/sh", append([]string{"-c", fmt.Sprintf("ulimit -n %d && exec \"$0\" \"$@\"", limit), arcpackBin}, args...)...)
	}
	for _, limit := range []int{40, 48, 72, 90} {
		if r := under(limit, "verify", base+".001", "--progress", "never"); r.code != 0 || !strings.Contains(r.stdout, ": intact: ") {
			t.Errorf("verify under %d open files: %v", limit, r)
		}
		if r := under(limit, "cat", base+".001", "r"); r.code != 0 || r.stdout != string(data) {
			t.Errorf("cat under %d open files: exit %d, %d bytes, stderr %q", limit, r.code, len(r.stdout), r.stderr)
		}
		dst := filepath.Join(t.TempDir(), "dst")
		if r := under(limit, "extract", base+".001", "-o", dst, "--progress", "never"); r.code != 0 {
			t.Errorf("extract under %d open files: %v", limit, r)
		} else {
			compare(t, src, dst, testtree.CompareOptions{})
		}
	}
	// Recovery volumes too: adding them, verify's check of them and
	// repair read the data volumes a few at a time, where each had opened
	// every one at once (parity spans the archive).
	if r := under(48, "recovery", "add", base+".001", "--recovery", "10%", "--progress", "never"); r.code != 0 {
		t.Fatalf("recovery add under 48 open files: %v", r)
	}
	for _, limit := range []int{48, 90} {
		r := under(limit, "verify", base+".001")
		if r.code != 0 || !strings.Contains(r.stdout, ": intact: ") || !strings.Contains(r.stdout, "recovery: ") {
			t.Errorf("verify with recovery volumes under %d open files: %v", limit, r)
		}
	}
	want, err := os.ReadFile(base + ".050")
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(base + ".050")
	flipByte(t, base+".090", 1000)
	if r := under(48, "repair", base+".001", "--progress", "never"); r.code != 0 {
		t.Fatalf("repair under 48 open files: %v", r)
	}
	if got, err := os.ReadFile(base + ".050"); err != nil || !bytes.Equal(got, want) {
		t.Errorf("the volume repair rebuilt differs (%v)", err)
	}
	if r := under(48, "verify", base+".001"); r.code != 0 {
		t.Errorf("verify under 48 open files after the repair: %v", r)
	}
	other := filepath.Join(t.TempDir(), "b")
	if r := under(48, "create", src, "-o", other, "--volume-size", "4K", "--recovery", "10%", "--progress", "never"); r.code != 0 {
		t.Errorf("create --recovery under 48 open files: %v", r)
	}
	if r := under(48, "list", base+".001"); r.code != 0 {
		t.Errorf("list under 48 open files: %v", r)
	}
}
