package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"arc/format"
	"arc/internal/termsafe"
	"arc/reader"
	"arc/recovery"

	"github.com/spf13/cobra"
)

func newInfoCommand(u *units) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "info ARCHIVE",
		Short: "Show an archive's volumes, frames, blocks, parameters and dedup figures",
		Long: `Show what ARCHIVE (any of its volumes) holds and how it was made: its volumes
and their sizes, frames and blocks per codec, the index, the input size, what
each dedup layer and compression saved, the ratio, the recovery volumes (from
their headers) and the parameters given to 'arcpack create'. Reads only the
footer and the index, not the data.
--json writes the same as one object with exact sizes (docs/CLI.md lists its
fields).`,
		Example: `  arcpack info backup.001
  arcpack info backup.001 --json | jq .ratio`,
		Args: exactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			return writingFailed(runInfo(outWriter{c.OutOrStdout()}, u, args[0], asJSON), "info", args[0], "report")
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "write one JSON object (fields: docs/CLI.md)")
	return c
}

// infoJSON is `info --json`'s output; its fields are a stable interface
// documented in docs/CLI.md: add fields, never rename or remove them.
type infoJSON struct {
	ID           string            `json:"id"`
	Version      int               `json:"format_version"`
	Volumes      []volumeJSON      `json:"volumes"`
	VolumeSize   int64             `json:"volume_size"`
	ArchiveBytes int64             `json:"archive_bytes"`
	IndexBytes   uint64            `json:"index_bytes"`
	IndexRaw     uint64            `json:"index_raw_bytes"`
	Frames       int               `json:"frames"`
	Blocks       int               `json:"blocks"`
	Codecs       map[string]codecJ `json:"codecs"`
	Entries      int               `json:"entries"`
	Inodes       int               `json:"inodes"`
	UniqueBytes  uint64            `json:"unique_bytes"`
	StoredBytes  uint64            `json:"stored_bytes"`
	Params       map[string]string `json:"params"`
	Stats        map[string]uint64 `json:"stats"`
	Ratio        float64           `json:"ratio"` // input-bytes / archive_bytes
	Recovery     *infoRecoveryJSON `json:"recovery,omitempty"`
}

// infoRecoveryJSON is what the archive's recovery volumes hold, from
// their headers (recovery.Describe); present only when there are any.
type infoRecoveryJSON struct {
	Volumes      []string `json:"volumes"`
	Missing      []string `json:"missing"`
	Error        string   `json:"error,omitempty"` // why they cannot be used
	ParityBytes  int64    `json:"parity_bytes"`
	ShardSize    int      `json:"shard_size"`
	Stripes      int      `json:"stripes"`
	DataShards   int      `json:"data_shards"`
	ParityShards int      `json:"parity_shards"`
}

type volumeJSON struct {
	Path    string `json:"path"`
	Size    int64  `json:"size"`
	Missing bool   `json:"missing"`
	Damaged string `json:"damaged,omitempty"` // what is wrong with it as a whole (header, length)
}

type codecJ struct {
	Blocks      int    `json:"blocks"`
	RawBytes    uint64 `json:"raw_bytes"`
	StoredBytes uint64 `json:"stored_bytes"`
}

var codecNames = map[uint8]string{format.CodecRaw: "raw", format.CodecLZ4: "lz4", format.CodecLZ4X: "lz4x", format.CodecZstd: "zstd"}

func runInfo(out io.Writer, u *units, archive string, asJSON bool) error {
	a, err := reader.Open(archive, reader.Options{})
	if err != nil {
		return openError(archive, err)
	}
	defer a.Close()
	x := a.Index()
	ft := a.Footer()
	in := infoJSON{
		ID: ft.ID.String(), Version: int(ft.Version), VolumeSize: a.VolumeSize(),
		IndexBytes: ft.IndexSize, IndexRaw: ft.IndexRawSize,
		Frames: len(x.Frames), Blocks: x.Blocks.Count(), Codecs: map[string]codecJ{},
		Entries: x.Dirents.Count(), Inodes: x.Inodes.Count(),
		UniqueBytes: x.UniqueSize(), StoredBytes: x.DataSize(),
		Params: map[string]string{}, Stats: map[string]uint64{},
	}
	missing := map[string]bool{}
	for _, v := range a.MissingVolumes() {
		missing[v] = true
	}
	// Damage to a volume as a whole (a short one, a broken header): the
	// reader's line for it, less the volume's name.
	vols := a.Volumes()
	damaged := map[string]string{}
	for _, err := range a.DamagedVolumes() {
		for _, v := range vols { // by whole name: a path may hold ": "
			if why, ok := strings.CutPrefix(err.Error(), v+": "); ok {
				damaged[v] = why
			}
		}
	}
	for i, v := range vols {
		var size int64
		if st, err := os.Stat(v); err == nil && !missing[v] {
			size = st.Size()
		}
		in.Volumes = append(in.Volumes, volumeJSON{v, size, missing[v], damaged[v]})
		// The archive's size is what was written: every volume but the
		// last (which holds the index just read) was exactly volume_size
		// long, and counting a missing or truncated one as less would
		// inflate the ratio.
		if i < len(vols)-1 {
			size = in.VolumeSize
		}
		in.ArchiveBytes += size
	}
	for i := 0; i < x.Blocks.Count(); i++ {
		name := codecNames[x.Blocks.Codec[i]]
		c := in.Codecs[name]
		c.Blocks++
		c.RawBytes += uint64(x.Blocks.RawSize[i])
		c.StoredBytes += uint64(x.Blocks.StoredSize[i])
		in.Codecs[name] = c
	}
	for _, kv := range x.Params {
		in.Params[kv.Key] = kv.Value
	}
	for _, s := range x.Stats {
		in.Stats[s.Key] = s.Value
	}
	if in.ArchiveBytes > 0 {
		in.Ratio = float64(x.Stat("input-bytes")) / float64(in.ArchiveBytes)
	}
	// Their headers only: info reads no data.
	if rec, err := recovery.Describe(archive); rec != nil {
		in.Recovery = &infoRecoveryJSON{Volumes: rec.Volumes, Missing: append([]string{}, rec.Missing...), ParityBytes: rec.ParityBytes,
			ShardSize: rec.ShardSize, Stripes: rec.Stripes, DataShards: rec.DataShards, ParityShards: rec.Parity}
	} else if err != nil {
		found, _ := recovery.Find(archive)
		in.Recovery = &infoRecoveryJSON{Volumes: found, Missing: []string{}, Error: err.Error()}
	}
	if asJSON {
		e := json.NewEncoder(out)
		e.SetIndent("", "  ")
		return e.Encode(in)
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	p := func(k, f string, a ...any) {
		if k != "" {
			k += ":"
		}
		fmt.Fprintf(tw, "%s\t%s\n", k, fmt.Sprintf(f, a...))
	}
	p("archive id", "%s (format v%d)", in.ID, in.Version)
	vs := "one volume"
	if in.VolumeSize > 0 {
		vs = u.size(in.VolumeSize) + " each"
	}
	p("volumes", "%d, %s in all (%s)", len(in.Volumes), u.size(in.ArchiveBytes), vs)
	for _, v := range in.Volumes {
		if v.Missing {
			p("", "%s  missing", termsafe.Name(v.Path))
			continue
		}
		if v.Damaged != "" {
			p("", "%s  %s  damaged: %s", termsafe.Name(v.Path), u.size(v.Size), termsafe.Name(v.Damaged))
			continue
		}
		p("", "%s  %s", termsafe.Name(v.Path), u.size(v.Size))
	}
	// The paths by type, from the index itself (the writer's counters
	// differ between a scan and a tar stream), so that they add up.
	var files, dirs, symlinks, others int
	for d := 1; d < x.Dirents.Count(); d++ {
		switch x.Inodes.Mode[x.Dirents.Inode[d]] & format.ModeType {
		case format.ModeReg:
			files++
		case format.ModeDir:
			dirs++
		case format.ModeLink:
			symlinks++
		default:
			others++
		}
	}
	p("entries", "%d paths: the root, %s, %s, %s, %s; %d inodes (and %d more names of hardlinked ones)",
		in.Entries, counted(files, "file", "files"), counted(dirs, "dir", "dirs"), counted(symlinks, "symlink", "symlinks"),
		counted(others, "other", "others"), in.Inodes, in.Entries-in.Inodes)
	p("frames", "%d", in.Frames)
	p("blocks", "%d", in.Blocks)
	for _, id := range []uint8{format.CodecRaw, format.CodecLZ4, format.CodecLZ4X, format.CodecZstd} {
		if c, ok := in.Codecs[codecNames[id]]; ok {
			p("", "%-5s %d blocks, %s -> %s", codecNames[id], c.Blocks, u.size(int64(c.RawBytes)), u.size(int64(c.StoredBytes)))
		}
	}
	p("index", "%s (%s decoded)", u.size(int64(in.IndexBytes)), u.size(int64(in.IndexRaw)))
	inb := int64(x.Stat("input-bytes"))
	p("input", "%s in %s", u.size(inb), counted(x.Stat("files"), "file", "files"))
	if h := x.Stat("hole-bytes"); h > 0 {
		// Not a saving: holes are neither read nor in the input (a sparse
		// file's data is), so they stay out of "saved by", whose lines
		// the input less each is what the next layer saw.
		p("holes", "%s more in sparse files, kept as holes (not in the input)", u.usize(h))
	}
	if ex, sk := x.Stat("excluded"), x.Stat("skipped"); ex > 0 || sk > 0 {
		// What is not in the archive, and why (the params below say by
		// which patterns).
		p("left out", "%d path(s) excluded (patterns, tags), %d skipped (unreadable)", ex, sk)
	}
	// What each layer saved, in the order the writer applies them: the
	// input less each line is what the next layer saw.
	p("saved by", "whole files  %s (%d duplicate files)", u.size(int64(x.Stat("dup-bytes"))), x.Stat("dup-files"))
	p("", "chunks       %s (%d references)", u.size(int64(x.Stat("chunk-bytes"))), x.Stat("chunk-refs"))
	p("", "segments     %s (%d references)", u.size(int64(x.Stat("segment-bytes"))), x.Stat("segment-refs"))
	p("", "compression  %s (%s unique data stored as %s)", u.size(max(int64(in.UniqueBytes)-int64(in.StoredBytes), 0)),
		u.size(int64(in.UniqueBytes)), u.size(int64(in.StoredBytes)))
	p("ratio", "%.2f (input / archive bytes)", in.Ratio)
	switch r := in.Recovery; {
	case r != nil && r.Error != "":
		p("recovery", "%d file(s), not usable: %s", len(r.Volumes), termsafe.Name(r.Error))
	case r != nil:
		p("recovery", "%d volume(s), %s of parity: repair rebuilds up to %d damaged shard(s) of %s in each of %d stripes of %d",
			len(r.Volumes), u.size(r.ParityBytes), r.ParityShards, u.size(int64(r.ShardSize)), r.Stripes, r.DataShards+r.ParityShards)
		lost := map[string]bool{}
		for _, m := range r.Missing {
			lost[m] = true
		}
		for _, v := range r.Volumes {
			if lost[v] {
				p("", "%s  missing", termsafe.Name(v))
			} else {
				p("", "%s", termsafe.Name(v))
			}
		}
	default:
		p("recovery", "none (%s writes them)", recoveryAddHint(archive, false))
	}
	for _, kv := range x.Params {
		p("param "+termsafe.Name(kv.Key), "%s", termsafe.Name(kv.Value))
	}
	return tw.Flush()
}
