package main

import (
	"fmt"

	"arc/internal/manpage"
	"arc/internal/termsafe"

	"github.com/spf13/cobra"
)

// exitStatus is the EXIT STATUS section of every arcpack page; README.md's
// table says the same.
var exitStatus = []string{
	fmt.Sprintf("%d: success", exitOK),
	fmt.Sprintf("%d: damage found (verify: a bad block, index or volume; extract, cat: content hit damage, some entries could not be created, or extract could not restore some owners, modes or xattrs or left a file incomplete, too large for the destination (warned); repair: damage beyond what the recovery volumes can rebuild; recovery add: the archive is damaged), or create skipped unreadable source files or warned that it did not keep something as it was (a time outside the years it holds, xattrs or ACLs it could not read or keep, a file that changed while it was read)", exitDamage),
	fmt.Sprintf("%d: usage error, archive cannot be opened, output exists without --force, repair without recovery volumes, or any other failure", exitFatal),
	fmt.Sprintf("%d: interrupted (SIGINT, SIGTERM or SIGHUP); create leaves no file named like a volume. A second signal while create, extract, repair or recovery add stops cleanly ends it at once (killed by the signal; the next create, repair or recovery add removes the temporary files they leave; extract leaves the files it was writing as they are, and those of DEST's that --force had moved aside as .arcpack-replaced.N)", exitInterrupted),
}

func newManCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "man DIR",
		Short: "Write arcpack's manual pages (arcpack.1, arcpack-create.1, ...) into DIR",
		Long: `Write a manual page in roff for arcpack and for each of its commands into DIR
(created when missing): arcpack.1, arcpack-create.1, arcpack-list.1, ... They say
what --help says, plus the exit status. arcmount writes its own page with
'arcmount --man DIR'.`,
		Example: `  arcpack man /usr/local/share/man/man1 && mandb -q
  arcpack man /tmp/man && man -l /tmp/man/arcpack-create.1`,
		Args: exactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			files, err := manpage.Generate(args[0], c.Root(), manpage.Options{
				Source:     "arc " + version,
				Manual:     "arc manual",
				ExitStatus: exitStatus,
				SeeAlso:    []string{"arcmount(1)"},
			})
			if err != nil {
				return fmt.Errorf("man: %w", err)
			}
			fmt.Fprintf(c.OutOrStdout(), "%d pages written to %s\n", len(files), termsafe.Name(args[0]))
			return nil
		},
	}
}
