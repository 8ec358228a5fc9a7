#!/usr/bin/env bash
# faults.sh — the long fault-injection run (issue 7): TRIALS seeded random
# faults (plus the fixed set CI runs) on a generated multi-volume archive —
# a volume deleted, truncated or with bytes flipped — checked by verify,
# extract and the mount against damage computed from the pristine layout;
# then the same faults on an archive with --recovery 10%, repaired and
# compared byte for byte with the pristine volumes.
#
#   bench/faults.sh                       # 200 trials, seed 1
#   TRIALS=400 SEED=7 MOUNTS=50 bench/faults.sh
#
# MOUNTS: random trials that also read every file through arcmount
# (default: all; 0 = none). CODEC: the archive's --codec (default:
# create's). Prints one summary and writes it, with the failures, to
# bench/results/faults-DATE.md (RESULTS=dir to change).
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
TRIALS=${TRIALS:-200}
SEED=${SEED:-1}
MOUNTS=${MOUNTS:--1}
CODEC=${CODEC:-}
RESULTS=${RESULTS:-$REPO/bench/results}
[ "$TRIALS" -ge 1 ] || { echo "faults: TRIALS must be at least 1" >&2; exit 2; }
mkdir -p "$RESULTS"
out=$RESULTS/faults-$(date -u +%Y%m%d-%H%M%S).md
log=$(mktemp)
trap 'rm -f "$log"' EXIT

start=$(date +%s)
status=0
ARC_FAULT_TRIALS=$TRIALS ARC_FAULT_SEED=$SEED ARC_FAULT_MOUNTS=$MOUNTS ARC_FAULT_CODEC=$CODEC \
	go test -count=1 -timeout 3h -v -run '^(TestFaultInjection|TestFaultRepair)$' ./integration/ >"$log" 2>&1 || status=$?
secs=$(($(date +%s) - start))

faults=$(grep -o 'FAULTS trials=.*' "$log" | tail -1 || true)
repair=$(grep -o 'REPAIR trials=.*' "$log" | tail -1 || true)
failed=$(grep -cE -- '^ {8}--- FAIL' "$log" || true) # trials are TestX/trials/NNN
field() { echo "$1" | grep -o "$2=[0-9]*" | cut -d= -f2; }
trials=$(field "$faults" trials)
detected=$(field "$faults" detected)
local_ok=$(field "$faults" local_ok)
mounted=$(field "$faults" mounted)
lost_archives=$(field "$faults" archives_lost)
rtrials=$(field "$repair" trials)
repaired=$(field "$repair" repaired)
lost=$(field "$repair" lost_bytes)
summary="trials ${trials:-?}, detected ${detected:-?}, unaffected files intact in ${local_ok:-?} (of $(( ${trials:-0} - ${lost_archives:-0} )) with a readable index; ${mounted:-?} also through the mount), repaired ${repaired:-?} of ${rtrials:-?}, lost bytes after repair ${lost:-?}; failed subtests ${failed}; ${secs}s"
{
	echo "# Fault injection, $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo
	echo "Commit $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . 2>/dev/null || echo ' (working tree changed)'), seed $SEED, $TRIALS random trials + the fixed set, load $(cut -d' ' -f1 /proc/loadavg)."
	echo "Command: \`TRIALS=$TRIALS SEED=$SEED MOUNTS=$MOUNTS${CODEC:+ CODEC=$CODEC} bench/faults.sh\`"
	echo
	echo "**$summary**"
	echo
	echo '```'
	echo "$faults"
	echo "$repair"
	grep -E -- '^\s+--- FAIL|^\s+faults_test.go' "$log" | grep -v 'mounted in' | head -200 || true
	echo '```'
} >"$out"
echo "faults: $summary"
echo "faults: written to $out"
if [ "$status" -ne 0 ]; then
	tail -40 "$log" >&2
	exit "$status"
fi
