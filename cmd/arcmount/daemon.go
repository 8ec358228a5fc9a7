package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"

	"arc/fs"
)

// startDaemon runs this program again in the background and waits for the
// child's report on a pipe: "ok" once the mount is ready, or one error
// line. The child is in its own session, so the terminal's signals and
// closing do not reach it, and it holds none of our output streams (a
// caller reading our output to EOF would otherwise wait for the unmount).
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
	out, err := logOutput(c.logFile)
	if err != nil {
		w.Close()
		return err
	}
	cmd := exec.Command(exe, os.Args[1:]...)
	cmd.Env = append(os.Environ(), daemonEnv+"=3")
	cmd.ExtraFiles = []*os.File{w} // fd 3
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err = cmd.Start()
	w.Close()
	out.Close()
	if err != nil {
		return err
	}
	line, _ := bufio.NewReader(r).ReadString('\n')
	line = strings.TrimSuffix(line, "\n")
	switch {
	case line == "ok":
		pid := cmd.Process.Pid
		cmd.Process.Release()
		fmt.Printf("arcmount: %s mounted on %s (pid %d); unmount with: fusermount3 -u %s\n",
			c.archive, c.mountpoint, pid, c.mountpoint)
		return nil
	case strings.HasPrefix(line, "error: "):
		cmd.Wait()
		return errors.New(strings.TrimPrefix(line, "error: "))
	default:
		err := cmd.Wait()
		return fmt.Errorf("the background server ended before the mount was ready (%v)", err)
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

// serveDaemon is the background child: it reports readiness or its error
// on the inherited pipe, then serves until unmounted.
func serveDaemon(c *config, o fs.Options) error {
	fd, err := strconv.Atoi(os.Getenv(daemonEnv))
	if err != nil {
		return fmt.Errorf("%s: %v", daemonEnv, err)
	}
	os.Unsetenv(daemonEnv)
	report := os.NewFile(uintptr(fd), "ready")
	if err := os.Chdir("/"); err != nil { // do not pin the caller's directory
		return err
	}
	err = serve(c, o, os.Stderr, func() {
		fmt.Fprintln(report, "ok")
		report.Close()
		report = nil
	})
	if err != nil && report != nil {
		fmt.Fprintf(report, "error: %s\n", strings.ReplaceAll(err.Error(), "\n", " "))
	}
	return err
}
