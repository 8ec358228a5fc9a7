package writer

import (
	"encoding/binary"
	"testing"
)

// aclBytes is the kernel's xattr value for entries of tag, perm and id.
func aclBytes(ents ...[3]uint32) string {
	out := binary.LittleEndian.AppendUint32(nil, aclVersion)
	for _, e := range ents {
		out = binary.LittleEndian.AppendUint16(out, uint16(e[0]))
		out = binary.LittleEndian.AppendUint16(out, uint16(e[1]))
		out = binary.LittleEndian.AppendUint32(out, e[2])
	}
	return string(out)
}

// The text forms of an ACL that tar streams carry: getfacl's (names or
// numeric ids), and star's and libarchive's (bsdtar), whose named entries
// add the numeric id as a fourth field; that id is taken, so that a name
// this machine does not know loses nothing.
func TestACLTextOfEveryTarBecomesTheKernelsValue(t *testing.T) {
	base := [][3]uint32{{aclUserObj, 6, aclNoID}, {aclGroupObj, 4, aclNoID}, {aclMask, 4, aclNoID}, {aclOther, 0, aclNoID}}
	with := func(extra ...[3]uint32) string {
		ents := append([][3]uint32{base[0]}, extra...)
		return aclBytes(append(ents, base[1:]...)...)
	}
	for _, tc := range []struct {
		name, text, want string
	}{
		{"numeric ids", "user::rw-,user:1234:r--,group::r--,mask::r--,other::---", with([3]uint32{aclUser, 4, 1234})},
		{"star's extra id, unknown name", "user::rw-,user:nosuchuser-arc:r--:1234,group::r--,mask::r--,other::---", with([3]uint32{aclUser, 4, 1234})},
		{"star's extra id on a group", "user::rw-,group::r--,group:nosuchgroup-arc:r-x:77,mask::r--,other::---",
			aclBytes(base[0], base[1], [3]uint32{aclGroup, 5, 77}, base[2], base[3])},
		{"the id wins over a known name", "user::rw-,user:root:r--:1234,group::r--,mask::r--,other::---", with([3]uint32{aclUser, 4, 1234})},
		{"newlines and comments", "user::rw-\nuser:1234:r-- # alice\ngroup::r--\nmask::r--\nother::---\n", with([3]uint32{aclUser, 4, 1234})},
	} {
		got, err := aclFromText(tc.text)
		if err != nil || string(got) != tc.want {
			t.Errorf("%s: %q gives %q (%v), want %q", tc.name, tc.text, got, err, tc.want)
		}
	}
	for _, bad := range []string{
		"user:alice:r--:x",          // the id is not a number
		"mask::r--:5",               // an id on an entry without a qualifier
		"user::rw-:5",               // the same
		"user:alice:r--:5:6",        // too many fields
		"user:alice",                // too few
		"other:someone:r--",         // other takes no qualifier
		"user::rw-,bogus::r--",      // unknown tag
		"user::rwz",                 // unknown permission
		"user:nosuchuser-arc:r--",   // a name only, unknown here
		"group:nosuchgroup-arc:r--", // the same
	} {
		if got, err := aclFromText(bad); err == nil {
			t.Errorf("%q: accepted as %q", bad, got)
		}
	}
}
