package main

import (
	"errors"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// The first SIGINT stops a command cleanly (interruptContext's context is
// done); a second one, while the clean stop takes its time, ends the
// process by the signal. Run in a child process, which the second signal
// kills.
func TestASecondSignalEndsTheProcess(t *testing.T) {
	if os.Getenv("ARC_SIGNALS_CHILD") == "1" {
		ctx, stop := interruptContext()
		defer stop()
		syscall.Kill(os.Getpid(), syscall.SIGINT)
		<-ctx.Done()
		// The clean stop hangs; the user presses Ctrl-C again.
		for range 100 {
			syscall.Kill(os.Getpid(), syscall.SIGINT)
			time.Sleep(20 * time.Millisecond)
		}
		os.Exit(0) // the second signal did not end it
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestASecondSignalEndsTheProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), "ARC_SIGNALS_CHILD=1")
	err := cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("the child ended with %v: a second SIGINT after the first stopped it cleanly did not end the process", err)
	}
	if ws, ok := ee.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGINT {
		t.Fatalf("the child ended with %v, want killed by SIGINT", err)
	}
}
