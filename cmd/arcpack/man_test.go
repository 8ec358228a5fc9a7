package main

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

// The EXIT STATUS of the man pages says what the exit-code tables of
// README.md and docs/CLI.md say, case for case.
func TestManExitStatusMatchesTheDocs(t *testing.T) {
	for _, doc := range []string{"../../README.md", "../../docs/CLI.md"} {
		b, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		// arcpack's table is the first whose rows start "| 0 |".
		var rows []string
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, "| 0 |") && len(rows) > 0 {
				break
			}
			var code int
			var meaning string
			if _, err := fmt.Sscanf(line, "| %d |", &code); err == nil && (len(rows) > 0 || code == 0) {
				meaning = strings.TrimSuffix(strings.SplitN(line, " | ", 2)[1], " |")
				rows = append(rows, fmt.Sprintf("%d: %s", code, strings.ReplaceAll(meaning, "`", "")))
			} else if len(rows) > 0 {
				break
			}
		}
		if strings.Join(rows, "\n") != strings.Join(exitStatus, "\n") {
			t.Errorf("%s says:\n%s\nthe man pages say:\n%s", doc, strings.Join(rows, "\n"), strings.Join(exitStatus, "\n"))
		}
	}
}
