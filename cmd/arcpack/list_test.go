package main

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// A listing or a report that cannot be written (a full disk) fails the
// command with exit 2 and a line that names the command and the archive,
// as verify, cat and extract say theirs.
func TestListAndInfoNameTheArchiveWhenTheOutputFails(t *testing.T) {
	name := packTree(t, map[string]string{"a": "hello", "d/b": "world"})
	for _, args := range [][]string{
		{"list", name + ".001"},
		{"list", "-l", name + ".001"},
		{"list", "--json", name + ".001"},
		{"info", name + ".001"},
		{"info", "--json", name + ".001"},
	} {
		full, err := os.OpenFile("/dev/full", os.O_WRONLY, 0)
		if err != nil {
			t.Skip("no /dev/full")
		}
		stderr, code := arcpackTo(t, full, args...)
		want := "arcpack: " + args[0] + " " + name + ".001: "
		if code != exitFatal || !strings.HasPrefix(stderr, want) || !strings.Contains(stderr, "no space left") {
			t.Errorf("%v to a full disk: exit %d, %q; want exit 2 and a line starting %q with the write error", args, code, stderr, want)
		}
	}
}

// list -l says of every path of a hardlinked inode but the first "link to
// FIRST", as tar tv does, whatever the inode's type: a hardlinked symlink
// too, which would otherwise read as a symlink of its own.
func TestListLongNamesTheFirstPathOfEveryHardlink(t *testing.T) {
	src := t.TempDir()
	for _, err := range []error{
		os.WriteFile(src+"/f1", []byte("x"), 0o644), os.Link(src+"/f1", src+"/f2"),
		os.Symlink("tgt", src+"/s1"), os.Link(src+"/s1", src+"/s2"),
		syscall.Mkfifo(src+"/p1", 0o644), os.Link(src+"/p1", src+"/p2"),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	name := filepath.Join(t.TempDir(), "a")
	if _, stderr, code := arcpack(t, "create", src, "-o", name, "--progress", "never"); code != exitOK {
		t.Fatalf("create: exit %d: %s", code, stderr)
	}
	for _, tc := range []struct{ path, end string }{
		{"f1", " f1"}, {"f2", " f2 link to f1"},
		{"s1", " s1 -> tgt"}, {"s2", " s2 link to s1"},
		{"p1", " p1"}, {"p2", " p2 link to p1"},
	} {
		stdout, stderr, code := arcpack(t, "list", "-l", name+".001", tc.path)
		if code != exitOK || !strings.HasSuffix(stdout, tc.end+"\n") {
			t.Errorf("list -l %s: exit %d, %q %s; want a line ending %q", tc.path, code, stdout, stderr, tc.end)
		}
	}
}
