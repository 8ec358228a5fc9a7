package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
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
