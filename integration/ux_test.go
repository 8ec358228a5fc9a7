package integration

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"arc/internal/testtree"
)

// commandsOf discovers arcpack's commands from its own help, the way a
// user finds them: the "Available Commands:" of the root and, below it,
// of every command that has some. Each is returned as its arguments
// ("create", "completion bash").
func commandsOf(t *testing.T, parent ...string) [][]string {
	t.Helper()
	r := mustArcpack(t, append(append([]string{}, parent...), "--help")...)
	_, list, ok := strings.Cut(r.stdout, "Available Commands:\n")
	if !ok {
		return nil
	}
	var out [][]string
	for _, l := range strings.Split(list, "\n") {
		f := strings.Fields(l)
		if len(f) == 0 {
			break
		}
		path := append(append([]string{}, parent...), f[0])
		out = append(out, path)
		out = append(out, commandsOf(t, path...)...)
	}
	return out
}

func TestEveryCommandsHelpShowsAnExample(t *testing.T) {
	cmds := commandsOf(t)
	// The discovery itself must see the commands a user knows of.
	seen := map[string]bool{}
	for _, c := range cmds {
		seen[strings.Join(c, " ")] = true
	}
	for _, want := range []string{"create", "list", "info", "verify", "extract", "cat", "man", "completion", "completion bash", "help"} {
		if !seen[want] {
			t.Errorf("arcpack --help does not list %q (found %v)", want, cmds)
		}
	}
	for _, c := range append([][]string{{}}, cmds...) {
		r := mustArcpack(t, append(append([]string{}, c...), "--help")...)
		_, ex, ok := strings.Cut(r.stdout, "Examples:\n")
		if !ok {
			t.Errorf("arcpack %s --help shows no example", strings.Join(c, " "))
			continue
		}
		first := strings.TrimSpace(strings.SplitN(ex, "\n", 2)[0])
		if !strings.HasPrefix(first, "arcpack ") && !strings.HasPrefix(first, "arcmount ") && !strings.HasPrefix(first, "source ") {
			t.Errorf("arcpack %s --help: the first example %q is not a command line", strings.Join(c, " "), first)
		}
	}
	r := runBin(t, runOpts{}, arcmountBin, "--help")
	if r.code != 0 || !strings.Contains(r.stdout, "Examples:\n  arcmount ") || !strings.Contains(r.stdout, "fusermount3 -u") {
		t.Errorf("arcmount --help shows no example or no way to unmount: %v", r)
	}
}

// Every flag of every command says what it does, and sizes and counts say
// their unit or their default.
func TestEveryFlagIsDescribed(t *testing.T) {
	flagLine := regexp.MustCompile(`^\s+(-\w, )?--([\w-]+)( \S+)?\s{2,}(.*)$`)
	check := func(name, help string) {
		for _, l := range strings.Split(help, "\n") {
			m := flagLine.FindStringSubmatch(l)
			if m == nil {
				continue
			}
			if len(strings.Fields(m[4])) < 2 {
				t.Errorf("%s: flag --%s has no real description: %q", name, m[2], l)
			}
			if strings.Contains(m[3], "`") || strings.Contains(m[3], "arcpack") {
				t.Errorf("%s: flag --%s shows a quoted phrase as its value name: %q", name, m[2], l)
			}
		}
	}
	for _, c := range append([][]string{{}}, commandsOf(t)...) {
		check("arcpack "+strings.Join(c, " "), mustArcpack(t, append(append([]string{}, c...), "--help")...).stdout)
	}
	check("arcmount", runBin(t, runOpts{}, arcmountBin, "--help").stdout)
}

// The man pages: one per command found in help, each with its examples
// and the exit status, and well-formed roff (checked by groff where it is
// installed).
func TestManPagesCoverEveryCommand(t *testing.T) {
	dir := t.TempDir()
	mustArcpack(t, "man", dir)
	if r := runBin(t, runOpts{}, arcmountBin, "--man", dir); r.code != 0 {
		t.Fatalf("arcmount --man: %v", r)
	}
	pages := []string{"arcpack.1", "arcmount.1"}
	for _, c := range commandsOf(t) {
		pages = append(pages, "arcpack-"+strings.Join(c, "-")+".1")
	}
	groff, _ := exec.LookPath("groff")
	for _, p := range pages {
		b, err := os.ReadFile(filepath.Join(dir, p))
		if err != nil {
			t.Errorf("no page for a command: %v", err)
			continue
		}
		page := string(b)
		for _, sec := range []string{".TH ", ".SH NAME\n", ".SH SYNOPSIS\n", ".SH DESCRIPTION\n", ".SH EXAMPLES\n", ".SH EXIT STATUS\n", ".SH SEE ALSO\n"} {
			if !strings.Contains(page, sec) {
				t.Errorf("%s lacks %q", p, strings.TrimSpace(sec))
			}
		}
		if p != "arcmount.1" && !strings.Contains(page, ".B 130\n") {
			t.Errorf("%s does not document exit status 130", p)
		}
		if groff != "" {
			out, err := exec.Command(groff, "-man", "-Tutf8", "-ww", "-z", filepath.Join(dir, p)).CombinedOutput()
			if err != nil || len(out) != 0 {
				t.Errorf("groff warns on %s: %v\n%s", p, err, out)
			}
		}
	}
	if groff == "" {
		t.Log("groff not installed: roff not checked by groff")
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != len(pages) {
		t.Errorf("%d pages written, want %d (one per command in help, and arcmount's)", len(ents), len(pages))
	}
}

func TestCompletionScriptsLoad(t *testing.T) {
	for _, sh := range []string{"bash", "zsh", "fish"} {
		r := mustArcpack(t, "completion", sh)
		if !strings.Contains(r.stdout, "arcpack") {
			t.Errorf("completion %s: no script for arcpack", sh)
		}
	}
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash")
	}
	for _, bin := range []string{arcpackBin, arcmountBin} {
		// Load the script and ask it for the first word's completions.
		script := filepath.Join(t.TempDir(), "c.bash")
		r := runBin(t, runOpts{}, bin, "completion", "bash")
		if r.code != 0 {
			t.Fatalf("%s completion bash: %v", bin, r)
		}
		os.WriteFile(script, []byte(r.stdout), 0o644)
		if out, err := exec.Command(bash, "-n", script).CombinedOutput(); err != nil {
			t.Errorf("%s completion bash is not valid bash: %v\n%s", filepath.Base(bin), err, out)
		}
	}
	// Cobra's completion asks the binary itself: it must offer the commands.
	r := mustArcpack(t, "__complete", "")
	for _, c := range []string{"create", "extract", "verify"} {
		if !strings.Contains(r.stdout, c) {
			t.Errorf("completing the first word does not offer %s:\n%s", c, r.stdout)
		}
	}
}

// A shell the completion command does not know is a usage error: cobra's
// help on stdout with exit 0 would land in the file the script was meant
// for ('completion tcsh > /etc/bash_completion.d/x') and pass for success.
func TestCompletionOfAnUnknownShellFails(t *testing.T) {
	for _, bin := range []string{arcpackBin, arcmountBin} {
		name := filepath.Base(bin)
		r := runBin(t, runOpts{}, bin, "completion", "tcsh")
		want := name + `: completion: unknown shell "tcsh" (want bash, zsh, fish or powershell; see '` + name + ` completion --help')` + "\n"
		if r.code != 2 || r.stdout != "" || r.stderr != want {
			t.Errorf("%s completion tcsh: exit %d, stdout %q, stderr %q; want exit 2, no stdout, stderr %q", name, r.code, r.stdout, r.stderr, want)
		}
	}
}

// Errors name the file and say what to do.
func TestErrorsSuggestTheFix(t *testing.T) {
	_, base := corruptible(t)
	dir := filepath.Dir(base)
	src := genTree(t, testtree.Options{Seed: 3, Files: 3, Depth: 1})
	for _, c := range []struct {
		name  string
		args  []string
		wants []string
	}{
		{"a directory for an archive", []string{"list", src}, []string{"open " + src + ": a directory", "arcpack create " + src + " -o NAME"}},
		{"a directory for an archive to verify", []string{"verify", src}, []string{"open " + src + ": a directory", "arcpack create " + src + " -o NAME"}},
		{"a directory for an archive to repair", []string{"repair", src}, []string{"open " + src + ": a directory", "arcpack create " + src + " -o NAME"}},
		{"a base with no volumes to repair", []string{"repair", filepath.Join(dir, "other")}, []string{"no such file or directory, nor " + filepath.Join(dir, "other.001")}},
		{"a volume name cut short", []string{"list", base + ".00"}, []string{"did you mean " + base + ".001?"}},
		{"a base with no volumes", []string{"info", filepath.Join(dir, "other")}, []string{"no such file or directory, nor " + filepath.Join(dir, "other.001")}},
		{"a volume past the last", []string{"list", base + ".099"}, []string{"the archive's volumes here are " + base + ".001 to "}},
		{"an existing archive", []string{"create", src, "-o", base}, []string{base + ".001 already exists", "--force"}},
		{"a name that reads as a volume's for -o", []string{"create", src, "-o", filepath.Join(dir, "new.2024")}, []string{"ends like a volume's name", "-o " + filepath.Join(dir, "new-2024")}},
		{"a first volume's name for -o", []string{"create", src, "-o", filepath.Join(dir, "new.001")}, []string{"names a volume", "-o " + filepath.Join(dir, "new") + " "}},
		{"a bad flag", []string{"list", "--nope", base + ".001"}, []string{"unknown flag: --nope", "see 'arcpack list --help'"}},
		{"help on a command that is not there", []string{"help", "lsit"}, []string{`help: unknown command "lsit"`, "see 'arcpack --help'"}},
	} {
		r := arcpack(t, c.args...)
		wantFail(t, r, 2, c.wants...)
		if t.Failed() {
			t.Logf("case %q", c.name)
		}
	}
	// NAME stands for NAME.001 for every command, also where a directory
	// is called NAME.
	named := pack(t, small, src)
	if err := os.Mkdir(named, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{"list", "info", "verify"} {
		mustArcpack(t, c, named)
	}
	dst := filepath.Join(t.TempDir(), "dst")
	mustArcpack(t, "extract", base+".001", "-o", dst)
	wantFail(t, arcpack(t, "extract", base+".001", "-o", dst), 2, "bystander", "already exists", "use --force to replace files in "+dst)
}

// arcpack's report lines name archives and volumes escaped, as its error
// lines do: a name given on the command line may come from a glob over
// names someone else chose. create's recovery line and the one about the
// replaced archive's recovery volumes, verify (intact, a missing volume, a
// stray one, another archive's recovery volumes), info, repair, and man
// (arcmount's --man too).
func TestReportLinesEscapeHostileArchiveNames(t *testing.T) {
	const evil = "x\x1b]0;pwned\x07\u009b\u202e"
	const escaped = `x\033]0;pwned\007\302\233\342\200\256`
	dir := t.TempDir()
	out, esc := filepath.Join(dir, "a"+evil), filepath.Join(dir, "a"+escaped)
	src := recoverySource(t) // three volumes or more: the second can go missing
	check := func(what string, r result, want ...string) {
		t.Helper()
		if strings.ContainsAny(r.stdout+r.stderr, "\x1b\x07\u009b\u202e") {
			t.Errorf("%s prints a raw escape sequence: %v", what, r)
		}
		for _, w := range want {
			if !strings.Contains(r.stdout, w) {
				t.Errorf("%s: stdout lacks %q: %v", what, w, r)
			}
		}
	}
	r := mustArcpack(t, append([]string{"create", src, "-o", out, "--recovery", "10%"}, small...)...)
	check("create --recovery", r, "recovery: "+esc+".r01")
	vols := volumes(t, out)
	if len(vols) < 3 {
		t.Fatalf("want 3 or more volumes, got %v", vols)
	}
	check("verify", mustArcpack(t, "verify", out+".001"), esc+".001: intact")
	check("info", mustArcpack(t, "info", out+".001"), esc+".002  ")

	os.Remove(vols[1])
	stray := fmt.Sprintf("%s.%03d", out, len(vols)+2)
	os.WriteFile(stray, []byte("left over"), 0o644)
	r = arcpack(t, "verify", out+".001", "--progress", "never")
	check("verify of a damaged archive", r,
		"missing volume: "+esc+".002",
		"volume "+esc+".002: missing, repairable",
		"repairable: run 'arcpack repair \""+esc+".001\"'", // quoted for the shell (termsafe.Word)
		fmt.Sprintf("left out): %s.%03d", esc, len(vols)+2))
	check("info of a damaged archive", mustArcpack(t, "info", out+".001"), esc+".002  missing")
	os.Remove(stray)
	check("repair", mustArcpack(t, "repair", out+".001"), ": "+esc+".002")
	check("repair of an intact archive", mustArcpack(t, "repair", out+".001"), esc+".001: intact, nothing to repair")

	putBack := keepFiles(t, recoveryFiles(t, out))
	r = mustArcpack(t, append([]string{"create", src, "-o", out, "--force"}, small...)...)
	check("create --force", r, "replaced archive ("+esc+".r01 ...); 'arcpack recovery add \""+esc+"\" --recovery 10%' writes new ones")
	check("info without recovery volumes", mustArcpack(t, "info", out+".001"), "none ('arcpack recovery add \""+esc+".001\" --recovery 10%' writes them)")
	putBack() // now another archive's
	check("verify beside stale recovery volumes", mustArcpack(t, "verify", out+".001"), "'arcpack recovery add \""+esc+".001\" --recovery 10% --force'")

	man := filepath.Join(dir, "man"+evil)
	check("man", mustArcpack(t, "man", man), "written to "+filepath.Join(dir, "man"+escaped))
	if arcmountBin != "" {
		check("arcmount --man", runBin(t, runOpts{}, arcmountBin, "--man", man), "written to "+filepath.Join(dir, "man"+escaped))
	}
}

// With recovery volumes beside a damaged archive, every command that hits
// the damage points at `arcpack repair`; without them, none does.
func TestDamageSuggestsRepairWhenRecoveryVolumesExist(t *testing.T) {
	src, base := corruptible(t)
	vols := volumes(t, base)
	if len(vols) < 3 {
		t.Fatalf("want 3 or more volumes, got %v", vols)
	}
	if err := os.Rename(base+".001", base+".001.away"); err != nil {
		t.Fatal(err)
	}
	last := vols[len(vols)-1]
	hint := "'arcpack repair " + base + ".002' rebuilds what is missing or damaged if they cover all of it"
	r := arcpack(t, "cat", base+".002", "bystander")
	wantFail(t, r, 1, "bystander")
	if strings.Contains(r.stderr, "arcpack repair") {
		t.Errorf("repair suggested with no recovery volume:\n%v", r)
	}
	// Recovery volumes are found by name (NAME.r01, ...).
	if err := os.WriteFile(base+".r01", []byte("parity"), 0o644); err != nil {
		t.Fatal(err)
	}
	wantFail(t, arcpack(t, "cat", base+".002", "bystander"), 1, "bystander", hint)
	wantFail(t, arcpack(t, "extract", base+".002", "-o", filepath.Join(t.TempDir(), "d")), 1, hint)
	os.Rename(base+".001.away", base+".001")
	os.Rename(last, last+".away")
	wantFail(t, arcpack(t, "list", base+".001"), 2, filepath.Base(last), "is missing", "'arcpack repair "+base+".001' rebuilds")
	wantFail(t, arcpack(t, "list", base+".r01"), 2, "a recovery volume, not a data volume", base+".001")

	// Another archive's recovery volumes under this one's names: repair
	// would refuse them, so nothing points at it.
	os.Rename(last+".away", last)
	os.Remove(base + ".r01")
	other := filepath.Join(t.TempDir(), "other")
	mustArcpack(t, "create", src, "-o", other, "--recovery", "10%")
	parity, _ := filepath.Glob(other + ".r*")
	if len(parity) == 0 {
		t.Fatal("no recovery volumes made")
	}
	for _, p := range parity {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(base+strings.TrimPrefix(p, other), b, 0o644)
	}
	flipByte(t, vols[0], -100)
	for _, args := range [][]string{{"cat", base + ".001", "bystander"}, {"extract", base + ".001", "-o", filepath.Join(t.TempDir(), "e")}} {
		if r := arcpack(t, args...); r.code == 0 || strings.Contains(r.stderr, "arcpack repair") {
			t.Errorf("%s beside another archive's recovery volumes: exit %d, stderr %q; want a failure that does not suggest repair", args[0], r.code, r.stderr)
		}
	}
}

// Sizes are for people by default and exact with --bytes.
func TestBytesFlagShowsExactSizes(t *testing.T) {
	src := filepath.Join(t.TempDir(), "src")
	os.Mkdir(src, 0o755)
	b := make([]byte, 1536000)
	rnd := rand.New(rand.NewPCG(1, 2))
	fillRandom(rnd, b)
	os.WriteFile(filepath.Join(src, "f"), b, 0o644)
	out := filepath.Join(t.TempDir(), "a")
	human := mustArcpack(t, "create", src, "-o", out, "--progress", "never")
	if !strings.Contains(human.stdout, "1.5 MiB in") {
		t.Errorf("create summary is not in MiB: %q", human.stdout)
	}
	exact := mustArcpack(t, "--bytes", "create", src, "-o", out, "--force", "--progress", "never")
	if !strings.Contains(exact.stdout, "1536000 B in") {
		t.Errorf("create --bytes summary is not exact: %q", exact.stdout)
	}
	for _, c := range []struct {
		args        []string
		human, byte string
	}{
		{[]string{"list", "-l", out + ".001"}, " 1.5 MiB ", " 1536000 "},
		{[]string{"info", out + ".001"}, "1.5 MiB in 1 file", "1536000 B in 1 file"},
		{[]string{"verify", out + ".001", "--progress", "never"}, "(1.5 MiB decoded)", "(1536000 B decoded)"},
	} {
		h := mustArcpack(t, c.args...)
		b := mustArcpack(t, append([]string{"--bytes"}, c.args...)...)
		if !strings.Contains(h.stdout, c.human) || strings.Contains(h.stdout, c.byte) {
			t.Errorf("arcpack %s: want %q for people:\n%s", strings.Join(c.args, " "), c.human, h.stdout)
		}
		if !strings.Contains(b.stdout, c.byte) {
			t.Errorf("arcpack --bytes %s: want %q:\n%s", strings.Join(c.args, " "), c.byte, b.stdout)
		}
	}
}

// arcmount's own lines name the archive and the mount point escaped, as
// arcpack's do: a path found by a glob may hold a name someone else chose.
// The error line (a missing archive), the line saying where it mounted,
// from the background and from -f.
func TestMountEscapesHostileNamesInItsLines(t *testing.T) {
	needMount(t)
	const evil = "x\x1b]0;pwned\x07\u009b\u202e"
	const escaped = `x\033]0;pwned\007\302\233\342\200\256`
	raw := func(what, s string) {
		t.Helper()
		if strings.ContainsAny(s, "\x1b\x07\u009b\u202e") {
			t.Errorf("%s prints a raw escape sequence: %q", what, s)
		}
	}
	dir := t.TempDir()
	arch := filepath.Join(dir, "a"+evil)
	for i, v := range volumes(t, pack(t, mountSmall, genTree(t, testtree.Options{Seed: 4, Files: 3, Depth: 1, NoXattrs: true}))) {
		b, err := os.ReadFile(v)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(fmt.Sprintf("%s.%03d", arch, i+1), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	mnt := filepath.Join(dir, "m"+evil)
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}

	r := runBin(t, runOpts{}, arcmountBin, filepath.Join(dir, "none"+evil+".001"), mnt)
	raw("the error line", r.stderr)
	if r.code != 2 || !strings.Contains(r.stderr, "none"+escaped+".001") {
		t.Errorf("a missing archive: want exit 2 and its name escaped; got %v", r)
	}

	r = runBin(t, runOpts{}, arcmountBin, arch+".001", mnt)
	if r.code != 0 {
		t.Fatalf("arcmount: %v", r)
	}
	if m := pidRE.FindStringSubmatch(r.stdout); m != nil {
		pid, _ := strconv.Atoi(m[1])
		unmount(t, mnt, pid)
	} else {
		exec.Command("fusermount3", "-u", mnt).Run()
	}
	raw("the line saying where it mounted", r.stdout)
	if want := "a" + escaped + ".001 mounted on " + filepath.Join(dir, "m"+escaped); !strings.Contains(r.stdout, want) {
		t.Errorf("arcmount's line lacks %q: %q", want, r.stdout)
	}

	cmd := exec.Command(arcmountBin, "-f", arch+".001", mnt)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(20 * time.Second); !isMounted(t, mnt); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("arcmount -f did not mount in 20s:\n%s", stderr.String())
		}
	}
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Errorf("arcmount -f: %v\n%s", err, stderr.String())
	}
	if isMounted(t, mnt) {
		exec.Command("fusermount3", "-u", mnt).Run()
	}
	raw("arcmount -f", stderr.String())
	if want := "a" + escaped + ".001 mounted on " + filepath.Join(dir, "m"+escaped); !strings.Contains(stderr.String(), want) {
		t.Errorf("arcmount -f's line lacks %q: %q", want, stderr.String())
	}
}

// arcmount: usage errors and failures exit 2 with one line that says
// what to change.
func TestMountErrorsSayWhatToChange(t *testing.T) {
	needMount(t)
	base := pack(t, mountSmall, genTree(t, testtree.Options{Seed: 4, Files: 3, Depth: 1, NoXattrs: true}))
	free := filepath.Join(t.TempDir(), "free")
	os.Mkdir(free, 0o755)
	cases := []struct {
		name string
		o    runOpts
		args []string
		want []string
	}{
		{"no arguments", runOpts{}, nil, []string{"want ARCHIVE and MOUNTPOINT, got 0", "arcmount --help"}},
		{"unknown flag", runOpts{}, []string{"--nope", base + ".001", free}, []string{"unknown flag: --nope", "arcmount --help"}},
		{"a directory for an archive", runOpts{}, []string{free, free}, []string{"a directory, not an archive volume"}},
		{"a volume name cut short", runOpts{}, []string{base + ".0", free}, []string{"did you mean " + base + ".001?"}},
		{"a device with the GPU off", runOpts{}, []string{"--gpu=off", "--gpu-device", "0:0", base + ".001", free}, []string{"--gpu-device 0:0 with --gpu=off"}},
		{"no mount point", runOpts{}, []string{base + ".001", free + "-not"}, []string{"mount point " + free + "-not does not exist (create it: mkdir -p " + free + "-not)"}},
		// A script's unset variable: taken for the directory it runs in,
		// the mount would hide that directory's files (run in free, which
		// the check below looks at).
		{"an empty mount point", runOpts{dir: free}, []string{base + ".001", ""}, []string{"MOUNTPOINT is empty (give the directory to mount on; '.' for this one)"}},
		{"an empty archive", runOpts{dir: free}, []string{"", free}, []string{"ARCHIVE is empty"}},
		{"an empty log file", runOpts{dir: free}, []string{"--log", "", base + ".001", free}, []string{"--log is empty"}},
	}
	if os.Geteuid() == 0 {
		b, _ := os.ReadFile("/etc/fuse.conf")
		if !regexp.MustCompile(`(?m)^\s*user_allow_other\s*$`).Match(b) {
			// nobody must reach the archive and the mount point.
			os.Chmod(free, 0o777)
			for _, p := range []string{base, free} {
				for d := filepath.Dir(p); strings.HasPrefix(d, os.TempDir()+"/"); d = filepath.Dir(d) {
					os.Chmod(d, 0o755)
				}
			}
			for _, v := range volumes(t, base) {
				os.Chmod(v, 0o644)
			}
			cases = append(cases, struct {
				name string
				o    runOpts
				args []string
				want []string
			}{"allow_other as a user", runOpts{uid: 65534, gid: 65534}, []string{"-o", "allow_other", base + ".001", free}, []string{"allow_other", "user_allow_other", "/etc/fuse.conf"}})
		}
	}
	for _, c := range cases {
		r := runBin(t, c.o, arcmountBin, c.args...)
		lines := strings.Split(strings.TrimRight(r.stderr, "\n"), "\n")
		if r.code != 2 || len(lines) != 1 || !strings.HasPrefix(lines[0], "arcmount: ") {
			t.Errorf("%s: want exit 2 and one line \"arcmount: ...\"; got %v", c.name, r)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(lines[0], w) {
				t.Errorf("%s: %q lacks %q", c.name, lines[0], w)
			}
		}
		if isMounted(t, free) {
			exec.Command("fusermount3", "-u", free).Run()
			t.Fatalf("%s: mounted anyway", c.name)
		}
	}
}

// What the FUSE helper says when it fails reaches the user with the error,
// though arcmount's server runs in the background: a stand-in fusermount3
// that refuses is put first in PATH of an ordinary user (root mounts
// without the helper).
func TestMountShowsWhatTheFUSEHelperSaid(t *testing.T) {
	needMount(t)
	if os.Geteuid() != 0 {
		t.Skip("needs root to run arcmount as another user")
	}
	base := pack(t, mountSmall, genTree(t, testtree.Options{Seed: 4, Files: 3, Depth: 1, NoXattrs: true}))
	top := sharedTempDir(t, "arc-helper-", 0o755)
	fake := filepath.Join(top, "bin")
	os.Mkdir(fake, 0o755)
	script := "#!/bin/sh\necho \"fusermount3: stand-in refuses $1\" >&2\nexit 1\n"
	if err := os.WriteFile(filepath.Join(fake, "fusermount3"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	mnt := filepath.Join(top, "mnt")
	os.Mkdir(mnt, 0o777)
	arch := filepath.Join(top, "a")
	for i, v := range volumes(t, base) {
		b, _ := os.ReadFile(v)
		os.WriteFile(fmt.Sprintf("%s.%03d", arch, i+1), b, 0o644)
	}
	cmd := exec.Command(arcmountBin, arch+".001", mnt)
	cmd.Env = append(os.Environ(), "PATH="+fake+":/usr/bin:/bin")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	done := make(chan error, 1)
	go func() { done <- cmd.Run() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(time.Minute):
		cmd.Process.Kill()
		t.Fatal("arcmount hung")
	}
	if isMounted(t, mnt) {
		exec.Command("fusermount3", "-u", mnt).Run()
		t.Fatal("mounted although the helper refused")
	}
	lines := strings.Split(strings.TrimRight(stderr.String(), "\n"), "\n")
	code := -1
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	}
	if code != 2 || len(lines) != 1 || !strings.HasPrefix(lines[0], "arcmount: ") ||
		!strings.Contains(lines[0], "fusermount3: stand-in refuses "+mnt) {
		t.Errorf("want exit 2 and one line with the helper's words; got exit %d (%v)\nstdout: %s\nstderr: %s", code, err, stdout.String(), stderr.String())
	}
}

// TestExtractProgressCountsPathsGivenWithDots extracts a PATH given as
// "./d/": the bar must know the path's bytes, as for "d", not count
// without a total.
func TestExtractProgressCountsPathsGivenWithDots(t *testing.T) {
	src := t.TempDir()
	os.Mkdir(filepath.Join(src, "d"), 0o755)
	if err := os.WriteFile(filepath.Join(src, "d", "f"), bytes.Repeat([]byte("arc "), 1<<18), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "a")
	mustArcpack(t, "create", src, "-o", out)
	for _, p := range []string{"d", "./d/"} {
		r := mustArcpack(t, "extract", out+".001", "-o", t.TempDir(), p, "--progress", "always")
		// A bar without a total is drawn at once as "| extracting (1.0
		// MB, ...)"; one with a total only after its first 100 ms.
		if strings.Contains(r.stderr, "| extracting (") {
			t.Errorf("extract %s --progress always: a bar without a total:\n%q", p, r.stderr)
		}
		// And a bar there was: a finished one clears its line.
		if !strings.Contains(r.stderr, "\r\033[K") {
			t.Errorf("extract %s --progress always drew no bar:\n%q", p, r.stderr)
		}
	}
}

// A bad flag of arcpack itself is said once, as a command's is ("arcpack:
// arcpack: unknown flag" named the program twice).
func TestABadFlagOfArcpackItselfIsNamedOnce(t *testing.T) {
	r := arcpack(t, "--nope")
	if want := "arcpack: unknown flag: --nope (see 'arcpack --help')\n"; r.code != 2 || r.stderr != want {
		t.Errorf("exit %d, stderr %q; want 2 and %q", r.code, r.stderr, want)
	}
}

// `arcpack gpu` ends with what --gpu=auto comes to, also where no OpenCL
// platform is installed at all.
func TestGPUSaysWhatAutoComesToWithoutAnyPlatform(t *testing.T) {
	r := runBin(t, runOpts{env: []string{"OCL_ICD_VENDORS=" + t.TempDir()}}, arcpackBin, "gpu", "--no-self-test")
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if last := lines[len(lines)-1]; r.code != 0 || !strings.HasPrefix(last, "--gpu=auto: gpu: using the CPU (") {
		t.Errorf("arcpack gpu without an OpenCL platform: %v\nwant its last line to say --gpu=auto uses the CPU", r)
	}
}

// create says, after its summary, when the table of chunks reached
// --chunk-memory (and exits 0: what comes back is whole, only the size
// may grow); a bound below 1M is a usage error.
func TestCreateSaysWhenTheChunkTableWasFull(t *testing.T) {
	src := filepath.Join(t.TempDir(), "src")
	os.Mkdir(src, 0o755)
	b := make([]byte, 64<<20) // about 14,000 chunks of 4 KiB: more than 1M holds
	fillRandom(rand.New(rand.NewPCG(3, 4)), b)
	os.WriteFile(filepath.Join(src, "f"), b, 0o644)
	out := filepath.Join(t.TempDir(), "a")
	r := mustArcpack(t, "create", src, "-o", out, "--progress", "never", "--chunk-size", "4K", "--chunk-memory", "1M")
	if !regexp.MustCompile(`\nchunk dedup: the table of chunks reached --chunk-memory 1\.0 MiB \(12288 chunks in 640\.0 KiB\); \d+ chunks then took an older one's place or went unrecorded, .*a larger --chunk-memory keeps them\n$`).MatchString(r.stdout) {
		t.Errorf("create does not say the chunk table was full:\n%s", r.stdout)
	}
	r = mustArcpack(t, "create", src, "-o", out, "--force", "--progress", "never", "--chunk-size", "4K")
	if strings.Contains(r.stdout, "chunk dedup:") {
		t.Errorf("create with the default --chunk-memory says the table was full:\n%s", r.stdout)
	}
	mustArcpack(t, "verify", out+".001")
	wantFail(t, arcpack(t, "create", src, "-o", out+"-b", "--chunk-memory", "100K"), 2, "--chunk-memory 102400 is below the minimum of 1M")
}
