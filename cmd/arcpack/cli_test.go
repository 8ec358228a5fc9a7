package main

import (
	"encoding/binary"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

// arcpack runs one command line as main does and returns what it wrote on
// stdout and stderr, and its exit code.
func arcpack(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	outF, err := os.Create(filepath.Join(t.TempDir(), "stdout"))
	if err != nil {
		t.Fatal(err)
	}
	stderr, code = arcpackTo(t, outF, args...)
	o, _ := os.ReadFile(outF.Name())
	return string(o), stderr, code
}

// arcpackTo is arcpack with stdout going to outF (closed when it returns).
func arcpackTo(t *testing.T, outF *os.File, args ...string) (stderr string, code int) {
	t.Helper()
	dir := t.TempDir()
	errF, err := os.Create(filepath.Join(dir, "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	oldOut, oldErr := os.Stdout, os.Stderr
	os.Stdout, os.Stderr = outF, errF
	code = run(args)
	os.Stdout, os.Stderr = oldOut, oldErr
	outF.Close()
	errF.Close()
	e, _ := os.ReadFile(errF.Name())
	return string(e), code
}

// packTree writes files (path → content) below a fresh directory and packs
// it with the extra create flags; it returns the archive's NAME.
func packTree(t *testing.T, files map[string]string, flags ...string) string {
	t.Helper()
	src := t.TempDir()
	for name, b := range files {
		p := filepath.Join(src, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(b), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	name := filepath.Join(t.TempDir(), "a")
	args := append([]string{"create", src, "-o", name, "--progress", "never"}, flags...)
	if _, stderr, code := arcpack(t, args...); code != exitOK {
		t.Fatalf("%v: exit %d: %s", args, code, stderr)
	}
	return name
}

// noise is n bytes that neither compress nor dedup, from seed.
func noise(n int, seed uint64) string {
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:], seed)
	b := make([]byte, n)
	rand.NewChaCha8(key).Read(b)
	return string(b)
}

// The errors cobra makes itself read as arcpack's own: one line, exit 2,
// naming the command, the flag as it is typed and where to look.
func TestCobrasOwnErrorsAreOneLineNamingTheCommand(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"extrct", "x"}, `arcpack: unknown command "extrct" for "arcpack"; did you mean extract? (see 'arcpack --help')` + "\n"},
		{[]string{"bogus"}, `arcpack: unknown command "bogus" for "arcpack" (see 'arcpack --help')` + "\n"},
		{[]string{"create", t.TempDir()}, "arcpack: create: -o/--output is required (see 'arcpack create --help')\n"},
		{[]string{"extract", "x.001"}, "arcpack: extract: -o/--output is required (see 'arcpack extract --help')\n"},
		// Not cobra's help on stdout and exit 0: 'arcpack completion tcsh >
		// FILE' would write the help into FILE and report success.
		{[]string{"completion", "tcsh"}, `arcpack: completion: unknown shell "tcsh" (want bash, zsh, fish or powershell; see 'arcpack completion --help')` + "\n"},
	} {
		_, stderr, code := arcpack(t, tc.args...)
		if code != exitFatal || stderr != tc.want {
			t.Errorf("%q: exit %d, %q; want exit %d, %q", tc.args, code, stderr, exitFatal, tc.want)
		}
	}
}
