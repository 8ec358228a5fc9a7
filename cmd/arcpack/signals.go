package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"arc/internal/termsafe"

	"golang.org/x/term"
)

// interruptSignals are the signals that interrupt a command (exit 130):
// SIGINT, SIGTERM and SIGHUP, less those ignored when arcpack started.
// signal.Notify installs a handler even for an ignored signal, so that
// `nohup arcpack create ...` would end at the hangup nohup is there to
// keep from it, and a script's background job (SIGINT ignored) at a
// Ctrl-C meant for the script.
func interruptSignals() []os.Signal {
	var sigs []os.Signal
	for _, s := range []os.Signal{os.Interrupt, syscall.SIGTERM, syscall.SIGHUP} {
		if !signal.Ignored(s) {
			sigs = append(sigs, s)
		}
	}
	return sigs
}

// interruptContext is signal.NotifyContext for interruptSignals, for the
// commands that stop cleanly on a signal (create, repair, recovery add).
func interruptContext() (context.Context, context.CancelFunc) {
	sigs := interruptSignals()
	if len(sigs) == 0 {
		return context.WithCancel(context.Background())
	}
	return signal.NotifyContext(context.Background(), sigs...)
}

// ownSignals is the annotation of the commands that handle
// interruptSignals themselves (interruptContext); the root command gives
// the others exitOnInterrupt.
const ownSignals = "arcpack.own-signals"

// exitOnInterrupt makes interruptSignals end the process with exit 130
// and the line "arcpack: MSG" (msg is called then), as docs/CLI.md's exit
// codes have it: without a handler Go dies of the signal without a word,
// which a shell reports as 143 for SIGTERM and 129 for SIGHUP. It is for
// what has nothing to undo when stopped (list, cat, info, verify,
// extract, recovery add's check); stop ends it.
func exitOnInterrupt(msg func() string) (stop func()) {
	sigs := interruptSignals()
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
