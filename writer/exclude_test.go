package writer

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"arc/format"
	"arc/internal/exclude"
)

func excludeList(t *testing.T, patterns ...string) *exclude.List {
	t.Helper()
	l := &exclude.List{}
	for _, p := range patterns {
		if err := l.Add(p); err != nil {
			t.Fatal(err)
		}
	}
	return l
}

// paths lists an archive's entries, sorted (the root is not one).
func (a *archive) paths() []string {
	var out []string
	for p := range a.inode {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

func TestExcludedPathsAreLeftOutAndTheirDirectoriesNeverRead(t *testing.T) {
	src := t.TempDir()
	writeTree(t, src, map[string][]byte{
		"main.go":                     []byte("package main"),
		"main.o":                      []byte("obj"),
		"build/out":                   []byte("built"),
		"src/build/keep":              []byte("not the root's build"),
		"web/node_modules/x/index.js": []byte("js"),
		"logs/a.log":                  []byte("a"),
		"logs/old/b.log":              []byte("b"),
		"tmp":                         []byte("a file called tmp"),
		"d/tmp/scratch":               []byte("a directory called tmp"),
	})
	opt := small()
	opt.Exclude = excludeList(t, "*.o", "node_modules", "/build", "logs/**", "!logs/a.log", "tmp/")
	var mu sync.Mutex
	var read []string
	opt.dirHook = func(p string) {
		mu.Lock()
		read = append(read, p)
		mu.Unlock()
	}
	res, err := Create(context.Background(), filepath.Join(t.TempDir(), "x"), []string{src}, opt)
	if err != nil {
		t.Fatal(err)
	}
	got := readBack(t, res.Volumes, 0).paths()
	want := []string{"d", "logs", "logs/a.log", "main.go", "src", "src/build", "src/build/keep", "tmp", "web"}
	if !slices.Equal(got, want) {
		t.Errorf("archived %q, want %q", got, want)
	}
	// main.o, build, node_modules, logs/old, d/tmp: each counted once,
	// nothing below a directory left out.
	if res.Excluded != 5 {
		t.Errorf("Excluded = %d, want 5", res.Excluded)
	}
	// The archive says what was left out, and by which patterns.
	x := readBack(t, res.Volumes, 0).idx
	if got, want := param(x, "exclude"), "*.o\nnode_modules\n/build\nlogs/**\n!logs/a.log\ntmp/"; got != want {
		t.Errorf("param exclude = %q, want %q", got, want)
	}
	if got := stat(x, "excluded"); got != 5 {
		t.Errorf("stat excluded = %d, want 5", got)
	}
	if got := param(x, "exclude-caches"); got != "" {
		t.Errorf("param exclude-caches = %q without --exclude-caches", got)
	}
	if res.Skipped != 0 {
		t.Errorf("Skipped = %d, want 0", res.Skipped)
	}
	for _, p := range read {
		rel, _ := filepath.Rel(src, p)
		for _, never := range []string{"build", "web/node_modules", "logs/old", "d/tmp"} {
			if rel == never || strings.HasPrefix(rel, never+"/") {
				t.Errorf("the scan read %s, which is excluded", rel)
			}
		}
	}
}

func TestAnExcludedSourceIsLeftOutByItsName(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string][]byte{"keep/a": []byte("1"), "app.log": []byte("2"), "cache/b": []byte("3")})
	opt := small()
	opt.Exclude = excludeList(t, "*.log", "/cache")
	sources := []string{filepath.Join(dir, "keep"), filepath.Join(dir, "app.log"), filepath.Join(dir, "cache")}
	res, err := Create(context.Background(), filepath.Join(t.TempDir(), "x"), sources, opt)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := readBack(t, res.Volumes, 0).paths(), []string{"keep", "keep/a"}; !slices.Equal(got, want) {
		t.Errorf("archived %q, want %q", got, want)
	}
	if res.Excluded != 2 {
		t.Errorf("Excluded = %d, want 2", res.Excluded)
	}
}

func TestOnlyATrueCacheTagLeavesOutItsDirectory(t *testing.T) {
	src := t.TempDir()
	sig := []byte(cacheSignature + "\n# This file is a cache directory tag.\n")
	writeTree(t, src, map[string][]byte{
		"cache/CACHEDIR.TAG":       sig,
		"cache/blob":               []byte("cached"),
		"cache/sub/deep":           []byte("cached too"),
		"unsigned/CACHEDIR.TAG":    []byte("Signature: not the one"),
		"unsigned/blob":            []byte("kept"),
		"short/CACHEDIR.TAG":       sig[:20],
		"short/blob":               []byte("kept"),
		"elsewhere/real.tag":       sig,
		"linked/blob":              []byte("kept: the tag is a symlink"),
		"notadir/CACHEDIR.TAG/x":   []byte("a directory of that name"),
		"notadir/blob":             []byte("kept"),
		"lower/cachedir.tag":       sig,
		"lower/blob":               []byte("kept: the name is CACHEDIR.TAG"),
		"cache2/CACHEDIR.TAG":      sig,
		"cache2/CACHEDIR.TAG.orig": []byte("cached"),
	})
	if err := os.Symlink("../elsewhere/real.tag", filepath.Join(src, "linked/CACHEDIR.TAG")); err != nil {
		t.Fatal(err)
	}
	opt := small()
	opt.ExcludeCaches = true
	res, err := Create(context.Background(), filepath.Join(t.TempDir(), "x"), []string{src}, opt)
	if err != nil {
		t.Fatal(err)
	}
	a := readBack(t, res.Volumes, 0)
	want := []string{"cache", "cache/CACHEDIR.TAG", "cache2", "cache2/CACHEDIR.TAG",
		"elsewhere", "elsewhere/real.tag",
		"linked", "linked/CACHEDIR.TAG", "linked/blob",
		"lower", "lower/blob", "lower/cachedir.tag",
		"notadir", "notadir/CACHEDIR.TAG", "notadir/CACHEDIR.TAG/x", "notadir/blob",
		"short", "short/CACHEDIR.TAG", "short/blob",
		"unsigned", "unsigned/CACHEDIR.TAG", "unsigned/blob"}
	if got := a.paths(); !slices.Equal(got, want) {
		t.Errorf("archived %q,\nwant %q", got, want)
	}
	if !bytes.Equal(a.content["cache/CACHEDIR.TAG"], sig) {
		t.Error("the tag's content was not kept")
	}
	if res.Excluded != 3 { // cache/blob, cache/sub, cache2/CACHEDIR.TAG.orig
		t.Errorf("Excluded = %d, want 3", res.Excluded)
	}
	if got := param(a.idx, "exclude-caches"); got != "on" {
		t.Errorf("param exclude-caches = %q, want on", got)
	}
	if got := param(a.idx, "exclude"); got != "" {
		t.Errorf("param exclude = %q without patterns", got)
	}
}

func TestTarMembersAreExcludedWithWhatLiesBelowThem(t *testing.T) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	add := func(name string, typ byte, body string, link string) {
		h := &tar.Header{Name: name, Typeflag: typ, Mode: 0o644, Size: int64(len(body)), Linkname: link}
		if typ == tar.TypeDir {
			h.Mode = 0o755
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	add("./", tar.TypeDir, "", "")
	add("./main.go", tar.TypeReg, "package main", "")
	add("./main.o", tar.TypeReg, "obj", "")
	add("./build/", tar.TypeDir, "", "")
	add("./build/out", tar.TypeReg, "built", "")
	add("./build/", tar.TypeDir, "", "")
	add("./src/build/keep", tar.TypeReg, "kept", "")   // src/build never named: implied
	add("./a/tmp/scratch", tar.TypeReg, "scratch", "") // a/tmp implied, and a directory
	add("./tmp", tar.TypeReg, "a file called tmp", "")
	add("./logs/a.log", tar.TypeReg, "a", "")
	add("./logs/old/b.log", tar.TypeReg, "b", "")
	add("./link-to-obj", tar.TypeLink, "", "./main.o")
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	opt := small()
	opt.Exclude = excludeList(t, "*.o", "/build", "tmp/", "logs/**", "!logs/a.log")
	var warnings []error
	opt.Warn = func(err error) { warnings = append(warnings, err) }
	res, err := CreateFromTar(context.Background(), filepath.Join(t.TempDir(), "x"), &buf, opt)
	if err != nil {
		t.Fatal(err)
	}
	a := readBack(t, res.Volumes, 0)
	want := []string{"logs", "logs/a.log", "main.go", "src", "src/build", "src/build/keep", "tmp"}
	if got := a.paths(); !slices.Equal(got, want) {
		t.Errorf("archived %q, want %q", got, want)
	}
	// Counted as a scan counts, once a path: main.o, build (named twice),
	// and the implied a/tmp and logs/old; not build/out, a/tmp/scratch or
	// logs/old/b.log, which go with a directory above them. a, named by no
	// member, is never made.
	if res.Excluded != 4 {
		t.Errorf("Excluded = %d, want 4", res.Excluded)
	}
	// The hardlink's data went with main.o: it is skipped, and says why.
	if res.Skipped != 1 || len(warnings) != 1 || !strings.Contains(warnings[0].Error(), "link-to-obj: hardlink to main.o, which --exclude left out") {
		t.Errorf("Skipped = %d, warnings %v; want the hardlink to main.o skipped with a warning", res.Skipped, warnings)
	}
}

func TestCacheTagsCannotBeLookedForInATarStream(t *testing.T) {
	opt := small()
	opt.ExcludeCaches = true
	_, err := CreateFromTar(context.Background(), filepath.Join(t.TempDir(), "x"), strings.NewReader(""), opt)
	if err == nil || !strings.Contains(err.Error(), "--exclude-caches") {
		t.Fatalf("got %v, want a refusal naming --exclude-caches", err)
	}
	if errors.Is(err, context.Canceled) {
		t.Fatal("refused for the wrong reason")
	}
}

// param is the value of the archive's parameter key ("" when absent).
func param(x *format.Index, key string) string {
	for _, kv := range x.Params {
		if kv.Key == key {
			return kv.Value
		}
	}
	return ""
}

// stat is the value of the archive's counter key (0 when absent).
func stat(x *format.Index, key string) uint64 {
	for _, st := range x.Stats {
		if st.Key == key {
			return st.Value
		}
	}
	return 0
}

func TestATagNameLeavesOutTheRestOfItsDirectory(t *testing.T) {
	src := t.TempDir()
	writeTree(t, src, map[string][]byte{
		"vm/.nobackup":     nil,
		"vm/disk.img":      []byte("big"),
		"vm/sub/more":      []byte("more"),
		"both/.nobackup":   nil,
		"both/.skip-me":    []byte("x"),
		"both/data":        []byte("left out"),
		"keep/nobackup":    []byte("not the name"),
		"keep/data":        []byte("kept"),
		"deep/a/.skip-me":  nil,
		"deep/a/b/c":       []byte("left out"),
		"deep/.nobackupXX": []byte("not the name"),
	})
	opt := small()
	opt.ExcludeIfPresent = []string{".nobackup", ".skip-me"}
	res, err := Create(context.Background(), filepath.Join(t.TempDir(), "x"), []string{src}, opt)
	if err != nil {
		t.Fatal(err)
	}
	a := readBack(t, res.Volumes, 0)
	want := []string{"both", "both/.nobackup", "both/.skip-me",
		"deep", "deep/.nobackupXX", "deep/a", "deep/a/.skip-me",
		"keep", "keep/data", "keep/nobackup",
		"vm", "vm/.nobackup"}
	if got := a.paths(); !slices.Equal(got, want) {
		t.Errorf("archived %q,\nwant %q", got, want)
	}
	if res.Excluded != 4 { // vm/disk.img, vm/sub, both/data, deep/a/b
		t.Errorf("Excluded = %d, want 4", res.Excluded)
	}
	if got := param(a.idx, "exclude-if-present"); got != ".nobackup\n.skip-me" {
		t.Errorf("param exclude-if-present = %q", got)
	}
}
