package reader

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"

	"arc/format"

	"golang.org/x/sys/unix"
)

// maxOpenVolumes bounds the volume files kept open at once, and less
// where the process's limit of open files leaves less room (openBudget).
const maxOpenVolumes = 64

// openBudget is how many volumes a set may hold open: what the limit of
// open files leaves room for, 1 to maxOpenVolumes. A set holding fewer
// reopens volumes as it reads them.
func openBudget() int { return format.DescriptorBudget(1, 1, maxOpenVolumes) }

// volumeSet is the validated set of volume files NAME.001..NAME.N. Files
// are opened lazily, kept open (up to maxOpen) and read with ReadAt,
// which is safe for concurrent use.
type volumeSet struct {
	base    string
	count   uint32
	layout  format.Layout
	missing map[uint32]bool
	damaged map[uint32]error // present but truncated, with a damaged header, or foreign
	foreign map[uint32]error // present but of another archive or place: never read
	strays  []string         // files named past the last volume, left out

	// dirfd: the volumes' directory (O_PATH), opened with the set,
	// through which a volume is opened again later (past
	// maxOpenVolumes): its path may lead elsewhere by then (arcmount
	// mounted over that directory answered EIO for every file in such
	// volumes).
	dirfd int
	// ident: each volume's device and inode when the set was opened. A
	// volume opened again later (past maxOpenVolumes) must be that file:
	// an archive rewritten in place meanwhile (create --force) has new
	// volumes under the same names, whose bytes would only fail their
	// checksums, as if damaged.
	ident map[uint32]fileIdent

	// openHook, set by tests, opens volume n again in place of
	// format.OpenFileAt (a limit of open files met at a chosen volume).
	openHook func(n uint32) (*os.File, error)

	mu      sync.Mutex
	maxOpen int // openBudget's, when the set was opened
	open    map[uint32]*volFile
	clock   uint64
	// closed: the archive was closed; a load still in flight then (one
	// that Close does not wait for) must not open a volume again, which
	// nothing would close.
	closed bool
}

// fileIdent is a file's device and inode.
type fileIdent struct{ dev, ino uint64 }

func identOf(f *os.File) (fileIdent, bool) {
	st, err := f.Stat()
	if err != nil {
		return fileIdent{}, false
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return fileIdent{}, false
	}
	return fileIdent{uint64(sys.Dev), sys.Ino}, true
}

// errReplaced: a volume file is not the one the set was opened with.
var errReplaced = errors.New("replaced since the archive was opened (rewritten meanwhile?): open or mount it again")

type volFile struct {
	f       *os.File
	refs    int
	lastUse uint64
	closing bool
}

// volumeError is a read that failed because of one volume (missing or unreadable).
type volumeError struct {
	vol uint32
	err error
}

func (e *volumeError) Error() string { return e.err.Error() }
func (e *volumeError) Unwrap() error { return e.err }

func (vs *volumeSet) name(n uint32) string { return format.VolumeName(vs.base, n) }

func (vs *volumeSet) missingList() []uint32 {
	var out []uint32
	for n := range vs.missing {
		out = append(out, n)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// openVolumes finds the set path belongs to, validates every volume's
// header and size against the footer of the last one, and returns it.
//
// Damage stays local: a volume whose header does not parse (a flipped or
// truncated header) or that is shorter than it should be is recorded in
// damaged, not refused. Its bytes are still read where they exist, because
// every block and the index carry their own checksums; reads past its end
// fail as truncated. A volume from elsewhere (another archive's, another
// run's, another place in the set) is local damage too (foreign). Only
// what makes the set unknowable is an error: no valid header at all, the
// footer or the index out of reach.
//
// The volume files it reads are kept open, up to maxOpenVolumes: an archive
// replaced by another under the same names while it is in use (a mount
// left up across a scheduled create --force) is still read whole from
// them; a volume opened later must be the file it was (ident).
func openVolumes(path string) (*volumeSet, format.Footer, error) {
	var footer format.Footer
	budget := openBudget()
	held := map[uint32]*os.File{} // the volumes read, open (the first budget)
	idents := map[uint32]fileIdent{}
	// hold keeps volume n's file open where few are, else closes it: an
	// archive of thousands of volumes must not take a descriptor for each
	// (a process's limit is often 1,024). Its identity is kept, so that
	// opened again later it must be the file read now.
	hold := func(n uint32, f *os.File) {
		if id, ok := identOf(f); ok {
			idents[n] = id
		}
		if len(held) < budget {
			held[n] = f
		} else {
			f.Close()
		}
	}
	kept := false
	defer func() {
		if !kept {
			for _, f := range held {
				f.Close()
			}
		}
	}()
	base, num, ok := format.ParseVolumeName(path)
	if !ok {
		base, num = path, 1
		path = format.VolumeName(path, 1)
	}
	if _, err := os.Lstat(path); errors.Is(err, fs.ErrNotExist) {
		// The volume named is missing (NAME.001 most often, which NAME
		// stands for) but others are there, after it: open the set
		// through the first one present, so that the missing one is
		// reported as such, with what it held.
		present, err := format.ListVolumes(base)
		if format.TooManyOpen(err) {
			return nil, footer, err
		}
		if len(present) > 0 && num > present[len(present)-1] && num != 1 {
			// Past the volumes there: a name mistyped, perhaps of
			// another archive; say so (cmd's hint lists the volumes).
			return nil, footer, &os.PathError{Op: "open", Path: path, Err: syscall.ENOENT}
		}
		if len(present) == 0 {
			if !ok {
				return nil, footer, fmt.Errorf("%s: not an arc volume name (want NAME.001, NAME.002, …)", base)
			}
			return nil, footer, &os.PathError{Op: "open", Path: path, Err: syscall.ENOENT}
		}
		num = present[0]
		path = format.VolumeName(base, num)
	}
	given, gf, size, givenErr := readHeader(path)
	if gf != nil {
		hold(num, gf)
	}
	if format.TooManyOpen(givenErr) {
		return nil, footer, givenErr
	}
	if givenErr != nil && size < 0 {
		return nil, footer, givenErr // missing, unreadable or not a regular file
	}
	// A given volume whose header names another number (a copy of another
	// of the set's volumes) is local damage, as another's is (foreign
	// below); it does not vouch for the set.
	givenOK := givenErr == nil && given.Number == num

	// Every NAME.NNN present: the set's volumes, strays past its end and
	// volumes from elsewhere, told apart below.
	present, err := listVolumes(base)
	if err != nil {
		return nil, footer, err
	}
	sizes := map[uint32]int64{num: size}
	var strays []string
	headers := map[uint32]format.VolumeHeader{}
	damaged := map[uint32]error{}
	if givenErr == nil {
		headers[num] = given
	} else {
		damaged[num] = givenErr
	}
	last := num
	// unusable: what cannot serve as a volume at all (a directory, a
	// FIFO, an unreadable file): a stray past the set's end, else never
	// read, as a foreign volume is.
	unusable := map[uint32]error{}
	// The lowest-numbered file this user may not read, and its error.
	var deniedAt uint32
	var denied error
	for _, n := range present {
		if n == num {
			continue
		}
		p := format.VolumeName(base, n)
		h, f, sz, err := readHeader(p)
		if f != nil {
			hold(n, f)
		}
		if format.TooManyOpen(err) {
			return nil, footer, err
		}
		if err != nil && sz < 0 {
			if errors.Is(err, fs.ErrPermission) {
				// Not damage: the file is there, but not for this
				// user (repair would rebuild a good volume). Past
				// the set's end it is a stray; else (or where the
				// set's end cannot be told) the open fails naming it.
				if denied == nil || n < deniedAt {
					deniedAt, denied = n, err
				}
			}
			unusable[n] = err
			continue
		}
		sizes[n] = sz
		if err != nil {
			damaged[n] = err
		} else {
			headers[n] = h
		}
		if n > last {
			last = n
		}
	}
	// The given volume's archive, where its last volume is there and says
	// so (its footer), ends there, whatever lies past it, though volumes
	// before it are lost: those are the volumes of an older, larger
	// archive, left by a copy that does not delete (rsync without
	// --delete) or by a create --force stopped before it removed them.
	// They are strays however many they are; the majority below would
	// take the older archive for the set where they outnumber it (and
	// repair would have rebuilt the given archive's volumes into it).
	footerOf := func(n uint32) (format.Footer, error) { return readFooter(format.VolumeName(base, n), sizes[n]) }
	if end, ok := format.SetEnd(headers, num, footerOf); ok && givenOK && end < last {
		for n := range sizes {
			if n > end {
				strays = append(strays, format.VolumeName(base, n))
				delete(sizes, n)
				delete(headers, n)
				delete(damaged, n)
			}
		}
		slices.Sort(strays)
		last = end
	}
	// The archive the set is, to tell its volumes from strays: the one
	// most volumes' headers name, the given volume's unless another has
	// more (a foreign volume named must not make the set's own later
	// volumes strays).
	m, known := majority(headers, num, givenOK)
	major := headers[m].ID
	// Files numbered past the set's last volume are strays (a volume of
	// another archive, a file that happens to be called NAME.029): the
	// set ends at the volume below them whose footer says so. They are
	// left out, not taken for its last volume, which would make the whole
	// set unreadable.
	for last > num {
		// A volume of the archive: its footer decides below. One whose
		// header gives another number (a copy of one of the set's
		// volumes) is a stray if the volume below ends the set.
		if h, ok := headers[last]; ok && known && h.ID == major && h.Number == last {
			break
		}
		below := uint32(0)
		for n := range sizes {
			if n < last && n > below {
				below = n
			}
		}
		f, err := readFooter(format.VolumeName(base, below), sizes[below])
		if err != nil || f.VolumeCount != below || known && f.ID != major {
			break
		}
		strays = append(strays, format.VolumeName(base, last))
		delete(sizes, last)
		delete(headers, last)
		delete(damaged, last)
		last = below
	}
	// The reference header, the archive the set is: that of most volumes
	// (a volume copied in from another archive, or from another run of the
	// same tree, is then the one left out, even the one named), the given
	// volume's unless another has more; else the nearest intact one.
	// (The strays left out above never vote for the majority's archive:
	// it stands.)
	ref, refPath, found := given, path, known
	if found {
		ref, refPath = headers[m], format.VolumeName(base, m)
	} else {
		for n := last; n >= 1 && !found; n-- {
			if h, ok := headers[n]; ok {
				ref, refPath, found = h, format.VolumeName(base, n), true
			}
		}
		if !found && last == 1 {
			// A lone volume whose header is damaged: its footer vouches
			// for a one-volume set, and carries the archive id.
			if f, err := readFooter(path, size); err == nil && f.VolumeCount == 1 {
				ref = format.VolumeHeader{Version: format.Version, Number: 1, ID: f.ID}
				found = true
			}
		}
		if !found && last == 1 && errors.Is(givenErr, format.ErrTruncated) {
			// A lone file shorter than a header: nothing vouches for
			// it as a volume cut short, and any small file is one (as
			// verify says it).
			return nil, footer, fmt.Errorf("%s: %w: %d bytes, shorter than a volume header", path, format.ErrNotArchive, size)
		}
		if !found {
			return nil, footer, givenErr // no volume of the set has a valid header
		}
	}
	// A volume whose header names another archive, another number or
	// another volume size (copied in from another archive, from another
	// run of the same tree, or from another place in the set) is not read:
	// local damage, as a missing volume is, named for what it is.
	foreign := map[uint32]error{}
	for _, n := range present {
		if err, ok := unusable[n]; ok && n > last {
			strays = append(strays, format.VolumeName(base, n))
		} else if ok {
			foreign[n] = err
			sizes[n] = 0 // present, never read
		}
	}
	for n, h := range headers {
		p := format.VolumeName(base, n)
		switch {
		case h.ID != ref.ID:
			foreign[n] = fmt.Errorf("%s: volume of another archive (id %s; %s has id %s)", p, h.ID, refPath, ref.ID)
		case h.Number != n:
			// Most often names swapped or changed by hand: say which
			// name the file needs (arcpack repair gives it that name
			// where recovery volumes are present).
			foreign[n] = fmt.Errorf("%s: %w: header says this is volume %d, whose name is %s",
				p, format.ErrCorrupt, h.Number, format.VolumeName(base, h.Number))
		case h.VolumeSize != ref.VolumeSize:
			foreign[n] = fmt.Errorf("%s: %w: volume size %d, %s says %d", p, format.ErrCorrupt, h.VolumeSize, refPath, ref.VolumeSize)
		}
	}
	layout := format.Layout{VolumeSize: int64(ref.VolumeSize)}
	lastPath := format.VolumeName(base, last)
	if layout.VolumeSize == 0 && last != 1 {
		return nil, footer, fmt.Errorf("%s: %w: a one-volume archive has a volume %d", lastPath, format.ErrCorrupt, last)
	}

	if denied != nil && deniedAt <= last {
		return nil, footer, denied // inside the set
	}
	// The last file, the one with the footer, holds another volume of
	// the set (names swapped or changed, a volume copied past the end):
	// the footer is not where it should be, and why is what to say.
	misplaced := func() error {
		h, ok := headers[last]
		if !ok || h.ID != ref.ID || h.Number == last {
			return nil
		}
		if last == num {
			// The name given, past the set's end: a copy of one of its
			// volumes, most likely.
			return fmt.Errorf("%s: %w: header says this is volume %d, whose name is %s (the archive opens by its first volume, %s)",
				path, format.ErrCorrupt, h.Number, format.VolumeName(base, h.Number), format.VolumeName(base, 1))
		}
		var out []string
		for _, n := range slices.Sorted(maps.Keys(headers)) {
			if h := headers[n]; h.ID == ref.ID && h.Number != n {
				out = append(out, fmt.Sprintf("%s holds volume %d (%s)", format.VolumeName(base, n), h.Number, format.VolumeName(base, h.Number)))
			}
		}
		return fmt.Errorf("%w: volumes not under their own names: %s; the archive's last volume is not where its name says (rename them: arcpack repair does where recovery volumes are present)",
			format.ErrCorrupt, strings.Join(out, ", "))
	}
	// The footer is the last FooterSize bytes of the last volume.
	footer, err = readFooter(lastPath, sizes[last])
	if err != nil {
		if format.TooManyOpen(err) {
			return nil, footer, err
		}
		if denied != nil {
			return nil, footer, denied // past it: the set may go on into it
		}
		if m := misplaced(); m != nil {
			return nil, footer, m
		}
		if layout.VolumeSize > 0 && sizes[last] >= layout.VolumeSize && errors.Is(err, format.ErrNotArchive) {
			// No footer magic at its end: a full volume (or one with
			// bytes past its end) that the archive goes on from. A
			// footer that is there but broken is said as such, below.
			return nil, footer, fmt.Errorf("%s is missing: %s is a full volume without a footer, so the archive goes on",
				format.VolumeName(base, last+1), lastPath)
		}
		return nil, footer, fmt.Errorf("%s: truncated or not the last volume: %w", lastPath, err)
	}
	if footer.ID != ref.ID {
		return nil, footer, fmt.Errorf("%s: footer of another archive (id %s, volumes have %s)", lastPath, footer.ID, ref.ID)
	}
	if footer.VolumeCount != last {
		if denied != nil && footer.VolumeCount > last {
			return nil, footer, denied // the set goes on into it
		}
		if m := misplaced(); m != nil {
			return nil, footer, m
		}
		if footer.VolumeCount > last {
			return nil, footer, fmt.Errorf("%s is missing: the footer in %s says %d volumes", format.VolumeName(base, footer.VolumeCount), lastPath, footer.VolumeCount)
		}
		return nil, footer, fmt.Errorf("%s: %w: footer says %d volumes but %s exists", lastPath, format.ErrCorrupt, footer.VolumeCount, lastPath)
	}
	stream := int64(footer.StreamSize)
	if got := layout.VolumeCount(stream); got != last {
		return nil, footer, fmt.Errorf("%s: %w: a stream of %d bytes fills %d volumes, the footer says %d", lastPath, format.ErrCorrupt, stream, got, last)
	}
	// The footer was read from the last volume's end, so that is where
	// the stream must end; a footer that says otherwise (a count of
	// volumes that fits only modulo 2^32, too) is not the set's.
	if got, want := sizes[last]-format.VolumeHeaderSize, stream-int64(last-1)*layout.Payload(); got != want {
		return nil, footer, fmt.Errorf("%s: %w: it holds %d stream bytes, but the footer at its end says the stream of %d bytes leaves %d for it", lastPath, format.ErrCorrupt, got, stream, want)
	}
	vs := &volumeSet{base: base, count: last, layout: layout, missing: map[uint32]bool{}, damaged: map[uint32]error{}, foreign: map[uint32]error{}, open: map[uint32]*volFile{}, strays: strays, ident: map[uint32]fileIdent{}, maxOpen: budget}
	for n := uint32(1); n <= last; n++ {
		sz, ok := sizes[n]
		if !ok {
			vs.missing[n] = true
			continue
		}
		if err := foreign[n]; err != nil {
			vs.damaged[n], vs.foreign[n] = err, err
			continue
		}
		want := layout.VolumeSize
		if n == last {
			want = format.VolumeHeaderSize + stream - int64(last-1)*layout.Payload()
		}
		// What is wrong with the volume as a whole, each said: its
		// length, its header, or both.
		var length, header error
		switch {
		case sz > want:
			// Bytes past a volume's end (appended to it, or a copy
			// that went on): damage, as a short volume is, but local
			// to it. Reads stay within its first want bytes, and
			// blocks that moved (bytes inserted, not appended) fail
			// their checksums. The last volume never gets here: its
			// footer is read from its end.
			length = fmt.Errorf("%w: %d bytes, want %d (trailing data)", format.ErrCorrupt, sz, want)
		case sz < want:
			// A short volume (the last one cannot be: its footer is read
			// from its end) reads as far as it goes.
			length = fmt.Errorf("%w: %d bytes, want %d", format.ErrTruncated, sz, want)
		}
		if cause := damaged[n]; cause != nil {
			var he *headerError
			if errors.As(cause, &he) {
				cause = he.err
			}
			header = fmt.Errorf("damaged header: %w", cause)
		}
		switch {
		case length != nil && header != nil && sz >= format.VolumeHeaderSize:
			vs.damaged[n] = fmt.Errorf("%s: %w, and %w", vs.name(n), header, length)
		case length != nil: // a header cut short is said by its length
			vs.damaged[n] = fmt.Errorf("%s: %w", vs.name(n), length)
		case header != nil:
			vs.damaged[n] = fmt.Errorf("%s: %w", vs.name(n), header)
		}
	}
	// The index must be readable in full: damage may be local, the index is not.
	err = layout.Spans(int64(footer.IndexOffset), int64(footer.IndexSize), func(s format.Span) error {
		if vs.missing[s.Volume] {
			return fmt.Errorf("%s is missing and holds the archive's index", vs.name(s.Volume))
		}
		if err := vs.foreign[s.Volume]; err != nil {
			return fmt.Errorf("the archive's index lies in %w", err)
		}
		if sizes[s.Volume] < s.FileOff+s.Len {
			return fmt.Errorf("%s holds the archive's index: %w", vs.name(s.Volume), vs.damaged[s.Volume])
		}
		return nil
	})
	if err != nil {
		return nil, footer, err
	}
	if vs.dirfd, err = unix.Open(filepath.Dir(base), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0); err != nil {
		return nil, footer, &os.PathError{Op: "open", Path: filepath.Dir(base), Err: err}
	}
	for n := uint32(1); n <= last; n++ {
		if vs.foreign[n] != nil {
			continue // a foreign volume is never read: closed below
		}
		if id, ok := idents[n]; ok {
			vs.ident[n] = id
		}
		if f, ok := held[n]; ok && len(vs.open) < budget {
			vs.open[n] = &volFile{f: f}
			delete(held, n)
		}
	}
	for _, f := range held { // strays, foreign volumes, and volumes past the budget
		f.Close()
	}
	kept = true
	return vs, footer, nil
}

// majority returns a volume whose header names the archive that most of
// the headers name (each at its own number): the given one, num, unless
// another archive has more. ok is false when no header is at its number.
func majority(headers map[uint32]format.VolumeHeader, num uint32, givenOK bool) (n uint32, ok bool) {
	votes := map[format.ArchiveID]int{}
	var nums []uint32
	for k, h := range headers {
		if h.Number == k {
			votes[h.ID]++
			nums = append(nums, k)
		}
	}
	slices.Sort(nums)
	n, ok = num, givenOK
	for _, k := range nums {
		if !ok || votes[headers[k].ID] > votes[headers[n].ID] {
			n, ok = k, true
		}
	}
	return n, ok
}

// readHeader opens the volume at path and reads and validates its header.
// The size is -1 when the file cannot serve as a volume at all (missing,
// unreadable, not a regular file); with a header that does not parse it is
// the file's size and the error says what is wrong with the header. The
// file is returned open, for the caller to keep or close, where the size
// is not -1.
func readHeader(path string) (format.VolumeHeader, *os.File, int64, error) {
	f, err := format.OpenFile(path)
	if err != nil {
		return format.VolumeHeader{}, nil, -1, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return format.VolumeHeader{}, nil, -1, err
	}
	b := make([]byte, format.VolumeHeaderSize)
	n, err := f.ReadAt(b, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		f.Close()
		return format.VolumeHeader{}, nil, -1, fmt.Errorf("%s: %w", path, err)
	}
	h, err := format.ParseVolumeHeader(b[:n])
	if err != nil {
		return h, f, st.Size(), &headerError{path, err}
	}
	return h, f, st.Size(), nil
}

// headerError is a volume header that does not parse.
type headerError struct {
	path string
	err  error
}

func (e *headerError) Error() string { return e.path + ": " + e.err.Error() }
func (e *headerError) Unwrap() error { return e.err }

func readFooter(path string, size int64) (format.Footer, error) {
	f, err := format.OpenFile(path)
	if err != nil {
		return format.Footer{}, err
	}
	defer f.Close()
	return format.ReadFooter(f, size)
}

// listVolumes returns the numbers of the files NAME.NNN present, sorted.
func listVolumes(base string) ([]uint32, error) {
	vols, err := format.ListVolumes(base)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Dir(base), err)
	}
	return vols, nil
}

// acquire returns volume n's open file, opening it if needed.
func (vs *volumeSet) acquire(n uint32) (*volFile, error) {
	if vs.missing[n] {
		return nil, &volumeError{n, fmt.Errorf("volume %s is missing", vs.name(n))}
	}
	if err := vs.foreign[n]; err != nil {
		return nil, &volumeError{n, err}
	}
	vs.mu.Lock()
	defer vs.mu.Unlock()
	if vs.closed {
		return nil, &volumeError{n, fmt.Errorf("volume %s: %w", vs.name(n), fs.ErrClosed)}
	}
	vs.clock++
	if v, ok := vs.open[n]; ok {
		v.refs++
		v.lastUse = vs.clock
		return v, nil
	}
	if len(vs.open) >= vs.maxOpen {
		vs.closeIdleLocked()
	}
	open := func() (*os.File, error) {
		if vs.openHook != nil {
			return vs.openHook(n)
		}
		return format.OpenFileAt(vs.dirfd, filepath.Base(vs.name(n)), vs.name(n))
	}
	f, err := open()
	if format.TooManyOpen(err) && vs.closeIdleLocked() {
		// The rest of the process took what the budget counted on:
		// give back one held here and try once more.
		f, err = open()
	}
	if err != nil {
		return nil, &volumeError{n, err}
	}
	if want, ok := vs.ident[n]; ok {
		if id, _ := identOf(f); id != want {
			f.Close()
			return nil, &volumeError{n, fmt.Errorf("%s: %w", vs.name(n), errReplaced)}
		}
	}
	v := &volFile{f: f, refs: 1, lastUse: vs.clock}
	vs.open[n] = v
	return v, nil
}

// closeIdleLocked closes the least recently used file nobody is reading,
// and says whether there was one.
func (vs *volumeSet) closeIdleLocked() bool {
	var victim uint32
	var best *volFile
	for n, v := range vs.open {
		if v.refs == 0 && (best == nil || v.lastUse < best.lastUse) {
			victim, best = n, v
		}
	}
	if best == nil {
		return false
	}
	best.f.Close()
	delete(vs.open, victim)
	return true
}

func (vs *volumeSet) release(v *volFile) {
	vs.mu.Lock()
	v.refs--
	if v.refs == 0 && v.closing {
		v.f.Close()
	}
	vs.mu.Unlock()
}

func (vs *volumeSet) damagedList() []uint32 {
	var out []uint32
	for n := range vs.damaged {
		out = append(out, n)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// readStream fills p from stream offset off, across volumes.
func (vs *volumeSet) readStream(off int64, p []byte) error {
	return vs.layout.Spans(off, int64(len(p)), func(s format.Span) error {
		v, err := vs.acquire(s.Volume)
		if err != nil {
			return err
		}
		defer vs.release(v)
		n, err := v.f.ReadAt(p[:s.Len], s.FileOff)
		if n < int(s.Len) {
			if err == nil || errors.Is(err, io.EOF) {
				// Where it ends now: a read past the end gets nothing, so
				// the offset read at would say nothing of it.
				end := s.FileOff + int64(n)
				if st, serr := v.f.Stat(); serr == nil {
					end = st.Size()
				}
				err = fmt.Errorf("%w: volume ends at %d, a read of %d bytes at %d", format.ErrTruncated, end, s.Len, s.FileOff)
			}
			return &volumeError{s.Volume, fmt.Errorf("%s: %w", vs.name(s.Volume), err)}
		}
		p = p[s.Len:]
		return nil
	})
}

func (vs *volumeSet) close() error {
	vs.mu.Lock()
	defer vs.mu.Unlock()
	var first error
	if !vs.closed { // closed twice, the number may be another file's by now
		if err := unix.Close(vs.dirfd); err != nil {
			first = &os.PathError{Op: "close", Path: filepath.Dir(vs.base), Err: err}
		}
	}
	vs.closed = true
	for n, v := range vs.open {
		if v.refs > 0 {
			v.closing = true
		} else if err := v.f.Close(); err != nil && first == nil && !errors.Is(err, fs.ErrClosed) {
			first = err
		}
		delete(vs.open, n)
	}
	return first
}
