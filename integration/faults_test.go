package integration

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"arc/codec"
	"arc/format"
	"arc/internal/testtree"
)

// The fault-injection suite damages one volume of a multi-volume archive
// at a time (deletes it, truncates it, flips bytes in it) and checks what
// the tools make of it against what the damage must affect, computed here
// from the pristine archive's layout and index, not from the tools.
//
// Knobs (environment):
//
//	ARC_FAULT_TRIALS  random trials after the fixed ones (default 0: CI runs
//	                  the fixed set only; bench/faults.sh runs ≥ 200)
//	ARC_FAULT_SEED    seed of the random trials (default 1)
//	ARC_FAULT_CODEC   --codec of the archive (default: create's default)
//	ARC_FAULT_MOUNTS  0: no mounts; >0: two fixed trials and that many random
//	                  ones also read every file through arcmount (default 2);
//	                  -1: every trial
//
// Each run ends with one line "FAULTS trials=… detected=… …" (t.Log).

// faultFile is one regular file of the archive.
type faultFile struct {
	paths []string // every path of the inode, in walk order
	size  int64
	data  [][2]uint64 // unique-stream ranges [lo, hi) of its non-hole extents
}

// faultArchive is the pristine archive the trials start from, with what
// the test knows of its layout.
type faultArchive struct {
	src, base string
	vols      []string
	sizes     []int64
	layout    format.Layout
	footer    format.Footer
	idx       *format.Index
	files     []faultFile
}

// newFaultArchive packs a generated tree into small volumes and reads the
// pristine archive's footer and index with the format package alone.
func newFaultArchive(t *testing.T, extra ...string) *faultArchive {
	t.Helper()
	src := genTree(t, testtree.Options{Seed: 7, Files: 30, MaxFileSize: 64 << 10, LargeSize: 1 << 20, SparseSize: 1 << 20, Depth: 6, Dups: 3})
	args := append([]string{"--volume-size", "128K", "--frame-size", "128K", "--block-size", "64K", "--progress", "never"}, extra...)
	if c := os.Getenv("ARC_FAULT_CODEC"); c != "" {
		args = append(args, "--codec", c)
	}
	fa := &faultArchive{src: src, base: pack(t, args, src)}
	fa.vols = volumes(t, fa.base)
	if len(fa.vols) < 6 {
		t.Fatalf("want at least 6 volumes, have %d", len(fa.vols))
	}
	var stream []byte
	for i, v := range fa.vols {
		b, err := os.ReadFile(v)
		if err != nil {
			t.Fatal(err)
		}
		fa.sizes = append(fa.sizes, int64(len(b)))
		h, err := format.ParseVolumeHeader(b)
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			fa.layout = format.Layout{VolumeSize: int64(h.VolumeSize)}
		}
		stream = append(stream, b[format.VolumeHeaderSize:]...)
	}
	var err error
	if fa.footer, err = format.ParseFooter(stream); err != nil {
		t.Fatal(err)
	}
	f := fa.footer
	raw, err := codec.DecompressIndex(stream[f.IndexOffset:f.IndexOffset+f.IndexSize], f.IndexRawSize)
	if err != nil {
		t.Fatal(err)
	}
	if fa.idx, err = format.DecodeIndex(raw); err != nil {
		t.Fatal(err)
	}
	x := fa.idx
	byIno := map[uint32]int{}
	x.Walk(func(p []byte, d uint32) error {
		ino := x.Dirents.Inode[d]
		if x.Inodes.Mode[ino]&format.ModeType != format.ModeReg {
			return nil
		}
		i, ok := byIno[ino]
		if !ok {
			i = len(fa.files)
			byIno[ino] = i
			ff := faultFile{size: int64(x.Inodes.Size[ino])}
			s, e := x.FileExtents(ino)
			for j := s; j < e; j++ {
				if off := x.Extents.Off[j]; off != format.Hole {
					ff.data = append(ff.data, [2]uint64{off, off + x.Extents.Len[j]})
				}
			}
			fa.files = append(fa.files, ff)
		}
		fa.files[i].paths = append(fa.files[i].paths, string(p))
		return nil
	})
	return fa
}

// fault is one kind of damage to one volume.
type fault struct {
	kind  string // "delete", "truncate", "flip"
	vol   int    // 0-based
	at    int64  // truncate: new length
	flips []int64
	masks []byte
}

func (f fault) String() string {
	switch f.kind {
	case "truncate":
		return fmt.Sprintf("truncate volume %d to %d bytes", f.vol+1, f.at)
	case "flip":
		return fmt.Sprintf("flip volume %d at %v", f.vol+1, f.flips)
	}
	return fmt.Sprintf("%s volume %d", f.kind, f.vol+1)
}

// expectation is what a fault must do, derived from the pristine layout.
type expectation struct {
	lost       bool            // footer or index hit: nothing can be read
	padding    bool            // the zero padding before the footer hit
	header     bool            // the volume's header hit (its data is still used)
	missing    bool            // the volume is gone
	truncated  bool            // the volume is short
	blocks     map[uint32]bool // damaged blocks
	affected   map[int]bool    // faultArchive.files indexes
	lostBytes  int64           // content bytes of affected files
	streamHits [][2]int64      // damaged stream ranges
}

func (fa *faultArchive) expect(f fault) expectation {
	e := expectation{blocks: map[uint32]bool{}, affected: map[int]bool{}}
	p := fa.layout.Payload()
	vstart := int64(f.vol) * p // stream offset of the volume's first payload byte
	vend := vstart + fa.sizes[f.vol] - format.VolumeHeaderSize
	switch f.kind {
	case "delete":
		e.missing = true
		e.streamHits = append(e.streamHits, [2]int64{vstart, vend})
	case "truncate":
		e.truncated = true
		e.header = f.at < format.VolumeHeaderSize
		e.streamHits = append(e.streamHits, [2]int64{vstart + max(f.at-format.VolumeHeaderSize, 0), vend})
	case "flip":
		for _, o := range f.flips {
			if o < format.VolumeHeaderSize {
				e.header = true
			} else {
				s := vstart + o - format.VolumeHeaderSize
				e.streamHits = append(e.streamHits, [2]int64{s, s + 1})
			}
		}
	}
	ft := fa.footer
	idxLo, idxHi := int64(ft.IndexOffset), int64(ft.IndexOffset+ft.IndexSize)
	footLo := int64(ft.StreamSize) - format.FooterSize
	for _, h := range e.streamHits {
		if h[0] < idxHi && h[1] > idxLo || h[1] > footLo {
			e.lost = true
		}
		if h[0] < footLo && h[1] > idxHi {
			e.padding = true
		}
	}
	if f.vol == len(fa.vols)-1 && (f.kind == "delete" || f.kind == "truncate") {
		e.lost = true // the footer is the last volume's end
	}
	x := fa.idx
	var bad [][2]uint64 // raw ranges of damaged blocks
	for b := 0; b < x.Blocks.Count(); b++ {
		lo, hi := int64(x.BlockStoredOff[b]), int64(x.BlockStoredOff[b+1])
		for _, h := range e.streamHits {
			if h[0] < hi && h[1] > lo {
				e.blocks[uint32(b)] = true
				bad = append(bad, [2]uint64{x.BlockRawOff[b], x.BlockRawOff[b+1]})
				break
			}
		}
	}
	for i, ff := range fa.files {
		hit := e.lost && ff.size > 0
		for _, r := range ff.data {
			for _, b := range bad {
				if r[0] < b[1] && r[1] > b[0] {
					hit = true
				}
			}
		}
		if hit {
			e.affected[i] = true
			e.lostBytes += ff.size
		}
	}
	return e
}

// apply copies the pristine volumes to dir and damages the copy.
func (fa *faultArchive) apply(t *testing.T, dir string, f fault) string {
	t.Helper()
	base := filepath.Join(dir, "archive")
	for _, v := range fa.vols {
		testtree.CopyFile(t, v, filepath.Join(dir, filepath.Base(v)))
	}
	vol := filepath.Join(dir, filepath.Base(fa.vols[f.vol]))
	switch f.kind {
	case "delete":
		if err := os.Remove(vol); err != nil {
			t.Fatal(err)
		}
	case "truncate":
		if err := os.Truncate(vol, f.at); err != nil {
			t.Fatal(err)
		}
	case "flip":
		b, err := os.ReadFile(vol)
		if err != nil {
			t.Fatal(err)
		}
		for i, o := range f.flips {
			b[o] ^= f.masks[i]
		}
		if err := os.WriteFile(vol, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return base
}

// fixedFaults are the cases CI runs: every kind of damage once, at the
// places that behave differently (first, middle and last volume; header,
// block data, index, footer).
func (fa *faultArchive) fixedFaults() []fault {
	n := len(fa.vols)
	last := n - 1
	mid := n / 2
	ft := fa.footer
	iv, ifo := fa.layout.Locate(int64(ft.IndexOffset + ft.IndexSize/2))
	return []fault{
		{kind: "delete", vol: mid},
		{kind: "delete", vol: last},
		{kind: "truncate", vol: mid, at: fa.sizes[mid] / 2},
		{kind: "truncate", vol: 0, at: 10},
		{kind: "truncate", vol: last, at: fa.sizes[last] - 1},
		{kind: "flip", vol: 0, flips: []int64{format.VolumeHeaderSize + 100}, masks: []byte{0x01}},
		{kind: "flip", vol: mid, flips: []int64{3, fa.sizes[mid] - 7}, masks: []byte{0x80, 0xff}},
		{kind: "flip", vol: int(iv) - 1, flips: []int64{ifo}, masks: []byte{0x10}},
		{kind: "flip", vol: last, flips: []int64{fa.sizes[last] - 1}, masks: []byte{0x04}},
	}
}

// randomFault damages a random volume in a random way.
func (fa *faultArchive) randomFault(r *rand.Rand) fault {
	v := r.IntN(len(fa.vols))
	size := fa.sizes[v]
	switch r.IntN(3) {
	case 0:
		return fault{kind: "delete", vol: v}
	case 1:
		points := []int64{0, r.Int64N(format.VolumeHeaderSize), format.VolumeHeaderSize,
			format.VolumeHeaderSize + r.Int64N(size-format.VolumeHeaderSize), size - 1}
		return fault{kind: "truncate", vol: v, at: points[r.IntN(len(points))]}
	}
	f := fault{kind: "flip", vol: v}
	seen := map[int64]bool{}
	for k := 1 + r.IntN(8); len(f.flips) < k; {
		var o int64
		if r.IntN(8) == 0 { // the header is small: aim at it now and then
			o = r.Int64N(format.VolumeHeaderSize)
		} else {
			o = r.Int64N(size)
		}
		if !seen[o] {
			seen[o] = true
			f.flips = append(f.flips, o)
			f.masks = append(f.masks, byte(1+r.IntN(255)))
		}
	}
	return f
}

func envInt(t *testing.T, name string, def int) int {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	v, err := strconv.Atoi(s)
	if err != nil {
		t.Fatalf("%s=%q: %v", name, s, err)
	}
	return v
}

// faultStats are the run's totals.
type faultStats struct {
	trials, detected, local, mounted, lostArchives int
	damagedBytes                                   int64 // content bytes of affected files (no recovery)
}

// faultTotals adds up the stats of trials that run in parallel.
type faultTotals struct {
	mu sync.Mutex
	faultStats
}

func (tt *faultTotals) add(s *faultStats) {
	tt.mu.Lock()
	defer tt.mu.Unlock()
	tt.trials += s.trials
	tt.detected += s.detected
	tt.local += s.local
	tt.mounted += s.mounted
	tt.lostArchives += s.lostArchives
	tt.damagedBytes += s.damagedBytes
}

func TestFaultInjection(t *testing.T) {
	fa := newFaultArchive(t)
	faults := fa.fixedFaults()
	seed := uint64(envInt(t, "ARC_FAULT_SEED", 1))
	r := rand.New(rand.NewPCG(seed, seed^0xa5a5))
	for i := envInt(t, "ARC_FAULT_TRIALS", 0); i > 0; i-- {
		faults = append(faults, fa.randomFault(r))
	}
	mounts := envInt(t, "ARC_FAULT_MOUNTS", 2)
	nfixed := len(fa.fixedFaults())
	var st faultTotals
	// Trials are independent (each damages its own copy): they run in
	// parallel, GOMAXPROCS at a time, and report when all are done.
	t.Run("trials", func(t *testing.T) {
		for i, f := range faults {
			// The fixed set mounts its two most telling cases (a missing
			// middle volume, flipped bytes in block data); random trials
			// mount while the budget lasts.
			mount := mounts < 0 || (i < nfixed && (i == 0 || i == 6) && mounts > 0) || (i >= nfixed && i-nfixed < mounts)
			t.Run(fmt.Sprintf("%03d %s", i, f), func(t *testing.T) {
				t.Parallel()
				fa.trial(t, f, mount, &st)
			})
		}
	})
	t.Logf("FAULTS trials=%d detected=%d local_ok=%d mounted=%d archives_lost=%d affected_bytes=%d seed=%d",
		st.trials, st.detected, st.local, st.mounted, st.lostArchives, st.damagedBytes, seed)
}

// trial damages a copy of the archive and checks verify, extract and
// (with mount) arcmount against the expectation.
func (fa *faultArchive) trial(t *testing.T, f fault, mount bool, total *faultTotals) {
	var st faultStats
	defer total.add(&st)
	dir := t.TempDir()
	base := fa.apply(t, dir, f)
	e := fa.expect(f)
	st.trials++
	volName := format.VolumeName(base, uint32(f.vol+1))
	// Tools are pointed at volume 1, as users do; at the last one when
	// volume 1 is the one deleted.
	first := base + ".001"
	if f.kind == "delete" && f.vol == 0 {
		first = format.VolumeName(base, uint32(len(fa.vols)))
	}

	// verify: exit 1, the volume or blocks named, the affected files named.
	r := arcpack(t, "verify", "--json", "--progress", "never", first)
	if r.code != 1 {
		t.Fatalf("verify after %s: exit %d, want 1\n%v", f, r.code, r)
	}
	detected := true
	if e.lost {
		st.lostArchives++
		if !strings.Contains(r.stderr, "arcpack: verify "+first+": damaged: ") {
			t.Errorf("verify does not say the archive is damaged: %v", r)
			detected = false
		} else if !strings.Contains(r.stderr, volName) && !strings.Contains(r.stderr, "index") {
			t.Errorf("verify names neither the damaged volume %s nor the index: %v", volName, r)
			detected = false
		}
	} else {
		var rep struct {
			IndexOK        bool     `json:"index_ok"`
			IndexError     string   `json:"index_error"`
			MissingVolumes []string `json:"missing_volumes"`
			DamagedVolumes []string `json:"damaged_volumes"`
			DamagedBlocks  []struct {
				Block  uint32 `json:"block"`
				Volume string `json:"volume"`
			} `json:"damaged_blocks"`
			AffectedFiles []string `json:"affected_files"`
		}
		if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
			t.Fatalf("verify --json: %v\n%v", err, r)
		}
		named := func(list []string, prefix string) bool {
			for _, s := range list {
				if strings.HasPrefix(s, prefix) {
					return true
				}
			}
			return false
		}
		switch {
		case e.missing && !named(rep.MissingVolumes, volName):
			t.Errorf("verify does not name the missing volume %s: %v", volName, rep.MissingVolumes)
			detected = false
		case e.truncated && !named(rep.DamagedVolumes, volName+": truncated"):
			t.Errorf("verify does not name the truncated volume %s: %v", volName, rep.DamagedVolumes)
			detected = false
		case f.kind == "flip" && e.header && !named(rep.DamagedVolumes, volName+": damaged header"):
			t.Errorf("verify does not name the damaged header of %s: %v", volName, rep.DamagedVolumes)
			detected = false
		case e.padding && rep.IndexOK:
			t.Errorf("verify does not report the damaged padding: %s", r.stdout)
			detected = false
		}
		var got []uint32
		for _, b := range rep.DamagedBlocks {
			got = append(got, b.Block)
			// Named by the volume that is gone or short, else by the one
			// the block starts in.
			want := volName
			if f.kind == "flip" && int(b.Block) < fa.idx.Blocks.Count() {
				v, _ := fa.layout.Locate(int64(fa.idx.BlockStoredOff[b.Block]))
				want = format.VolumeName(base, v)
			}
			if b.Volume != want {
				t.Errorf("verify names block %d in volume %s, want %s", b.Block, b.Volume, want)
				detected = false
			}
		}
		if want := sortedKeys(e.blocks); !equalU32(got, want) {
			t.Errorf("verify names damaged blocks %v, want %v", got, want)
			detected = false
		}
		var wantFiles []string
		for i := range e.affected {
			for _, p := range fa.files[i].paths {
				wantFiles = append(wantFiles, jsonString(p))
			}
		}
		sort.Strings(wantFiles)
		gotFiles := append([]string{}, rep.AffectedFiles...)
		sort.Strings(gotFiles)
		if strings.Join(gotFiles, "\x00") != strings.Join(wantFiles, "\x00") {
			t.Errorf("verify names affected files\n%q\nwant\n%q", gotFiles, wantFiles)
			detected = false
		}
	}
	if detected {
		st.detected++
	}
	st.damagedBytes += e.lostBytes

	// extract: every unaffected file byte-identical, every affected one named.
	dst := filepath.Join(dir, "dst")
	x := arcpack(t, "extract", first, "-o", dst, "--progress", "never")
	if e.lost {
		if x.code == 0 {
			t.Errorf("extract of an archive whose index is lost exited 0")
		}
		if mount && arcmountBin != "" {
			// The mount must refuse too, in one line, and mount nothing.
			mnt := filepath.Join(dir, "mnt")
			os.Mkdir(mnt, 0o755)
			m := runBin(t, runOpts{}, arcmountBin, first, mnt)
			if isMounted(t, mnt) {
				exec.Command("fusermount3", "-u", mnt).Run()
				t.Errorf("arcmount mounted an archive whose index is lost")
			}
			if lines := strings.Split(strings.TrimRight(m.stderr, "\n"), "\n"); m.code == 0 || len(lines) != 1 || !strings.HasPrefix(lines[0], "arcmount: ") {
				t.Errorf("arcmount of an archive whose index is lost: want a non-zero exit and one line; got %v", m)
			}
		}
		return
	}
	wantCode := 0
	if len(e.affected) > 0 {
		wantCode = 1
	}
	if x.code != wantCode {
		t.Errorf("extract: exit %d, want %d\n%v", x.code, wantCode, x)
	}
	local := !t.Failed()
	for i, ff := range fa.files {
		if e.affected[i] {
			if !namedInWarnings(x.stderr, ff.paths) {
				t.Errorf("extract does not name affected file %q", ff.paths[0])
				local = false
			}
			continue
		}
		for _, p := range ff.paths {
			if !sameContent(t, filepath.Join(fa.src, p), filepath.Join(dst, p)) {
				t.Errorf("unaffected file %q did not extract byte-identical", p)
				local = false
			}
		}
	}
	if local {
		st.local++
	}
	if !mount || first != base+".001" { // mountArchive mounts volume 1
		return
	}

	// arcmount: unaffected files read byte-identical, affected ones fail with EIO.
	st.mounted++
	mnt := mountArchive(t, base)
	for i, ff := range fa.files {
		for _, p := range ff.paths {
			got, err := os.ReadFile(filepath.Join(mnt, p))
			if e.affected[i] {
				if !errors.Is(err, syscall.EIO) {
					t.Errorf("reading affected file %q through the mount: %v, want EIO", p, err)
				}
				continue
			}
			want, _ := os.ReadFile(filepath.Join(fa.src, p))
			if err != nil || !bytes.Equal(got, want) {
				t.Errorf("unaffected file %q through the mount: %v (same bytes: %v)", p, err, bytes.Equal(got, want))
			}
		}
	}
}

// namedInWarnings reports whether one of paths is named by an
// "arcpack: warning: PATH: ..." line (names as oneLine prints them).
func namedInWarnings(stderr string, paths []string) bool {
	for _, p := range paths {
		esc := strings.NewReplacer("\n", `\n`, "\r", `\r`).Replace(p)
		if strings.Contains(stderr, "arcpack: warning: "+esc+": ") {
			return true
		}
	}
	return false
}

// jsonString is s as it comes back through encoding/json (invalid UTF-8
// bytes become U+FFFD), to compare with paths read from JSON.
func jsonString(s string) string {
	b, _ := json.Marshal(s)
	var out string
	json.Unmarshal(b, &out)
	return out
}

func sameContent(t *testing.T, a, b string) bool {
	t.Helper()
	fa, err := os.Open(a)
	if err != nil {
		t.Fatal(err)
	}
	defer fa.Close()
	fb, err := os.Open(b)
	if err != nil {
		return false
	}
	defer fb.Close()
	ba, _ := io.ReadAll(fa)
	bb, err := io.ReadAll(fb)
	return err == nil && bytes.Equal(ba, bb)
}

func sortedKeys(m map[uint32]bool) []uint32 {
	var out []uint32
	for k := range m {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

func equalU32(a, b []uint32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// recoveryFiles lists the recovery volumes (NAME.rNN) next to base.
func recoveryFiles(t *testing.T, base string) []string {
	t.Helper()
	m, err := filepath.Glob(base + ".r[0-9]*")
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// keepFiles reads the files at paths now; the function it returns writes
// them back as they were (after create --force replaced them, say).
func keepFiles(t *testing.T, paths []string) (putBack func()) {
	t.Helper()
	kept := map[string][]byte{}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		kept[p] = b
	}
	return func() {
		t.Helper()
		for p, b := range kept {
			if err := os.WriteFile(p, b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestFaultRepair runs the same faults on an archive made with
// --recovery 10%: repair must give back volumes byte-identical to the
// pristine ones for every fault within capacity (any one volume), and
// refuse cleanly, changing nothing, beyond it. Knobs as TestFaultInjection.
func TestFaultRepair(t *testing.T) {
	fa := newFaultArchive(t, "--recovery", "10%")
	rec := recoveryFiles(t, fa.base)
	if len(rec) == 0 {
		t.Fatalf("create --recovery 10%% wrote no %s.rNN file", fa.base)
	}
	// CI repairs four of the fixed faults: a missing middle volume, the
	// missing last one (index and footer), a header cut short, flipped bytes.
	fixed := fa.fixedFaults()
	faults := []fault{fixed[0], fixed[1], fixed[3], fixed[6]}
	if os.Getenv("ARC_FAULT_TRIALS") != "" {
		faults = fixed
	}
	seed := uint64(envInt(t, "ARC_FAULT_SEED", 1))
	r := rand.New(rand.NewPCG(seed, seed^0x5a5a))
	for i := envInt(t, "ARC_FAULT_TRIALS", 0); i > 0; i-- {
		faults = append(faults, fa.randomFault(r))
	}
	var mu sync.Mutex
	var trials, repaired int
	var lost int64
	t.Run("trials", func(t *testing.T) {
		for i, f := range faults {
			t.Run(fmt.Sprintf("%03d %s", i, f), func(t *testing.T) {
				t.Parallel()
				mu.Lock()
				trials++
				mu.Unlock()
				dir := t.TempDir()
				base := fa.apply(t, dir, f)
				for _, p := range rec {
					testtree.CopyFile(t, p, filepath.Join(dir, filepath.Base(p)))
				}
				e := fa.expect(f)
				first := base + ".001"
				if f.kind == "delete" && f.vol == 0 {
					first = format.VolumeName(base, uint32(len(fa.vols)))
				}
				res := arcpack(t, "repair", first)
				ok := res.code == 0
				for i, v := range fa.vols {
					if !sameContent(t, v, format.VolumeName(base, uint32(i+1))) {
						t.Errorf("after repair volume %d differs from the pristine one", i+1)
						ok = false
					}
				}
				if res.code != 0 {
					t.Errorf("repair after %s: %v", f, res)
				}
				if ok {
					if v := arcpack(t, "verify", "--progress", "never", first); v.code != 0 {
						t.Errorf("verify after repair: %v", v)
						ok = false
					}
				}
				mu.Lock()
				if ok {
					repaired++
				} else {
					lost += e.lostBytes
				}
				mu.Unlock()
				if ents, _ := os.ReadDir(dir); len(ents) != len(fa.vols)+len(rec) {
					t.Errorf("repair left %v (want only the volumes and recovery volumes)", names(ents))
				}
			})
		}
	})
	t.Logf("REPAIR trials=%d repaired=%d lost_bytes=%d recovery_volumes=%d seed=%d", trials, repaired, lost, len(rec), seed)

	// Damaged recovery volumes are rebuilt too (the data is intact).
	t.Run("recovery volume damaged", func(t *testing.T) {
		dir := t.TempDir()
		base := fa.apply(t, dir, fault{kind: "none"})
		for _, p := range rec {
			testtree.CopyFile(t, p, filepath.Join(dir, filepath.Base(p)))
		}
		damaged := filepath.Join(dir, filepath.Base(rec[0]))
		b, _ := os.ReadFile(damaged)
		b[len(b)/2] ^= 0x20
		os.WriteFile(damaged, b, 0o644)
		if v := arcpack(t, "verify", "--progress", "never", base+".001"); v.code != 1 {
			t.Errorf("verify with a damaged recovery volume: exit %d, want 1\n%v", v.code, v)
		}
		if res := arcpack(t, "repair", base+".001"); res.code != 0 {
			t.Fatalf("repair of a recovery volume: %v", res)
		}
		for _, p := range append(append([]string{}, fa.vols...), rec...) {
			if !sameContent(t, p, filepath.Join(dir, filepath.Base(p))) {
				t.Errorf("after repair %s differs from the pristine one", filepath.Base(p))
			}
		}
	})

	// Beyond capacity: half of the volumes gone. Repair refuses with one
	// line, exit non-zero, and changes nothing.
	t.Run("beyond capacity", func(t *testing.T) {
		dir := t.TempDir()
		base := fa.apply(t, dir, fault{kind: "none"})
		for _, p := range rec {
			testtree.CopyFile(t, p, filepath.Join(dir, filepath.Base(p)))
		}
		for i := 1; i < len(fa.vols); i += 2 {
			os.Remove(format.VolumeName(base, uint32(i+1)))
		}
		before := snapshotDir(t, dir)
		res := arcpack(t, "repair", base+".001")
		if res.code == 0 {
			t.Fatalf("repair beyond capacity exited 0: %v", res)
		}
		lines := strings.Split(strings.TrimRight(res.stderr, "\n"), "\n")
		if last := lines[len(lines)-1]; !strings.HasPrefix(last, "arcpack: ") || !strings.Contains(last, base) {
			t.Errorf("repair beyond capacity does not end with one line naming the archive: %v", res)
		}
		if after := snapshotDir(t, dir); !equalMaps(before, after) {
			t.Errorf("repair beyond capacity changed the directory: %v -> %v", keys(before), keys(after))
		}
	})
}

// snapshotDir maps each file name in dir to its content.
func snapshotDir(t *testing.T, dir string) map[string]string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, e := range ents {
		b, _ := os.ReadFile(filepath.Join(dir, e.Name()))
		m[e.Name()] = string(b)
	}
	return m
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
