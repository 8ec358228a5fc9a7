package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"
)

// addProgressFlag adds --progress auto|always|never to c.
func addProgressFlag(c *cobra.Command, mode *string) {
	c.Flags().StringVar(mode, "progress", "auto", "progress bar on stderr: auto (when stderr is a terminal), always, never")
}

// wantProgress decides whether to draw a bar.
func wantProgress(mode string) (bool, error) {
	switch mode {
	case "auto":
		return term.IsTerminal(int(os.Stderr.Fd())), nil
	case "always":
		return true, nil
	case "never":
		return false, nil
	}
	return false, usageErrorf("invalid --progress %q (want auto, always or never)", mode)
}

// bar is a byte progress bar on stderr; a nil *bar draws nothing, so callers
// need no conditions.
type bar struct {
	pb    *progressbar.ProgressBar
	total int64
	desc  string
}

func newBar(on bool, desc string, total int64) *bar {
	if !on {
		return nil
	}
	b := &bar{total: total, desc: desc}
	b.pb = newBytesBar(os.Stderr, desc, total)
	return b
}

func newBytesBar(w io.Writer, desc string, total int64) *progressbar.ProgressBar {
	if total <= 0 {
		total = -1
	}
	return progressbar.NewOptions64(total,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription(desc),
		progressbar.OptionShowBytes(true),
		// MiB, as the summaries and every size arcpack prints.
		progressbar.OptionUseIECUnits(true),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionShowCount(),
		progressbar.OptionClearOnFinish(),
		progressbar.OptionOnCompletion(func() { fmt.Fprint(w, "\r\033[K") }),
	)
}

// update sets the bar to done of total bytes, relabelling it when the phase changes.
func (b *bar) update(desc string, done, total int64) {
	if b == nil {
		return
	}
	if total != b.total && total > 0 {
		b.total = total
		b.pb.ChangeMax64(total)
	}
	if desc != "" && desc != b.desc {
		b.desc = desc
		b.pb.Describe(desc)
	}
	_ = b.pb.Set64(done)
}

// done removes the bar from the terminal.
func (b *bar) done() {
	if b == nil {
		return
	}
	_ = b.pb.Clear()
	_ = b.pb.Exit()
	fmt.Fprint(os.Stderr, "\r\033[K")
}
