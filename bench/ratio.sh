#!/usr/bin/env bash
# ratio.sh — issue 5's size benchmark: arcpack at its levels (and the zstd codec at its top level)
# next to `mksquashfs -comp lz4`, `mksquashfs -comp zstd`, `tar | zstd -3 -T2 --long=31`,
# `borg create` (lz4) and `restic backup`, on the Go toolchains tree, in the same run.
# The tree is read once first (page cache); each tool runs RUNS times (default 3), medians shown.
# Set-up that is not the backup itself (borg init, restic init) is not timed; caches of borg and
# restic live in the scratch folder and are not counted in their size.
#
# Usage: bench/ratio.sh [--peers-only] [--runs N] [--levels "fast default high max"] [--no-zstd-codec]
# Env: BENCH_TREE, BENCH_SCRATCH, BENCH_RESULTS, ARCPACK, RUNS.
# Not yet here: issue 5's generated case (a 1 GiB tree and three later snapshots with 1% of files
# edited), reporting size added per snapshot versus borg and restic.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

peers_only=0 levels="fast default high max" zstd_codec=1
while [ $# -gt 0 ]; do
	case $1 in
	--peers-only) peers_only=1 ;;
	--runs) RUNS=$2; shift ;;
	--levels) levels=$2; shift ;;
	--no-zstd-codec) zstd_codec=0 ;;
	*) die "unknown argument $1 (usage: ratio.sh [--peers-only] [--runs N] [--levels LIST] [--no-zstd-codec])" ;;
	esac
	shift
done
SKIPPED=()
[ $peers_only = 1 ] || need_arc "$ARCPACK"
tools_setup ratio

tools=()
declare -A cmd_of prep_of random_access
add() { # name random-access command [prep]
	tools+=("$1"); random_access[$1]=$2; cmd_of[$1]=$3; prep_of[$1]=${4:-}
}
if [ $peers_only = 0 ]; then
	for l in $levels; do
		add "arcpack --level $l" yes "$ARCPACK create $TREE -o \$OUT/arc --level $l"
	done
	[ $zstd_codec = 0 ] || add "arcpack --codec zstd --level max" yes "$ARCPACK create $TREE -o \$OUT/arc --codec zstd --level max"
fi
if have mksquashfs; then
	add "mksquashfs lz4" yes "mksquashfs $TREE \$OUT/tree.sqfs -comp lz4 -noappend -no-progress -quiet"
	add "mksquashfs zstd" yes "mksquashfs $TREE \$OUT/tree.sqfs -comp zstd -noappend -no-progress -quiet"
fi
if have tar && have zstd; then
	add "tar | zstd -3 -T2 --long=31" no "tar -cf - -C $TREE . | zstd -3 -T2 --long=31 -q > \$OUT/tree.tar.zst"
fi
if have borg; then
	# borg keeps its cache and keys under BORG_BASE_DIR: put them in .nocount.
	b="BORG_BASE_DIR=\$OUT/.nocount BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=yes BORG_RELOCATED_REPO_ACCESS_IS_OK=yes"
	add "borg create (lz4)" yes "cd $TREE && $b borg create --compression lz4 \$OUT/borg::snap ." \
		"mkdir -p \$OUT/.nocount && $b borg init --encryption=none \$OUT/borg"
fi
if have restic; then
	r="RESTIC_PASSWORD=bench restic --no-cache -q -r \$OUT/restic"
	add "restic backup" yes "cd $TREE && $r backup ." "$r init"
fi

declare -A wall size rss loads allwalls
run_tools "$work"

tools_report ratio "Borg/restic init is not timed and their caches are not counted (restic runs with --no-cache). Random access to one file without reading the rest: $(for t in "${tools[@]}"; do [ "${random_access[$t]}" = yes ] || echo -n "not with ${t//|/\\|}; "; done)yes with every other tool here." arcpack mksquashfs tar zstd borg restic
