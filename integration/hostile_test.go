package integration

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"arc/codec"
	"arc/format"
)

// rewriteIndex replaces the index of a one-volume archive with what edit
// makes of it, keeping every checksum valid: only the reader's validation
// of the index content stands between the archive and the disk.
func rewriteIndex(t *testing.T, vol string, edit func(raw []byte) []byte) {
	t.Helper()
	b, err := os.ReadFile(vol)
	if err != nil {
		t.Fatal(err)
	}
	f, err := format.ParseFooter(b)
	if err != nil {
		t.Fatal(err)
	}
	start := format.VolumeHeaderSize + int(f.IndexOffset)
	stored := b[start : start+int(f.IndexSize)]
	raw, err := codec.DecompressIndex(stored, f.IndexRawSize)
	if err != nil {
		t.Fatal(err)
	}
	raw = edit(raw)
	nstored, err := codec.CompressIndex(raw)
	if err != nil {
		t.Fatal(err)
	}
	f.IndexSize, f.IndexRawSize, f.IndexChecksum = uint64(len(nstored)), uint64(len(raw)), codec.Checksum(nstored)
	f.StreamSize = f.IndexOffset + f.IndexSize + format.FooterSize
	foot, _ := f.MarshalBinary()
	out := append(append(append([]byte{}, b[:start]...), nstored...), foot...)
	if err := os.WriteFile(vol, out, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestHostileNamesAreRefused gives an archive entries named "..", "/abs"
// path pieces and "a/b": listing and extracting must refuse the archive,
// and nothing may appear outside DEST.
func TestHostileNamesAreRefused(t *testing.T) {
	for _, evil := range []string{"..", "/x", "x/", "."} {
		t.Run(evil, func(t *testing.T) {
			top := t.TempDir()
			src := filepath.Join(top, "src")
			os.MkdirAll(filepath.Join(src, "sub"), 0o755)
			// A name as long as the hostile one, to patch in place.
			plant := bytes.Repeat([]byte("q"), len(evil))
			os.WriteFile(filepath.Join(src, "sub", string(plant)), []byte("payload\n"), 0o644)
			base := pack(t, []string{"--volume-size", "0"}, src)
			rewriteIndex(t, base+".001", func(raw []byte) []byte {
				i := bytes.LastIndex(raw, plant)
				if i < 0 {
					t.Fatal("planted name not in the index")
				}
				copy(raw[i:], evil)
				return raw
			})
			wantFail(t, arcpack(t, "list", base+".001"), 2, "open "+base+".001: ", "corrupt", "invalid name")
			dst := filepath.Join(top, "dst", "inner")
			wantFail(t, arcpack(t, "extract", base+".001", "-o", dst), 2, "invalid name")
			ents, _ := os.ReadDir(filepath.Join(top, "dst"))
			for _, e := range ents {
				if e.Name() != "inner" {
					t.Errorf("extract wrote %s outside DEST", e.Name())
				}
			}
			if _, err := os.Stat(filepath.Join(top, "payload")); err == nil {
				t.Error("payload escaped")
			}
		})
	}
}
