package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestFuseConfAllowsOtherOnlyWithTheLine(t *testing.T) {
	for _, c := range []struct {
		conf string
		want bool
	}{
		{"", false},
		{"#user_allow_other\n", false},
		{"# mount_max = 1000\n  user_allow_other  \n", true},
		{"user_allow_other_not\n", false},
	} {
		p := filepath.Join(t.TempDir(), "fuse.conf")
		os.WriteFile(p, []byte(c.conf), 0o644)
		if got := fuseConfAllowsOther(p); got != c.want {
			t.Errorf("fuse.conf %q: %v, want %v", c.conf, got, c.want)
		}
	}
	if fuseConfAllowsOther(filepath.Join(t.TempDir(), "none")) {
		t.Error("a missing fuse.conf allows allow_other")
	}
}

func TestExplainMountErrorAddsTheHelpersWordsAndTheFix(t *testing.T) {
	for _, c := range []struct {
		err, said string
		want      string
	}{
		{"mount /m: fusermount exited with code 256", "arcmount: mount /m: fusermount exited with code 256\n/usr/bin/fusermount3: failed to open /dev/fuse: Permission denied\n",
			"mount /m: fusermount exited with status 1: /usr/bin/fusermount3: failed to open /dev/fuse: Permission denied (this user may not open /dev/fuse: mount as root, or give the user access to /dev/fuse)"},
		{`exec: "fusermount": executable file not found in $PATH`, "", `exec: "fusermount": executable file not found in $PATH (install FUSE 3: apt-get install fuse3)`},
		{"mount /m: fusermount exited with code 256", "fusermount3: option allow_other only allowed if 'user_allow_other' is set in /etc/fuse.conf\n",
			"mount /m: fusermount exited with status 1: fusermount3: option allow_other only allowed if 'user_allow_other' is set in /etc/fuse.conf (add the line user_allow_other to /etc/fuse.conf as root, or mount as root)"},
		{"archive.001: not an arc archive", "", "archive.001: not an arc archive"},
		{"mount /m: fusermount exited with code 9", "", "mount /m: fusermount exited with code 9"}, // killed: no status to give
	} {
		got := explainMountError(errors.New(c.err), c.said).Error()
		if got != c.want {
			t.Errorf("explainMountError(%q, %q)\n got %q\nwant %q", c.err, c.said, got, c.want)
		}
		if strings.Contains(got, "\n") {
			t.Errorf("%q spans lines", got)
		}
	}
	if explainMountError(nil, "anything") != nil {
		t.Error("no error became one")
	}
}

func TestUnmountErrorIsOneLineAndSaysWhatToDoWhenBusy(t *testing.T) {
	for _, c := range []struct{ err, want string }{
		{"/usr/bin/fusermount3: failed to unmount /m: Device or resource busy\n (code exit status 1)",
			"/usr/bin/fusermount3: failed to unmount /m: Device or resource busy; still mounted: a process has a file or its working directory in /m; end it, then interrupt again or run 'fusermount3 -u /m'"},
		{"/usr/bin/fusermount3: entry for /m not found in /etc/mtab\n (code exit status 1)",
			"/usr/bin/fusermount3: entry for /m not found in /etc/mtab"},
		{"invalid argument", "invalid argument"},
	} {
		if got := unmountError("/m", errors.New(c.err)); got != c.want {
			t.Errorf("unmountError(%q)\n got %q\nwant %q", c.err, got, c.want)
		}
	}
}
