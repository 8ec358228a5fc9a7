#!/usr/bin/env bash
# snapshots.sh — issue 5's generated dedup case: a 1 GiB tree and three later snapshots of it, each
# with 1% of the files edited by inserting or deleting 1–8 KiB in the middle (bench/snapgen). It
# reports the bytes each snapshot adds to: borg (lz4) and restic repositories, which take each
# snapshot as a new backup; and arcpack, which has no append mode: its figure is the size of one
# archive holding snapshots 0..k minus the one holding 0..k-1, i.e. what keeping one more version in
# the same archive costs. Sizes do not depend on machine load; times are shown but are single runs.
#
# Usage: bench/snapshots.sh [--size 1G] [--edit 1] [--snapshots 3]
# Env: BENCH_SCRATCH, BENCH_RESULTS, ARCPACK, SNAP_REAL (real files for half the base; default the
# distinct Go files prepared by gotree.sh when present).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

size=1G edit=1 snaps=3
while [ $# -gt 0 ]; do
	case $1 in
	--size) size=$2; shift ;;
	--edit) edit=$2; shift ;;
	--snapshots) snaps=$2; shift ;;
	*) die "unknown argument $1 (usage: snapshots.sh [--size 1G] [--edit PCT] [--snapshots N])" ;;
	esac
	shift
done
SKIPPED=()
need_arc "$ARCPACK"
real=${SNAP_REAL:-/work/benchdata/distinct}
[ -d "$real" ] || real=""

data=$SCRATCH/snapshots-$size-$edit
gen=$SCRATCH/snapgen
mkdir -p "$SCRATCH" "$RESULTS"
(cd "$REPO" && go build -o "$gen" ./bench/snapgen)
if [ ! -f "$data/s$snaps.complete" ]; then
	rm -rf "$data" && mkdir -p "$data"
	note "generating the $size base tree in $data/s0"
	"$gen" -base "$data/s0" -size "$size" ${real:+-real "$real"} -seed 1
	for k in $(seq 1 "$snaps"); do
		"$gen" -from "$data/s$((k - 1))" -to "$data/s$k" -edit "$edit" -seed $((k + 1)) >"$data/s$k.edits"
		note "snapshot $k: $(cat "$data/s$k.edits")"
	done
	touch "$data/s$snaps.complete"
fi

out=$SCRATCH/snapshots-out
rm -rf "$out" && mkdir -p "$out"
declare -A total time_of
row_names=()

# arcpack: one archive of s0..sk per k.
for k in $(seq 0 "$snaps"); do
	srcs=()
	for i in $(seq 0 "$k"); do srcs+=("$data/s$i"); done
	rm -f "$out"/arc.*
	timed arc "$ARCPACK" create "${srcs[@]}" -o "$out/arc" --progress never
	total[arcpack,$k]=$(content_bytes "$out"/arc.*)
	time_of[arcpack,$k]=$arc_wall
done
row_names+=(arcpack)

export BORG_BASE_DIR=$out/.borg-base BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=yes BORG_RELOCATED_REPO_ACCESS_IS_OK=yes
if have borg; then
	borg init --encryption=none "$out/borg" >/dev/null
	for k in $(seq 0 "$snaps"); do
		timed borgrun sh -c "cd '$data' && borg create --compression lz4 '$out/borg::s$k' s$k"
		total[borg,$k]=$(content_bytes "$out/borg")
		time_of[borg,$k]=$borgrun_wall
	done
	row_names+=(borg)
fi
export RESTIC_PASSWORD=bench
if have restic; then
	restic --no-cache -q -r "$out/restic" init >/dev/null
	for k in $(seq 0 "$snaps"); do
		timed resticrun sh -c "cd '$data' && restic --no-cache -q -r '$out/restic' backup s$k"
		total[restic,$k]=$(content_bytes "$out/restic")
		time_of[restic,$k]=$resticrun_wall
	done
	row_names+=(restic)
fi

stamp=$(date -u +%Y%m%d-%H%M%S)
md=$RESULTS/snapshots-$stamp.md
{
	echo "## snapshots: $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo
	echo "- machine: $(nproc) CPUs, $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo) RAM; load at start of report: $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "- data: base $size ($(content_bytes "$data/s0") bytes, $(find "$data/s0" -type f | wc -l) files; real files from ${real:-none} for up to half, generated text for the rest), $snaps snapshots each editing $edit% of the files (bench/snapgen, seeds 1..$((snaps + 1)))"
	echo "- arcpack has no append mode: its total for snapshot k is one archive of s0..sk (\`arcpack create s0 .. sk\`, defaults); borg (\`--compression lz4\`, default chunker) and restic (defaults, \`--no-cache\`) back up each snapshot into one repository. Wall times are single runs on a shared machine."
	for k in $(seq 1 "$snaps"); do
		[ ! -f "$data/s$k.edits" ] || echo "- snapshot $k: $(cat "$data/s$k.edits")"
	done
	[ ${#SKIPPED[@]} = 0 ] || echo "- skipped: ${SKIPPED[*]}"
	tool_versions arcpack borg restic
	echo
	printf '| snapshot |'
	for t in "${row_names[@]}"; do printf ' %s total | %s added | %s s |' "$t" "$t" "$t"; done
	echo
	printf '|---|'
	for _ in "${row_names[@]}"; do printf -- '---:|---:|---:|'; done
	echo
	for k in $(seq 0 "$snaps"); do
		printf '| %d |' "$k"
		for t in "${row_names[@]}"; do
			added=${total[$t,$k]}
			[ "$k" = 0 ] || added=$((total[$t,$k] - total[$t,$((k - 1))]))
			printf ' %s | %s | %.1f |' "${total[$t,$k]}" "$added" "${time_of[$t,$k]}"
		done
		echo
	done
} >"$md"
cat "$md"
note "written to $md"
