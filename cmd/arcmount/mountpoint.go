package main

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"arc/internal/termsafe"
)

// checkMountpoint refuses a mount point that is missing, not a directory
// or already a mount point, before anything is started.
func checkMountpoint(dir string) error {
	st, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		if to, lerr := os.Readlink(dir); lerr == nil { // mkdir -p of the link itself fails
			return fmt.Errorf("mount point %s is a symlink to %s, which does not exist (create that directory)", dir, to)
		}
		return fmt.Errorf("mount point %s does not exist (create it: mkdir -p %s)", dir, dir)
	}
	if err != nil {
		return fmt.Errorf("mount point: %w", err)
	}
	if !st.IsDir() {
		return fmt.Errorf("mount point %s is not a directory", dir)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	if real, err := filepath.EvalSymlinks(abs); err == nil {
		abs = real
	}
	mounted, err := isMountpoint(abs)
	if err != nil {
		return err
	}
	if mounted {
		return fmt.Errorf("%s is already a mount point (unmount it first: fusermount3 -u %s)", dir, termsafe.Word(dir))
	}
	return nil
}

// isMountpoint looks abs up in /proc/self/mountinfo (field 5, octal-escaped).
func isMountpoint(abs string) (bool, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return false, nil // not Linux-like: let the mount itself fail
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 && unescapeMountinfo(fields[4]) == abs {
			return true, nil
		}
	}
	return false, sc.Err()
}

func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
