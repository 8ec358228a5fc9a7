package main

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"arc/internal/hint"
	"arc/internal/manpage"
	"arc/internal/termsafe"

	"github.com/spf13/cobra"
)

// checkArchive refuses, with the fix, an archive name that cannot be one:
// a directory, a recovery volume, a name that is not there. The reader
// says what is wrong with a file that is there.
func checkArchive(archive string) error {
	if m := hint.Misnamed(archive); m != "" {
		return fmt.Errorf("%s: %s", archive, m)
	}
	return nil
}

// checkFUSE refuses early, saying what to install or change, when the
// mount cannot work: no /dev/fuse, no fusermount3 for a user, or
// allow_other that /etc/fuse.conf does not allow a user.
func checkFUSE(allowOther bool) error {
	if _, err := os.Stat("/dev/fuse"); errors.Is(err, fs.ErrNotExist) {
		return errors.New("FUSE is not available: /dev/fuse does not exist (load the module: modprobe fuse; in a container, start it with --device /dev/fuse --cap-add SYS_ADMIN)")
	}
	if os.Geteuid() == 0 {
		return nil // root mounts directly; fusermount3 is only a fallback
	}
	if fusermount() == "" {
		return errors.New("fusermount3 not found: install FUSE 3 to mount as a user (Debian, Ubuntu: apt-get install fuse3; Fedora: dnf install fuse3)")
	}
	if allowOther && !fuseConfAllowsOther("/etc/fuse.conf") {
		return errors.New("-o allow_other: a user may use it only when /etc/fuse.conf has the line user_allow_other (add it as root, or mount as root)")
	}
	return nil
}

// fusermount is the helper go-fuse runs to mount as a user, "" when
// there is none; it looks where go-fuse looks.
func fusermount() string {
	for _, name := range []string{"fusermount3", "fusermount"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
		if p := filepath.Join("/bin", name); isExecutable(p) {
			return p
		}
	}
	return ""
}

func isExecutable(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0
}

// fuseConfAllowsOther reports whether fuse.conf has an uncommented
// user_allow_other line.
func fuseConfAllowsOther(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if strings.TrimSpace(sc.Text()) == "user_allow_other" {
			return true
		}
	}
	return false
}

// explainMountError adds the fix to a failed mount where the cause is
// known, and what the FUSE helper said (stderr, from the background child)
// where it said something.
func explainMountError(err error, helperSaid string) error {
	if err == nil {
		return nil
	}
	// go-fuse gives fusermount3's raw wait status (256 for exit status 1).
	msg := waitStatus.ReplaceAllStringFunc(strings.TrimSpace(err.Error()), func(m string) string {
		n, err := strconv.Atoi(waitStatus.FindStringSubmatch(m)[1])
		if err != nil || n%256 != 0 {
			return m
		}
		return fmt.Sprintf("fusermount exited with status %d", n/256)
	})
	var said []string
	for _, l := range strings.Split(helperSaid, "\n") {
		// The child's own last words repeat the error line.
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "arcmount: ") {
			said = append(said, l)
		}
	}
	if len(said) > 0 {
		msg += ": " + strings.Join(said, "; ")
	}
	switch {
	case strings.Contains(msg, "fusermount") && strings.Contains(msg, "not found"):
		msg += " (install FUSE 3: apt-get install fuse3)"
	case strings.Contains(msg, "/dev/fuse") && strings.Contains(msg, "ermission denied"):
		msg += " (this user may not open /dev/fuse: mount as root, or give the user access to /dev/fuse)"
	case strings.Contains(msg, "user_allow_other"):
		msg += " (add the line user_allow_other to /etc/fuse.conf as root, or mount as root)"
	}
	return errors.New(msg)
}

var waitStatus = regexp.MustCompile(`fusermount exited with code (\d+)`)

// unmountError says in one line why the unmount a signal asked for failed,
// and what to do where the mount is busy: go-fuse passes on fusermount3's
// words, newline and all, followed by its own "(code exit status 1)".
func unmountError(mnt string, err error) string {
	msg := err.Error()
	if i := strings.LastIndex(msg, " (code "); i > 0 {
		msg = msg[:i]
	}
	var lines []string
	for _, l := range strings.Split(msg, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	msg = strings.Join(lines, "; ")
	if strings.Contains(msg, "busy") {
		msg += fmt.Sprintf("; still mounted: a process has a file or its working directory in %s; end it, then interrupt again or run 'fusermount3 -u %s'", mnt, termsafe.Word(mnt))
	}
	return msg
}

// writeManPage writes arcmount.1 into dir: what --help says, with the
// exit status.
func writeManPage(cmd *cobra.Command, dir string) error {
	files, err := manpage.Generate(dir, cmd, manpage.Options{
		Source: "arc " + version,
		Manual: "arc manual",
		ExitStatus: []string{
			fmt.Sprintf("%d: mounted (with -f: served, then unmounted)", exitOK),
			fmt.Sprintf("%d: usage error, or the archive could not be opened or mounted", exitFail),
		},
		SeeAlso: []string{"arcpack(1)", "fusermount3(1)", "fuse(8)"},
	})
	if err != nil {
		return fmt.Errorf("--man: %w", err)
	}
	fmt.Printf("%d page(s) written to %s\n", len(files), termsafe.Name(dir))
	return nil
}
