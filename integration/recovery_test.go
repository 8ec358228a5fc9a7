package integration

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"arc/internal/testtree"
)

// recoverySource is two files of random bytes (incompressible, so the
// archive spans several 256 KiB volumes).
func recoverySource(t *testing.T) string {
	t.Helper()
	src := filepath.Join(t.TempDir(), "src")
	os.Mkdir(src, 0o755)
	rnd := rand.New(rand.NewPCG(11, 12))
	for _, name := range []string{"one", "two"} {
		b := make([]byte, 500<<10)
		fillRandom(rnd, b)
		if err := os.WriteFile(filepath.Join(src, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return src
}

// archiveFiles maps every file of the archive's directory to its bytes.
func archiveFiles(t *testing.T, base string) map[string][]byte {
	t.Helper()
	ents, err := os.ReadDir(filepath.Dir(base))
	if err != nil {
		t.Fatal(err)
	}
	m := map[string][]byte{}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(filepath.Dir(base), e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		m[e.Name()] = b
	}
	return m
}

func sameArchiveFiles(t *testing.T, what string, got, want map[string][]byte) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d files, want %d", what, len(got), len(want))
	}
	for name, b := range want {
		if !bytes.Equal(got[name], b) {
			t.Errorf("%s: %s differs from the original", what, name)
		}
	}
}

func TestCreateWithRecoveryThenRepairAnyLostVolume(t *testing.T) {
	src := recoverySource(t)
	out := filepath.Join(t.TempDir(), "a")
	r := mustArcpack(t, append([]string{"create", src, "-o", out, "--recovery", "10%"}, small...)...)
	if !strings.Contains(r.stdout, "recovery: ") || !strings.Contains(r.stdout, "at least one volume's worth") {
		t.Errorf("create summary lacks the recovery line:\n%s", r.stdout)
	}
	vols := volumes(t, out)
	if len(vols) < 3 {
		t.Fatalf("want 3 or more volumes, got %v", vols)
	}
	if _, err := os.Stat(out + ".r01"); err != nil {
		t.Fatal(err)
	}
	want := archiveFiles(t, out)
	r = mustArcpack(t, "verify", out+".001")
	if !strings.Contains(r.stdout, "recovery: ") {
		t.Errorf("verify does not mention the recovery volumes:\n%s", r.stdout)
	}
	last := vols[len(vols)-1]
	cases := []struct {
		name, volume string
		hurt         func(p string)
	}{
		{"middle volume deleted", vols[1], func(p string) { os.Remove(p) }},
		{"last volume (index, footer) deleted", last, func(p string) { os.Remove(p) }},
		{"first volume bytes flipped", vols[0], func(p string) { flipByte(t, p, 20); flipByte(t, p, 100000) }},
		{"recovery volume deleted", out + ".r01", func(p string) { os.Remove(p) }},
	}
	for _, c := range cases {
		c.hurt(c.volume)
		r := arcpack(t, "verify", out+".001", "--progress", "never")
		wantFail(t, r, 1, "repairable: run 'arcpack repair "+out+".001'")
		if !strings.Contains(r.stdout, c.volume+": ") || !strings.Contains(r.stdout, ", repairable") {
			t.Errorf("%s: verify does not name %s as repairable:\n%s", c.name, c.volume, r.stdout)
		}
		r = mustArcpack(t, "repair", out+".001")
		if !strings.Contains(r.stdout, c.volume) {
			t.Errorf("%s: repair does not name %s:\n%s", c.name, c.volume, r.stdout)
		}
		mustArcpack(t, "verify", out+".001", "--progress", "never")
		sameArchiveFiles(t, c.name, archiveFiles(t, out), want)
	}
	dst := filepath.Join(t.TempDir(), "dst")
	mustArcpack(t, "extract", out+".001", "-o", dst)
	compare(t, src, dst, testtree.CompareOptions{})
}

func TestRecoveryAddToAnExistingArchive(t *testing.T) {
	src := recoverySource(t)
	base := pack(t, small, src)
	wantFail(t, arcpack(t, "repair", base+".001"), 2, "no usable recovery volumes")
	r := mustArcpack(t, "recovery", "add", base+".001", "--recovery", "10%")
	if !strings.Contains(r.stdout, base+".r01") {
		t.Errorf("recovery add does not name what it wrote:\n%s", r.stdout)
	}
	wantFail(t, arcpack(t, "recovery", "add", base+".001", "--recovery", "10%"), 2, "already has recovery volumes", "--force")
	mustArcpack(t, "recovery", "add", base, "--recovery", "20%", "--force")
	mustArcpack(t, "recovery", "add", base+".r01", "--recovery", "20%", "--force") // any of its names
	wantFail(t, arcpack(t, "recovery", "add", base, "--recovery", "200%"), 2, "--recovery")
	want := archiveFiles(t, base)

	v2 := base + ".002"
	if err := os.Truncate(v2, 1000); err != nil {
		t.Fatal(err)
	}
	r = arcpack(t, "verify", base+".001", "--json")
	if r.code != 1 {
		t.Fatalf("verify --json of a truncated volume: %v", r)
	}
	var got struct {
		Intact   bool `json:"intact"`
		Recovery *struct {
			Repairable bool `json:"repairable"`
			Damaged    []struct {
				Path, Kind, State string
				Ranges            [][2]int64
				Repairable        bool
			} `json:"damaged"`
		} `json:"recovery"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Fatalf("verify --json: %v\n%s", err, r.stdout)
	}
	if got.Intact || got.Recovery == nil || !got.Recovery.Repairable || len(got.Recovery.Damaged) != 1 ||
		got.Recovery.Damaged[0].Path != v2 || got.Recovery.Damaged[0].State != "damaged" ||
		got.Recovery.Damaged[0].Ranges[0][0] > 1000 || !got.Recovery.Damaged[0].Repairable {
		t.Errorf("verify --json: %+v\n%s", got, r.stdout)
	}
	wantFail(t, arcpack(t, "verify", base+".r01"), 2, "a recovery volume, not a data volume", base+".001")
	mustArcpack(t, "repair", base+".r01") // any name of the set will do
	mustArcpack(t, "verify", base+".001")
	sameArchiveFiles(t, "after repair", archiveFiles(t, base), want)
}

// Parity computed over damaged bytes would make repair bring the damage
// back: recovery add verifies the archive first and writes nothing for a
// damaged one.
func TestRecoveryAddRefusesADamagedArchive(t *testing.T) {
	src := recoverySource(t)
	base := pack(t, small, src)
	flipByte(t, base+".001", 100000)
	r := arcpack(t, "recovery", "add", base+".001", "--recovery", "10%", "--progress", "never")
	wantFail(t, r, 1, "the archive is damaged (1 bad block(s)", "none was written", "'arcpack verify "+base+".001'")
	if left := recoveryFiles(t, base); len(left) != 0 {
		t.Errorf("recovery add wrote %v for a damaged archive", left)
	}
}

func TestRepairBeyondCapacityChangesNothing(t *testing.T) {
	src := recoverySource(t)
	out := filepath.Join(t.TempDir(), "a")
	mustArcpack(t, append([]string{"create", src, "-o", out, "--recovery", "5%"}, small...)...)
	os.Remove(out + ".001")
	os.Remove(out + ".003")
	before := archiveFiles(t, out)
	r := arcpack(t, "verify", out+".002")
	wantFail(t, r, 1, "NOT repairable")
	r = arcpack(t, "repair", out+".002")
	wantFail(t, r, 1, "damage exceeds the recovery data", "nothing changed")
	if !strings.Contains(r.stdout, "NOT repairable") {
		t.Errorf("repair does not say which volume cannot be rebuilt:\n%s", r.stdout)
	}
	sameArchiveFiles(t, "after a refused repair", archiveFiles(t, out), before)
}

// create --force removes the replaced archive's recovery volumes: they
// could rebuild nothing of the new one. Recovery volumes of another archive
// put back beside it are named by verify, refused by repair, and replaced
// by recovery add --force.
func TestStaleRecoveryVolumesAreNotDamage(t *testing.T) {
	src := recoverySource(t)
	out := filepath.Join(t.TempDir(), "a")
	mustArcpack(t, append([]string{"create", src, "-o", out, "--recovery", "10%"}, small...)...)
	putBack := keepFiles(t, recoveryFiles(t, out))
	r := mustArcpack(t, append([]string{"create", src, "-o", out, "--force"}, small...)...)
	if !strings.Contains(r.stdout, "removed 2 recovery volume(s) of the replaced archive") {
		t.Errorf("create --force does not say it removed the old recovery volumes:\n%s", r.stdout)
	}
	if left := recoveryFiles(t, out); len(left) != 0 {
		t.Fatalf("create --force left the replaced archive's recovery volumes: %v", left)
	}
	putBack()
	r = mustArcpack(t, "verify", out+".001")
	if !strings.Contains(r.stdout, "recovery volumes not used") || !strings.Contains(r.stdout, "another archive") {
		t.Errorf("verify does not name the stale recovery volumes:\n%s", r.stdout)
	}
	wantFail(t, arcpack(t, "repair", out+".001"), 2, "belong to another archive")
	mustArcpack(t, "recovery", "add", out+".001", "--recovery", "10%", "--force")
	if r := mustArcpack(t, "verify", out+".001"); !strings.Contains(r.stdout, "volume(s) intact; every volume checked") {
		t.Errorf("verify after replacing the recovery volumes:\n%s", r.stdout)
	}
}

// create --force --recovery stopped while it writes the new parity leaves
// the new archive complete and no recovery volume at all: the replaced
// archive's are gone before the new ones are begun, so recovery add (no
// --force) writes them later, and verify finds nothing of another archive.
func TestCreateForceStoppedInItsParityLeavesNoStaleRecovery(t *testing.T) {
	outDir := t.TempDir()
	out := filepath.Join(outDir, "a")
	mustArcpack(t, append([]string{"create", recoverySource(t), "-o", out, "--recovery", "10%"}, small...)...)
	if len(recoveryFiles(t, out)) == 0 {
		t.Fatal("the first archive has no recovery volumes")
	}
	old, err := os.Stat(out + ".001")
	if err != nil {
		t.Fatal(err)
	}
	src := randomTree(t, 12, 8<<20)
	cmd := exec.Command(arcpackBin, "create", src, "-o", out, "--force", "--recovery", "100%",
		"--volume-size", "8M", "--codec", "raw", "--workers", "1", "--progress", "never")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// The new volumes are renamed into place before the parity begins.
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if st, err := os.Stat(out + ".001"); err == nil && !os.SameFile(st, old) {
			break
		}
	}
	interrupt(t, cmd, syscall.SIGTERM, &stderr, "create --recovery", "no recovery volume written (the archive is complete")
	if left := recoveryFiles(t, out); len(left) != 0 {
		t.Errorf("create --force stopped in its parity left recovery volumes %v", left)
	}
	mustArcpack(t, "verify", out+".001")
	mustArcpack(t, "recovery", "add", out+".001", "--recovery", "10%")
	mustArcpack(t, "verify", out+".001")
}

// A repair killed while it gave swapped volumes back their names leaves
// one volume's only copy under a temporary name. The next arcpack that
// takes the archive's lock finishes the renames its journal lists, and
// does not remove that file as a dead writer's.
func TestRepairKilledInItsRenamesIsFinishedByTheNext(t *testing.T) {
	src := recoverySource(t)
	out := filepath.Join(t.TempDir(), "a")
	mustArcpack(t, append([]string{"create", src, "-o", out, "--recovery", "10%"}, small...)...)
	vols := volumes(t, out)
	if len(vols) < 3 {
		t.Fatalf("want 3 or more volumes, got %v", vols)
	}
	want := archiveFiles(t, out)
	v2, v3 := vols[1], vols[2]
	// The repair of NAME.002 and NAME.003 swapped had copied each out
	// under a temporary name for the other's, journaled the two renames,
	// done the first and no more: NAME.003 still holds volume 2, and
	// volume 3 is only in its temporary file.
	t3 := v3 + ".tmp-0123456789ab"
	if err := os.Rename(v3, t3); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(v2)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(v3, b, 0o644); err != nil {
		t.Fatal(err)
	}
	var st syscall.Stat_t
	if err := syscall.Lstat(t3, &st); err != nil {
		t.Fatal(err)
	}
	journal := fmt.Sprintf("arcpack commit 1\n1 2 3 4 %q %q\n%d %d %d %d %q %q\nend\n",
		filepath.Base(v2+".tmp-00000000abcd"), filepath.Base(v2),
		st.Dev, st.Ino, st.Size, st.Mtim.Nano(), filepath.Base(t3), filepath.Base(v3))
	if err := os.WriteFile(out+".arcpack-commit", []byte(journal), 0o644); err != nil {
		t.Fatal(err)
	}
	// verify, which writes nothing, says where the half-done state
	// comes from and what finishes it.
	r := arcpack(t, "verify", out+".001", "--progress", "never")
	if !strings.Contains(r.stderr, out+".arcpack-commit: an arcpack killed while it gave volumes their names") ||
		!strings.Contains(r.stderr, "'arcpack repair "+out+".001' does them first") {
		t.Errorf("verify does not point at the journal:\n%v", r)
	}
	r = mustArcpack(t, "repair", out+".001")
	if !strings.Contains(r.stdout, "finished the renames of an earlier run that was killed") ||
		!strings.Contains(r.stdout, "intact, nothing to repair") {
		t.Errorf("repair does not finish the renames, or rebuilds:\n%s", r.stdout)
	}
	for _, p := range []string{t3, out + ".arcpack-commit"} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s is left", p)
		}
	}
	mustArcpack(t, "verify", out+".001", "--progress", "never")
	sameArchiveFiles(t, "after the renames", archiveFiles(t, out), want)
}
