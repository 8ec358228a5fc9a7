#!/usr/bin/env bash
# codec.sh — the block codec table of issue 4 (`make bench-codec`): arc's lz4x
# levels, pierrec lz4 fast/HC, zstd and the lz4 command (-1, -9) on the same
# bytes — the distinct files of the Go toolchains tree, concatenated in path
# order — at block sizes 64K..16M, one core (GOMAXPROCS=1, pinned with taskset
# when available), medians of RUNS runs.
#
# Env: BENCH_DISTINCT (default /work/benchdata/distinct; prepared by gotree.sh
# when missing), RUNS (default 3), CODEC_MAX (bytes of the stream to use,
# default 0 = all), CODEC_SIZES, CODEC_CODECS, CODEC_CLI (lz4 command levels,
# default -1,-9; see codecbench -h), CODEC_CLOCK (wall, the default, or cpu:
# time by CPU time, steadier when the machine's other tenants take cores away).
# The table goes to stdout and to bench/results/codec-<date>.md.
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"

DISTINCT=${BENCH_DISTINCT:-/work/benchdata/distinct}
if [ ! -d "$DISTINCT" ]; then
	BENCH_DISTINCT=$DISTINCT "$BENCH_DIR/gotree.sh" >&2
fi
[ -d "$DISTINCT" ] || die "$DISTINCT is not ready"

bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
(cd "$REPO" && go build -o "$bin/codecbench" ./bench/codecbench)

# The last core: core 0 takes most interrupts here, and ran the same
# single-core loops up to 20% slower.
pin=()
command -v taskset >/dev/null && pin=(taskset -c "$(($(nproc) - 1))")
have lz4 || true
cli=${CODEC_CLI:--1,-9}
command -v lz4 >/dev/null || cli=""

clock=()
case ${CODEC_CLOCK:-wall} in
wall) ;;
cpu) clock=(-cpu) ;;
*) die "CODEC_CLOCK is wall or cpu, not $CODEC_CLOCK" ;;
esac

mkdir -p "$RESULTS"
out="$RESULTS/codec-$(date -u +%Y%m%dT%H%M%SZ).md"
note "load average $(load1) on $(nproc) cores; writing $out"
{
	echo "## codec: $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo
	echo "- arc: codecbench built from $(cd "$REPO" && git describe --always --dirty 2>/dev/null || echo "an unknown commit")"
	echo "- machine: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo) RAM, kernel $(uname -r)"
	echo "- load at start: $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15 min)"
	echo "- pinned: ${pin[*]:-no (taskset not installed)}"
	tool_versions lz4
	echo
} | tee "$out"
"${pin[@]}" "$bin/codecbench" -dir "$DISTINCT" -reps "${RUNS}" -max "${CODEC_MAX:-0}" \
	-sizes "${CODEC_SIZES:-64K,256K,1M,4M,16M}" \
	-codecs "${CODEC_CODECS:-lz4x:fast,lz4x:default,lz4x:high,lz4x:max,lz4:default,lz4:max,zstd:default}" \
	-cli "$cli" "${clock[@]}" | tee -a "$out"
