package format

import (
	"bytes"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata: the example hex dumps and the fuzz seed corpus")

// checkGolden compares got with testdata file name, or rewrites the file
// under -update.
func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./format -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s is stale: the encoding changed (if on purpose, run go test ./format -update and update docs/FORMAT.md)\ngot:\n%s", path, got)
	}
}

// The worked example of docs/FORMAT.md is this output; a change to the
// encoding makes this test fail until the document is brought along.
func TestExampleEncodingsMatchTheSpecification(t *testing.T) {
	checkGolden(t, "example-volume-header.hex", []byte(hex.Dump(mustMarshal(t, testHeader()))))
	checkGolden(t, "example-footer.hex", []byte(hex.Dump(mustMarshal(t, testFooter()))))
	checkGolden(t, "example-index-minimal.hex", []byte(hex.Dump(EncodeIndex(minimalIndex()))))
}

// minimalIndex is the smallest valid index: an empty root directory.
func minimalIndex() *Index {
	return &Index{
		Inodes:  Inodes{Mode: []uint32{ModeDir | 0o755}, UID: []uint32{0}, GID: []uint32{0}, Mtime: []int64{0}, Atime: []int64{0}, Size: []uint64{0}, Rdev: []uint64{0}, DataStart: []uint64{0}, DataCount: []uint32{0}, XattrStart: []uint32{0}, XattrCount: []uint32{0}},
		Dirents: Dirents{Inode: []uint32{0}, NameStart: []uint64{0}, NameLen: []uint16{0}},
	}
}

// docs/FORMAT.md shows the example dumps verbatim.
func TestFormatDocShowsTheExamples(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "docs", "FORMAT.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"example-volume-header.hex", "example-footer.hex", "example-index-minimal.hex"} {
		dump, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(doc, dump) {
			t.Errorf("docs/FORMAT.md does not show testdata/%s", name)
		}
	}
}

// fuzzSeeds are the inputs each fuzz target starts from, in the corpus
// file encoding: valid encodings and every rejection the unit tests know.
// The header and footer targets take a second argument, reseal (see
// FuzzParseVolumeHeader).
func fuzzSeeds(t testing.TB) map[string]map[string]string {
	corpus := func(b []byte, reseal ...bool) string {
		s := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", b)
		for _, r := range reseal {
			s += fmt.Sprintf("bool(%v)\n", r)
		}
		return s
	}
	seeds := map[string]map[string]string{
		"FuzzParseVolumeHeader": {
			"valid":          corpus(mustMarshal(t, testHeader()), false),
			"valid-single":   corpus(mustMarshal(t, VolumeHeader{Version: Version, Number: 1, ID: testID}), false),
			"valid-resealed": corpus(mustMarshal(t, testHeader()), true),
		},
		"FuzzParseFooter": {
			"valid":            corpus(mustMarshal(t, testFooter()), false),
			"valid-after-data": corpus(append(bytes.Repeat([]byte{0xa5}, 37), mustMarshal(t, testFooter())...), false),
			"valid-resealed":   corpus(mustMarshal(t, testFooter()), true),
		},
		"FuzzDecodeIndex": {
			"valid-sample":  corpus(EncodeIndex(sampleIndex())),
			"valid-minimal": corpus(EncodeIndex(minimalIndex())),
		},
	}
	add := func(target string, cases []byteCase, reseal ...bool) {
		for _, c := range cases {
			seeds[target]["bad-"+c.name] = corpus(c.b, reseal...)
		}
	}
	add("FuzzParseVolumeHeader", badVolumeHeaders(t), false)
	add("FuzzParseFooter", badFooters(t), false)
	add("FuzzDecodeIndex", badIndexEncodings(t))
	for _, c := range indexCorruptions() {
		x := sampleIndex()
		c.mutate(x)
		seeds["FuzzDecodeIndex"]["corrupt-"+c.name] = corpus(EncodeIndex(x))
	}
	return seeds
}

var unsafeName = regexp.MustCompile(`[^a-zA-Z0-9.-]+`)

// TestSeedCorpusIsCurrent keeps testdata/fuzz/<FuzzName>/ equal to
// fuzzSeeds, so that plain go test runs every seed through the fuzz
// properties, and a format change shows up as stale seeds.
func TestSeedCorpusIsCurrent(t *testing.T) {
	for target, seeds := range fuzzSeeds(t) {
		names := make([]string, 0, len(seeds))
		for name := range seeds {
			names = append(names, name)
		}
		sort.Strings(names)
		files := map[string]bool{}
		for _, name := range names {
			file := unsafeName.ReplaceAllString(name, "_")
			if files[file] {
				t.Fatalf("two %s seeds are both called %s", target, file)
			}
			files[file] = true
			checkGolden(t, filepath.Join("fuzz", target, file), []byte(seeds[name]))
		}
	}
}
