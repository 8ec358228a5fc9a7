#!/usr/bin/env bash
# add.sh NAME [ARCPACK-CREATE-OPTIONS...]: freeze a new archive for
# integration's TestArchivesMadeByEarlierReleasesReadBack. It makes the
# tree (tree.sh), records it in NAME/tree.txt, packs it with bin/arcpack into NAME/arc.001, ... and
# writes what made it to NAME/made.txt. Run from the repository root, as root
# (owners and device nodes), after `make build`.
#
# The archives under this folder are never made again: they are what an
# earlier arcpack wrote, and the test holds every later release to reading
# them. A change of format gets a new NAME, beside the old ones.
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 NAME [ARCPACK-CREATE-OPTIONS...]" >&2; exit 2; }
name=$1; shift
here=integration/testdata/compat
dir=$here/$name
[ -e "$dir" ] && { echo "$dir exists: frozen archives are never made again; pick a new name" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "run as root: the tree has foreign owners and device nodes" >&2; exit 1; }
[ -x bin/arcpack ] || { echo "bin/arcpack missing: make build" >&2; exit 1; }
tmp=$(mktemp -d)
done=
trap 'rm -rf "$tmp"; [ -n "$done" ] || rm -rf "$dir"' EXIT
src=$tmp/src
"$here/tree.sh" "$src"
mkdir "$dir"
go run ./internal/testtree/gentree -record "$dir/tree.txt" "$src"
bin/arcpack create "$src" -o "$dir/arc" --progress never "$@"
{
	bin/arcpack --version
	printf 'arcpack create SRC -o arc --progress never'
	printf ' %q' "$@"
	echo
} >"$dir/made.txt"
done=1
ls -l "$dir"
