#!/usr/bin/env bash
# fuzzbin.sh — every fuzz target at once from prebuilt, coverage-instrumented
# test binaries: for a machine with many cores and no Go (the device machine).
# bench/fuzz.sh is the same work, one target after another, through `go test`.
#
# Build here (the binaries are static):
#   mkdir -p .dev/fuzzbin && for p in format codec recovery; do
#     go test -c -gcflags=arc/...=-d=libfuzzer -o .dev/fuzzbin/$p.test ./$p; done
#   cp bench/fuzzbin.sh .dev/fuzzbin/run.sh
# Run there, from the repository root: FT=295s bash .dev/fuzzbin/run.sh
# (2 workers per target; the corpus grows in .dev/fuzzcache/PKG/TARGET and
# a second run goes on from it; logs, corpus and any failing input written to
# PKG/testdata are packed into $OUT/fuzz.tar). Each new input is minimized
# for 1 s, not Go's 60 (bench/fuzz.sh says why).
ROOT=$PWD; FT=${FT:-295s}; L=$ROOT/.dev/fuzzlogs; rm -rf "$L"; mkdir -p "$L"
mkdir -p .dev/fuzzcache
nproc; date -u; touch "$L/.start"
run() {
	local pkg=$1 t=$2
	( cd "$pkg" && "$ROOT/.dev/fuzzbin/$pkg.test" -test.run=XXX -test.fuzz="^$t\$" -test.fuzztime="$FT" -test.fuzzminimizetime=1s \
		-test.fuzzcachedir="$ROOT/.dev/fuzzcache/$pkg" -test.parallel=2 >"$L/$t.log" 2>&1; echo "rc=$?" >>"$L/$t.log" ) &
}
# Every fuzz target each binary has, as it lists them: a list kept here
# went stale once (FuzzHashChain was left out).
pkgs=()
for bin in .dev/fuzzbin/*.test; do
	pkg=$(basename "$bin" .test); pkgs+=("$pkg")
	for t in $("$bin" -test.list '^Fuzz'); do run "$pkg" "$t"; done
done
wait
date -u
for f in "$L"/*.log; do echo "== $(basename "$f" .log)"; grep -E 'elapsed' "$f" | tail -1; tail -1 "$f"; grep -E 'FAIL|panic|failing input' "$f" | head -3; done
find "${pkgs[@]}" -path '*/testdata/*' -type f -newer "$L/.start" >"$L/new-testdata.txt"
cat "$L/new-testdata.txt"
tar -cf "$OUT/fuzz.tar" .dev/fuzzcache .dev/fuzzlogs $(cat "$L/new-testdata.txt")
du -sh .dev/fuzzcache "$OUT/fuzz.tar"; ls .dev/fuzzcache/*
