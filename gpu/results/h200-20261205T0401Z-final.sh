#!/bin/bash
# This session's second device script (final build): gpu unit tests, create
# on fewer cores, verify, decode calls of one and two slots, kernel rows.
set -u
REPO=$PWD
export B=$REPO/.dev/gpubin W=/dev/shm/arcbench
mkdir -p /etc/OpenCL/vendors && echo /usr/local/nvidia/lib64/libnvidia-opencl.so.1 > /etc/OpenCL/vendors/nvidia.icd
bash gpu/devicebench.sh > /dev/null 2>&1   # unpacks binaries and tree
find $W/tree/go1.25.4 -name '*.go' -type f -print0 | xargs -0 cat > $W/corpus
export LD_LIBRARY_PATH=$B/lib
A=$W/bin/arcpack TREE=$W/tree/go1.25.4 O=$W/out
mkdir -p $O
echo "== $(date -u +%T) gpu unit tests"
(cd $B && timeout 150 $W/bin/gpu.test -test.count=1 -test.v > $OUT/unit.txt 2>&1; echo "rc=$?")
grep -E '^(--- FAIL|ok|FAIL|PASS)' $OUT/unit.txt | head; echo "tests passed: $(grep -c '^--- PASS' $OUT/unit.txt), skipped: $(grep -c '^--- SKIP' $OUT/unit.txt)"
med() { sort -n | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'; }
secs() { local s=$(date +%s.%N); "$@" > $W/last.out 2>> $OUT/stderr.log || echo "rc=$? $*" >> $OUT/stderr.log; awk -v s=$s -v e=$(date +%s.%N) 'BEGIN{printf "%.3f\n", e-s}'; }
echo "== $(date -u +%T) create on fewer cores (taskset), 3 runs each, median"
for cpus in 0 0-1 0-3; do
  for g in off on; do
    ts=$(for i in 1 2 3; do rm -f $O/a.*; secs taskset -c $cpus $A create $TREE -o $O/a --gpu=$g --progress never --volume-size 0; done)
    printf "create cpus %-4s --gpu=%-3s median %s  runs: %s | %s\n" $cpus $g $(echo "$ts" | med) "$(echo $ts)" "$(head -c 160 $W/last.out | tr '\n' ' ')"
  done
done
cp $O/a.001 $O/keep.001
echo "== $(date -u +%T) verify, 5 runs each"
for g in off on; do
  ts=$(for i in 1 2 3 4 5; do secs $A verify $O/keep.001 --gpu=$g --progress never; done)
  printf "verify --gpu=%-3s median %s  runs: %s | %s\n" $g $(echo "$ts" | med) "$(echo $ts)" "$(head -c 160 $W/last.out | tr '\n' ' ')"
done
for mib in 256 512; do
  echo "== $(date -u +%T) decode, one call of $mib MiB, 256 MiB batches, median of 5"
  (cd $B && ARC_GPU_BENCH=1 ARC_GPU_BENCH_ONLY=decode ARC_GPU_BENCH_MIB=$mib ARC_GPU_BATCH_MIB=256 ARC_GPU_BENCH_REPS=5 ARC_GPU_CORPUS=$W/corpus $W/bin/gpu.test -test.run Throughput -test.v 2>&1 | grep -E '^(what|decode)|batches of')
done
echo "== $(date -u +%T) kernel rows, final build"
KMIB=512 KBATCH=256 KREPS=3 ARC_GPU_BENCH_ONLY=encode bash gpu/devicebench.sh kern > $OUT/kern.txt 2>&1
grep -E '^(what|blake3|encode|decode)|batches of' $OUT/kern.txt
echo "== $(date -u +%T) done"
