package recovery

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"syscall"

	"arc/format"

	"github.com/klauspost/reedsolomon"
	"github.com/zeebo/xxh3"
	"golang.org/x/sync/errgroup"
)

// ErrNotRepairable is returned by Repair when the damage exceeds what the
// parity present can rebuild; nothing is changed then.
var ErrNotRepairable = errors.New("damage exceeds the recovery data")

// RepairResult says what Repair did.
type RepairResult struct {
	Report  *Report  // the check made before repairing
	Rebuilt []string // volumes rewritten or renamed into place (data and recovery), in set order
}

// Repair checks archive and rebuilds every missing or damaged data and
// recovery volume: each is written complete under a temporary name,
// synced, and only then renamed over the old file. A volume found under
// another name (Misnamed) is written under its own, or renamed to it from
// a name outside the set. When the damage is beyond repair it returns
// ErrNotRepairable and changes nothing.
func Repair(ctx context.Context, archive string, opt Options) (*RepairResult, error) {
	pr := newProgress(opt.Progress)
	rep, err := check(ctx, archive, opt, pr)
	if err != nil {
		return nil, err
	}
	res := &RepairResult{Report: rep}
	if rep.Intact() {
		return res, nil
	}
	if !rep.Repairable {
		var lost []string
		for _, v := range rep.Volumes {
			if !v.Repairable {
				lost = append(lost, v.Path)
			}
		}
		return res, fmt.Errorf("%s: %w: %d of %d stripes have more than %d damaged shards (not repairable: %s); nothing changed",
			rep.Base, ErrNotRepairable, rep.LostStripes, rep.Stripes, rep.Parity, strings.Join(lost, ", "))
	}
	// A volume is renamed into place at the end; over a directory that
	// fails, with every volume written and the renames left half done.
	for _, v := range rep.Volumes {
		if v.State == OK {
			continue
		}
		if st, err := os.Lstat(v.Path); err == nil && st.IsDir() {
			return res, fmt.Errorf("%s: %w (a directory): move it away and repair again; nothing changed", v.Path, ErrInTheWay)
		}
		if err := format.Replaceable(v.Path); err != nil {
			return res, fmt.Errorf("%w: %w; nothing changed", err, ErrInTheWay)
		}
		// A misnamed volume under a name outside the set is moved back,
		// which a sticky directory refuses as it refuses replacing.
		if v.State == Misnamed && v.Source != v.Path && !slices.ContainsFunc(rep.Volumes, func(o VolumeReport) bool { return o.Path == v.Source }) {
			if err := format.Replaceable(v.Source); err != nil {
				return res, fmt.Errorf("%w: %w; nothing changed", err, ErrInTheWay)
			}
		}
	}
	s := rep.s
	g, h := s.h.g, s.h
	tmp := &tempFiles{}
	defer tmp.remove()
	// out[i] is the new file of data volume i (recovery volume v at
	// len(data)+v), nil when the volume is intact.
	out := make([]*os.File, len(rep.Volumes))
	// A volume that is missing takes the mode and owner of the first one
	// there, in set order.
	var beside string
	for _, v := range rep.Volumes {
		if v.State != Missing {
			beside = v.Source
			break
		}
	}
	// A misnamed volume is copied from the file that holds it: every new
	// file is written before any is renamed into place, so a volume whose
	// name another's new file takes has been copied out first.
	named := map[string]bool{} // the set's names
	for _, v := range rep.Volumes {
		named[v.Path] = true
	}
	// An intact volume read through a symlink to a file whose name
	// another volume's new file takes (NAME.002 -> NAME.003) would lose
	// its only copy: it is written out under its own name too.
	var replaced []os.FileInfo
	for _, v := range rep.Volumes {
		if st, err := os.Lstat(v.Path); v.State != OK && err == nil {
			replaced = append(replaced, st)
		}
	}
	through := func(v VolumeReport) bool {
		lst, err := os.Lstat(v.Path)
		if err != nil || lst.Mode()&os.ModeSymlink == 0 {
			return false
		}
		st, err := os.Stat(v.Path)
		return err == nil && slices.ContainsFunc(replaced, func(r os.FileInfo) bool { return os.SameFile(r, st) })
	}
	for i, v := range rep.Volumes {
		if v.State == OK && !through(v) {
			continue
		}
		if v.State == Misnamed && !named[v.Source] {
			// Intact under a name outside the set (NAME.009 of a set
			// of 8): it takes its own name, and leaves no stray.
			tmp.move(v.Source, v.Path)
			res.Rebuilt = append(res.Rebuilt, v.Path)
			continue
		}
		like := v.Source
		if v.State == Missing {
			like = beside
		}
		f, err := tmp.create(v.Path, v.WantSize, like)
		if err != nil {
			return res, err
		}
		out[i] = f
		if v.State != Missing {
			if err := copyPrefix(f, v.Source, min(v.Size, v.WantSize)); err != nil {
				return res, err
			}
		}
		res.Rebuilt = append(res.Rebuilt, v.Path)
	}
	// Read as the stripes need them, a few open at a time; a file Check
	// found missing is never read (its shards are all marked damaged).
	data := newVolumeFiles(s.dataSrc, heldBudget(2))
	defer data.Close()
	rec := newVolumeFiles(s.recSrc, heldBudget(2))
	defer rec.Close()

	// Rebuild every stripe with a damaged shard, one stripe per worker at
	// a time: memory is workers × (k+m) shards, held to opt.memory(). The
	// header sets k+m and the shard size, which a crafted one may make ask
	// for 16 GiB a stripe: a stripe larger than the bound is refused,
	// unless it is no larger than the largest Add writes (256 shards of
	// 64 KiB).
	S := g.shardSize
	stripeBytes := int64(g.k+g.m) * int64(S)
	if bound := max(opt.memory(), maxAddStripe); stripeBytes > bound {
		return res, fmt.Errorf("%w: a stripe of %d shards of %d bytes needs %d MiB, more than the %d MiB allowed",
			ErrHeader, g.k+g.m, S, stripeBytes>>20, bound>>20)
	}
	workers := int(max(1, min(int64(opt.workers()), opt.memory()/stripeBytes)))
	eg, ctx := errgroup.WithContext(ctx)
	eg.SetLimit(workers)
	// One encoder for all workers: it is safe for concurrent use and its
	// cache of inverted matrices serves every stripe with the same losses.
	enc, err := reedsolomon.New(g.k, g.m)
	if err != nil {
		return res, err
	}
	pool := make(chan []byte, workers)
	var todo int64
	for _, c := range s.cnt {
		if c > 0 {
			todo += stripeBytes
		}
	}
	pr.start("rebuilding", todo)
	for t := range g.stripes {
		if s.cnt[t] == 0 {
			continue
		}
		eg.Go(func() error {
			var buf []byte
			select {
			case buf = <-pool:
			default:
				buf = make([]byte, (g.k+g.m)*S)
			}
			defer func() { pool <- buf }()
			defer pr.add(stripeBytes)
			return rebuildStripe(ctx, enc, s, t, buf, data, rec, out)
		})
	}
	if err := eg.Wait(); err != nil {
		return res, err
	}
	for v := range s.rec {
		if f := out[len(s.data)+v]; f != nil {
			if err := writeHeaders(f, h, v); err != nil {
				return res, err
			}
		}
	}
	if err := tmp.commit(rep.Base); err != nil {
		return res, err
	}
	return res, nil
}

// rebuildStripe reads stripe t's intact shards, reconstructs the damaged
// ones, checks them against their recorded checksums and writes them into
// the new files.
func rebuildStripe(ctx context.Context, enc reedsolomon.Encoder, s *scan, t int, buf []byte, data, rec *volumeFiles, out []*os.File) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	g, h := s.h.g, s.h
	S := g.shardSize
	shards := make([][]byte, g.k+g.m)
	parityBad := false
	for j := range g.k + g.m {
		sh := buf[j*S : (j+1)*S]
		var f *volumeFiles
		var vol int
		var off int64
		var n int
		if j < g.k {
			d := g.dataShard(t, j)
			if d < 0 { // past the last shard: zeros
				clear(sh)
				shards[j] = sh
				continue
			}
			if s.badData[d] {
				shards[j] = sh[:0]
				continue
			}
			vol, off = g.locate(d)
			f, n = data, g.dataLen(d)
		} else {
			p := g.parityShard(t, j-g.k)
			if s.badParity[p] {
				shards[j] = sh[:0]
				parityBad = true
				continue
			}
			vol, off = g.parityLoc(p, s.hs)
			f, n = rec, S
		}
		if _, err := f.ReadAt(vol, sh[:n], off); err != nil {
			return err
		}
		clear(sh[n:])
		shards[j] = sh
	}
	var err error
	if parityBad {
		err = enc.Reconstruct(shards)
	} else {
		err = enc.ReconstructData(shards)
	}
	if err != nil {
		return fmt.Errorf("stripe %d: %w", t, err)
	}
	for j := range g.k + g.m {
		if j < g.k {
			d := g.dataShard(t, j)
			if d < 0 || !s.badData[d] {
				continue
			}
			vol, off := g.locate(d)
			if xxh3.Hash(shards[j]) != h.dataSums[d] {
				return fmt.Errorf("%s at %d: stripe %d: rebuilt data shard %d does not match its checksum", s.data[vol], off, t, d)
			}
			if _, err := out[vol].WriteAt(shards[j][:g.dataLen(d)], off); err != nil {
				return err // an *os.PathError, which names the file
			}
			continue
		}
		p := g.parityShard(t, j-g.k)
		if !s.badParity[p] {
			continue
		}
		vol, off := g.parityLoc(p, s.hs)
		if xxh3.Hash(shards[j]) != h.paritySums[p] {
			return fmt.Errorf("%s at %d: stripe %d: rebuilt parity shard %d does not match its checksum", s.rec[vol], off, t, p)
		}
		f := out[len(s.data)+vol]
		if _, err := f.WriteAt(shards[j], off); err != nil {
			return err
		}
	}
	return nil
}

// sameModeAs gives f the permission bits and, where the caller may (root),
// the owner and group of the file at like: the volume it replaces, or one
// beside it. A rebuilt volume must not be readable by more users than the
// others (new files get 0644 less the umask), nor change hands. With no
// file to take them from, f keeps what it has.
func sameModeAs(f *os.File, like string) error {
	if like == "" {
		return nil
	}
	st, err := os.Stat(like)
	if err != nil {
		return nil
	}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		_ = f.Chown(int(sys.Uid), int(sys.Gid)) // only root may give a file away
	}
	if err := f.Chmod(st.Mode().Perm()); err != nil {
		return fmt.Errorf("%s: %w", f.Name(), err)
	}
	return nil
}

// copyPrefix copies the first n bytes of the damaged file src into dst:
// its intact shards are kept, the damaged ones overwritten afterwards.
func copyPrefix(dst *os.File, src string, n int64) error {
	f, err := format.OpenFile(src)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := dst.Seek(0, io.SeekStart); err != nil {
		return err
	}
	if _, err := io.Copy(dst, io.LimitReader(f, n)); err != nil {
		return fmt.Errorf("copy %s: %w", src, err)
	}
	return nil
}
