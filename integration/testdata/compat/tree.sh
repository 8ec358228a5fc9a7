#!/usr/bin/env bash
# tree.sh DIR: make the tree the frozen archives are made of (add.sh): the
# test tree of package testtree at a fixed seed, plus near-copies of one
# file that whole-file and chunk dedup miss and segments find. Run from the
# repository root, as root (owners and device nodes).
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: $0 DIR" >&2; exit 2; }
src=$1
go run ./internal/testtree/gentree -seed 7 -files 12 -max-file-size 8192 -dup-size 32768 "$src"
mkdir "$src/near"
orig=$src/dups/copy-0.bin
times=$(mktemp)
touch -r "$orig" "$times" # reading it below moves its atime: put it back
{ printf 'a near copy: '; head -c 10000 "$orig"; printf X; tail -c +10002 "$orig"; } >"$src/near/edited.bin"
{ tail -c +20001 "$orig"; head -c 20000 "$orig"; } >"$src/near/rotated.bin"
touch -a -r "$times" "$orig"
rm -f "$times"
touch -d '2001-02-03 04:05:06.789012345' "$src/near/edited.bin" "$src/near/rotated.bin" "$src/near" "$src"
