//go:build !noopencl

package gpu

import (
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"arc/codec"
)

// TestDeviceThroughput is the device benchmark: with ARC_GPU_BENCH=1 it
// times BLAKE3 and batch decompression on the engine's device(s) beside the
// CPU twins (GOMAXPROCS cores) in the same run and prints medians:
//
//	cpu   the CPU twin, wall clock
//	e2e   the engine, wall clock: packing into pinned memory, transfers,
//	      kernels, copying results out, CPU fallbacks
//	kern  bytes over the time at least one kernel ran (the union of the
//	      kernels' intervals from OpenCL profiling events: the two slots'
//	      kernels run at the same time)
//	ksum  bytes over the kernels' durations added up (each stretches
//	      while it shares the device: the "kern" of tables before 2026-12-05)
//	xfer  share of the device time spent in host<->device copies
//	xGB/s bytes over the time of those copies (both directions)
//	join  compression: lz4_join's share of the kernel time
//
// ARC_GPU_CORPUS names a file of real data (decode input is cut from it);
// ARC_GPU_BENCH_MIB sets the data per measurement (default 1024),
// ARC_GPU_BATCH_MIB the engine's BatchBytes (default 128),
// ARC_GPU_BENCH_VARIANTS=1 adds decode work-groups of 64 and 128.
func TestDeviceThroughput(t *testing.T) {
	if os.Getenv("ARC_GPU_BENCH") == "" {
		t.Skip("set ARC_GPU_BENCH=1 to run the device benchmark")
	}
	batch := envInt("ARC_GPU_BATCH_MIB", 128) << 20
	total := envInt("ARC_GPU_BENCH_MIB", 1024) << 20
	reps := envInt("ARC_GPU_BENCH_REPS", 5)
	e := testEngine(t, batch)
	var variants []int
	// The compression kernels with other table sizes and the work-groups
	// their tables allow.
	type encVariant struct {
		name   string
		flags  string
		groups [2]int
		search searchKind
	}
	encVariants := []encVariant{{"lz4_match", "", [2]int{}, searchSerial}}
	if os.Getenv("ARC_GPU_BENCH_VARIANTS") != "" {
		variants = []int{64, 128}
		encVariants = append(encVariants,
			encVariant{"lz4_coop, 2^12 tables", "-DDEF_HLOG=12", [2]int{}, searchCoop},
			encVariant{"lz4_coop, 2^11 tables", "-DDEF_HLOG=11 -DFAST_HLOG=11", [2]int{}, searchCoop})
	}
	// ARC_GPU_ENC_VARIANTS: compression builds to time, each
	// "match|coop:build flags", separated by ';'.
	for _, v := range strings.Split(os.Getenv("ARC_GPU_ENC_VARIANTS"), ";") {
		k, flags, ok := strings.Cut(v, ":")
		if ok && (k == "match" || k == "coop") {
			encVariants = append(encVariants, encVariant{"lz4_" + k + " " + flags, flags, [2]int{}, map[string]searchKind{"match": searchSerial, "coop": searchCoop}[k]})
		}
	}
	for _, mib := range []int{64, 256, 512} {
		for i := 0; i < 2; i++ { // the second open finds the driver's kernel cache warm
			start := time.Now()
			o, err := New(Options{Mode: ModeOn, Device: e.devs[0].info.ID, BatchBytes: mib << 20})
			if err != nil {
				t.Fatal(err)
			}
			opened := time.Since(start)
			o.Close()
			t.Logf("engine open with %d MiB transfer buffers (context, kernels, buffers, self-test): %v, close %v", mib, opened, time.Since(start)-opened)
		}
	}
	parseOnly, err := New(Options{Mode: ModeOn, Device: e.devs[0].info.ID, BatchBytes: batch, buildFlags: "-DLZ4_PARSE_ONLY", parMin: -1})
	if err == nil {
		defer parseOnly.Close()
	}
	t.Logf("%s; CPU twin on %d cores; %d MiB per run in one call, batches of %d MiB, median of %d", e.Describe(), runtime.GOMAXPROCS(0), total>>20, batch>>20, reps)
	fmt.Printf("%-44s %10s %10s %10s %10s %6s %7s %6s\n", "what", "cpu GB/s", "e2e GB/s", "kern GB/s", "ksum GB/s", "xfer", "xGB/s", "join")

	// ARC_GPU_BENCH_ONLY=decode leaves out the BLAKE3 and compression rows,
	// ARC_GPU_BENCH_ONLY=encode the BLAKE3 and decompression rows.
	decodeOnly := os.Getenv("ARC_GPU_BENCH_ONLY") == "decode"
	encodeOnly := os.Getenv("ARC_GPU_BENCH_ONLY") == "encode"
	data := testBytes(total+(1<<20), 99)
	for _, size := range []int{4 << 10, 64 << 10, 1 << 20, 16 << 20} {
		if decodeOnly || encodeOnly {
			break
		}
		var inputs [][]byte
		for off := 0; off+size <= total; off += size {
			inputs = append(inputs, data[off:off+size])
		}
		row(t, e, fmt.Sprintf("blake3 %s inputs", human(size)), int64(len(inputs)*size), reps,
			func() { CPUHasher{}.HashBatch(inputs) },
			func() {
				if _, err := e.Hasher().HashBatch(inputs); err != nil {
					t.Fatal(err)
				}
			})
	}

	var corpus []byte
	if p := os.Getenv("ARC_GPU_CORPUS"); p != "" {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		corpus = b
	} else {
		corpus = compressible(64<<20, 5)
	}
	// Compression: the CPU at each level (codec auto, what an archive
	// uses) and the kernel that stands for it at fast and default.
	for _, size := range []int{64 << 10, 1 << 20} {
		if decodeOnly {
			break
		}
		var raws [][]byte
		for off := 0; len(raws)*size < total; off += size + 4099 {
			o := off % (len(corpus) - size)
			raws = append(raws, corpus[o:o+size])
		}
		for _, level := range []codec.Level{codec.LevelFast, codec.LevelDefault, codec.LevelHigh, codec.LevelMax} {
			cpuB := make([]EncBlock, len(raws))
			for i := range raws {
				cpuB[i].Src = raws[i]
			}
			cpuEnc := func() {
				parallel(len(cpuB), func(i int) {
					enc, _ := codec.NewEncoder(codec.Options{Codec: "auto", Level: level})
					_, s := enc.Encode(cpuB[i].Src)
					cpuB[i].Stored = s
				})
			}
			cpuEnc()
			cr := encRatio(cpuB)
			if level >= codec.LevelHigh {
				row(t, e, fmt.Sprintf("encode %s %s (cpu %.2fx)", level, human(size), cr), int64(len(raws)*size), 1, cpuEnc, nil)
				continue
			}
			fast := level == codec.LevelFast
			devB := make([]EncBlock, len(raws))
			idx := make([]int, len(raws))
			for i := range raws {
				devB[i].Src, idx[i] = raws[i], i
			}
			devEnc := func(e *Engine) func() {
				return func() {
					if rest, err := e.devs[0].encodeBatch(devB, idx, fast); err != nil || len(rest) > 0 {
						t.Fatalf("encode: %v, %d left", err, len(rest))
					}
				}
			}
			check := func(what string) {
				parallel(len(devB), func(i int) {
					dst := make([]byte, len(devB[i].Src))
					if err := codec.NewDecoder().Decode(devB[i].Codec, dst, devB[i].Stored); err != nil || string(dst) != string(devB[i].Src) {
						t.Errorf("%s: block %d does not decode on the CPU: %v", what, i, err)
					}
				})
			}
			devEnc(e)()
			check("default kernels")
			name := fmt.Sprintf("encode %s %s (cpu %.2fx, gpu %.2fx)", level, human(size), cr, encRatio(devB))
			row(t, e, name, int64(len(raws)*size), reps, cpuEnc, devEnc(e))
			for _, v := range encVariants {
				ve, err := New(Options{Mode: ModeOn, Device: e.devs[0].info.ID, BatchBytes: batch, buildFlags: v.flags, matchGroup: v.groups, search: v.search})
				if err != nil {
					t.Logf("%s: %v", v.flags, err)
					continue
				}
				devEnc(ve)()
				check(v.name)
				row(t, ve, fmt.Sprintf("  (%s: gpu %.2fx)", v.name, encRatio(devB)), int64(len(raws)*size), reps, nil, devEnc(ve))
				ve.Close()
			}
		}
	}
	for _, c := range []struct {
		name  string
		level codec.Level
		size  int
	}{
		{"lz4", codec.LevelDefault, 64 << 10},
		{"lz4", codec.LevelDefault, 256 << 10},
		{"lz4", codec.LevelDefault, 1 << 20},
		{"lz4x", codec.LevelDefault, 1 << 20},
		{"lz4x", codec.LevelHigh, 1 << 20},
	} {
		if encodeOnly {
			break
		}
		var raws [][]byte
		for off := 0; len(raws)*c.size < total; off += c.size + 4099 {
			o := off % (len(corpus) - c.size)
			raws = append(raws, corpus[o:o+c.size])
		}
		blocks := make([]Block, len(raws))
		stored := 0
		parallel(len(raws), func(i int) {
			enc, _ := codec.NewEncoder(codec.Options{Codec: c.name, Level: c.level})
			id, s := enc.Encode(raws[i])
			blocks[i] = Block{Codec: id, Src: slices.Clone(s), Dst: make([]byte, len(raws[i]))}
		})
		for _, b := range blocks {
			stored += len(b.Src)
		}
		name := fmt.Sprintf("decode %s-%s %s (%.2fx)", c.name, c.level, human(c.size), float64(len(raws)*c.size)/float64(stored))
		row(t, e, name, int64(len(raws)*c.size), reps,
			func() {
				if err := (CPUDecoder{}).DecodeBatch(blocks); err != nil {
					t.Fatal(err)
				}
			},
			func() {
				if err := e.Decoder().DecodeBatch(blocks); err != nil {
					t.Fatal(err)
				}
			})
		for i := range blocks {
			if string(blocks[i].Dst) != string(raws[i]) {
				t.Fatalf("%s: block %d decoded wrong", name, i)
			}
		}
		// Each decode kernel alone (the default picks by block size).
		for _, k := range []struct {
			name   string
			parMin int
			group  int
		}{{"lz4_decode only", -1, 0}, {"lz4_decode_par only", 1, 0}, {"lz4_decode_par, 256", 1, 256}, {"lz4_decode_par, 1024", 1, 1024}} {
			if k.group > 0 && c.size < 1<<20 {
				continue
			}
			v, err := New(Options{Mode: ModeOn, Device: e.devs[0].info.ID, BatchBytes: batch, parMin: k.parMin, parGroup: k.group})
			if err != nil {
				t.Logf("%s: %v", k.name, err)
				continue
			}
			for i := range blocks {
				clear(blocks[i].Dst)
			}
			if v.devs[0].parMin != k.parMin {
				t.Logf("%s: %s", k.name, v.devs[0].parWhy)
				v.Close()
				continue
			}
			row(t, v, "  ("+k.name+")", int64(len(raws)*c.size), reps, nil, func() {
				if err := v.Decoder().DecodeBatch(blocks); err != nil {
					t.Fatal(err)
				}
			})
			for i := range blocks {
				if string(blocks[i].Dst) != string(raws[i]) {
					t.Fatalf("%s %s: block %d decoded wrong", name, k.name, i)
				}
			}
			v.Close()
		}
		for _, wg := range variants {
			// The decode kernel with larger work-groups (longer waves).
			v, err := New(Options{Mode: ModeOn, Device: e.devs[0].info.ID, BatchBytes: batch, lz4Group: wg})
			if err != nil {
				t.Logf("work-group %d: %v", wg, err)
				continue
			}
			row(t, v, fmt.Sprintf("  (work-group %d)", wg), int64(len(raws)*c.size), reps, nil, func() {
				if err := v.Decoder().DecodeBatch(blocks); err != nil {
					t.Fatal(err)
				}
			})
			v.Close()
		}
		// ARC_GPU_PAR_VARIANTS: lz4_decode_par builds to time, each
		// "group:build flags", separated by ';' (output not checked:
		// flags may leave steps out).
		for _, v := range strings.Split(os.Getenv("ARC_GPU_PAR_VARIANTS"), ";") {
			g, flags, ok := strings.Cut(v, ":")
			force := strings.HasPrefix(g, "!") // launch even above the reported limit
			wg, _ := strconv.Atoi(strings.TrimPrefix(g, "!"))
			if !ok || c.size < 1<<20 {
				continue
			}
			ve, err := New(Options{Mode: ModeOn, Device: e.devs[0].info.ID, BatchBytes: batch, parMin: 1, parGroup: wg, buildFlags: flags, parForce: force})
			if err != nil {
				t.Logf("%s: %v", v, err)
				continue
			}
			if strings.Contains(flags, "verbose") {
				for _, l := range strings.Split(buildLog(ve.devs[0].prog, ve.devs[0].cld), "\n") {
					if strings.Contains(l, "lz4_decode") || strings.Contains(l, "egisters") {
						t.Log(l)
					}
				}
			}
			if ve.devs[0].parMin != 1 {
				t.Logf("%s: %s", v, ve.devs[0].parWhy)
				ve.Close()
				continue
			}
			var idx []int
			for i, b := range blocks {
				clear(blocks[i].Dst)
				if onDevice(b.Codec) {
					idx = append(idx, i)
				}
			}
			row(t, ve, fmt.Sprintf("  (par %s %s)", g, flags), int64(len(raws)*c.size), 1, nil, func() {
				if rest, err := ve.devs[0].decodeBatch(blocks, idx); err != nil || len(rest) > 0 {
					t.Logf("%s: %d blocks left, %v", v, len(rest), err)
				}
			})
			if !strings.Contains(flags, "-DLZ4P_") {
				for i := range blocks {
					if string(blocks[i].Dst) != string(raws[i]) {
						t.Errorf("%s: block %d decoded wrong", v, i)
						break
					}
				}
			}
			ve.Close()
		}
		if parseOnly != nil {
			// lz4_decode with its copies left out: the serial parse's
			// share of that kernel's time.
			var idx []int
			for i, b := range blocks {
				if onDevice(b.Codec) {
					idx = append(idx, i)
				}
			}
			row(t, parseOnly, "  (lz4_decode parse only, kernel)", int64(len(raws)*c.size), 1, nil, func() {
				parseOnly.devs[0].decodeBatch(blocks, idx)
			})
		}
	}
}

func encRatio(bs []EncBlock) float64 {
	raw, stored := 0, 0
	for _, b := range bs {
		raw += len(b.Src)
		stored += len(b.Stored)
	}
	return float64(raw) / float64(stored)
}

// row times cpu and dev reps times each (after one warm-up) and prints the
// medians; the device's figures are each rep's own, reset before it and
// read after it.
func row(t *testing.T, e *Engine, name string, bytes int64, reps int, cpu, dev func()) {
	med := func(f func(), before, after func()) time.Duration {
		f()
		var ds []time.Duration
		for i := 0; i < reps; i++ {
			if before != nil {
				before()
			}
			start := time.Now()
			f()
			ds = append(ds, time.Since(start))
			if after != nil {
				after()
			}
		}
		slices.Sort(ds)
		return ds[len(ds)/2]
	}
	var kern, ksum, xfer, xbw, join []float64
	snap := func() {
		for _, d := range e.devs {
			d.stats.busy.Store(0)
			d.stats.joinNs.Store(0)
			d.stats.kernelNs.Store(0)
			d.stats.xferNs.Store(0)
			d.stats.bytes.Store(0)
			d.stats.xferB.Store(0)
		}
	}
	var dcpu, ddev time.Duration
	if cpu != nil {
		dcpu = med(cpu, nil, nil)
	}
	if dev == nil {
		fmt.Printf("%-44s %10.2f %10s\n", name, float64(bytes)/dcpu.Seconds()/1e9, "-")
		return
	}
	ddev = med(dev, snap, func() {
		var k, busy, x, b, xb, j int64
		for _, d := range e.devs {
			busy = max(busy, d.stats.busy.Load()) // devices run side by side
			j += d.stats.joinNs.Load()
			k += d.stats.kernelNs.Load()
			x += d.stats.xferNs.Load()
			b += d.stats.bytes.Load()
			xb += d.stats.xferB.Load()
		}
		if k > 0 && x > 0 {
			kern = append(kern, float64(b)/float64(busy))
			ksum = append(ksum, float64(b)/float64(k))
			xfer = append(xfer, float64(x)/float64(k+x))
			xbw = append(xbw, float64(xb)/float64(x))
			join = append(join, float64(j)/float64(k))
		}
	})
	slices.Sort(kern)
	slices.Sort(ksum)
	slices.Sort(xfer)
	slices.Sort(xbw)
	slices.Sort(join)
	gbs := func(d time.Duration) float64 { return float64(bytes) / d.Seconds() / 1e9 }
	k, ks, x, xb := 0.0, 0.0, 0.0, 0.0
	if len(kern) > 0 {
		k, ks, x, xb = kern[len(kern)/2], ksum[len(ksum)/2], xfer[len(xfer)/2], xbw[len(xbw)/2]
	}
	cpuCol := fmt.Sprintf("%10.2f", gbs(dcpu))
	if cpu == nil {
		cpuCol = fmt.Sprintf("%10s", "-")
	}
	joinCol := ""
	if len(join) > 0 && join[len(join)/2] > 0 {
		joinCol = fmt.Sprintf(" %5.0f%%", 100*join[len(join)/2])
	}
	fmt.Printf("%-44s %s %10.2f %10.2f %10.2f %5.0f%% %7.1f%s\n", name, cpuCol, gbs(ddev), k, ks, 100*x, xb, joinCol)
}

func human(n int) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%dMiB", n>>20)
	default:
		return fmt.Sprintf("%dKiB", n>>10)
	}
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}
