#!/usr/bin/env bash
# gotree.sh — prepare the benchmark tree of issue 2: four Go toolchains, real data nobody here wrote,
# fetched by the ordinary Go client, copied into one folder. Also writes a "distinct files" copy
# (one file per distinct content, at the path of its first occurrence in sorted order) for codec benches.
#
# Env: BENCH_TREE (default /work/benchdata/gotree), BENCH_DISTINCT (default /work/benchdata/distinct).
# Expected: ~870 MB, 43,634 files, 12,953 distinct. Prints the figures; exits 1 if they differ.
set -euo pipefail

TREE=${BENCH_TREE:-/work/benchdata/gotree}
DISTINCT=${BENCH_DISTINCT:-/work/benchdata/distinct}
VERSIONS=(go1.24.0 go1.24.6 go1.25.0 go1.25.4)
WANT_FILES=43634
WANT_DISTINCT=12953

command -v go >/dev/null || { echo "gotree: go not found in PATH" >&2; exit 1; }
MODCACHE=$(go env GOMODCACHE)
arch=$(go env GOHOSTARCH)
[ "$arch" = amd64 ] || echo "gotree: note: host arch $arch; the reference figures are for linux-amd64" >&2

# The markers sit beside the folders, not in them, so that the tree holds exactly the toolchains.
complete_marker="$TREE.complete"
if [ -f "$complete_marker" ]; then
	echo "gotree: $TREE already complete (remove $complete_marker to rebuild)"
else
	for v in "${VERSIONS[@]}"; do
		src="$MODCACHE/golang.org/toolchain@v0.0.1-$v.linux-$arch"
		if [ ! -f "$src/VERSION" ]; then
			echo "gotree: fetching $v with the Go client (GOTOOLCHAIN=$v go version)"
			# Run outside any module so a go.mod's toolchain line cannot interfere.
			(cd / && GOTOOLCHAIN=$v go version)
		fi
		[ -f "$src/VERSION" ] || { echo "gotree: $src missing after download" >&2; exit 1; }
	done
	rm -rf "$TREE.tmp"
	mkdir -p "$TREE.tmp"
	for v in "${VERSIONS[@]}"; do
		cp -a "$MODCACHE/golang.org/toolchain@v0.0.1-$v.linux-$arch" "$TREE.tmp/$v"
	done
	# The module cache is read-only; make the copy ours so it can be deleted and re-packed freely.
	chmod -R u+w "$TREE.tmp"
	rm -rf "$TREE"
	mv "$TREE.tmp" "$TREE"
	touch "$complete_marker"
fi

# Verify: bytes, files, distinct contents (sha256; a 64-bit hash is not proof of equality).
manifest=$(mktemp)
trap 'rm -f "$manifest"' EXIT
(cd "$TREE" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum) >"$manifest"
files=$(wc -l <"$manifest")
bytes=$(cd "$TREE" && find . -type f -printf '%s\n' | awk '{s+=$1} END {printf "%d", s}')
distinct=$(awk '{print $1}' "$manifest" | sort -u | wc -l)
printf 'gotree: %s: %d bytes of file content (%.1f MB; du -sb %s), %d files, %d distinct\n' "$TREE" "$bytes" "$(echo "$bytes/1000000" | bc -l)" "$(du -sb "$TREE" | cut -f1)" "$files" "$distinct"
ok=1
[ "$files" -eq "$WANT_FILES" ] || { echo "gotree: expected $WANT_FILES files" >&2; ok=0; }
[ "$distinct" -eq "$WANT_DISTINCT" ] || { echo "gotree: expected $WANT_DISTINCT distinct" >&2; ok=0; }
[ $ok = 1 ] || exit 1

# Distinct extraction: first occurrence (sorted path order) of each content, same relative path.
dmarker="$DISTINCT.complete"
if [ -f "$dmarker" ]; then
	echo "gotree: $DISTINCT already complete"
else
	rm -rf "$DISTINCT.tmp"
	mkdir -p "$DISTINCT.tmp"
	awk '!seen[$1]++ { sub(/^[0-9a-f]+  /, ""); print }' "$manifest" |
		(cd "$TREE" && tr '\n' '\0' | xargs -0 cp --parents -p -t "$DISTINCT.tmp")
	rm -rf "$DISTINCT"
	mv "$DISTINCT.tmp" "$DISTINCT"
	touch "$dmarker"
fi
dfiles=$(find "$DISTINCT" -type f | wc -l)
dbytes=$(find "$DISTINCT" -type f -printf '%s\n' | awk '{s+=$1} END {printf "%d", s}')
printf 'gotree: %s: %d bytes (%.1f MB), %d files (one per distinct content)\n' "$DISTINCT" "$dbytes" "$(echo "$dbytes/1000000" | bc -l)" "$dfiles"
[ "$dfiles" -eq "$WANT_DISTINCT" ] || { echo "gotree: distinct copy has $dfiles files, expected $WANT_DISTINCT" >&2; exit 1; }
