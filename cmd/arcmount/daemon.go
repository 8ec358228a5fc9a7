package main

import (
	"bufio"
	"errors"
	"fmt"
	"log"
	"math"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"arc/fs"
	"arc/internal/interrupt"
	"arc/internal/termsafe"

	"golang.org/x/sys/unix"
)

// startDaemon runs this program again in the background and waits for the
// child's report on a pipe: "ok" once the mount is ready, or one error
// line. The child is in its own session, so the terminal's signals and
// closing do not reach it, and it keeps none of our output streams (a
// caller reading our output to EOF would otherwise wait for the unmount).
// Until it is ready its stdout and stderr are a pipe to us, so that what
// the FUSE helper (fusermount3) prints there reaches the user with the
// error; from then on they are the --log file, or nowhere.
func startDaemon(c *config) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	defer r.Close()
	er, ew, err := os.Pipe()
	if err != nil {
		w.Close()
		return err
	}
	defer er.Close()
	out, err := logOutput(c.logFile)
	if err != nil {
		w.Close()
		ew.Close()
		return err
	}
	cmd := exec.Command(exe, os.Args[1:]...)
	cmd.Env = append(os.Environ(), daemonEnv+"=3")
	cmd.ExtraFiles = []*os.File{w, out} // fd 3: the report; fd 4: the log
	cmd.Stdout, cmd.Stderr = ew, ew
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	// Interrupted while we wait (Ctrl-C on a slow open), the user wants
	// no mount: the child, in a session of its own, would not hear of it
	// and mount anyway. It is told to stop (on SIGTERM it unmounts, or
	// ends before it mounts), and we wait for it to. The signals are
	// ours from before the child starts: one that came between its start
	// and the handler ended us and left it to mount.
	var stop chan os.Signal
	if sigs := interrupt.Signals(); len(sigs) > 0 {
		stop = make(chan os.Signal, 1)
		signal.Notify(stop, sigs...)
		defer signal.Stop(stop)
	}
	inheritNothing()
	err = cmd.Start()
	w.Close()
	ew.Close()
	out.Close()
	if err != nil {
		return err
	}
	said := make(chan string, 1)
	go func() {
		// The helper's complaint is a line or two; keep the last 4 KiB.
		var tail []byte
		buf := make([]byte, 4096)
		for {
			n, err := er.Read(buf)
			tail = append(tail, buf[:n]...)
			if len(tail) > 4096 {
				tail = tail[len(tail)-4096:]
			}
			if err != nil {
				said <- string(tail)
				return
			}
		}
	}()
	var interrupted, gaveUp atomic.Bool
	waited := make(chan struct{})
	defer close(waited)
	if stop != nil {
		go func() {
			select {
			case <-stop:
				interrupted.Store(true)
				cmd.Process.Signal(syscall.SIGTERM)
			case <-waited:
				return
			}
			// A second signal: the server has not ended (held by an
			// open that stalls); stop waiting for it. It ends as soon as
			// it can, having mounted nothing.
			select {
			case <-stop:
				gaveUp.Store(true)
				r.Close()
			case <-waited:
			}
		}()
	}
	line, _ := bufio.NewReader(r).ReadString('\n')
	line = strings.TrimSuffix(line, "\n")
	if gaveUp.Load() {
		return fmt.Errorf("interrupted: %s not mounted (the server, told to stop, ends once it can)", termsafe.Name(c.archive))
	}
	if interrupted.Load() {
		cmd.Wait() // unmounted, if it had mounted
		return fmt.Errorf("interrupted: %s not mounted", termsafe.Name(c.archive))
	}
	helperSaid := func() string {
		select {
		case s := <-said:
			return s
		case <-time.After(2 * time.Second):
			return ""
		}
	}
	switch {
	case line == "ok":
		pid := cmd.Process.Pid
		cmd.Process.Release()
		// The paths are the user's, but may come from a glob over names
		// someone else chose: escaped as the error line is.
		archive, mnt := termsafe.Name(c.archive), termsafe.Name(c.mountpoint)
		fmt.Printf("arcmount: %s mounted on %s (pid %d); unmount with: fusermount3 -u %s\n",
			archive, mnt, pid, termsafe.Name(termsafe.Word(c.mountpoint)))
		return nil
	case strings.HasPrefix(line, "error: "):
		cmd.Wait()
		return explainMountError(errors.New(strings.TrimPrefix(line, "error: ")), helperSaid())
	default:
		err := cmd.Wait()
		return explainMountError(fmt.Errorf("the background server ended before the mount was ready (%v)", err), helperSaid())
	}
}

// logOutput is where the background child writes: the --log file, or
// nowhere.
func logOutput(name string) (*os.File, error) {
	if name == "" {
		return os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	}
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("--log: %w", err)
	}
	return f, nil
}

// serveDaemon is the background child: it logs to fd 4 (the --log file
// or /dev/null), reports readiness or its error on the inherited pipe
// (fd 3), then serves until unmounted.
func serveDaemon(c *config, o fs.Options) error {
	fd, err := strconv.Atoi(os.Getenv(daemonEnv))
	if err != nil {
		return fmt.Errorf("%s: %v", daemonEnv, err)
	}
	os.Unsetenv(daemonEnv)
	// Ours alone: not for the processes this one starts (the GPU probe,
	// fusermount3), which would hold the report pipe open past our end.
	unix.CloseOnExec(fd)
	unix.CloseOnExec(fd + 1)
	report := os.NewFile(uintptr(fd), "ready")
	logFile := os.NewFile(uintptr(fd+1), "log")
	if c.debug {
		// go-fuse logs requests to the standard logger, stderr: until
		// "ok" that is the pipe to the parent, which drops it, and with
		// it the mount's first requests.
		log.SetOutput(logFile)
	}
	if err := os.Chdir("/"); err != nil { // do not pin the caller's directory
		return err
	}
	err = serve(c, o, logFile, func() {
		// The parent stops reading stdout and stderr when it exits:
		// point them at the log before saying so.
		for _, std := range []int{1, 2} {
			_ = unix.Dup3(int(logFile.Fd()), std, 0)
		}
		fmt.Fprintln(report, "ok")
		report.Close()
		report = nil
	})
	if err != nil && report != nil {
		fmt.Fprintf(report, "error: %s\n", strings.ReplaceAll(err.Error(), "\n", " "))
	}
	return err
}

// inheritNothing marks every descriptor from 3 up close-on-exec before the
// server starts: one its caller let this process inherit (a pipe the
// caller waits on for EOF) would otherwise live on in the server until the
// unmount. The server's own (the report, the log) are handed to it as
// ExtraFiles, which exec dups into place without the mark.
func inheritNothing() {
	if unix.CloseRange(3, math.MaxUint32, unix.CLOSE_RANGE_CLOEXEC) == nil {
		return
	}
	ents, _ := os.ReadDir("/proc/self/fd") // before Linux 5.11
	for _, e := range ents {
		if fd, err := strconv.Atoi(e.Name()); err == nil && fd >= 3 {
			unix.CloseOnExec(fd)
		}
	}
}
