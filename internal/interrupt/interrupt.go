// Package interrupt names the signals that interrupt arcpack and arcmount.
package interrupt

import (
	"os"
	"os/signal"
	"syscall"
)

// Signals are the signals that interrupt a command: SIGINT, SIGTERM and
// SIGHUP, less those ignored when the process started. signal.Notify
// installs a handler even for an ignored signal, so that `nohup arcpack
// create ...` would end at the hangup nohup is there to keep from it, a
// script's background job (SIGINT ignored) at a Ctrl-C meant for the
// script, and `nohup arcmount -f` unmount at the hangup. Empty when all
// three are ignored: then pass none to signal.Notify, which with no
// signals relays every one.
func Signals() []os.Signal {
	var sigs []os.Signal
	for _, s := range []os.Signal{os.Interrupt, syscall.SIGTERM, syscall.SIGHUP} {
		if !signal.Ignored(s) {
			sigs = append(sigs, s)
		}
	}
	return sigs
}
