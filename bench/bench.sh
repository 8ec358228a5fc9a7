#!/usr/bin/env bash
# bench.sh — issue 8's whole comparison in one go (`make bench`, `make bench-quick`): arcpack at its
# levels next to the peers from Debian's packages, on the same machine in the same run, on two trees:
#   go   — the Go toolchains tree (bench/gotree.sh; four toolchains, 43,634 files, 848 MB), and
#   many — a generated tree of many small files (bench/manyfiles).
# For each tool and tree, RUNS times (medians reported):
#   pack      wall time, output size, peak RSS (GNU time -v; the largest process of the command)
#   extract   wall time and peak RSS, into a scratch folder (tmpfs when it has room, so the disk
#             does not decide), checked against the source's byte and file count
#   mount     (tools that mount: arcmount, squashfuse_ll, archivemount, restic mount)
#             time until the mount point lists; `tar -cf - . | wc -c` of the whole tree cold (after
#             `sync; echo 3 > /proc/sys/vm/drop_caches`) and again warm; on a fresh mount, random
#             4 KiB reads (bench/randread: open+pread+close, fixed seed) cold, then the same warm;
#             peak RSS of the FUSE process (VmHWM)
# The raw figures go to bench/results/bench-DATE.tsv; bench/report turns them into RESULTS.md and
# the SVG charts (by default bench/RESULTS.md, bench/chart-pack.svg, bench/chart-read.svg; with
# --quick bench/results/quick/).
#
# Usage: bench/bench.sh [--quick] [--runs N] [--out DIR]
# Env: RUNS (default 3; 1 with --quick), BENCH_TREE, BENCH_SCRATCH, BENCH_RESULTS, ARCPACK, ARCMOUNT,
#      BENCH_ONLY (regular expression over tool ids: only those run), MANY_N (files in the many-files
#      tree; default 100000, 5000 with --quick), BENCH_MANY (its folder; default
#      /work/benchdata/many-N), BENCH_QUICK_TREE (default /work/benchdata/quick), RANDREAD_N (default
#      2000; 300 with --quick), SLOW_RANDREAD_N (random reads through archivemount, whose every open
#      decompresses the archive from its start; default 20), BENCH_XDIR (extract target's parent),
#      ARC_MOUNT_LEVELS (which arc levels' archives are mounted; default "default"), BENCH_BUDGET_S
#      (seconds: once spent, the remaining tool×phase steps are cut and named in RESULTS.md).
# Must run as root (drop_caches, FUSE mounts of every peer).
set -euo pipefail
runs_env=${RUNS:-} # lib.sh defaults RUNS to 3; --quick defaults it to 1 unless RUNS was given
. "$(dirname "$0")/lib.sh"

quick=0 out_dir=""
while [ $# -gt 0 ]; do
	case $1 in
	--quick) quick=1 ;;
	--runs) RUNS=$2 runs_env=$2; shift ;;
	--out) out_dir=$2; shift ;;
	*) die "unknown argument $1 (usage: bench.sh [--quick] [--runs N] [--out DIR])" ;;
	esac
	shift
done
if [ $quick = 1 ]; then
	RUNS=${runs_env:-1}
	MANY_N=${MANY_N:-2000}
	RANDREAD_N=${RANDREAD_N:-200}
	out_dir=${out_dir:-$BENCH_DIR/results/quick}
else
	MANY_N=${MANY_N:-20000}
	RANDREAD_N=${RANDREAD_N:-2000}
	out_dir=${out_dir:-$BENCH_DIR}
fi
SLOW_RANDREAD_N=${SLOW_RANDREAD_N:-20}
ARC_MOUNT_LEVELS=${ARC_MOUNT_LEVELS:-default}
BUDGET_S=${BENCH_BUDGET_S:-0}
MANY=${BENCH_MANY:-/work/benchdata/many-$MANY_N}
QUICK_TREE=${BENCH_QUICK_TREE:-/work/benchdata/quick}

[ "$(id -u)" = 0 ] || die "must run as root (drop_caches and FUSE mounts)"
need_arc "$ARCPACK" "$ARCMOUNT"
command -v /usr/bin/time >/dev/null || die "/usr/bin/time (Debian package time) is needed"
SKIPPED=()
t_start=$(now)

mkdir -p "$SCRATCH" "$RESULTS" "$out_dir"
work=$(mktemp -d "$SCRATCH/bench.XXXXXX")
# Extraction goes to tmpfs when it holds three times the tree: the tools' speed, not the disk's.
xparent=${BENCH_XDIR:-/dev/shm}
MNT=$work/mnt
mkdir -p "$MNT"
xdir=""
cleanup() {
	unmount "$MNT"
	[ -z "$xdir" ] || rm -rf "$xdir"
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The full run's raw figures are kept (bench/results/bench-DATE.tsv, beside RESULTS.md's sources);
# a quick run's overwrite the last quick run's.
if [ $quick = 1 ]; then mkdir -p "$RESULTS/quick"; raw=$RESULTS/quick/bench-quick.tsv; else raw="$RESULTS/bench-$(date -u +%Y%m%d-%H%M%S).tsv"; fi
: >"$raw"
# rec FIELDS...: one tab-separated line of the raw file.
rec() { (IFS=$'\t'; echo "$*") >>"$raw"; }

note "building bench/randread and bench/report"
(cd "$REPO" && go build -o "$work/randread" ./bench/randread && go build -o "$work/report" ./bench/report)

# ---- trees ----------------------------------------------------------------------------------
ensure_tree
if [ $quick = 1 ]; then
	# A few thousand files, ~60 MB: the same three packages of two toolchains (so dedup and
	# near-duplicates are there, as in the whole tree).
	if [ ! -f "$QUICK_TREE.complete" ]; then
		rm -rf "$QUICK_TREE.tmp"
		for v in go1.24.6 go1.25.4; do
			for p in runtime crypto net; do
				mkdir -p "$QUICK_TREE.tmp/$v/src"
				cp -a "$TREE/$v/src/$p" "$QUICK_TREE.tmp/$v/src/"
			done
		done
		rm -rf "$QUICK_TREE"
		mv "$QUICK_TREE.tmp" "$QUICK_TREE"
		touch "$QUICK_TREE.complete"
	fi
	GO_TREE=$QUICK_TREE
else
	GO_TREE=$TREE
fi
[ -d "$MANY" ] || (cd "$REPO" && go run ./bench/manyfiles -o "$MANY" -n "$MANY_N") >&2
trees=(go many)
declare -A tree_dir=([go]=$GO_TREE [many]=$MANY)

# ---- machine and versions --------------------------------------------------------------------
rec meta mode "$([ $quick = 1 ] && echo quick || echo full)"
rec meta date "$(date -u '+%Y-%m-%d %H:%M UTC')"
# what the binaries were built from: their own version string (make build stamps `git describe`)
BENCH_ARC_REV=${BENCH_ARC_REV:-$("$ARCPACK" --version 2>/dev/null | awk '{print $NF}')}
rec meta commit "${BENCH_ARC_REV:-unknown}"
rec meta cpu "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
rec meta cores "$(nproc)"
rec meta ram "$(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
rec meta kernel "$(uname -r)"
rec meta os "$(. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME")"
rec meta load_start "$(cut -d' ' -f1-3 /proc/loadavg)"
rec meta runs "$RUNS"
rec meta randread_n "$RANDREAD_N"
rec meta slow_randread_n "$SLOW_RANDREAD_N"
for t in "${trees[@]}"; do
	rec tree "$t" "${tree_dir[$t]}" "$(content_bytes "${tree_dir[$t]}")" "$(find "${tree_dir[$t]}" -type f | wc -l)"
done

# ---- tools ------------------------------------------------------------------------------------
# Commands are bash with $SRC (the tree), $OUT (the tool's output folder), $X (extract target).
tools=()
declare -A label pack prep extract mkind mpath
add() { # id label pack extract [prep]
	if [ -n "${BENCH_ONLY:-}" ] && ! [[ $1 =~ $BENCH_ONLY ]]; then SKIPPED+=("$2 (BENCH_ONLY)"); return; fi
	tools+=("$1"); label[$1]=$2; pack[$1]=$3; extract[$1]=$4; prep[$1]=${5:-}
}
mountable() { mkind[$1]=$2; mpath[$1]=$3; } # id kind archive-path-under-$OUT

# With a GPU device, arc runs with --gpu on wherever the command has the flag; without one, with
# --gpu off: the CPU path alone (--gpu auto would also take the CPU, after loading the OpenCL
# platforms, whose libraries count in the peak RSS).
gpu_dev=$("$ARCPACK" gpu --no-self-test 2>/dev/null | awk '$2 == "GPU" {print $1; exit}' || true)
mode=off
[ -z "$gpu_dev" ] || mode=on
gpu_create="" gpu_extract="" gpu_mount="" used=()
if "$ARCPACK" create --help 2>&1 | grep -q -- '--gpu '; then gpu_create="--gpu $mode"; used+=("arcpack create"); fi
if "$ARCPACK" extract --help 2>&1 | grep -q -- '--gpu '; then gpu_extract="--gpu $mode"; used+=("arcpack extract"); fi
if "$ARCMOUNT" --help 2>&1 | grep -q -- '--gpu '; then gpu_mount="--gpu $mode"; used+=("arcmount"); fi
used_s=$(IFS=,; echo "${used[*]:-}"); used_s=${used_s//,/, }
if [ -n "$gpu_dev" ]; then
	rec meta gpu "device $gpu_dev: $("$ARCPACK" gpu --no-self-test | awk -v d="$gpu_dev" '$1 == d {$1=$2=""; sub(/^ +/, ""); print}'); --gpu on for: ${used_s:-nothing (no command has the flag)}"
else
	rec meta gpu "no GPU device (arcpack gpu lists: $("$ARCPACK" gpu --no-self-test 2>/dev/null | awk '$2 ~ /^(CPU|GPU|ACCELERATOR)$/ {$1=""; sub(/^ +/, ""); printf "%s%s", s, $0; s=", "}' || true)): arc ran on the CPU, --gpu off for: ${used_s:-nothing (no command has the flag)}"
	SKIPPED+=("arc with --gpu (no GPU device here; PoCL is a CPU device)")
fi
for l in fast default max; do
	add "arc-$l" "arc $l" "$ARCPACK create \"\$SRC\" -o \"\$OUT/arc\" --level $l --progress=never${gpu_create:+ $gpu_create}" \
		"$ARCPACK extract \"\$OUT/arc.001\" -o \"\$X\" --progress=never${gpu_extract:+ $gpu_extract}"
	[[ " $ARC_MOUNT_LEVELS " != *" $l "* ]] || mountable "arc-$l" arcmount arc.001
done
# The levels differ in how they compress, not in how blocks are read: one is mounted by default.
for l in fast default max; do
	[[ " $ARC_MOUNT_LEVELS " == *" $l "* ]] || SKIPPED+=("arcmount of the arc $l archive (ARC_MOUNT_LEVELS=\"$ARC_MOUNT_LEVELS\")")
done
if have mksquashfs && have unsquashfs; then
	for c in lz4 zstd; do
		add "sqfs-$c" "squashfs $c" "mksquashfs \"\$SRC\" \"\$OUT/tree.sqfs\" -comp $c -noappend -no-progress -quiet" \
			"unsquashfs -d \"\$X\" -f -n -q \"\$OUT/tree.sqfs\""
		command -v squashfuse_ll >/dev/null && mountable "sqfs-$c" squashfuse_ll tree.sqfs
	done
	command -v squashfuse_ll >/dev/null || SKIPPED+=("squashfuse_ll (not installed): squashfs images not mounted")
fi
if have tar && have lz4; then
	add tar-lz4 "tar | lz4" "tar -cf - -C \"\$SRC\" . | lz4 -1 -q > \"\$OUT/tree.tar.lz4\"" \
		"lz4 -dc \"\$OUT/tree.tar.lz4\" | tar -xf - -C \"\$X\""
	if command -v archivemount >/dev/null; then mountable tar-lz4 archivemount tree.tar.lz4
	else SKIPPED+=("archivemount (not installed; apt-get install archivemount)"); fi
fi
if have tar && have zstd; then
	add tar-zstd "tar | zstd --long" "tar -cf - -C \"\$SRC\" . | zstd -3 -T0 --long=31 -q > \"\$OUT/tree.tar.zst\"" \
		"zstd -dc --long=31 \"\$OUT/tree.tar.zst\" | tar -xf - -C \"\$X\""
	# libarchive refuses the 2 GiB window: "Frame requires too much memory for decoding".
	SKIPPED+=("archivemount of tar | zstd --long (libarchive refuses the --long=31 window: \"Frame requires too much memory for decoding\")")
fi
if have borg; then
	b="BORG_BASE_DIR=\"\$OUT/.nocount\" BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=yes BORG_RELOCATED_REPO_ACCESS_IS_OK=yes"
	add borg "borg (lz4)" "cd \"\$SRC\" && $b borg create --compression lz4 \"\$OUT/borg::snap\" ." \
		"cd \"\$X\" && $b borg extract \"\$OUT/borg::snap\"" \
		"mkdir -p \"\$OUT/.nocount\" && $b borg init --encryption=none \"\$OUT/borg\""
	SKIPPED+=("borg mount (needs the Python module llfuse or pyfuse3, which Debian's borgbackup does not pull in)")
fi
if have restic; then
	r="RESTIC_PASSWORD=bench restic --no-cache -q -r \"\$OUT/restic\""
	add restic restic "cd \"\$SRC\" && $r backup ." "$r restore latest --target \"\$X\"" "$r init"
	mountable restic restic snapshots/latest
fi
[ ${#tools[@]} -gt 0 ] || die "no tool to run"
for t in "${tools[@]}"; do
	rec tool "$t" "${label[$t]}" "$([[ $t == arc-* ]] && echo arc || echo peer)" "${mkind[$t]:-}"
	rec cmd "$t" pack "${pack[$t]}"
	[ -z "${prep[$t]}" ] || rec cmd "$t" prep "${prep[$t]}"
	rec cmd "$t" extract "${extract[$t]}"
	case ${mkind[$t]:-} in
	arcmount) rec cmd "$t" mount "arcmount \$OUT/${mpath[$t]} \$MNT --cache-size 512M${gpu_mount:+ $gpu_mount}" ;;
	squashfuse_ll) rec cmd "$t" mount "squashfuse_ll \$OUT/${mpath[$t]} \$MNT" ;;
	archivemount) rec cmd "$t" mount "archivemount -o readonly \$OUT/${mpath[$t]} \$MNT" ;;
	restic) rec cmd "$t" mount "RESTIC_PASSWORD=bench restic --no-cache -r \$OUT/restic mount \$MNT (the tree is \$MNT/${mpath[$t]})" ;;
	esac
done

# ---- measuring --------------------------------------------------------------------------------
# measure CMD: runs `bash -c CMD` (SRC, OUT, X in its environment) under GNU time; sets m_wall (s) and
# m_rss (KiB). Returns non-zero (and says why) when the command fails.
measure() {
	local tf t0 t1 rc=0
	tf=$(mktemp)
	stamp t0
	SRC=$SRC OUT=$OUT X=${X:-} /usr/bin/time -v -o "$tf" bash -o pipefail -c "$1" >"$work/cmd.log" 2>&1 || rc=$?
	stamp t1
	if [ $rc != 0 ]; then
		note "command failed (exit $rc): $1"; tail -5 "$work/cmd.log" >&2
		rm -f "$tf"; return 1
	fi
	m_wall=$(echo "$t1 - $t0" | bc -l)
	m_rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$tf")
	rm -f "$tf"
}
# over_budget TREE TOOL PHASE: true (and recorded) once the run has used BENCH_BUDGET_S seconds, so
# that a run with a deadline stops early and RESULTS.md names what was cut.
over_budget() {
	[ "$BUDGET_S" != 0 ] || return 1
	(($(printf '%.0f' "$(echo "$(now) - $t_start" | bc -l)") >= BUDGET_S)) || return 1
	SKIPPED+=("${label[$2]} $3 on the $1 tree (cut: the run's time budget BENCH_BUDGET_S=${BUDGET_S} s was spent)")
	note "$2 $3 on $1: cut, time budget spent"
}
fail() { # tree tool phase
	rec fail "$1" "$2" "$3" "$(tail -3 "$work/cmd.log" | tr '\t\n' '  ')"
	note "$2 $3 on $1: failed"
}

# rounds TREE PHASE TOOL...: RUNS rounds of PHASE_run TREE TOOL RUN over the tools, in an
# order rotated each round. Before each run PHASE_ready TREE TOOL sets what the run needs
# (non-zero: the tool has nothing to run on, skipped); a tool that fails, or is cut when the
# time budget is spent (then PHASE_cut TREE TOOL, where there is one), runs no more.
rounds() {
	local tr=$1 phase=$2 t r order
	shift 2
	local -A dead=()
	for r in $(seq "$RUNS"); do
		mapfile -t order < <(rotated "$r" "$@") # names may hold spaces
		for t in "${order[@]}"; do
			[ -z "${dead[$t]:-}" ] || continue
			"${phase}_ready" "$tr" "$t" || continue
			if over_budget "$tr" "$t" "$phase"; then
				dead[$t]=1
				! declare -F "${phase}_cut" >/dev/null || "${phase}_cut" "$tr" "$t"
				continue
			fi
			"${phase}_run" "$tr" "$t" "$r" || dead[$t]=1
		done
	done
}

pack_phase() { # tree
	local tr=$1
	SRC=${tree_dir[$tr]}
	note "$tr: warming $SRC (one read of every file) so every tool reads it from the page cache"
	warm "$SRC"
	rounds "$tr" pack "${tools[@]}"
	# each tool's last run's output stays for extract and mount
}
pack_ready() { OUT=$work/$1/$2; }
pack_cut() { rm -rf "$OUT"; }

pack_run() { # tree tool run; non-zero: the tool failed
	local tr=$1 t=$2 r=$3 s
	rm -rf "$OUT"; mkdir -p "$OUT"
	if [ -n "${prep[$t]}" ] && ! SRC=$SRC OUT=$OUT bash -c "${prep[$t]}" >"$work/cmd.log" 2>&1; then fail "$tr" "$t" prep; return 1; fi
	sync
	rec load "$tr" "$t" pack "$r" "$(load1)"
	# The output synced within the time, for every tool: arcpack, borg and restic fsync
	# theirs, mksquashfs and tar | ... leave it to the page cache.
	measure "${pack[$t]} && sync -f \"\$OUT\"" || { fail "$tr" "$t" pack; rm -rf "$OUT"; return 1; }
	s=$(content_bytes "$OUT")
	[ ! -e "$OUT/.nocount" ] || s=$((s - $(content_bytes "$OUT/.nocount")))
	rec val "$tr" "$t" pack_s "$r" "$m_wall"
	rec val "$tr" "$t" pack_rss_kib "$r" "$m_rss"
	rec val "$tr" "$t" size_b "$r" "$s"
	note "$tr $t pack run $r: ${m_wall}s, $s bytes, peak RSS $m_rss KiB (load $(load1))"
}

extract_phase() { # tree
	local tr=$1 want_b want_f
	SRC=${tree_dir[$tr]}
	want_b=$(content_bytes "$SRC") want_f=$(find "$SRC" -type f | wc -l)
	rounds "$tr" extract "${tools[@]}"
	rm -rf "$xdir/x"
}
extract_ready() { OUT=$work/$1/$2; [ -d "$OUT" ]; }

extract_run() { # tree tool run; non-zero: the tool failed
	local tr=$1 t=$2 r=$3 got_b got_f
	X=$xdir/x
	rm -rf "$X"; mkdir -p "$X"
	sync
	rec load "$tr" "$t" extract "$r" "$(load1)"
	measure "${extract[$t]}" || { fail "$tr" "$t" extract; return 1; }
	# an extraction that came back short is a failure, not a fast extract: its time is not kept
	got_b=$(content_bytes "$X") got_f=$(find "$X" -type f | wc -l)
	if [ "$got_b" != "$want_b" ] || [ "$got_f" != "$want_f" ]; then
		rec fail "$tr" "$t" extract-check "run $r extracted $got_f files, $got_b bytes; the source has $want_f files, $want_b bytes"
		return 1
	fi
	rec val "$tr" "$t" extract_s "$r" "$m_wall"
	rec val "$tr" "$t" extract_rss_kib "$r" "$m_rss"
	note "$tr $t extract run $r: ${m_wall}s, peak RSS $m_rss KiB"
}

do_mount() { # tool archive-dir → sets mount_s, pid, root (the tree's root under $MNT)
	local t=$1 dir=$2 a t0 t1
	a=$dir/${mpath[$t]}
	root=$MNT
	stamp t0
	case ${mkind[$t]} in
	arcmount) "$ARCMOUNT" "$a" "$MNT" --cache-size 512M $gpu_mount >"$work/mount.log" 2>&1 ;;
	squashfuse_ll) squashfuse_ll "$a" "$MNT" >"$work/mount.log" 2>&1 ;;
	archivemount) archivemount -o readonly "$a" "$MNT" >"$work/mount.log" 2>&1 ;;
	restic)
		RESTIC_PASSWORD=bench setsid restic --no-cache -r "$dir/restic" mount "$MNT" >"$work/mount.log" 2>&1 &
		root=$MNT/snapshots/latest ;;
	esac
	wait_listed "$root" 120 || { cat "$work/mount.log" >&2; return 1; }
	stamp t1
	mount_s=$(echo "$t1 - $t0" | bc -l)
	pid=$(fuse_pid "$MNT") || { note "cannot find the process serving $MNT"; return 1; }
}
do_unmount() { # → hwm: the largest VmHWM of the run (KiB)
	local h
	h=$(vmhwm "$pid"); h=${h:-0}
	((h > hwm)) && hwm=$h
	unmount "$MNT"
}
secs() { local t0 t1; stamp t0; "$@" >/dev/null; stamp t1; echo "$t1 - $t0" | bc -l; }
tarsize() { tar -cf - -C "$1" . | wc -c; }

mount_phase() { # tree
	local tr=$1 t dir want
	SRC=${tree_dir[$tr]}
	want=$(tarsize "$SRC") # a whole-tree read through a mount must give the same tar stream length
	local mounting=() # the tools with a mount and an archive, rotated among themselves
	for t in "${tools[@]}"; do
		[ -n "${mkind[$t]:-}" ] && [ -d "$work/$tr/$t" ] && mounting+=("$t")
	done
	((${#mounting[@]})) || return 0
	rounds "$tr" mount "${mounting[@]}"
}
mount_ready() { dir=$work/$1/$2; }

mount_run() { # tree tool run; non-zero: the tool failed
	local tr=$1 t=$2 r=$3 n s out nrand phase
	# archivemount decompresses the archive from its start at every open: a whole-tree read
	# would take hours, so only mount time and a few random reads are measured.
	nrand=$RANDREAD_N; [ "${mkind[$t]}" != archivemount ] || nrand=$SLOW_RANDREAD_N
	hwm=0
	rec load "$tr" "$t" mount "$r" "$(load1)"
	drop_caches
	do_mount "$t" "$dir" || { fail "$tr" "$t" mount; unmount "$MNT"; return 1; }
	rec val "$tr" "$t" mount_s "$r" "$mount_s"
	rec val "$tr" "$t" mount_rss_kib "$r" "$(vmhwm "$pid")"
	if [ "${mkind[$t]}" != archivemount ]; then
		drop_caches
		# a read that came back short is a failure, not a fast read: its time is not kept
		stamp t0; n=$(tarsize "$root"); stamp t1; s=$(echo "$t1 - $t0" | bc -l)
		rec val "$tr" "$t" tar_bytes "$r" "$n"
		if [ "$n" = "$want" ]; then
			rec val "$tr" "$t" cold_s "$r" "$s"
			stamp t0; n=$(tarsize "$root"); stamp t1; s=$(echo "$t1 - $t0" | bc -l)
			if [ "$n" = "$want" ]; then rec val "$tr" "$t" warm_s "$r" "$s"
			else rec fail "$tr" "$t" read-check "warm: tar through the mount gave $n bytes, of the source $want"; fi
		else
			rec fail "$tr" "$t" read-check "tar through the mount gave $n bytes, of the source $want"
		fi
	fi
	do_unmount
	do_mount "$t" "$dir" || { fail "$tr" "$t" mount; unmount "$MNT"; return 1; }
	drop_caches
	for phase in cold warm; do
		if ! out=$("$work/randread" -list "$SRC" -root "$root" -n "$nrand" 2>&1); then
			rec fail "$tr" "$t" "randread" "$out"; break
		fi
		rec val "$tr" "$t" "r${phase}50_ms" "$r" "$(sed -E 's/.*p50=([0-9.]+)ms.*/\1/' <<<"$out")"
		rec val "$tr" "$t" "r${phase}99_ms" "$r" "$(sed -E 's/.*p99=([0-9.]+)ms.*/\1/' <<<"$out")"
		rec val "$tr" "$t" "r${phase}_n" "$r" "$nrand"
	done
	do_unmount
	rec val "$tr" "$t" fuse_rss_kib "$r" "$hwm"
	note "$tr $t mount run $r: mount ${mount_s}s, VmHWM $hwm KiB"
}

if [ -d "$xparent" ] && [ "$(df -B1 --output=avail "$xparent" | tail -1)" -gt $((3 * $(content_bytes "$GO_TREE"))) ]; then
	xdir=$(mktemp -d "$xparent/arcbench.XXXXXX")
	rec meta extract_to "tmpfs ($xparent)"
else
	xdir=$work/x
	rec meta extract_to "$work (disk)"
fi

for tr in "${trees[@]}"; do
	p0=$(now); pack_phase "$tr"; rec phase "$tr" pack "$(echo "$(now) - $p0" | bc -l)"
	p0=$(now); extract_phase "$tr"; rec phase "$tr" extract "$(echo "$(now) - $p0" | bc -l)"
	p0=$(now); mount_phase "$tr"; rec phase "$tr" mount "$(echo "$(now) - $p0" | bc -l)"
	rm -rf "${work:?}/$tr"
done

for s in "${SKIPPED[@]}"; do rec skip "$s"; done
while IFS= read -r v; do rec version "$v"; done < <(tool_versions arcpack arcmount mksquashfs unsquashfs squashfuse_ll tar lz4 zstd borg restic archivemount)
rec meta load_end "$(cut -d' ' -f1-3 /proc/loadavg)"
rec meta elapsed_s "$(echo "$(now) - $t_start" | bc -l)"
"$work/report" -in "$raw" -name "${raw#"$REPO"/}" -out "$out_dir"
note "raw figures: $raw; report: $out_dir/RESULTS.md ($(printf '%.0f' "$(echo "$(now) - $t_start" | bc -l)") s in all)"
