// Package bytesize reads and writes the byte counts that the commands'
// flags take (--volume-size 98M, --cache-size 2G): one spelling for every
// command, so that a size that one accepts the others accept too.
package bytesize

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Parse reads a byte count with an optional K, M, G or T suffix (powers
// of 1024; a trailing "B" or "iB" is accepted: 16M, 16MiB, 16MB are equal).
// Spaces around it are ignored; a sign, a fraction or another base is not a
// size.
func Parse(s string) (int64, error) {
	u := strings.ToUpper(strings.TrimSpace(s))
	if v, ok := strings.CutSuffix(u, "IB"); ok {
		u = v
	} else {
		u = strings.TrimSuffix(u, "B")
	}
	shift := 0
	if n := len(u); n > 0 {
		if i := strings.IndexByte("KMGT", u[n-1]); i >= 0 {
			shift = 10 * (i + 1)
			u = u[:n-1]
		}
	}
	// ParseUint alone would take "+5"; a size is digits.
	if u == "" || strings.Trim(u, "0123456789") != "" {
		return 0, fmt.Errorf("invalid size %q (want a number with an optional K, M, G or T suffix)", s)
	}
	n, err := strconv.ParseUint(u, 10, 64)
	if err != nil || n > uint64(math.MaxInt64)>>shift {
		return 0, fmt.Errorf("size %q is too large", s)
	}
	return int64(n << shift), nil
}

// Format writes n the way Parse reads it, exactly: 16M, 1536K, 100.
func Format(n int64) string {
	for _, u := range []struct {
		shift  int
		suffix string
	}{{40, "T"}, {30, "G"}, {20, "M"}, {10, "K"}} {
		if n != 0 && n%(1<<u.shift) == 0 {
			return strconv.FormatInt(n>>u.shift, 10) + u.suffix
		}
	}
	return strconv.FormatInt(n, 10)
}
