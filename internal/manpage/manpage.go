// Package manpage writes manual pages in roff (the man(7) macros) from a
// cobra command tree, so that `man arcpack-create` says what
// `arcpack create --help` says, with the exit status and cross references
// a manual page adds. It needs no markdown converter: the help texts are
// plain paragraphs, and plain paragraphs are all it renders.
package manpage

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// Options are what a page says beyond the command's own help.
type Options struct {
	Section string // manual section; "1" when empty
	Source  string // the .TH source field, e.g. "arc v1.2"
	Manual  string // the .TH manual field, e.g. "arc manual"
	// ExitStatus is the EXIT STATUS section, one "code: meaning" per line.
	ExitStatus []string
	// SeeAlso names further pages ("arcmount(1)") listed after the
	// command's parent and subcommands.
	SeeAlso []string
	// Notes, when set, is a NOTES section (plain paragraphs).
	Notes string
}

// Commands lists c and every command below it that has a page: those a
// user can run or ask help for (hidden ones and cobra's internal
// completion requests are left out), in the order help lists them.
func Commands(c *cobra.Command) []*cobra.Command {
	out := []*cobra.Command{c}
	for _, s := range c.Commands() {
		if !s.IsAvailableCommand() && s.Name() != "help" {
			continue
		}
		out = append(out, Commands(s)...)
	}
	return out
}

// FileName is the page's file name: the command path joined by dashes
// plus the section ("arcpack-create.1").
func FileName(c *cobra.Command, section string) string {
	if section == "" {
		section = "1"
	}
	return pageName(c) + "." + section
}

func pageName(c *cobra.Command) string {
	return strings.ReplaceAll(c.CommandPath(), " ", "-")
}

// Generate writes the page of root and of every command below it into
// dir and returns the files written.
func Generate(dir string, root *cobra.Command, opt Options) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	var files []string
	for _, c := range Commands(root) {
		name := filepath.Join(dir, FileName(c, opt.Section))
		f, err := os.Create(name)
		if err != nil {
			return files, err
		}
		err = Write(f, c, opt)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return files, fmt.Errorf("%s: %w", name, err)
		}
		files = append(files, name)
	}
	return files, nil
}

// Write writes c's page to w.
func Write(w io.Writer, c *cobra.Command, opt Options) error {
	sec := opt.Section
	if sec == "" {
		sec = "1"
	}
	b := bufio.NewWriter(w)
	name := pageName(c)
	fmt.Fprintf(b, ".TH %s %s \"\" %s %s\n", quote(strings.ToUpper(name)), sec, quote(opt.Source), quote(opt.Manual))
	fmt.Fprintf(b, ".SH NAME\n%s \\- %s\n", escape(name), escape(c.Short))

	b.WriteString(".SH SYNOPSIS\n")
	use := c.UseLine()
	path := c.CommandPath()
	fmt.Fprintf(b, ".B %s\n", escape(path))
	if rest := strings.TrimSpace(strings.TrimPrefix(use, path)); rest != "" {
		fmt.Fprintf(b, "%s\n", escape(rest))
	}
	if c.HasAvailableSubCommands() && !c.Runnable() {
		b.WriteString("\\fICOMMAND\\fR\n")
	}

	b.WriteString(".SH DESCRIPTION\n")
	desc := c.Long
	if desc == "" {
		desc = c.Short
	}
	paragraphs(b, desc)
	if len(c.Aliases) > 0 {
		fmt.Fprintf(b, ".PP\nAlso called: %s.\n", escape(strings.Join(c.Aliases, ", ")))
	}

	if subs := subcommands(c); len(subs) > 0 {
		b.WriteString(".SH COMMANDS\n")
		for _, s := range subs {
			fmt.Fprintf(b, ".TP\n\\fB%s\\fR\n%s\n", escape(s.Name()), escape(s.Short))
		}
	}
	if fs := c.NonInheritedFlags(); fs.HasAvailableFlags() {
		b.WriteString(".SH OPTIONS\n")
		flags(b, fs)
	}
	if fs := c.InheritedFlags(); fs.HasAvailableFlags() {
		b.WriteString(".SH GLOBAL OPTIONS\n")
		flags(b, fs)
	}
	if c.Example != "" {
		b.WriteString(".SH EXAMPLES\n.PP\n.RS\n.nf\n")
		for _, l := range strings.Split(strings.Trim(c.Example, "\n"), "\n") {
			fmt.Fprintf(b, "%s\n", escape(strings.TrimPrefix(l, "  ")))
		}
		b.WriteString(".fi\n.RE\n")
	}
	if len(opt.ExitStatus) > 0 {
		b.WriteString(".SH EXIT STATUS\n")
		for _, l := range opt.ExitStatus {
			code, meaning, _ := strings.Cut(l, ":")
			fmt.Fprintf(b, ".TP\n.B %s\n%s\n", escape(strings.TrimSpace(code)), escape(strings.TrimSpace(meaning)))
		}
	}
	if opt.Notes != "" {
		b.WriteString(".SH NOTES\n")
		paragraphs(b, opt.Notes)
	}
	var see []string
	if p := c.Parent(); p != nil {
		see = append(see, fmt.Sprintf("\\fB%s\\fR(%s)", escape(pageName(p)), sec))
	}
	for _, s := range subcommands(c) {
		see = append(see, fmt.Sprintf("\\fB%s\\fR(%s)", escape(pageName(s)), sec))
	}
	for _, s := range opt.SeeAlso {
		n, section, ok := strings.Cut(strings.TrimSuffix(s, ")"), "(")
		if ok {
			see = append(see, fmt.Sprintf("\\fB%s\\fR(%s)", escape(n), escape(section)))
		} else {
			see = append(see, escape(s))
		}
	}
	if len(see) > 0 {
		fmt.Fprintf(b, ".SH SEE ALSO\n%s\n", strings.Join(see, ",\n"))
	}
	return b.Flush()
}

// subcommands are the commands below c that have pages of their own.
func subcommands(c *cobra.Command) []*cobra.Command {
	var out []*cobra.Command
	for _, s := range c.Commands() {
		if s.IsAvailableCommand() || s.Name() == "help" {
			out = append(out, s)
		}
	}
	return out
}

// flags lists a flag set as tagged paragraphs, sorted by long name as
// help sorts them.
func flags(b *bufio.Writer, fs *pflag.FlagSet) {
	var all []*pflag.Flag
	fs.VisitAll(func(f *pflag.Flag) {
		if !f.Hidden {
			all = append(all, f)
		}
	})
	sort.Slice(all, func(i, j int) bool { return all[i].Name < all[j].Name })
	for _, f := range all {
		varname, usage := pflag.UnquoteUsage(f)
		b.WriteString(".TP\n")
		if f.Shorthand != "" {
			fmt.Fprintf(b, "\\fB\\-%s\\fR, ", escape(f.Shorthand))
		}
		fmt.Fprintf(b, "\\fB\\-\\-%s\\fR", escape(f.Name))
		if varname != "" {
			fmt.Fprintf(b, " \\fI%s\\fR", escape(varname))
		}
		b.WriteString("\n")
		if def := defaultText(f); def != "" {
			usage += " (default " + def + ")"
		}
		fmt.Fprintf(b, "%s\n", escape(usage))
	}
}

// defaultText is the default worth printing, as help prints it.
func defaultText(f *pflag.Flag) string {
	switch f.DefValue {
	case "", "false", "[]", "<nil>":
		return ""
	case "0":
		if f.Value.Type() == "int" || f.Value.Type() == "count" {
			return ""
		}
	}
	if f.Value.Type() == "string" {
		return fmt.Sprintf("%q", f.DefValue)
	}
	return f.DefValue
}

// paragraphs renders plain text: blank lines separate paragraphs, and a
// line indented by spaces is kept as written (a literal block).
func paragraphs(b *bufio.Writer, text string) {
	inLiteral := false
	b.WriteString(".PP\n")
	for _, l := range strings.Split(strings.TrimSpace(text), "\n") {
		switch {
		case strings.TrimSpace(l) == "":
			if inLiteral {
				b.WriteString(".fi\n.RE\n")
				inLiteral = false
			}
			b.WriteString(".PP\n")
		case strings.HasPrefix(l, "  "):
			if !inLiteral {
				b.WriteString(".RS\n.nf\n")
				inLiteral = true
			}
			fmt.Fprintf(b, "%s\n", escape(strings.TrimPrefix(l, "  ")))
		default:
			if inLiteral {
				b.WriteString(".fi\n.RE\n")
				inLiteral = false
			}
			fmt.Fprintf(b, "%s\n", escape(l))
		}
	}
	if inLiteral {
		b.WriteString(".fi\n.RE\n")
	}
}

// escape makes text safe as roff input: backslashes and dashes are
// written as escapes, and a line starting with a control character (.
// or ') is kept from being read as a request.
func escape(s string) string {
	s = strings.NewReplacer(`\`, `\e`, "-", `\-`).Replace(s)
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, ".") || strings.HasPrefix(l, "'") {
			lines[i] = `\&` + l
		}
	}
	return strings.Join(lines, "\n")
}

// quote is a .TH argument: in double quotes, with its own quotes removed.
func quote(s string) string {
	return `"` + strings.ReplaceAll(escape(s), `"`, `'`) + `"`
}
