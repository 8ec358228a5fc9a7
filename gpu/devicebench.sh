#!/bin/bash
# Device benchmark of gpu/BENCHMARKS.md: arcpack create/verify/extract with
# --gpu=on and off beside the CPU, the gpu tests on the device, and the
# kernel throughput rows. $B holds what BENCHMARKS.md's "How to reproduce"
# builds: arcpack.zst, gpu.test.zst, zstd, lib/ and go1.25.4.tar.zst.
# Usage (device machine, repository root):
#   REPS=5 KMIB=1024 KBATCH=256 KREPS=3 bash gpu/devicebench.sh cli unit kern
# LOCAL=1 DEV=0:0 runs it here on PoCL (no NVIDIA ICD file written).
set -u
B=${B:-$PWD/.dev/gpubin}
OUT=${OUT:-/tmp/benchout}
mkdir -p "$OUT"
if [ -z "${LOCAL:-}" ]; then
	mkdir -p /etc/OpenCL/vendors && echo /usr/local/nvidia/lib64/libnvidia-opencl.so.1 >/etc/OpenCL/vendors/nvidia.icd
fi
export LD_LIBRARY_PATH=$B/lib
Z=$B/zstd
W=${WORK:-/dev/shm/arcbench}
mkdir -p $W/bin
for f in arcpack gpu.test; do
	$Z -dqf $B/$f.zst -o $W/bin/$f && chmod +x $W/bin/$f
done
A=$W/bin/arcpack
DEVF=${DEV:+--gpu-device=$DEV} # LOCAL: DEV=0:0 (PoCL)
log() { echo "== $(date -u +%T) $*"; }

if [ ! -d $W/tree/go1.25.4 ]; then
	mkdir -p $W/tree && $Z -dc $B/go1.25.4.tar.zst | tar -x -C $W/tree
fi
TREE=$W/tree/go1.25.4
log "machine: $(nproc) cores, $(free -g | awk '/Mem/{print $2}') GiB"
nvidia-smi --query-gpu=name,driver_version,pcie.link.gen.current,pcie.link.width.current,memory.total --format=csv 2>/dev/null
log "tree: $TREE $(du -sb $TREE | cut -f1) bytes, $(find $TREE -type f | wc -l) files"
cat $(find $TREE -type f) >/dev/null # page cache warm (the tree is in /dev/shm anyway)

# secs CMD...: wall seconds of one run; stderr to $OUT/stderr.log
secs() {
	local s e
	s=$(date +%s.%N)
	"$@" >$W/last.out 2>>$OUT/stderr.log
	local rc=$?
	e=$(date +%s.%N)
	[ $rc -eq 0 ] || echo "rc=$rc: $*" >>$OUT/stderr.log
	awk -v s=$s -v e=$e 'BEGIN{printf "%.3f", e-s}'
}
# bench NAME REPS PREP CMD...: runs PREP then CMD REPS times, prints all and the median
bench() {
	local name=$1 reps=$2 prep=$3
	shift 3
	local ts=()
	for i in $(seq $reps); do
		eval "$prep"
		ts+=($(secs "$@"))
	done
	local med
	med=$(printf "%s\n" "${ts[@]}" | sort -n | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}')
	printf "%-44s median %7.3f s  runs: %s  | %s\n" "$name" $med "${ts[*]}" "$(head -c 200 $W/last.out | tr '\n' ' ')"
}

for phase in "$@"; do
	case $phase in
	cli)
		log "arcpack gpu"
		timeout 120 $A gpu
		R=$REPS
		O=$W/out
		mkdir -p $O
		log "create (tree in /dev/shm, archive to /dev/shm), $R runs each"
		for cfg in "off:" "on:" "off:--level fast" "on:--level fast" "off:--codec raw" "off:--workers 1" "on:--workers 1"; do
			g=${cfg%%:*}
			extra=${cfg#*:}
			name="create --gpu=$g $extra"
			d=; [ $g = on ] && d=$DEVF
			bench "$name" $R "rm -f $O/a.*" $A create $TREE -o $O/a --gpu=$g $d $extra --progress never --volume-size 0
			tag=$(echo "$g$extra" | tr -dc 'a-z0-9')
			cp $O/a.001 $O/keep-$tag.001
		done
		ls -la $O
		log "verify, $R runs each"
		for arch in keep-off keep-on; do
			for g in off on; do
				d=; [ $g = on ] && d=$DEVF
				bench "verify $arch --gpu=$g" $R "" $A verify $O/$arch.001 --gpu=$g $d --progress never
			done
		done
		log "extract, $R runs each (to /dev/shm), then compared with the source"
		for arch in keep-off keep-on; do
			for g in off on; do
				d=; [ $g = on ] && d=$DEVF
				bench "extract $arch --gpu=$g" $R "rm -rf $O/x" $A extract $O/$arch.001 -o $O/x --gpu=$g $d --progress never
				if diff -rq $TREE $O/x >/dev/null; then echo "  extract $arch --gpu=$g: identical to the source"; else echo "  extract $arch --gpu=$g: DIFFERS"; fi
			done
		done
		rm -rf $O/x
		;;
	unit)
		log "unit tests on the GPU"
		# The whole log goes to $OUT (the device returns that folder as files);
		# the summary lines alone to stdout, whose tail is all a run returns.
		# GOROOT: TestHashRealFiles hashes Go sources, the unpacked tree's.
		(cd $B && GOROOT=$TREE timeout 150 $W/bin/gpu.test -test.count=1 -test.v >$OUT/unit.log 2>&1
			echo "gpu.test exit $?" >>$OUT/unit.log)
		grep -E '^(---|ok|FAIL|PASS)|stored|rror|gpu.test exit' $OUT/unit.log | head -60
		;;
	kern)
		log "kernel throughput"
		find $TREE -name '*.go' -print0 | xargs -0 cat >$W/corpus
		ls -la $W/corpus
		(cd $B && ARC_GPU_BENCH=1 ARC_GPU_BENCH_MIB=$KMIB ARC_GPU_BATCH_MIB=$KBATCH ARC_GPU_BENCH_REPS=$KREPS ARC_GPU_BENCH_VARIANTS=1 \
			ARC_GPU_CORPUS=$W/corpus timeout 330 $W/bin/gpu.test -test.run Throughput -test.v 2>&1)
		;;
	esac
done
log done
