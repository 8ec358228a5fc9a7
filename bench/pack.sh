#!/usr/bin/env bash
# pack.sh — issue 2's pack benchmark: arcpack next to `mksquashfs -comp lz4` and `tar | lz4 -1`
# on the Go toolchains tree, in the same run. The tree is read once first, so every tool reads it
# from the page cache; each tool runs RUNS times (default 3) and the table shows medians.
#
# Usage: bench/pack.sh [--peers-only] [--runs N] [-- ARCPACK_CREATE_FLAGS...]
# Env: BENCH_TREE, BENCH_SCRATCH (outputs, deleted after each run), BENCH_RESULTS, ARCPACK, RUNS.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

peers_only=0
arc_flags=()
while [ $# -gt 0 ]; do
	case $1 in
	--peers-only) peers_only=1 ;;
	--runs) RUNS=$2; shift ;;
	--) shift; arc_flags=("$@"); break ;;
	*) die "unknown argument $1 (usage: pack.sh [--peers-only] [--runs N] [-- ARCPACK_FLAGS...])" ;;
	esac
	shift
done
SKIPPED=()
[ $peers_only = 1 ] || need_arc "$ARCPACK"
tools_setup pack

tools=()
declare -A cmd_of
if [ $peers_only = 0 ]; then
	tools+=(arcpack)
	cmd_of[arcpack]="$ARCPACK create $TREE -o \$OUT/arc ${arc_flags[*]:-}"
fi
if have mksquashfs; then
	tools+=("mksquashfs lz4")
	cmd_of["mksquashfs lz4"]="mksquashfs $TREE \$OUT/tree.sqfs -comp lz4 -noappend -no-progress -quiet"
fi
if have tar && have lz4; then
	tools+=("tar | lz4 -1")
	cmd_of["tar | lz4 -1"]="tar -cf - -C $TREE . | lz4 -1 -q > \$OUT/tree.tar.lz4"
fi

declare -A wall size rss loads allwalls prep_of
run_tools "$work"

tools_report pack "" arcpack mksquashfs tar lz4
