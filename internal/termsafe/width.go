package termsafe

import "unicode"

// Width is the number of terminal columns s takes, counted as wcwidth(3)
// and so `ls` and `tar` count them, a character at a time: 0 for what
// draws nothing of its own (combining marks, format characters such as the
// zero-width joiner, controls), 2 for East Asian Wide and Fullwidth
// characters (CJK ideographs, kana, Hangul syllables, fullwidth letters,
// most emoji), 1 for the rest. A byte that is not valid UTF-8 counts 1, as
// the replacement character a terminal draws for it.
//
// Columns are measured on text as it is printed, that is after Name: the
// controls and format characters Name escapes are then the four or more
// columns of their escapes.
//
// Emoji joined into one picture (👩‍💻) count as the sum of their parts, as
// wcswidth(3) counts them; terminals differ on how wide they draw them.
func Width(s string) int {
	n := 0
	for _, r := range s {
		n += runeWidth(r)
	}
	return n
}

func runeWidth(r rune) int {
	switch {
	case r >= 0x20 && r < 0x7f:
		return 1 // ASCII, most of what is measured
	case unicode.In(r, zeroWidth...):
		return 0
	case unicode.Is(wide, r):
		return 2
	}
	return 1 // utf8.RuneError for an invalid byte too
}

// zeroWidth is what takes no column: nonspacing and enclosing combining
// marks (accents, variation selectors), format characters (zero-width
// joiner and non-joiner, zero-width space, bidirectional controls),
// controls, and the Hangul Jamo vowels and final consonants that join the
// leading consonant before them into one wide syllable.
var zeroWidth = []*unicode.RangeTable{unicode.Mn, unicode.Me, unicode.Cf, unicode.Cc, conjoiningJamo}

var conjoiningJamo = &unicode.RangeTable{R16: []unicode.Range16{
	{Lo: 0x1160, Hi: 0x11ff, Stride: 1}, // Hangul Jamo medial vowels, final consonants
	{Lo: 0xd7b0, Hi: 0xd7ff, Stride: 1}, // Hangul Jamo Extended-B
}}

// wide holds the characters whose East_Asian_Width is W (wide) or F
// (fullwidth) in Unicode 15.0, the version of Go's unicode tables, so
// that all of Width speaks one version. Neighbouring ranges are merged
// across code points not assigned in 15.0. It is sorted and its ranges do
// not overlap, as unicode.Is needs for its binary search
// (TestWideTableIsSortedForBinarySearch).
var wide = &unicode.RangeTable{
	R16: []unicode.Range16{
		{Lo: 0x1100, Hi: 0x115f, Stride: 1}, // Hangul Jamo leading consonants
		{Lo: 0x231a, Hi: 0x231b, Stride: 1}, // ⌚⌛, and below the emoji drawn wide by default (W since Unicode 9)
		{Lo: 0x2329, Hi: 0x232a, Stride: 1}, // 〈 〉 angle brackets
		{Lo: 0x23e9, Hi: 0x23ec, Stride: 1},
		{Lo: 0x23f0, Hi: 0x23f0, Stride: 1},
		{Lo: 0x23f3, Hi: 0x23f3, Stride: 1},
		{Lo: 0x25fd, Hi: 0x25fe, Stride: 1},
		{Lo: 0x2614, Hi: 0x2615, Stride: 1},
		{Lo: 0x2648, Hi: 0x2653, Stride: 1},
		{Lo: 0x267f, Hi: 0x267f, Stride: 1},
		{Lo: 0x2693, Hi: 0x2693, Stride: 1},
		{Lo: 0x26a1, Hi: 0x26a1, Stride: 1},
		{Lo: 0x26aa, Hi: 0x26ab, Stride: 1},
		{Lo: 0x26bd, Hi: 0x26be, Stride: 1},
		{Lo: 0x26c4, Hi: 0x26c5, Stride: 1},
		{Lo: 0x26ce, Hi: 0x26ce, Stride: 1},
		{Lo: 0x26d4, Hi: 0x26d4, Stride: 1},
		{Lo: 0x26ea, Hi: 0x26ea, Stride: 1},
		{Lo: 0x26f2, Hi: 0x26f3, Stride: 1},
		{Lo: 0x26f5, Hi: 0x26f5, Stride: 1},
		{Lo: 0x26fa, Hi: 0x26fa, Stride: 1},
		{Lo: 0x26fd, Hi: 0x26fd, Stride: 1},
		{Lo: 0x2705, Hi: 0x2705, Stride: 1},
		{Lo: 0x270a, Hi: 0x270b, Stride: 1},
		{Lo: 0x2728, Hi: 0x2728, Stride: 1},
		{Lo: 0x274c, Hi: 0x274c, Stride: 1},
		{Lo: 0x274e, Hi: 0x274e, Stride: 1},
		{Lo: 0x2753, Hi: 0x2755, Stride: 1},
		{Lo: 0x2757, Hi: 0x2757, Stride: 1},
		{Lo: 0x2795, Hi: 0x2797, Stride: 1},
		{Lo: 0x27b0, Hi: 0x27b0, Stride: 1},
		{Lo: 0x27bf, Hi: 0x27bf, Stride: 1},
		{Lo: 0x2b1b, Hi: 0x2b1c, Stride: 1},
		{Lo: 0x2b50, Hi: 0x2b50, Stride: 1},
		{Lo: 0x2b55, Hi: 0x2b55, Stride: 1},
		{Lo: 0x2e80, Hi: 0x303e, Stride: 1}, // CJK radicals, ideographic description, CJK symbols and punctuation (U+3000 is F)
		{Lo: 0x3041, Hi: 0x3247, Stride: 1}, // kana, bopomofo, Hangul compatibility jamo, kanbun, CJK strokes, enclosed CJK
		{Lo: 0x3250, Hi: 0x4dbf, Stride: 1}, // enclosed CJK (U+3248–324F are ambiguous), CJK compatibility, CJK Extension A
		{Lo: 0x4e00, Hi: 0xa48c, Stride: 1}, // CJK unified ideographs, Yi syllables (U+4DC0–4DFF, Yijing hexagrams, are N in 15.0)
		{Lo: 0xa490, Hi: 0xa4c6, Stride: 1}, // Yi radicals
		{Lo: 0xa960, Hi: 0xa97c, Stride: 1}, // Hangul Jamo Extended-A
		{Lo: 0xac00, Hi: 0xd7a3, Stride: 1}, // Hangul syllables
		{Lo: 0xf900, Hi: 0xfaff, Stride: 1}, // CJK compatibility ideographs
		{Lo: 0xfe10, Hi: 0xfe19, Stride: 1}, // vertical forms
		{Lo: 0xfe30, Hi: 0xfe52, Stride: 1}, // CJK compatibility forms, small form variants
		{Lo: 0xfe54, Hi: 0xfe66, Stride: 1},
		{Lo: 0xfe68, Hi: 0xfe6b, Stride: 1},
		{Lo: 0xff01, Hi: 0xff60, Stride: 1}, // fullwidth ASCII and brackets (F)
		{Lo: 0xffe0, Hi: 0xffe6, Stride: 1}, // fullwidth signs (F)
	},
	R32: []unicode.Range32{
		{Lo: 0x16fe0, Hi: 0x16fe4, Stride: 1}, // ideographic symbols
		{Lo: 0x16ff0, Hi: 0x16ff1, Stride: 1},
		{Lo: 0x17000, Hi: 0x18cd5, Stride: 1}, // Tangut, Tangut components, Khitan small script
		{Lo: 0x18d00, Hi: 0x18d08, Stride: 1}, // Tangut supplement
		{Lo: 0x1aff0, Hi: 0x1aff3, Stride: 1}, // kana extended-B
		{Lo: 0x1aff5, Hi: 0x1affb, Stride: 1},
		{Lo: 0x1affd, Hi: 0x1affe, Stride: 1},
		{Lo: 0x1b000, Hi: 0x1b122, Stride: 1}, // kana supplement, kana extended-A
		{Lo: 0x1b132, Hi: 0x1b132, Stride: 1}, // small kana extension
		{Lo: 0x1b150, Hi: 0x1b152, Stride: 1},
		{Lo: 0x1b155, Hi: 0x1b155, Stride: 1},
		{Lo: 0x1b164, Hi: 0x1b167, Stride: 1},
		{Lo: 0x1b170, Hi: 0x1b2fb, Stride: 1}, // Nüshu
		{Lo: 0x1f004, Hi: 0x1f004, Stride: 1}, // emoji from here on, but for those drawn as text by default
		{Lo: 0x1f0cf, Hi: 0x1f0cf, Stride: 1},
		{Lo: 0x1f18e, Hi: 0x1f18e, Stride: 1},
		{Lo: 0x1f191, Hi: 0x1f19a, Stride: 1},
		{Lo: 0x1f200, Hi: 0x1f202, Stride: 1}, // enclosed ideographic supplement
		{Lo: 0x1f210, Hi: 0x1f23b, Stride: 1},
		{Lo: 0x1f240, Hi: 0x1f248, Stride: 1},
		{Lo: 0x1f250, Hi: 0x1f251, Stride: 1},
		{Lo: 0x1f260, Hi: 0x1f265, Stride: 1},
		{Lo: 0x1f300, Hi: 0x1f320, Stride: 1}, // miscellaneous symbols and pictographs
		{Lo: 0x1f32d, Hi: 0x1f335, Stride: 1},
		{Lo: 0x1f337, Hi: 0x1f37c, Stride: 1},
		{Lo: 0x1f37e, Hi: 0x1f393, Stride: 1},
		{Lo: 0x1f3a0, Hi: 0x1f3ca, Stride: 1},
		{Lo: 0x1f3cf, Hi: 0x1f3d3, Stride: 1},
		{Lo: 0x1f3e0, Hi: 0x1f3f0, Stride: 1},
		{Lo: 0x1f3f4, Hi: 0x1f3f4, Stride: 1},
		{Lo: 0x1f3f8, Hi: 0x1f43e, Stride: 1},
		{Lo: 0x1f440, Hi: 0x1f440, Stride: 1},
		{Lo: 0x1f442, Hi: 0x1f4fc, Stride: 1},
		{Lo: 0x1f4ff, Hi: 0x1f53d, Stride: 1},
		{Lo: 0x1f54b, Hi: 0x1f54e, Stride: 1},
		{Lo: 0x1f550, Hi: 0x1f567, Stride: 1},
		{Lo: 0x1f57a, Hi: 0x1f57a, Stride: 1},
		{Lo: 0x1f595, Hi: 0x1f596, Stride: 1},
		{Lo: 0x1f5a4, Hi: 0x1f5a4, Stride: 1},
		{Lo: 0x1f5fb, Hi: 0x1f64f, Stride: 1}, // …and emoticons
		{Lo: 0x1f680, Hi: 0x1f6c5, Stride: 1}, // transport and map symbols
		{Lo: 0x1f6cc, Hi: 0x1f6cc, Stride: 1},
		{Lo: 0x1f6d0, Hi: 0x1f6d2, Stride: 1},
		{Lo: 0x1f6d5, Hi: 0x1f6d7, Stride: 1},
		{Lo: 0x1f6dc, Hi: 0x1f6df, Stride: 1},
		{Lo: 0x1f6eb, Hi: 0x1f6ec, Stride: 1},
		{Lo: 0x1f6f4, Hi: 0x1f6fc, Stride: 1},
		{Lo: 0x1f7e0, Hi: 0x1f7eb, Stride: 1}, // geometric shapes extended
		{Lo: 0x1f7f0, Hi: 0x1f7f0, Stride: 1},
		{Lo: 0x1f90c, Hi: 0x1f93a, Stride: 1}, // supplemental symbols and pictographs
		{Lo: 0x1f93c, Hi: 0x1f945, Stride: 1},
		{Lo: 0x1f947, Hi: 0x1f9ff, Stride: 1},
		{Lo: 0x1fa70, Hi: 0x1fa7c, Stride: 1}, // symbols and pictographs extended-A
		{Lo: 0x1fa80, Hi: 0x1fa88, Stride: 1},
		{Lo: 0x1fa90, Hi: 0x1fabd, Stride: 1},
		{Lo: 0x1fabf, Hi: 0x1fac5, Stride: 1},
		{Lo: 0x1face, Hi: 0x1fadb, Stride: 1},
		{Lo: 0x1fae0, Hi: 0x1fae8, Stride: 1},
		{Lo: 0x1faf0, Hi: 0x1faf8, Stride: 1},
		{Lo: 0x20000, Hi: 0x2fffd, Stride: 1}, // CJK Extensions B to F, compatibility supplement (plane 2)
		{Lo: 0x30000, Hi: 0x3fffd, Stride: 1}, // CJK Extensions G and H (plane 3)
	},
}
