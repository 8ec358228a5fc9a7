package termsafe

import "github.com/rivo/uniseg"

// Width is the number of terminal columns s takes: 2 for East Asian Wide
// and Fullwidth characters (CJK ideographs, kana, Hangul, fullwidth
// letters) and for emoji, none for combining marks and other characters
// that draw nothing of their own, 1 for the rest. It counts by grapheme
// cluster, through uniseg (already linked in for the progress bar, and
// kept up with Unicode there), so that a letter with its accents, or
// emoji joined into one picture (👩‍💻), count as the one character a
// terminal draws.
//
// Measure text as it is printed, after Name: the controls and format
// characters Name escapes are then the four or more columns of their
// escapes.
func Width(s string) int { return uniseg.StringWidth(s) }
