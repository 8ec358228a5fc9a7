package recovery

import (
	"fmt"
	"math"
	"slices"
)

// Shard sizes: 64 KiB, halved (down to 4 KiB) while the set has fewer than
// minShardsPerSet shards, so that small archives still spread over many
// stripes instead of being one padded shard.
const (
	maxShardSize     = 64 << 10
	minShardSize     = 4 << 10
	minShardsPerSet  = 1024
	maxStripeShards  = 256 // GF(2^8) Reed-Solomon: k + m ≤ 256
	maxParityShards  = 16  // per stripe: the encoding cost per byte grows with m
	maxDataVolumes   = 1 << 20
	maxBaseLen       = 4096
	maxTotalShards   = 1 << 31
	percentPrecision = 100 // Percent is used in hundredths of a percent
	// maxAddStripe is the largest stripe Add writes, in bytes.
	maxAddStripe = maxStripeShards * maxShardSize
)

// geometry is how a set of data volumes is cut into shards and stripes,
// and where each parity shard lives. Everything in it follows from the
// header's fields.
type geometry struct {
	shardSize int
	stripes   int // T
	k, m      int // data and parity shards per stripe
	perVol    int // parity shards per recovery volume
	sizes     []int64
	first     []int64 // first[i] = global index of volume i's first shard; first[N] = D
}

func (g *geometry) dataShards() int64   { return g.first[len(g.sizes)] }
func (g *geometry) parityShards() int64 { return int64(g.stripes) * int64(g.m) }
func (g *geometry) recoveryCount() int {
	return int((g.parityShards() + int64(g.perVol) - 1) / int64(g.perVol))
}

// paritiesIn is how many parity shards recovery volume v (0-based) holds.
func (g *geometry) paritiesIn(v int) int {
	return int(min(int64(g.perVol), g.parityShards()-int64(v)*int64(g.perVol)))
}

// shardsOf is how many shards a data volume of size bytes is cut into.
func shardsOf(size int64, shardSize int) int64 {
	return (size + int64(shardSize) - 1) / int64(shardSize)
}

func newGeometry(sizes []int64, shardSize, stripes, k, m, perVol int) (*geometry, error) {
	g := &geometry{shardSize: shardSize, stripes: stripes, k: k, m: m, perVol: perVol, sizes: sizes}
	if shardSize < 64 || shardSize > 1<<26 || shardSize%64 != 0 {
		return nil, fmt.Errorf("shard size %d out of range", shardSize)
	}
	if len(sizes) == 0 || len(sizes) > maxDataVolumes {
		return nil, fmt.Errorf("%d data volumes out of range", len(sizes))
	}
	g.first = make([]int64, len(sizes)+1)
	for i, s := range sizes {
		if s <= 0 || s > math.MaxInt64/2 {
			return nil, fmt.Errorf("data volume %d: size %d out of range", i+1, s)
		}
		g.first[i+1] = g.first[i] + shardsOf(s, shardSize)
		if g.first[i+1] > maxTotalShards {
			return nil, fmt.Errorf("more than %d shards", maxTotalShards)
		}
	}
	d := g.dataShards()
	if k < 1 || m < 1 || k+m > maxStripeShards || stripes < 1 || int64(stripes) > d {
		return nil, fmt.Errorf("stripes %d of %d+%d shards out of range", stripes, k, m)
	}
	// k is exactly the stripe length the round-robin assignment needs.
	if int64(k) != (d+int64(stripes)-1)/int64(stripes) {
		return nil, fmt.Errorf("%d data shards per stripe do not fit %d shards in %d stripes", k, d, stripes)
	}
	if perVol < 1 || int64(perVol) > g.parityShards() || g.parityShards()+d > maxTotalShards {
		return nil, fmt.Errorf("%d parity shards per recovery volume out of range", perVol)
	}
	return g, nil
}

// plan chooses the geometry for data volumes of the given sizes and a
// parity share of pct hundredths of a percent (1 … 10000). The rules are
// docs/FORMAT.md's; they are deterministic so that the same set and
// percentage always give the same recovery volumes.
func plan(sizes []int64, pct int, headerFixed int64) (*geometry, error) {
	if pct < 1 || pct > 100*percentPrecision {
		return nil, fmt.Errorf("recovery share %d.%02d%% out of range (0.01%% to 100%%)", pct/100, pct%100)
	}
	var total int64
	for _, s := range sizes {
		total += s
	}
	shard := maxShardSize
	for shard > minShardSize && total/int64(shard) < minShardsPerSet {
		shard /= 2
	}
	var d, cmax int64
	for _, s := range sizes {
		c := shardsOf(s, shard)
		d += c
		cmax = max(cmax, c)
	}
	if d == 0 {
		return nil, fmt.Errorf("empty volume set")
	}
	// The fewest stripes (the longest codewords: damage spread at random is
	// then closest to its average in every stripe) such that each stripe's
	// parity covers pct of its data and the stripes' parity together
	// covers the largest volume, with at most maxParityShards per stripe.
	var t, k, m int64
	for t = 1; ; t++ {
		k = (d + t - 1) / t
		m = max(1, (k*int64(pct)+100*percentPrecision-1)/(100*percentPrecision), (cmax+t-1)/t)
		if m <= maxParityShards && k+m <= maxStripeShards {
			break
		}
	}
	p := t * m
	// Recovery volumes are at most as large as the data volumes (one, when
	// the set is one volume), but a header copy is at most a quarter of one.
	perVol := p
	if len(sizes) > 1 {
		h := headerFixed + 8*(int64(len(sizes))+d+p) + 8
		avail := max(sizes[0]-2*h-trailerSize, 2*h)
		most := max(1, min(p, avail/int64(shard)))
		// as many volumes as that needs, evenly filled (no runt last one)
		r := (p + most - 1) / most
		perVol = (p + r - 1) / r
	}
	return newGeometry(slices.Clone(sizes), shard, int(t), int(k), int(m), int(perVol))
}

// locate maps global data shard s to its volume (0-based) and file offset.
func (g *geometry) locate(s int64) (vol int, off int64) {
	vol, found := slices.BinarySearch(g.first, s)
	if !found {
		vol--
	}
	return vol, (s - g.first[vol]) * int64(g.shardSize)
}

// dataLen is how many of data shard s's bytes lie in its volume (the rest
// of the shard is zero padding).
func (g *geometry) dataLen(s int64) int {
	vol, off := g.locate(s)
	return int(min(int64(g.shardSize), g.sizes[vol]-off))
}

// stripeOf and rowOf place global data shard s: stripe s mod T, position s div T.
func (g *geometry) stripeOf(s int64) int { return int(s % int64(g.stripes)) }

// dataShard is the global index of stripe t's j-th data shard, or -1 when
// that position is past the last shard (a zero shard that is not stored).
func (g *geometry) dataShard(t, j int) int64 {
	s := int64(j)*int64(g.stripes) + int64(t)
	if s >= g.dataShards() {
		return -1
	}
	return s
}

// parityShard is the global index of stripe t's r-th parity shard: parity
// shards are numbered row by row (p = r·T + t), so each recovery volume holds
// whole or partial rows spread evenly over the stripes.
func (g *geometry) parityShard(t, r int) int64 { return int64(r)*int64(g.stripes) + int64(t) }

// parityLoc maps parity shard p to its recovery volume (0-based) and the
// shard's offset in that file (after the first header copy of h bytes).
func (g *geometry) parityLoc(p int64, h int64) (vol int, off int64) {
	return int(p / int64(g.perVol)), h + (p%int64(g.perVol))*int64(g.shardSize)
}
