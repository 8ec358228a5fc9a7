package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"arc/internal/bytesize"
	"arc/internal/hint"
	"arc/internal/termsafe"
	"arc/reader"

	"github.com/spf13/cobra"
)

type extractFlags struct {
	out         string
	dedupLinks  string
	sameOwner   bool
	noSameOwner bool
	force       bool
	workers     int
	cacheSize   int64
	progress    string
	exclude     []excludeArg // --exclude and --exclude-from, in order
}

func newExtractCommand(u *units) *cobra.Command {
	f := &extractFlags{cacheSize: reader.DefaultCacheSize}
	c := &cobra.Command{
		Use:   "extract ARCHIVE -o DEST [PATH...]",
		Short: "Restore an archive, or some paths of it, below DEST",
		Long: `Recreate the archive's tree (or only each PATH and what lies below it) below DEST,
with its metadata. Owners are restored when running as root (--no-same-owner turns
that off). Existing files in DEST are an error, before anything is extracted,
unless --force (an empty file, as an interrupted extract leaves those it had not
filled yet, is replaced either way). With --force an existing file is replaced
only once the archive's is written whole: one that an interrupted extract had
not reached, or whose replacement is damaged, is as it was. Nothing is ever
written outside DEST: symlinks are created, never followed. Damaged files are
reported by name and the exit code is 1; each keeps what precedes its first
damaged byte (so it is shorter than archived), with mode 0600 and the time of the
extraction instead of its archived metadata, so that it does not pass for restored.
A file larger than DEST's filesystem takes is left the same way, exit 1 (with
--force, where DEST had a file at its path, that file is put back instead).

--exclude and --exclude-from leave out the paths their patterns match, read as
'arcpack create --help' describes (as .gitignore does), matched against each
path as 'arcpack list' prints it; a directory left out takes what lies below it.`,
		Example: `  arcpack extract backup.001 -o restore/
  arcpack extract backup.001 -o restore/ etc/ssh home/me/.bashrc
  arcpack extract backup.001 -o restore/ --dedup-links hardlink
  arcpack extract backup.001 -o restore/ home --exclude '*.iso' --exclude .cache`,
		Aliases:     []string{"x"},
		Args:        minArgs(1),
		Annotations: map[string]string{ownSignals: "yes"}, // runExtract's message
		RunE: func(c *cobra.Command, args []string) error {
			return runExtract(c.OutOrStdout(), u, f, args[0], args[1:], gpuDecode(c))
		},
	}
	fl := c.Flags()
	fl.StringVarP(&f.out, "output", "o", "", "directory to extract into; created when missing (required)")
	fl.StringVar(&f.dedupLinks, "dedup-links", "copy", "restore duplicate files as separate copies (copy) or hardlinks to one file where their mode, owner, mtime and xattrs agree (hardlink)")
	fl.BoolVar(&f.sameOwner, "same-owner", false, "restore owners (the default when running as root)")
	fl.BoolVar(&f.noSameOwner, "no-same-owner", false, "do not restore owners, even as root")
	fl.BoolVar(&f.force, "force", false, "replace existing files in DEST")
	fl.Var(sizeFlag{&f.cacheSize}, "cache-size", "memory for decoded blocks, with an optional K, M, G or T suffix: blocks that files further on read again stay decoded up to it; less memory, more blocks decoded again (at least four of the archive's largest blocks are held)")
	fl.IntVar(&f.workers, "workers", 0, fmt.Sprintf("files written in parallel, up to %d (each holds a 4 MiB buffer; 0 = 4 per CPU, at most 16)", maxWorkers))
	addExcludeFlags(c, &f.exclude, "patterns as 'arcpack create --help' describes them")
	addProgressFlag(c, &f.progress)
	_ = c.MarkFlagRequired("output")
	return c
}

// dec holds the reader options that decode on a GPU (gpuDecode).
func runExtract(out io.Writer, u *units, f *extractFlags, archive string, paths []string, dec reader.Options) error {
	if f.out == "" {
		return usageErrorf("extract: -o DEST is empty (give the directory to extract into; '.' for this one)")
	}
	if f.dedupLinks != "copy" && f.dedupLinks != "hardlink" {
		return usageErrorf("extract: invalid --dedup-links %q (want copy or hardlink)", f.dedupLinks)
	}
	if err := checkWorkers("extract", f.workers); err != nil {
		return err
	}
	if f.cacheSize <= 0 {
		return usageErrorf("extract: --cache-size %s: want a size above 0 (the default is %s)", bytesize.Format(f.cacheSize), bytesize.Format(reader.DefaultCacheSize))
	}
	if f.sameOwner && f.noSameOwner {
		return usageErrorf("extract: --same-owner and --no-same-owner contradict each other")
	}
	excl, err := excludeList(f.exclude)
	if err != nil {
		return usageErrorf("extract: %v", err)
	}
	showBar, err := wantProgress(f.progress)
	if err != nil {
		return err
	}
	// Stopped by a signal, the extraction puts back the modes of the
	// user's directories it made writable, and ends. Files are written
	// under their own names: it leaves those not filled yet empty and the
	// ones being written incomplete (mode 0600), as tar does; say so.
	ctx, stop := interruptContext()
	defer stop()
	dec.CacheSize = f.cacheSize
	a, err := reader.Open(archive, dec)
	if err != nil {
		return openError(archive, err)
	}
	defer a.Close()
	if ctx.Err() != nil { // during the open (a large index, a GPU's set-up)
		return &exitError{code: exitInterrupted, err: fmt.Errorf("extract %s: interrupted before anything was extracted", archive)}
	}
	x := a.Index()
	clean := make([]string, len(paths))
	for i, p := range paths {
		clean[i] = cleanPath(p) // "./d", "d//e" as the walk spells them (the bar's total)
		if _, err := resolve(x, clean[i]); err != nil {
			return fmt.Errorf("extract %s: %s: %w", archive, p, err)
		}
	}
	total, err := a.ExtractSize(reader.ExtractOptions{Paths: clean, Exclude: excl, DedupLinks: f.dedupLinks})
	if err != nil {
		return fmt.Errorf("extract %s: %w", archive, err)
	}
	b := newBar(showBar, "extracting", total)
	var done, warned atomic.Int64
	start := time.Now()
	res, err := a.Extract(f.out, reader.ExtractOptions{
		Paths:       clean,
		Exclude:     excl,
		DedupLinks:  f.dedupLinks,
		SameOwner:   f.sameOwner,
		NoSameOwner: f.noSameOwner,
		Overwrite:   f.force,
		Workers:     f.workers,
		Context:     ctx,
		Progress: func(n int64) {
			b.update("", done.Add(n), 0)
		},
		Warn: func(err error) {
			warned.Add(1)
			if b != nil {
				_ = b.pb.Clear()
			}
			fmt.Fprintf(os.Stderr, "arcpack: warning: %s\n", termsafe.Name(err.Error()))
		},
	})
	b.done()
	if errors.Is(err, context.Canceled) {
		return &exitError{code: exitInterrupted, err: fmt.Errorf("extract %s to %s: interrupted; what was extracted so far is left there, the files not yet written empty and those being written incomplete ('--force' replaces them; files DEST had that were not replaced yet are as they were)", archive, f.out)}
	}
	if err != nil && !errors.Is(err, reader.ErrDamaged) {
		// The reader names its option; the user knows the flag.
		msg := strings.ReplaceAll(err.Error(), "(use overwrite to replace it)", "(use --force to replace files in "+f.out+")") + hint.Limit(err)
		return fmt.Errorf("extract %s to %s: %w", archive, f.out, &rewordedError{msg, err})
	}
	// The summary is a report, not the answer (the files are): one that
	// cannot be written (stdout a full disk) is warned about and does not
	// change the exit status, as for create and repair.
	if _, werr := fmt.Fprintln(out, extractSummary(u, res, time.Since(start))); werr != nil {
		fmt.Fprintf(os.Stderr, "arcpack: warning: extract %s: writing the summary: %s\n", termsafe.Name(archive), termsafe.Name(werr.Error()))
	}
	if err != nil {
		err = fmt.Errorf("extract %s: %w (named above)", archive, err)
		if h := hint.Repair(archive); h != "" {
			err = fmt.Errorf("%w; %s", err, h)
		}
		return &exitError{code: exitDamage, err: err}
	}
	if res.Skipped > 0 {
		return &exitError{code: exitDamage, err: fmt.Errorf("extract %s: %s could not be created (named above)", archive, counted(res.Skipped, "entry", "entries"))}
	}
	if res.Incomplete > 0 {
		return &exitError{code: exitDamage, err: fmt.Errorf("extract %s: %s left incomplete, larger than the destination's filesystem takes (named above)", archive, counted(res.Incomplete, "file", "files"))}
	}
	// An owner, a mode bit or an xattr not restored (warned): the content
	// is all there, the metadata not all as archived. As create does for
	// what it could not keep, and tar for what it could not restore: a
	// script must not take the restore for complete.
	if warned.Load() > 0 {
		return &exitError{code: exitDamage, err: fmt.Errorf("extract %s: not everything restored as archived, see the warnings above", archive)}
	}
	return nil
}

func extractSummary(u *units, r *reader.ExtractResult, d time.Duration) string {
	speed := 0.0
	if s := d.Seconds(); s > 0 {
		speed = float64(r.Bytes) / s / 1e6
	}
	line := fmt.Sprintf("%s, %s, %s, %s, %s, %s written, %.1f MB/s",
		counted(r.Files, "file", "files"), counted(r.Dirs, "dir", "dirs"), counted(r.Symlinks, "symlink", "symlinks"),
		counted(r.Others, "other", "others"), counted(r.Hardlinks, "link", "links"), u.size(r.Bytes), speed)
	if r.Excluded > 0 {
		line += fmt.Sprintf(", %d excluded", r.Excluded)
	}
	return line
}
