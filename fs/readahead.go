package fs

import (
	"fmt"
	"os"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

const (
	fuseSuperMagic = 0x65735546 // statfs f_type of a FUSE mount
	rootIno        = 1          // the root's inode number: nodeID(0), see fill
)

// widenReadAhead sets the read-ahead of the mount on dir to maxIO. At
// INIT the kernel keeps the smaller of what we ask for (MaxReadAhead) and
// the mount's own setting, 128 KiB by default, so without this a file read
// from start to end costs a READ round trip per 128 KiB (166 READs for the
// Go toolchain's 21 MB compile binary, 21 at 1 MiB); the setting may be
// raised afterwards. It belongs to this mount (/sys/class/bdi/MAJOR:MINOR
// of its device) and goes with it. Writing it needs root; elsewhere the
// mount keeps 128 KiB. dir must be the mount's root, checked, so that
// another filesystem's setting is never touched (a mount point given as
// /dev/fd/N, or mounted over meanwhile).
func widenReadAhead(dir string) error {
	var st syscall.Stat_t
	if err := syscall.Stat(dir, &st); err != nil {
		return err
	}
	var sf syscall.Statfs_t
	if err := syscall.Statfs(dir, &sf); err != nil {
		return err
	}
	if sf.Type != fuseSuperMagic || st.Ino != rootIno {
		return fmt.Errorf("%s is not this mount's root", dir)
	}
	return os.WriteFile(readAheadFile(st.Dev), []byte(strconv.Itoa(maxIO>>10)), 0)
}

// readAheadFile is the sysfs file of the read-ahead (in KiB) of the mount
// whose device is dev.
func readAheadFile(dev uint64) string {
	return fmt.Sprintf("/sys/class/bdi/%d:%d/read_ahead_kb", unix.Major(dev), unix.Minor(dev))
}
