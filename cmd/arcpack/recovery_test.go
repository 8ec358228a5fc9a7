package main

import "testing"

// --recovery takes a plain decimal share, with or without %, from 0.01% to
// 100%; not the other spellings strconv.ParseFloat reads.
func TestRecoveryPercentIsAPlainDecimal(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want float64 // -1: refused
	}{
		{"", 0}, {"10%", 10}, {"10", 10}, {"2.5%", 2.5}, {" 7% ", 7}, {"0.01%", 0.01}, {"100%", 100}, {".5", 0.5},
		{"0%", -1}, {"101%", -1}, {"1e1%", -1}, {"0x1p3", -1}, {"Inf", -1}, {"NaN%", -1}, {"1.2.3", -1}, {"%", -1}, {".", -1}, {"-5%", -1}, {"+5%", -1},
	} {
		got, err := parsePercent(tc.in)
		if tc.want < 0 && err == nil || tc.want >= 0 && (err != nil || got != tc.want) {
			t.Errorf("parsePercent(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}
