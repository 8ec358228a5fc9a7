package main

import (
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
volumes (OUT.001, OUT.002, ...), and lists, verifies and extracts them.
Mount an archive read-only with arcmount.`,
		Example: `  arcpack create ~/photos -o /backup/photos
  arcpack list /backup/photos.001 -l
  arcpack verify /backup/photos.001
  arcpack extract /backup/photos.001 -o restore/ 2024/summer`,
		Version:       version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	u := &units{}
	root.PersistentFlags().BoolVar(&u.bytes, "bytes", false, "show sizes as exact byte counts instead of KiB/MiB/GiB")
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usageErrorf("%s: %v (see '%s --help')", c.Name(), err, c.CommandPath())
	})
	root.AddCommand(newCreateCommand(u), newListCommand(), newInfoCommand(u),
		newVerifyCommand(u), newExtractCommand(u), newCatCommand())
	for _, f := range extraCommands {
		root.AddCommand(f())
	}
	return root
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

func minArgs(n int) cobra.PositionalArgs {
	return func(c *cobra.Command, args []string) error {
		if len(args) < n {
			return usageErrorf("%s: want at least %d argument(s), got %d (see '%s --help')", c.Name(), n, len(args), c.CommandPath())
		}
		return nil
	}
}
