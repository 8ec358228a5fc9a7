package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"arc/format"
	"arc/internal/hint"
	"arc/internal/termsafe"
	"arc/reader"
	"arc/recovery"

	"github.com/spf13/cobra"
)

func newVerifyCommand(u *units) *cobra.Command {
	var progress string
	var asJSON bool
	c := &cobra.Command{
		Use:   "verify ARCHIVE",
		Short: "Check every block and the index; name the files that damage affects",
		Long: `Read every volume of ARCHIVE, check the index and the checksum of every block,
and name the files whose content lies in a damaged block or a missing volume.
When recovery volumes (NAME.r01, ...) exist, also check every volume against them
byte for byte and say, per damaged or missing volume, whether arcpack repair can
rebuild it. Exit 0 when the archive (and its recovery volumes) are intact, 1 when
damage was found, 2 when ARCHIVE is not an arc volume or cannot be read at all.`,
		Example: `  arcpack verify backup.001
  arcpack verify backup.004 --progress never && echo intact`,
		Args: exactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			// The report is the command's answer: one that could not be
			// written (a full disk, a closed pipe) fails the command.
			w := bufio.NewWriter(c.OutOrStdout())
			err := runVerify(w, u, args[0], progress, asJSON, gpuDecode(c))
			if ferr := w.Flush(); ferr != nil {
				return fmt.Errorf("verify %s: writing the report: %w", args[0], ferr)
			}
			return err
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "write the report as one JSON object (fields: docs/CLI.md)")
	addProgressFlag(c, &progress)
	return c
}

// warnUnfinishedCommit says, on stderr, when a writer of the archive was
// killed while it gave volumes their names (format.Commit): what verify
// finds then is half done, and the next arcpack that writes the archive
// finishes it.
func warnUnfinishedCommit(archive string) {
	base := recovery.Base(archive)
	if _, err := os.Lstat(format.CommitName(base)); err == nil {
		fmt.Fprintf(os.Stderr, "arcpack: warning: %s: an arcpack killed while it gave volumes their names left these renames to do; 'arcpack repair %s' does them first\n",
			termsafe.Name(format.CommitName(base)), termsafe.Name(termsafe.Word(format.VolumeName(base, 1))))
	}
}

// notAnArchive reports whether the named file itself cannot serve as a
// volume: it is missing, unreadable or not an arc volume. Other failures
// to open are damage to an archive that is there.
func notAnArchive(path string) error {
	p := path
	if _, _, ok := format.ParseVolumeName(p); !ok {
		// NAME stands for NAME.001 where that is there, as for the
		// reader, whatever NAME itself is (a directory of that name, say).
		_, err := os.Stat(p)
		if _, err1 := os.Stat(format.VolumeName(p, 1)); err1 == nil || errors.Is(err, fs.ErrNotExist) {
			p = format.VolumeName(p, 1)
		}
	}
	f, err := format.OpenFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		// The volume named is gone but volumes after it are there (NAME.001
		// lost, most often): a missing volume, which reader.Open reports
		// with the blocks and files it held.
		if base, n, ok := format.ParseVolumeName(p); ok {
			if vols, _ := format.ListVolumes(base); len(vols) > 0 && n < vols[len(vols)-1] {
				return nil
			}
		}
	}
	if err != nil {
		return err
	}
	defer f.Close()
	// A damaged header in a set of volumes is damage, not a foreign file:
	// the other volumes' headers, or a lone volume's footer, vouch for the
	// set (reader.Open decides).
	inSet := func() bool {
		if base, _, ok := format.ParseVolumeName(p); ok {
			if vols, _ := format.ListVolumes(base); len(vols) > 1 {
				return true
			}
		}
		st, err := f.Stat()
		if err != nil || st.Size() < format.VolumeHeaderSize+format.FooterSize {
			return false
		}
		tail := make([]byte, format.FooterSize)
		if _, err := f.ReadAt(tail, st.Size()-format.FooterSize); err != nil {
			return false
		}
		_, err = format.ParseFooter(tail)
		return err == nil
	}
	b := make([]byte, format.VolumeHeaderSize)
	if _, err := io.ReadFull(f, b); err != nil {
		if inSet() {
			return nil
		}
		size := int64(0)
		if st, err := f.Stat(); err == nil {
			size = st.Size()
		}
		return fmt.Errorf("%s: %w: %d bytes, shorter than a volume header", p, format.ErrNotArchive, size)
	}
	if _, err := format.ParseVolumeHeader(b); errors.Is(err, format.ErrNotArchive) || errors.Is(err, format.ErrVersion) {
		if inSet() {
			return nil
		}
		return fmt.Errorf("%s: %w", p, err)
	}
	if _, _, ok := format.ParseVolumeName(p); !ok {
		// A volume under another name (a copy, NAME.5): no reader opens
		// it as it is, and it is no damage of the archive's.
		return fmt.Errorf("%s: an arc volume, but not under a volume's name (want NAME.001, NAME.002, …)", p)
	}
	return nil
}

// dec holds the reader options that decode on a GPU (gpuDecode).
func runVerify(out io.Writer, u *units, archive, progress string, asJSON bool, dec reader.Options) error {
	showBar, err := wantProgress(progress)
	if err != nil {
		return err
	}
	if _, _, ok := format.ParseVolumeName(archive); !ok && recovery.Base(archive) != archive {
		// NAME.r01 names the parity, not the archive: say which name to give.
		return &exitError{code: exitFatal, err: fmt.Errorf("verify %s: a recovery volume, not a data volume (give the archive's first volume, %s)",
			archive, format.VolumeName(recovery.Base(archive), 1))}
	}
	warnUnfinishedCommit(archive)
	rec := checkRecovery(archive, showBar)
	if rec != nil && format.TooManyOpen(rec.err) {
		// The recovery check met the process's limit of open files:
		// the limit, not unusable recovery volumes.
		return &exitError{code: exitFatal, err: fmt.Errorf("verify %s: %w%s", archive, rec.err, hint.Limit(rec.err))}
	}
	if err := notAnArchive(archive); err != nil {
		if rec.usable() && rec.recorded(archive) { // the volume named is gone or broken, but can be rebuilt
			return verifyByRecovery(out, u, archive, asJSON, rec, err)
		}
		if m := misnamedError(archive, err); m != nil { // worded as list and info word it
			err = m
		} else if rest, ok := strings.CutPrefix(err.Error(), archive+": "); ok {
			err = &rewordedError{rest, err} // named once, after "verify"
		}
		return &exitError{code: exitFatal, err: fmt.Errorf("verify %s: %w", archive, err)}
	}
	opt := dec
	opt.Prefetch = -1
	a, err := reader.Open(archive, opt)
	if err != nil {
		if errors.Is(err, fs.ErrPermission) || format.TooManyOpen(err) { // a volume the user cannot read, or the process's limit: not damage
			return &exitError{code: exitFatal, err: fmt.Errorf("verify %s: %w%s", archive, err, hint.Limit(err))}
		}
		if rec != nil {
			return verifyByRecovery(out, u, archive, asJSON, rec, err)
		}
		return &exitError{code: exitDamage, err: fmt.Errorf("verify %s: damaged: %w", archive, err)}
	}
	defer a.Close()
	rep, err := verifyBlocks(a, showBar)
	if err != nil {
		return fmt.Errorf("verify %s: %w%s", archive, err, hint.Limit(err))
	}
	if asJSON {
		if err := writeVerifyJSON(out, rep, rec); err != nil {
			return err
		}
	} else {
		writeVerifyText(out, u, archive, a, rep)
		writeRecoveryText(out, u, archive, rec)
	}
	if rep.Intact() && rec.intact() {
		return nil
	}
	if rep.Intact() {
		return &exitError{code: exitDamage, err: fmt.Errorf("verify %s: %s%s", archive, rec.notIntact(), rec.hint(archive))}
	}
	return &exitError{code: exitDamage, err: fmt.Errorf("verify %s: damaged: %d bad block(s), %d missing volume(s), %d damaged volume(s), index %s; %d file(s) affected%s",
		archive, len(rep.Damaged), len(rep.MissingVolumes), len(rep.DamagedVolumes), indexState(rep), len(rep.AffectedFiles), rec.hint(archive))}
}

// verifyBlocks checks every block and the index of a, with a progress bar
// when showBar.
func verifyBlocks(a *reader.Archive, showBar bool) (*reader.VerifyReport, error) {
	b := newBar(showBar, "verifying", int64(a.Index().DataSize()))
	var done int64
	rep, err := a.Verify(reader.VerifyOptions{
		Progress: func(n int64) {
			done += n
			b.update("", done, 0)
		},
	})
	b.done()
	return rep, err
}

// recoveryCheck is what an archive's recovery volumes say about it; nil
// when it has none.
type recoveryCheck struct {
	paths []string
	rep   *recovery.Report
	err   error // the recovery volumes cannot be used (another archive's, no valid header)
}

func checkRecovery(archive string, showBar bool) *recoveryCheck {
	paths, err := recovery.Find(archive)
	if err != nil || len(paths) == 0 {
		return nil
	}
	b := newBar(showBar, "checking", 0)
	rep, err := recovery.Check(context.Background(), archive, recovery.Options{Progress: b.recoveryProgress()})
	b.done()
	return &recoveryCheck{paths: paths, rep: rep, err: err}
}

func (r *recoveryCheck) usable() bool { return r != nil && r.err == nil }

// recorded reports whether archive is the archive's NAME or one of the
// data volumes the usable recovery volumes recorded: a volume named past
// the last of those is not a lost volume but a mistyped name.
func (r *recoveryCheck) recorded(archive string) bool {
	_, n, ok := format.ParseVolumeName(archive)
	if !ok {
		return true
	}
	data := 0
	for _, v := range r.rep.Volumes {
		if !v.Recovery {
			data++
		}
	}
	return int(n) <= data
}

// intact is true without recovery volumes, or when they and the data
// volumes all check out. Recovery volumes of another archive (left from
// one this archive replaced) are not damage to this one: they are named,
// not counted.
func (r *recoveryCheck) intact() bool {
	return r == nil || r.stale() || r.usable() && r.rep.Intact()
}

// notIntact says what is wrong when every block and the index check out
// but the recovery check does not. A data volume can differ from what the
// parity recorded while every block still decodes to its checksum (a codec
// has more than one encoding of the same bytes): then the recovery volumes
// are not the ones at fault.
func (r *recoveryCheck) notIntact() string {
	var vols []string
	if r.usable() {
		for _, v := range r.rep.Volumes {
			if !v.Recovery && v.State != recovery.OK {
				vols = append(vols, v.Path)
			}
		}
	}
	if len(vols) > 0 {
		return fmt.Sprintf("every block and the index check out, but %s differ(s) from what the recovery volumes recorded", strings.Join(vols, ", "))
	}
	return "the archive is intact, its recovery volumes are not"
}

// recoveryVolumes is how many recovery volumes the set has (files named
// past them are not part of it).
func (r *recoveryCheck) recoveryVolumes() int {
	n := 0
	for _, v := range r.rep.Volumes {
		if v.Recovery {
			n++
		}
	}
	return n
}

func (r *recoveryCheck) stale() bool { return r != nil && errors.Is(r.err, recovery.ErrForeign) }

// hint ends verify's error line: whether repair can help.
func (r *recoveryCheck) hint(archive string) string {
	switch {
	case r == nil, r.stale():
		return ""
	case !r.usable():
		return fmt.Sprintf("; recovery volumes unusable: %v", r.err)
	case r.rep.Intact():
		// The damage is in what the parity does not cover, or was there
		// when it was made: repair would say "intact, nothing to repair".
		return "; the recovery volumes find every volume as they recorded it: arcpack repair has nothing to rebuild"
	case r.rep.Repairable:
		return fmt.Sprintf("; repairable: run 'arcpack repair %s'", termsafe.Word(archive))
	default:
		return "; NOT repairable with the recovery volumes present"
	}
}

// verifyByRecovery reports an archive that does not open (a volume missing,
// a header broken) from its recovery volumes alone.
func verifyByRecovery(out io.Writer, u *units, archive string, asJSON bool, rec *recoveryCheck, openErr error) error {
	if asJSON {
		v := verifyJSON{IndexError: openErr.Error(), MissingVolumes: []string{}, DamagedVolumes: []string{},
			StrayVolumes: []string{}, DamagedBlocks: []blockJSON{}, AffectedFiles: []string{}, Recovery: rec.json()}
		if rec.usable() {
			for _, vr := range rec.rep.Volumes {
				if vr.State == recovery.Missing && !vr.Recovery {
					v.MissingVolumes = append(v.MissingVolumes, vr.Path)
				}
			}
		}
		if err := encodeJSON(out, v); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(out, "damaged: %s\n", termsafe.Name(openErr.Error()))
		writeRecoveryText(out, u, archive, rec)
	}
	return &exitError{code: exitDamage, err: fmt.Errorf("verify %s: damaged: %w%s", archive, openErr, rec.hint(archive))}
}

// writeRecoveryText adds what the recovery volumes say to verify's report.
func writeRecoveryText(out io.Writer, u *units, archive string, r *recoveryCheck) {
	switch {
	case r == nil:
	case r.stale():
		fmt.Fprintf(out, "recovery volumes not used: %s (left from another archive? %s replaces them)\n",
			termsafe.Name(r.err.Error()), recoveryAddHint(archive, true))
	case !r.usable():
		fmt.Fprintf(out, "recovery volumes unusable: %s\n", termsafe.Name(r.err.Error()))
	case r.rep.Intact():
		fmt.Fprintf(out, "recovery: %d volume(s) intact; every volume checked against them\n", r.recoveryVolumes())
	default:
		writeRecoveryReport(out, u, r.rep, archive)
		if r.rep.Repairable {
			fmt.Fprintf(out, "repairable: run 'arcpack repair %s' to rebuild the volume(s) above\n", termsafe.Name(termsafe.Word(archive)))
		} else {
			fmt.Fprintf(out, "not repairable: %d of %d stripes lost more than their %d parity shards; arcpack repair would change nothing\n",
				r.rep.LostStripes, r.rep.Stripes, r.rep.Parity)
		}
	}
}

// recoveryJSON is verify --json's "recovery" object, present only when the
// archive has recovery volumes.
type recoveryJSON struct {
	Volumes    []string             `json:"volumes"`         // the recovery volumes found
	Intact     bool                 `json:"intact"`          // every data and recovery volume is as written
	Repairable bool                 `json:"repairable"`      // arcpack repair can rebuild all that is damaged
	Error      string               `json:"error,omitempty"` // why the recovery volumes cannot be used
	Damaged    []recoveryVolumeJSON `json:"damaged"`         // each damaged or missing volume
}

type recoveryVolumeJSON struct {
	Path   string     `json:"path"`
	Kind   string     `json:"kind"`   // "data" or "recovery"
	State  string     `json:"state"`  // "damaged", "missing" or "misnamed"
	Ranges [][2]int64 `json:"ranges"` // damaged byte ranges [start, end) of the file
	// Source: the file found holding the volume, when not Path (names
	// swapped or changed).
	Source     string `json:"source,omitempty"`
	Repairable bool   `json:"repairable"`
}

func (r *recoveryCheck) json() *recoveryJSON {
	if r == nil {
		return nil
	}
	j := &recoveryJSON{Volumes: r.paths, Damaged: []recoveryVolumeJSON{}}
	if !r.usable() {
		j.Error = r.err.Error()
		return j
	}
	j.Intact, j.Repairable = r.rep.Intact(), r.rep.Repairable
	for _, v := range r.rep.Volumes {
		if v.State == recovery.OK {
			continue
		}
		vj := recoveryVolumeJSON{Path: v.Path, Kind: "data", State: v.State.String(), Ranges: [][2]int64{}, Repairable: v.Repairable}
		if v.Source != v.Path {
			vj.Source = v.Source
		}
		if v.Recovery {
			vj.Kind = "recovery"
		}
		for _, rg := range v.Damaged {
			vj.Ranges = append(vj.Ranges, [2]int64{rg.Off, rg.End})
		}
		j.Damaged = append(j.Damaged, vj)
	}
	return j
}

func indexState(r *reader.VerifyReport) string {
	if r.IndexOK {
		return "intact"
	}
	return "damaged"
}

func writeVerifyText(out io.Writer, u *units, archive string, a *reader.Archive, r *reader.VerifyReport) {
	for _, v := range r.StrayVolumes {
		fmt.Fprintf(out, "not part of the archive (after its last volume, left out): %s\n", termsafe.Name(v))
	}
	if r.Intact() {
		fmt.Fprintf(out, "%s: intact: %s, %s stored (%s decoded) in %s, index checked\n",
			termsafe.Name(archive), counted(r.Blocks, "block", "blocks"), u.size(r.StoredBytes), u.size(r.RawBytes), counted(len(a.Volumes()), "volume", "volumes"))
		return
	}
	for _, v := range r.MissingVolumes {
		fmt.Fprintf(out, "missing volume: %s\n", termsafe.Name(v))
	}
	for _, v := range r.DamagedVolumes {
		fmt.Fprintf(out, "damaged volume: %s\n", termsafe.Name(v.Error()))
	}
	if !r.IndexOK {
		fmt.Fprintf(out, "damaged index: %s\n", termsafe.Name(fmt.Sprint(r.IndexErr)))
	}
	for _, be := range r.Damaged {
		fmt.Fprintf(out, "damaged block: %s\n", termsafe.Name(be.Error()))
	}
	for _, f := range r.AffectedFiles {
		fmt.Fprintf(out, "damaged file: %s\n", termsafe.Name(f))
	}
}

// verifyJSON is `verify --json`'s output; a stable interface documented in
// README.md: add fields, never rename or remove them.
type verifyJSON struct {
	Intact         bool          `json:"intact"`
	Blocks         int64         `json:"blocks"`
	StoredBytes    int64         `json:"stored_bytes"`
	RawBytes       int64         `json:"raw_bytes"`
	IndexOK        bool          `json:"index_ok"`
	IndexError     string        `json:"index_error,omitempty"`
	MissingVolumes []string      `json:"missing_volumes"`
	DamagedVolumes []string      `json:"damaged_volumes"` // "NAME.NNN: what is wrong" (header, length)
	StrayVolumes   []string      `json:"stray_volumes"`   // files named past the last volume, left out
	DamagedBlocks  []blockJSON   `json:"damaged_blocks"`
	AffectedFiles  []string      `json:"affected_files"`
	Recovery       *recoveryJSON `json:"recovery,omitempty"` // only when recovery volumes exist
}

type blockJSON struct {
	Block      uint32 `json:"block"`
	Frame      uint32 `json:"frame"`
	Volume     string `json:"volume"`
	LastVolume string `json:"last_volume,omitempty"`
	Error      string `json:"error"`
}

func writeVerifyJSON(out io.Writer, r *reader.VerifyReport, rec *recoveryCheck) error {
	v := verifyJSON{
		Intact: r.Intact() && rec.intact(), Recovery: rec.json(), Blocks: r.Blocks, StoredBytes: r.StoredBytes, RawBytes: r.RawBytes,
		IndexOK: r.IndexOK, MissingVolumes: append([]string{}, r.MissingVolumes...),
		DamagedBlocks: []blockJSON{}, AffectedFiles: append([]string{}, r.AffectedFiles...),
		DamagedVolumes: []string{}, StrayVolumes: append([]string{}, r.StrayVolumes...),
	}
	for _, e := range r.DamagedVolumes {
		v.DamagedVolumes = append(v.DamagedVolumes, e.Error())
	}
	if r.IndexErr != nil {
		v.IndexError = r.IndexErr.Error()
	}
	for _, b := range r.Damaged {
		v.DamagedBlocks = append(v.DamagedBlocks, blockJSON{b.Block, b.Frame, b.Volume, b.LastVolume, fmt.Sprint(b.Err)})
	}
	return encodeJSON(out, v)
}

func encodeJSON(out io.Writer, v verifyJSON) error {
	e := json.NewEncoder(out)
	e.SetIndent("", "  ")
	return e.Encode(v)
}
