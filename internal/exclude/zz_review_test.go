package exclude

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

// Reviewer's throwaway harness: effective exclusion (self or an ancestor dir).
func TestZZReviewHarness(t *testing.T) {
	pf, lf, of := os.Getenv("REVIEW_PATTERNS"), os.Getenv("REVIEW_PATHS"), os.Getenv("REVIEW_OUT")
	if pf == "" {
		t.Skip()
	}
	var l List
	f, err := os.Open(pf)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.AddFrom(f, pf); err != nil {
		os.WriteFile(of, []byte("ERROR "+err.Error()+"\n"), 0o644)
		return
	}
	b, _ := os.ReadFile(lf)
	var out bytes.Buffer
	for _, rec := range bytes.Split(b, []byte{0}) {
		if len(rec) < 2 {
			continue
		}
		dir := rec[0] == 'd'
		p := string(rec[2:])
		ex := false
		parts := strings.Split(p, "/")
		for i := 1; i <= len(parts); i++ {
			isDir := i < len(parts) || dir
			q := strings.Join(parts[:i], "/")
			if l.Excluded(q, isDir) {
				ex = true
				break
			}
		}
		if ex {
			out.WriteString(p)
			out.WriteByte(0)
		}
	}
	os.WriteFile(of, out.Bytes(), 0o644)
}
