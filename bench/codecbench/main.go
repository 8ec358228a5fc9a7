// Command codecbench measures arc's block codecs on real data, one core:
// ratio, compression and decompression speed, and the cost of a random
// 4 KiB read (the time to decode the block holding it) at several block
// sizes, beside pierrec/lz4 (fast and HC) and the reference lz4 command
// (-1 and -9) on the same bytes in the same run.
//
// The data is the distinct files of a directory tree (by content), in
// sorted path order, concatenated: what arc's writer compresses after
// whole-file dedup.
package main

import (
	"bytes"
	"crypto/sha256"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"arc/codec"
	"arc/internal/bytesize"
)

func main() {
	dir := flag.String("dir", "/work/benchdata/distinct", "tree whose distinct files are the data")
	file := flag.String("file", "", "read the stream from this file instead of -dir")
	maxBytes := flag.Int64("max", 0, "use at most this many bytes of the stream (0 = all)")
	sizes := flag.String("sizes", "64K,256K,1M,4M,16M", "block sizes")
	codecs := flag.String("codecs", "lz4x:fast,lz4x:default,lz4x:high,lz4x:max,lz4:default,lz4:max,zstd:default", "codec:level list (lz4:default = pierrec fast, lz4:max = pierrec HC 9)")
	cli := flag.String("cli", "-1,-9", "lz4 command levels to run beside (empty = none)")
	reps := flag.Int("reps", 3, "timed repetitions; medians are printed")
	cpuClock := flag.Bool("cpu", false, "time by CPU time (this thread's; the lz4 command's user+system) instead of wall time: steadier on a shared machine whose cores are taken away at times")
	flag.Parse()
	runtime.GOMAXPROCS(1)
	if *cpuClock {
		runtime.LockOSThread()
		clock, clockIsCPU = threadCPU, true
	}

	var stream []byte
	var files int
	var err error
	if *file == "" {
		stream, files, err = load(*dir, *maxBytes)
	}
	if *file != "" {
		*dir = *file
		stream, err = os.ReadFile(*file)
		files = 1
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "codecbench:", err)
		os.Exit(1)
	}
	timed := "wall time"
	if clockIsCPU {
		timed = "CPU time (lz4 command: user+system)"
	}
	fmt.Printf("data: %s: %d distinct files, %.1f MB; GOMAXPROCS=1, %s, median of %d, timed by %s\n\n", *dir, files, mb(len(stream)), runtime.Version(), *reps, timed)
	fmt.Printf("| block | codec | ratio | stored MB | compress MB/s | decompress MB/s | 4 KiB random read µs | blocks raw/lz4/lz4x/zstd |\n")
	fmt.Printf("|---|---|---|---|---|---|---|---|\n")
	for _, s := range strings.Split(*sizes, ",") {
		bs, err := blockSize(s)
		if err != nil {
			fmt.Fprintln(os.Stderr, "codecbench:", err)
			os.Exit(2)
		}
		for _, c := range strings.Split(*codecs, ",") {
			name, lv, _ := strings.Cut(c, ":")
			l, err := codec.ParseLevel(lv)
			if err != nil {
				fmt.Fprintln(os.Stderr, "codecbench:", err)
				os.Exit(2)
			}
			r, err := measure(stream, bs, codec.Options{Codec: name, Level: l}, *reps)
			if err != nil {
				fmt.Fprintln(os.Stderr, "codecbench:", err)
				os.Exit(1)
			}
			fmt.Printf("| %s | %s | %.3f | %.1f | %.0f | %.0f | %.0f | %s |\n", s, label(name, l), r.ratio, mb(r.stored), r.cMBs, r.dMBs, r.readUs, r.mix)
		}
		if *cli != "" {
			if flagB, ok := cliBlock[bs]; ok {
				for _, lv := range strings.Split(*cli, ",") {
					r, err := lz4CLI(stream, lv, flagB, *reps)
					if err != nil {
						fmt.Fprintln(os.Stderr, "codecbench: lz4 command:", err)
						break
					}
					fmt.Printf("| %s | lz4 command %s %s | %.3f | %.1f | %.0f | %.0f | | |\n", s, lv, flagB, r.ratio, mb(r.stored), r.cMBs, r.dMBs)
				}
			}
		}
	}
}

// cliBlock maps block sizes to the lz4 command's block size flags (it has
// none above 4 MiB).
var cliBlock = map[int]string{64 << 10: "-B4", 256 << 10: "-B5", 1 << 20: "-B6", 4 << 20: "-B7"}

func label(name string, l codec.Level) string {
	switch name {
	case "lz4":
		if l >= codec.LevelHigh {
			return "pierrec lz4 HC " + l.String()
		}
		return "pierrec lz4 fast"
	case "lz4x":
		return "arc lz4x " + l.String()
	}
	return name + " " + l.String()
}

type result struct {
	ratio      float64
	stored     int
	cMBs, dMBs float64
	readUs     float64
	mix        string
}

func measure(stream []byte, bs int, o codec.Options, reps int) (result, error) {
	enc, err := codec.NewEncoder(o)
	if err != nil {
		return result{}, err
	}
	dec := codec.NewDecoder()
	type blk struct {
		id     uint8
		raw    []byte
		stored []byte
	}
	var blocks []blk
	var ctimes, dtimes []time.Duration
	var counts [4]int
	// One untimed pass keeps the blocks (copying each out of the encoder's
	// buffer) and warms up; the timed passes only encode.
	for off := 0; off < len(stream); off += bs {
		raw := stream[off:min(off+bs, len(stream))]
		id, st := enc.Encode(raw)
		blocks = append(blocks, blk{id, raw, bytes.Clone(st)})
		counts[id]++
	}
	for r := 0; r < reps; r++ {
		t0 := clock()
		for off := 0; off < len(stream); off += bs {
			enc.Encode(stream[off:min(off+bs, len(stream))])
		}
		ctimes = append(ctimes, clock()-t0)
	}
	stored := 0
	for _, b := range blocks {
		stored += len(b.stored)
	}
	dst := make([]byte, bs)
	for r := 0; r < reps; r++ {
		t0 := clock()
		for _, b := range blocks {
			if err := dec.Decode(b.id, dst[:len(b.raw)], b.stored); err != nil {
				return result{}, fmt.Errorf("%v block of %d: %w", o, len(b.raw), err)
			}
		}
		dtimes = append(dtimes, clock()-t0)
	}
	// Verify once, outside the timing.
	for i, b := range blocks {
		if err := dec.Decode(b.id, dst[:len(b.raw)], b.stored); err != nil || !bytes.Equal(dst[:len(b.raw)], b.raw) {
			return result{}, fmt.Errorf("%v: block %d does not round-trip", o, i)
		}
	}
	c, d := median(ctimes), median(dtimes)
	return result{
		ratio:  float64(len(stream)) / float64(stored),
		stored: stored,
		cMBs:   mb(len(stream)) / c.Seconds(),
		dMBs:   mb(len(stream)) / d.Seconds(),
		readUs: float64(d.Microseconds()) / float64(len(blocks)),
		mix:    fmt.Sprintf("%d/%d/%d/%d", counts[0], counts[1], counts[2], counts[3]),
	}, nil
}

// lz4CLI compresses and decompresses the stream with the lz4 command,
// single-threaded, independent blocks, no checksums; times are wall times
// of the command reading a file in the page cache and writing /dev/null.
func lz4CLI(stream []byte, level, blockFlag string, reps int) (result, error) {
	tmp, err := os.MkdirTemp("", "codecbench")
	if err != nil {
		return result{}, err
	}
	defer os.RemoveAll(tmp)
	in, out := filepath.Join(tmp, "stream"), filepath.Join(tmp, "stream.lz4")
	if err := os.WriteFile(in, stream, 0o600); err != nil {
		return result{}, err
	}
	run := func(args ...string) (time.Duration, error) {
		cmd := exec.Command("lz4", args...)
		var e bytes.Buffer
		cmd.Stderr = &e
		t0 := time.Now()
		if err := cmd.Run(); err != nil {
			return 0, fmt.Errorf("lz4 %v: %v: %s", args, err, e.String())
		}
		if clockIsCPU {
			return cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime(), nil
		}
		return time.Since(t0), nil
	}
	var ct, dt []time.Duration
	for r := 0; r < reps; r++ {
		t, err := run("-q", "-f", level, blockFlag, "-BI", "--no-frame-crc", "-T1", in, out)
		if err != nil {
			// Older lz4 commands have no -T.
			t, err = run("-q", "-f", level, blockFlag, "-BI", "--no-frame-crc", in, out)
			if err != nil {
				return result{}, err
			}
		}
		ct = append(ct, t)
		t, err = run("-q", "-d", "-f", out, os.DevNull)
		if err != nil {
			return result{}, err
		}
		dt = append(dt, t)
	}
	st, err := os.Stat(out)
	if err != nil {
		return result{}, err
	}
	return result{
		ratio:  float64(len(stream)) / float64(st.Size()),
		stored: int(st.Size()),
		cMBs:   mb(len(stream)) / median(ct).Seconds(),
		dMBs:   mb(len(stream)) / median(dt).Seconds(),
	}, nil
}

// load concatenates the distinct regular files under dir in sorted path
// order.
func load(dir string, limit int64) ([]byte, int, error) {
	var paths []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			paths = append(paths, p)
		}
		return nil
	})
	if err != nil {
		return nil, 0, err
	}
	slices.Sort(paths)
	seen := map[[32]byte]bool{}
	var stream []byte
	files := 0
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, 0, err
		}
		h := sha256.Sum256(b)
		if seen[h] {
			continue
		}
		seen[h] = true
		files++
		stream = append(stream, b...)
		if limit > 0 && int64(len(stream)) >= limit {
			stream = stream[:limit]
			break
		}
	}
	if len(stream) == 0 {
		return nil, 0, fmt.Errorf("no data under %s", dir)
	}
	return stream, files, nil
}

// median of d (the mean of the middle two for an even count).
func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	if len(s)%2 == 0 {
		return (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return s[len(s)/2]
}

// clock reads the time measurements are taken with: a monotonic wall
// clock, or with -cpu the CPU time of the locked thread.
var (
	clock      = func() time.Duration { return time.Since(clockStart) }
	clockStart = time.Now()
	clockIsCPU bool
)

func threadCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(rusageThread, &ru); err != nil {
		panic(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// rusageThread is RUSAGE_THREAD (Linux).
const rusageThread = 1

func mb(n int) float64 { return float64(n) / 1e6 }

// blockSize reads a -block size such as 64K or 16M.
func blockSize(s string) (int, error) {
	n, err := bytesize.Parse(s)
	if err != nil || n <= 0 || n > 1<<30 {
		return 0, fmt.Errorf("bad block size %q", s)
	}
	return int(n), nil
}
