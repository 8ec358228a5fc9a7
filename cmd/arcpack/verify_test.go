package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"arc/recovery"
)

// Every block and the index check out, but the recovery check finds a data
// volume different from what it recorded (a codec's other encoding of the
// same bytes, which only the parity sees): verify says so, naming the data
// volume, not that the recovery volumes are damaged. And it counts the
// recovery volumes of the set, not every file named like one.
func TestVerifyWordsWhatTheRecoveryCheckFound(t *testing.T) {
	vols := func(states ...recovery.State) *recoveryCheck {
		rep := &recovery.Report{}
		for i, s := range states {
			v := recovery.VolumeReport{Path: "a.00" + string(rune('1'+i)), State: s}
			if i >= 2 {
				v.Recovery, v.Path = true, "a.r0"+string(rune('1'+i-2))
			}
			rep.Volumes = append(rep.Volumes, v)
		}
		return &recoveryCheck{paths: []string{"a.r01", "a.r02", "a.r03"}, rep: rep}
	}
	if got := vols(recovery.Damaged, recovery.OK, recovery.OK, recovery.OK).notIntact(); !strings.Contains(got, "a.001 differ(s) from what the recovery volumes recorded") {
		t.Errorf("a data volume differs: %q", got)
	}
	if got := vols(recovery.OK, recovery.OK, recovery.Missing, recovery.OK).notIntact(); got != "the archive is intact, its recovery volumes are not" {
		t.Errorf("a recovery volume missing: %q", got)
	}
	var out bytes.Buffer
	writeRecoveryText(&out, &units{}, "a.001", vols(recovery.OK, recovery.OK, recovery.OK, recovery.OK))
	if !strings.HasPrefix(out.String(), "recovery: 2 volume(s) intact") {
		t.Errorf("a.r03 is not one of the set's 2 recovery volumes: %q", out.String())
	}
}

// Damage the reader finds where the recovery volumes find every volume as
// they recorded it (bytes damaged before the parity was made): verify does
// not send the user to a repair that would answer "intact, nothing to
// repair".
func TestVerifyHintsRepairOnlyWhenItHasSomethingToRebuild(t *testing.T) {
	rec := &recoveryCheck{paths: []string{"a.r01"}, rep: &recovery.Report{Repairable: true, Volumes: []recovery.VolumeReport{
		{Path: "a.001", Repairable: true}, {Path: "a.r01", Recovery: true, Repairable: true}}}}
	if h := rec.hint("a.001"); strings.Contains(h, "run 'arcpack repair") || !strings.Contains(h, "nothing to rebuild") {
		t.Errorf("hint with every volume as recorded: %q", h)
	}
	rec.rep.Volumes[0].State = recovery.Damaged
	if h := rec.hint("a.001"); !strings.Contains(h, "repairable: run 'arcpack repair a.001'") {
		t.Errorf("hint with a.001 damaged and repairable: %q", h)
	}
}

// Repair rebuilds all or nothing: where the set is beyond its recovery
// volumes, no volume is said to be repairable on its own line.
func TestNoVolumeIsSaidRepairableWhereTheSetIsNot(t *testing.T) {
	rep := &recovery.Report{Repairable: false, Volumes: []recovery.VolumeReport{
		{Path: "a.001", State: recovery.Missing, Size: -1},
		{Path: "a.002", State: recovery.Damaged, Damaged: []recovery.Range{{Off: 0, End: 10}}},
		{Path: "a.r01", Recovery: true, State: recovery.Damaged, Damaged: []recovery.Range{{Off: 0, End: 10}}, Repairable: true},
	}}
	var out bytes.Buffer
	writeRecoveryReport(&out, &units{}, rep, "a.001")
	if got := out.String(); strings.Contains(got, ", repairable") || strings.Count(got, "NOT repairable") != 2 {
		t.Errorf("report of a set beyond repair:\n%s", got)
	}
	out.Reset()
	rep.Repairable = true
	rep.Volumes[0].Repairable, rep.Volumes[1].Repairable = true, true
	writeRecoveryReport(&out, &units{}, rep, "a.001")
	if got := out.String(); strings.Count(got, ", repairable") != 3 {
		t.Errorf("report of a repairable set:\n%s", got)
	}
}

// A directory where a lost volume belongs: verify says it is in the way,
// and repair refuses before writing anything (it would have written every
// volume and then failed to rename one, leaving the renames half done),
// then repairs once it is moved.
func TestRepairRefusesADirectoryWhereAVolumeBelongs(t *testing.T) {
	name := packTree(t, map[string]string{"r": noise(200000, 5)}, "--volume-size", "64K", "--recovery", "50%")
	if err := os.Remove(name + ".002"); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(name+".002", 0o755); err != nil {
		t.Fatal(err)
	}
	before, _ := filepath.Glob(name + "*")
	stdout, _, _ := arcpack(t, "verify", "--progress", "never", name+".001")
	if !strings.Contains(stdout, "a directory has its name") {
		t.Errorf("verify does not say a directory is in the way:\n%s", stdout)
	}
	_, stderr, code := arcpack(t, "repair", "--progress", "never", name+".001")
	if code != exitFatal || !strings.Contains(stderr, "move it away") {
		t.Errorf("repair with a directory in the way: exit %d, %q", code, stderr)
	}
	if after, _ := filepath.Glob(name + "*"); !slices.Equal(before, after) {
		t.Errorf("repair refused but changed the names there: %v, was %v", after, before)
	}
	os.Remove(name + ".002")
	if _, stderr, code := arcpack(t, "repair", "--progress", "never", name+".001"); code != 0 {
		t.Errorf("repair once the directory is gone: exit %d, %q", code, stderr)
	}
}

// verify --json's list fields are [] when empty, never null (docs/CLI.md),
// also in the report made from the recovery volumes alone when the archive
// does not open.
func TestVerifyJSONListsAreNeverNull(t *testing.T) {
	for _, tc := range []struct {
		name string
		lose bool // the last volume, with the index
	}{
		{"intact", false},
		{"last volume lost, rebuilt from the recovery volumes", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name := packTree(t, map[string]string{"r": noise(200000, 1)}, "--volume-size", "64K", "--recovery", "50%")
			if tc.lose {
				vols, _ := filepath.Glob(name + ".0*")
				if len(vols) < 2 {
					t.Fatalf("volumes %v, want several", vols)
				}
				if err := os.Remove(vols[len(vols)-1]); err != nil {
					t.Fatal(err)
				}
			}
			stdout, stderr, _ := arcpack(t, "verify", "--json", "--progress", "never", name+".001")
			var v map[string]any
			if err := json.Unmarshal([]byte(stdout), &v); err != nil {
				t.Fatalf("verify --json: %v: %q %s", err, stdout, stderr)
			}
			for _, f := range []string{"missing_volumes", "damaged_volumes", "stray_volumes", "damaged_blocks", "affected_files"} {
				if _, ok := v[f].([]any); !ok {
					t.Errorf("%s: %v, want a list", f, v[f])
				}
			}
		})
	}
}

// A volume name past the archive's last volume is a mistyped name, as list
// and info say (exit 2), also where recovery volumes lie beside it: not a
// lost volume that verify reports as damage. The last volume itself, gone,
// is damage the recovery volumes can rebuild (exit 1).
func TestVerifyOfAVolumePastTheLastIsAMistypedName(t *testing.T) {
	name := packTree(t, map[string]string{"r": noise(200000, 2)}, "--volume-size", "64K", "--recovery", "50%")
	vols, _ := filepath.Glob(name + ".0*")
	last := vols[len(vols)-1]
	for _, tc := range []struct {
		name   string
		arg    string
		lose   bool
		code   int
		stderr string
	}{
		{"past the last", name + ".009", false, exitFatal, "the archive's volumes here are"},
		{"the last one, lost", last, true, exitDamage, "repairable: run 'arcpack repair"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.lose {
				b, err := os.ReadFile(last)
				if err != nil {
					t.Fatal(err)
				}
				os.Remove(last)
				defer os.WriteFile(last, b, 0o644)
			}
			_, stderr, code := arcpack(t, "verify", "--progress", "never", tc.arg)
			if code != tc.code || !strings.Contains(stderr, tc.stderr) {
				t.Errorf("verify %s: exit %d, %q; want exit %d and %q", filepath.Base(tc.arg), code, stderr, tc.code, tc.stderr)
			}
		})
	}
}

// A volume copied under a name that is not a volume's (NAME.5, a name of
// its own) is a name to correct, as list says (exit 2), not damage.
func TestVerifyOfAVolumeUnderAnotherNameIsAMisnamedArchive(t *testing.T) {
	name := packTree(t, map[string]string{"r": noise(200000, 4)}, "--volume-size", "64K")
	b, err := os.ReadFile(name + ".002")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ arg, stderr string }{
		{name + ".5", "did you mean " + name + ".001?"},
		{filepath.Join(t.TempDir(), "copy"), "an arc volume, but not under a volume's name"},
	} {
		if err := os.WriteFile(tc.arg, b, 0o644); err != nil {
			t.Fatal(err)
		}
		_, stderr, code := arcpack(t, "verify", "--progress", "never", tc.arg)
		if code != exitFatal || !strings.Contains(stderr, tc.stderr) || strings.Contains(stderr, "damaged") {
			t.Errorf("verify %s: exit %d, %q; want exit %d and %q", filepath.Base(tc.arg), code, stderr, exitFatal, tc.stderr)
		}
	}
}

// Two volumes whose names were swapped: verify names them misnamed, says
// where each was found and that repair fixes it (exit 1); repair puts them
// back and verify then finds the archive intact.
func TestSwappedVolumesAreNamedByVerifyAndPutBackByRepair(t *testing.T) {
	name := packTree(t, map[string]string{"r": noise(300000, 3)}, "--volume-size", "64K", "--recovery", "50%")
	a, b := name+".002", name+".003"
	if err := os.Rename(a, a+".x"); err != nil {
		t.Fatal(err)
	}
	os.Rename(b, a)
	os.Rename(a+".x", b)
	stdout, stderr, code := arcpack(t, "verify", "--progress", "never", name+".001")
	for _, want := range []string{
		filepath.Base(a) + ": misnamed, found as " + b + ", repairable",
		filepath.Base(b) + ": misnamed, found as " + a + ", repairable",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("verify's report lacks %q:\n%s", want, stdout)
		}
	}
	if code != exitDamage || !strings.Contains(stderr, "repairable: run 'arcpack repair") {
		t.Errorf("verify: exit %d, %q; want exit %d, repairable", code, stderr, exitDamage)
	}
	if _, stderr, code := arcpack(t, "repair", "--progress", "never", name+".001"); code != exitOK {
		t.Fatalf("repair: exit %d: %s", code, stderr)
	}
	if _, stderr, code := arcpack(t, "verify", "--progress", "never", name+".001"); code != exitOK {
		t.Errorf("verify after repair: exit %d: %s", code, stderr)
	}
}
