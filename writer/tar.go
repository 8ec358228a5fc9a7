package writer

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"arc/format"

	"github.com/zeebo/blake3"
	"golang.org/x/sync/semaphore"
	"golang.org/x/sys/unix"
)

// CreateFromTar packs the tar stream r (GNU, POSIX ustar and pax, as
// archive/tar reads them) into the archive out, with the same dedup as
// Create. The stream is read once, in its own order: that order is the
// unique-data stream's. Members keep their metadata, pax xattrs
// (SCHILY.xattr and LIBARCHIVE.xattr records), POSIX ACLs (SCHILY.acl text)
// and hardlinks; a member named again later replaces the earlier one, as
// extracting the stream would (but for a directory with entries, which
// only a directory replaces: tar cannot remove it). Directories the
// stream never names are created with mode 0755 and listed as implied
// (format.Index.Implied).
// Pax global headers describe the stream, not a file: their owners, times,
// xattrs and ACLs apply to the members after them that do not set their
// own (applyGlobal). GNU volume labels are passed over; a GNU dumpdir (tar
// --listed-incremental) is a directory.
func CreateFromTar(ctx context.Context, out string, r io.Reader, opt Options) (*Result, error) {
	if opt.Order == OrderSimilar {
		return nil, errors.New("--order similar needs the whole tree before packing; a tar stream is packed in its own order")
	}
	if opt.ExcludeCaches || len(opt.ExcludeIfPresent) > 0 {
		// A tag may come after the rest of its directory in a stream.
		return nil, errors.New("--exclude-caches and --exclude-if-present need a directory's listing; a tar stream has none (use tar's own --exclude-caches or --exclude-tag)")
	}
	setup := func(p *packer) error {
		// The root is implied until the stream names "./".
		// Members keep no path; nodePath joins their names where one is
		// needed. Each kept, the tree held every path the stream spelled
		// out: for a chain thousands of levels deep, about the stream's
		// size.
		root := impliedDir()
		root.parent = -1
		p.nodes = newNodeList(root)
		p.extStart, p.extCount = []uint32{0}, []uint32{0}
		p.tar = &tarTree{children: map[tarKey]int32{}, users: map[uint32]string{}, groups: map[uint32]string{}}
		return nil
	}
	return create(ctx, out, opt, setup, func(p *packer) error { return p.packTar(r) })
}

// tarDev is the device number of the inodes hardlinked members share.
const tarDev = ^uint64(0)

// tarTree is the state of a tree being built from a tar stream.
type tarTree struct {
	// children finds a node by its directory's node and its name: a path
	// is looked up a name at a time from the root, so that a member
	// thousands of levels deep costs its length, not (as keys of whole
	// paths, one for each level) the square of it.
	children      map[tarKey]int32
	inodes        uint64            // inode numbers handed to hardlinked members
	users, groups map[uint32]string // owner names the members carry
	skipped       int64             // members the reader left out
	excluded      int64             // paths Options.Exclude left out
	leftDirs      map[string]bool   // the directories among them
	// global: the pax global records in force (applyGlobal).
	global map[string]string
}

// tarKey names a node of the tree: its directory's node and its name.
type tarKey struct {
	dir  int32
	name string
}

// tarEntry is one member, as the stream reader parsed it.
type tarEntry struct {
	name   string // as the stream spells it, for messages
	path   string // cleaned, relative; "" is the root
	link   string // cleaned hardlink target, for a hardlink
	sparse bool   // archive/tar read a sparse map for it (sparseMember)
	n      node
}

// packTar reads the stream on the producer goroutine: members up to the
// whole-file limit are read into memory and hashed and sampled by the
// workers; a larger one is copied by the sequencer straight from the stream
// while the reader waits.
func (p *packer) packTar(r io.Reader) error {
	sr := &stallReader{ctx: p.ctx, r: r}
	// Its first bytes: for what to say where archive/tar cannot read it.
	head := make([]byte, 10)
	n, err := io.ReadFull(sr, head)
	switch {
	case n == 0 && err == io.EOF:
		// A producer that died before writing (GNU tar: "does not look
		// like a tar archive"); an empty tar stream is 1,024 zero bytes.
		return errors.New("tar stream: empty, not a tar stream (nothing came in)")
	case err != nil && err != io.ErrUnexpectedEOF && err != io.EOF:
		return fmt.Errorf("tar stream: %w", err)
	}
	in := &countingReader{r: io.MultiReader(bytes.NewReader(head[:n]), sr)}
	tr := tar.NewReader(in)
	last := "" // the last member read, for messages
	headers, resynced := 0, false
	produce := func(ctx context.Context, budget *semaphore.Weighted, queue, work chan<- *fileJob) error {
		for {
			// What Next reads is kept for a resync: the headers alone,
			// for it passes over what the member before left unread with
			// in.Seek, which keeps none of it.
			in.keepFrom()
			hdr, err := tr.Next()
			if err == nil {
				in.keepNone()
			}
			if err == io.EOF && resynced {
				// Two zero blocks end a tar stream, but after a resync
				// they may lie in a member's data it landed in (a tar
				// inside the tar): look past them to the stream's end,
				// as tar -i does.
				at := in.n
				found, rerr := in.nextHeader(at - 512)
				if rerr != nil {
					return fmt.Errorf("tar stream: %w", rerr)
				}
				if !found {
					return nil
				}
				p.opt.warn(fmt.Errorf("tar stream: the zero blocks that end a tar stream, before byte %d, came after a header not valid (above), where a member's data may hold them: the headers after them, from byte %d, are read as well", at, in.n))
				tr, in.oneLeft = tar.NewReader(in), false
				continue
			}
			if err == io.EOF {
				return nil
			}
			if errors.Is(err, io.ErrUnexpectedEOF) && in.cut {
				return fmt.Errorf("tar stream: %s: it ends inside its data (byte %d): %w", last, in.n, err)
			}
			if errors.Is(err, tar.ErrHeader) && headers > 0 && !p.opt.Strict {
				// GNU tar extracting such a stream skips to the next
				// header; so does packing it. (A long name or pax
				// records past archive/tar's 1 MiB, ErrFieldTooLong, end
				// the run: passed over, the member's own header would be
				// taken alone, its name cut to 100 bytes, and could
				// replace another member of that name.)
				resynced = true
				at := in.failedHeader()
				found, rerr := in.nextHeader(at)
				if rerr != nil {
					return fmt.Errorf("tar stream: %w", rerr)
				}
				if !found {
					p.opt.warn(fmt.Errorf("tar stream: the header after member %s, at byte %d, is not valid (%v), and no valid header follows it: its %d bytes to the stream's end are left out", orStart(last), at, err, in.n-at))
					return nil
				}
				p.opt.warn(fmt.Errorf("tar stream: the header after member %s, at byte %d, is not valid (%v): its %d bytes up to the next header, at byte %d, are left out", orStart(last), at, err, in.n-at, in.n))
				tr, in.oneLeft = tar.NewReader(in), false
				continue
			}
			if err != nil {
				return tarStreamError(err, head[:n], last, in.n)
			}
			headers++
			// Unless it is read below: a member of one stored byte, which
			// the next Next reads where it seeks over more (headerStart).
			in.oneLeft = hdr.Size == 1 && carriesData(hdr.Typeflag) && !sparseMember(hdr)
			if hdr.Typeflag == tar.TypeXGlobalHeader {
				// archive/tar drops a global header's records whole
				// where one of them does not parse: say so, rather than
				// lose them in silence. (Its block starts at the first
				// block boundary from where Next began; what Next read
				// past the block was records.)
				if start := in.headerStart(); hdr.PAXRecords == nil && in.n > start+512 {
					p.opt.warn(fmt.Errorf("tar stream: a pax global header after member %s has a record archive/tar cannot read; all its records are left out", orStart(last)))
				}
				p.tar.global = mergeGlobal(p.tar.global, hdr.PAXRecords, func(k, v string) {
					p.opt.warn(fmt.Errorf("tar stream: pax global record %s=%q is not valid (left out)", k, v))
				})
				continue
			}
			if notMember(hdr) {
				continue
			}
			last = hdr.Name
			p.applyGlobal(hdr)
			e, err := p.tarEntry(hdr)
			if err != nil {
				if p.opt.Strict {
					return err
				}
				p.opt.warn(fmt.Errorf("%w (skipped)", err))
				p.tar.skipped++ // the sequencer owns p.res meanwhile
				continue
			}
			if p.tarExcluded(e) {
				continue // its bytes, if any, are passed over by tr.Next
			}
			j := &fileJob{entry: e, done: make(chan struct{})}
			p.filesTotal.Add(1)
			size := e.n.size
			if !e.n.isReg() || e.link != "" || size == 0 {
				close(j.done)
				if err := send(ctx, queue, j); err != nil {
					return err
				}
				continue
			}
			p.bytesTotal.Add(size)
			if size > p.opt.wholeMax {
				j.stream, j.consumed = tr, make(chan struct{})
				close(j.done)
				if err := send(ctx, queue, j); err != nil {
					return err
				}
				select {
				case <-j.consumed:
				case <-ctx.Done():
					return ctx.Err()
				}
				continue
			}
			if err := budget.Acquire(ctx, size); err != nil {
				return err
			}
			j.held = size
			j.data = make([]byte, size)
			if _, err := io.ReadFull(tr, j.data); err != nil {
				return fmt.Errorf("tar stream: %s: %w", hdr.Name, err)
			}
			j.whole, in.oneLeft = true, false
			if err := send(ctx, queue, j); err != nil {
				return err
			}
			if err := send(ctx, work, j); err != nil {
				return err
			}
		}
	}
	// Sizes are unknown until the stream ends: every held member is hashed.
	digest := func(_ context.Context, j *fileJob) {
		j.sum, j.hashed = blake3.Sum256(j.data), true
		if !p.seen(dupKey{int64(len(j.data)), j.sum}) {
			j.chunks, j.samples = p.prepare(j.data)
		}
	}
	if err := p.run(produce, digest); err != nil {
		return err
	}
	if p.opt.tarHook != nil {
		p.opt.tarHook()
	}
	p.res.Skipped += p.tar.skipped
	p.res.Excluded += p.tar.excluded
	p.nodes.sortChildren()
	return nil
}

// tarStreamError words err, met reading the stream's header after member
// last ("": its first), by byte at: where, and a compressed stream as
// such. archive/tar cannot go on past a header it cannot read.
func tarStreamError(err error, head []byte, last string, at int64) error {
	if last == "" {
		for _, c := range [...]struct {
			magic, name, cmd string
		}{
			{"\x1f\x8b", "gzip", "gzip -dc"},
			{"\x28\xb5\x2f\xfd", "zstd", "zstd -dc"},
			{"\xfd7zXZ\x00", "xz", "xz -dc"},
			{"BZh", "bzip2", "bzip2 -dc"}, // then a level 1-9 and the block magic, below
			{"\x04\x22\x4d\x18", "lz4", "lz4 -dc"},
		} {
			if bytes.HasPrefix(head, []byte(c.magic)) && (c.name != "bzip2" || len(head) >= 10 && head[3] >= '1' && head[3] <= '9' && string(head[4:10]) == "1AY&SY") {
				return fmt.Errorf("tar stream: %s-compressed; arcpack reads tar itself: decompress it first (%s FILE | arcpack create - -o NAME)", c.name, c.cmd)
			}
		}
	}
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("tar stream: it ends inside the header after member %s (byte %d): %w", orStart(last), at, err)
	case errors.Is(err, tar.ErrHeader):
		// The reader stops at the end of the block it could not read.
		return fmt.Errorf("tar stream: the header after member %s, at byte %d, is not valid: %w", orStart(last), max(at-512, 0), err)
	}
	return fmt.Errorf("tar stream: after member %s (byte %d): %w", orStart(last), at, err)
}

// orStart is member name last for a message, or the stream's start.
func orStart(last string) string {
	if last == "" {
		return "(none: at the stream's start)"
	}
	return last
}

// countingReader counts the bytes read through it. From keepFrom on it
// also keeps what is read (the blocks of one tar.Next, up to keepMax), so
// that nextHeader can look through them again for a header. It seeks
// forward by reading (Seek), which archive/tar uses to pass over what a
// member left unread: those bytes are not kept, so that what a Next keeps
// starts with the member's last byte and its padding, then its headers.
type countingReader struct {
	r       io.Reader
	n       int64
	keeping bool
	sought  bool   // keeping began after a Seek
	oneLeft bool   // the member before left one stored byte unread
	cut     bool   // a Seek met the stream's end
	from    int64  // where keeping began
	kept    []byte // read since from while keeping; nil once past keepMax
	back    []byte // given back: read before r
}

// keepMax bounds what is kept of one tar.Next: its headers, with the
// records of pax headers and long names (archive/tar takes up to 1 MiB of
// each, and any number of them). Past it nextHeader looks from where Next
// stopped.
const keepMax = 4<<20 + 4<<10

func (c *countingReader) Read(b []byte) (n int, err error) {
	if len(c.back) > 0 {
		n = copy(b, c.back)
		c.back = c.back[n:]
	} else {
		n, err = c.r.Read(b)
	}
	c.n += int64(n)
	if c.keeping && c.kept != nil {
		if len(c.kept)+n > keepMax {
			c.kept = nil
		} else {
			c.kept = append(c.kept, b[:n]...)
		}
	}
	return n, err
}

// keepFrom starts keeping what is read, until keepNone.
func (c *countingReader) keepFrom() {
	if c.kept == nil {
		c.kept = make([]byte, 0, 4<<10)
	}
	c.keeping, c.sought, c.from, c.kept = true, false, c.n, c.kept[:0]
}

// headerStart is where the first header a tar.Next read since keepFrom
// starts: the first block boundary past the member before it. That member
// ends where keeping began, or a byte later where Next passed over its
// rest: archive/tar seeks to the last byte and reads that one, and reads
// a lone byte left unread without seeking (a reader that took that byte
// for the header's would only look from a block before it, and find the
// same next header).
func (c *countingReader) headerStart() int64 {
	end := c.from
	if c.sought || c.oneLeft {
		end++
	}
	return (end + 511) / 512 * 512
}

// carriesData says whether a member of type typ has stored bytes after its
// header (archive/tar reads none for these types, whatever their size).
func carriesData(typ byte) bool {
	switch typ {
	case tar.TypeLink, tar.TypeSymlink, tar.TypeChar, tar.TypeBlock, tar.TypeDir, tar.TypeFifo, tar.TypeXGlobalHeader:
		return false
	}
	return true
}

// failedHeader is where the header a failed tar.Next could not take
// starts: headerStart, or past the pax headers and long names before it
// that archive/tar read whole, records, padding and all (it went on to
// the next header, so they parsed): their records are no place to look
// for a header (a block in them with a valid checksum is data).
func (c *countingReader) failedHeader() int64 {
	at := c.headerStart()
	for c.keeping && c.kept != nil && at+512 <= c.n {
		blk := c.kept[at-c.from : at-c.from+512]
		size, err := strconv.ParseInt(strings.Trim(string(blk[124:136]), " \x00"), 8, 64)
		if !tarChecksumValid(blk) || err != nil || size < 0 || size > c.n-at || !strings.ContainsRune("xLK", rune(blk[156])) {
			break
		}
		next := at + 512 + (size+511)/512*512
		if c.n <= next {
			break // Next did not get past its records: they are what failed
		}
		at = next
	}
	return at
}

func (c *countingReader) keepNone() { c.keeping = false }

// Seek passes over off bytes forward (io.SeekCurrent alone), reading
// them, not keeping them: keeping, if on, starts again after them.
// archive/tar first asks Seek(0, io.SeekCurrent) whether it can seek.
func (c *countingReader) Seek(off int64, whence int) (int64, error) {
	if whence != io.SeekCurrent || off < 0 {
		return c.n, errors.New("tar stream: it can only be read forward")
	}
	if off == 0 {
		return c.n, nil
	}
	keeping := c.keeping
	c.keeping = false
	_, err := io.CopyN(io.Discard, c, off)
	if err == io.EOF {
		err, c.cut = io.ErrUnexpectedEOF, true
	}
	if keeping {
		c.keepFrom()
		c.sought = true
	}
	return c.n, err
}

// nextHeader looks for the first block after the header block at byte at
// (a block boundary at or after keepFrom's) that has a header's valid
// checksum, reading the blocks tar.Next read past it again, then the
// stream, to its end: zero blocks do not end the search, as they do not
// for tar -i (a member's data may hold some). It gives that block back,
// to be read as the next header; found is false where the stream ends
// first. Where what Next read was not all kept, it looks from the first
// block boundary after where Next stopped.
func (c *countingReader) nextHeader(at int64) (found bool, err error) {
	if c.keeping && c.kept != nil && at+512 <= c.n {
		c.back = append(c.kept[at+512-c.from:len(c.kept):len(c.kept)], c.back...)
		c.n = at + 512
	}
	c.keeping, c.kept = false, nil // back holds its array now
	blk := make([]byte, 512)
	if r := c.n % 512; r != 0 {
		if _, err := io.ReadFull(c, blk[:512-r]); err != nil {
			if err == io.EOF || err == io.ErrUnexpectedEOF {
				return false, nil
			}
			return false, err
		}
	}
	for {
		if _, err := io.ReadFull(c, blk); err != nil {
			if err == io.EOF || err == io.ErrUnexpectedEOF {
				return false, nil
			}
			return false, err
		}
		if tarChecksumValid(blk) {
			c.back = append(blk, c.back...)
			c.n -= 512
			return true, nil
		}
	}
}

// tarChecksumValid says whether a 512-byte block carries a tar header's
// checksum: the sum of its bytes, the checksum field counted as spaces,
// unsigned or (as some old tars wrote it) signed, in octal at 148.
func tarChecksumValid(b []byte) bool {
	stored, err := strconv.ParseUint(strings.Trim(string(b[148:156]), " \x00"), 8, 32)
	if err != nil {
		return false
	}
	var unsigned, signed int64
	for i, c := range b {
		if i >= 148 && i < 156 {
			c = ' '
		}
		unsigned += int64(c)
		signed += int64(int8(c))
	}
	return int64(stored) == unsigned || int64(stored) == signed
}

// stallReader reads r until ctx is done: a read that a stalled stream holds
// (a pipe whose writer hangs) gives way to ctx, its goroutine left behind,
// where the sequencer copying a large member would otherwise wait on it
// for good. Each read of r fills buf as far as r gives, and the reads of
// the tar reader (a 512-byte header, a member's bytes) are served from it:
// a goroutine for each read of r, not for each of those.
type stallReader struct {
	ctx     context.Context
	r       io.Reader
	buf     []byte
	pending []byte // read from r, not handed out yet
	err     error  // r's error, handed out once pending is
	got     chan stallRead
}

type stallRead struct {
	n   int
	err error
}

func (c *stallReader) Read(b []byte) (int, error) {
	if len(c.pending) == 0 && c.err == nil {
		if err := c.ctx.Err(); err != nil {
			return 0, err // and never again a read: the one left behind may still use buf
		}
		if c.buf == nil {
			c.buf, c.got = make([]byte, 1<<20), make(chan stallRead, 1)
		}
		go func() {
			n, err := c.r.Read(c.buf)
			c.got <- stallRead{n, err}
		}()
		select {
		case r := <-c.got:
			c.pending, c.err = c.buf[:r.n], r.err
		case <-c.ctx.Done():
			return 0, c.ctx.Err()
		}
	}
	if len(c.pending) > 0 {
		n := copy(b, c.pending)
		c.pending = c.pending[n:]
		return n, nil
	}
	return 0, c.err
}

// Header types archive/tar hands over as they are, which GNU tar writes.
const (
	tarTypeDumpDir = 'D' // a directory with the list of its entries (--listed-incremental)
	tarTypeVolume  = 'V' // the archive's label (--label), not a file
)

// mergeGlobal adds a pax global header's records to those in force: a
// later one replaces an earlier value, and an empty one removes it (POSIX).
// A value applyGlobal could not use is given to bad and left out, as GNU
// tar leaves it: the one in force before stays.
func mergeGlobal(in, add map[string]string, bad func(k, v string)) map[string]string {
	if len(add) == 0 {
		return in
	}
	out := maps.Clone(in)
	if out == nil {
		out = map[string]string{}
	}
	for _, k := range slices.Sorted(maps.Keys(add)) {
		v := add[k]
		switch {
		case v == "":
			delete(out, k)
		case !globalValid(k, v):
			bad(k, v)
		default:
			out[k] = v
		}
	}
	return out
}

// globalValid reports whether applyGlobal can use value v of record k.
func globalValid(k, v string) bool {
	switch k {
	case "uid", "gid":
		// Out of range a member's own is refused with the member
		// (tarEntry); a global one is that record alone.
		id, err := strconv.ParseInt(v, 10, 64)
		return err == nil && id >= 0 && id <= math.MaxUint32
	case "mtime", "atime":
		_, err := parsePAXTime(v)
		return err == nil
	}
	return true
}

// applyGlobal gives member hdr the pax global records in force that its
// own records do not set, as tar -x applies them (archive/tar hands them
// over and leaves them to the caller): they take the place of its ustar
// fields. Owners, times and xattrs and ACLs; a path or size for every
// member would make no sense, and a comment (git archive's commit id)
// means nothing to the tree.
func (p *packer) applyGlobal(hdr *tar.Header) {
	for k, v := range p.tar.global {
		if _, own := hdr.PAXRecords[k]; own {
			continue
		}
		switch k { // values mergeGlobal let in
		case "uid":
			id, _ := strconv.ParseInt(v, 10, 64)
			hdr.Uid = int(id)
		case "gid":
			id, _ := strconv.ParseInt(v, 10, 64)
			hdr.Gid = int(id)
		case "uname":
			hdr.Uname = v
		case "gname":
			hdr.Gname = v
		case "mtime":
			hdr.ModTime, _ = parsePAXTime(v)
		case "atime":
			hdr.AccessTime, _ = parsePAXTime(v)
		default:
			if strings.HasPrefix(k, "SCHILY.xattr.") || strings.HasPrefix(k, "LIBARCHIVE.xattr.") || strings.HasPrefix(k, "SCHILY.acl.") {
				if hdr.PAXRecords == nil {
					hdr.PAXRecords = map[string]string{}
				}
				hdr.PAXRecords[k] = v
			}
		}
	}
}

// parsePAXTime reads a pax time: seconds since 1970, perhaps negative,
// with a fraction.
func parsePAXTime(s string) (time.Time, error) {
	neg := strings.HasPrefix(s, "-")
	secs, frac, _ := strings.Cut(strings.TrimPrefix(s, "-"), ".")
	sec, err := strconv.ParseInt(secs, 10, 64)
	if err != nil || secs == "" || strings.HasPrefix(secs, "+") || strings.Trim(frac, "0123456789") != "" {
		return time.Time{}, fmt.Errorf("pax time %q", s)
	}
	// Nanoseconds: digits past nine are cut, as archive/tar and GNU tar
	// cut them.
	nsec, _ := strconv.ParseInt((frac + "000000000")[:9], 10, 64)
	if neg {
		return time.Unix(-sec, -nsec), nil
	}
	return time.Unix(sec, nsec), nil
}

// notMember reports a header that describes the stream, not a file: a pax
// global header (git archive writes one with the commit id) or a GNU
// volume label. Extracting the stream makes nothing of it.
func notMember(hdr *tar.Header) bool {
	return hdr.Typeflag == tar.TypeXGlobalHeader || hdr.Typeflag == tarTypeVolume
}

// tarEntry turns a member's header into an entry, or says why it cannot be
// archived.
func (p *packer) tarEntry(hdr *tar.Header) (*tarEntry, error) {
	name, err := tarPath(hdr.Name)
	if err != nil {
		return nil, err
	}
	// archive/tar gives ids as ints, which a pax record or a base-256
	// field may make negative or too large: truncated, 2^32 would be
	// root's. GNU tar refuses them too.
	for _, id := range []struct {
		what string
		v    int64
	}{{"uid", int64(hdr.Uid)}, {"gid", int64(hdr.Gid)}, {"device major", hdr.Devmajor}, {"device minor", hdr.Devminor}} {
		if id.v < 0 || id.v > math.MaxUint32 {
			return nil, fmt.Errorf("tar member %s: %s %d out of range (0 to %d)", hdr.Name, id.what, id.v, uint32(math.MaxUint32))
		}
	}
	mtime := timespecOf(hdr.ModTime)
	n := node{
		name:  []byte(path.Base(name)),
		mode:  uint32(hdr.Mode) & 0o7777,
		uid:   uint32(hdr.Uid),
		gid:   uint32(hdr.Gid),
		mtime: nsOf(mtime),
		atime: nsOf(mtime),
	}
	if name == "" {
		n.name = nil
	}
	if !nsFits(mtime) {
		p.opt.warn(fmt.Errorf("tar member %s: a time outside what the archive holds (the years 1678 to 2262), kept as the nearest it holds", hdr.Name))
	}
	if !hdr.AccessTime.IsZero() {
		n.atime = nsOf(timespecOf(hdr.AccessTime))
	}
	e := &tarEntry{name: hdr.Name, path: name}
	switch hdr.Typeflag {
	case tar.TypeReg, '\x00', tar.TypeCont, tar.TypeGNUSparse:
		if hdr.Size < 0 {
			return nil, fmt.Errorf("tar member %s: negative size", hdr.Name)
		}
		if hdr.Size > maxSparseTarMember && sparseMember(hdr) {
			return nil, fmt.Errorf("tar member %s: a sparse file of %d bytes, over the %d (16 TiB) arcpack takes from a stream: its holes come through archive/tar as zeros to be read, so a few bytes of header could ask for years", hdr.Name, hdr.Size, int64(maxSparseTarMember))
		}
		n.mode |= format.ModeReg
		n.size = hdr.Size
		e.sparse = sparseMember(hdr)
	case tar.TypeLink:
		if e.link, err = tarPath(hdr.Linkname); err != nil || e.link == "" {
			return nil, fmt.Errorf("tar member %s: hardlink to %q: not a member path", hdr.Name, hdr.Linkname)
		}
	case tar.TypeSymlink:
		if l := len(hdr.Linkname); l == 0 || l > format.MaxSymlinkLen {
			return nil, fmt.Errorf("tar member %s: a symlink target of %d bytes (1 to %d can be archived)", hdr.Name, l, format.MaxSymlinkLen)
		}
		// Linux's symlinks are 0777 whatever the header says (tar -x
		// makes them so): the mount and list show what extract makes.
		n.mode = format.ModeLink | 0o777
		n.setExtra(func(e *nodeExtra) { e.target = []byte(hdr.Linkname) })
		n.size = int64(len(hdr.Linkname))
	case tar.TypeDir, tarTypeDumpDir:
		n.mode |= format.ModeDir
	case tar.TypeChar, tar.TypeBlock:
		// Linux's device numbers: a 12-bit major, a 20-bit minor; mknod
		// would cut larger ones down to another device's (GNU tar's
		// mknod fails on them).
		if hdr.Devmajor > maxDevMajor || hdr.Devminor > maxDevMinor {
			return nil, fmt.Errorf("tar member %s: device %d,%d: Linux's device numbers go up to %d,%d", hdr.Name, hdr.Devmajor, hdr.Devminor, maxDevMajor, maxDevMinor)
		}
		n.mode |= format.ModeChr
		if hdr.Typeflag == tar.TypeBlock {
			n.mode = n.mode&^format.ModeType | format.ModeBlk
		}
		n.setExtra(func(e *nodeExtra) { e.rdev = unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor)) })
	case tar.TypeFifo:
		n.mode |= format.ModeFifo
	default:
		return nil, fmt.Errorf("tar member %s: type %q is not supported", hdr.Name, hdr.Typeflag)
	}
	if name == "" && !n.isDir() {
		return nil, fmt.Errorf("tar member %s: the root must be a directory", hdr.Name)
	}
	xs := p.tarXattrs(hdr)
	if t := n.mode & format.ModeType; t != 0 { // (a hardlink has its target's)
		// What Linux would not let extraction make again, here or
		// through a pax global record: none could come back.
		special := t == format.ModeLink || t == format.ModeFifo || t == format.ModeChr || t == format.ModeBlk
		xs = slices.DeleteFunc(xs, func(x xattr) bool {
			var why string
			switch name := string(x.name); {
			case special && strings.HasPrefix(name, "user."):
				why = "Linux keeps user.* attributes on files and directories only"
			case t == format.ModeLink && strings.HasPrefix(name, "system.posix_acl_"):
				why = "Linux keeps no ACL on a symlink"
			case t != format.ModeDir && name == "system.posix_acl_default":
				why = "a default ACL is a directory's"
			default:
				return false
			}
			p.opt.warn(fmt.Errorf("tar member %s: extended attribute %s: %s (left out)", hdr.Name, x.name, why))
			return true
		})
	}
	n.setExtra(func(e *nodeExtra) { e.xattrs = xs })
	for _, x := range xs {
		// tar -x sets the ACL after the mode, and the kernel takes the
		// permission bits from it (bsdtar's header mode has the group::
		// entry's bits where the mask's differ).
		if string(x.name) == "system.posix_acl_access" {
			if bits, ok := aclModeBits(x.value); ok {
				n.mode = n.mode&^0o777 | bits
			}
		}
	}
	if hdr.Uname != "" {
		p.tar.users[n.uid] = hdr.Uname
	}
	if hdr.Gname != "" {
		p.tar.groups[n.gid] = hdr.Gname
	}
	e.n = n
	return e, nil
}

// Linux's largest device numbers (MINORBITS 20; the kernel keeps a dev_t
// in 32 bits).
const (
	maxDevMajor = 1<<12 - 1
	maxDevMinor = 1<<20 - 1
)

// maxSparseTarMember bounds the size of a sparse member of a tar stream:
// the bytes in the stream are its data alone, but archive/tar hands its
// holes over as zeros, which take time in the member's whole size (about
// 20 GB/s: a 2^62-byte member declared in 10 KB of stream would take
// years). 16 TiB, ext4's largest file, takes minutes.
const maxSparseTarMember = 16 << 40

// sparseMember reports whether archive/tar reads hdr as a sparse member:
// the old GNU type 'S', or PAX records of GNU's formats 0.0, 0.1 and 1.0,
// told apart as archive/tar tells them (a member with other GNU.sparse
// records is read as it stands, its bytes all in the stream).
func sparseMember(hdr *tar.Header) bool {
	if hdr.Typeflag == tar.TypeGNUSparse {
		return true
	}
	major, minor := hdr.PAXRecords["GNU.sparse.major"], hdr.PAXRecords["GNU.sparse.minor"]
	switch {
	case major == "0" && (minor == "0" || minor == "1"), major == "1" && minor == "0":
		return true
	case major != "" || minor != "":
		return false // a version archive/tar does not know
	}
	return hdr.PAXRecords["GNU.sparse.map"] != "" // 0.0 and 0.1 wrote no version
}

// tarExcluded reports whether Options.Exclude leaves member e out: its
// path matches, or the path of a directory above it does (a directory
// left out takes what lies below it, as in a scan, which never reads it).
// A directory left out is counted once, as a scan counts it, however
// often it is named or lies above members (named or implied); a file, once
// a member.
func (p *packer) tarExcluded(e *tarEntry) bool {
	at := p.opt.Exclude.ExcludedWithin(e.path, e.n.isDir())
	if at < 0 {
		return false
	}
	if at == len(e.path) && !e.n.isDir() {
		p.tar.excluded++ // a file: kept in no set, where a stream may leave out millions
		return true
	}
	if top := e.path[:at]; !p.tar.leftDirs[top] {
		if p.tar.leftDirs == nil {
			p.tar.leftDirs = map[string]bool{}
		}
		p.tar.leftDirs[strings.Clone(top)] = true // not the member's whole path
		p.tar.excluded++
	}
	return true
}

// tarPath cleans a member name into a path relative to the archive root,
// as tar extracts it: leading slashes and "./" go; ".." anywhere is refused.
func tarPath(name string) (string, error) {
	rel := strings.TrimLeft(name, "/")
	for _, c := range strings.Split(rel, "/") {
		if c == ".." {
			return "", fmt.Errorf("tar member %s: a name with \"..\" would leave the archive root", name)
		}
		if len(c) > format.MaxNameLen {
			return "", fmt.Errorf("tar member %s: a name longer than %d bytes", name, format.MaxNameLen)
		}
	}
	rel = path.Clean(rel)
	if rel == "." {
		return "", nil
	}
	return rel, nil
}

// tarXattrs collects a member's extended attributes from its pax records.
func (p *packer) tarXattrs(hdr *tar.Header) []xattr {
	var out []xattr
	add := func(name string, value []byte) {
		switch {
		case name == "":
			p.opt.warn(fmt.Errorf("tar member %s: an extended attribute without a name (left out)", hdr.Name))
			return
		case len(name) > format.MaxXattrName:
			p.opt.warn(fmt.Errorf("tar member %s: an extended attribute name of %d bytes, over %d (left out)", hdr.Name, len(name), format.MaxXattrName))
			return
		case len(value) > format.MaxXattrValue:
			p.opt.warn(fmt.Errorf("tar member %s: extended attribute %q: value over %d bytes (left out)", hdr.Name, name, format.MaxXattrValue))
			return
		}
		if slices.ContainsFunc(out, func(x xattr) bool { return string(x.name) == name }) {
			return
		}
		if name == "system.posix_acl_access" || name == "system.posix_acl_default" {
			if err := validACL(value); err != nil {
				p.opt.warn(fmt.Errorf("tar member %s: extended attribute %s: %w (left out)", hdr.Name, name, err))
				return
			}
		}
		out = append(out, xattr{name: []byte(name), value: value})
	}
	// The records in a fixed order, so that an attribute two records give
	// (bsdtar writes both kinds) takes the same value from every run of
	// the same stream: SCHILY's, the raw bytes, before LIBARCHIVE's.
	keys := slices.Sorted(maps.Keys(hdr.PAXRecords))
	for _, k := range keys {
		if name, ok := strings.CutPrefix(k, "SCHILY.xattr."); ok {
			add(name, []byte(hdr.PAXRecords[k]))
		}
	}
	for _, k := range keys {
		enc, ok := strings.CutPrefix(k, "LIBARCHIVE.xattr.")
		if !ok {
			continue
		}
		// libarchive escapes '%', '=' and bytes outside 33-126 only: a
		// '+' is a plus, not a space.
		name, err1 := url.PathUnescape(enc)
		val, err2 := base64.RawStdEncoding.DecodeString(strings.TrimRight(hdr.PAXRecords[k], "="))
		if err1 != nil || err2 != nil {
			p.opt.warn(fmt.Errorf("tar member %s: record %s is not valid (left out)", hdr.Name, k))
			continue
		}
		add(name, val)
	}
	// ACLs come as text; the archive keeps them as the kernel's xattrs.
	for _, acl := range [...]struct{ rec, name string }{
		{"SCHILY.acl.access", "system.posix_acl_access"},
		{"SCHILY.acl.default", "system.posix_acl_default"},
	} {
		if text, ok := hdr.PAXRecords[acl.rec]; ok && strings.TrimSpace(text) != "" {
			val, err := aclFromText(text)
			if err != nil {
				p.opt.warn(fmt.Errorf("tar member %s: %s: %w (left out)", hdr.Name, acl.rec, err))
				continue
			}
			add(acl.name, val)
		}
	}
	slices.SortFunc(out, func(a, b xattr) int { return bytes.Compare(a.name, b.name) })
	// The kernel lists a file's xattr names, each with a NUL, in at most
	// xattrListMax bytes: past it, listxattr fails (E2BIG) for the whole
	// file, in the mount and on an extracted copy.
	list := 0
	for i, x := range out {
		if list += len(x.name) + 1; list > xattrListMax {
			p.opt.warn(fmt.Errorf("tar member %s: %d extended attributes whose names pass the %d bytes a file may list, from %q on (left out)", hdr.Name, len(out)-i, xattrListMax, x.name))
			return out[:i]
		}
	}
	return out
}

// xattrListMax is Linux's XATTR_LIST_MAX.
const xattrListMax = 64 << 10

// addTarNode puts a member into the tree; it reports whether the member has
// content to place (a regular file that is not a hardlink).
func (p *packer) addTarNode(j *fileJob) bool {
	t, e := p.tar, j.entry
	if e.path == "" {
		r := p.nodes.at(0)
		children := r.children
		*r = e.n
		r.parent, r.children = -1, children
		return false
	}
	parent, err := p.tarDir(path.Dir(e.path))
	if err != nil {
		p.opt.warn(fmt.Errorf("tar member %s: %w (skipped)", e.name, err))
		p.res.Skipped++
		return false
	}
	n := e.n
	// What the member's name leads to now: one lookup under the parent
	// tarDir found, not a second walk down the whole path.
	old, exists := p.tar.children[tarKey{parent, string(n.name)}]
	exists = exists && !p.nodes.at(old).skip
	if exists && !n.isDir() && p.nodes.at(old).isDir() && p.hasEntries(old) {
		// tar, extracting, removes what stands at a member's path, which
		// fails on a directory with entries: the directory stays, with
		// them, and tar says so. Replaced, it took them all, silently.
		p.opt.warn(fmt.Errorf("tar member %s: not a directory, where an earlier member made a directory with entries (skipped: extracting the stream keeps the directory)", e.name))
		p.res.Skipped++
		return false
	}
	if e.link != "" {
		ti, ok := p.tarNode(e.link)
		if !ok && p.opt.Exclude.ExcludedWithin(e.link, false) >= 0 {
			// The stream holds the content once, with the first member.
			p.opt.warn(fmt.Errorf("tar member %s: hardlink to %s, which --exclude left out with its content (skipped)", e.name, e.link))
			p.res.Skipped++
			return false
		}
		if !ok || p.nodes.at(ti).isDir() {
			p.opt.warn(fmt.Errorf("tar member %s: hardlink to %s, which is not an earlier file member (skipped)", e.name, e.link))
			p.res.Skipped++
			return false
		}
		target := p.nodes.at(ti)
		if target.nlink < 2 {
			t.inodes++
			target.dev, target.ino, target.nlink = tarDev, t.inodes, 2
		}
		n = *target
		n.name, n.children = e.n.name, nil
		j.node = p.insertTarNode(parent, n)
		p.extStart[j.node], p.extCount[j.node] = p.extStart[ti], p.extCount[ti]
		return false
	}
	if exists && n.isDir() && p.nodes.at(old).isDir() {
		// A directory named again: new metadata, same children.
		o := p.nodes.at(old)
		children := o.children
		*o = n
		o.parent, o.children = parent, children
		return false
	}
	j.node = p.insertTarNode(parent, n)
	return n.isReg()
}

// hasEntries reports whether directory node d has an entry that was not
// replaced since.
func (p *packer) hasEntries(d int32) bool {
	return slices.ContainsFunc(p.nodes.at(d).children, func(c int32) bool { return !p.nodes.at(c).skip })
}

// insertTarNode adds n under parent, replacing what was there by its name.
// The key holds a copy of the name, not a piece of the member's path,
// which would keep the whole path.
func (p *packer) insertTarNode(parent int32, n node) int32 {
	k := tarKey{parent, string(n.name)}
	if old, ok := p.tar.children[k]; ok {
		p.nodes.at(old).skip = true
	}
	n.parent = parent
	idx := p.nodes.add(n)
	p.extStart = append(p.extStart, 0)
	p.extCount = append(p.extCount, 0)
	p.nodes.at(parent).children = append(p.nodes.at(parent).children, idx)
	p.tar.children[k] = idx
	return idx
}

// tarNode returns the node at path at ("" is the root), if the tree has
// one: what each name leads to now, a later member having replaced an
// earlier one (a directory, only while it had no entries: addTarNode),
// so that a directory named again where a file replaced it starts empty,
// as extracting the stream would leave it.
func (p *packer) tarNode(at string) (int32, bool) {
	i := int32(0)
	for rest := at; rest != ""; {
		name, more, _ := strings.Cut(rest, "/")
		c, ok := p.tar.children[tarKey{i, name}]
		if !ok || p.nodes.at(c).skip || more != "" && !p.nodes.at(c).isDir() {
			return 0, false
		}
		i, rest = c, more
	}
	return i, true
}

// tarDir returns the directory node at dir ("." is the root), creating it
// and its parents when the stream has not named them (yet).
func (p *packer) tarDir(dir string) (int32, error) {
	if dir == "." {
		return 0, nil
	}
	i := int32(0)
	for end := 0; end < len(dir); {
		start := end
		if start > 0 {
			start++ // past the '/'
		}
		end = len(dir)
		if k := strings.IndexByte(dir[start:], '/'); k >= 0 {
			end = start + k
		}
		if c, ok := p.tar.children[tarKey{i, dir[start:end]}]; ok && !p.nodes.at(c).skip {
			if !p.nodes.at(c).isDir() {
				return 0, fmt.Errorf("%s is not a directory", dir[:end])
			}
			i = c
			continue
		}
		n := impliedDir() // until a member names it (addTarNode)
		n.name = []byte(dir[start:end])
		i = p.insertTarNode(i, n)
	}
	return i, nil
}

// streamTar copies a member too large to hold from the stream in
// block-sized reads (name: the member's, for messages). It is not hashed
// whole: a later copy of it is too large to hold as well, so its bytes are
// gone by the time a hash of them could find it a copy; chunk and segment
// dedup find such copies instead.
// (Hashing it cost BLAKE3's speed on every byte, zeros of holes included:
// 7.4 s for a 20 GiB sparse member, now 0.58 s.)
func (p *packer) streamTar(n *node, e *tarEntry, r io.Reader, st *streamer) error {
	name := e.name
	least, tail := holesOf(e)
	// Pieces of whole pages, so that zero runs are found page-aligned.
	buf := make([]byte, min(max(p.opt.BlockSize/holeAlign*holeAlign, holeAlign), n.size))
	for left := n.size; left > 0; {
		if err := p.ctx.Err(); err != nil {
			return err
		}
		m := min(int64(len(buf)), left)
		if _, err := io.ReadFull(r, buf[:m]); err != nil {
			return fmt.Errorf("tar stream: %s: %w", name, err)
		}
		if err := p.placeRuns(buf[:m], zeroRuns(buf[:m], least, tail && left == m), st); err != nil {
			return err
		}
		left -= m
	}
	return nil
}

// archive/tar hands sparse members over with their holes filled with zeros
// (it keeps their maps to itself). As GNU tar --sparse does when it creates
// an archive, page-aligned zero runs become holes again: of any length in a
// sparse member, whose map had holes, with a zero tail at its end (a
// partial page); of at least holeMin bytes in any other member, as
// GNU tar --sparse would have seen them.
const (
	holeAlign = 4 << 10
	holeMin   = 32 << 10
)

// holesOf is what zeroRuns takes as a hole in member e's bytes: the least
// length, and whether a zero tail at the member's end is one.
func holesOf(e *tarEntry) (least int64, tail bool) {
	if e.sparse {
		return holeAlign, true
	}
	return holeMin, false
}

// zeroRuns splits b, which starts page-aligned in its file, into data and
// hole runs: page-aligned zero runs of least bytes or more; with atEnd (b
// ends the file), zeros after its last whole page too, however few (a
// page of their own, which the hole leaves unwritten). It returns nil when
// b has no hole.
func zeroRuns(b []byte, least int64, atEnd bool) []dataRun {
	var zero [holeAlign]byte
	var runs []dataRun
	var dataFrom, zeroFrom int64 = 0, -1
	end := int64(len(b)) / holeAlign * holeAlign
	flush := func(at, least int64) { // the zero run [zeroFrom, at) ends
		if zeroFrom >= 0 && at-zeroFrom >= least {
			if zeroFrom > dataFrom {
				runs = append(runs, dataRun{dataFrom, zeroFrom - dataFrom, false})
			}
			runs = append(runs, dataRun{zeroFrom, at - zeroFrom, true})
			dataFrom = at
		}
		zeroFrom = -1
	}
	for off := int64(0); off < end; off += holeAlign {
		if bytes.Equal(b[off:off+holeAlign], zero[:]) {
			if zeroFrom < 0 {
				zeroFrom = off
			}
			continue
		}
		flush(off, least)
	}
	if tail := b[end:]; atEnd && len(tail) > 0 && bytes.Equal(tail, zero[:len(tail)]) {
		if zeroFrom < 0 {
			zeroFrom, least = end, 0
		}
		end = int64(len(b))
	}
	flush(end, least)
	if runs == nil {
		return nil
	}
	if dataFrom < int64(len(b)) {
		runs = append(runs, dataRun{dataFrom, int64(len(b)) - dataFrom, false})
	}
	return runs
}

// placeRuns places a piece of a member split by zeroRuns, its zero runs
// as holes; runs nil (no hole) places the piece whole.
func (p *packer) placeRuns(b []byte, runs []dataRun, st *streamer) error {
	if runs == nil {
		return p.placeRead(b, nil, st)
	}
	for _, r := range runs {
		piece := b[r.off : r.off+r.len]
		if !r.hole {
			if err := p.placeRead(piece, nil, st); err != nil {
				return err
			}
			continue
		}
		p.addExtent(format.Hole, uint64(r.len))
		p.res.HoleBytes += r.len
		p.bytesDone.Add(r.len)
	}
	return nil
}

// tarOwner is the user (or group) name the stream gave id, if any: the
// names of the machine that made the stream, not this one's.
func (p *packer) tarOwner(id string, group bool) (string, bool) {
	if p.tar == nil {
		return "", false
	}
	n, err := strconv.ParseUint(id, 10, 32)
	if err != nil {
		return "", false
	}
	names := p.tar.users
	if group {
		names = p.tar.groups
	}
	name, ok := names[uint32(n)]
	return name, ok
}
