// Package gear holds the gear tables of arc's rolling hashes. A gear hash
// adds a random value per byte and shifts once a byte, so after 64 bytes a
// byte's contribution has shifted out and the hash depends on the last 64
// bytes alone. The tables are part of the archive's reproducibility: the
// same seed must give the same table forever.
package gear

// Table returns the 256-entry table generated from seed by splitmix64.
func Table(seed uint64) (g [256]uint64) {
	s := seed
	for i := range g {
		s += 0x9E3779B97F4A7C15
		z := s
		z = (z ^ z>>30) * 0xBF58476D1CE4E5B9
		z = (z ^ z>>27) * 0x94D049BB133111EB
		g[i] = z ^ z>>31
	}
	return
}
