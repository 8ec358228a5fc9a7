package recovery

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"arc/format"
	"arc/internal/testtree"

	"github.com/zeebo/xxh3"
)

// makeSet writes a synthetic volume set: real volume headers and footer
// around seeded random bytes. Recovery treats volumes as opaque bytes, so
// this is all it needs, and it is fast.
func makeSet(t testing.TB, dir string, volSize, stream int64, seed uint64) string {
	t.Helper()
	base := filepath.Join(dir, "a")
	rng := rand.New(rand.NewPCG(seed, 1))
	var id format.ArchiveID
	for i := range id {
		id[i] = byte(rng.Uint32())
	}
	l := format.Layout{VolumeSize: volSize}
	n := l.VolumeCount(stream)
	body := make([]byte, stream)
	for i := range body {
		body[i] = byte(rng.Uint32())
	}
	ft := format.Footer{IndexOffset: 0, IndexSize: 0, VolumeCount: n, Version: format.Version, ID: id, StreamSize: uint64(stream)}
	fb, _ := ft.MarshalBinary()
	copy(body[stream-format.FooterSize:], fb)
	p := l.Payload()
	for v := uint32(1); v <= n; v++ {
		hb, _ := format.VolumeHeader{Version: format.Version, Number: v, ID: id, VolumeSize: uint64(volSize)}.MarshalBinary()
		lo := int64(v-1) * p
		hi := min(stream, lo+p)
		if err := os.WriteFile(format.VolumeName(base, v), append(hb, body[lo:hi]...), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return base
}

// snapshot maps every file of dir to its bytes.
func snapshot(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string][]byte{}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		m[e.Name()] = b
	}
	return m
}

func sameFiles(t *testing.T, got, want map[string][]byte) {
	t.Helper()
	for name, b := range want {
		g, ok := got[name]
		if !ok {
			t.Errorf("%s: missing", name)
		} else if !bytes.Equal(g, b) {
			t.Errorf("%s: differs (%d bytes, want %d)", name, len(g), len(b))
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			t.Errorf("%s: unexpected file", name)
		}
	}
}

// wantForeign checks that Check and Repair both refuse base's recovery
// volumes as another archive's.
func wantForeign(t *testing.T, base string) {
	t.Helper()
	if _, err := Check(ctx, base, Options{}); !errors.Is(err, ErrForeign) {
		t.Errorf("check: %v, want ErrForeign", err)
	}
	if _, err := Repair(ctx, base, Options{}); !errors.Is(err, ErrForeign) {
		t.Errorf("repair: %v, want ErrForeign", err)
	}
}

var ctx = context.Background()

// fixture: 6 volumes of 256 KiB (1.5 MiB in all) with 10% recovery.
func fixture(t *testing.T) (base string, want map[string][]byte, res *Result) {
	t.Helper()
	dir := t.TempDir()
	base = makeSet(t, dir, 256<<10, 6*(256<<10-48)-1000, 1)
	res, err := Add(ctx, base+".001", Options{Percent: 10})
	if err != nil {
		t.Fatal(err)
	}
	return base, snapshot(t, dir), res
}

func flip(t *testing.T, path string, off int64, n int, rng *rand.Rand) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, n)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	for i := range b {
		b[i] ^= byte(rng.IntN(255) + 1)
	}
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

func TestAddCoversPercentAndLargestVolume(t *testing.T) {
	base, _, res := fixture(t)
	if res.ParityBytes*10 < res.DataBytes {
		t.Errorf("parity %d bytes < 10%% of %d", res.ParityBytes, res.DataBytes)
	}
	if int64(res.Stripes*res.Parity)*int64(res.ShardSize) < 256<<10 {
		t.Errorf("parity %d×%d shards of %d cannot rebuild a 256 KiB volume", res.Stripes, res.Parity, res.ShardSize)
	}
	if res.Stripes < 2 || res.DataShards+res.Parity > 256 {
		t.Errorf("geometry %d stripes of %d+%d: want several stripes of at most 256 shards", res.Stripes, res.DataShards, res.Parity)
	}
	got, err := Find(base)
	if err != nil || !slices.Equal(got, res.Paths) {
		t.Errorf("Find = %q, %v; Add wrote %q", got, err, res.Paths)
	}
	rep, err := Check(ctx, base, Options{})
	if err != nil || !rep.Intact() || !rep.Repairable {
		t.Fatalf("fresh set: intact %v repairable %v err %v", rep != nil && rep.Intact(), rep != nil && rep.Repairable, err)
	}
}

// Every kind of damage to every single data volume is found, named with
// its byte ranges, and repaired byte for byte.
func TestEverySingleVolumeDamageIsRepaired(t *testing.T) {
	base, want, _ := fixture(t)
	dir := filepath.Dir(base)
	nvol := 6
	rng := rand.New(rand.NewPCG(7, 7))
	kinds := []struct {
		name  string
		state State
		hurt  func(t *testing.T, p string, size int64)
	}{
		{"deleted", Missing, func(t *testing.T, p string, size int64) { os.Remove(p) }},
		{"truncated", Damaged, func(t *testing.T, p string, size int64) { os.Truncate(p, size/3) }},
		{"zero-filled", Damaged, func(t *testing.T, p string, size int64) {
			f, _ := os.OpenFile(p, os.O_RDWR, 0)
			f.WriteAt(make([]byte, 20000), size/2)
			f.Close()
		}},
		{"random bytes flipped", Damaged, func(t *testing.T, p string, size int64) {
			for range 5 {
				flip(t, p, rng.Int64N(size), 1, rng)
			}
		}},
		{"grown", Damaged, func(t *testing.T, p string, size int64) {
			f, _ := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
			f.Write([]byte("junk"))
			f.Close()
		}},
	}
	for _, k := range kinds {
		for v := 1; v <= nvol; v++ {
			p := format.VolumeName(base, uint32(v))
			k.hurt(t, p, int64(len(want[filepath.Base(p)])))
			rep, err := Check(ctx, base, Options{})
			if err != nil {
				t.Fatalf("%s %s: check: %v", k.name, p, err)
			}
			if rep.Intact() || !rep.Repairable {
				t.Fatalf("%s %s: intact %v repairable %v", k.name, p, rep.Intact(), rep.Repairable)
			}
			for _, vr := range rep.Volumes {
				if vr.Path == p {
					if vr.State != k.state || len(vr.Damaged) == 0 || !vr.Repairable {
						t.Errorf("%s %s: state %v ranges %v repairable %v", k.name, p, vr.State, vr.Damaged, vr.Repairable)
					}
				} else if vr.State != OK {
					t.Errorf("%s %s: also reports %s %v", k.name, p, vr.Path, vr.State)
				}
			}
			res, err := Repair(ctx, base, Options{})
			if err != nil {
				t.Fatalf("%s %s: repair: %v", k.name, p, err)
			}
			if !slices.Equal(res.Rebuilt, []string{p}) {
				t.Errorf("%s %s: rebuilt %q", k.name, p, res.Rebuilt)
			}
			sameFiles(t, snapshot(t, dir), want)
		}
	}
}

func TestDamagedRangesAreTheDamagedShards(t *testing.T) {
	base, _, res := fixture(t)
	p := format.VolumeName(base, 3)
	S := int64(res.ShardSize)
	rng := rand.New(rand.NewPCG(1, 2))
	flip(t, p, 5*S+10, 1, rng)
	flip(t, p, 6*S, 1, rng)
	flip(t, p, 9*S+S-1, 1, rng)
	rep, err := Check(ctx, base, Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := []Range{{5 * S, 7 * S}, {9 * S, 10 * S}}
	if got := rep.Volumes[2].Damaged; !slices.Equal(got, want) {
		t.Errorf("damaged ranges %v, want %v", got, want)
	}
}

// Damage spread over the whole set is repaired as long as no stripe loses
// more shards than it has parity: in particular any contiguous run of up
// to T·m shards (the stated share), and runs in several volumes whose
// per-stripe losses add up to at most m.
func TestSpreadDamageUpToTheShareIsRepaired(t *testing.T) {
	base, want, res := fixture(t)
	dir := filepath.Dir(base)
	S := int64(res.ShardSize)
	T, m := int64(res.Stripes), int64(res.Parity)
	rng := rand.New(rand.NewPCG(3, 3))
	// global shard s of this fixture: volume s/64+1, offset (s%64)·S
	// (every volume is 256 KiB = 64 shards of 4 KiB; the last is shorter)
	hurt := func(s0, n int64) {
		for s := s0; s < s0+n; s++ {
			p := format.VolumeName(base, uint32(s/64+1))
			off := (s % 64) * S
			if st, err := os.Stat(p); err == nil && off < st.Size() {
				flip(t, p, off+rng.Int64N(min(S, st.Size()-off)), 1, rng)
			}
		}
	}
	if S != 4096 {
		t.Fatalf("shard size %d: the fixture assumes 4 KiB", S)
	}
	cases := []struct {
		name string
		runs [][2]int64 // first shard, count
	}{
		{"one run of T·m shards across volumes", [][2]int64{{100, T * m}}},
		{"runs in three volumes", [][2]int64{{10, T * (m / 3)}, {150, T * (m / 3)}, {300, T * (m / 3)}}},
		{"every T-th shard m times", func() (r [][2]int64) {
			for i := range m {
				r = append(r, [2]int64{3 + i*T*5, 1})
			}
			return
		}()},
	}
	for _, c := range cases {
		var total int64
		for _, r := range c.runs {
			hurt(r[0], r[1])
			total += r[1]
		}
		rep, err := Check(ctx, base, Options{})
		if err != nil || !rep.Repairable || rep.Intact() {
			t.Fatalf("%s: repairable %v err %v", c.name, rep != nil && rep.Repairable, err)
		}
		if _, err := Repair(ctx, base, Options{}); err != nil {
			t.Fatalf("%s (%d shards, %.1f%% of the data): %v", c.name, total, 100*float64(total*S)/float64(res.DataBytes), err)
		}
		sameFiles(t, snapshot(t, dir), want)
	}
}

func TestDamageBeyondCapacityIsRefusedAndChangesNothing(t *testing.T) {
	base, _, res := fixture(t)
	dir := filepath.Dir(base)
	// Two whole volumes are more than the parity: every stripe loses more
	// than m shards.
	os.Remove(format.VolumeName(base, 2))
	os.Remove(format.VolumeName(base, 5))
	os.Remove(res.Paths[0])
	before := snapshot(t, dir)
	rep, err := Check(ctx, base, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Repairable || rep.LostStripes == 0 {
		t.Fatalf("repairable %v lost stripes %d", rep.Repairable, rep.LostStripes)
	}
	if rep.Volumes[1].Repairable || rep.Volumes[1].State != Missing {
		t.Errorf("volume 2: %+v", rep.Volumes[1])
	}
	_, err = Repair(ctx, base, Options{})
	if !errors.Is(err, ErrNotRepairable) {
		t.Fatalf("repair: %v, want ErrNotRepairable", err)
	}
	sameFiles(t, snapshot(t, dir), before)
}

func TestLostOrDamagedRecoveryVolumeIsRebuilt(t *testing.T) {
	base, want, res := fixture(t)
	dir := filepath.Dir(base)
	rng := rand.New(rand.NewPCG(5, 5))
	last := res.Paths[len(res.Paths)-1]
	cases := []struct {
		name string
		hurt func()
	}{
		{"deleted", func() { os.Remove(res.Paths[0]) }},
		{"first header copy flipped", func() { flip(t, res.Paths[0], 12, 1, rng) }},
		{"second header copy and trailer flipped", func() {
			st, _ := os.Stat(last)
			flip(t, last, st.Size()-1, 1, rng)
			flip(t, last, st.Size()-40, 1, rng)
		}},
		{"parity shard and data bytes flipped", func() {
			st, _ := os.Stat(last)
			flip(t, last, st.Size()/2, 3, rng)
			flip(t, format.VolumeName(base, 6), 5000, 10, rng)
		}},
	}
	for _, c := range cases {
		c.hurt()
		rep, err := Check(ctx, base, Options{})
		if err != nil || rep.Intact() || !rep.Repairable {
			t.Fatalf("%s: intact %v repairable %v err %v", c.name, rep != nil && rep.Intact(), rep != nil && rep.Repairable, err)
		}
		if !rep.DataIntact() != (c.name == "parity shard and data bytes flipped") {
			t.Errorf("%s: DataIntact %v", c.name, rep.DataIntact())
		}
		if _, err := Repair(ctx, base, Options{}); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		sameFiles(t, snapshot(t, dir), want)
	}
}

func TestAddIsDeterministicAcrossWorkersAndPasses(t *testing.T) {
	base, want, _ := fixture(t)
	dir := filepath.Dir(base)
	for _, o := range []Options{{Workers: 1}, {Workers: 3, Memory: 1}, {Workers: 2, Memory: 100 << 10}} {
		o.Percent, o.Force = 10, true
		if _, err := Add(ctx, base, o); err != nil {
			t.Fatal(err)
		}
		sameFiles(t, snapshot(t, dir), want)
	}
}

func TestAddRefusesExistingParityWithoutForceAndForceReplaces(t *testing.T) {
	base, _, res := fixture(t)
	if _, err := Add(ctx, base, Options{Percent: 10}); !errors.Is(err, ErrExists) {
		t.Errorf("second Add: %v, want ErrExists", err)
	}
	// More parity, then less: the replaced set's extra volumes go away.
	big, err := Add(ctx, base, Options{Percent: 60, Force: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(big.Paths) <= len(res.Paths) {
		t.Fatalf("60%% wrote %d recovery volumes, 10%% wrote %d", len(big.Paths), len(res.Paths))
	}
	if _, err := Add(ctx, base, Options{Percent: 10, Force: true}); err != nil {
		t.Fatal(err)
	}
	if got, _ := Find(base); !slices.Equal(got, res.Paths) {
		t.Errorf("after replacing: %q, want %q", got, res.Paths)
	}
}

func TestSingleVolumeArchiveGetsAVolumeOfParity(t *testing.T) {
	dir := t.TempDir()
	base := makeSet(t, dir, 0, 300<<10, 9)
	res, err := Add(ctx, base, Options{Percent: 5})
	if err != nil {
		t.Fatal(err)
	}
	if !res.VolumeBound || res.ParityBytes < res.DataBytes {
		t.Errorf("one volume, 5%%: parity %d of %d bytes, volume-bound %v", res.ParityBytes, res.DataBytes, res.VolumeBound)
	}
	want := snapshot(t, dir)
	os.Remove(base + ".001")
	if _, err := Repair(ctx, base, Options{}); err != nil {
		t.Fatal(err)
	}
	sameFiles(t, snapshot(t, dir), want)
}

func TestParityOfAnotherArchiveIsRefused(t *testing.T) {
	base, _, _ := fixture(t)
	dir := filepath.Dir(base)
	other := t.TempDir()
	ob := makeSet(t, other, 256<<10, 6*(256<<10-48)-1000, 2)
	ents, _ := filepath.Glob(ob + ".0*")
	for _, e := range ents {
		b, _ := os.ReadFile(e)
		os.WriteFile(filepath.Join(dir, filepath.Base(e)), b, 0o644)
	}
	wantForeign(t, base)
}

// Recovery volumes that are all unusable are named in one line, each with
// what is wrong with it, in words (an empty file is "0 bytes").
func TestUnusableRecoveryVolumesAreNamedOnOneLine(t *testing.T) {
	base, _, res := fixture(t)
	if len(res.Paths) < 2 {
		t.Fatalf("want two recovery volumes or more, have %v", res.Paths)
	}
	for _, p := range res.Paths {
		os.Truncate(p, 0)
	}
	_, err := Check(ctx, base, Options{})
	if !errors.Is(err, ErrNoRecovery) || !errors.Is(err, ErrHeader) {
		t.Fatalf("check: %v, want ErrNoRecovery and ErrHeader", err)
	}
	msg := err.Error()
	if strings.Contains(msg, "\n") {
		t.Errorf("the error spans lines: %q", msg)
	}
	for _, p := range res.Paths {
		if !strings.Contains(msg, p+": bad recovery header: the file is 0 bytes, shorter than a header") {
			t.Errorf("the error does not say what is wrong with %s: %q", p, msg)
		}
	}
}

func TestCheckWithoutRecoveryVolumes(t *testing.T) {
	base := makeSet(t, t.TempDir(), 0, 10000, 1)
	if _, err := Check(ctx, base, Options{}); !errors.Is(err, ErrNoRecovery) {
		t.Errorf("check: %v, want ErrNoRecovery", err)
	}
}

func TestProgressReachesEachPhasesTotal(t *testing.T) {
	dir := t.TempDir()
	base := makeSet(t, dir, 256<<10, 3*(256<<10-48)-1000, 6)
	type last struct{ done, total int64 }
	seen := map[string]*last{}
	var order []string
	fn := func(phase string, done, total int64) {
		l := seen[phase]
		if l == nil {
			l = &last{}
			seen[phase] = l
			order = append(order, phase)
		}
		if done < l.done || total <= 0 || done > total {
			t.Errorf("%s: %d of %d after %d", phase, done, total, l.done)
		}
		l.done, l.total = done, total
	}
	if _, err := Add(ctx, base, Options{Percent: 10, Progress: fn}); err != nil {
		t.Fatal(err)
	}
	os.Remove(base + ".002")
	if _, err := Repair(ctx, base, Options{Progress: fn}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(order, []string{"parity", "checking", "rebuilding"}) {
		t.Errorf("phases %q", order)
	}
	for p, l := range seen {
		if l.done != l.total {
			t.Errorf("%s ended at %d of %d", p, l.done, l.total)
		}
	}
}

// asOtherArchive copies the volumes of base into dir as archive id's: the
// same bytes but for the headers' and the footer's id, so that parity made
// for it matches base's volumes everywhere else.
func asOtherArchive(t *testing.T, base, dir string, id format.ArchiveID) string {
	t.Helper()
	nums, err := format.ListVolumes(base)
	if err != nil {
		t.Fatal(err)
	}
	ob := filepath.Join(dir, filepath.Base(base))
	for i, n := range nums {
		b, err := os.ReadFile(format.VolumeName(base, n))
		if err != nil {
			t.Fatal(err)
		}
		h, err := format.ParseVolumeHeader(b)
		if err != nil {
			t.Fatal(err)
		}
		h.ID = id
		hb, _ := h.MarshalBinary()
		copy(b, hb)
		if i == len(nums)-1 {
			ft, err := format.ParseFooter(b[len(b)-format.FooterSize:])
			if err != nil {
				t.Fatal(err)
			}
			ft.ID = id
			fb, _ := ft.MarshalBinary()
			copy(b[len(b)-format.FooterSize:], fb)
		}
		if err := os.WriteFile(format.VolumeName(ob, n), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return ob
}

// An archive's volumes beside the parity of another archive whose bytes
// are nearly theirs (the same tree packed again) are not repaired into that
// archive: neither when one of the other archive's volumes is among them,
// nor when the only volume's header is damaged (its footer says which
// archive it is). Repair refuses and changes nothing.
func TestAnotherArchivesParityIsNotTakenForTheVolumesOwn(t *testing.T) {
	for _, tc := range []struct {
		name    string
		volSize int64
		stream  int64
		mix     func(t *testing.T, base, ob string) // make base's directory hold the mix
	}{
		{"a stray volume of the other archive", 256 << 10, 6*(256<<10-48) - 1000, func(t *testing.T, base, ob string) {
			b, _ := os.ReadFile(format.VolumeName(ob, 2))
			os.WriteFile(format.VolumeName(base, 2), b, 0o644)
		}},
		{"one volume with a damaged header", 0, 200000, func(t *testing.T, base, ob string) {
			flip(t, format.VolumeName(base, 1), 20, 1, rand.New(rand.NewPCG(3, 3)))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			base := makeSet(t, dir, tc.volSize, tc.stream, 1)
			ob := asOtherArchive(t, base, t.TempDir(), format.ArchiveID{9, 9, 9})
			if _, err := Add(ctx, ob+".001", Options{Percent: 20}); err != nil {
				t.Fatal(err)
			}
			recs, _ := filepath.Glob(ob + ".r*")
			for _, r := range recs {
				b, _ := os.ReadFile(r)
				os.WriteFile(filepath.Join(dir, filepath.Base(r)), b, 0o644)
			}
			tc.mix(t, base, ob)
			before := snapshot(t, dir)
			wantForeign(t, base)
			sameFiles(t, snapshot(t, dir), before)
		})
	}
}

// A FIFO named like a volume is not opened for reading (that would wait
// for a writer, forever): the volume counts as missing.
func TestAFIFONamedLikeAVolumeIsMissing(t *testing.T) {
	base, want, _ := fixture(t)
	p := format.VolumeName(base, 4)
	os.Remove(p)
	if err := syscall.Mkfifo(p, 0o644); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	var r *Report
	var err error
	go func() { r, err = Check(ctx, base, Options{}); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("check waits on the FIFO")
	}
	if err != nil {
		t.Fatal(err)
	}
	if v := r.Volumes[3]; v.State != Missing || !r.Repairable {
		t.Errorf("volume 4: %v, repairable %v; want missing and repairable", v.State, r.Repairable)
	}
	// Repairable as Check says: repair writes the volume in its place.
	if _, err := Repair(ctx, base, Options{}); err != nil {
		t.Fatal(err)
	}
	sameFiles(t, snapshot(t, filepath.Dir(base)), want)
}

// verifyShards reads what the file holds, not what a header claims: shards
// past a short file's end are bad without a buffer for them.
func TestVerifyShardsAllocatesOnlyForTheFilesBytes(t *testing.T) {
	p := filepath.Join(t.TempDir(), "short")
	os.WriteFile(p, make([]byte, 100), 0o644)
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	const S = 64 << 20
	bad := make([]bool, 4)
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	if err := verifyShards(ctx, f, 100, 0, 4*S, 0, 4, S, make([]uint64, 4), bad); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&m1)
	if d := m1.TotalAlloc - m0.TotalAlloc; d > 1<<20 || !bad[0] || !bad[3] {
		t.Errorf("allocated %d bytes for a 100-byte file; bad %v", d, bad)
	}
}

// A volume that cannot be opened for another reason than its absence (a
// symlink loop here; too many open files, permission elsewhere) is an
// error to report, not a missing volume to rebuild over.
func TestAVolumeThatCannotBeOpenedIsNotMissing(t *testing.T) {
	base, _, _ := fixture(t)
	p := format.VolumeName(base, 3)
	os.Remove(p)
	if err := os.Symlink(filepath.Base(p), p); err != nil {
		t.Fatal(err)
	}
	if _, err := Check(ctx, base, Options{}); !errors.Is(err, syscall.ELOOP) {
		t.Errorf("check: %v, want the open's error (ELOOP)", err)
	}
	if _, err := Repair(ctx, base, Options{}); !errors.Is(err, syscall.ELOOP) {
		t.Errorf("repair: %v, want the open's error (ELOOP)", err)
	}
	if fi, err := os.Lstat(p); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("the looping symlink was replaced: %v", err)
	}
}

// A rebuilt volume has the mode (and, for root, the owner) of the one it
// replaces, or of one beside it where it was missing: repair must not make
// a private archive's volumes readable by everyone (0666 less the umask),
// nor hand a backup user's volumes to root.
func TestRebuiltVolumesKeepTheSetsModeAndOwner(t *testing.T) {
	base, _, res := fixture(t)
	dir := filepath.Dir(base)
	owner := -1 // root: give the set away, and see repair keep it so
	if os.Getuid() == 0 {
		owner = 65534
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		p := filepath.Join(dir, e.Name())
		// 0604: no usual umask gives a new file that mode by chance.
		if err := os.Chmod(p, 0o604); err != nil {
			t.Fatal(err)
		}
		if owner >= 0 {
			if err := os.Chown(p, owner, owner); err != nil {
				t.Fatal(err)
			}
		}
	}
	rng := rand.New(rand.NewPCG(9, 9))
	for _, hurt := range []func(){
		func() { flip(t, format.VolumeName(base, 2), 5000, 1, rng) },
		func() { os.Remove(format.VolumeName(base, 4)) },
		func() { os.Remove(res.Paths[0]) },
	} {
		hurt()
		r, err := Repair(ctx, base, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if len(r.Rebuilt) != 1 {
			t.Fatalf("rebuilt %v, want 1 volume", r.Rebuilt)
		}
		p := r.Rebuilt[0]
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if m := st.Mode().Perm(); m != 0o604 {
			t.Errorf("%s: mode %#o after repair, want 0604 as the set's", p, m)
		}
		if sys := st.Sys().(*syscall.Stat_t); owner >= 0 && (int(sys.Uid) != owner || int(sys.Gid) != owner) {
			t.Errorf("%s: owner %d:%d after repair, want %d:%d as the set's", p, sys.Uid, sys.Gid, owner, owner)
		}
	}
}

// New recovery volumes take the data volumes' mode: the parity of a
// private archive is no more readable, and under umask 000 not writable by
// everyone.
func TestNewRecoveryVolumesAreNoMoreOpenThanDataVolumes(t *testing.T) {
	defer syscall.Umask(syscall.Umask(0))
	for _, mode := range []os.FileMode{0o600, 0o644} {
		base := makeSet(t, t.TempDir(), 256<<10, 2*(256<<10-48)-1000, 1)
		vols, _ := filepath.Glob(base + ".0*")
		for _, v := range vols {
			os.Chmod(v, mode)
		}
		res, err := Add(ctx, base+".001", Options{Percent: 10})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range res.Paths {
			if st, err := os.Stat(p); err != nil || st.Mode().Perm() != mode {
				t.Errorf("%s: %v, %v; want the data volumes' %v", p, st.Mode().Perm(), err, mode)
			}
		}
	}
}

// Describe says from the headers alone what Add wrote: the volumes (and
// which are gone), the geometry and the parity's size; nothing for an
// archive without recovery volumes; why, for ones it cannot use.
func TestDescribeSaysWhatAddWrote(t *testing.T) {
	base, _, res := fixture(t)
	s, err := Describe(base + ".002")
	if err != nil {
		t.Fatal(err)
	}
	want := &Summary{Volumes: res.Paths, ParityBytes: res.ParityBytes, ShardSize: res.ShardSize,
		Stripes: res.Stripes, DataShards: res.DataShards, Parity: res.Parity}
	if !reflect.DeepEqual(s, want) {
		t.Fatalf("Describe = %+v, want %+v", s, want)
	}
	if len(res.Paths) < 2 {
		t.Fatalf("the fixture has %d recovery volume(s); the test needs one removed and one left", len(res.Paths))
	}
	last := res.Paths[len(res.Paths)-1]
	if err := os.Remove(last); err != nil {
		t.Fatal(err)
	}
	if s, err := Describe(base); err != nil || !slices.Equal(s.Missing, []string{last}) {
		t.Errorf("with %s removed: %+v, %v", last, s, err)
	}
	for _, p := range res.Paths[:len(res.Paths)-1] {
		if err := os.WriteFile(p, make([]byte, 100), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if s, err := Describe(base); s != nil || !errors.Is(err, ErrNoRecovery) {
		t.Errorf("with no valid header: %+v, %v", s, err)
	}
	plain := makeSet(t, t.TempDir(), 256<<10, 100<<10, 2)
	if s, err := Describe(plain); s != nil || err != nil {
		t.Errorf("without recovery volumes: %+v, %v", s, err)
	}
}

// A recovery volume whose first header copy is damaged is read through its
// second, which the trailer finds; one cut short after its first copy (an
// interrupted copy) is read through that. Either way, with one recovery
// volume (a one-volume archive's), repair still works.
func TestARecoveryVolumeIsReadThroughEitherHeaderCopy(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, path string)
	}{
		{"first copy damaged", func(t *testing.T, path string) {
			flip(t, path, 12, 1, rand.New(rand.NewPCG(1, 1)))
		}},
		{"cut short after the first copy", func(t *testing.T, path string) {
			h, err := readAnyHeader(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(path, h.size()+100); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			base := makeSet(t, dir, 1<<20, 300<<10, 7) // one data volume
			res, err := Add(ctx, base, Options{Percent: 10})
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Paths) != 1 {
				t.Fatalf("%d recovery volumes, want 1", len(res.Paths))
			}
			want := snapshot(t, dir)
			tc.damage(t, res.Paths[0])
			if _, err := readAnyHeader(res.Paths[0]); err != nil {
				t.Fatalf("no header copy read: %v", err)
			}
			if _, err := Repair(ctx, base, Options{}); err != nil {
				t.Fatalf("repair: %v", err)
			}
			sameFiles(t, snapshot(t, dir), want)
		})
	}
}

// A crafted header within the spec's limits (here 64 shards of 2 MiB a
// stripe) from a recovery volume of a few KiB on disk (the rest sparse)
// must not make repair allocate what it asks for: a stripe larger than
// the memory bound (and than any Add writes) is refused with a clear
// error, before any stripe buffer is made.
func TestRepairRefusesStripesLargerThanItsMemoryBound(t *testing.T) {
	dir := t.TempDir()
	base := filepath.Join(dir, "a")
	const S, k, m = 2 << 20, 1, 63
	g, err := newGeometry([]int64{1}, S, 1, k, m, 1)
	if err != nil {
		t.Fatal(err)
	}
	zero := xxh3.Hash(make([]byte, S))
	h := &header{count: g.recoveryCount(), base: "a", g: g, dataSums: []uint64{zero}, paritySums: make([]uint64, g.parityShards())}
	h.paritySums[0] = zero
	b := h.encode(1)
	f, err := os.Create(Name(base, 1))
	if err != nil {
		t.Fatal(err)
	}
	f.Write(b)
	f.WriteAt(b, int64(len(b))+S) // S sparse zero bytes before it: parity shard 0
	f.WriteAt(trailer(int64(len(b))), 2*int64(len(b))+S)
	f.Close()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, err = Repair(ctx, base, Options{Workers: 1, Memory: 1 << 20}) // a.001 is missing
	runtime.ReadMemStats(&after)
	if !errors.Is(err, ErrHeader) {
		t.Errorf("repair from a crafted 128 MiB stripe: %v, want a refusal", err)
	}
	if n := after.TotalAlloc - before.TotalAlloc; n > 32<<20 {
		t.Errorf("repair allocated %d MiB for a recovery volume of %d KiB on disk", n>>20, (2*len(b)+16)>>10)
	}
}

// A volume that is there but cannot be opened (here a symlink loop) ends
// the check with its error, once the workers it started have stopped:
// none reads a closed file or reports progress after Check returned.
func TestCheckStopsItsWorkersBeforeItFails(t *testing.T) {
	base, _, _ := fixture(t)
	last := format.VolumeName(base, 6)
	os.Remove(last)
	if err := os.Symlink(last, last); err != nil { // ELOOP: not absent
		t.Fatal(err)
	}
	var returned, late atomic.Bool
	opt := Options{Workers: 1, Progress: func(string, int64, int64) {
		if returned.Load() {
			late.Store(true)
		}
		time.Sleep(2 * time.Millisecond)
	}}
	_, err := Check(ctx, base, opt)
	returned.Store(true)
	if err == nil {
		t.Fatal("check of a set with a symlink loop for a volume: no error")
	}
	time.Sleep(200 * time.Millisecond)
	if late.Load() {
		t.Errorf("progress reported after Check returned (%v)", err)
	}
}

// rename moves the files of dir named from[i] to to[i], all at once (a
// swap or a cycle of names).
func rename(t *testing.T, dir string, from, to []string) {
	t.Helper()
	for i := range from {
		if err := os.Rename(filepath.Join(dir, from[i]), filepath.Join(dir, from[i]+".moving")); err != nil {
			t.Fatal(err)
		}
	}
	for i := range from {
		if err := os.Rename(filepath.Join(dir, from[i]+".moving"), filepath.Join(dir, to[i])); err != nil {
			t.Fatal(err)
		}
	}
}

func TestVolumesUnderAnotherNameAreFoundAndPutBack(t *testing.T) {
	for _, tc := range []struct {
		name     string
		hurt     func(t *testing.T, dir string)
		state    map[string]State  // volumes not OK
		source   map[string]string // where they were found, when not their own name
		leftOver string            // a file that stays (a copy, not the set's)
	}{
		{"two data volumes swapped", func(t *testing.T, dir string) {
			rename(t, dir, []string{"a.002", "a.003"}, []string{"a.003", "a.002"})
		}, map[string]State{"a.002": Misnamed, "a.003": Misnamed}, map[string]string{"a.002": "a.003", "a.003": "a.002"}, ""},
		{"three data volumes in a cycle, the first among them", func(t *testing.T, dir string) {
			rename(t, dir, []string{"a.001", "a.002", "a.003"}, []string{"a.002", "a.003", "a.001"})
		}, map[string]State{"a.001": Misnamed, "a.002": Misnamed, "a.003": Misnamed},
			map[string]string{"a.001": "a.002", "a.002": "a.003", "a.003": "a.001"}, ""},
		{"a data volume renamed past the end of the set", func(t *testing.T, dir string) {
			rename(t, dir, []string{"a.004"}, []string{"a.009"})
		}, map[string]State{"a.004": Misnamed}, map[string]string{"a.004": "a.009"}, ""},
		{"two recovery volumes swapped", func(t *testing.T, dir string) {
			rename(t, dir, []string{"a.r01", "a.r02"}, []string{"a.r02", "a.r01"})
		}, map[string]State{"a.r01": Misnamed, "a.r02": Misnamed}, map[string]string{"a.r01": "a.r02", "a.r02": "a.r01"}, ""},
		{"two data volumes swapped, one of them damaged", func(t *testing.T, dir string) {
			rename(t, dir, []string{"a.002", "a.003"}, []string{"a.003", "a.002"})
			flip(t, filepath.Join(dir, "a.002"), 5000, 100, rand.New(rand.NewPCG(3, 3)))
		}, map[string]State{"a.002": Misnamed, "a.003": Damaged}, map[string]string{"a.002": "a.003", "a.003": "a.002"}, ""},
		// a.002 is read through the link, intact: a.003's new file must
		// not take its only copy away.
		{"a data volume read through a link to the file of another, that holds it", func(t *testing.T, dir string) {
			rename(t, dir, []string{"a.002"}, []string{"a.003"})
			if err := os.Symlink("a.003", filepath.Join(dir, "a.002")); err != nil {
				t.Fatal(err)
			}
		}, map[string]State{"a.003": Damaged}, map[string]string{}, ""},
		{"a copy of a volume under a name past the end, the volume in place", func(t *testing.T, dir string) {
			testtree.CopyFile(t, filepath.Join(dir, "a.004"), filepath.Join(dir, "a.009"))
		}, map[string]State{}, map[string]string{}, "a.009"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			base := makeSet(t, dir, 256<<10, 6*(256<<10-48)-1000, 1)
			if _, err := Add(ctx, base+".001", Options{Percent: 40}); err != nil {
				t.Fatal(err)
			}
			want := snapshot(t, dir)
			tc.hurt(t, dir)
			rep, err := Check(ctx, base, Options{})
			if err != nil {
				t.Fatal(err)
			}
			for _, v := range rep.Volumes {
				name := filepath.Base(v.Path)
				if v.State != tc.state[name] {
					t.Errorf("%s: state %v, want %v", name, v.State, tc.state[name])
				}
				src := tc.source[name]
				if src == "" {
					src = name
				}
				if got := filepath.Base(v.Source); got != src {
					t.Errorf("%s: found as %s, want %s", name, got, src)
				}
			}
			if !rep.Repairable {
				t.Fatalf("not repairable")
			}
			if _, err := Repair(ctx, base, Options{}); err != nil {
				t.Fatal(err)
			}
			if tc.leftOver != "" {
				want[tc.leftOver] = want["a.004"]
			}
			sameFiles(t, snapshot(t, dir), want)
		})
	}
}

// The volumes of an older, larger archive left past the end of a new one
// (a copy without delete), however many, do not make the new one's parity
// look foreign: the archive whole from volume 1 on is the set, as for the
// reader.
func TestAnOlderArchivesVolumesPastTheSetLeaveItsParityUsable(t *testing.T) {
	dir, newDir := t.TempDir(), t.TempDir()
	makeSet(t, dir, 64<<10, 8*(64<<10-48)-500, 1)
	base := makeSet(t, newDir, 64<<10, 2*(64<<10-48)-500, 2)
	if _, err := Add(ctx, base+".001", Options{Percent: 50}); err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(newDir)
	for _, e := range ents {
		testtree.CopyFile(t, filepath.Join(newDir, e.Name()), filepath.Join(dir, e.Name()))
	}
	rep, err := Check(ctx, filepath.Join(dir, "a"), Options{})
	if err != nil {
		t.Fatalf("check: %v", err)
	}
	if !rep.Intact() || len(rep.Volumes) < 3 {
		t.Errorf("intact %v, %d volumes", rep.Intact(), len(rep.Volumes))
	}
}

// Finding which file holds each volume reads no recovery header in full
// where every file holds its own: a header copy is 8 bytes a shard (of a
// large archive, hundreds of MiB), and Check already reads both copies of
// each once.
func TestFindingTheVolumesSourcesReadsNoWholeHeaderOfAVolumeInPlace(t *testing.T) {
	for _, tc := range []struct {
		name string
		hurt func(t *testing.T, dir string)
	}{
		{"every volume in place", func(*testing.T, string) {}},
		{"a recovery volume's header damaged", func(t *testing.T, dir string) {
			flip(t, filepath.Join(dir, "a.r01"), 200, 1, rand.New(rand.NewPCG(4, 4)))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			base := makeSet(t, dir, 1<<20, 12*(1<<20-48)-1000, 1)
			if _, err := Add(ctx, base+".001", Options{Percent: 30}); err != nil {
				t.Fatal(err)
			}
			tc.hurt(t, dir)
			found, _ := Find(base)
			df := readDataFiles(base)
			h, err := referenceHeader(base, found, df)
			if err != nil {
				t.Fatal(err)
			}
			var data, rec []string
			for i := range h.g.sizes {
				data = append(data, format.VolumeName(base, uint32(i+1)))
			}
			for v := range h.count {
				rec = append(rec, Name(base, v+1))
			}
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			_, recSrc := sources(base, h, df, data, rec)
			runtime.ReadMemStats(&after)
			if !slices.Equal(recSrc, rec) {
				t.Errorf("sources %q, want %q", recSrc, rec)
			}
			if got := after.TotalAlloc - before.TotalAlloc; got > uint64(h.size()) {
				t.Errorf("%d recovery volumes of %d-byte headers: %d bytes allocated, want less than one header", h.count, h.size(), got)
			}
		})
	}
}

// Add protects the archive whole from volume 1 on and leaves out, naming
// them, the files numbered past its last volume: an older, larger
// archive's volumes left by a copy without delete, or another archive's
// volume and a file that happens to be called NAME.007. As the reader and
// Check do, it does not take them for volumes of the set; and the parity
// it writes rebuilds the set's volumes with them still there, a lost one
// too, though the older archive's outnumber what is left of the set.
func TestAddLeavesOutTheVolumesPastTheSet(t *testing.T) {
	const vol = 64 << 10
	for _, tc := range []struct {
		name   string
		volume int64 // the new archive's volume size, 0 for one volume
		stream int64
		others func(t *testing.T, dir string) // what lies beside it first
		strays []string
		lose   string // the volume lost (removed) or, for a one-volume set, damaged
	}{
		{"an older archive's volumes past a new one's", vol, 2*(vol-48) - 500,
			func(t *testing.T, dir string) { makeSet(t, dir, vol, 8*(vol-48)-500, 1) },
			[]string{"a.003", "a.004", "a.005", "a.006", "a.007", "a.008"}, "a.002"},
		{"another archive's volume 2 and a stray file beside a one-volume archive", 0, 5000,
			func(t *testing.T, dir string) {
				makeSet(t, dir, vol, 3*(vol-48)-500, 1)
				os.Remove(filepath.Join(dir, "a.001"))
				os.Remove(filepath.Join(dir, "a.003"))
				if err := os.WriteFile(filepath.Join(dir, "a.007"), []byte("not a volume"), 0o644); err != nil {
					t.Fatal(err)
				}
			},
			[]string{"a.002", "a.007"}, "a.001"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, newDir := t.TempDir(), t.TempDir()
			tc.others(t, dir)
			makeSet(t, newDir, tc.volume, tc.stream, 2)
			ents, _ := os.ReadDir(newDir)
			for _, e := range ents {
				testtree.CopyFile(t, filepath.Join(newDir, e.Name()), filepath.Join(dir, e.Name()))
			}
			base := filepath.Join(dir, "a")
			res, err := Add(ctx, base+".001", Options{Percent: 50})
			if err != nil {
				t.Fatal(err)
			}
			var strays []string
			for _, p := range res.Strays {
				strays = append(strays, filepath.Base(p))
			}
			if !slices.Equal(strays, tc.strays) {
				t.Errorf("strays %v, want %v", strays, tc.strays)
			}
			if want := int64(tc.stream + int64(len(ents))*format.VolumeHeaderSize); res.DataBytes != want {
				t.Errorf("protected %d bytes, want the new archive's %d", res.DataBytes, want)
			}
			lost := filepath.Join(dir, tc.lose)
			want, err := os.ReadFile(lost)
			if err != nil {
				t.Fatal(err)
			}
			if len(ents) > 1 {
				os.Remove(lost)
			} else {
				flip(t, lost, 200, 1, rand.New(rand.NewPCG(4, 4)))
			}
			if _, err := Repair(ctx, base, Options{}); err != nil {
				t.Fatalf("repair: %v", err)
			}
			if got, _ := os.ReadFile(lost); !bytes.Equal(got, want) {
				t.Errorf("%s rebuilt wrong", tc.lose)
			}
		})
	}
}

// Where none of the volumes a parity covers has a readable header or
// footer, all the volumes decide whose it is: parity of a one-volume
// archive, its volume lost, is not taken for a larger archive whose first
// volume is lost too, whose others are there; repair would write the
// small archive's volume into the larger one.
func TestParityCoveringNoReadableVolumeIsJudgedByAllOfThem(t *testing.T) {
	dir, small := t.TempDir(), t.TempDir()
	makeSet(t, dir, 64<<10, 3*(64<<10-48)-500, 1)
	os.Remove(filepath.Join(dir, "a.001"))
	sb := makeSet(t, small, 0, 5000, 2)
	if _, err := Add(ctx, sb+".001", Options{Percent: 50}); err != nil {
		t.Fatal(err)
	}
	recs, _ := filepath.Glob(sb + ".r*")
	for _, r := range recs {
		testtree.CopyFile(t, r, filepath.Join(dir, filepath.Base(r)))
	}
	before := snapshot(t, dir)
	base := filepath.Join(dir, "a")
	wantForeign(t, base)
	sameFiles(t, snapshot(t, dir), before)
}

// A newer archive copied over an older, larger one that has parity (a
// copy without delete; a create --force killed after its renames), then
// one of the newer one's volumes lost: the older archive's volumes past
// the newer one's end outnumber what is left of it, but its parity is
// not taken for the set's, and repair writes nothing (it rebuilt the
// newer archive's intact volumes into the older one).
func TestParityOfAnOlderArchiveIsNotTakenWhenTheNewerOneLosesAVolume(t *testing.T) {
	const vol = 64 << 10
	for _, lost := range []string{"a.002", "a.001"} {
		t.Run(lost+" lost", func(t *testing.T) {
			dir, newDir := t.TempDir(), t.TempDir()
			old := makeSet(t, dir, vol, 20*(vol-48)-500, 1)
			if _, err := Add(ctx, old+".001", Options{Percent: 30}); err != nil {
				t.Fatal(err)
			}
			makeSet(t, newDir, vol, 3*(vol-48)-500, 2)
			ents, _ := os.ReadDir(newDir)
			for _, e := range ents {
				testtree.CopyFile(t, filepath.Join(newDir, e.Name()), filepath.Join(dir, e.Name()))
			}
			os.Remove(filepath.Join(dir, lost))
			want := snapshot(t, dir)
			wantForeign(t, old)
			sameFiles(t, snapshot(t, dir), want)
		})
	}
}
