# lib.sh — helpers shared by the bench scripts (sourced, not run).
# shellcheck shell=bash

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$BENCH_DIR/.." && pwd)
TREE=${BENCH_TREE:-/work/benchdata/gotree}
SCRATCH=${BENCH_SCRATCH:-/work/benchdata/scratch}
RESULTS=${BENCH_RESULTS:-$BENCH_DIR/results}
ARCPACK=${ARCPACK:-$REPO/bin/arcpack}
ARCMOUNT=${ARCMOUNT:-$REPO/bin/arcmount}
RUNS=${RUNS:-3}

die() { echo "bench: $*" >&2; exit 1; }
note() { echo "bench: $*" >&2; }
# Every time difference goes through bc: without it each would read 0 (Debian: apt-get install bc).
[ "$(echo 1+1 | bc 2>/dev/null)" = 2 ] || die "bc is needed (apt-get install bc; make bench-deps installs it)"
# now: seconds since the epoch, µs resolution (bash ≥ 5); "," → "." for locales. $(now) forks a
# subshell (1-4 ms here): where that would be timed, stamp VAR sets VAR without one.
now() { local t=$EPOCHREALTIME; echo "${t/,/.}"; }
stamp() { printf -v "$1" '%s' "${EPOCHREALTIME/,/.}"; }
load1() { cut -d' ' -f1 /proc/loadavg; }

# have TOOL: true when TOOL is installed; otherwise says it is skipped.
have() {
	if command -v "$1" >/dev/null 2>&1; then return 0; fi
	note "$1 not installed: skipping it"
	SKIPPED+=("$1 (not installed)")
	return 1
}

# need_arc BIN...: the arc binaries must exist (built by `make build`).
need_arc() {
	local b
	for b in "$@"; do
		[ -x "$b" ] || die "$b missing: build it first (make build, or go build -o bin/ ./cmd/...), or pass --peers-only"
	done
}

# ensure_tree: the Go toolchains tree, prepared by gotree.sh when missing.
ensure_tree() {
	[ -f "$TREE.complete" ] || BENCH_TREE=$TREE "$BENCH_DIR/gotree.sh" >&2
	[ -f "$TREE.complete" ] || die "$TREE is not ready"
}

# content_bytes PATH...: total apparent size of the regular files under the paths (files or
# directories): a tree's content, or a tool's outputs, without the directories' own sizes
# (du -sb counts those: 1 MB for restic's 256 data folders).
content_bytes() { find "$@" -type f -printf '%s\n' | awk '{s+=$1} END {printf "%d", s}'; }

# warm DIR: read every file once so every tool finds the tree in the page cache.
# (tar to /dev/null would skip reading; pipe through wc.)
warm() { tar -cf - -C "$1" . | wc -c >/dev/null; }

drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches; }

# median of numbers on stdin.
median() { sort -g | awk '{a[NR]=$1} END { if (NR==0) {print "nan"} else if (NR%2) {print a[(NR+1)/2]} else {print (a[NR/2]+a[NR/2+1])/2} }'; }

# timed OUTVAR_PREFIX CMD...: runs CMD under /usr/bin/time -v; sets ${P}_wall (s, from the shell clock)
# and ${P}_rss (KiB, peak RSS: GNU time reports the largest single process in the tree, not a sum).
timed() {
	local p=$1; shift
	local tf t0 t1
	tf=$(mktemp)
	stamp t0
	/usr/bin/time -v -o "$tf" "$@" || { cat "$tf" >&2; rm -f "$tf"; die "command failed: $*"; }
	stamp t1
	printf -v "${p}_wall" '%.3f' "$(echo "$t1 - $t0" | bc -l)"
	printf -v "${p}_rss" '%d' "$(awk -F': ' '/Maximum resident set size/ {print $2}' "$tf")"
	rm -f "$tf"
}

machine_info() {
	echo "- date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
	echo "- machine: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo) RAM, kernel $(uname -r)"
	echo "- load at start: $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15 min; the machine is shared, timings are noisy)"
	echo "- tree: $TREE ($(content_bytes "$TREE") bytes of file content, $(find "$TREE" -type f | wc -l) files)"
}

# tool_versions TOOL...: one line per installed tool.
tool_versions() {
	local t v
	for t in "$@"; do
		case $t in
		arcpack) v=""; [ -x "$ARCPACK" ] && v="$ARCPACK, built from ${BENCH_ARC_REV:-the working tree; HEAD now $(cd "$REPO" && git rev-parse --short HEAD 2>/dev/null)}" ;;
		arcmount) v=""; [ -x "$ARCMOUNT" ] && v="$ARCMOUNT, built from ${BENCH_ARC_REV:-the working tree; HEAD now $(cd "$REPO" && git rev-parse --short HEAD 2>/dev/null)}" ;;
		# || true throughout: a tool whose --version exits non-zero (unsquashfs does) must not end
		# the loop under set -e, leaving out every tool after it.
		mksquashfs) v=$(mksquashfs -version 2>/dev/null | head -1 || true) ;;
		unsquashfs) v=$(unsquashfs -version 2>/dev/null | head -1 || true) ;;
		squashfuse_ll) v=$( (squashfuse_ll --version 2>&1 || true) | grep -m1 . || true) ;;
		tar) v=$(tar --version | head -1 || true) ;;
		lz4) v=$(lz4 --version 2>&1 | head -1 | tr -d '*' | sed 's/^ *//' || true) ;;
		zstd) v=$(zstd --version 2>&1 | tr -d '*' | sed 's/^ *//' || true) ;;
		borg) v=$(borg --version 2>&1 || true) ;;
		restic) v=$(restic version 2>&1 || true) ;;
		*) v=$( ("$t" --version 2>&1 || true) | grep -m1 . || true) ;;
		esac
		command -v "$t" >/dev/null 2>&1 || [ -n "$v" ] || { echo "- $t: not installed"; continue; }
		echo "- $t: $v"
	done
}

# fuse_pid MNT: pid of the process serving MNT (its command line names the mount point as one
# argument). pgrep narrows the candidates first: reading every process's cmdline through tr and
# grep cost ~2 s per call on a busy machine.
fuse_pid() {
	local mnt=$1 pid
	for pid in $(pgrep -f -- "$mnt" || true); do
		[ "$pid" != "$$" ] || continue
		case $(cat "/proc/$pid/comm" 2>/dev/null) in fusermount* | bash | sh | timeout | pgrep) continue ;; esac
		if tr '\0' '\n' 2>/dev/null <"/proc/$pid/cmdline" | grep -qxF -- "$mnt"; then
			echo "$pid"; return 0
		fi
	done
	return 1
}

# vmhwm PID: peak RSS in KiB.
vmhwm() { awk '/VmHWM/ {print $2}' "/proc/$1/status" 2>/dev/null; }

# wait_listed MNT TIMEOUT_S: until MNT's root lists at least one entry (MNT is an empty directory
# before the mount: an entry means the mount is there). Each look forks nothing; a failed one
# sleeps 5 ms.
wait_listed() {
	local mnt=$1 end=$((SECONDS + $2)) e
	shopt -s nullglob dotglob
	while :; do
		e=("$mnt"/*)
		((${#e[@]} > 0)) && { shopt -u nullglob dotglob; return 0; }
		((SECONDS < end)) || { shopt -u nullglob dotglob; return 1; }
		sleep 0.005
	done
}

# mounted MNT: MNT is a mount point, by /proc/self/mountinfo (no stat: that of a mount whose server
# died fails with ENOTCONN, and mountpoint(1) then says it is none).
mounted() { grep -qF " $1 " /proc/self/mountinfo; }

# unmount MNT: unmount if mounted and wait for the serving process to go.
unmount() {
	local mnt=$1 pid
	mounted "$mnt" || return 0
	pid=$(fuse_pid "$mnt" || true)
	fusermount3 -u "$mnt" 2>/dev/null || fusermount3 -uz "$mnt" 2>/dev/null || umount -l "$mnt" 2>/dev/null || true
	if [ -n "$pid" ]; then
		for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
	fi
}

fmt_mb() { awk -v b="$1" 'BEGIN {printf "%.1f", b/1e6}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b==0) print "-"; else printf "%.2f", a/b }'; }

# rotated R ITEM...: the items, starting at the (R-1)th (mod their number): run R of each tool
# comes in another place, so that drift on this shared machine spreads over the tools instead of
# falling on whole tools, as it does with each tool's runs back to back.
rotated() {
	local r=$1 i n
	shift
	n=$#
	for ((i = 0; i < n; i++)); do
		echo "${@:$(((r - 1 + i) % n + 1)):1}"
	done
}

# run_tools: RUNS times, for each name in the array tools (in an order rotated each run): an empty scratch folder $OUT, the untimed
# set-up prep_of[name] (if any), then cmd_of[name] timed; the output size is what is under $OUT
# minus anything the set-up put in $OUT/.nocount. Fills the global associative arrays
# wall (median s), size (bytes, last run), rss (median KiB), loads, allwalls. BENCH_ONLY (a regular
# expression) keeps only the tools whose name matches.
run_tools() {
	local t r c p s work l order
	local -A W=() R=() L=() # each tool's walls, RSSs and loads so far
	work=$1
	if [ -n "${BENCH_ONLY:-}" ]; then
		local keep=()
		for t in "${tools[@]}"; do [[ $t =~ $BENCH_ONLY ]] && keep+=("$t") || SKIPPED+=("$t (BENCH_ONLY)"); done
		tools=("${keep[@]}")
	fi
	for r in $(seq "$RUNS"); do
		mapfile -t order < <(rotated "$r" "${tools[@]}") # names may hold spaces
		for t in "${order[@]}"; do
			OUT=$work/run
			rm -rf "$OUT"; mkdir -p "$OUT"
			c=${cmd_of[$t]//\$OUT/$OUT}
			p=${prep_of[$t]:-}
			[ -z "$p" ] || bash -c "${p//\$OUT/$OUT}" >/dev/null 2>&1 || die "$t: set-up failed: ${p//\$OUT/$OUT}"
			l=$(load1)
			# Every tool's output synced within its time (arcpack, borg and restic fsync their
			# own; mksquashfs and tar | ... do not).
			timed m bash -o pipefail -c "$c && sync -f \"\$0\"" "$OUT" >&2
			W[$t]+="${W[$t]:+ }$m_wall" R[$t]+="${R[$t]:+ }$m_rss" L[$t]+="${L[$t]:+/}$l"
			s=$(content_bytes "$OUT")
			[ ! -e "$OUT/.nocount" ] || s=$((s - $(content_bytes "$OUT/.nocount")))
			size[$t]=$s
			note "$t run $r: ${m_wall}s, $s bytes, peak RSS ${m_rss} KiB, load $l"
			rm -rf "$OUT"
		done
	done
	for t in "${tools[@]}"; do
		wall[$t]=$(tr ' ' '\n' <<<"${W[$t]}" | median)
		rss[$t]=$(tr ' ' '\n' <<<"${R[$t]}" | median)
		loads[$t]=${L[$t]}
		allwalls[$t]=${W[$t]}
	done
}

# size_table REF: markdown table of the tools measured by run_tools, ratios against tool REF.
size_table() {
	local ref=$1 t rs rt
	echo "| tool | input bytes | output bytes | ratio | wall s | MB/s | peak RSS MiB | size vs $ref | time vs $ref | load (1m) per run | wall s per run |"
	echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|"
	for t in "${tools[@]}"; do
		rs="-" rt="-"
		if [ -n "${size[$ref]:-}" ]; then
			rs=$(ratio "${size[$t]}" "${size[$ref]}")
			rt=$(ratio "${wall[$t]}" "${wall[$ref]}")
		fi
		printf '| %s | %d | %d | %s | %.2f | %.0f | %.0f | %s | %s | %s | %s |\n' "${t//|/\\|}" "$input" "${size[$t]}" \
			"$(ratio "$input" "${size[$t]}")" "${wall[$t]}" "$(awk -v b="$input" -v s="${wall[$t]}" 'BEGIN {print b/1e6/s}')" \
			"$(awk -v k="${rss[$t]}" 'BEGIN {print k/1024}')" "$rs" "$rt" "${loads[$t]}" "${allwalls[$t]}"
	done
}

# tools_report KIND EXTRA VERSION_TOOL...: writes the report of a run_tools benchmark to
# $RESULTS/KIND-DATE.md and stdout; EXTRA is printed under the table (may be empty).
tools_report() {
	local kind=$1 extra=$2 t res
	shift 2
	res="$RESULTS/$kind-$(date -u +%Y%m%d-%H%M%S).md"
	{
		echo "## $kind: $(date -u '+%Y-%m-%d %H:%M UTC')"
		echo
		machine_info
		echo "- runs: $RUNS per tool, median shown (all runs' wall times in the last column); tree warmed (read once) before, so every tool reads from the page cache"
		echo "- peak RSS: largest single process of the command (GNU time -v)"
		[ ${#SKIPPED[@]} -eq 0 ] || echo "- skipped: ${SKIPPED[*]}"
		[ "$peers_only" = 0 ] || echo "- arcpack: not run (--peers-only)"
		echo
		size_table "mksquashfs lz4"
		echo
		[ -z "$extra" ] || { echo "$extra"; echo; }
		echo "Commands (\$OUT is a scratch folder, emptied before each run; set-up in brackets, not timed):"
		echo
		for t in "${tools[@]}"; do echo "- $t: \`${cmd_of[$t]}\`${prep_of[$t]:+ [\`${prep_of[$t]}\`]}"; done
		echo
		echo "Versions:"
		echo
		tool_versions "$@"
	} | tee "$res"
	note "results written to $res"
}

# tools_setup KIND: the tree ready and warm (read once, so every tool reads it from the page cache);
# sets work (a scratch folder removed on exit) and input (bytes of file content).
tools_setup() {
	ensure_tree
	mkdir -p "$SCRATCH" "$RESULTS"
	work=$(mktemp -d "$SCRATCH/$1.XXXXXX")
	trap 'rm -rf "$work"' EXIT
	input=$(content_bytes "$TREE")
	note "warming the tree (one read of every file) so all tools read from the page cache"
	warm "$TREE"
}
