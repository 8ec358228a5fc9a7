// Command arcmount mounts an arc archive as a read-only FUSE filesystem.
//
//	arcmount backup.001 /mnt/backup      # returns once the mount is ready
//	fusermount3 -u /mnt/backup           # ends it
//
// Without -f the server runs in the background: arcmount starts itself
// again as a detached child, waits until that child says the mount is
// ready (or why it failed) and exits.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"syscall"
	"time"

	"arc/format"
	"arc/fs"
	"arc/gpu"
	"arc/internal/bytesize"
	"arc/internal/hint"
	"arc/internal/interrupt"
	"arc/internal/termsafe"
	"arc/reader"

	"github.com/spf13/cobra"
)

// version is set at link time: -ldflags "-X main.version=v1.2.3".
var version = "dev"

// config is the parsed command line.
type config struct {
	archive, mountpoint string
	cacheSize           string
	prefetch            int
	gpu                 string
	gpuDevice           string
	gpuProbe            bool
	options             []string
	foreground, debug   bool
	logFile             string
	manDir              string
}

// Exit codes, documented in README.md and arcmount(1): as arcpack's, 2 is
// a usage error or any failure; there is no partial success to report.
const (
	exitOK   = 0
	exitFail = 2
)

func main() {
	os.Exit(runMain(os.Args[1:]))
}

func runMain(args []string) int {
	cmd := newCommand()
	cmd.SetArgs(args)
	// Cobra adds its completion command (only when called, arcmount having
	// no other) and prints its help with exit 0 for a shell it does not
	// know: 'completion tcsh > FILE' would write the help into FILE.
	cmd.InitDefaultCompletionCmd(args...)
	for _, sub := range cmd.Commands() {
		if sub.Name() == "completion" {
			sub.Args = func(c *cobra.Command, args []string) error {
				if len(args) > 0 {
					return fmt.Errorf("completion: unknown shell %q (want bash, zsh, fish or powershell; see 'arcmount completion --help')", args[0])
				}
				return nil
			}
			sub.RunE = func(c *cobra.Command, args []string) error { return c.Help() }
		}
	}
	if err := cmd.Execute(); err != nil {
		// One line, harmless to a terminal, whatever names (of the
		// archive, the mount point, a volume) or helper output it holds.
		fmt.Fprintf(os.Stderr, "arcmount: %s\n", termsafe.Name(strings.TrimSpace(err.Error())))
		return exitFail
	}
	return exitOK
}

func newCommand() *cobra.Command {
	var c config
	cmd := &cobra.Command{
		Use:   "arcmount ARCHIVE MOUNTPOINT",
		Short: "Mount an arc archive as a read-only filesystem",
		Long: `arcmount serves an arc archive (any of its volumes: NAME.001, NAME.002, ...)
read-only at MOUNTPOINT, an existing directory (what it holds is hidden while
mounted, as with any mount). It returns once the mount is ready, prints where
it mounted and keeps serving in the background; unmount with 'fusermount3 -u
MOUNTPOINT' (or umount as root). With -f it stays in the foreground, logs to
stderr and unmounts on Ctrl-C.

A file in a damaged block or a missing volume fails to read with EIO (one log
line names the file, block, frame and volume: see --log); everything else stays
readable. FUSE must be there: /dev/fuse and, to mount as a user, fusermount3
(Debian and Ubuntu: apt-get install fuse3). -o allow_other lets other users in;
as a user it needs the line user_allow_other in /etc/fuse.conf.

arcmount --man DIR writes this manual page (arcmount.1) into DIR; 'arcmount
completion bash' (zsh, fish, powershell) prints a shell completion script.

Exit status: 0 when mounted (with -f: once unmounted again), 2 on a usage
error or when it could not mount.`,
		Example: `  arcmount /backup/photos.001 /mnt/photos
  arcmount -f --cache-size 2G /backup/photos.001 /mnt/photos
  arcmount -o allow_other --log /var/log/arcmount.log /backup/photos.001 /mnt/photos
  fusermount3 -u /mnt/photos`,
		Args: func(cmd *cobra.Command, args []string) error {
			if (c.manDir != "" || c.gpuProbe) && len(args) == 0 {
				return nil
			}
			if len(args) != 2 {
				return fmt.Errorf("want ARCHIVE and MOUNTPOINT, got %d argument(s) (see 'arcmount --help')", len(args))
			}
			return nil
		},
		Version:       version,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			if c.manDir != "" {
				return writeManPage(cmd, c.manDir)
			}
			if c.gpuProbe {
				return listDevices(cmd.OutOrStdout())
			}
			c.archive, c.mountpoint = args[0], args[1]
			// An empty argument (a script's unset variable) would be
			// taken for this directory: a mount over it hides its files.
			switch {
			case c.archive == "":
				return errors.New("ARCHIVE is empty (give the archive, such as /backup/photos.001)")
			case c.mountpoint == "":
				return errors.New("MOUNTPOINT is empty (give the directory to mount on; '.' for this one)")
			case cmd.Flags().Changed("log") && c.logFile == "":
				return errors.New("--log is empty (give the file to append log lines to)")
			}
			if c.gpuDevice != "" && !cmd.Flags().Changed("gpu") {
				// Naming a device asks for it, as in arcpack: a mount
				// in the background would say only in its log that it
				// fell back to the CPU.
				c.gpu = "on"
			}
			return run(&c)
		},
	}
	cmd.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return fmt.Errorf("%v (see 'arcmount --help')", err)
	})
	f := cmd.Flags()
	f.StringVar(&c.cacheSize, "cache-size", "512M", "memory for decoded blocks: a `SIZE` in bytes with an optional K, M, G or T suffix (powers of 1024); at least four of the archive's largest blocks are held")
	f.IntVar(&c.prefetch, "prefetch", 0, "read ahead on sequential access up to this many frames past the current one (0 = the reader's default, 2; -1 = off)")
	f.StringVar(&c.gpu, "gpu", "auto", "decompress prefetched frames on a GPU: auto (a GPU that passes its self-test, else the CPU), on (fail without one) or off")
	f.StringVar(&c.gpuDevice, "gpu-device", "", "OpenCL `ID` (PLATFORM:DEVICE, as 'arcpack gpu' lists them) to use; any type, a CPU one too; naming one means --gpu=on unless --gpu is given (default: every GPU)")
	f.StringArrayVarP(&c.options, "option", "o", nil, "mount `OPTIONS`, comma separated: allow_other (other users may read, by the archived permissions), fsname=NAME (the source mount and df show; default the archive's path), or any option fusermount3 takes but auto_unmount, subtype and max_read; ro always")
	f.BoolVarP(&c.foreground, "foreground", "f", false, "stay in the foreground, log to stderr, unmount on Ctrl-C")
	f.BoolVar(&c.debug, "debug", false, "log every FUSE request (very verbose; with -f, or --log in the background)")
	f.StringVar(&c.logFile, "log", "", "in the background, append log lines (damaged files, the engine used) to this `FILE` (with -f they go to stderr)")
	f.StringVar(&c.manDir, "man", "", "write the manual page arcmount.1 into `DIR` and exit")
	f.BoolVar(&c.gpuProbe, gpuProbeFlag, false, "list the OpenCL devices, one 'ID<tab>gpu|other' a line, and exit (what --gpu=auto asks a child of its own)")
	_ = f.MarkHidden(gpuProbeFlag)
	return cmd
}

// daemonEnv marks the background child; its value is the readiness fd.
const daemonEnv = "ARCMOUNT_DAEMON_READY_FD"

func run(c *config) error {
	// Absolute paths: the background child works from "/".
	for _, p := range []*string{&c.archive, &c.mountpoint} {
		abs, err := filepath.Abs(*p)
		if err != nil {
			return err
		}
		*p = abs
	}
	// The mount point as the kernel records it: fusermount3 -u refuses
	// a symlink to it, and the lines below tell the user to run that.
	if real, err := filepath.EvalSymlinks(c.mountpoint); err == nil {
		c.mountpoint = real
	}
	if c.logFile != "" {
		abs, err := filepath.Abs(c.logFile)
		if err != nil {
			return err
		}
		c.logFile = abs
	}
	mo, err := c.mountOptions()
	if err != nil {
		return err
	}
	if err := checkArchive(c.archive); err != nil {
		return err
	}
	if err := checkMountpoint(c.mountpoint); err != nil {
		return err
	}
	if err := checkFUSE(mo.AllowOther); err != nil {
		return err
	}
	if os.Getenv(daemonEnv) != "" {
		return serveDaemon(c, mo)
	}
	if !c.foreground {
		return startDaemon(c)
	}
	err = serve(c, mo, os.Stderr, func() {
		archive, mnt := termsafe.Name(c.archive), termsafe.Name(c.mountpoint)
		fmt.Fprintf(os.Stderr, "arcmount: %s mounted on %s; Ctrl-C or 'fusermount3 -u %s' unmounts\n",
			archive, mnt, termsafe.Name(termsafe.Word(c.mountpoint)))
	})
	return explainMountError(err, "")
}

// mountOptions validates the flags that need no archive.
func (c *config) mountOptions() (fs.Options, error) {
	var o fs.Options
	mode, err := gpu.ParseMode(c.gpu)
	if err != nil {
		return o, fmt.Errorf("--gpu: %w", err)
	}
	if c.gpuDevice != "" {
		if err := gpu.CheckDeviceID(c.gpuDevice); err != nil {
			return o, fmt.Errorf("--gpu-device: %w", err)
		}
	}
	if mode == gpu.ModeOff && c.gpuDevice != "" { // as arcpack says it
		return o, fmt.Errorf("--gpu-device %s with --gpu=off", c.gpuDevice)
	}
	if n, err := bytesize.Parse(c.cacheSize); err != nil {
		return o, fmt.Errorf("--cache-size: %w", err)
	} else if n <= 0 {
		return o, fmt.Errorf("--cache-size %s: want a size above 0 (the default is 512M)", c.cacheSize)
	}
	if c.prefetch < -1 {
		return o, fmt.Errorf("--prefetch %d: want a number of frames, 0 for the default or -1 for none", c.prefetch)
	}
	// Where the log goes: stderr with -f, the --log file in the
	// background, else nowhere. Said here rather than found out later.
	if c.foreground && c.logFile != "" {
		return o, fmt.Errorf("--log %s with -f: in the foreground the log is stderr (redirect it: 2>>%s)", c.logFile, c.logFile)
	}
	if c.debug && !c.foreground && c.logFile == "" {
		return o, errors.New("--debug in the background: its lines go to the --log FILE; give one, or use -f")
	}
	fsName := c.archive
	for _, list := range c.options {
		for _, opt := range strings.Split(list, ",") {
			switch opt {
			case "":
			case "allow_other":
				o.AllowOther = true
			case "ro": // always
			case "rw":
				return o, errors.New("-o rw: the archive is read-only")
			case "auto_unmount":
				// fusermount3 then stays to watch the mount and never
				// hands it over: the mount would hang, unserved. Ended
				// by its unmount or by a signal, arcmount unmounts.
				return o, errors.New("-o auto_unmount: not supported (arcmount unmounts when it ends: fusermount3 -u, umount, or a signal)")
			default:
				// The source and type the mount shows are set by go-fuse
				// from FsName and the name "arc": given again, fsname and
				// subtype would be left out without a word.
				switch k, v, _ := strings.Cut(opt, "="); k {
				case "fsname":
					fsName = v
				case "subtype":
					return o, fmt.Errorf("-o %s: the mount's type is fuse.arc", opt)
				case "max_read":
					// go-fuse sets it from its own bound: given again it
					// would be dropped without a word.
					return o, fmt.Errorf("-o %s: arcmount sets max_read itself (1 MiB, its largest read)", opt)
				default:
					o.MountOptions = append(o.MountOptions, opt)
				}
			}
		}
	}
	o.FsName = fsName
	o.Debug = c.debug
	return o, nil
}

// serve opens the archive, mounts it, calls ready and serves until the
// filesystem is unmounted. SIGINT, SIGTERM and SIGHUP (the terminal of
// `arcmount -f` closed) unmount it, as they do libfuse's servers; SIGPIPE
// is ignored, so that a log line written to a closed pipe costs only the
// line: by default Go dies of it, leaving a dead mount behind.
func serve(c *config, o fs.Options, logTo io.Writer, ready func()) error {
	signal.Ignore(syscall.SIGPIPE)
	// Asked for before mounting, so that no signal arrives between the
	// mount and the handler; they wait in the channel until it runs.
	// Those ignored at start stay ignored (interrupt.Signals).
	sig := make(chan os.Signal, 1)
	if sigs := interrupt.Signals(); len(sigs) > 0 {
		signal.Notify(sig, sigs...)
	}
	defer signal.Stop(sig)
	// Log lines hold names from the archive: escaped, so that a hostile
	// one cannot act on the terminal of `arcmount -f`.
	logger := log.New(termsafe.Writer{W: logTo}, "arcmount: ", log.LstdFlags)
	cacheSize, _ := bytesize.Parse(c.cacheSize)
	mode, _ := gpu.ParseMode(c.gpu)
	gopt := gpu.Options{Mode: mode, Device: c.gpuDevice, BatchBytes: 64 << 20, Logf: logger.Printf}
	// --gpu=auto sets the engine up beside the mount (lateEngine), and it
	// takes over the read-ahead once ready; --gpu=on and off decide
	// before mounting (on fails without a device).
	var eng *gpu.Engine
	var late *lateEngine
	if mode == gpu.ModeAuto {
		late = startEngine(gopt, logger.Printf)
		// Runs after the archive's Close (deferred below), which waits
		// for the prefetch workers that may be using the engine.
		defer late.close()
	} else {
		var err error
		if eng, err = gpu.New(gopt); err != nil {
			return err
		}
		defer eng.Close()
		logger.Printf("%s", eng.Describe())
	}
	// Decode workers: one per CPU the runtime may use.
	workers := runtime.GOMAXPROCS(0)
	// Not under a CPU quota (the runtime then sizes GOMAXPROCS below the
	// CPU count): there more Ps would let the collector use the whole
	// quota and throttle the handlers.
	if os.Getenv("GOMAXPROCS") == "" && workers < minProcs && workers == runtime.NumCPU() {
		// FUSE handlers, the go-fuse readers and the push-ahead spend
		// their time in blocking syscalls; with a P per CPU, a goroutine
		// they wake (the push, the next reader) waits for sysmon to take
		// a P back from a syscall, up to milliseconds. Spare Ps let it
		// run at once; the CPUs used stay what the work needs.
		runtime.GOMAXPROCS(minProcs)
	}
	// The open beside the signals: volumes on a filesystem that stalls
	// (a network share, a stopped FUSE server) hold it, and a signal must
	// still end arcmount, which has mounted nothing yet.
	type opened struct {
		ar  *reader.Archive
		err error
	}
	openDone := make(chan opened, 1)
	go func() {
		ar, err := reader.Open(c.archive, reader.Options{
			CacheSize:   cacheSize,
			Prefetch:    c.prefetch,
			Workers:     workers,
			Logf:        withoutBlockDamage(logger.Printf),
			DecodeBatch: batchDecoder(eng),
		})
		openDone <- opened{ar, err}
	}()
	var ar *reader.Archive
	var err error
	select {
	case o := <-openDone:
		ar, err = o.ar, o.err
	case s := <-sig:
		return fmt.Errorf("%v: stopped before mounting (the archive was still being opened)", s)
	}
	if err != nil {
		if format.TooManyOpen(err) {
			return fmt.Errorf("%w%s", err, hint.Limit(err))
		}
		if h := hint.Repair(c.archive); h != "" {
			return fmt.Errorf("%w; %s", err, h)
		}
		return err
	}
	defer ar.Close()
	if late != nil {
		go late.take(func(e *gpu.Engine, took time.Duration) {
			if dec := batchDecoder(e); dec != nil {
				ar.SetDecodeBatch(dec)
			}
			logger.Printf("%s; set up in %.2fs, beside the mount", e.Describe(), took.Seconds())
		})
	}
	o.Logf = logger.Printf
	o.CPUs = workers
	o.NoPushAhead = os.Getenv("ARCMOUNT_NOPUSH") != "" // hidden: for A/B measurements
	select {
	case s := <-sig:
		return fmt.Errorf("%v: stopped before mounting", s)
	default:
	}
	// go-fuse keeps as many threads waiting in read(/dev/fuse) as
	// GOMAXPROCS when its server is made (one more at times: a reader
	// checks the count before it counts itself). A thread waiting there
	// holds a P until sysmon takes it back after 10 ms, and each such
	// retake sets sysmon to wake every 20 µs again: with minProcs readers,
	// sysmon's sleeps were a quarter of the process's context switches in
	// a cold whole-tree tar (bench/README.md). Requests are still handled
	// side by side: a reader that takes one starts another reader, if none
	// is left waiting, before it handles it.
	procs := runtime.GOMAXPROCS(fuseReaders)
	srv, err := fs.Mount(c.mountpoint, ar, o)
	runtime.GOMAXPROCS(procs)
	if err != nil {
		return err
	}
	go func() {
		for s := range sig {
			// A busy mount refuses; keep serving and say so rather
			// than leave a dead mount behind.
			if err := srv.Unmount(); err != nil {
				logger.Printf("%v: cannot unmount %s: %s", s, c.mountpoint, unmountError(c.mountpoint, err))
			}
		}
	}()
	// A hidden aid for performance work: ARCMOUNT_CPUPROFILE=FILE writes a
	// CPU profile of the whole mount (pprof format) when it ends.
	if p := os.Getenv("ARCMOUNT_CPUPROFILE"); p != "" {
		if f, err := os.Create(p); err == nil {
			if err := pprof.StartCPUProfile(f); err == nil {
				defer f.Close()
				defer pprof.StopCPUProfile()
			} else {
				f.Close()
			}
		}
	}
	ready()
	srv.Wait()
	if s := os.Getenv("ARCMOUNT_STATS"); s != "" {
		logger.Printf("cache: %+v", ar.CacheStats())
	}
	return nil
}

// lateEngine is the GPU engine of --gpu=auto, set up in the background:
// finding the OpenCL platforms, building and testing the kernels and
// pinning the buffers takes a tenth of a second where PoCL is the only
// platform, and 0.23-0.35 s on the H200 of gpu/BENCHMARKS.md (kernels in
// the driver's cache), more on a first build. The mount need not wait for
// it: it serves on the CPU meanwhile. Nor does the end of the mount: an
// engine still being set up then is closed when it is ready.
type lateEngine struct {
	done chan struct{} // closed once gpu.New has returned
	// stopProbe ends the probe's child, and probed is closed once the
	// probe has returned: close waits for it, a few seconds at most (a
	// child stuck in a driver), so that a mount that fails at once does
	// not leave the child running after it.
	stopProbe context.CancelFunc
	probed    chan struct{}

	mu     sync.Mutex
	eng    *gpu.Engine // nil: none yet, none at all, or closed
	took   time.Duration
	closed bool
}

func startEngine(opt gpu.Options, logf func(string, ...any)) *lateEngine {
	ctx, stop := context.WithCancel(context.Background())
	l := &lateEngine{done: make(chan struct{}), stopProbe: stop, probed: make(chan struct{})}
	start := time.Now()
	go func() {
		defer close(l.done)
		use, why := probeDevices(ctx, opt)
		close(l.probed)
		if ctx.Err() != nil {
			return // closed meanwhile
		}
		if !use {
			logf("gpu: using the CPU (%s)", why)
			return
		}
		e, err := gpu.New(opt)
		if err != nil { // auto falls back to the CPU: kept for safety
			logf("gpu: %v; using the CPU", err)
			return
		}
		l.mu.Lock()
		defer l.mu.Unlock()
		if l.closed {
			e.Close()
			return
		}
		l.eng, l.took = e, time.Since(start)
	}()
	return l
}

// take waits for the engine and hands it to use, unless close came first.
func (l *lateEngine) take(use func(e *gpu.Engine, took time.Duration)) {
	<-l.done
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.eng != nil {
		use(l.eng, l.took)
	}
}

// close closes the engine, now if it is set up, else once it is; the
// engine's users must be done with it.
func (l *lateEngine) close() {
	l.stopProbe()
	select { // the probe's child ended, or given up on
	case <-l.probed:
	case <-time.After(2 * probeWaitDelay):
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	if l.eng != nil {
		l.eng.Close()
		l.eng = nil
	}
}

// minProcs is the least GOMAXPROCS the server runs with (see serve).
const minProcs = 8

// fuseReaders is how many threads wait for the kernel's next request, one
// more at times (go-fuse takes GOMAXPROCS, at least 2, when its server is
// made; see serve).
const fuseReaders = 2

// batchDecoder hands the reader's prefetch batches to the GPU engine; nil
// (the reader's own CPU workers) when the engine has no device. The reader
// still checks every block's checksum and redoes a failed one on the CPU.
func batchDecoder(eng *gpu.Engine) reader.DecodeBatchFunc {
	if eng == nil || !eng.OnDevice() {
		return nil
	}
	return eng.DecodeFunc()
}

// withoutBlockDamage drops the reader's lines about damaged blocks: the
// reader logs one on every failed read, while fs logs one line per damaged
// file, naming the file with the same block, frame and volume. Other lines
// (a missing volume at open) pass.
func withoutBlockDamage(logf func(string, ...any)) func(string, ...any) {
	return func(format string, args ...any) {
		for _, a := range args {
			if err, ok := a.(error); ok && errors.Is(err, reader.ErrDamaged) {
				return
			}
		}
		logf(format, args...)
	}
}
