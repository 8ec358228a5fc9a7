// Command arcpack creates, lists, verifies and extracts arc archives:
// deduplicating, compressing, multi-volume archives of directory trees.
package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"arc/internal/termsafe"

	"github.com/spf13/cobra"
)

// Exit codes, documented in README.md.
const (
	exitOK          = 0   // success
	exitDamage      = 1   // verify found damage, or create/extract skipped something
	exitFatal       = 2   // usage error, unreadable archive, or any other failure
	exitInterrupted = 130 // stopped by SIGINT, SIGTERM or SIGHUP
)

// exitError carries an exit code along with the message; a nil err means
// "exit with code, the command already said why".
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

// usageErrorf reports a mistake in the command line (exit 2).
func usageErrorf(format string, a ...any) error {
	return &exitError{code: exitFatal, err: fmt.Errorf(format, a...)}
}

// maxWorkers bounds --workers of every command: more goroutines than this
// gain nothing on any machine, and each holds memory (create keeps two
// blocks in flight for each, extract a 4 MiB buffer).
const maxWorkers = 256

// checkWorkers refuses a --workers outside 0 (the default, by the
// machine's CPUs) to maxWorkers.
func checkWorkers(cmd string, n int) error {
	if n < 0 || n > maxWorkers {
		return usageErrorf("%s: --workers %d: want 0 to %d", cmd, n, maxWorkers)
	}
	return nil
}

func main() {
	os.Exit(run(os.Args[1:]))
}

// run executes one command line and returns the process exit code. Every
// error becomes exactly one line "arcpack: ..." on stderr.
func run(args []string) int {
	root := newRootCommand()
	root.SetArgs(args)
	err := root.Execute()
	if err == nil {
		return exitOK
	}
	code := exitFatal
	var ee *exitError
	if errors.As(err, &ee) {
		code = ee.code
		if ee.err == nil {
			return code
		}
	}
	// One line, harmless to a terminal, whatever names (of files, owners,
	// tar members) the message holds.
	fmt.Fprintf(os.Stderr, "arcpack: %s\n", termsafe.Name(cobraMessage(root, args, err.Error())))
	return code
}

// cobraMessage words the errors cobra makes itself as arcpack's own are:
// one line (its suggestions for a mistyped command came on lines of their
// own, which the escaping turned into \n), naming the command and where
// to look. Other messages pass as they are.
func cobraMessage(root *cobra.Command, args []string, msg string) string {
	if cmd, sugg, ok := strings.Cut(msg, "\n\nDid you mean this?\n"); ok {
		return fmt.Sprintf("%s; did you mean %s? (see 'arcpack --help')", cmd, strings.Join(strings.Fields(sugg), " or "))
	}
	if strings.HasPrefix(msg, "unknown command ") {
		return msg + " (see 'arcpack --help')"
	}
	if names, ok := strings.CutPrefix(msg, "required flag(s) "); ok {
		c, _, err := root.Find(args)
		if err != nil {
			return msg
		}
		var flags []string
		for _, n := range strings.Split(strings.TrimSuffix(names, " not set"), ", ") {
			n = strings.Trim(n, `"`)
			f := c.Flags().Lookup(n)
			if f == nil {
				return msg
			}
			if f.Shorthand != "" {
				flags = append(flags, "-"+f.Shorthand+"/--"+n)
			} else {
				flags = append(flags, "--"+n)
			}
		}
		return fmt.Sprintf("%s: %s is required (see '%s --help')", c.Name(), strings.Join(flags, " and "), c.CommandPath())
	}
	return msg
}
