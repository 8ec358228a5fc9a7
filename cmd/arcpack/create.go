package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"

	"arc/codec"
	"arc/format"
	"arc/internal/bytesize"
	"arc/internal/termsafe"
	"arc/recovery"
	"arc/writer"
	"arc/writer/segment"

	"github.com/spf13/cobra"
	"golang.org/x/term"
)

type createFlags struct {
	out           string
	volumeSize    int64
	frameSize     int64
	blockSize     int64
	codec         string
	level         string
	workers       int
	oneFileSystem bool
	exclude       []excludeArg // --exclude and --exclude-from, in order
	excludeCaches bool
	excludeTags   []string
	strict        bool
	force         bool
	progress      string
	order         string
	chunkSize     string
	chunkMemory   int64
	segments      bool
	segmentMin    int64
	segmentHist   int64
	recovery      string
}

func newCreateCommand(u *units) *cobra.Command {
	defSeg := segment.DefaultConfig()
	f := &createFlags{volumeSize: 98 << 20, frameSize: 16 << 20, blockSize: 1 << 20, segments: true, chunkMemory: 512 << 20,
		segmentMin: int64(defSeg.MinLen), segmentHist: defSeg.History}
	c := &cobra.Command{
		Use:   "create SRC... -o OUT  |  create - -o OUT",
		Short: "Pack files and directories into an archive OUT.001, OUT.002, ...",
		Long: `Pack SRC into the archive OUT, written as volumes OUT.001, OUT.002, ... of
--volume-size bytes each. One directory SRC becomes the archive's root; with several
SRC (or a file) each becomes a top-level entry under its base name. Identical files
are stored once. Unreadable files are reported and skipped (exit 1), or stop the
run with --strict. Sizes take K, M, G and T suffixes (powers of 1024).

SRC "-" reads a tar stream (GNU, ustar or pax, with xattrs, ACLs and hardlinks)
from standard input and packs its members, with the same dedup, in the stream's
order; directories it never names get mode 0755.

Excluding paths: --exclude and --exclude-from take patterns as .gitignore does,
matched against each path as 'arcpack list' prints it. A pattern without a '/'
matches a name at any depth (*.o, node_modules); one with a '/' at its start or
in its middle matches the path from the archive root (/build, src/gen/*.pb.go).
'*' and '?' match within a name, [a-z] a class ([!a-z] not in it), '**' as a
whole name any number of names (**/testdata, logs/**), '\' the next character
literally. A trailing '/' matches directories only (tmp/); a leading '!' takes
back in what an earlier pattern left out; the last pattern that matches decides.
A directory left out is not read: nothing below it is archived. Patterns apply
in the order given, those of an --exclude-from file where it is given. The
summary line counts what was left out, by patterns and by tags (--exclude-caches,
--exclude-if-present).`,
		Example: `  arcpack create ~/src -o /backup/src
  arcpack create etc home -o /backup/sys --volume-size 4G --level high
  arcpack create big/ -o one --volume-size 0   # a single volume, one.001
  arcpack create ~/photos -o /backup/photos --recovery 10%   # + photos.r01, ...
  arcpack create ~ -o /backup/home --exclude-caches --exclude node_modules --exclude '*.o'
  tar -c --xattrs -C /srv data | arcpack create - -o /backup/data`,
		Args:        minArgs(1),
		Annotations: map[string]string{ownSignals: "yes"},
		RunE:        func(c *cobra.Command, args []string) error { return runCreate(c, u, f, args) },
	}
	fl := c.Flags()
	fl.StringVarP(&f.out, "output", "o", "", "archive name; volumes are OUT.001, OUT.002, ... (required)")
	fl.Var(sizeFlag{&f.volumeSize}, "volume-size", "bytes per volume file, header included; 0 = one volume")
	fl.Var(sizeFlag{&f.frameSize}, "frame-size", "input bytes per frame (unit of prefetch)")
	fl.Var(sizeFlag{&f.blockSize}, "block-size", "input bytes per independently decodable block (--level max: the frame size, up to 16M)")
	fl.StringVar(&f.codec, "codec", "auto", "block codec: auto, raw, lz4, lz4x, zstd")
	fl.StringVar(&f.level, "level", "default", "compression level: fast (no segment dedup), default, high, max (or 1 to 4)")
	fl.StringVar(&f.order, "order", "path", "unique-data layout: path (a directory's files together) or similar (similar files together)")
	fl.StringVar(&f.chunkSize, "chunk-size", "default", "average `SIZE` of the content-defined chunks for dedup inside files (a power of two, e.g. 32K), default, or off")
	fl.Var(sizeFlag{&f.chunkMemory}, "chunk-memory", "bytes the table of stored chunks may take: bounds the memory of chunk dedup on any input (the default holds about 190G of unique data at 32K chunks); once full, new chunks take older ones' places")
	fl.BoolVar(&f.segments, "segments", true, "long-distance segment dedup, on except at --level fast (--segments=false turns it off)")
	fl.Var(sizeFlag{&f.segmentMin}, "segment-min", "shortest repeat stored as a reference to earlier bytes (smaller: smaller archive, more seeks when reading); repeats down to 128 bytes are taken where they start within 4M of the previous reference")
	fl.Var(sizeFlag{&f.segmentHist}, "segment-history", "bytes of recent data kept to verify repeats against: bounds the memory of segment dedup")
	fl.IntVar(&f.workers, "workers", 0, "compression workers (0 = one per CPU)")
	fl.BoolVar(&f.oneFileSystem, "one-file-system", false, "do not descend into other filesystems")
	addExcludeFlags(c, &f.exclude, "see Excluding paths above")
	fl.BoolVar(&f.excludeCaches, "exclude-caches", false, "leave out what a directory holds when it holds a CACHEDIR.TAG file (bford.info/cachedir), keeping the directory and the tag")
	fl.StringArrayVar(&f.excludeTags, "exclude-if-present", nil, "leave out what a directory holds when it holds an entry called `NAME` (a .nobackup marker, say), keeping the directory and that entry (repeatable)")
	fl.BoolVar(&f.strict, "strict", false, "treat an unreadable source file as fatal")
	fl.BoolVar(&f.force, "force", false, "overwrite an existing archive of that name")
	fl.StringVar(&f.recovery, "recovery", "", "also write Reed-Solomon recovery volumes OUT.r01, ... of `PCT` percent of the archive, e.g. 10% (see arcpack repair)")
	addProgressFlag(c, &f.progress)
	_ = c.MarkFlagRequired("output")
	return c
}

func runCreate(c *cobra.Command, u *units, f *createFlags, sources []string) error {
	level, err := codec.ParseLevel(f.level)
	if err != nil {
		return usageErrorf("create: --level: %v", err)
	}
	copt := codec.Options{Codec: f.codec, Level: level}
	if err := copt.Validate(); err != nil {
		return usageErrorf("create: --codec: %v", err)
	}
	if err := checkWorkers("create", f.workers); err != nil {
		return err
	}
	if base := filepath.Base(f.out); f.out == "" || strings.HasSuffix(f.out, "/") || base == "." || base == ".." {
		// Volumes are named OUT.001, ...: "dir/" would make dir/.001.
		return usageErrorf("create: -o %q: want the archive's name, such as /backup/photos (volumes are NAME.001, ...)", f.out)
	}
	pct, err := parsePercent(f.recovery)
	if err != nil {
		return usageErrorf("create: %v", err)
	}
	chunk := 0
	switch f.chunkSize {
	case "default", "":
	case "off":
		chunk = -1
	default:
		n, err := bytesize.Parse(f.chunkSize)
		if err != nil || n <= 0 || n > 1<<30 {
			return usageErrorf("create: invalid --chunk-size %q (want a power of two such as 32K, default, or off)", f.chunkSize)
		}
		chunk = int(n)
	}
	if f.chunkMemory < 1<<20 {
		return usageErrorf("create: --chunk-memory %d is below the minimum of 1M", f.chunkMemory)
	}
	// Segment dedup is the level's choice (off at fast) unless a segment
	// flag is given.
	var segs *segment.Config
	if fl := c.Flags(); fl.Changed("segments") || fl.Changed("segment-min") || fl.Changed("segment-history") {
		cfg := segment.DefaultConfig()
		cfg.MinLen, cfg.History = int(f.segmentMin), f.segmentHist
		cfg.NearMin = min(cfg.NearMin, cfg.MinLen)
		if !f.segments {
			cfg.MinLen = -1
		} else if err := cfg.Validate(); err != nil {
			return usageErrorf("create: %v", err)
		}
		segs = &cfg
	}
	// -o takes the archive's name, not a volume's: "-o b.001" would write
	// b.001.001, which nobody means. Any name that reads as a volume's
	// (NAME.NNN, NAME.rNN) is refused too: "backup.2024" would be taken for
	// volume 2024 of "backup" by every other command.
	if base := recovery.Base(f.out); base != f.out {
		suffix := f.out[len(base)+1:]
		switch {
		case base == "" || strings.HasSuffix(base, "/"):
			return usageErrorf("create: -o %s is a volume's ending, not an archive name (give one: -o NAME writes NAME.001, NAME.002, ...)", f.out)
		case len(suffix) == len("001"):
			return usageErrorf("create: -o %s names a volume; give the archive's name, -o %s (its volumes are %s.001, %s.002, ...)", f.out, base, base, base)
		default:
			return usageErrorf("create: -o %s ends like a volume's name (NAME.001, NAME.r01), which the other commands would read as a volume of %s; choose another name, e.g. -o %s-%s", f.out, base, base, suffix)
		}
	}
	fromTar := slices.Contains(sources, "-")
	excl, err := excludeList(f.exclude)
	if err != nil {
		return usageErrorf("create: %v", err)
	}
	tags, err := excludeTags(f.excludeTags)
	if err != nil {
		return usageErrorf("create: %v", err)
	}
	if !fromTar {
		if err := checkExcludeRoots(excl, sources); err != nil {
			return usageErrorf("create: %v", err)
		}
	}
	if fromTar {
		if len(sources) > 1 {
			return usageErrorf("create: - (a tar stream on standard input) cannot be combined with other sources")
		}
		if f.excludeCaches {
			return usageErrorf("create: --exclude-caches needs directories to look into; a tar stream on standard input has none (tar -c --exclude-caches does it there)")
		}
		if len(f.excludeTags) > 0 {
			return usageErrorf("create: --exclude-if-present needs directories to look into; a tar stream on standard input has none (tar -c --exclude-tag does it there)")
		}
		if term.IsTerminal(int(os.Stdin.Fd())) {
			return usageErrorf("create: - reads a tar stream from standard input, which is a terminal; pipe one in (tar -c DIR | arcpack create - -o OUT)")
		}
	}
	// Unless given, the writer picks the block size for the level, and
	// the frame size (saying so where a block size given does not divide it).
	var blockSize, frameSize int64
	if c.Flags().Changed("block-size") {
		if f.blockSize == 0 { // the writer's "unset": not a size anyone means
			return usageErrorf("create: --block-size 0: want a size from %s to %s (the default is the level's: 1M, 16M at --level max)",
				bytesize.Format(writer.MinBlockSize), bytesize.Format(format.MaxBlockSize))
		}
		blockSize = f.blockSize
	}
	if c.Flags().Changed("frame-size") {
		if f.frameSize == 0 {
			return usageErrorf("create: --frame-size 0: want a multiple of the block size (the default is 16M)")
		}
		frameSize = f.frameSize
	}
	showBar, err := wantProgress(f.progress)
	if err != nil {
		return err
	}

	ctx, stop := interruptContext()
	defer stop()

	b := newBar(showBar, "scanning", 0)
	var warnings atomic.Int64
	opt := writer.Options{
		VolumeSize:       f.volumeSize,
		FrameSize:        frameSize,
		BlockSize:        blockSize,
		Codec:            copt,
		Workers:          f.workers,
		OneFileSystem:    f.oneFileSystem,
		Exclude:          excl,
		ExcludeCaches:    f.excludeCaches,
		ExcludeIfPresent: tags,
		Strict:           f.strict,
		Force:            f.force,
		KeepLock:         true, // held on through the recovery volumes
		Tool:             "arcpack " + version,
		Order:            f.order,
		ChunkSize:        chunk,
		ChunkMemory:      f.chunkMemory,
		Segments:         segs,
		Warn: func(err error) {
			warnings.Add(1)
			if b != nil {
				_ = b.pb.Clear()
			}
			fmt.Fprintf(os.Stderr, "arcpack: warning: %s\n", termsafe.Name(err.Error()))
		},
	}
	if b != nil {
		opt.Progress = func(p writer.Progress) { b.update(p.Phase, p.BytesDone, p.BytesTotal) }
	}
	opt.BatchEncoder = gpuBatchEncoder(c, copt, blockSize) // --gpu (gpu.go)
	var res *writer.Result
	if fromTar {
		res, err = writer.CreateFromTar(ctx, f.out, c.InOrStdin(), opt)
	} else {
		res, err = writer.Create(ctx, f.out, sources, opt)
	}
	b.done()
	if err != nil {
		if ctx.Err() != nil || errors.Is(err, context.Canceled) {
			return &exitError{code: exitInterrupted, err: fmt.Errorf("create %s: interrupted, no archive written", f.out)}
		}
		return fmt.Errorf("create %s: %w", f.out, err)
	}
	defer res.Unlock()
	if _, err := fmt.Fprintln(c.OutOrStdout(), createSummary(u, res)); err != nil {
		// A report, not the answer (the archive is): as for extract.
		fmt.Fprintf(os.Stderr, "arcpack: warning: create %s: writing the summary: %s\n", termsafe.Name(f.out), termsafe.Name(err.Error()))
	}
	reportLeftovers(c.OutOrStdout(), res.Leftovers)
	if res.ChunksLost > 0 {
		fmt.Fprintf(c.OutOrStdout(), "chunk dedup: the table of chunks reached --chunk-memory %s (%s in %s); %s then took an older one's place or went unrecorded, so repeats of data that old may be stored again: a larger --chunk-memory keeps them\n",
			u.size(f.chunkMemory), counted(res.ChunkTableLen, "chunk", "chunks"), u.size(res.ChunkTableBytes), counted(res.ChunksLost, "chunk", "chunks"))
	}
	if f.force {
		// Before new parity is written, not by it: a parity step that is
		// interrupted or fails must not leave the replaced archive's
		// beside the new one.
		if err := removeStaleRecovery(c.OutOrStdout(), f.out, pct == 0); err != nil {
			return err
		}
	}
	if pct > 0 { // the archive is complete: add its parity (recovery.go)
		if err := addRecovery(ctx, c.OutOrStdout(), u, f.out, pct, true, f.workers); err != nil {
			return err
		}
	}
	if res.Skipped > 0 || warnings.Load() > 0 {
		msg := fmt.Sprintf("%d file(s) skipped", res.Skipped)
		if res.Skipped == 0 {
			msg = "not everything kept as it was" // a time out of range, xattrs left out
		}
		return &exitError{code: exitDamage, err: fmt.Errorf("create %s: %s, see the warnings above", f.out, msg)}
	}
	return nil
}

// createSummary is the one line printed after a successful create.
func createSummary(u *units, r *writer.Result) string {
	secs := r.Elapsed.Seconds()
	speed := 0.0
	if secs > 0 {
		speed = float64(r.InputBytes) / secs / 1e6
	}
	ratio := 0.0
	if r.ArchiveBytes > 0 {
		ratio = float64(r.InputBytes) / float64(r.ArchiveBytes)
	}
	line := fmt.Sprintf("%s, %s in, %s out in %s, dedup saved %s, ratio %.2f, %.1f MB/s",
		counted(r.Files, "file", "files"), u.size(r.InputBytes), u.size(r.ArchiveBytes), counted(len(r.Volumes), "volume", "volumes"),
		u.size(max(r.InputBytes-r.UniqueBytes, 0)), ratio, speed)
	if r.Excluded > 0 {
		line += fmt.Sprintf(", %d excluded", r.Excluded)
	}
	return line
}

// reportLeftovers says what the lock's taking did with what an earlier,
// killed run left (format.LockArchive): the renames of its commit it
// finished, the temporary files it removed; a line each.
func reportLeftovers(w io.Writer, left format.Leftovers) {
	if f := left.Finished; len(f) > 0 {
		fmt.Fprintf(w, "finished the renames of an earlier run that was killed while it gave its volumes their names: %d, %s ...\n",
			len(f), termsafe.Name(f[0]))
	}
	if r := left.Removed; len(r) > 0 {
		fmt.Fprintf(w, "removed %d temporary file(s) left by an earlier run that was killed (%s ...)\n",
			len(r), termsafe.Name(r[0]))
	}
}

// removeStaleRecovery removes recovery volumes left beside a new archive
// by the one it replaced (--force): they belong to the old archive id, so
// they can rebuild nothing of the new one, and verify and repair would
// have to refuse them.
// (out never reads as a volume's name, runCreate refuses those, so Find
// lists exactly out.r01, out.r02, ... and never a neighbour archive's.)
// hint: say that 'arcpack recovery add' writes new ones (none follow).
func removeStaleRecovery(w io.Writer, out string, hint bool) error {
	old, err := recovery.Find(out)
	if err != nil || len(old) == 0 {
		return nil
	}
	for _, p := range old {
		if err := os.Remove(p); err != nil {
			return fmt.Errorf("create %s: remove the replaced archive's recovery volume: %w", out, err)
		}
	}
	fmt.Fprintf(w, "removed %d recovery volume(s) of the replaced archive (%s ...)", len(old), termsafe.Name(old[0]))
	if hint {
		fmt.Fprintf(w, "; %s writes new ones", recoveryAddHint(out, false))
	}
	fmt.Fprintln(w)
	return nil
}
