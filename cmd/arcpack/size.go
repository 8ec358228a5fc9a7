package main

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// parseSize reads a byte count with an optional K, M, G or T suffix (powers
// of 1024; a trailing "B" or "iB" is accepted: 16M, 16MiB, 16MB are equal).
func parseSize(s string) (int64, error) {
	u := strings.ToUpper(strings.TrimSpace(s))
	if v, ok := strings.CutSuffix(u, "IB"); ok {
		u = v
	} else {
		u = strings.TrimSuffix(u, "B")
	}
	shift := 0
	if n := len(u); n > 0 {
		switch u[n-1] {
		case 'K':
			shift = 10
		case 'M':
			shift = 20
		case 'G':
			shift = 30
		case 'T':
			shift = 40
		}
		if shift > 0 {
			u = u[:n-1]
		}
	}
	if u == "" {
		return 0, fmt.Errorf("invalid size %q (want a number with an optional K, M, G or T suffix)", s)
	}
	n, err := strconv.ParseUint(u, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("invalid size %q (want a number with an optional K, M, G or T suffix)", s)
	}
	if n > uint64(math.MaxInt64)>>shift {
		return 0, fmt.Errorf("size %q is too large", s)
	}
	return int64(n << shift), nil
}

// formatSize writes n the way parseSize reads it, exactly (16M, 1536K, 100).
func formatSize(n int64) string {
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

// sizeFlag is a pflag.Value holding a byte count.
type sizeFlag struct{ n *int64 }

func (f sizeFlag) String() string {
	if f.n == nil {
		return "0"
	}
	return formatSize(*f.n)
}

func (f sizeFlag) Set(s string) error {
	n, err := parseSize(s)
	if err != nil {
		return err
	}
	*f.n = n
	return nil
}

func (f sizeFlag) Type() string { return "size" }

// humanBytes formats n for people: 1.5 GiB, 12 KiB, 100 B.
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit && n > -unit {
		return fmt.Sprintf("%d B", n)
	}
	v := float64(n)
	for _, s := range []string{"KiB", "MiB", "GiB", "TiB", "PiB"} {
		v /= unit
		if math.Abs(v) < unit || s == "PiB" {
			return fmt.Sprintf("%.1f %s", v, s)
		}
	}
	return ""
}

// units chooses how sizes are shown to people: humanBytes, or exact byte
// counts with --bytes (for scripts).
type units struct{ bytes bool }

func (u *units) size(n int64) string {
	if u != nil && u.bytes {
		return fmt.Sprintf("%d B", n)
	}
	return humanBytes(n)
}
