package integration

import (
	"archive/tar"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode"

	"arc/internal/testtree"
)

// A tree sent through GNU tar into `arcpack create -` comes back whole:
// content, holes, modes, owners, times, xattrs, ACLs, hardlinks, devices,
// FIFOs and byte names — the same tree as packing the directory gives.
func TestCreateFromTarStreamRoundTrips(t *testing.T) {
	if _, err := exec.LookPath("tar"); err != nil {
		t.Skip("GNU tar is not installed")
	}
	src := genTree(t, testtree.Options{Seed: 4, LargeSize: 700 << 10})
	out := filepath.Join(t.TempDir(), "fromtar")
	cmd := exec.Command("sh", "-c", `tar -c --format=posix --xattrs --xattrs-include='*' --acls --sparse -C "$1" . | "$2" create - -o "$3" --volume-size 256K --frame-size 128K --block-size 64K --progress never`,
		"sh", src, arcpackBin, out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("tar | arcpack create -: %v\n%s", err, b)
	}
	mustArcpack(t, "verify", out+".001")
	dst := filepath.Join(t.TempDir(), "dst")
	mustArcpack(t, "extract", out+".001", "-o", dst, "--progress", "never")
	compare(t, src, dst, testtree.CompareOptions{})

	// The same dedup as packing the directory: about as many unique bytes
	// (the stream's order is not path order, so not exactly as many).
	dir := pack(t, small, src)
	unique := regexp.MustCompile(`\((\d+) B unique data`)
	uniq := func(base string) float64 {
		m := unique.FindStringSubmatch(mustArcpack(t, "info", "--bytes", base+".001").stdout)
		if m == nil {
			t.Fatalf("info of %s shows no unique data line", base)
		}
		v, _ := strconv.ParseFloat(m[1], 64)
		return v
	}
	if a, b := uniq(out), uniq(dir); a > b*1.02 || a < b*0.98 {
		t.Errorf("unique data from tar %.0f B, from the directory %.0f B", a, b)
	}
}

func TestCreateFromTarRefusesMixedSources(t *testing.T) {
	r := arcpack(t, "create", "-", t.TempDir(), "-o", filepath.Join(t.TempDir(), "x"))
	wantFail(t, r, 2, "cannot be combined")
}

// Names a tar stream controls (member names, owner names) reach the
// terminal escaped: in list and list -l, and in create's warnings.
func TestHostileNamesFromATarStreamAreEscapedOnOutput(t *testing.T) {
	var stream bytes.Buffer
	tw := tar.NewWriter(&stream)
	evil := "x\x1b]0;pwned\x07\u202e"
	for _, h := range []*tar.Header{
		{Name: "f" + evil, Typeflag: tar.TypeReg, Mode: 0o644, Uname: "u" + evil, Gname: "g" + evil, Format: tar.FormatPAX},
		{Name: "l" + evil, Typeflag: tar.TypeSymlink, Linkname: "", Mode: 0o777, Format: tar.FormatPAX}, // skipped with a warning naming it
	} {
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
	}
	tw.Close()
	out := filepath.Join(t.TempDir(), "a")
	cmd := exec.Command(arcpackBin, "create", "-", "-o", out, "--progress", "never")
	cmd.Stdin = &stream
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.Run()
	list := mustArcpack(t, "list", "-l", out+".001").stdout
	for what, s := range map[string]string{"create's warnings": stderr.String(), "list -l": list, "list": mustArcpack(t, "list", out+".001").stdout} {
		if strings.ContainsAny(s, "\x1b\x07\u202e") {
			t.Errorf("%s print a raw escape sequence: %q", what, s)
		}
	}
	if !strings.Contains(list, `ux\033]0;pwned\007\342\200\256/gx\033]0;pwned\007\342\200\256`) {
		t.Errorf("list -l does not show the owner escaped: %q", list)
	}
	if !strings.Contains(stderr.String(), `lx\033]0;pwned`) {
		t.Errorf("create's warning does not name the skipped member escaped: %q", stderr.String())
	}
}

// list -l keeps its size column aligned past an owner name longer than
// the column was made for: the column grows, and every line after the
// long one ends its size where that line does (as tar -tv does). Names are
// measured in the columns a terminal draws them in: a CJK or Hangul
// character takes two, a combining accent none (a CJK file name, last on
// its line, moves nothing).
func TestListLongAlignsSizesPastALongOwner(t *testing.T) {
	type file struct {
		name, user, group string
		id, size          int
	}
	for _, tc := range []struct {
		name    string
		files   []file
		longest string // the widest line's owner/group and size, one space apart
	}{
		{"ASCII names", []file{
			{"a", "a-rather-long-user-name", "and-a-long-group", 5001, 1},
			{"b", "root", "root", 0, 123456},
			{"c", "x", "y", 5002, 0},
		}, "a-rather-long-user-name/and-a-long-group 1 "},
		{"wide and combining characters", []file{
			{"a", "情報システム管理者", "開発部", 5001, 1},
			{"b", "x", "y", 5002, 0},
			{"c", "jose\u0301", "개발팀", 5003, 7},
			{"d", "root", "root", 0, 123456},
			{"資料.txt", "管理者", "開発", 5004, 5},
		}, "情報システム管理者/開発部 1 "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stream bytes.Buffer
			tw := tar.NewWriter(&stream)
			for _, f := range tc.files {
				h := &tar.Header{Name: f.name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(f.size), Uname: f.user, Gname: f.group, Uid: f.id, Gid: f.id, Format: tar.FormatPAX}
				if err := tw.WriteHeader(h); err != nil {
					t.Fatal(err)
				}
				tw.Write(make([]byte, f.size))
			}
			tw.Close()
			out := filepath.Join(t.TempDir(), "a")
			cmd := exec.Command(arcpackBin, "create", "-", "-o", out, "--progress", "never")
			cmd.Stdin = &stream
			if b, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("create: %v\n%s", err, b)
			}
			list := strings.TrimSpace(mustArcpack(t, "list", "-l", "--bytes", out+".001").stdout)
			date := regexp.MustCompile(` \d{4}-\d\d-\d\d \d\d:\d\d `)
			col := -1
			for _, line := range strings.Split(list, "\n") {
				at := date.FindStringIndex(line)
				if at == nil {
					t.Fatalf("no date in %q", line)
				}
				c := termColumns(line[:at[0]])
				if col >= 0 && c != col {
					t.Errorf("the size column ends at column %d in %q, at %d above it:\n%s", c, line, col, list)
				}
				col = c
			}
			if !strings.Contains(list, tc.longest) {
				t.Errorf("the long owner's line is not as wide as it needs:\n%s", list)
			}
		})
	}
}

// termColumns is how many columns a terminal draws s in, for the text
// TestListLongAlignsSizesPastALongOwner lists: two for Han, kana and
// Hangul, none for a combining mark, one for the rest. It is counted apart
// from termsafe.Width, which list -l uses, so that the test does not take
// its word for it.
func termColumns(s string) int {
	n := 0
	for _, r := range s {
		switch {
		case unicode.Is(unicode.Mn, r):
		case unicode.In(r, unicode.Han, unicode.Hiragana, unicode.Katakana, unicode.Hangul):
			n += 2
		default:
			n++
		}
	}
	return n
}

// A tar stream that names a file but not its directories (tar -c
// etc/hosts) gives the archive directories whose owner, mode and time were
// made up when it was packed. Extracted where those directories exist (/,
// /etc), they are left as they are, as tar leaves them.
func TestExtractKeepsExistingDirectoriesATarStreamNeverNamed(t *testing.T) {
	if _, err := exec.LookPath("tar"); err != nil {
		t.Skip("GNU tar is not installed")
	}
	src := t.TempDir()
	if err := os.MkdirAll(filepath.Join(src, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "etc", "hosts"), []byte("127.0.0.1 localhost\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "hosts")
	cmd := exec.Command("sh", "-c", `tar -c -C "$1" etc/hosts | "$2" create - -o "$3" --progress never`, "sh", src, arcpackBin, out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("tar | arcpack create -: %v\n%s", err, b)
	}
	dest := t.TempDir()
	if err := os.Mkdir(filepath.Join(dest, "etc"), 0o700); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{dest, filepath.Join(dest, "etc")} {
		if err := os.Chmod(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	mustArcpack(t, "extract", out+".001", "-o", dest, "--progress", "never")
	for _, d := range []string{dest, filepath.Join(dest, "etc")} {
		st, err := os.Stat(d)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o700 {
			t.Errorf("%s: mode %o after extract, want its own 0700", d, st.Mode().Perm())
		}
	}
	if b, err := os.ReadFile(filepath.Join(dest, "etc", "hosts")); err != nil || string(b) != "127.0.0.1 localhost\n" {
		t.Errorf("etc/hosts: %q, %v", b, err)
	}
}
