package integration

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"arc/internal/testtree"
)

// needMount skips when arcmount did not build or FUSE is unavailable.
func needMount(t *testing.T) {
	t.Helper()
	if arcmountBin == "" {
		t.Skip("arcmount not built")
	}
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Skip("no /dev/fuse:", err)
	}
	if _, err := exec.LookPath("fusermount3"); err != nil {
		t.Skip("no fusermount3:", err)
	}
}

// mountSmall archives in many volumes, frames and blocks, so reads cross them.
var mountSmall = []string{"--volume-size", "256K", "--frame-size", "128K", "--block-size", "64K", "--progress", "never"}

var pidRE = regexp.MustCompile(`\(pid (\d+)\)`)

// mountArchive mounts the archive base (its first volume) with arcmount in
// the background and returns the mount point. At the end of the test it
// unmounts and checks that the server process is gone.
func mountArchive(t *testing.T, base string, args ...string) string {
	t.Helper()
	mnt, _ := serveArchive(t, base, args...)
	return mnt
}

// serveArchive is mountArchive, also giving the server's pid.
func serveArchive(t *testing.T, base string, args ...string) (mnt string, pid int) {
	t.Helper()
	needMount(t)
	mnt = mountPoint(t)
	start := time.Now()
	stdout, pid := startMount(t, base+".001", mnt, mnt, args...)
	t.Logf("mounted in %v: %s", time.Since(start), strings.TrimSpace(stdout))
	if !strings.Contains(stdout, "fusermount3 -u "+mnt) {
		t.Errorf("arcmount does not say how to unmount: %q", stdout)
	}
	return mnt, pid
}

// startMount runs arcmount ARCHIVE MOUNTPOINT args (mountpoint as given,
// mnt what the kernel mounts), checks that it mounted and left a server
// whose pid it printed, and unmounts at the test's end.
func startMount(t *testing.T, archive, mountpoint, mnt string, args ...string) (stdout string, pid int) {
	t.Helper()
	r := runBin(t, runOpts{}, arcmountBin, append([]string{archive, mountpoint}, args...)...)
	if r.code != 0 {
		t.Fatalf("arcmount: %v", r)
	}
	m := pidRE.FindStringSubmatch(r.stdout)
	if m == nil {
		t.Fatalf("arcmount names no server pid: %q", r.stdout)
	}
	pid, _ = strconv.Atoi(m[1])
	if !isMounted(t, mnt) {
		t.Fatalf("arcmount returned but %s is not mounted", mnt)
	}
	t.Cleanup(func() { unmount(t, mnt, pid) })
	return r.stdout, pid
}

// mountableArchive packs a generated tree (seed; no xattrs) for a test
// that mounts it, and skips the test where FUSE is not there.
func mountableArchive(t *testing.T, seed uint64) (src, base string) {
	t.Helper()
	needMount(t)
	src = genTree(t, testtree.Options{Seed: seed, NoXattrs: true})
	return src, pack(t, mountSmall, src)
}

// mountPoint is a new empty directory to mount on.
func mountPoint(t *testing.T) string {
	t.Helper()
	mnt := filepath.Join(t.TempDir(), "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	return mnt
}

// exited says whether process pid has ended: gone, or a zombie waiting to
// be reaped.
func exited(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return true
	}
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	return err == nil && strings.Contains(string(st), ") Z ")
}

// unmount ends a mount, unless the test has, and waits for its server
// process to exit.
func unmount(t *testing.T, mnt string, pid int) {
	t.Helper()
	var out []byte
	var err error
	for i := 0; i < 50 && isMounted(t, mnt); i++ { // a reader that just closed may keep it busy briefly
		if out, err = exec.Command("fusermount3", "-u", mnt).CombinedOutput(); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Errorf("fusermount3 -u %s: %v\n%s", mnt, err, out)
		return
	}
	for i := 0; ; i++ {
		if exited(pid) {
			return
		}
		if i == 100 {
			t.Errorf("arcmount server %d still running 10s after unmount", pid)
			syscall.Kill(pid, syscall.SIGKILL)
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// isMounted reports whether dir is a mount point, from /proc/self/mountinfo.
func isMounted(t *testing.T, dir string) bool {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 4 && f[4] == dir {
			return true
		}
	}
	return false
}

// run runs a tool in dir and returns its stdout, failing the test on error.
func run(t *testing.T, dir, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s in %s: %v\n%s", name, strings.Join(args, " "), dir, err, stderr.String())
	}
	return string(out)
}

func TestMountShowsTheSourceTreeExactly(t *testing.T) {
	needMount(t)
	src := genTree(t, testtree.Options{Seed: 3, LargeSize: 3 << 20})
	mnt := mountArchive(t, pack(t, mountSmall, src))

	rsyncSame(t, src, mnt)
	// Holes stay holes: st_blocks counts stored bytes only, and
	// SEEK_DATA/SEEK_HOLE let cp -a recreate them.
	compare(t, src, mnt, testtree.CompareOptions{})

	out := filepath.Join(t.TempDir(), "copy")
	if b, err := exec.Command("cp", "-a", mnt, out).CombinedOutput(); err != nil {
		t.Fatalf("cp -a: %v\n%s", err, b)
	}
	compare(t, src, out, testtree.CompareOptions{})
	rsyncSame(t, src, out)
}

func TestMountAgreesWithFindStatLsGetfattr(t *testing.T) {
	needMount(t)
	src := genTree(t, testtree.Options{Seed: 4})
	mnt := mountArchive(t, pack(t, mountSmall, src))

	// Directory sizes differ by design (the mount reports 0), so find
	// prints sizes of non-directories only.
	find := func(root string) string {
		out := run(t, root, "find", ".", "-printf", `%P|%y|%m|%U|%G|%n|%T@|%l\n`)
		sizes := run(t, root, "find", ".", "!", "-type", "d", "-printf", `%P|%s\n`)
		lines := append(strings.Split(out, "\n"), strings.Split(sizes, "\n")...)
		sort.Strings(lines)
		return strings.Join(lines, "\n")
	}
	if a, b := find(src), find(mnt); a != b {
		t.Errorf("find differs:\n%s", lineDiff(a, b))
	}

	// stat of every path: type, mode, links, owner, device, mtime.
	names := strings.Split(strings.TrimSuffix(run(t, src, "find", ".", "-mindepth", "1", "-printf", `%P\0`), "\x00"), "\x00")
	sort.Strings(names)
	stat := func(root string) string {
		return run(t, root, "stat", append([]string{"--printf", `%n|%F|%a|%h|%u|%g|%t,%T|%y|%N\n`, "--"}, names...)...)
	}
	if a, b := stat(src), stat(mnt); a != b {
		t.Errorf("stat differs:\n%s", lineDiff(a, b))
	}

	// ls -lR without directory sizes and "total" lines (block counts).
	ls := func(root string) string {
		var keep []string
		for _, l := range strings.Split(run(t, root, "ls", "-lnR", "--time-style=+%s.%N"), "\n") {
			if strings.HasPrefix(l, "total ") {
				continue
			}
			// Fields, not columns: column widths follow the directory sizes.
			f := strings.Fields(l)
			if len(f) > 5 && strings.HasPrefix(l, "d") {
				f[4] = "-"
			}
			l = strings.Join(f, " ")
			keep = append(keep, l)
		}
		return strings.Join(keep, "\n")
	}
	if a, b := ls(src), ls(mnt); a != b {
		t.Errorf("ls -lR differs:\n%s", lineDiff(a, b))
	}

	var links int
	for _, n := range names {
		want, err := os.Readlink(filepath.Join(src, n))
		if err != nil {
			continue
		}
		links++
		if got := strings.TrimSuffix(run(t, mnt, "readlink", "--", n), "\n"); got != want {
			t.Errorf("readlink %s = %q, want %q", n, got, want)
		}
	}
	if links == 0 {
		t.Error("the generated tree has no symlinks to check")
	}

	if _, err := exec.LookPath("getfattr"); err == nil {
		getfattr := func(root string) string {
			// getfattr exits 1 on dangling symlinks even with -h; its output is what counts.
			cmd := exec.Command("getfattr", append([]string{"-h", "-d", "-m", "-", "--"}, names...)...)
			cmd.Dir = root
			out, _ := cmd.Output()
			return string(out)
		}
		a, b := getfattr(src), getfattr(mnt)
		if a != b {
			t.Errorf("getfattr differs:\n%s", lineDiff(a, b))
		}
		if !strings.Contains(a, "user.") {
			t.Log("the generated tree has no user xattrs (left out on this machine?)")
		}
	}
}

// lineDiff shows the lines only in a (-) and only in b (+).
func lineDiff(a, b string) string {
	in := func(s string) map[string]bool {
		m := map[string]bool{}
		for _, l := range strings.Split(s, "\n") {
			m[l] = true
		}
		return m
	}
	ma, mb := in(a), in(b)
	var d []string
	for l := range ma {
		if !mb[l] {
			d = append(d, "- "+l)
		}
	}
	for l := range mb {
		if !ma[l] {
			d = append(d, "+ "+l)
		}
	}
	sort.Strings(d)
	if len(d) > 40 {
		d = append(d[:40], "...")
	}
	return strings.Join(d, "\n")
}

func TestMountServesManyParallelReaders(t *testing.T) {
	needMount(t)
	src := filepath.Join(t.TempDir(), "src")
	var files []string
	for i := 0; i < 8; i++ {
		b := make([]byte, 300<<10+i*4099)
		rand.Read(b)
		if i%2 == 1 { // compressible too
			copy(b[len(b)/2:], bytes.Repeat([]byte("arc "), len(b)/8))
		}
		name := fmt.Sprintf("d%d/f%d.bin", i%3, i)
		os.MkdirAll(filepath.Join(src, filepath.Dir(name)), 0o755)
		if err := os.WriteFile(filepath.Join(src, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
		files = append(files, name)
	}
	mnt, pid := serveArchive(t, pack(t, mountSmall, src), "--cache-size", "256K")

	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for g := 0; g < 24; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			name := files[g%len(files)]
			want, _ := os.ReadFile(filepath.Join(src, name))
			f, err := os.Open(filepath.Join(mnt, name))
			if err != nil {
				errs <- err
				return
			}
			defer f.Close()
			if g%2 == 0 { // sequential, small reads
				got, err := io.ReadAll(io.LimitReader(f, int64(len(want))+1))
				if err != nil || !bytes.Equal(got, want) {
					errs <- fmt.Errorf("%s: sequential read differs (%d bytes, %v)", name, len(got), err)
				}
				return
			}
			buf := make([]byte, 4096)
			for k := 0; k < 200; k++ { // random 4 KiB reads
				off := int64((k*7919 + g*104729) % len(want))
				n, err := f.ReadAt(buf, off)
				if (err != nil && err != io.EOF) || !bytes.Equal(buf[:n], want[off:min(off+4096, int64(len(want)))]) {
					errs <- fmt.Errorf("%s at %d: random read differs (%v)", name, off, err)
					return
				}
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// However many requests came at once, only a few threads stay waiting
	// for the next one (see cmd/arcmount's fuseReaders): each costs the Go
	// scheduler wakeups for as long as it waits.
	time.Sleep(200 * time.Millisecond)
	if n := waitingReaders(t, pid); n > 3 {
		t.Errorf("%d threads of arcmount wait in read(/dev/fuse) after the readers ended; want at most 3", n)
	}
}

// waitingReaders counts the threads of process pid blocked in read(2) on its
// /dev/fuse descriptor.
func waitingReaders(t *testing.T, pid int) int {
	t.Helper()
	proc := fmt.Sprintf("/proc/%d", pid)
	fds, err := os.ReadDir(proc + "/fd")
	if err != nil {
		t.Fatal(err)
	}
	fuseFD := -1
	for _, e := range fds {
		if l, _ := os.Readlink(proc + "/fd/" + e.Name()); l == "/dev/fuse" {
			fuseFD, _ = strconv.Atoi(e.Name())
		}
	}
	if fuseFD < 0 {
		t.Fatalf("arcmount (pid %d) has no /dev/fuse open", pid)
	}
	tasks, err := os.ReadDir(proc + "/task")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, task := range tasks {
		// "NR ARG0 ...": the system call a blocked thread is in, with its
		// arguments in hexadecimal.
		b, err := os.ReadFile(proc + "/task/" + task.Name() + "/syscall")
		if err != nil {
			continue // the thread ended
		}
		var nr int
		var fd uint64
		if k, _ := fmt.Sscanf(string(b), "%d 0x%x", &nr, &fd); k == 2 && nr == syscall.SYS_READ && fd == uint64(fuseFD) {
			n++
		}
	}
	return n
}

// damageLog is the mount's log without the start-up line that says which
// decompression engine (GPU or CPU) serves it.
func damageLog(t *testing.T, name string) string {
	t.Helper()
	var keep []string
	for _, l := range strings.SplitAfter(readFile(t, name), "\n") {
		if !strings.Contains(l, " gpu: ") {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "")
}

func TestMountDamagedBlockFailsOnlyItsFile(t *testing.T) {
	needMount(t)
	src := filepath.Join(t.TempDir(), "src")
	os.Mkdir(src, 0o755)
	big := make([]byte, 512<<10) // random: stored raw, so findable in the volume
	rand.Read(big)
	os.WriteFile(filepath.Join(src, "a-before.txt"), []byte(strings.Repeat("before\n", 1000)), 0o644)
	os.WriteFile(filepath.Join(src, "big.bin"), big, 0o644)
	os.WriteFile(filepath.Join(src, "z-after.txt"), []byte(strings.Repeat("after\n", 1000)), 0o644)
	base := pack(t, []string{"--block-size", "64K", "--frame-size", "128K", "--progress", "never"}, src)

	// Flip one byte in the middle of big.bin's stored bytes.
	vol := base + ".001"
	data, err := os.ReadFile(vol)
	if err != nil {
		t.Fatal(err)
	}
	mid := big[len(big)/2 : len(big)/2+64]
	at := bytes.Index(data, mid)
	if at < 0 {
		t.Fatal("big.bin's bytes not found in the volume (compressed?)")
	}
	data[at+10] ^= 0xff
	if err := os.WriteFile(vol, data, 0o644); err != nil {
		t.Fatal(err)
	}

	logFile := filepath.Join(t.TempDir(), "arcmount.log")
	mnt := mountArchive(t, base, "--log", logFile)
	for i := 0; i < 3; i++ {
		_, err := os.ReadFile(filepath.Join(mnt, "big.bin"))
		if !errors.Is(err, syscall.EIO) {
			t.Fatalf("reading the damaged file: %v, want EIO", err)
		}
	}
	// The first half of big.bin lies in intact blocks.
	f, err := os.Open(filepath.Join(mnt, "big.bin"))
	if err != nil {
		t.Fatal(err)
	}
	head := make([]byte, 64<<10)
	if _, err := f.ReadAt(head, 0); err != nil || !bytes.Equal(head, big[:len(head)]) {
		t.Errorf("intact start of the damaged file: %v", err)
	}
	f.Close()
	for _, name := range []string{"a-before.txt", "z-after.txt"} {
		want, _ := os.ReadFile(filepath.Join(src, name))
		if got, err := os.ReadFile(filepath.Join(mnt, name)); err != nil || !bytes.Equal(got, want) {
			t.Errorf("intact file %s: %v", name, err)
		}
	}
	lines := strings.Split(strings.TrimSpace(damageLog(t, logFile)), "\n")
	if len(lines) != 1 || !strings.Contains(lines[0], "/big.bin") || !strings.Contains(lines[0], "frame") || !strings.Contains(lines[0], vol) {
		t.Errorf("want one log line naming /big.bin, its frame and %s; log:\n%s", vol, strings.Join(lines, "\n"))
	}
}

func readFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestMountForegroundUnmountsOnSignal(t *testing.T) {
	src, base := mountableArchive(t, 5)
	defaultSignals(t)
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP} {
		mnt := mountPoint(t)
		cmd := exec.Command(arcmountBin, "-f", base+".001", mnt)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		done := startForeground(t, cmd, mnt, stderr.String)
		rsyncSame(t, src, mnt)
		cmd.Process.Signal(sig)
		if err := waitEnd(t, cmd, done, sig.String(), stderr.String, mnt); err != nil {
			t.Errorf("%v: arcmount -f exited with %v\n%s", sig, err, stderr.String())
		}
		if isMounted(t, mnt) {
			t.Errorf("%v: %s still mounted", sig, mnt)
			exec.Command("fusermount3", "-u", mnt).Run()
		}
	}
}

// TestMountForegroundKeepsIgnoredSignalsIgnored starts arcmount -f with
// SIGHUP and SIGINT ignored, as nohup and a script's background job do:
// the hangup nohup is there for must not unmount it; fusermount3 -u does.
func TestMountForegroundKeepsIgnoredSignalsIgnored(t *testing.T) {
	_, base := mountableArchive(t, 6)
	mnt := mountPoint(t)
	// The shell's trap '' leaves the signals ignored across the exec.
	cmd := exec.Command("sh", "-c", `trap '' HUP INT; exec "$0" "$@"`, arcmountBin, "-f", "--gpu", "off", base+".001", mnt)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	done := startForeground(t, cmd, mnt, stderr.String)
	cmd.Process.Signal(syscall.SIGHUP)
	cmd.Process.Signal(syscall.SIGINT)
	time.Sleep(500 * time.Millisecond)
	if !isMounted(t, mnt) {
		t.Errorf("an ignored SIGHUP or SIGINT unmounted arcmount -f:\n%s", stderr.String())
	} else if out, err := exec.Command("fusermount3", "-u", mnt).CombinedOutput(); err != nil {
		t.Errorf("fusermount3 -u: %v %s", err, out)
	}
	if err := waitEnd(t, cmd, done, "fusermount3 -u", stderr.String, mnt); err != nil {
		t.Errorf("arcmount -f exited with %v\n%s", err, stderr.String())
	}
}

// A foreground mount whose stderr is a closed pipe (`arcmount -f ... 2>&1 |
// head -1` once head is done) keeps serving: its log lines fail, and Go's
// default for SIGPIPE on stderr would kill the server and leave a dead
// mount. Its "mounted" line and the engine's line (--gpu=auto) hit the
// closed pipe here.
func TestMountForegroundOutlivesAClosedStderr(t *testing.T) {
	src, base := mountableArchive(t, 5)
	mnt := mountPoint(t)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	cmd := exec.Command(arcmountBin, "-f", "--gpu=auto", base+".001", mnt)
	cmd.Stderr, cmd.Stdout = w, w
	t.Cleanup(func() { // a server that died leaves its mount
		if isMounted(t, mnt) {
			exec.Command("fusermount3", "-u", mnt).Run()
		}
	})
	done := startForeground(t, cmd, mnt, func() string { return "" }, w)
	time.Sleep(time.Second) // the engine's line, once it is set up
	rsyncSame(t, src, mnt)
	select {
	case err := <-done:
		t.Fatalf("arcmount -f ended while mounted: %v", err)
	default:
	}
	cmd.Process.Signal(syscall.SIGTERM)
	waitEnd(t, cmd, done, "SIGTERM", func() string { return "(a closed pipe)" }, mnt)
	if isMounted(t, mnt) {
		exec.Command("fusermount3", "-u", mnt).Run()
		t.Error("still mounted after SIGTERM")
	}
}

// startForeground starts cmd, an arcmount -f, closes the files in close
// (the child has its own copies), and returns once mnt is mounted; done
// then gets cmd's end. output is what to show when it fails.
func startForeground(t *testing.T, cmd *exec.Cmd, mnt string, output func() string, close ...*os.File) (done <-chan error) {
	t.Helper()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for _, f := range close {
		f.Close()
	}
	ch := make(chan error, 1)
	go func() { ch <- cmd.Wait() }()
	deadline := time.Now().Add(20 * time.Second)
	for !isMounted(t, mnt) {
		select {
		case err := <-ch:
			t.Fatalf("arcmount -f ended before mounting: %v\n%s", err, output())
		default:
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("arcmount -f did not mount in 20s:\n%s", output())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return ch
}

// waitEnd waits up to 20 s for a foreground arcmount to end after what it
// was told (after), and gives how it ended; past that it kills it and
// fails the test.
func waitEnd(t *testing.T, cmd *exec.Cmd, done <-chan error, after string, stderr func() string, mnt string) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(20 * time.Second):
		// Its goroutines, for the log: SIGQUIT makes the Go runtime
		// print them and exit.
		cmd.Process.Signal(syscall.SIGQUIT)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
		}
		exec.Command("fusermount3", "-u", mnt).Run() // the dead mount it leaves
		t.Fatalf("arcmount -f still running 20s after %s; its stderr:\n%s", after, stderr())
		return nil
	}
}

func TestMountRefusesBadInvocations(t *testing.T) {
	_, base := mountableArchive(t, 6)
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	os.WriteFile(file, []byte("not an archive"), 0o644)
	mnt := mountArchive(t, base)
	free := filepath.Join(dir, "free")
	os.Mkdir(free, 0o755)
	dangling := filepath.Join(dir, "dangling")
	os.Symlink(filepath.Join(dir, "nowhere"), dangling)
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"missing archive", []string{filepath.Join(dir, "none.001"), free}, "none.001"},
		{"not an archive", []string{file, free}, "file"},
		{"missing mount point", []string{base + ".001", filepath.Join(dir, "nodir")}, "nodir"},
		{"mount point is a file", []string{base + ".001", file}, "not a directory"},
		{"already mounted", []string{base + ".001", mnt}, "already"},
		// These machines have no GPU: --gpu=on must refuse rather than fall back.
		{"gpu on without a GPU", []string{"--gpu=on", base + ".001", free}, "no usable OpenCL GPU device"},
		// Naming a device asks for it: no quiet fall-back to the CPU.
		{"a device that is not there", []string{"--gpu-device", "9:9", base + ".001", free}, "9:9"},
		{"bad gpu", []string{"--gpu=maybe", base + ".001", free}, "--gpu"},
		{"bad cache size", []string{"--cache-size", "lots", base + ".001", free}, "cache-size"},
		{"no cache", []string{"--cache-size", "0", base + ".001", free}, "--cache-size 0"},
		{"prefetch below -1", []string{"--prefetch", "-5", base + ".001", free}, "--prefetch -5"},
		// Log lines that would go nowhere, or elsewhere than asked.
		{"debug in the background without a log", []string{"--debug", base + ".001", free}, "--debug"},
		{"a log file in the foreground", []string{"-f", "--log", filepath.Join(dir, "log"), base + ".001", free}, "stderr"},
		// fusermount3 would stay to watch the mount and never hand it over.
		{"auto_unmount", []string{"-o", "auto_unmount", base + ".001", free}, "auto_unmount"},
		{"one argument", []string{base + ".001"}, "arg"},
		// The type go-fuse sets; given again it was dropped without a word.
		{"a subtype", []string{"-o", "subtype=x", base + ".001", free}, "fuse.arc"},
		{"max_read", []string{"-o", "max_read=1", base + ".001", free}, "arcmount sets max_read itself"},
		{"a dangling symlink as the mount point", []string{base + ".001", dangling}, "is a symlink to"},
	} {
		r := runBin(t, runOpts{}, arcmountBin, c.args...)
		lines := strings.Split(strings.TrimRight(r.stderr, "\n"), "\n")
		if r.code == 0 || len(lines) != 1 || !strings.HasPrefix(lines[0], "arcmount: ") || !strings.Contains(lines[0], c.want) {
			t.Errorf("%s: want a non-zero exit and one line \"arcmount: ...%s...\"; got %v", c.name, c.want, r)
		}
		if isMounted(t, free) {
			t.Fatalf("%s: mounted anyway", c.name)
		}
	}
}

// A mount that fails after the kernel has it (here go-fuse's readiness
// check, which looks up a name in the root: the archived root is another
// user's, mode 0700, and the caller lacks root's override) is unmounted
// again: the error leaves no dead mount behind.
func TestAMountThatFailsLeavesNoMountBehind(t *testing.T) {
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Skip("no setpriv")
	}
	src := filepath.Join(t.TempDir(), "src")
	os.MkdirAll(filepath.Join(src, "sub"), 0o755)
	os.WriteFile(filepath.Join(src, "sub", "x"), []byte("hi"), 0o644)
	for _, p := range []string{src, filepath.Join(src, "sub"), filepath.Join(src, "sub", "x")} {
		os.Chown(p, 1234, 1234)
	}
	os.Chmod(src, 0o700)
	base := filepath.Join(t.TempDir(), "a")
	mustArcpack(t, "create", src, "-o", base, "--progress", "never")
	mnt := t.TempDir()
	r := runBin(t, runOpts{}, "setpriv", "--bounding-set", "-dac_override,-dac_read_search", arcmountBin, "--gpu", "off", base+".001", mnt)
	if isMounted(t, mnt) {
		exec.Command("fusermount3", "-u", mnt).Run()
		t.Fatalf("the failed mount was left in place (%v)", r)
	}
	if r.code == 0 {
		// A go-fuse that no longer looks into the root mounts it fine.
		exec.Command("fusermount3", "-u", mnt).Run()
		t.Skip("the mount did not fail here")
	}
}

func TestMountThroughASymlinkSaysHowToUnmountIt(t *testing.T) {
	_, base := mountableArchive(t, 6)
	dir := t.TempDir()
	mnt := filepath.Join(dir, "mnt")
	link := filepath.Join(dir, "link")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("mnt", link); err != nil {
		t.Fatal(err)
	}
	stdout, _ := startMount(t, base+".001", link, mnt)
	said := regexp.MustCompile(`fusermount3 -u (\S+)`).FindStringSubmatch(stdout)
	if said == nil {
		t.Fatalf("arcmount does not say how to unmount: %q", stdout)
	}
	if out, err := exec.Command("fusermount3", "-u", said[1]).CombinedOutput(); err != nil {
		t.Errorf("the unmount arcmount printed (fusermount3 -u %s) fails: %v\n%s", said[1], err, out)
	}
}

func TestMountMissingVolumeFailsOnlyFilesInIt(t *testing.T) {
	needMount(t)
	src := filepath.Join(t.TempDir(), "src")
	os.Mkdir(src, 0o755)
	want := map[string][]byte{}
	for i := 0; i < 12; i++ {
		b := make([]byte, 100<<10)
		rand.Read(b) // incompressible: 1.2 MiB over several 256 KiB volumes
		name := fmt.Sprintf("f%02d.bin", i)
		want[name] = b
		if err := os.WriteFile(filepath.Join(src, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	base := pack(t, mountSmall, src)
	vols := volumes(t, base)
	if len(vols) < 4 {
		t.Fatalf("want at least 4 volumes, got %d", len(vols))
	}
	if err := os.Remove(base + ".002"); err != nil {
		t.Fatal(err)
	}
	logFile := filepath.Join(t.TempDir(), "arcmount.log")
	mnt := mountArchive(t, base, "--log", logFile)
	var good, bad int
	for name, b := range want {
		got, err := os.ReadFile(filepath.Join(mnt, name))
		switch {
		case errors.Is(err, syscall.EIO):
			bad++
		case err != nil:
			t.Errorf("%s: %v, want its bytes or EIO", name, err)
		case !bytes.Equal(got, b):
			t.Errorf("%s: wrong bytes", name)
		default:
			good++
		}
	}
	if bad == 0 || good == 0 {
		t.Errorf("%d files failed and %d read fine; want some of each with volume 2 missing", bad, good)
	}
	log := damageLog(t, logFile)
	if !strings.Contains(log, base+".002") {
		t.Errorf("log does not name the missing volume:\n%s", log)
	}
	if n := strings.Count(log, "\n"); n != bad+1 {
		t.Errorf("%d log lines, want one for the missing volume and one per damaged file (%d):\n%s", n, bad, log)
	}
}

func TestMountAllowOtherChecksArchivedPermissions(t *testing.T) {
	needMount(t)
	src := filepath.Join(t.TempDir(), "src")
	os.Mkdir(src, 0o755)
	os.WriteFile(filepath.Join(src, "public"), []byte("for everyone\n"), 0o644)
	os.WriteFile(filepath.Join(src, "secret"), []byte("root only\n"), 0o600)
	mnt := mountArchive(t, pack(t, mountSmall, src), "-o", "allow_other")
	// Let nobody reach the mount point through the test's temp dirs.
	os.Chmod(filepath.Dir(mnt), 0o755)
	os.Chmod(filepath.Dir(filepath.Dir(mnt)), 0o755)
	cat := func(name string) (string, error) {
		cmd := exec.Command("cat", filepath.Join(mnt, name))
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := cat("public"); err != nil || out != "for everyone\n" {
		t.Errorf("nobody reading a 0644 file: %q, %v", out, err)
	}
	if out, err := cat("secret"); err == nil || !strings.Contains(out, "Permission denied") {
		t.Errorf("nobody reading a 0600 root file: %q, %v; want Permission denied", out, err)
	}
}

// deviceIDRE finds a device that `arcpack gpu` lists with a passing self-test.
var deviceIDRE = regexp.MustCompile(`(?m)^\s+(\d+:\d+)\s+\w+\s+.*\n(?:\s{6,}.*\n)*?\s+self-test: ok`)

// The GPU prefetch path, run on whatever OpenCL device is there (PoCL, a CPU
// device, in CI): the mount takes the device and reads back the tree exactly.
func TestMountOnAnOpenCLDeviceReadsTheTreeExactly(t *testing.T) {
	needMount(t)
	r := runBin(t, runOpts{}, arcpackBin, "gpu")
	m := deviceIDRE.FindStringSubmatch(r.stdout)
	if m == nil {
		t.Skipf("no OpenCL device passes its self-test here:\n%s", r.stdout)
	}
	src := genTree(t, testtree.Options{Seed: 11, LargeSize: 3 << 20})
	archive := pack(t, mountSmall, src)
	t.Setenv("ARCMOUNT_STATS", "1") // the cache's counters, logged at the end
	// on: the engine is set up before the mount; auto: beside it, and it
	// takes over the read-ahead once ready (its line comes then).
	for _, mode := range []string{"on", "auto"} {
		logFile := filepath.Join(t.TempDir(), "log")
		mnt := mountArchive(t, archive, "--gpu="+mode, "--gpu-device", m[1], "--prefetch", "4", "--log", logFile)
		took := "gpu: using " + m[1]
		waitLog(t, logFile, took)
		rsyncSame(t, src, mnt)
		compare(t, src, mnt, testtree.CompareOptions{})
		if out, err := exec.Command("fusermount3", "-u", mnt).CombinedOutput(); err != nil {
			t.Fatalf("fusermount3 -u: %v\n%s", err, out)
		}
		log := waitLog(t, logFile, "cache: ")
		if b := batchesRE.FindStringSubmatch(log); b == nil || b[1] == "0" {
			t.Fatalf("--gpu=%s: no read-ahead batch reached device %s:\n%s", mode, m[1], log)
		}
	}
}

// batchesRE finds the read-ahead batches a device decoded in the cache's
// counters that arcmount logs at the end with ARCMOUNT_STATS set.
var batchesRE = regexp.MustCompile(`Batches:(\d+)`)

// waitLog waits up to a minute for the log file to hold s and returns it.
func waitLog(t *testing.T, name, s string) string {
	t.Helper()
	for end := time.Now().Add(time.Minute); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		if log := readFile(t, name); strings.Contains(log, s) {
			return log
		}
	}
	t.Fatalf("%s never logged %q:\n%s", name, s, readFile(t, name))
	return ""
}

// With --gpu=auto (the default) and no GPU, a child of arcmount looks for
// devices: the OpenCL drivers it loads to look (PoCL's LLVM and clang,
// about 60 MiB) stay out of the mount's memory, which its --cache-size
// bounds.
func TestAutoGPUWithoutOneLoadsNoDriverIntoTheMount(t *testing.T) {
	_, base := mountableArchive(t, 6)
	switch out, _ := exec.Command(arcmountBin, "--gpu-probe").Output(); {
	case strings.Contains(string(out), "\tgpu\n"):
		t.Skip("this machine has an OpenCL GPU: the mount loads its driver")
	case strings.HasPrefix(string(out), "none\t"):
		t.Skip("no OpenCL platform here: there is no driver to keep out")
	}
	logFile := filepath.Join(t.TempDir(), "log")
	_, pid := serveArchive(t, base, "--log", logFile)
	waitLog(t, logFile, "gpu: using the CPU")
	m, err := os.ReadFile(fmt.Sprintf("/proc/%d/maps", pid))
	if err != nil {
		t.Fatal(err)
	}
	maps := string(m)
	for _, lib := range []string{"libpocl", "libLLVM", "libclang"} {
		if strings.Contains(maps, lib) {
			t.Errorf("the mount has %s loaded", lib)
		}
	}
}

// Ctrl-C on arcmount while it waits for its background server to mount
// (held here by stopping the server) leaves no mount: the server is told
// to stop, and arcmount says it is not mounted.
func TestInterruptingArcmountBeforeItIsReadyLeavesNoMount(t *testing.T) {
	defaultSignals(t)
	_, base := mountableArchive(t, 6)
	mnt := t.TempDir()
	cmd := exec.Command(arcmountBin, "--gpu", "off", base+".001", mnt)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	child := 0
	for deadline := time.Now().Add(5 * time.Second); child == 0 && time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		child = childOf(cmd.Process.Pid)
	}
	if child == 0 {
		cmd.Wait()
		t.Skip("the background server was not seen before arcmount ended")
	}
	syscall.Kill(child, syscall.SIGSTOP)
	cmd.Process.Signal(syscall.SIGINT)
	time.Sleep(100 * time.Millisecond)
	syscall.Kill(child, syscall.SIGCONT)
	err := cmd.Wait()
	for deadline := time.Now().Add(5 * time.Second); !exited(child) && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
	}
	if isMounted(t, mnt) {
		exec.Command("fusermount3", "-u", mnt).Run()
		t.Fatalf("interrupted before the mount was ready (%v, %q), the background server mounted anyway", err, stderr.String())
	}
	if err == nil || !strings.Contains(stderr.String(), "interrupted") {
		t.Errorf("arcmount interrupted: %v, stderr %q; want a failure that says so", err, stderr.String())
	}
}

// childOf is a process whose parent is pid, 0 if none.
func childOf(pid int) int {
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces; ppid is the
		// second field after the last ')'.
		f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
		if len(f) > 1 && f[1] == strconv.Itoa(pid) {
			n, _ := strconv.Atoi(e.Name())
			return n
		}
	}
	return 0
}

// A mount that fails (here: an option fusermount3 refuses) after the GPU
// probe has started leaves no probe behind: the probe's child, which
// --gpu=auto starts beside the mount, is ended with it.
func TestAFailedMountLeavesNoGPUProbe(t *testing.T) {
	_, base := mountableArchive(t, 6)
	mnt := t.TempDir()
	mark := fmt.Sprintf("ARC_TEST_PROBE_MARK=%d", time.Now().UnixNano())
	// The probe's child is held up for 10 s while it lists the OpenCL
	// platforms: its only ICD is a library whose constructor sleeps, as
	// a driver may hang. Without it the child may end before the mount
	// fails (at once where there is no OpenCL), and leave nothing to find.
	vendors := slowICD(t, 10)
	for _, fg := range []bool{false, true} {
		args := []string{"--gpu", "auto", "-o", "no_such_option", base + ".001", mnt}
		if fg {
			args = append([]string{"-f"}, args...)
		}
		cmd := exec.Command(arcmountBin, args...)
		cmd.Env = append(os.Environ(), mark, "OCL_ICD_VENDORS="+vendors)
		out, err := cmd.CombinedOutput()
		if err == nil {
			exec.Command("fusermount3", "-u", mnt).Run()
			t.Fatalf("-f %v: mounted with an unknown option: %s", fg, out)
		}
		ents, _ := os.ReadDir("/proc")
		for _, e := range ents {
			env, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
			if err == nil && bytes.Contains(env, []byte(mark)) {
				cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
				t.Errorf("-f %v: process %s (%q) left after the failed mount", fg, e.Name(), bytes.ReplaceAll(cmdline, []byte{0}, []byte{' '}))
			}
		}
	}
}

// slowICD makes an OpenCL vendor directory (for OCL_ICD_VENDORS) whose one
// ICD is a library that sleeps for secs seconds when it is loaded.
func slowICD(t *testing.T, secs int) string {
	t.Helper()
	cc, err := exec.LookPath("gcc")
	if err != nil {
		t.Skip("gcc not installed: no slow OpenCL driver to build")
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "slow.c")
	code := fmt.Sprintf("#include <unistd.h>\n__attribute__((constructor)) static void slow(void) { sleep(%d); }\n", secs)
	if err := os.WriteFile(src, []byte(code), 0o644); err != nil {
		t.Fatal(err)
	}
	lib := filepath.Join(dir, "libslowicd.so")
	if out, err := exec.Command(cc, "-shared", "-fPIC", "-o", lib, src).CombinedOutput(); err != nil {
		t.Fatalf("gcc: %v\n%s", err, out)
	}
	vendors := filepath.Join(dir, "vendors")
	if err := os.Mkdir(vendors, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(vendors, "slow.icd"), []byte(lib+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return vendors
}

// The background server keeps none of its caller's descriptors: a pipe the
// caller let arcmount inherit (here as fd 6, without close-on-exec; fds 3
// and 4 the server gets its own in place of) reads EOF once arcmount has
// returned, not at the unmount.
func TestTheServerKeepsNoInheritedDescriptor(t *testing.T) {
	_, base := mountableArchive(t, 6)
	mnt := t.TempDir()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	cmd := exec.Command(arcmountBin, "--gpu", "off", base+".001", mnt)
	null, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer null.Close()
	cmd.ExtraFiles = []*os.File{null, null, null, w}
	out, err := cmd.CombinedOutput()
	w.Close()
	if err != nil {
		t.Fatalf("mount: %v\n%s", err, out)
	}
	defer exec.Command("fusermount3", "-u", mnt).Run()
	got := make(chan error, 1)
	go func() {
		_, err := r.Read(make([]byte, 1))
		got <- err
	}()
	select {
	case err := <-got:
		if err != io.EOF {
			t.Errorf("read: %v, want EOF", err)
		}
	case <-time.After(5 * time.Second):
		t.Error("the pipe arcmount inherited is still open 5 s after it returned: the server holds it")
		r.Close()
	}
}

// -o fsname names the mount's source (what mount and df show); --debug
// with --log has the mount's first requests in the log, INIT among them
// (they went to the parent, which dropped them).
func TestMountSourceNameAndTheFirstDebugLines(t *testing.T) {
	_, base := mountableArchive(t, 6)
	mnt := t.TempDir()
	logf := filepath.Join(t.TempDir(), "log")
	if r := runBin(t, runOpts{}, arcmountBin, "--gpu", "off", "-o", "fsname=my-backup", "--debug", "--log", logf, base+".001", mnt); r.code != 0 {
		t.Fatalf("mount: %v", r)
	}
	defer exec.Command("fusermount3", "-u", mnt).Run()
	info, _ := os.ReadFile("/proc/self/mountinfo")
	var source string
	for _, l := range strings.Split(string(info), "\n") {
		if f := strings.Fields(l); len(f) > 9 && f[4] == mnt {
			source = f[len(f)-2]
		}
	}
	if source != "my-backup" {
		t.Errorf("the mount's source is %q, want my-backup", source)
	}
	if b, _ := os.ReadFile(logf); !strings.Contains(string(b), "INIT") {
		t.Errorf("the log lacks the INIT request:\n%.600s", b)
	}
}

// A signal ends arcmount while its archive's open hangs (volumes on a
// filesystem that stalls: here an outer mount whose server is stopped):
// in the foreground at once; in the background, the first signal tells
// the server to stop and a second one ends the waiting caller. Nothing is
// mounted either way.
func TestASignalEndsAMountWhoseOpenHangs(t *testing.T) {
	_, inner := mountableArchive(t, 6)
	dir := filepath.Join(t.TempDir(), "vols")
	os.Mkdir(dir, 0o755)
	vols, _ := filepath.Glob(inner + ".0*")
	for _, v := range vols {
		testtree.CopyFile(t, v, filepath.Join(dir, filepath.Base(v)))
	}
	outer := filepath.Join(t.TempDir(), "outer")
	mustArcpack(t, "create", dir, "-o", outer, "--progress", "never")
	omnt, opid := serveArchive(t, outer, "--gpu", "off")
	held := filepath.Join(omnt, filepath.Base(vols[0]))
	if _, err := os.Stat(held); err != nil { // attributes cached: the checks before the open pass
		t.Fatal(err)
	}
	for _, v := range vols {
		os.Stat(filepath.Join(omnt, filepath.Base(v)))
	}
	syscall.Kill(opid, syscall.SIGSTOP)
	defer syscall.Kill(opid, syscall.SIGCONT) // before the unmount of the cleanup
	for _, tc := range []struct {
		name    string
		args    []string
		signals int
	}{{"foreground", []string{"-f"}, 1}, {"background", nil, 2}} {
		t.Run(tc.name, func(t *testing.T) {
			mnt := mountPoint(t)
			cmd := exec.Command(arcmountBin, append(tc.args, "--gpu", "off", held, mnt)...)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			time.Sleep(time.Second) // into the open
			for i := 0; i < tc.signals; i++ {
				cmd.Process.Signal(syscall.SIGINT)
				time.Sleep(300 * time.Millisecond)
			}
			select {
			case err := <-done:
				if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 {
					t.Errorf("exit: %v, want 2; %s", err, stderr.String())
				}
			case <-time.After(10 * time.Second):
				cmd.Process.Kill()
				t.Fatalf("arcmount still running 10 s after %d SIGINT; %s", tc.signals, stderr.String())
			}
			if isMounted(t, mnt) {
				t.Error("mounted anyway")
			}
		})
	}
	// The server told to stop ends once its open returns: the outer server
	// going on, it leaves no process behind.
	syscall.Kill(opid, syscall.SIGCONT)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		out, _ := exec.Command("pgrep", "-f", "--", held).Output()
		if len(bytes.TrimSpace(out)) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("arcmount processes %s still there 10 s after the outer server went on", bytes.Fields(out))
			break
		}
	}
}

// Mounted over the directory that holds its own volumes, an archive of
// more volumes than the mount keeps open still reads whole: a volume
// opened again later is reached through the directory as it was at the
// mount, not through its path, which leads into the mount by then (every
// file in those volumes gave EIO).
func TestAMountOverItsOwnVolumesDirectoryReadsThemAll(t *testing.T) {
	needMount(t)
	src := t.TempDir()
	for i := range 12 {
		b := make([]byte, 40<<10)
		rand.Read(b)
		if err := os.WriteFile(filepath.Join(src, fmt.Sprintf("f%02d", i)), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	base := pack(t, []string{"--volume-size", "4K", "--codec", "raw", "--progress", "never"}, src)
	if n := len(volumes(t, base)); n <= 64 {
		t.Fatalf("%d volumes: the test needs more than the 64 kept open", n)
	}
	dir := filepath.Dir(base)
	startMount(t, base+".001", dir, dir, "--cache-size", "64K")
	for i := range 12 {
		name := fmt.Sprintf("f%02d", i)
		got, err := os.ReadFile(filepath.Join(dir, name))
		want, _ := os.ReadFile(filepath.Join(src, name))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s: %d bytes, %v; want its %d", name, len(got), err, len(want))
		}
	}
}
