package recovery

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"sync/atomic"

	"arc/format"

	"github.com/zeebo/xxh3"
	"golang.org/x/sync/errgroup"
)

// ErrNoRecovery is returned when an archive has no (usable) recovery volumes.
var ErrNoRecovery = errors.New("no usable recovery volumes")

// ErrForeign is returned when the recovery volumes were made for another
// archive of the same name.
var ErrForeign = errors.New("recovery volumes belong to another archive")

// ErrInTheWay: what stands where Repair would write a volume cannot be
// replaced (a directory; another user's file in a sticky directory).
var ErrInTheWay = errors.New("in the way of a volume to rebuild")

// State is what Check found for one volume.
type State int

const (
	OK State = iota
	Damaged
	Missing
	// Misnamed: intact, but in another file of the set (Source): the
	// names of volumes were swapped or changed. Repair writes it back
	// under its own name.
	Misnamed
)

func (s State) String() string {
	switch s {
	case OK:
		return "ok"
	case Damaged:
		return "damaged"
	case Misnamed:
		return "misnamed"
	default:
		return "missing"
	}
}

// Range is a byte range [Off, End) of a volume file.
type Range struct{ Off, End int64 }

// VolumeReport is Check's finding for one data or recovery volume.
type VolumeReport struct {
	Path     string
	Recovery bool // a recovery volume (NAME.rNN), else a data volume
	State    State
	// Source is the file the volume was read from: Path, or another
	// file of the set whose header says it is this volume, where Path is
	// missing or says it is another one (see sources).
	Source   string
	Size     int64 // Source's size; -1 when missing
	WantSize int64 // its size when the parity was made
	// Damaged lists the byte ranges that differ from what was written (by
	// shard: a damaged byte marks its whole shard), ranges missing from a
	// short file, and bytes beyond WantSize.
	Damaged []Range
	// Repairable is true when Repair can rebuild the volume (always true
	// for an intact one).
	Repairable bool
}

// DamagedBytes is the total length of the damaged ranges.
func (v *VolumeReport) DamagedBytes() int64 {
	var n int64
	for _, r := range v.Damaged {
		n += r.End - r.Off
	}
	return n
}

// Report is Check's finding for the whole set.
type Report struct {
	Base       string
	Volumes    []VolumeReport // data volumes 1 … N, then recovery volumes 1 … R
	Repairable bool           // every damaged or missing volume can be rebuilt
	// LostStripes counts stripes with more damaged shards than parity
	// shards: their data cannot be rebuilt.
	LostStripes int
	ShardSize   int
	Stripes     int
	DataShards  int // per stripe
	Parity      int // parity shards per stripe

	s *scan
}

// Intact reports whether every data and recovery volume is as written.
func (r *Report) Intact() bool {
	for _, v := range r.Volumes {
		if v.State != OK {
			return false
		}
	}
	return true
}

// DataIntact reports whether every data volume is as written.
func (r *Report) DataIntact() bool {
	for _, v := range r.Volumes {
		if !v.Recovery && v.State != OK {
			return false
		}
	}
	return true
}

// scan is what Check learnt, kept for Repair.
type scan struct {
	h         *header
	hs        int64
	data, rec []string // the volumes' names
	// The files read for them (VolumeReport.Source), index by index.
	dataSrc, recSrc []string
	badData         []bool
	badParity       []bool
	cnt             []int // damaged shards per stripe
}

// Check reads every data and recovery volume of archive (any of its volume
// names, or NAME), compares each shard with the checksum the recovery
// volumes record, and says per volume whether it is intact, damaged (which
// byte ranges) or missing, and whether the parity present can rebuild it.
func Check(ctx context.Context, archive string, opt Options) (*Report, error) {
	return check(ctx, archive, opt, newProgress(opt.Progress))
}

func check(ctx context.Context, archive string, opt Options, pr *progress) (*Report, error) {
	base := Base(archive)
	found, err := Find(base)
	if err != nil {
		return nil, err
	}
	if len(found) == 0 {
		return nil, fmt.Errorf("%s: %w (no %s)", base, ErrNoRecovery, Name(base, 1))
	}
	df := readDataFiles(base)
	h, err := referenceHeader(base, found, df)
	if err != nil {
		return nil, err
	}
	g := h.g
	s := &scan{h: h, hs: h.size(), badData: make([]bool, g.dataShards()), badParity: make([]bool, g.parityShards()),
		cnt: make([]int, g.stripes)}
	for i := range g.sizes {
		s.data = append(s.data, format.VolumeName(base, uint32(i+1)))
	}
	for v := range h.count {
		s.rec = append(s.rec, Name(base, v+1))
	}
	s.dataSrc, s.recSrc = sources(base, h, df, s.data, s.rec)
	r := &Report{Base: base, ShardSize: g.shardSize, Stripes: g.stripes, DataShards: g.k, Parity: g.m, s: s,
		Volumes: make([]VolumeReport, len(s.data)+len(s.rec))}

	pr.start("checking", (g.dataShards()+g.parityShards())*int64(g.shardSize))
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	eg, ctx := errgroup.WithContext(ctx)
	eg.SetLimit(opt.workers())
	// fail ends the check on a volume that is there but cannot be opened:
	// the workers already started stop first, before the files they read
	// are closed (and before the caller's Progress is done with).
	fail := func(err error) (*Report, error) {
		cancel()
		eg.Wait()
		return nil, err
	}
	// Shards per read: 64, or fewer where they are large, so that a
	// worker holds at most 64 MiB whatever the shard size (up to 64 MiB).
	chunk := max(1, min(64, (64<<20)/g.shardSize))
	for i, p := range s.data {
		vr := &r.Volumes[i]
		*vr = VolumeReport{Path: p, Source: s.dataSrc[i], WantSize: g.sizes[i]}
		f, size, err := openSized(vr.Source)
		vr.Size = size
		if err != nil && !absent(err) {
			return fail(err)
		}
		if err != nil {
			vr.State = Missing
			setAll(s.badData[g.first[i]:g.first[i+1]])
			pr.add((g.first[i+1] - g.first[i]) * int64(g.shardSize))
			continue
		}
		n := int(g.first[i+1] - g.first[i])
		done := closeAfter(f, (n+chunk-1)/chunk)
		for l0 := 0; l0 < n; l0 += chunk {
			l1 := min(n, l0+chunk)
			eg.Go(func() error {
				defer done()
				defer pr.add(int64(l1-l0) * int64(g.shardSize))
				return verifyShards(ctx, f, size, 0, g.sizes[i], l0, l1, g.shardSize,
					h.dataSums[g.first[i]:], s.badData[g.first[i]:])
			})
		}
	}
	for v, p := range s.rec {
		vr := &r.Volumes[len(s.data)+v]
		*vr = VolumeReport{Path: p, Source: s.recSrc[v], Recovery: true, WantSize: h.recoverySize(v)}
		first := int64(v) * int64(g.perVol)
		n := g.paritiesIn(v)
		f, size, err := openSized(vr.Source)
		vr.Size = size
		if err != nil && !absent(err) {
			return fail(err)
		}
		if err != nil {
			vr.State = Missing
			setAll(s.badParity[first : first+int64(n)])
			pr.add(int64(n) * int64(g.shardSize))
			continue
		}
		done := closeAfter(f, (n+chunk-1)/chunk)
		for l0 := 0; l0 < n; l0 += chunk {
			l1 := min(n, l0+chunk)
			eg.Go(func() error {
				defer done()
				defer pr.add(int64(l1-l0) * int64(g.shardSize))
				return verifyShards(ctx, f, size, s.hs, s.hs+int64(n)*int64(g.shardSize), l0, l1, g.shardSize,
					h.paritySums[first:], s.badParity[first:])
			})
		}
	}
	if err := eg.Wait(); err != nil {
		return nil, err
	}
	for i, b := range s.badData {
		if b {
			s.cnt[g.stripeOf(int64(i))]++
		}
	}
	for p, b := range s.badParity {
		if b {
			s.cnt[p%g.stripes]++
		}
	}
	for _, c := range s.cnt {
		if c > g.m {
			r.LostStripes++
		}
	}
	r.Repairable = r.LostStripes == 0
	S := int64(g.shardSize)
	for i := range s.data {
		vr := &r.Volumes[i]
		vr.Repairable = true
		lo := g.first[i]
		vr.Damaged = shardRanges(s.badData[lo:g.first[i+1]], 0, S, vr.WantSize)
		for x, b := range s.badData[lo:g.first[i+1]] {
			if b && s.cnt[g.stripeOf(lo+int64(x))] > g.m {
				vr.Repairable = false
			}
		}
		finish(vr)
	}
	for v := range s.rec {
		vr := &r.Volumes[len(s.data)+v]
		vr.Repairable = true
		first := int64(v) * int64(g.perVol)
		n := int64(g.paritiesIn(v))
		vr.Damaged = shardRanges(s.badParity[first:first+n], s.hs, S, s.hs+n*S)
		for x, b := range s.badParity[first : first+n] {
			if b && s.cnt[(first+int64(x))%int64(g.stripes)] > g.m {
				vr.Repairable = false
			}
		}
		if vr.Size >= 0 {
			hd, err := headerDamage(vr.Source, h, v)
			if err != nil {
				return nil, err
			}
			vr.Damaged = mergeRanges(append(hd, vr.Damaged...))
		}
		finish(vr)
	}
	return r, nil
}

// finish sets a volume's state from its size and damaged ranges.
func finish(vr *VolumeReport) {
	switch {
	case vr.Size < 0:
		vr.State = Missing
		vr.Damaged = []Range{{0, vr.WantSize}}
	default:
		if vr.Size > vr.WantSize {
			vr.Damaged = mergeRanges(append(vr.Damaged, Range{vr.WantSize, vr.Size}))
		}
		switch {
		case len(vr.Damaged) > 0:
			vr.State = Damaged
		case vr.Source != vr.Path:
			vr.State = Misnamed
		}
	}
}

func setAll(b []bool) {
	for i := range b {
		b[i] = true
	}
}

// absent reports whether an open failed because the volume is not there
// (or is not a regular file): it is then missing, and repair may write it.
// Other failures (too many open files, permission) are the caller's to
// report: the volume may well be intact.
func absent(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, format.ErrNotRegular)
}

// closeAfter returns what each of jobs readers of f calls once done: the
// last one closes f (at once where there are none). The check holds open
// only the volumes being read, a few at a time, not every volume of the
// archive at once, which a limit of open files would refuse.
func closeAfter(f *os.File, jobs int) (done func()) {
	if jobs == 0 {
		f.Close()
		return func() {}
	}
	var left atomic.Int64
	left.Store(int64(jobs))
	return func() {
		if left.Add(-1) == 0 {
			f.Close()
		}
	}
}

// openSized opens path for reading; size is -1 when it cannot be opened.
func openSized(path string) (*os.File, int64, error) {
	f, err := format.OpenFile(path)
	if err != nil {
		return nil, -1, err
	}
	st, err := f.Stat() // OpenFile refused anything but a regular file
	if err != nil {
		f.Close()
		return nil, -1, err
	}
	return f, st.Size(), nil
}

// verifyShards checks shards [l0, l1) of a run of shards that starts at
// file offset start and whose bytes end at end (the last shard may be
// short: its checksum is of the shard padded with zeros). A shard that the
// file does not hold in full, or whose checksum differs, is marked bad.
func verifyShards(ctx context.Context, f *os.File, size, start, end int64, l0, l1, shard int, sums []uint64, bad []bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	S := int64(shard)
	off := start + int64(l0)*S
	// Only the shards the file holds in full are read: the buffer is sized
	// by the bytes there, not by what a (perhaps crafted) header claims.
	in := l0
	for in < l1 && start+int64(in)*S+min(S, end-start-int64(in)*S) <= size {
		in++
	}
	for l := in; l < l1; l++ {
		bad[l] = true
	}
	if in == l0 {
		return nil
	}
	buf := make([]byte, int64(in-l0)*S)
	want := min(int64(in-l0)*S, end-off)
	got, err := f.ReadAt(buf[:want], off)
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("read %s at %d: %w", f.Name(), off, err)
	}
	clear(buf[got:])
	for l := l0; l < in; l++ {
		if xxh3.Hash(buf[int64(l-l0)*S:][:S]) != sums[l] {
			bad[l] = true
		}
	}
	return nil
}

// shardRanges turns bad shard flags into merged byte ranges, clipped to end.
func shardRanges(bad []bool, start, S, end int64) []Range {
	var out []Range
	for i, b := range bad {
		if !b {
			continue
		}
		r := Range{start + int64(i)*S, min(start+int64(i+1)*S, end)}
		if n := len(out); n > 0 && out[n-1].End == r.Off {
			out[n-1].End = r.End
		} else {
			out = append(out, r)
		}
	}
	return out
}

func mergeRanges(rs []Range) []Range {
	if len(rs) == 0 {
		return nil
	}
	for i := 1; i < len(rs); i++ { // insertion sort: a handful of ranges
		for j := i; j > 0 && rs[j].Off < rs[j-1].Off; j-- {
			rs[j], rs[j-1] = rs[j-1], rs[j]
		}
	}
	out := rs[:1]
	for _, r := range rs[1:] {
		last := &out[len(out)-1]
		if r.Off <= last.End {
			last.End = max(last.End, r.End)
		} else {
			out = append(out, r)
		}
	}
	return out
}

// headerDamage compares recovery volume v's header copies and trailer with
// what they must be, byte for byte.
func headerDamage(path string, h *header, v int) ([]Range, error) {
	f, _, err := openSized(path)
	if err != nil {
		return []Range{{0, h.recoverySize(v)}}, nil
	}
	defer f.Close()
	want := h.encode(v + 1)
	hs := int64(len(want))
	second := hs + int64(h.g.paritiesIn(v))*int64(h.g.shardSize)
	var out []Range
	got := make([]byte, hs)
	for _, at := range []int64{0, second} {
		n, err := f.ReadAt(got, at)
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("read %s: %w", path, err)
		}
		if int64(n) < hs || !bytes.Equal(got, want) {
			out = append(out, Range{at, at + hs})
		}
	}
	tr := make([]byte, trailerSize)
	n, err := f.ReadAt(tr, second+hs)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if n < trailerSize || !bytes.Equal(tr, trailer(hs)) {
		out = append(out, Range{second + hs, second + hs + trailerSize})
	}
	return out, nil
}

// referenceHeader picks the header the set is checked against: the first
// valid copy, in recovery volume order, of the archive the data volumes
// say they are. That archive is the one most of their headers name (the
// last volume's footer speaks for it where its header does not), or any
// of those named most often: a stray volume of another archive among them
// must not make the parity volumes of the others look foreign, nor let
// parity volumes of that other archive be taken, or repair would rewrite
// the volumes into the other archive; but where the first volume's
// archive ends at a volume that says so (format.SetEnd: though volumes
// before it are lost), it is that one, as for the reader. With
// no data volume header or footer readable, the first valid copy.
//
// The votes are counted first among the volumes a parity covers (1 … its
// count): an older, larger archive's volumes left past the end of a newer
// one (a copy without delete) must not outvote the newer one's volumes
// where one of them is lost and the set is no longer whole. Only where no
// volume it covers has a readable header or footer do all the volumes
// vote, so that parity of a small archive is not taken for a larger one
// whose first volumes are lost.
func referenceHeader(base string, found []string, df dataFiles) (*header, error) {
	// votes counts, for each archive, the data volumes numbered up to
	// last (0: all) whose headers name it, and the footer of the last of
	// them where its header does not.
	votes := func(last uint32) map[format.ArchiveID]int {
		v := map[format.ArchiveID]int{}
		top := uint32(0)
		for _, n := range df.nums {
			if last > 0 && n > last {
				break
			}
			top = n
			if vh, ok := df.headers[n]; ok {
				v[vh.ID]++
			}
		}
		if _, ok := df.headers[top]; top > 0 && !ok {
			if ft, err := df.footer(top); err == nil {
				v[ft.ID]++
			}
		}
		return v
	}
	// named reports whether archive id is one the volumes name most often,
	// and if not, one that they do.
	named := func(v map[format.ArchiveID]int, id format.ArchiveID) (bool, format.ArchiveID) {
		var top format.ArchiveID
		most := 0
		for x, n := range v {
			if n > most {
				top, most = x, n
			}
		}
		return v[id] == most, top
	}
	// From the first volume with a header at its own number, as the
	// reader starts from the first volume there: with volume 1 lost,
	// the older archive's volumes past the set's end outvoted it again.
	var whole *format.ArchiveID
	for _, n := range df.nums {
		if h, ok := df.headers[n]; ok && h.Number == n {
			if _, ok := format.SetEnd(df.headers, n, df.footer); ok {
				whole = &h.ID
			}
			break
		}
	}
	all := votes(0)
	var first *header
	var other format.ArchiveID
	var errs []error
	for _, p := range found {
		h, err := readAnyHeader(p)
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, err)
			}
			continue
		}
		var ok bool
		var top format.ArchiveID
		switch v := votes(uint32(len(h.g.sizes))); {
		case whole != nil:
			ok, top = h.id == *whole, *whole
		case len(v) > 0:
			ok, top = named(v, h.id)
		default:
			ok, top = named(all, h.id)
		}
		if ok {
			return h, nil
		}
		if first == nil {
			first, other = h, top
		}
	}
	if first != nil {
		return nil, fmt.Errorf("%s: %w (parity for archive %s, the volumes are archive %s)", base, ErrForeign, first.id, other)
	}
	// One line: errors.Join would put a newline between the files, and
	// a message is one line (it reads as a literal \n once escaped).
	if len(errs) == 0 { // every one gone since it was listed
		return nil, fmt.Errorf("%s: %w", base, ErrNoRecovery)
	}
	why := errs[0]
	for _, e := range errs[1:] {
		why = fmt.Errorf("%w; %w", why, e)
	}
	return nil, fmt.Errorf("%s: %w: %w", base, ErrNoRecovery, why)
}

// sources finds the file that holds each data volume (data: their names,
// NAME.001 …) and each recovery volume (rec: NAME.r01 …) of the set h
// describes. A volume is read from its own name unless that file is
// missing or its header, valid, says it is another volume of this
// archive: then from a file named as a volume of the set (any number,
// the lowest first) whose valid header says it is this one. So volumes
// whose names were swapped, or one renamed past the end of the set, are
// checked as what they are, and Repair writes them back under their own
// names, rather than rebuilding them from parity as if lost. A damaged
// header is no header: its file stays its own name's source, and its
// shards say what is wrong with it.
func sources(base string, h *header, df dataFiles, data, rec []string) (dataSrc, recSrc []string) {
	// A file's volume number, by its valid header: 0 for a header of
	// another archive; no entry where no valid header was read.
	said := map[string]int{}
	mine := func(p string, id format.ArchiveID, n int) {
		if id != h.id {
			n = 0
		}
		said[p] = n
	}
	for n, vh := range df.headers {
		mine(format.VolumeName(base, n), vh.ID, int(vh.Number))
	}
	recs, _ := Find(base)
	for _, p := range recs {
		// A file whose first copy says it is its own name's volume is
		// its own source, valid or not (a damaged header leaves it so):
		// a copy is read in full (8 bytes a shard) only where the file
		// may hold another volume.
		if _, n, _ := format.ParseRecoveryName(p); ownRecoveryVolume(p, h.id, n) {
			said[p] = n
		} else if rh, err := readAnyHeader(p); err == nil {
			mine(p, rh.id, rh.number)
		}
	}
	return pickSources(data, df.nums, said, func(n uint32) string { return format.VolumeName(base, n) }),
		pickSources(rec, recoveryNumbers(recs), said, func(n uint32) string { return Name(base, int(n)) })
}

// pickSources gives names[i] (volume i+1) its source: itself, or the
// first of the files numbered nums (named by name) that said holds volume
// i+1, where names[i] is missing or holds another volume (of this
// archive or another).
func pickSources(names []string, nums []uint32, said map[string]int, name func(uint32) string) []string {
	src := slices.Clone(names)
	for i, p := range names {
		own, ok := said[p]
		if own == i+1 || !ok && !absentPath(p) {
			continue // its own, or a file whose header does not say
		}
		for _, n := range nums {
			if q := name(n); q != p && said[q] == i+1 {
				src[i] = q
				break
			}
		}
	}
	return src
}

// ownRecoveryVolume reports whether the first header copy of the file at
// path starts as recovery volume n of the archive id does: its fixed part
// alone, which says the number, is read.
func ownRecoveryVolume(path string, id format.ArchiveID, n int) bool {
	f, err := format.OpenFile(path)
	if err != nil {
		return false
	}
	defer f.Close()
	var b [headerFixed]byte
	if _, err := f.ReadAt(b[:], 0); err != nil {
		return false
	}
	return [8]byte(b[:8]) == Magic && [16]byte(b[40:56]) == id && int64(binary.LittleEndian.Uint32(b[12:])) == int64(n)
}

// recoveryNumbers gives the numbers of the recovery volumes paths.
func recoveryNumbers(paths []string) []uint32 {
	var out []uint32
	for _, p := range paths {
		if _, n, ok := format.ParseRecoveryName(p); ok {
			out = append(out, uint32(n))
		}
	}
	return out
}

// dataFiles is what the files named as data volumes of an archive say,
// read once for referenceHeader and sources.
type dataFiles struct {
	base    string
	nums    []uint32                       // the numbers of the files NAME.NNN there, in order
	headers map[uint32]format.VolumeHeader // their valid headers
	sizes   map[uint32]int64               // the sizes of those that open
	listErr error                          // why the files could not be listed (nums is then empty)
}

func readDataFiles(base string) dataFiles {
	df := dataFiles{base: base, headers: map[uint32]format.VolumeHeader{}, sizes: map[uint32]int64{}}
	df.nums, df.listErr = format.ListVolumes(base)
	b := make([]byte, format.VolumeHeaderSize)
	for _, n := range df.nums {
		f, err := format.OpenFile(format.VolumeName(base, n))
		if err != nil {
			continue
		}
		if st, err := f.Stat(); err == nil {
			df.sizes[n] = st.Size()
		}
		if _, err := io.ReadFull(f, b); err == nil {
			if vh, err := format.ParseVolumeHeader(b); err == nil {
				df.headers[n] = vh
			}
		}
		f.Close()
	}
	return df
}

// footer reads the footer at the end of data volume file n.
func (df dataFiles) footer(n uint32) (format.Footer, error) {
	f, err := format.OpenFile(format.VolumeName(df.base, n))
	if err != nil {
		return format.Footer{}, err
	}
	defer f.Close()
	return format.ReadFooter(f, df.sizes[n])
}

// absentPath reports whether path is missing (or not a regular file), as
// absent does for an open's error.
func absentPath(path string) bool {
	f, err := format.OpenFile(path)
	if err == nil {
		f.Close()
	}
	return err != nil && absent(err)
}
