#!/usr/bin/env bash
# mount.sh — issue 3's mount benchmark: arcmount next to squashfuse_ll on an `mksquashfs -comp lz4`
# image of the same Go toolchains tree, in the same run. Per filesystem and run:
#   mount 1: time to mount (until the mount point lists) → drop caches → `tar -cf - MNT | wc -c` of
#            the whole tree (cold) → sequential read of the largest file (dd bs=1M), twice, the second
#            timed by dd itself (warm)
#   mount 1b: drop caches, read the image (volumes) into the page cache → fresh mount → whole-tree tar
#            (warm image: the filesystem's own cost without the disk)
#   mount 2: drop caches → `cp -a` of one toolchain (cold)
#   mount 3: drop caches → random 4 KiB reads (bench/randread, fixed seed, N reads) cold, then the
#            same reads again (warm)
#   peak RSS of the FUSE process: VmHWM read before each unmount, the largest of the run.
# After the runs, one more cold whole-tree tar per filesystem, in name order, checked byte for byte
# against the source tree's (a benchmark of wrong bytes measures nothing; the script fails).
# Then the 1,000,000-small-files tree (bench/manyfiles): mount-ready time and RSS.
# Medians of RUNS (default 3) runs, the filesystems taking turns run by run, the one that goes first changing every run. Caches are dropped with `echo 3 > /proc/sys/vm/drop_caches` (root).
#
# Usage: bench/mount.sh [--peers-only] [--runs N] [--no-million] [--cache-size 512M]
# Env: BENCH_TREE, BENCH_MILLION (default /work/benchdata/million), BENCH_SCRATCH, BENCH_RESULTS,
#      ARCPACK, ARCMOUNT, RUNS, RANDREAD_N (default 2000), COPY_DIR (default go1.25.4).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

peers_only=0 million=1 cache_size=512M
while [ $# -gt 0 ]; do
	case $1 in
	--peers-only) peers_only=1 ;;
	--runs) RUNS=$2; shift ;;
	--no-million) million=0 ;;
	--cache-size) cache_size=$2; shift ;;
	*) die "unknown argument $1 (usage: mount.sh [--peers-only] [--runs N] [--no-million] [--cache-size SIZE])" ;;
	esac
	shift
done
MILLION=${BENCH_MILLION:-/work/benchdata/million}
RANDREAD_N=${RANDREAD_N:-2000}
COPY_DIR=${COPY_DIR:-go1.25.4}
SKIPPED=()

[ "$(id -u)" = 0 ] || die "must run as root (drop_caches)"
[ $peers_only = 1 ] || need_arc "$ARCPACK" "$ARCMOUNT"
have fusermount3 || die "fusermount3 is needed"
fss=()
if have mksquashfs && have squashfuse_ll; then fss+=(squashfuse_ll); fi
[ $peers_only = 1 ] || fss+=(arcmount)
[ ${#fss[@]} -gt 0 ] || die "nothing to measure"

ensure_tree
[ -d "$MILLION" ] || [ $million = 0 ] || (cd "$REPO" && go run ./bench/manyfiles -o "$MILLION") >&2
data=$SCRATCH/mount
mkdir -p "$data" "$RESULTS"
work=$(mktemp -d "$SCRATCH/mountrun.XXXXXX")
MNT=$work/mnt
mkdir -p "$MNT"
cleanup() { unmount "$MNT"; rm -rf "$work"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

(cd "$REPO" && go build -o "$work/randread" ./bench/randread)

# images: built once and kept in $data (rebuilt when the tree or the binary is newer, or when
# $data/NAME.*.src, written once an image is complete, names another tree: BENCH_TREE changed, or
# an earlier build was cut short)
build_images() { # name src
	local name=$1 src=$2
	if [[ " ${fss[*]} " == *" squashfuse_ll "* ]] && { [ ! -f "$data/$name.sqfs" ] || [ "$src" -nt "$data/$name.sqfs" ] || [ "$(cat "$data/$name.sqfs.src" 2>/dev/null)" != "$src" ]; }; then
		note "building $data/$name.sqfs (mksquashfs -comp lz4)"
		rm -f "$data/$name.sqfs.src"
		mksquashfs "$src" "$data/$name.sqfs" -comp lz4 -noappend -no-progress -quiet >&2
		echo "$src" >"$data/$name.sqfs.src"
	fi
	if [[ " ${fss[*]} " == *" arcmount "* ]] && { [ ! -f "$data/$name.arc.001" ] || [ "$ARCPACK" -nt "$data/$name.arc.001" ] || [ "$src" -nt "$data/$name.arc.001" ] || [ "$(cat "$data/$name.arc.src" 2>/dev/null)" != "$src" ]; }; then
		note "building $data/$name.arc (arcpack create)"
		rm -f "$data/$name".arc.[0-9]* "$data/$name.arc.src"
		"$ARCPACK" create "$src" -o "$data/$name.arc" >&2
		echo "$src" >"$data/$name.arc.src"
	fi
}

do_mount() { # fs name → sets mount_s, pid
	local fs=$1 name=$2 t0
	stamp t0
	case $fs in
	squashfuse_ll) squashfuse_ll "$data/$name.sqfs" "$MNT" ;;
	arcmount) "$ARCMOUNT" "$data/$name.arc.001" "$MNT" --cache-size "$cache_size" >&2 ;;
	esac
	wait_listed "$MNT" 60 || die "$fs: $MNT not listed 60 s after mounting"
	stamp t1
	mount_s=$(echo "$t1 - $t0" | bc -l)
	pid=$(fuse_pid "$MNT") || die "$fs: cannot find the process serving $MNT"
}

cat_image() { # fs name: read the image into the page cache
	case $1 in
	squashfuse_ll) cat "$data/$2.sqfs" >/dev/null ;;
	arcmount) cat "$data/$2".arc.[0-9]* >/dev/null ;;
	esac
}

do_unmount() { # → updates hwm (KiB, max of the run)
	local h
	h=$(vmhwm "$pid"); h=${h:-0}
	((h > hwm)) && hwm=$h
	unmount "$MNT"
}

# secs CMD...: seconds CMD took; fails when CMD fails (set -e does not reach into $(...)).
secs() { local t0 t1; stamp t0; "$@" || return; stamp t1; echo "$t1 - $t0" | bc -l; }

input=$(content_bytes "$TREE")
largest=$(cd "$TREE" && find . -type f -printf '%s %P\n' | sort -n | tail -1)
largest_size=${largest%% *} largest_rel=${largest#* }
copy_bytes=$(content_bytes "$TREE/$COPY_DIR")

declare -A R # R[fs,metric,run]
build_images tree "$TREE"
# Run r of every filesystem, then run r+1: on a shared machine whose speed drifts over minutes,
# the drift then falls on both alike. The order turns round every run (turns), so that
# neither always goes first after the other's unmount.
turns() {
	if [ $(($1 % 2)) = 1 ]; then
		printf '%s\n' "${fss[@]}"
	else
		printf '%s\n' "${fss[@]}" | tac
	fi
}
for r in $(seq "$RUNS"); do
	for fs in $(turns "$r"); do
		hwm=0
		R[$fs,load,$r]=$(load1)
		drop_caches
		do_mount "$fs" tree; R[$fs,mount,$r]=$mount_s
		drop_caches
		stamp t0; n=$(tar -cf - -C "$MNT" . | wc -c); stamp t1; R[$fs,tar,$r]=$(echo "$t1 - $t0" | bc -l)
		R[$fs,tarbytes,$r]=$n
		dd if="$MNT/$largest_rel" of=/dev/null bs=1M status=none
		# dd's own clock: forking dd costs more than reading 20 MB from the page cache
		R[$fs,seq,$r]=$(LC_ALL=C dd if="$MNT/$largest_rel" of=/dev/null bs=1M 2>&1 | awk '/ copied, / {print $(NF-3)}')
		do_unmount

		# warm: the image (volumes) in the page cache, a fresh mount: what is
		# left is the filesystem's own cost (decoding, FUSE round trips)
		drop_caches
		cat_image "$fs" tree
		do_mount "$fs" tree
		stamp t0; tar -cf - -C "$MNT" . | wc -c >/dev/null; stamp t1; R[$fs,tarwarm,$r]=$(echo "$t1 - $t0" | bc -l)
		do_unmount

		do_mount "$fs" tree; R[$fs,mount2,$r]=$mount_s
		drop_caches
		rm -rf "$work/cp"
		R[$fs,cp,$r]=$(secs cp -a "$MNT/$COPY_DIR" "$work/cp")
		rm -rf "$work/cp"
		do_unmount

		do_mount "$fs" tree; R[$fs,mount3,$r]=$mount_s
		drop_caches
		out=$("$work/randread" -list "$TREE" -root "$MNT" -n "$RANDREAD_N")
		R[$fs,rc50,$r]=$(sed -E 's/.*p50=([0-9.]+)ms.*/\1/' <<<"$out")
		R[$fs,rc99,$r]=$(sed -E 's/.*p99=([0-9.]+)ms.*/\1/' <<<"$out")
		out=$("$work/randread" -list "$TREE" -root "$MNT" -n "$RANDREAD_N")
		R[$fs,rw50,$r]=$(sed -E 's/.*p50=([0-9.]+)ms.*/\1/' <<<"$out")
		R[$fs,rw99,$r]=$(sed -E 's/.*p99=([0-9.]+)ms.*/\1/' <<<"$out")
		do_unmount
		R[$fs,rss,$r]=$hwm
		note "$fs run $r (load ${R[$fs,load,$r]}): mount ${R[$fs,mount,$r]}s, tar cold ${R[$fs,tar,$r]}s (${R[$fs,tarbytes,$r]} bytes), tar warm image ${R[$fs,tarwarm,$r]}s, largest warm ${R[$fs,seq,$r]}s, cp -a ${R[$fs,cp,$r]}s, rand cold p50/p99 ${R[$fs,rc50,$r]}/${R[$fs,rc99,$r]}ms, warm ${R[$fs,rw50,$r]}/${R[$fs,rw99,$r]}ms, VmHWM ${hwm} KiB"
	done
done

# The bytes themselves: one more cold whole-tree tar through each filesystem (fresh mount, caches
# dropped, as for the timed tars), in name order so that it does not depend on the order a
# filesystem lists a directory in, must give the source tree's tar stream byte for byte
# (contents, names, modes, owners, mtimes to the second).
tar_sum() { tar --sort=name -cf - -C "$1" . | sha256sum | cut -d' ' -f1; }
src_sum=$(tar_sum "$TREE")
declare -A SAME=()
for fs in "${fss[@]}"; do
	drop_caches
	do_mount "$fs" tree
	drop_caches
	sum=$(tar_sum "$MNT")
	do_unmount
	if [ "$sum" = "$src_sum" ]; then SAME[$fs]=identical; else SAME[$fs]="**DIFFERENT** ($sum)"; fi
	note "$fs: the tree read back through the mount is ${SAME[$fs]} to the source (sha256 of \`tar --sort=name\` $src_sum)"
done

med() { # fs metric → median over runs
	local r
	for r in $(seq "$RUNS"); do echo "${R[$1,$2,$r]}"; done | median
}
allruns() { # fs metric scale
	local r out=()
	for r in $(seq "$RUNS"); do out+=("$(awk -v x="${R[$1,$2,$r]}" -v k="$3" 'BEGIN {printf "%.3g", x*k}')"); done
	(IFS=/; echo "${out[*]}")
}

if [ $million = 1 ]; then
	build_images million "$MILLION"
	for r in $(seq "$RUNS"); do
		for fs in $(turns "$r"); do
			hwm=0
			R[$fs,mload,$r]=$(load1)
			drop_caches
			do_mount "$fs" million; R[$fs,mmount,$r]=$mount_s
			R[$fs,mrss,$r]=$(vmhwm "$pid")
			do_unmount
			note "$fs million run $r (load ${R[$fs,mload,$r]}): mount-ready ${R[$fs,mmount,$r]}s, VmHWM ${R[$fs,mrss,$r]} KiB"
		done
	done
fi

stamp=$(date -u +%Y%m%d-%H%M%S)
res="$RESULTS/mount-$stamp.md"
{
	echo "## mount: $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo
	machine_info
	echo "- runs: $RUNS per filesystem, median shown (each run's value after it, a/b/c); cold = fresh mount after \`sync; echo 3 > /proc/sys/vm/drop_caches\`"
	echo "- images: $(for fs in "${fss[@]}"; do case $fs in squashfuse_ll) echo -n "tree.sqfs $(content_bytes "$data/tree.sqfs") bytes (mksquashfs -comp lz4); " ;; arcmount) echo -n "tree.arc $(content_bytes "$data"/tree.arc.[0-9]*) bytes (arcpack create, defaults), arcmount --cache-size $cache_size; " ;; esac; done)"
	echo "- largest file: $largest_rel ($largest_size bytes); cp -a of $COPY_DIR ($copy_bytes bytes); random reads: $RANDREAD_N × 4 KiB, open+pread+close each, seed 1"
	echo "- content: a cold \`tar --sort=name\` of the whole tree through each filesystem against the source's (sha256 of the tar stream): $(for fs in "${fss[@]}"; do echo -n "$fs ${SAME[$fs]}; "; done)"
	[ ${#SKIPPED[@]} -eq 0 ] || echo "- skipped: ${SKIPPED[*]}"
	[ $peers_only = 0 ] || echo "- arcmount: not run (--peers-only)"
	echo
	hdr="| metric |" sep="|---|"
	for fs in "${fss[@]}"; do hdr+=" $fs | $fs runs |"; sep+="---:|---|"; done
	[[ " ${fss[*]} " == *" squashfuse_ll "* && " ${fss[*]} " == *" arcmount "* ]] && { hdr+=" arcmount / squashfuse_ll |"; sep+="---:|"; }
	echo "$hdr"; echo "$sep"
	row() { # label metric scale fmt [invert-ratio]
		local label=$1 m=$2 scale=$3 fmt=$4 line v a s
		line="| $label |"
		for fs in "${fss[@]}"; do
			v=$(awk -v x="$(med "$fs" "$m")" -v k="$scale" "BEGIN {printf \"$fmt\", x*k}")
			line+=" $v | $(allruns "$fs" "$m" "$scale") |"
		done
		if [[ " ${fss[*]} " == *" squashfuse_ll "* && " ${fss[*]} " == *" arcmount "* ]]; then
			a=$(med arcmount "$m"); s=$(med squashfuse_ll "$m")
			line+=" $(ratio "$a" "$s") |"
		fi
		echo "$line"
	}
	# derived per-run figures
	for fs in "${fss[@]}"; do
		for r in $(seq "$RUNS"); do
			R[$fs,tarmbs,$r]=$(awk -v b="$input" -v s="${R[$fs,tar,$r]}" 'BEGIN {print b/1e6/s}')
			R[$fs,seqgbs,$r]=$(awk -v b="$largest_size" -v s="${R[$fs,seq,$r]}" 'BEGIN {print b/1e9/s}')
			R[$fs,allmount,$r]=${R[$fs,mount,$r]}
		done
	done
	row "time to mount (s)" mount 1 "%.3f"
	row "tar whole tree, cold (s)" tar 1 "%.2f"
	row "tar whole tree, cold (MB/s of file content)" tarmbs 1 "%.0f"
	row "tar whole tree, warm image, fresh mount (s)" tarwarm 1 "%.2f"
	row "cp -a $COPY_DIR, cold (s)" cp 1 "%.2f"
	row "largest file, warm (GB/s)" seqgbs 1 "%.2f"
	row "random 4 KiB, cold p50 (ms)" rc50 1 "%.3f"
	row "random 4 KiB, cold p99 (ms)" rc99 1 "%.3f"
	row "random 4 KiB, warm p50 (ms)" rw50 1 "%.3f"
	row "random 4 KiB, warm p99 (ms)" rw99 1 "%.3f"
	row "peak RSS, VmHWM (MiB)" rss 0.0009765625 "%.0f"
	row "load (1 min) at run start" load 1 "%.2f"
	# Every cold tar must have read the same bytes: the same tree through
	# either filesystem makes the same archive size. A tar that came back
	# short (or long) would be a fast time of something else.
	declare -A tb=()
	for fs in "${fss[@]}"; do
		for r in $(seq "$RUNS"); do tb[${R[$fs,tarbytes,$r]}]=1; done
	done
	if [ "${#tb[@]}" != 1 ]; then
		echo
		echo "**The cold tars read different byte counts: ${!tb[*]}; their times are not comparable.**"
		note "cold tars read different byte counts: ${!tb[*]}"
	fi
	if [ $million = 1 ]; then
		echo
		echo "1,000,000 small files ($MILLION; $(content_bytes "$data"/million.sqfs 2>/dev/null || echo -) bytes squashfs):"
		echo
		echo "$hdr"; echo "$sep"
		row "mount-ready (s)" mmount 1 "%.3f"
		row "RSS after mount-ready, VmHWM (MiB)" mrss 0.0009765625 "%.0f"
		row "load (1 min) at run start" mload 1 "%.2f"
	fi
	echo
	echo "Versions:"
	echo
	tool_versions arcmount squashfuse_ll mksquashfs tar
} | tee "$res"
note "results written to $res"
for fs in "${fss[@]}"; do
	[ "${SAME[$fs]}" = identical ] || die "$fs: the tree read back differs from the source"
done
