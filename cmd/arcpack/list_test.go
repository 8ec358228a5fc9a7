package main

import (
	"os"
	"strings"
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
