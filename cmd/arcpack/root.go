package main

import (
	"strings"

	"github.com/spf13/cobra"
)

// version is set at link time: -ldflags "-X main.version=v1.2.3".
var version = "dev"

// extraCommands lets other files of this package (gpu.go) add subcommands
// from their init without this file knowing them.
var extraCommands []func() *cobra.Command

func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "arcpack",
		Short: "Deduplicating, compressing, multi-volume archiver",
		Long: `arcpack packs directory trees into deduplicated, compressed archives split into
volumes (OUT.001, OUT.002, ...), and lists, verifies and extracts them. Any
volume's name opens the archive. Mount an archive read-only with arcmount.

Sizes are shown in KiB, MiB and GiB (powers of 1024); --bytes shows exact byte
counts for scripts, and list, info and verify have --json (docs/CLI.md).
Exit status: 0 success, 1 damage found, or files skipped or not kept as they
were (warned), 2 usage error or failure, 130 interrupted.`,
		Example: `  arcpack create ~/photos -o /backup/photos
  arcpack list /backup/photos.001 -l
  arcpack verify /backup/photos.001
  arcpack extract /backup/photos.001 -o restore/ 2024/summer
  arcmount /backup/photos.001 /mnt/photos`,
		Version:       version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	u := &units{}
	root.PersistentFlags().BoolVar(&u.bytes, "bytes", false, "show sizes as exact byte counts instead of KiB/MiB/GiB")
	// SIGINT, SIGTERM and SIGHUP end a command with exit 130 and a line
	// saying so; create, repair and recovery add stop cleanly themselves.
	root.PersistentPreRun = func(c *cobra.Command, args []string) {
		if c.Annotations[ownSignals] != "" {
			return
		}
		what := strings.TrimPrefix(c.CommandPath(), "arcpack ")
		if len(args) > 0 {
			what += " " + args[0]
		}
		exitOnInterrupt(func() string { return what + ": interrupted" })
	}
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		if !c.HasParent() { // "arcpack: " starts every message already
			return usageErrorf("%v (see '%s --help')", err, c.CommandPath())
		}
		return usageErrorf("%s: %v (see '%s --help')", c.Name(), err, c.CommandPath())
	})
	root.AddCommand(newCreateCommand(u), newListCommand(u), newInfoCommand(u),
		newVerifyCommand(u), newExtractCommand(u), newCatCommand(), newManCommand())
	for _, f := range extraCommands {
		root.AddCommand(f())
	}
	addGPUFlags(root) // --gpu, --gpu-device on create, verify, extract (gpu.go)
	addBuiltinExamples(root)
	return root
}

// addBuiltinExamples creates cobra's own help and completion commands now
// (Execute would create them later) to give them examples like the rest.
func addBuiltinExamples(root *cobra.Command) {
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	for _, c := range root.Commands() {
		switch c.Name() {
		case "help":
			c.Example = "  arcpack help create\n  arcpack create --help"
			// Cobra's help prints the usage and exits 0 on an unknown
			// topic; a mistyped command is a usage error like any other.
			c.RunE = func(c *cobra.Command, args []string) error {
				cmd, _, err := c.Root().Find(args)
				if err != nil || cmd == nil || (len(args) > 0 && cmd == c.Root()) {
					return usageErrorf("help: unknown command %q (see 'arcpack --help')", strings.Join(args, " "))
				}
				return cmd.Help()
			}
		case "completion":
			c.Example = "  arcpack completion bash > /etc/bash_completion.d/arcpack\n" +
				"  arcpack completion zsh > \"${fpath[1]}/_arcpack\"\n" +
				"  arcpack completion fish > ~/.config/fish/completions/arcpack.fish"
			// Cobra prints the help and exits 0 on a shell it does not
			// know: 'completion tcsh > FILE' would write the help into FILE.
			c.Args = func(c *cobra.Command, args []string) error {
				if len(args) > 0 {
					return usageErrorf("completion: unknown shell %q (want bash, zsh, fish or powershell; see 'arcpack completion --help')", args[0])
				}
				return nil
			}
			c.RunE = func(c *cobra.Command, args []string) error { return c.Help() }
			for _, sh := range c.Commands() {
				switch sh.Name() {
				case "bash":
					sh.Example = "  source <(arcpack completion bash)                      # this shell\n" +
						"  arcpack completion bash > /etc/bash_completion.d/arcpack  # every new shell"
				case "zsh":
					sh.Example = "  source <(arcpack completion zsh)\n  arcpack completion zsh > \"${fpath[1]}/_arcpack\""
				case "fish":
					sh.Example = "  arcpack completion fish | source\n  arcpack completion fish > ~/.config/fish/completions/arcpack.fish"
				case "powershell":
					sh.Example = "  arcpack completion powershell | Out-String | Invoke-Expression"
				}
			}
		}
	}
}

// exactArgs and minArgs are cobra's validators with usage exit codes.
func exactArgs(n int) cobra.PositionalArgs {
	return func(c *cobra.Command, args []string) error {
		if len(args) != n {
			return usageErrorf("%s: want %d argument(s), got %d (see '%s --help')", c.Name(), n, len(args), c.CommandPath())
		}
		return nil
	}
}

// subcommandArgs: a command that only groups others takes no argument of
// its own; one given is a subcommand mistyped, said as the root says it
// ("want 0 arguments" read as if the command needed none).
func subcommandArgs(c *cobra.Command, args []string) error {
	if len(args) == 0 || args[0] == "help" && len(args) <= 2 { // as the root takes "help CMD"
		return nil
	}
	var names []string
	for _, s := range c.Commands() {
		if s.IsAvailableCommand() {
			names = append(names, s.Name())
		}
	}
	return usageErrorf("%s: unknown command %q (it has: %s; see '%s --help')", c.Name(), args[0], strings.Join(names, ", "), c.CommandPath())
}

func minArgs(n int) cobra.PositionalArgs {
	return func(c *cobra.Command, args []string) error {
		if len(args) < n {
			return usageErrorf("%s: want at least %d argument(s), got %d (see '%s --help')", c.Name(), n, len(args), c.CommandPath())
		}
		return nil
	}
}
