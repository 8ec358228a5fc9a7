package writer

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"os/user"
	"slices"
	"strconv"
	"strings"
)

// POSIX ACL entry tags, as the kernel's system.posix_acl_* xattrs store them.
const (
	aclUserObj  = 0x01
	aclUser     = 0x02
	aclGroupObj = 0x04
	aclGroup    = 0x08
	aclMask     = 0x10
	aclOther    = 0x20
	aclNoID     = 0xFFFFFFFF
	aclVersion  = 2
)

// aclFromText converts an ACL in the text form tar's SCHILY.acl records hold
// ("user::rw-,user:1000:r--,group::r--,mask::r--,other::r--", entries split
// by commas or newlines, "#" comments, names or numeric ids) into the
// kernel's binary xattr value: a version word, then tag, permission and id
// per entry, sorted by tag and id. A named user or group entry may carry
// its numeric id in a fourth field, as star and libarchive (bsdtar) write
// it ("user:alice:r--:1001"): the id is what the packing machine meant,
// and is taken over the name, which this machine may not know.
func aclFromText(text string) ([]byte, error) {
	type entry struct {
		tag  uint16
		perm uint16
		id   uint32
	}
	var ents []entry
	for _, f := range strings.FieldsFunc(text, func(r rune) bool { return r == ',' || r == '\n' }) {
		if i := strings.IndexByte(f, '#'); i >= 0 {
			f = f[:i]
		}
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		parts := strings.Split(f, ":")
		named := len(parts) == 4 && parts[1] != "" && slices.Contains([]string{"user", "u", "group", "g"}, parts[0])
		if len(parts) != 3 && !named {
			return nil, fmt.Errorf("ACL entry %q: want tag:qualifier:permissions", f)
		}
		if named {
			// The id, as the qualifier: numeric, so never looked up.
			if _, err := strconv.ParseUint(parts[3], 10, 32); err != nil {
				return nil, fmt.Errorf("ACL entry %q: id %q is not a number", f, parts[3])
			}
			parts[1] = parts[3]
		}
		perm, err := aclPerm(parts[2])
		if err != nil {
			return nil, fmt.Errorf("ACL entry %q: %w", f, err)
		}
		e := entry{perm: perm, id: aclNoID}
		qual := parts[1]
		switch parts[0] {
		case "user", "u":
			e.tag = aclUserObj
			if qual != "" {
				e.tag = aclUser
				if e.id, err = aclID(qual, false); err != nil {
					return nil, err
				}
			}
		case "group", "g":
			e.tag = aclGroupObj
			if qual != "" {
				e.tag = aclGroup
				if e.id, err = aclID(qual, true); err != nil {
					return nil, err
				}
			}
		case "mask", "m":
			e.tag = aclMask
		case "other", "o":
			e.tag = aclOther
		default:
			return nil, fmt.Errorf("ACL entry %q: unknown tag", f)
		}
		if e.tag&(aclMask|aclOther) != 0 && qual != "" {
			return nil, fmt.Errorf("ACL entry %q: %s takes no qualifier", f, parts[0])
		}
		ents = append(ents, e)
	}
	if len(ents) == 0 {
		return nil, fmt.Errorf("ACL %q has no entries", text)
	}
	slices.SortFunc(ents, func(a, b entry) int {
		if c := cmp.Compare(a.tag, b.tag); c != 0 {
			return c
		}
		return cmp.Compare(a.id, b.id)
	})
	out := binary.LittleEndian.AppendUint32(nil, aclVersion)
	for _, e := range ents {
		out = binary.LittleEndian.AppendUint16(out, e.tag)
		out = binary.LittleEndian.AppendUint16(out, e.perm)
		out = binary.LittleEndian.AppendUint32(out, e.id)
	}
	return out, nil
}

// aclPerm parses "rwx" with "-" for a missing permission.
func aclPerm(s string) (uint16, error) {
	var p uint16
	for _, c := range s {
		switch c {
		case 'r':
			p |= 4
		case 'w':
			p |= 2
		case 'x':
			p |= 1
		case '-':
		default:
			return 0, fmt.Errorf("permissions %q: want r, w, x or -", s)
		}
	}
	return p, nil
}

// aclID resolves a qualifier: a numeric id, else a name on this machine.
func aclID(q string, group bool) (uint32, error) {
	if n, err := strconv.ParseUint(q, 10, 32); err == nil {
		return uint32(n), nil
	}
	if group {
		g, err := user.LookupGroup(q)
		if err != nil {
			return 0, fmt.Errorf("group %q: %w", q, err)
		}
		n, err := strconv.ParseUint(g.Gid, 10, 32)
		return uint32(n), err
	}
	u, err := user.Lookup(q)
	if err != nil {
		return 0, fmt.Errorf("user %q: %w", q, err)
	}
	n, err := strconv.ParseUint(u.Uid, 10, 32)
	return uint32(n), err
}

// aclModeBits are the permission bits (0o777) a file has once the access
// ACL val (the kernel's xattr value) is set on it: the owner's, the mask's
// (else the owning group's) and the others' entries. ok is false when val
// lacks one of the entries every access ACL has.
func aclModeBits(val []byte) (bits uint32, ok bool) {
	owner, group, mask, other := -1, -1, -1, -1
	for b := val[min(4, len(val)):]; len(b) >= 8; b = b[8:] {
		perm := int(binary.LittleEndian.Uint16(b[2:]) & 7)
		switch binary.LittleEndian.Uint16(b) {
		case aclUserObj:
			owner = perm
		case aclGroupObj:
			group = perm
		case aclMask:
			mask = perm
		case aclOther:
			other = perm
		}
	}
	if owner < 0 || group < 0 || other < 0 {
		return 0, false
	}
	if mask >= 0 {
		group = mask
	}
	return uint32(owner<<6 | group<<3 | other), true
}

// validACL says what is wrong, if anything, with val as the value of a
// system.posix_acl_access or _default xattr, by the rules the kernel
// holds an ACL to (posix_acl_valid): version 2, whole entries, rwx
// permissions alone, and the tags in order: the owner, named users, the
// owning group, named groups, the mask (which named entries need), the
// others, one entry each but the named ones. A tar stream's SCHILY.xattr
// record may hold any bytes there; stored, they would come back as an
// xattr that neither extract nor the mount can give back.
func validACL(val []byte) error {
	if len(val) < 4 || binary.LittleEndian.Uint32(val) != aclVersion || (len(val)-4)%8 != 0 {
		return fmt.Errorf("not a version %d ACL of whole entries (%d bytes)", aclVersion, len(val))
	}
	// where: the tags that may come next, as the kernel's state.
	const (
		atOwner = iota
		atUsers
		atGroups
		atOther
		done
	)
	where, named := atOwner, false
	for b := val[4:]; len(b) > 0; b = b[8:] {
		tag, perm := binary.LittleEndian.Uint16(b), binary.LittleEndian.Uint16(b[2:])
		if perm&^7 != 0 {
			return fmt.Errorf("permissions %#o beyond rwx", perm)
		}
		ok := false
		switch tag {
		case aclUserObj:
			ok, where = where == atOwner, atUsers
		case aclUser:
			ok, named = where == atUsers, true
		case aclGroupObj:
			ok, where = where == atUsers, atGroups
		case aclGroup:
			ok, named = where == atGroups, true
		case aclMask:
			ok, where = where == atGroups, atOther
		case aclOther:
			ok = where == atOther || where == atGroups && !named
			where = done
		}
		if !ok {
			return fmt.Errorf("an entry of tag %#x out of place", tag)
		}
	}
	if where != done {
		return fmt.Errorf("no others entry at the end")
	}
	return nil
}
