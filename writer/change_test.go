package writer

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// A source file that changes while it is packed is read again; one that
// keeps changing is stored as its second read got it, with a warning; either
// way the archived size matches the archived bytes.
func TestFileChangingWhileReadIsReadAgain(t *testing.T) {
	v1 := randBytes(1, 150<<10)
	v2 := randBytes(2, 170<<10)
	v3 := randBytes(3, 120<<10)
	for _, tc := range []struct {
		name     string
		streamed bool           // larger than what is read whole
		rewrite  map[int][]byte // attempt → content written after that read
		want     []byte         // content archived
		warn     bool
	}{
		{"whole, changes once", false, map[int][]byte{0: v2}, v2, false},
		{"whole, changes twice", false, map[int][]byte{0: v2, 1: v3}, v2, true},
		{"whole, stable", false, nil, v1, false},
		{"streamed, changes once", true, map[int][]byte{0: v2}, v2, false},
		{"streamed, changes twice", true, map[int][]byte{0: v2, 1: v3}, v2, true},
		{"streamed, stable", true, nil, v1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := t.TempDir()
			path := filepath.Join(src, "log")
			writeTree(t, src, map[string][]byte{"log": v1, "other": []byte("other")})
			var mu sync.Mutex
			var warnings []string
			o := small()
			if tc.streamed {
				o.wholeMax = 64 << 10
			}
			o.Warn = func(err error) { mu.Lock(); warnings = append(warnings, err.Error()); mu.Unlock() }
			o.readHook = func(p string, attempt int) {
				if c, ok := tc.rewrite[attempt]; ok && p == path {
					if err := os.WriteFile(p, c, 0o644); err != nil {
						t.Error(err)
					}
				}
			}
			res, err := Create(context.Background(), filepath.Join(t.TempDir(), "a"), []string{src}, o)
			if err != nil {
				t.Fatal(err)
			}
			a := readBack(t, res.Volumes, 0)
			got := a.content["log"]
			if !bytes.Equal(got, tc.want) {
				t.Fatalf("archived %d bytes, not the expected version of %d bytes", len(got), len(tc.want))
			}
			if size := a.idx.Inodes.Size[a.inode["log"]]; size != uint64(len(got)) {
				t.Fatalf("archived size %d for %d bytes of content", size, len(got))
			}
			warned := len(warnings) == 1 && strings.Contains(warnings[0], path) && strings.Contains(warnings[0], "changed while being read")
			if warned != tc.warn || (!tc.warn && len(warnings) > 0) {
				t.Fatalf("warnings %q, want a warning: %v", warnings, tc.warn)
			}
			if res.InputBytes != int64(len(tc.want))+5 {
				t.Fatalf("input bytes %d, want %d (the kept copy only)", res.InputBytes, len(tc.want)+5)
			}
		})
	}
}

// A large file that is hashed as a possible duplicate and changes before it
// is stored must not be registered under the hash of its old content: a
// later file with that content would then point at the new bytes.
func TestFileChangedAfterHashingIsNotTakenForACopy(t *testing.T) {
	old := randBytes(4, 200<<10)
	changed := randBytes(5, 200<<10)
	src := t.TempDir()
	writeTree(t, src, map[string][]byte{"b": old, "c": old})
	o := small()
	o.wholeMax = 64 << 10
	var once sync.Once
	o.readHook = func(p string, attempt int) {
		if attempt == -1 && p == filepath.Join(src, "b") {
			once.Do(func() {
				if err := os.WriteFile(p, changed, 0o644); err != nil {
					t.Error(err)
				}
			})
		}
	}
	res, err := Create(context.Background(), filepath.Join(t.TempDir(), "a"), []string{src}, o)
	if err != nil {
		t.Fatal(err)
	}
	a := readBack(t, res.Volumes, 0)
	if !bytes.Equal(a.content["c"], old) {
		t.Fatal("c does not hold its own content")
	}
	if !bytes.Equal(a.content["b"], changed) && !bytes.Equal(a.content["b"], old) {
		t.Fatal("b holds neither version")
	}
}
