package writer

import (
	"archive/tar"
	"encoding/binary"
	"fmt"
	"strings"
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

// aclOf is aclBytes of entries given as tag, permission and id in a row.
func aclOf(entries ...uint32) []byte {
	var es [][3]uint32
	for i := 0; i+2 < len(entries); i += 3 {
		es = append(es, [3]uint32{entries[i], entries[i+1], entries[i+2]})
	}
	return []byte(aclBytes(es...))
}

func TestAnACLIsValidAsTheKernelHoldsIt(t *testing.T) {
	const n = aclNoID
	for _, c := range []struct {
		name string
		val  []byte
		ok   bool
	}{
		{"owner, group, others", aclOf(aclUserObj, 6, n, aclGroupObj, 4, n, aclOther, 4, n), true},
		{"named entries and a mask", aclOf(aclUserObj, 6, n, aclUser, 4, 1000, aclUser, 6, 7, aclGroupObj, 4, n, aclGroup, 4, 50, aclMask, 6, n, aclOther, 0, n), true},
		{"a mask without named entries", aclOf(aclUserObj, 6, n, aclGroupObj, 4, n, aclMask, 4, n, aclOther, 4, n), true},
		{"named entries without a mask", aclOf(aclUserObj, 6, n, aclUser, 4, 1000, aclGroupObj, 4, n, aclOther, 4, n), false},
		{"no others entry", aclOf(aclUserObj, 6, n, aclGroupObj, 4, n), false},
		{"the group before the owner", aclOf(aclGroupObj, 4, n, aclUserObj, 6, n, aclOther, 4, n), false},
		{"two owner entries", aclOf(aclUserObj, 6, n, aclUserObj, 6, n, aclGroupObj, 4, n, aclOther, 4, n), false},
		{"an entry after the others", aclOf(aclUserObj, 6, n, aclGroupObj, 4, n, aclOther, 4, n, aclUser, 4, 1), false},
		{"permissions beyond rwx", aclOf(aclUserObj, 0o10, n, aclGroupObj, 4, n, aclOther, 4, n), false},
		{"an unknown tag", aclOf(aclUserObj, 6, n, 0x40, 4, n, aclGroupObj, 4, n, aclOther, 4, n), false},
		{"version 1", append([]byte{1, 0, 0, 0}, aclOf(aclUserObj, 6, n, aclGroupObj, 4, n, aclOther, 4, n)[4:]...), false},
		{"a piece of an entry", aclOf(aclUserObj, 6, n, aclGroupObj, 4, n, aclOther, 4, n)[:27], false},
		{"text", []byte("garbage"), false},
		{"nothing", nil, false},
	} {
		if err := validACL(c.val); (err == nil) != c.ok {
			t.Errorf("%s: validACL = %v, want valid %v", c.name, err, c.ok)
		}
	}
	// What aclFromText makes is valid.
	for _, text := range []string{"user::rw-,group::r--,other::r--", "user::rwx,user:7:r-x,group::r--,group:9:rw-,mask::rwx,other::---"} {
		val, err := aclFromText(text)
		if err != nil || validACL(val) != nil {
			t.Errorf("%s: %v, %v", text, err, validACL(val))
		}
	}
}

// A tar stream's xattr records may hold anything: an ACL the kernel would
// refuse, or more names than a file may list, would come back from
// neither extract nor the mount. They are left out, with a warning.
func TestTarXattrsTheKernelWouldRefuseAreLeftOut(t *testing.T) {
	records := map[string]string{
		"SCHILY.xattr.system.posix_acl_access":  "garbage",
		"SCHILY.xattr.system.posix_acl_default": string(aclOf(aclUserObj, 7, aclNoID, aclGroupObj, 5, aclNoID, aclOther, 5, aclNoID)),
	}
	for i := range 400 {
		records[fmt.Sprintf("SCHILY.xattr.user.%03d%s", i, strings.Repeat("n", 200))] = "v"
	}
	var warnings []string
	p := &packer{opt: &Options{Warn: func(err error) { warnings = append(warnings, err.Error()) }}}
	got := p.tarXattrs(&tar.Header{Name: "f", PAXRecords: records})
	list := 0
	names := map[string]bool{}
	for _, x := range got {
		list += len(x.name) + 1
		names[string(x.name)] = true
	}
	if list > xattrListMax || len(got) < 300 {
		t.Errorf("%d xattrs kept, their names listed in %d bytes; want as many as fit in %d", len(got), list, xattrListMax)
	}
	if names["system.posix_acl_access"] || !names["system.posix_acl_default"] {
		t.Errorf("kept the invalid access ACL or left out the valid default one: %v", names["system.posix_acl_access"])
	}
	joined := strings.Join(warnings, "\n")
	if len(warnings) != 2 || !strings.Contains(joined, "system.posix_acl_access: not a version 2 ACL") || !strings.Contains(joined, "pass the 65536 bytes a file may list") {
		t.Errorf("warnings %q", warnings)
	}
}
