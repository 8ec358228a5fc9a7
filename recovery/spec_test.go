package recovery

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"

	"arc/format"

	"github.com/zeebo/xxh3"
)

// gf is GF(2^8) with the polynomial x^8+x^4+x^3+x^2+1, written from
// docs/FORMAT.md ("Recovery volumes") and independent of the library.
type gf struct {
	exp [510]byte
	log [256]int
}

func newGF() *gf {
	g := &gf{}
	x := 1
	for i := range 255 {
		g.exp[i], g.exp[i+255] = byte(x), byte(x)
		g.log[x] = i
		x <<= 1
		if x&0x100 != 0 {
			x ^= 0x11d
		}
	}
	return g
}

func (g *gf) mul(a, b byte) byte {
	if a == 0 || b == 0 {
		return 0
	}
	return g.exp[g.log[a]+g.log[b]]
}

func (g *gf) pow(a byte, n int) byte {
	r := byte(1)
	for range n {
		r = g.mul(r, a)
	}
	return r
}

func (g *gf) inv(a byte) byte { return g.exp[255-g.log[a]] }

// generator returns G = V · V_top⁻¹ for k data and m parity shards.
func (g *gf) generator(k, m int) [][]byte {
	v := make([][]byte, k+m)
	for i := range v {
		v[i] = make([]byte, k)
		for c := range k {
			v[i][c] = g.pow(byte(i), c)
		}
	}
	// invert the top k×k square by Gauss-Jordan on [top | I]
	a := make([][]byte, k)
	for i := range a {
		a[i] = make([]byte, 2*k)
		copy(a[i], v[i])
		a[i][k+i] = 1
	}
	for c := range k {
		p := c
		for a[p][c] == 0 {
			p++
		}
		a[c], a[p] = a[p], a[c]
		iv := g.inv(a[c][c])
		for x := range a[c] {
			a[c][x] = g.mul(a[c][x], iv)
		}
		for r := range k {
			if r != c && a[r][c] != 0 {
				f := a[r][c]
				for x := range a[r] {
					a[r][x] ^= g.mul(f, a[c][x])
				}
			}
		}
	}
	out := make([][]byte, k+m)
	for i := range out {
		out[i] = make([]byte, k)
		for c := range k {
			var s byte
			for x := range k {
				s ^= g.mul(v[i][x], a[x][k+c])
			}
			out[i][c] = s
		}
	}
	return out
}

// TestParityIsTheDocumentedCode reads a set's recovery volumes through the
// byte layout of docs/FORMAT.md alone and recomputes every parity shard
// and checksum from the data volumes with the documented code.
func TestParityIsTheDocumentedCode(t *testing.T) {
	dir := t.TempDir()
	base := makeSet(t, dir, 64<<10, 5*(64<<10-48)-300, 4) // 5 small volumes
	if _, err := Add(ctx, base, Options{Percent: 50}); err != nil {
		t.Fatal(err)
	}
	le := binary.LittleEndian
	r1, err := os.ReadFile(base + ".r01")
	if err != nil {
		t.Fatal(err)
	}
	if string(r1[:8]) != "ARCREC\r\n" {
		t.Fatalf("magic %q", r1[:8])
	}
	count := int(le.Uint32(r1[16:]))
	S := int(le.Uint32(r1[20:]))
	T := int(le.Uint32(r1[24:]))
	k, m := int(le.Uint16(r1[28:])), int(le.Uint16(r1[30:]))
	perVol := int(le.Uint32(r1[32:]))
	N := int(le.Uint32(r1[36:]))
	D := int(le.Uint64(r1[56:]))
	H := int(le.Uint64(r1[64:]))
	baseLen := int(le.Uint16(r1[72:]))
	P := T * m
	if N != 5 || H != 80+baseLen+8*(N+D+P)+8 || string(r1[80:80+baseLen]) != filepath.Base(base) {
		t.Fatalf("N %d H %d base %q", N, H, r1[80:80+baseLen])
	}
	if le.Uint64(r1[H-8:]) != xxh3.Hash(r1[:H-8]) {
		t.Error("header checksum")
	}
	// data shards, zero-padded, in global order
	var shards [][]byte
	o := 80 + baseLen
	for i := 1; i <= N; i++ {
		b, err := os.ReadFile(format.VolumeName(base, uint32(i)))
		if err != nil {
			t.Fatal(err)
		}
		if int(le.Uint64(r1[o:])) != len(b) {
			t.Errorf("volume %d size %d recorded, is %d", i, le.Uint64(r1[o:]), len(b))
		}
		o += 8
		for off := 0; off < len(b); off += S {
			sh := make([]byte, S)
			copy(sh, b[off:])
			shards = append(shards, sh)
		}
	}
	if len(shards) != D || k != (D+T-1)/T || T < 2 {
		t.Fatalf("D %d (have %d shards), T %d, k %d: want several stripes", D, len(shards), T, k)
	}
	for s, sh := range shards {
		if le.Uint64(r1[o+8*s:]) != xxh3.Hash(sh) {
			t.Errorf("data shard %d checksum", s)
		}
	}
	o += 8 * D
	vols := make([][]byte, count)
	for v := range count {
		if vols[v], err = os.ReadFile(Name(base, v+1)); err != nil {
			t.Fatal(err)
		}
		n := min(perVol, P-v*perVol)
		b := vols[v]
		if len(b) != 2*H+n*S+16 || string(b[len(b)-8:]) != "ARCRTAIL" || int(le.Uint64(b[len(b)-16:])) != H ||
			le.Uint32(b[12:]) != uint32(v+1) || string(b[H+n*S:H+n*S+H]) != string(b[:H]) {
			t.Errorf("recovery volume %d layout", v+1)
		}
	}
	field := newGF()
	gen := field.generator(k, m)
	for st := range T {
		for r := range m {
			want := make([]byte, S)
			for j := range k {
				s := j*T + st
				if s >= D {
					continue
				}
				c := gen[k+r][j]
				for x := range S {
					want[x] ^= field.mul(c, shards[s][x])
				}
			}
			p := r*T + st
			v, off := p/perVol, H+(p%perVol)*S
			got := vols[v][off : off+S]
			if string(got) != string(want) {
				t.Fatalf("parity shard %d (stripe %d row %d) differs from the documented code", p, st, r)
			}
			if le.Uint64(r1[o+8*p:]) != xxh3.Hash(got) {
				t.Errorf("parity shard %d checksum", p)
			}
		}
	}
}
