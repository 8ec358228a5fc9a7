package main

import (
	"strings"
	"testing"
)

// An empty -o (a script's unset variable) is a usage error that names the
// flag, not a failed mkdir of "".
func TestExtractWithAnEmptyDestIsAUsageError(t *testing.T) {
	name := packTree(t, map[string]string{"a": "hello"})
	for _, args := range [][]string{
		{"extract", name + ".001", "-o", ""},
		{"extract", name + ".001", "--output="},
	} {
		_, stderr, code := arcpack(t, args...)
		if code != exitFatal || !strings.Contains(stderr, "extract: -o DEST is empty") {
			t.Errorf("%q: exit %d, %q; want exit 2 and 'extract: -o DEST is empty'", args, code, stderr)
		}
	}
}
