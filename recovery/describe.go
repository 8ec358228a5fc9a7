package recovery

import (
	"errors"
	"fmt"
	"os"
)

// Summary is what an archive's recovery volumes hold, from their headers
// alone: Check reads every byte of them and of the archive.
type Summary struct {
	Volumes     []string // the set's recovery volumes, NAME.r01 …
	Missing     []string // of those, the ones not there
	ParityBytes int64    // parity shard bytes, all volumes together
	ShardSize   int
	Stripes     int
	DataShards  int // per stripe
	Parity      int // parity shards per stripe: how many of each stripe's shards repair can rebuild
}

// Describe reads the recovery volumes of archive (any of its volume names,
// or NAME): nil and no error when it has none; ErrForeign when the ones
// there were made for another archive.
func Describe(archive string) (*Summary, error) {
	base := Base(archive)
	found, err := Find(base)
	if err != nil || len(found) == 0 {
		return nil, err
	}
	h, err := referenceHeader(base, found, readDataFiles(base))
	if err != nil {
		return nil, err
	}
	g := h.g
	s := &Summary{ParityBytes: g.parityShards() * int64(g.shardSize), ShardSize: g.shardSize,
		Stripes: g.stripes, DataShards: g.k, Parity: g.m}
	for v := range h.count {
		p := Name(base, v+1)
		s.Volumes = append(s.Volumes, p)
		if _, err := os.Lstat(p); errors.Is(err, os.ErrNotExist) {
			s.Missing = append(s.Missing, p)
		} else if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
	}
	return s, nil
}
