package writer

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"arc/format"

	"golang.org/x/sys/unix"
)

// volumeWriter writes the archive's logical stream into volume files split
// at exact sizes. Volumes are written under temporary names and renamed only
// when the whole archive is complete, the one holding the footer last, so an
// interrupted run never leaves a file set that looks like a finished archive.
type volumeWriter struct {
	base   string
	layout format.Layout
	id     format.ArchiveID
	tag    string // random part of the temporary names

	cur     *os.File
	curFill int64 // payload bytes in the current volume
	kicked  int64 // payload bytes of cur handed to the kernel's writeback
	pos     int64 // stream offset
	tmp     []string
	bytes   int64 // total bytes in all volume files

	// Full volumes are synced and closed in the background, so that the
	// stream's writer does not stall on the disk; finish waits for them.
	syncs   sync.WaitGroup
	syncSem chan struct{} // bounds the background syncs
	syncMu  sync.Mutex
	syncErr error
}

// kickEvery is how many bytes of a volume may wait in the page cache
// before their writeback is started: the sync before the rename then finds
// little left to write, instead of the whole volume.
const kickEvery = 8 << 20

func newVolumeWriter(base string, volumeSize int64) (*volumeWriter, error) {
	v := &volumeWriter{base: base, layout: format.Layout{VolumeSize: volumeSize}, syncSem: make(chan struct{}, 4)}
	if _, err := rand.Read(v.id[:]); err != nil {
		return nil, err
	}
	v.tag = format.NewTempTag()
	if err := v.open(); err != nil {
		return nil, err
	}
	return v, nil
}

func (v *volumeWriter) open() error {
	n := uint32(len(v.tmp) + 1)
	name := format.TempName(format.VolumeName(v.base, n), v.tag)
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("create volume: %w", err)
	}
	h, _ := format.VolumeHeader{Version: format.Version, Number: n, ID: v.id, VolumeSize: uint64(v.layout.VolumeSize)}.MarshalBinary()
	if _, err := f.Write(h); err != nil {
		// Not in v.tmp yet (the first volume's writer is never
		// aborted): removed here.
		f.Close()
		os.Remove(name)
		return err // "write NAME: ..." (an *os.PathError)
	}
	v.tmp = append(v.tmp, name)
	v.cur, v.curFill, v.kicked = f, 0, 0
	v.bytes += int64(len(h))
	return nil
}

// Write appends p to the stream, opening new volumes as each one fills.
func (v *volumeWriter) Write(p []byte) (int, error) {
	done := 0
	room := v.layout.Payload()
	for len(p) > 0 {
		if v.curFill == room {
			v.closeInBackground()
			if err := v.open(); err != nil {
				return done, err
			}
		}
		take := int64(len(p))
		if take > room-v.curFill {
			take = room - v.curFill
		}
		n, err := v.cur.Write(p[:take])
		done += n
		v.curFill += int64(n)
		v.pos += int64(n)
		v.bytes += int64(n)
		if err != nil {
			return done, err // "write NAME: ..." (an *os.PathError)
		}
		p = p[take:]
		if v.curFill-v.kicked >= kickEvery {
			// Start writeback without waiting for it (on failure the
			// final sync does all the work).
			_ = unix.SyncFileRange(int(v.cur.Fd()), format.VolumeHeaderSize+v.kicked, v.curFill-v.kicked, unix.SYNC_FILE_RANGE_WRITE)
			v.kicked = v.curFill
		}
	}
	return done, nil
}

// finish writes the footer (never across a volume boundary), closes the
// last volume and gives every volume its final name. An error with names
// is one after the renames: the archive is complete but its directory
// could not be synced.
func (v *volumeWriter) finish(f format.Footer) ([]string, error) {
	if room := v.layout.Payload() - v.curFill; room < format.FooterSize {
		if _, err := v.Write(make([]byte, room)); err != nil {
			return nil, err
		}
	}
	f.ID = v.id
	f.Version = format.Version
	f.StreamSize = uint64(v.pos + format.FooterSize)
	if v.curFill == v.layout.Payload() {
		f.VolumeCount = uint32(len(v.tmp)) + 1
	} else {
		f.VolumeCount = uint32(len(v.tmp))
	}
	b, _ := f.MarshalBinary()
	if _, err := v.Write(b); err != nil {
		return nil, err
	}
	err := closeSynced(v.cur, v.tmp[len(v.tmp)-1])
	v.cur = nil
	v.syncs.Wait()
	if err == nil {
		err = v.syncErr
	}
	if err != nil {
		return nil, err
	}
	if uint32(len(v.tmp)) != f.VolumeCount {
		return nil, fmt.Errorf("internal error: wrote %d volumes, footer says %d", len(v.tmp), f.VolumeCount)
	}
	final := make([]string, len(v.tmp))
	renames := make([]format.Rename, len(v.tmp))
	for i, t := range v.tmp {
		final[i] = format.VolumeName(v.base, uint32(i+1))
		renames[i] = format.Rename{From: t, To: final[i]}
	}
	// Journaled: killed part way, the next create or repair of the
	// archive finishes the renames rather than leave old volumes among
	// the new. The renames are durable when Commit returns: an archive
	// that create reported done survives a crash right after it. A
	// failure once they are done comes with the names: the volumes are
	// in place, only not known to be on the disk.
	renamed, err := format.Commit(v.base, renames)
	if renamed || errors.Is(err, format.ErrCommitUnfinished) {
		v.tmp = nil // in place, or the journal's to finish
	}
	if renamed {
		return final, err
	}
	return nil, err
}

// closeInBackground syncs and closes the current, full volume on another
// goroutine; the first error is kept for finish.
func (v *volumeWriter) closeInBackground() {
	f, name := v.cur, v.tmp[len(v.tmp)-1]
	v.cur = nil
	v.syncSem <- struct{}{} // at most cap(syncSem) at once: the disk sets the pace

	v.syncs.Add(1)
	go func() {
		defer func() { <-v.syncSem; v.syncs.Done() }()
		if err := closeSynced(f, name); err != nil {
			v.syncMu.Lock()
			if v.syncErr == nil {
				v.syncErr = err
			}
			v.syncMu.Unlock()
		}
	}()
}

// closeSynced flushes a volume to the disk and closes it: every volume is on
// the disk before any carries its final name.
func closeSynced(f *os.File, name string) error {
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync %s: %w", name, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", name, err)
	}
	return nil
}

// abort closes and removes every temporary volume.
func (v *volumeWriter) abort() {
	if v.cur != nil {
		v.cur.Close()
		v.cur = nil
	}
	v.syncs.Wait()
	for _, t := range v.tmp {
		os.Remove(t)
	}
	v.tmp = nil
}

// archiveFiles are the device and inode of the files of archive base that
// exist now: its volumes, its recovery volumes and its lock file.
func archiveFiles(base string) map[[2]uint64]bool {
	names, _ := existingVolumes(base)
	rec, _ := format.ListRecoveryVolumes(base)
	names = append(names, rec...)
	names = append(names, format.LockName(base))
	files := map[[2]uint64]bool{}
	for _, name := range names {
		var st unix.Stat_t
		if unix.Stat(name, &st) == nil {
			files[[2]uint64{st.Dev, st.Ino}] = true
		}
	}
	return files
}

// existingVolumes lists the volumes of an archive called base.
func existingVolumes(base string) ([]string, error) {
	nums, err := format.ListVolumes(base)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("output directory %s does not exist", filepath.Dir(base))
	}
	if err != nil {
		return nil, err
	}
	out := make([]string, len(nums))
	for i, n := range nums {
		out[i] = format.VolumeName(base, n)
	}
	return out, nil
}
