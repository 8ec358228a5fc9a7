package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"arc/format"
	"arc/reader"

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
Exit 0 when the archive is intact, 1 when damage was found, 2 when ARCHIVE is not an
arc volume or cannot be read at all.`,
		Example: `  arcpack verify backup.001
  arcpack verify backup.004 --progress never && echo intact`,
		Args: exactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			return runVerify(c.OutOrStdout(), u, args[0], progress, asJSON)
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "write the report as one JSON object (see README.md)")
	addProgressFlag(c, &progress)
	return c
}

// notAnArchive reports whether the named file itself cannot serve as a
// volume: it is missing, unreadable or not an arc volume. Other failures
// to open are damage to an archive that is there.
func notAnArchive(path string) error {
	p := path
	if _, _, ok := format.ParseVolumeName(p); !ok {
		if _, err := os.Stat(p); errors.Is(err, fs.ErrNotExist) {
			p = format.VolumeName(p, 1)
		}
	}
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	// A damaged header in a set of volumes is damage, not a foreign file:
	// the other volumes' headers vouch for the set (reader.Open decides).
	inSet := func() bool {
		base, _, ok := format.ParseVolumeName(p)
		if !ok {
			return false
		}
		vols, _ := format.ListVolumes(base)
		return len(vols) > 1
	}
	b := make([]byte, format.VolumeHeaderSize)
	if _, err := io.ReadFull(f, b); err != nil {
		if inSet() {
			return nil
		}
		return fmt.Errorf("%s: %w: shorter than a volume header", p, format.ErrNotArchive)
	}
	if _, err := format.ParseVolumeHeader(b); errors.Is(err, format.ErrNotArchive) || errors.Is(err, format.ErrVersion) {
		if inSet() {
			return nil
		}
		return fmt.Errorf("%s: %w", p, err)
	}
	return nil
}

func runVerify(out io.Writer, u *units, archive, progress string, asJSON bool) error {
	showBar, err := wantProgress(progress)
	if err != nil {
		return err
	}
	if err := notAnArchive(archive); err != nil {
		return &exitError{code: exitFatal, err: fmt.Errorf("verify %s: %w", archive, err)}
	}
	a, err := reader.Open(archive, reader.Options{Prefetch: -1})
	if err != nil {
		return &exitError{code: exitDamage, err: fmt.Errorf("verify %s: damaged: %w", archive, err)}
	}
	defer a.Close()
	b := newBar(showBar, "verifying", int64(a.Index().DataSize()))
	var done int64
	rep, err := a.Verify(reader.VerifyOptions{
		Progress: func(n int64) {
			done += n
			b.update("", done, 0)
		},
	})
	b.done()
	if err != nil {
		return fmt.Errorf("verify %s: %w", archive, err)
	}
	if asJSON {
		if err := writeVerifyJSON(out, rep); err != nil {
			return err
		}
	} else {
		writeVerifyText(out, u, archive, a, rep)
	}
	if rep.Intact() {
		return nil
	}
	return &exitError{code: exitDamage, err: fmt.Errorf("verify %s: damaged: %d bad block(s), %d missing volume(s), index %s; %d file(s) affected",
		archive, len(rep.Damaged), len(rep.MissingVolumes), indexState(rep), len(rep.AffectedFiles))}
}

func indexState(r *reader.VerifyReport) string {
	if r.IndexOK {
		return "intact"
	}
	return "damaged"
}

func writeVerifyText(out io.Writer, u *units, archive string, a *reader.Archive, r *reader.VerifyReport) {
	if r.Intact() {
		fmt.Fprintf(out, "%s: intact: %d blocks, %s stored (%s decoded) in %d volume(s), index checked\n",
			archive, r.Blocks, u.size(r.StoredBytes), u.size(r.RawBytes), len(a.Volumes()))
		return
	}
	for _, v := range r.MissingVolumes {
		fmt.Fprintf(out, "missing volume: %s\n", v)
	}
	for _, v := range r.DamagedVolumes {
		fmt.Fprintf(out, "damaged volume: %s\n", oneLine(v.Error()))
	}
	if !r.IndexOK {
		fmt.Fprintf(out, "damaged index: %s\n", oneLine(fmt.Sprint(r.IndexErr)))
	}
	for _, be := range r.Damaged {
		fmt.Fprintf(out, "damaged block: %s\n", oneLine(be.Error()))
	}
	for _, f := range r.AffectedFiles {
		fmt.Fprintf(out, "damaged file: %s\n", escapeName(f))
	}
}

// verifyJSON is `verify --json`'s output; a stable interface documented in
// README.md: add fields, never rename or remove them.
type verifyJSON struct {
	Intact         bool        `json:"intact"`
	Blocks         int64       `json:"blocks"`
	StoredBytes    int64       `json:"stored_bytes"`
	RawBytes       int64       `json:"raw_bytes"`
	IndexOK        bool        `json:"index_ok"`
	IndexError     string      `json:"index_error,omitempty"`
	MissingVolumes []string    `json:"missing_volumes"`
	DamagedVolumes []string    `json:"damaged_volumes"` // "NAME.NNN: what is wrong" (header, length)
	DamagedBlocks  []blockJSON `json:"damaged_blocks"`
	AffectedFiles  []string    `json:"affected_files"`
}

type blockJSON struct {
	Block  uint32 `json:"block"`
	Frame  uint32 `json:"frame"`
	Volume string `json:"volume"`
	Error  string `json:"error"`
}

func writeVerifyJSON(out io.Writer, r *reader.VerifyReport) error {
	v := verifyJSON{
		Intact: r.Intact(), Blocks: r.Blocks, StoredBytes: r.StoredBytes, RawBytes: r.RawBytes,
		IndexOK: r.IndexOK, MissingVolumes: append([]string{}, r.MissingVolumes...),
		DamagedBlocks: []blockJSON{}, AffectedFiles: append([]string{}, r.AffectedFiles...),
		DamagedVolumes: []string{},
	}
	for _, e := range r.DamagedVolumes {
		v.DamagedVolumes = append(v.DamagedVolumes, e.Error())
	}
	if r.IndexErr != nil {
		v.IndexError = r.IndexErr.Error()
	}
	for _, b := range r.Damaged {
		v.DamagedBlocks = append(v.DamagedBlocks, blockJSON{b.Block, b.Frame, b.Volume, fmt.Sprint(b.Err)})
	}
	e := json.NewEncoder(out)
	e.SetIndent("", "  ")
	return e.Encode(v)
}
