package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"arc/format"
	"arc/internal/hint"
	"arc/internal/termsafe"
	"arc/reader"
	"arc/recovery"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"
)

// The recovery commands register themselves (the root command's list of
// extra commands), so root.go needs no line for them.
func init() { extraCommands = append(extraCommands, newRepairCmd, newRecoveryCmd) }

// unitsOf reads the root's --bytes flag for commands built without a units.
func unitsOf(c *cobra.Command) *units {
	u := &units{}
	if f := c.Flags().Lookup("bytes"); f != nil {
		u.bytes = f.Value.String() == "true"
	}
	return u
}

// parsePercent reads a --recovery value: "10%", "10" or "2.5%"; "" is 0
// (no recovery volumes).
func parsePercent(s string) (float64, error) {
	if s == "" {
		return 0, nil
	}
	num := strings.TrimSuffix(strings.TrimSpace(s), "%")
	// Plain decimals, as sizes take them: ParseFloat would also take
	// 1e1, 0x1p3 and Inf.
	plain := strings.Trim(num, "0123456789.") == "" && strings.Count(num, ".") <= 1 && strings.ContainsAny(num, "0123456789")
	v, err := strconv.ParseFloat(num, 64)
	if !plain || err != nil || !(v >= 0.01 && v <= 100) {
		return 0, fmt.Errorf("invalid --recovery %q (want a share of the archive from 0.01%% to 100%%, e.g. 10%%)", s)
	}
	return v, nil
}

// addRecovery writes the recovery volumes of the finished archive out and
// prints one line about them; create's --recovery and `recovery add` use it.
func addRecovery(ctx context.Context, w io.Writer, u *units, out string, pct float64, force bool, workers int) error {
	return writeRecovery(ctx, w, u, out, recovery.Options{Percent: pct, Force: force, Workers: workers})
}

// recoveryAddHint is the command that writes archive's recovery volumes,
// quoted as a hint (in single quotes), ready to paste: the percentage is
// required, so it carries the one the examples use.
func recoveryAddHint(archive string, force bool) string {
	f := ""
	if force {
		f = " --force"
	}
	return fmt.Sprintf("'arcpack recovery add %s --recovery 10%%%s'", termsafe.Name(termsafe.Word(archive)), f)
}

func writeRecovery(ctx context.Context, w io.Writer, u *units, out string, opt recovery.Options) error {
	start := time.Now()
	res, err := recovery.Add(ctx, out, opt)
	if err != nil {
		if ctx.Err() != nil {
			// The archive itself is complete (create renamed its volumes
			// into place before the parity began) and verifies: keep it.
			return &exitError{code: exitInterrupted, err: fmt.Errorf("recovery %s: interrupted, no recovery volume written (the archive is complete; %s writes them)", out, recoveryAddHint(out, false))}
		}
		return fmt.Errorf("recovery volumes: %w%s", err, hint.Limit(err))
	}
	fmt.Fprintln(w, recoverySummary(u, res, opt.Percent, time.Since(start)))
	for _, v := range res.Strays {
		fmt.Fprintf(w, "not part of the archive (after its last volume, left out, not protected): %s\n", termsafe.Name(v))
	}
	return nil
}

func recoverySummary(u *units, r *recovery.Result, pct float64, d time.Duration) string {
	share := 100 * float64(r.ParityBytes) / float64(max(r.DataBytes, 1))
	why := ""
	if r.VolumeBound {
		why = fmt.Sprintf(" (more than %g%%: at least one volume's worth, so that any one lost volume can be rebuilt)", pct)
	}
	names := termsafe.Name(r.Paths[0])
	if n := len(r.Paths); n > 1 {
		names = fmt.Sprintf("%s ... %s (%d volumes)", names, termsafe.Name(r.Paths[n-1]), n)
	}
	return fmt.Sprintf("recovery: %s, %s of parity = %.1f%% of the archive%s; %d stripe(s) of %d+%d shards of %s; %.1f s",
		names, u.size(r.ParityBytes), share, why, r.Stripes, r.DataShards, r.Parity,
		u.size(int64(r.ShardSize)), d.Seconds())
}

func newRecoveryCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "recovery",
		Short: "Manage an archive's recovery volumes (NAME.r01, NAME.r02, ...)",
		Long: `Recovery volumes hold Reed-Solomon parity of an archive's volumes. With them,
arcpack repair rebuilds any one lost or damaged volume (the last one, with the
index, too) or damage spread over the archive up to the share chosen.`,
		Example: `  arcpack recovery add /backup/photos.001 --recovery 10%`,
		Args:    subcommandArgs,
		RunE: func(c *cobra.Command, args []string) error {
			if len(args) == 2 { // help CMD
				if s, _, err := c.Find(args[1:]); err == nil && s != c {
					return s.Help()
				}
				return usageErrorf("%s: unknown command %q (see '%s --help')", c.Name(), args[1], c.CommandPath())
			}
			return c.Help()
		},
	}
	var pct, progress string
	var force bool
	var workers int
	add := &cobra.Command{
		Use:   "add ARCHIVE --recovery PCT",
		Short: "Write recovery volumes for an existing archive",
		Long: `Compute Reed-Solomon parity for the finished archive ARCHIVE (any of its volumes,
or its NAME) and write it as recovery volumes NAME.r01, NAME.r02, ... beside it.
PCT is the parity as a share of the archive; it is raised where needed so that
any one volume can be rebuilt (for an archive of one or two volumes that is a
whole volume's worth). Each recovery volume is written under a temporary name and
renamed when complete. Existing recovery volumes are replaced only with --force.
Every block and the index are verified first: parity over damaged bytes would
make repair restore the damage, so a damaged archive gets none (exit 1).`,
		Example: `  arcpack recovery add /backup/photos.001 --recovery 10%
  arcpack recovery add /backup/photos --recovery 25% --force`,
		Args:        exactArgs(1),
		Annotations: map[string]string{ownSignals: "yes"},
		RunE: func(c *cobra.Command, args []string) error {
			if pct == "" {
				return usageErrorf("recovery add: --recovery PCT is required (e.g. --recovery 10%%)")
			}
			p, err := parsePercent(pct)
			if err != nil {
				return usageErrorf("recovery add: %v", err)
			}
			if err := checkWorkers("recovery add", workers); err != nil {
				return err
			}
			showBar, err := wantProgress(progress)
			if err != nil {
				return err
			}
			// Locked before the check, so that what is verified is what
			// gets parity.
			unlock, err := lockArchive(c.OutOrStdout(), "recovery add", args[0])
			if err != nil {
				return err
			}
			defer unlock()
			// The cheap refusal first: verifying reads the whole archive.
			if err := recovery.CheckExisting(args[0], force); errors.Is(err, recovery.ErrExists) {
				return &exitError{code: exitFatal, err: fmt.Errorf("recovery volumes: %w", err)}
			}
			// Nothing is written while the archive is checked.
			stopCheck := exitOnInterrupt(func() string {
				unlock() // its file goes, as with the deferred call
				return fmt.Sprintf("recovery add %s: interrupted, no recovery volume written", args[0])
			})
			err = verifyBeforeParity(args[0], showBar)
			stopCheck()
			if err != nil {
				return err
			}
			ctx, stop := interruptContext()
			defer stop()
			b := newBar(showBar, "parity", 0)
			err = writeRecovery(ctx, c.OutOrStdout(), unitsOf(c), args[0],
				recovery.Options{Percent: p, Force: force, Workers: workers, Progress: b.recoveryProgress()})
			b.done()
			if errors.Is(err, recovery.ErrExists) {
				return &exitError{code: exitFatal, err: err}
			}
			return err
		},
	}
	add.Flags().StringVar(&pct, "recovery", "", "parity as a share of the archive, e.g. 10% (required)")
	add.Flags().BoolVar(&force, "force", false, "replace existing recovery volumes")
	add.Flags().IntVar(&workers, "workers", 0, "encoding goroutines (0 = one per CPU)")
	addProgressFlag(add, &progress)
	c.AddCommand(add)
	return c
}

// noVolumes reports whether no data volume of archive (any of its names)
// is there.
func noVolumes(archive string) bool {
	vols, _ := format.ListVolumes(recovery.Base(archive))
	return len(vols) == 0
}

// lockArchive takes the lock that create, repair and `recovery add` hold
// while they write the archive named by any of its volumes' names
// (format.LockArchive). Where its directory is not there, or cannot be
// written (a read-only mount, another user's directory), there is nothing
// to guard: the command goes on, reports, and fails itself if it must
// write. A lock file it may not open in a directory it may write stays an
// error: another user's writer may hold it.
//
// It says on w which temporary files of an earlier, killed run it removed;
// its error names the command (cmd) and the archive.
func lockArchive(w io.Writer, cmd, archive string) (unlock func(), err error) {
	base := recovery.Base(archive)
	unlock, left, err := format.LockArchive(base)
	reportLeftovers(w, left)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.EROFS) ||
		errors.Is(err, fs.ErrPermission) && unix.Access(filepath.Dir(base), unix.W_OK) != nil {
		return func() {}, nil
	}
	if err != nil {
		return nil, &exitError{code: exitFatal, err: fmt.Errorf("%s %s: %w", cmd, archive, err)}
	}
	return unlock, nil
}

// verifyBeforeParity checks every block and the index of archive before
// recovery add computes parity over it: parity over damaged bytes would make
// repair restore the damage. (create --recovery needs no check: it has just
// written the bytes.)
func verifyBeforeParity(archive string, showBar bool) error {
	// Any of the archive's names is taken here, a recovery volume's too.
	a, err := reader.Open(recovery.Base(archive), reader.Options{Prefetch: -1})
	if err != nil {
		return openError(archive, err)
	}
	defer a.Close()
	rep, err := verifyBlocks(a, showBar)
	if err != nil {
		return fmt.Errorf("recovery add %s: %w", archive, err)
	}
	if !rep.Intact() {
		return &exitError{code: exitDamage, err: fmt.Errorf("recovery add %s: the archive is damaged (%d bad block(s), %d missing volume(s), %d damaged volume(s), index %s): parity over it would keep the damage, so none was written; 'arcpack verify %s' names what is affected",
			archive, len(rep.Damaged), len(rep.MissingVolumes), len(rep.DamagedVolumes), indexState(rep), termsafe.Word(archive))}
	}
	return nil
}

func newRepairCmd() *cobra.Command {
	var workers int
	var progress string
	c := &cobra.Command{
		Use:   "repair ARCHIVE",
		Short: "Rebuild missing or damaged volumes from the recovery volumes",
		Long: `Check every volume of ARCHIVE (any of its volumes, or its NAME) against its
recovery volumes (NAME.r01, ...) and rebuild each missing or damaged data or
recovery volume: the new file is written under a temporary name, synced, and
renamed over the old one. When the damage is more than the recovery volumes can
rebuild, nothing is changed. Exit 0 when the archive is intact (or was repaired),
1 when it cannot be repaired, 2 when there are no recovery volumes.`,
		Example:     `  arcpack repair /backup/photos.001 && arcpack verify /backup/photos.001`,
		Args:        exactArgs(1),
		Annotations: map[string]string{ownSignals: "yes"},
		RunE: func(c *cobra.Command, args []string) error {
			if err := checkWorkers("repair", workers); err != nil {
				return err
			}
			showBar, err := wantProgress(progress)
			if err != nil {
				return err
			}
			ctx, stop := interruptContext()
			defer stop()
			return runRepair(ctx, c.OutOrStdout(), unitsOf(c), args[0], workers, showBar)
		},
	}
	c.Flags().IntVar(&workers, "workers", 0, "goroutines (0 = one per CPU)")
	addProgressFlag(c, &progress)
	return c
}

func runRepair(ctx context.Context, w io.Writer, u *units, archive string, workers int, showBar bool) error {
	unlock, err := lockArchive(w, "repair", archive)
	if err != nil {
		return err
	}
	defer unlock()
	start := time.Now()
	b := newBar(showBar, "checking", 0)
	res, err := recovery.Repair(ctx, archive, recovery.Options{Workers: workers, Progress: b.recoveryProgress()})
	b.done()
	if res != nil && err == nil || errors.Is(err, recovery.ErrNotRepairable) {
		writeRecoveryReport(w, u, res.Report, archive)
	}
	switch {
	case err == nil:
	case ctx.Err() != nil:
		return &exitError{code: exitInterrupted, err: fmt.Errorf("repair %s: interrupted, nothing changed", archive)}
	case errors.Is(err, recovery.ErrNotRepairable):
		return &exitError{code: exitDamage, err: fmt.Errorf("repair %w", err)}
	case errors.Is(err, recovery.ErrInTheWay):
		return &exitError{code: exitFatal, err: fmt.Errorf("repair %w", err)}
	case errors.Is(err, recovery.ErrNoRecovery) || errors.Is(err, recovery.ErrForeign):
		// No archive there at all (a directory, a name cut short): say
		// that, as list and verify do, not that it lacks parity.
		if errors.Is(err, recovery.ErrNoRecovery) && noVolumes(archive) {
			if m := misnamedError(archive, err); m != nil {
				return &exitError{code: exitFatal, err: fmt.Errorf("repair %s: %w", archive, m)}
			}
		}
		return &exitError{code: exitFatal, err: fmt.Errorf("repair %w", err)}
	default:
		return fmt.Errorf("repair %s: %w%s", archive, err, hint.Limit(err))
	}
	if len(res.Rebuilt) == 0 {
		fmt.Fprintf(w, "%s: intact, nothing to repair\n", termsafe.Name(archive))
		return nil
	}
	fmt.Fprintf(w, "repaired %d volume(s) in %.1f s: %s\n", len(res.Rebuilt), time.Since(start).Seconds(), termsafe.Name(strings.Join(res.Rebuilt, ", ")))
	return nil
}

// recoveryProgress is a recovery.Options.Progress that drives the bar
// (phase, bytes done, total); nil when there is no bar.
func (b *bar) recoveryProgress() func(phase string, done, total int64) {
	if b == nil {
		return nil
	}
	return b.update
}

// writeRecoveryReport prints one line per damaged or missing volume.
func writeRecoveryReport(w io.Writer, u *units, r *recovery.Report, archive string) {
	for _, v := range r.Volumes {
		if v.State == recovery.OK {
			continue
		}
		kind := "volume"
		if v.Recovery {
			kind = "recovery volume"
		}
		what := "missing"
		if st, err := os.Lstat(v.Path); err == nil && st.IsDir() {
			what = "missing (a directory has its name: repair needs it moved away)"
		}
		switch v.State {
		case recovery.Damaged:
			what = fmt.Sprintf("damaged (%s in %s)", u.size(v.DamagedBytes()), rangesText(v.Damaged, 4))
		case recovery.Misnamed:
			what = "misnamed"
		}
		if v.Source != v.Path {
			what += ", found as " + termsafe.Name(v.Source)
		}
		// Repair is all or nothing: where the set is not repairable, no
		// volume is said to be.
		can := ""
		switch {
		case !v.Repairable:
			can = ", NOT repairable"
		case r.Repairable:
			can = ", repairable"
		}
		fmt.Fprintf(w, "%s %s: %s%s\n", kind, termsafe.Name(v.Path), what, can)
	}
}

// rangesText lists up to n byte ranges, then how many more there are.
func rangesText(rs []recovery.Range, n int) string {
	var parts []string
	for i, r := range rs {
		if i == n {
			parts = append(parts, fmt.Sprintf("%d more ranges", len(rs)-n))
			break
		}
		parts = append(parts, fmt.Sprintf("bytes %d-%d", r.Off, r.End-1))
	}
	return strings.Join(parts, ", ")
}
