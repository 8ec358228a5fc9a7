package main

import (
	"fmt"
	"math"

	"arc/internal/bytesize"
)

// sizeFlag is a pflag.Value holding a byte count.
type sizeFlag struct{ n *int64 }

func (f sizeFlag) String() string {
	if f.n == nil {
		return "0"
	}
	return bytesize.Format(*f.n)
}

func (f sizeFlag) Set(s string) error {
	n, err := bytesize.Parse(s)
	if err != nil {
		return err
	}
	*f.n = n
	return nil
}

func (f sizeFlag) Type() string { return "size" }

// humanBytes formats n for people: 1.5 GiB, 12 KiB, 100 B.
func humanBytes(n int64) string {
	if n < 1024 && n > -1024 {
		return fmt.Sprintf("%d B", n)
	}
	return humanScaled(float64(n))
}

// humanUBytes is humanBytes of an unsigned count: the holes of sparse
// files add up past int64's range (files of exabytes).
func humanUBytes(n uint64) string {
	if n < 1024 {
		return fmt.Sprintf("%d B", n)
	}
	return humanScaled(float64(n))
}

func humanScaled(v float64) string {
	for _, s := range []string{"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"} {
		v /= 1024
		if math.Abs(v) < 1024 || s == "EiB" {
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

// usize is size of an unsigned count.
func (u *units) usize(n uint64) string {
	if u != nil && u.bytes {
		return fmt.Sprintf("%d B", n)
	}
	return humanUBytes(n)
}

// counted is n with its noun, singular for one ("1 file", "2 files").
func counted[N int | int64 | uint64](n N, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}
