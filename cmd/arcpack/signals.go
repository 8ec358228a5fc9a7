package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"

	"arc/internal/interrupt"
	"arc/internal/termsafe"

	"golang.org/x/term"
)

// interruptContext is signal.NotifyContext for interrupt.Signals, for the
// commands that stop cleanly on a signal (create, extract, repair,
// recovery add).
// Only the first signal is theirs: a second one ends the process as if
// arcpack had no handler (a clean stop that waits on something stuck, a
// device that never answers, must not make the signal useless; what an
// abrupt end leaves, temporary files, the next run removes).
func interruptContext() (context.Context, context.CancelFunc) {
	sigs := interrupt.Signals()
	if len(sigs) == 0 {
		return context.WithCancel(context.Background())
	}
	ctx, stop := signal.NotifyContext(context.Background(), sigs...)
	go func() {
		<-ctx.Done()
		stop()
	}()
	return ctx, stop
}

// ownSignals is the annotation of the commands that handle
// interrupt.Signals themselves (interruptContext); the root command gives
// the others exitOnInterrupt.
const ownSignals = "arcpack.own-signals"

// exitOnInterrupt makes interrupt.Signals end the process with exit 130
// and the line "arcpack: MSG" (msg is called then), as docs/CLI.md's exit
// codes have it: without a handler Go dies of the signal without a word,
// which a shell reports as 143 for SIGTERM and 129 for SIGHUP. It is for
// what has nothing to undo when stopped (list, cat, info, verify,
// recovery add's check); stop ends it.
func exitOnInterrupt(msg func() string) (stop func()) {
	sigs := interrupt.Signals()
	if len(sigs) == 0 {
		return func() {}
	}
	ch := make(chan os.Signal, 1)
	quit := make(chan struct{})
	signal.Notify(ch, sigs...)
	go func() {
		select {
		case <-ch:
		case <-quit:
			return
		}
		if term.IsTerminal(int(os.Stderr.Fd())) {
			fmt.Fprint(os.Stderr, "\r\033[K") // a progress bar's line
		}
		fmt.Fprintf(os.Stderr, "arcpack: %s\n", termsafe.Name(msg()))
		os.Exit(exitInterrupted)
	}()
	return func() {
		signal.Stop(ch)
		close(quit)
	}
}
