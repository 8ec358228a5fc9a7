// Package segment finds long repeats of earlier unique-stream bytes
// ("long-distance segments"), as zstd's long-distance matcher does, so that
// the writer can store a repeat as an extent pointing at bytes already in the
// archive instead of storing them again.
//
// A gear hash rolls over the data; positions whose hash has its top
// SampleBits bits clear are sampled (about one in 2^SampleBits), so the same
// content is sampled at the same places wherever it occurs. Sampled positions
// of stored bytes go into a bounded, bucketed table with a 24-bit check per
// entry to reject most false candidates without touching the history. A
// candidate is then verified byte by byte against the retained history and
// extended both ways; repeats of at least MinLen bytes become references.
//
// Near-identical binaries are the case this is for: their repeats are long
// but content-defined chunk boundaries rarely line up in them.
package segment

import (
	"encoding/binary"
	"fmt"
	"math/bits"
	"unsafe"

	gear64 "arc/writer/gear"

	"golang.org/x/sys/unix"
)

// Config bounds the matcher. Memory is 8 bytes × 4 ways << TableBits for the
// table plus History bytes of retained stream.
type Config struct {
	MinLen int // shortest repeat worth a reference
	// NearMin, when below MinLen, is the shortest repeat taken when it
	// starts within NearDist bytes of where the previous reference ended:
	// a reader of the file then decodes the same blocks it decodes anyway,
	// so the short reference saves bytes without costing reads. 0 = MinLen.
	NearMin    int
	NearDist   uint64
	SampleBits uint   // one position in 2^SampleBits is sampled
	TableBits  uint   // 2^TableBits buckets of 4 entries
	History    int64  // stream bytes kept for verification; older candidates are ignored
	chunk      uint64 // history chunk size (tests shrink it)
}

// DefaultConfig is tuned on the Go toolchains tree (see docs/FORMAT.md).
func DefaultConfig() Config {
	return Config{MinLen: 192, NearMin: 128, NearDist: 4 << 20, SampleBits: 6, TableBits: 20, History: 256 << 20, chunk: 8 << 20}
}

// Validate checks a configuration for use (MinLen < 0 means off and is
// not checked further).
func (c Config) Validate() error {
	if c.MinLen < 0 {
		return nil
	}
	if c.MinLen < 2*window || c.MinLen > 1<<30 {
		return fmt.Errorf("segment minimum %d out of range (%d bytes to 1 GiB)", c.MinLen, 2*window)
	}
	if c.NearMin != 0 && (c.NearMin < 2*window || c.NearMin > c.MinLen) {
		return fmt.Errorf("segment near minimum %d out of range (%d bytes to the minimum, %d)", c.NearMin, 2*window, c.MinLen)
	}
	if c.History < 1<<20 || c.History > 1<<40 {
		return fmt.Errorf("segment history %d out of range (1 MiB to 1 TiB)", c.History)
	}
	if c.SampleBits < 1 || c.SampleBits > 16 || c.TableBits < 8 || c.TableBits > 30 || c.SampleBits+c.TableBits > 40 {
		return fmt.Errorf("segment sampling 1/2^%d or table 2^%d out of range", c.SampleBits, c.TableBits)
	}
	return nil
}

// Sample is a sampled position (see gear.Samples).
type Sample = gear64.Sample

// window is how many bytes a sample's hash depends on.
const window = gear64.Window

// Samples computes the sampled positions of data (gear.Samples). It is pure,
// so the writer runs it on its reader goroutines in parallel.
func Samples(data []byte, sampleBits uint, dst []Sample) []Sample {
	return gear64.Samples(data, sampleBits, dst)
}

// ExpectedSamples is room for the samples of n bytes (gear.ExpectedSamples).
func ExpectedSamples(n int, sampleBits uint) int { return gear64.ExpectedSamples(n, sampleBits) }

const ways = 4

// entry is a table slot: the low 40 bits of a sample's stream offset and
// 24 bits of its hash as a check; 0 is an empty slot. 8 bytes instead of a
// struct's 16 halve the table (fresh memory costs a fault per page). An
// offset is read back as the latest one at or before the stream's end with
// those low bits; one more than 2^40 bytes old reads back wrong, which only
// makes a false candidate that verification rejects.
type entry uint64

const (
	entryPosBits = 40
	entryPosMask = 1<<entryPosBits - 1
)

func makeEntry(pos uint64, hash uint64) entry {
	return entry(pos&entryPosMask | hash<<entryPosBits)
}

// entryPos reads an entry's stream offset back (see entry); ok is false
// when it lies outside the retained history.
func (x *Index) entryPos(e entry) (pos uint64, ok bool) {
	pos = x.end&^entryPosMask | uint64(e)&entryPosMask
	if pos > x.end {
		if pos < 1<<entryPosBits {
			return 0, false // would be before the stream's start
		}
		pos -= 1 << entryPosBits
	}
	return pos, pos >= x.first
}

// check is the part of a sample's hash an entry keeps.
func check(hash uint64) uint64 { return hash << entryPosBits >> entryPosBits }

// Index holds the table and the retained history.
type Index struct {
	cfg      Config
	table    []entry
	tableMem []byte // the table's mapping, when off the heap
	chunks   [][]byte
	spare    [][]byte // evicted chunks, kept for reuse
	first    uint64   // stream offset of chunks[0][0]
	end      uint64   // stream length seen so far
	lastRef  uint64   // stream offset where the latest reference ends
	Matched  uint64   // bytes placed as references
	Refs     uint64   // references placed
}

// New returns an empty index for a stream that starts at offset 0.
func New(cfg Config) *Index {
	if cfg.chunk == 0 {
		cfg.chunk = 4 << 20
	}
	x := &Index{cfg: cfg}
	n := ways << cfg.TableBits
	if mem := offHeap(n * int(unsafe.Sizeof(entry(0)))); mem != nil {
		x.tableMem = mem
		x.table = unsafe.Slice((*entry)(unsafe.Pointer(&mem[0])), n)
	} else {
		x.table = make([]entry, n)
	}
	return x
}

// Close returns the table and history memory. The index must not be used after.
func (x *Index) Close() {
	for _, c := range append(x.chunks, x.spare...) {
		freeOffHeap(c)
	}
	x.chunks, x.spare = nil, nil
	if x.tableMem != nil {
		freeOffHeap(x.tableMem)
		x.tableMem, x.table = nil, nil
	}
}

// offHeap maps anonymous memory outside the Go heap: the history and table
// are large and long-lived, and on the heap they would double the
// collector's target and be scanned for nothing. nil means use the heap.
func offHeap(n int) []byte {
	b, err := unix.Mmap(-1, 0, n, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
	if err != nil {
		return nil
	}
	// Huge pages where the kernel offers them on request: filling the
	// history otherwise costs a page fault every 4 KiB.
	_ = unix.Madvise(b, unix.MADV_HUGEPAGE)
	return b
}

func freeOffHeap(b []byte) {
	if cap(b) > 0 {
		unix.Munmap(b[:cap(b)])
	}
}

// End is the stream length the index has seen.
func (x *Index) End() uint64 { return x.end }

// bucket takes the hash bits just below the SampleBits that sampling
// zeroed; the check value is the low 24 bits, independent of both as long
// as SampleBits+TableBits <= 40 (Validate).
func (x *Index) bucket(h uint64) int {
	return int((h<<x.cfg.SampleBits)>>(64-x.cfg.TableBits)) * ways
}

// Place splits data, about to be appended at the end of the stream, into
// literal runs and references. lit receives runs to append (the index
// retains them as history and records their samples); ref receives
// references (offset and length in the stream, pointing only at bytes
// appended before this call). samples must be Samples(data, cfg.SampleBits).
func (x *Index) Place(data []byte, samples []Sample, lit func([]byte) error, ref func(off, n uint64) error) error {
	litStart := 0
	si, cur := 0, 0
	for si < len(samples) {
		s := samples[si]
		p := int(s.Pos)
		if p < litStart {
			si++
			continue
		}
		bestOff, bestBack, bestFwd := uint64(0), 0, 0
		b := x.bucket(s.Hash)
		want := check(s.Hash)
		for w := 0; w < ways; w++ {
			e := x.table[b+w]
			if e == 0 || uint64(e)>>entryPosBits != want {
				continue
			}
			pos, ok := x.entryPos(e)
			if !ok {
				continue
			}
			fwd := x.matchForward(pos, data[p:])
			back := x.matchBackward(pos, data[litStart:p])
			// The longest repeat worth a reference; between two as long,
			// the one nearer the previous reference.
			n, from := back+fwd, pos-uint64(back)
			if !x.worth(n, from) {
				continue
			}
			if best := bestBack + bestFwd; n > best || n == best && x.dist(from) < x.dist(bestOff-uint64(bestBack)) {
				bestOff, bestBack, bestFwd = pos, back, fwd
			}
		}
		if bestBack+bestFwd == 0 {
			si++
			continue
		}
		start := p - bestBack
		if err := x.literal(data[litStart:start], litStart, samples, &cur, lit); err != nil {
			return err
		}
		n := uint64(bestBack + bestFwd)
		if err := ref(bestOff-uint64(bestBack), n); err != nil {
			return err
		}
		x.Matched += n
		x.Refs++
		x.lastRef = bestOff - uint64(bestBack) + n
		litStart = p + bestFwd
		si++
	}
	return x.literal(data[litStart:], litStart, samples, &cur, lit)
}

// worth reports whether a repeat of n bytes from stream offset off becomes
// a reference: MinLen bytes anywhere, NearMin where it starts within
// NearDist of the end of the previous reference.
func (x *Index) worth(n int, off uint64) bool {
	if n >= x.cfg.MinLen {
		return true
	}
	return x.cfg.NearMin > 0 && n >= x.cfg.NearMin && x.Refs > 0 && x.dist(off) <= x.cfg.NearDist
}

// dist is how far stream offset off is from the end of the previous reference.
func (x *Index) dist(off uint64) uint64 {
	if off < x.lastRef {
		return x.lastRef - off
	}
	return off - x.lastRef
}

// literal appends a run of data (starting at index at of the Place call's
// data): it hands the run to lit, retains it as history and inserts the
// samples whose whole hash window lies inside it (*cur walks samples once
// per Place call).
func (x *Index) literal(run []byte, at int, samples []Sample, cur *int, lit func([]byte) error) error {
	if len(run) == 0 {
		return nil
	}
	if err := lit(run); err != nil {
		return err
	}
	base := x.end
	lo, hi := at, at+len(run)
	for ; *cur < len(samples) && int(samples[*cur].Pos) <= hi; *cur++ {
		s := samples[*cur]
		p := int(s.Pos)
		if p-window < lo {
			continue
		}
		// Newest first: the bucket shifts down and its oldest entry
		// falls out. A round-robin index per bucket would be another
		// cache miss per insert, in an array of its own.
		bk := x.table[x.bucket(s.Hash):][:ways]
		copy(bk[1:], bk[:ways-1])
		bk[0] = makeEntry(base+uint64(p-lo), s.Hash)
	}
	x.retain(run)
	x.end += uint64(len(run))
	return nil
}

// retain appends to the history, dropping the oldest chunks past the limit.
func (x *Index) retain(p []byte) {
	for len(p) > 0 {
		if len(x.chunks) == 0 || uint64(len(x.chunks[len(x.chunks)-1])) == x.cfg.chunk {
			var c []byte
			if n := len(x.spare); n > 0 {
				// Reuse an evicted chunk: its pages are already
				// mapped, where a fresh mapping faults on every page.
				c, x.spare = x.spare[n-1], x.spare[:n-1]
			} else if c = offHeap(int(x.cfg.chunk)); c == nil {
				c = make([]byte, x.cfg.chunk)
			}
			x.chunks = append(x.chunks, c[:0])
		}
		c := &x.chunks[len(x.chunks)-1]
		n := min(len(p), int(x.cfg.chunk)-len(*c))
		*c = append(*c, p[:n]...)
		p = p[n:]
	}
	for int64(len(x.chunks)-1)*int64(x.cfg.chunk) > x.cfg.History && len(x.chunks) > 1 {
		x.first += uint64(len(x.chunks[0]))
		x.spare = append(x.spare, x.chunks[0])
		x.chunks[0] = nil
		x.chunks = x.chunks[1:]
	}
}

// at returns the retained bytes from stream offset off to the end of its chunk.
func (x *Index) at(off uint64) []byte {
	if off < x.first || off >= x.end {
		return nil
	}
	rel := off - x.first
	c := x.chunks[rel/x.cfg.chunk]
	return c[rel%x.cfg.chunk:]
}

// matchForward counts equal bytes of the history from off and of p.
func (x *Index) matchForward(off uint64, p []byte) int {
	n := 0
	for len(p) > 0 {
		h := x.at(off)
		if len(h) == 0 {
			break
		}
		m := commonPrefix(h, p)
		n += m
		if m < len(h) && m < len(p) {
			break
		}
		off += uint64(m)
		p = p[m:]
	}
	return n
}

// matchBackward counts equal bytes of the history before off and at the end of p.
func (x *Index) matchBackward(off uint64, p []byte) int {
	n := 0
	for len(p) > 0 && off > x.first {
		rel := off - x.first
		ci, co := rel/x.cfg.chunk, rel%x.cfg.chunk
		if co == 0 {
			ci, co = ci-1, x.cfg.chunk
		}
		h := x.chunks[ci][:co]
		m := commonSuffix(h, p)
		n += m
		if m < len(h) && m < len(p) {
			break
		}
		off -= uint64(m)
		p = p[:len(p)-m]
	}
	return n
}

func commonPrefix(a, b []byte) int {
	n := min(len(a), len(b))
	i := 0
	for ; i+8 <= n; i += 8 {
		if d := binary.LittleEndian.Uint64(a[i:]) ^ binary.LittleEndian.Uint64(b[i:]); d != 0 {
			return i + bits.TrailingZeros64(d)/8
		}
	}
	for ; i < n && a[i] == b[i]; i++ {
	}
	return i
}

func commonSuffix(a, b []byte) int {
	n := min(len(a), len(b))
	i := 0
	for ; i+8 <= n; i += 8 {
		x := binary.BigEndian.Uint64(a[len(a)-i-8:]) ^ binary.BigEndian.Uint64(b[len(b)-i-8:])
		if x != 0 {
			return i + bits.TrailingZeros64(x)/8
		}
	}
	for ; i < n && a[len(a)-1-i] == b[len(b)-1-i]; i++ {
	}
	return i
}
