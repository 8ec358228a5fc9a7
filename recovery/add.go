package recovery

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"

	"arc/format"

	"github.com/klauspost/reedsolomon"
	"github.com/zeebo/xxh3"
	"golang.org/x/sync/errgroup"
)

// ErrExists is returned by Add when the archive already has recovery
// volumes and Options.Force is not set.
var ErrExists = errors.New("archive already has recovery volumes")

// Options tune Add, Check and Repair.
type Options struct {
	// Percent is the parity wanted, as a share of the data volumes' bytes
	// (Add only; 0.01 to 100, used in steps of 0.01). The parity is raised
	// above it where needed to rebuild the largest data volume.
	Percent float64
	// Force lets Add replace existing recovery volumes.
	Force bool
	// Workers is how many goroutines hash and encode; 0 = GOMAXPROCS.
	Workers int
	// Memory bounds the stripe buffers Add holds at once, in bytes (0 =
	// 256 MiB; at least one stripe, up to 16 MiB, per worker).
	Memory int64
	// Progress, when set, is called (never concurrently) as work is done:
	// phase "parity" (Add), "checking" (Check, Repair), "rebuilding"
	// (Repair), with the bytes done and the phase's total.
	Progress func(phase string, done, total int64)
}

func (o Options) workers() int {
	if o.Workers > 0 {
		return o.Workers
	}
	return runtime.GOMAXPROCS(0)
}

func (o Options) memory() int64 {
	if o.Memory > 0 {
		return o.Memory
	}
	return 256 << 20
}

// Result describes the recovery volumes Add wrote.
type Result struct {
	Paths       []string
	DataBytes   int64 // bytes of the data volumes protected
	ParityBytes int64 // parity shards' bytes (headers excluded)
	FileBytes   int64 // the recovery volumes' size, headers included
	ShardSize   int
	Stripes     int
	DataShards  int // per stripe (k)
	Parity      int // parity shards per stripe (m)
	// VolumeBound is true when the parity was raised above Percent so
	// that the largest data volume can be rebuilt.
	VolumeBound bool
	// Strays are the files named like volumes past the archive's last
	// one, left out: not of the archive, not protected.
	Strays []string
}

// volumeSet is the data volumes of a finished archive.
type volumeSet struct {
	base  string
	paths []string
	sizes []int64
	id    format.ArchiveID
}

// openSet finds and sanity-checks the data volumes of archive: volumes
// 1 … N all present, one archive id, a footer that agrees with them. It
// does not read the data: parity protects whatever bytes are there.
//
// Files numbered past the set's last volume (an older, larger archive's,
// left by a copy that does not delete) are not of it: where volume 1's
// archive is whole up to a volume whose footer ends it (format.WholeSet,
// as the reader decides), the set ends there and they are left out, named
// in strays.
func openSet(archive string) (s *volumeSet, strays []string, err error) {
	base := Base(archive)
	df := readDataFiles(base)
	if df.listErr != nil {
		return nil, nil, fmt.Errorf("%s: %w", base, df.listErr)
	}
	nums := df.nums
	if len(nums) == 0 {
		return nil, nil, fmt.Errorf("%s: no volumes (%s)", base, format.VolumeName(base, 1))
	}
	// WholeSet's volumes are 1 … end, every one present: nums[:end].
	if end, ok := format.WholeSet(df.headers, df.sizes, df.footer); ok && len(nums) > int(end) {
		for _, n := range nums[end:] {
			strays = append(strays, format.VolumeName(base, n))
		}
		nums = nums[:end]
	}
	s, err = checkSet(base, nums)
	return s, strays, err
}

// readVolumeHeader reads and parses the header of the volume at p, and
// gives the file's size.
func readVolumeHeader(p string) (format.VolumeHeader, int64, error) {
	f, err := format.OpenFile(p)
	if err != nil {
		return format.VolumeHeader{}, 0, err
	}
	defer f.Close()
	hb := make([]byte, format.VolumeHeaderSize)
	if _, err := io.ReadFull(f, hb); err != nil {
		return format.VolumeHeader{}, 0, fmt.Errorf("%s: %w: %v", p, format.ErrTruncated, err)
	}
	st, err := f.Stat()
	if err != nil {
		return format.VolumeHeader{}, 0, err
	}
	vh, err := format.ParseVolumeHeader(hb)
	if err != nil {
		return format.VolumeHeader{}, 0, fmt.Errorf("%s: %w", p, err)
	}
	return vh, st.Size(), nil
}

// checkSet checks that the volumes nums of base are one archive's 1 … N.
func checkSet(base string, nums []uint32) (*volumeSet, error) {
	s := &volumeSet{base: base}
	var stream int64
	for i, n := range nums {
		p := format.VolumeName(base, uint32(i+1))
		if n != uint32(i+1) {
			return nil, fmt.Errorf("%s: missing (the set has %s)", p, format.VolumeName(base, n))
		}
		vh, size, err := readVolumeHeader(p)
		if err != nil {
			return nil, err
		}
		if i == 0 {
			s.id = vh.ID
		} else if vh.ID != s.id {
			return nil, fmt.Errorf("%s: belongs to archive %s, not %s", p, vh.ID, s.id)
		}
		if vh.Number != uint32(i+1) {
			return nil, fmt.Errorf("%s: %w: header says volume %d", p, format.ErrCorrupt, vh.Number)
		}
		s.paths = append(s.paths, p)
		s.sizes = append(s.sizes, size)
		stream += size - format.VolumeHeaderSize
	}
	last := s.paths[len(s.paths)-1]
	f, err := format.OpenFile(last)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	ft, err := format.ReadFooter(f, s.sizes[len(s.sizes)-1])
	if err != nil {
		return nil, fmt.Errorf("%s: footer: %w", last, err)
	}
	if ft.ID != s.id || int(ft.VolumeCount) != len(s.paths) || ft.StreamSize != uint64(stream) {
		return nil, fmt.Errorf("%s: %w: footer (archive %s, %d volumes, %d stream bytes) does not match the %d volumes present (%d stream bytes)",
			last, format.ErrCorrupt, ft.ID, ft.VolumeCount, ft.StreamSize, len(s.paths), stream)
	}
	return s, nil
}

// CheckExisting is Add's refusal of an archive (any of its names) that
// already has recovery volumes, without force, for callers that want it
// before slower work: nil when Add would go on.
func CheckExisting(archive string, force bool) error {
	old, err := Find(archive)
	if err != nil {
		return err
	}
	return refuseExisting(Base(archive), old, force)
}

func refuseExisting(base string, old []string, force bool) error {
	if len(old) > 0 && !force {
		return fmt.Errorf("%s: %w (%d, e.g. %s); replace them with --force", base, ErrExists, len(old), old[0])
	}
	for _, p := range old {
		if err := format.Replaceable(p); err != nil {
			return fmt.Errorf("%w: they cannot be replaced", err)
		}
	}
	return nil
}

// Add computes recovery volumes for the finished archive (any of its
// volume names, or NAME) and writes them beside it as NAME.r01, …: each
// written under a temporary name and renamed into place once complete.
// Existing recovery volumes are replaced only with opt.Force.
func Add(ctx context.Context, archive string, opt Options) (*Result, error) {
	set, strays, err := openSet(archive)
	if err != nil {
		return nil, err
	}
	old, err := Find(set.base)
	if err != nil {
		return nil, err
	}
	if err := refuseExisting(set.base, old, opt.Force); err != nil {
		return nil, err
	}
	pct := int(math.Round(opt.Percent * percentPrecision))
	g, err := plan(set.sizes, pct, headerFixed+int64(len(filepath.Base(set.base))))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", set.base, err)
	}
	h := &header{count: g.recoveryCount(), id: set.id, base: filepath.Base(set.base), g: g,
		dataSums: make([]uint64, g.dataShards()), paritySums: make([]uint64, g.parityShards())}
	hs := h.size()

	tmp := &tempFiles{}
	defer tmp.remove()
	for v := range h.count {
		// The data volumes' mode and owner: parity of a private
		// archive must not be readable by more users.
		if _, err := tmp.create(Name(set.base, v+1), h.recoverySize(v), set.paths[0]); err != nil {
			return nil, err
		}
	}
	// Sized after the recovery volumes being written took theirs.
	data := newVolumeFiles(set.paths, heldBudget(1))
	defer data.Close()
	pr := newProgress(opt.Progress)
	pr.start("parity", g.dataShards()*int64(g.shardSize))
	if err := encode(ctx, g, data, tmp.files, hs, h, opt, pr); err != nil {
		return nil, err
	}
	for v, f := range tmp.files {
		if err := writeHeaders(f, h, v); err != nil {
			return nil, err
		}
	}
	// Durable, as the archive's own volumes are.
	if err := tmp.commit(set.base); err != nil {
		return nil, err
	}
	// Recovery volumes beyond the new count belong to the replaced parity.
	for _, p := range old {
		if _, n, _ := format.ParseRecoveryName(p); n > h.count {
			if err := os.Remove(p); err != nil {
				return nil, fmt.Errorf("remove replaced %s: %w", p, err)
			}
		}
	}
	r := &Result{Paths: tmp.final, ShardSize: g.shardSize, Stripes: g.stripes, DataShards: g.k, Parity: g.m, Strays: strays,
		ParityBytes: g.parityShards() * int64(g.shardSize)}
	for _, s := range set.sizes {
		r.DataBytes += s
	}
	for v := range h.count {
		r.FileBytes += h.recoverySize(v)
	}
	r.VolumeBound = g.m > int((int64(g.k)*int64(pct)+100*percentPrecision-1)/(100*percentPrecision)) && g.m > 1
	return r, nil
}

// writeHeaders writes recovery volume v's two header copies and trailer.
func writeHeaders(f *os.File, h *header, v int) error {
	b := h.encode(v + 1)
	hs := int64(len(b))
	if _, err := f.WriteAt(b, 0); err != nil {
		return err // an *os.PathError, which names the file
	}
	end := hs + int64(h.g.paritiesIn(v))*int64(h.g.shardSize)
	if _, err := f.WriteAt(b, end); err != nil {
		return err
	}
	if _, err := f.WriteAt(trailer(hs), end+hs); err != nil {
		return err
	}
	return nil
}

// encode computes every parity shard and every shard checksum. Workers
// take groups of G adjacent stripes: for every row j they read the data
// shards j·T+t of the group's stripes (one contiguous read of G shards),
// then encode stripe by stripe, so that a stripe's parity stays in the CPU
// cache while its k data shards stream through. Memory: workers × G ×
// (k+m) shards.
func encode(ctx context.Context, g *geometry, data *volumeFiles, rec []*os.File, hs int64, h *header, opt Options, pr *progress) error {
	S := g.shardSize
	workers := opt.workers()
	stripeBytes := int64(g.k+g.m) * int64(S)
	G := int(max(1, min(8, int64(g.stripes), opt.memory()/(int64(workers)*stripeBytes))))
	enc, err := reedsolomon.New(g.k, g.m, reedsolomon.WithMaxGoroutines(1))
	if err != nil {
		return err
	}
	groups := (g.stripes + G - 1) / G
	eg, ctx := errgroup.WithContext(ctx)
	eg.SetLimit(workers)
	bufs := make(chan []byte, workers)
	for i := range groups {
		eg.Go(func() error {
			if err := ctx.Err(); err != nil {
				return err
			}
			var buf []byte
			select {
			case buf = <-bufs:
			default:
				buf = make([]byte, int64(G)*stripeBytes)
			}
			defer func() { bufs <- buf }()
			return encodeGroup(g, enc, data, rec, hs, h, buf, i*G, min(g.stripes, (i+1)*G), pr)
		})
	}
	return eg.Wait()
}

// encodeGroup encodes stripes [t0, t1) with buf holding their data shards
// row by row (stripe x's shard j at (j·w + x)·S) and then their parity
// shards row by row (stripe x's parity r at ((k + r)·w + x)·S): a parity
// row of the group is one contiguous write.
func encodeGroup(g *geometry, enc reedsolomon.Encoder, data *volumeFiles, rec []*os.File, hs int64, h *header, buf []byte, t0, t1 int, pr *progress) error {
	S := g.shardSize
	w := t1 - t0
	at := func(row, x int) []byte { return buf[(row*w+x)*S:][:S] }
	for j := range g.k {
		s0 := g.dataShard(t0, j)
		if s0 < 0 {
			clear(buf[j*w*S : g.k*w*S]) // past the last shard: zeros
			break
		}
		s1 := min(s0+int64(w), g.dataShards())
		if err := readShards(g, data, s0, s1, buf[j*w*S:]); err != nil {
			return err
		}
		clear(buf[(j*w+int(s1-s0))*S : (j+1)*w*S])
		for x := range int(s1 - s0) {
			h.dataSums[s0+int64(x)] = xxh3.Hash(at(j, x))
		}
		pr.add((s1 - s0) * int64(S))
	}
	shards := make([][]byte, g.k+g.m)
	for x := range w {
		for j := range shards {
			shards[j] = at(j, x)
		}
		if err := enc.Encode(shards); err != nil {
			return err
		}
	}
	for r := range g.m {
		row := buf[(g.k+r)*w*S : (g.k+r+1)*w*S]
		for x := range w {
			h.paritySums[g.parityShard(t0+x, r)] = xxh3.Hash(row[x*S : (x+1)*S])
		}
		for x := 0; x < w; {
			p := g.parityShard(t0+x, r)
			v, off := g.parityLoc(p, hs)
			n := min(w-x, g.perVol-int(p%int64(g.perVol)))
			if _, err := rec[v].WriteAt(row[x*S:(x+n)*S], off); err != nil {
				return err
			}
			x += n
		}
	}
	return nil
}

// readShards reads the consecutive data shards [s0, s1) into buf, the
// zero padding after each volume's last byte included.
func readShards(g *geometry, data *volumeFiles, s0, s1 int64, buf []byte) error {
	S := int64(g.shardSize)
	for s := s0; s < s1; {
		vol, off := g.locate(s)
		n := min(s1, g.first[vol+1]) - s
		dst := buf[(s-s0)*S : (s-s0+n)*S]
		want := min(int64(len(dst)), g.sizes[vol]-off)
		if _, err := data.ReadAt(vol, dst[:want], off); err != nil {
			return err
		}
		clear(dst[want:])
		s += n
	}
	return nil
}
