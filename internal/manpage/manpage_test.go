package manpage

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// tree is a small command tree with the cases a page must survive: a
// description with a literal block and text that looks like roff, flags
// of several kinds, a hidden command and a nested command.
func tree() *cobra.Command {
	root := &cobra.Command{Use: "tool", Short: "Does things", Example: "  tool run x", Run: func(*cobra.Command, []string) {}}
	root.PersistentFlags().Bool("bytes", false, "exact byte counts")
	run := &cobra.Command{
		Use:   "run FILE...",
		Short: "Run FILE",
		Long: `Run each FILE. A line of help that starts with a dot:
.TH would be a request, and 'quote too; a backslash \n stays.

  tool run -x a   # literal
  tool run b`,
		Example: "  tool run a.txt\n  tool run --size 4M b.txt",
		Aliases: []string{"r"},
		Run:     func(*cobra.Command, []string) {},
	}
	run.Flags().StringP("output", "o", "", "write to `FILE`")
	run.Flags().String("mode", "fast", "fast or slow")
	run.Flags().Int("workers", 0, "workers (0 = one per CPU)")
	run.Flags().Bool("secret", false, "not shown")
	_ = run.Flags().MarkHidden("secret")
	group := &cobra.Command{Use: "group", Short: "A group", Example: "  tool group leaf"}
	leaf := &cobra.Command{Use: "leaf", Short: "A leaf", Example: "  tool group leaf", Run: func(*cobra.Command, []string) {}}
	hidden := &cobra.Command{Use: "internal", Short: "Hidden", Hidden: true, Run: func(*cobra.Command, []string) {}}
	group.AddCommand(leaf)
	root.AddCommand(run, group, hidden)
	return root
}

func TestGenerateWritesAPagePerVisibleCommand(t *testing.T) {
	dir := t.TempDir()
	files, err := Generate(dir, tree(), Options{Source: "tool 1.0", Manual: "tool manual", ExitStatus: []string{"0: ok", "2: usage"}})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range files {
		names = append(names, filepath.Base(f))
	}
	want := "tool-group-leaf.1 tool-group.1 tool-run.1 tool.1"
	sort.Strings(names)
	got := strings.Join(names, " ")
	if got != want {
		t.Fatalf("pages %s, want %s (the hidden command has none)", got, want)
	}
}

func TestPageHasTheSectionsAndEscapesRoff(t *testing.T) {
	root := tree()
	run, _, _ := root.Find([]string{"run"})
	var b bytes.Buffer
	if err := Write(&b, run, Options{Source: "tool 1.0", Manual: "tool manual", ExitStatus: []string{"0: ok", "2: usage error"}, SeeAlso: []string{"other(8)"}}); err != nil {
		t.Fatal(err)
	}
	page := b.String()
	for _, want := range []string{
		".TH \"TOOL\\-RUN\" 1 \"\" \"tool 1.0\" \"tool manual\"\n",
		".SH NAME\ntool\\-run \\- Run FILE\n",
		".SH SYNOPSIS\n.B tool run\nFILE... [flags]\n",
		".SH DESCRIPTION\n",
		"\\&.TH would be a request, and 'quote too; a backslash \\en stays.\n",
		".RS\n.nf\ntool run \\-x a   # literal\ntool run b\n.fi\n.RE\n",
		"Also called: r.\n",
		".SH OPTIONS\n",
		".TP\n\\fB\\-o\\fR, \\fB\\-\\-output\\fR \\fIFILE\\fR\nwrite to FILE\n",
		".TP\n\\fB\\-\\-mode\\fR \\fIstring\\fR\nfast or slow (default \"fast\")\n",
		".TP\n\\fB\\-\\-workers\\fR \\fIint\\fR\nworkers (0 = one per CPU)\n",
		".SH GLOBAL OPTIONS\n.TP\n\\fB\\-\\-bytes\\fR\nexact byte counts\n",
		".SH EXAMPLES\n.PP\n.RS\n.nf\ntool run a.txt\ntool run \\-\\-size 4M b.txt\n.fi\n.RE\n",
		".SH EXIT STATUS\n.TP\n.B 0\nok\n.TP\n.B 2\nusage error\n",
		".SH SEE ALSO\n\\fBtool\\fR(1),\n\\fBother\\fR(8)\n",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q:\n%s", want, page)
		}
	}
	if strings.Contains(page, "secret") {
		t.Errorf("page shows a hidden flag:\n%s", page)
	}
	for i, l := range strings.Split(page, "\n") {
		if strings.HasPrefix(l, "'") || (strings.HasPrefix(l, ".") && !knownMacro(l)) {
			t.Errorf("line %d %q would be read as an unknown roff request", i+1, l)
		}
	}
}

// knownMacro: the requests and man(7) macros the pages use.
func knownMacro(l string) bool {
	name, _, _ := strings.Cut(l[1:], " ")
	switch name {
	case "TH", "SH", "PP", "TP", "B", "RS", "RE", "nf", "fi":
		return true
	}
	return false
}

func TestPageWithSubcommandsListsThem(t *testing.T) {
	root := tree()
	group, _, _ := root.Find([]string{"group"})
	var b bytes.Buffer
	if err := Write(&b, group, Options{}); err != nil {
		t.Fatal(err)
	}
	page := b.String()
	for _, want := range []string{".SH COMMANDS\n.TP\n\\fBleaf\\fR\nA leaf\n", "\\fICOMMAND\\fR\n", ".SH SEE ALSO\n\\fBtool\\fR(1),\n\\fBtool\\-group\\-leaf\\fR(1)\n"} {
		if !strings.Contains(page, want) {
			t.Errorf("group page lacks %q:\n%s", want, page)
		}
	}
}

// TestGroffReadsThePagesWithoutWarnings formats every page with groff's
// strictest warnings where groff is installed.
func TestGroffReadsThePagesWithoutWarnings(t *testing.T) {
	groff, err := exec.LookPath("groff")
	if err != nil {
		t.Skip("groff not installed")
	}
	dir := t.TempDir()
	files, err := Generate(dir, tree(), Options{Source: "tool 1.0", Manual: "tool manual", ExitStatus: []string{"0: ok"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		out, err := exec.Command(groff, "-man", "-Tutf8", "-ww", "-z", f).CombinedOutput()
		if err != nil || len(out) != 0 {
			b, _ := os.ReadFile(f)
			t.Errorf("groff on %s: %v\n%s\npage:\n%s", filepath.Base(f), err, out, b)
		}
	}
}
