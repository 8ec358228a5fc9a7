package writer

import (
	"cmp"
	"fmt"
	"os/user"
	"slices"
	"strconv"
	"strings"
	"time"

	"arc/format"
	"arc/writer/chunk"
)

// buildIndex turns the scanned tree and the packed content into the index.
// Dirents are laid out breadth-first so that each directory's children are
// one contiguous, name-sorted run; paths that share an inode (hardlinks)
// share one inode row.
func (p *packer) buildIndex() (*format.Index, error) {
	x := &format.Index{}
	in := &x.Inodes
	// Every node but the skipped makes a dirent, and at most an inode:
	// sized once, the columns of a million entries are not grown (and
	// copied, and left behind) twenty times over.
	nodes := int(p.nodes.len())
	in.Mode, in.UID, in.GID = make([]uint32, 0, nodes), make([]uint32, 0, nodes), make([]uint32, 0, nodes)
	in.Mtime, in.Atime = make([]int64, 0, nodes), make([]int64, 0, nodes)
	in.Size, in.Rdev, in.DataStart = make([]uint64, 0, nodes), make([]uint64, 0, nodes), make([]uint64, 0, nodes)
	in.DataCount, in.XattrStart, in.XattrCount = make([]uint32, 0, nodes), make([]uint32, 0, nodes), make([]uint32, 0, nodes)
	x.Dirents.Inode, x.Dirents.NameStart, x.Dirents.NameLen = make([]uint32, 0, nodes), make([]uint64, 0, nodes), make([]uint16, 0, nodes)
	blob := make([]byte, 0, 1<<16)
	addBlob := func(b []byte) uint64 {
		off := uint64(len(blob))
		blob = append(blob, b...)
		return off
	}
	uids, gids := map[uint32]bool{}, map[uint32]bool{}

	linked := map[inodeKey]uint32{}
	newInode := func(ni int32) uint32 {
		n := p.nodes.at(ni)
		ino := uint32(len(in.Mode))
		in.Mode = append(in.Mode, n.mode)
		in.UID = append(in.UID, n.uid)
		in.GID = append(in.GID, n.gid)
		in.Mtime = append(in.Mtime, n.mtime)
		in.Atime = append(in.Atime, n.atime)
		if n.implied {
			x.Implied = append(x.Implied, ino) // increasing, as inodes are made
		}
		uids[n.uid], gids[n.gid] = true, true
		var size, rdev, ds uint64
		var dc uint32
		switch n.mode & format.ModeType {
		case format.ModeReg:
			size = uint64(n.size)
			ds, dc = uint64(p.extStart[ni]), p.extCount[ni]
		case format.ModeLink:
			t := n.target()
			size = uint64(len(t))
			ds, dc = addBlob(t), uint32(len(t))
		case format.ModeChr, format.ModeBlk:
			rdev = n.rdev()
		}
		in.Size = append(in.Size, size)
		in.Rdev = append(in.Rdev, rdev)
		in.DataStart = append(in.DataStart, ds)
		in.DataCount = append(in.DataCount, dc)
		in.XattrStart = append(in.XattrStart, uint32(x.Xattrs.Count()))
		xs := n.xattrs()
		in.XattrCount = append(in.XattrCount, uint32(len(xs)))
		for _, a := range xs {
			x.Xattrs.NameStart = append(x.Xattrs.NameStart, addBlob(a.name))
			x.Xattrs.NameLen = append(x.Xattrs.NameLen, uint32(len(a.name)))
			x.Xattrs.ValStart = append(x.Xattrs.ValStart, addBlob(a.value))
			x.Xattrs.ValLen = append(x.Xattrs.ValLen, uint32(len(a.value)))
		}
		return ino
	}
	inodeFor := func(ni int32) uint32 {
		n := p.nodes.at(ni)
		if n.isDir() || n.nlink < 2 {
			return newInode(ni)
		}
		k := inodeKey{n.dev, n.ino}
		if ino, ok := linked[k]; ok {
			p.res.Hardlinks++
			return ino
		}
		ino := newInode(ni)
		linked[k] = ino
		return ino
	}

	d := &x.Dirents
	order := make([]int32, 1, nodes)
	d.Inode = append(d.Inode, inodeFor(0))
	d.NameStart = append(d.NameStart, 0)
	d.NameLen = append(d.NameLen, 0)
	for q := 0; q < len(order); q++ {
		n := p.nodes.at(order[q])
		switch n.mode & format.ModeType {
		case format.ModeDir:
			if q > 0 {
				p.res.Dirs++
			}
		case format.ModeReg:
			p.res.Files++
		case format.ModeLink:
			p.res.Symlinks++
		default:
			p.res.Others++
		}
		if !n.isDir() {
			continue
		}
		ino := d.Inode[q]
		start := len(order)
		for _, c := range n.children {
			if p.nodes.at(c).skip {
				continue
			}
			order = append(order, c)
			d.Inode = append(d.Inode, inodeFor(c))
			d.NameStart = append(d.NameStart, addBlob(p.nodes.at(c).name))
			d.NameLen = append(d.NameLen, uint16(len(p.nodes.at(c).name)))
		}
		in.DataStart[ino] = uint64(start)
		in.DataCount[ino] = uint32(len(order) - start)
	}

	x.Extents = format.Extents{Off: p.extOff, Len: p.extLen}
	x.Blocks = p.blocks
	x.Frames = p.frames
	x.Blob = blob
	x.Users = ownerNames(uids, func(id string) (string, error) {
		if name, ok := p.tarOwner(id, false); ok {
			return name, nil
		}
		u, err := user.LookupId(id)
		if err != nil {
			return "", err
		}
		return u.Username, nil
	})
	x.Groups = ownerNames(gids, func(id string) (string, error) {
		if name, ok := p.tarOwner(id, true); ok {
			return name, nil
		}
		g, err := user.LookupGroupId(id)
		if err != nil {
			return "", err
		}
		return g.Name, nil
	})

	o := p.opt
	x.Params = append([]format.KV{
		{Key: "frame-size", Value: strconv.FormatInt(o.FrameSize, 10)},
		{Key: "block-size", Value: strconv.FormatInt(o.BlockSize, 10)},
		{Key: "volume-size", Value: strconv.FormatInt(o.VolumeSize, 10)},
		{Key: "order", Value: o.Order},
		{Key: "dedup", Value: p.dedupParam()},
		{Key: "created", Value: time.Now().UTC().Format(time.RFC3339Nano)},
		{Key: "tool", Value: o.Tool},
	}, o.Codec.Params()...)
	// What was left out, so that the archive says why a path is not in it.
	if !o.Exclude.Empty() {
		x.Params = append(x.Params, format.KV{Key: "exclude", Value: strings.Join(o.Exclude.Patterns(), "\n")})
	}
	if o.ExcludeCaches {
		x.Params = append(x.Params, format.KV{Key: "exclude-caches", Value: "on"})
	}
	if len(o.ExcludeIfPresent) > 0 {
		x.Params = append(x.Params, format.KV{Key: "exclude-if-present", Value: strings.Join(o.ExcludeIfPresent, "\n")})
	}
	r := &p.res
	x.Stats = []format.Stat{
		{Key: "files", Value: uint64(r.Files)},
		{Key: "dirs", Value: uint64(r.Dirs)},
		{Key: "symlinks", Value: uint64(r.Symlinks)},
		{Key: "others", Value: uint64(r.Others)},
		{Key: "hardlinks", Value: uint64(r.Hardlinks)},
		{Key: "skipped", Value: uint64(r.Skipped)},
		{Key: "excluded", Value: uint64(r.Excluded)},
		{Key: "input-bytes", Value: uint64(r.InputBytes)},
		{Key: "unique-bytes", Value: uint64(r.UniqueBytes)},
		{Key: "dup-files", Value: uint64(r.DupFiles)},
		{Key: "dup-bytes", Value: uint64(r.DupBytes)},
		{Key: "hole-bytes", Value: uint64(r.HoleBytes)},
		{Key: "segment-bytes", Value: uint64(r.SegmentBytes)},
		{Key: "segment-refs", Value: uint64(r.SegmentRefs)},
		{Key: "chunk-bytes", Value: uint64(r.ChunkBytes)},
		{Key: "chunk-refs", Value: uint64(r.ChunkRefs)},
		{Key: "stored-bytes", Value: uint64(r.StoredBytes)},
	}
	if err := x.Derive(); err != nil {
		return nil, fmt.Errorf("internal error: the index built is invalid: %w", err)
	}
	return x, nil
}

// dedupParam records which dedup layers ran and with what parameters.
func (p *packer) dedupParam() string {
	s := "file:blake3-256"
	if p.chunks != nil {
		c := p.chunkParams
		s += fmt.Sprintf(",chunk:%s,min=%d,avg=%d,max=%d,blake3-256", chunk.Algorithm, c.Min, c.Avg, c.Max)
	}
	if p.seg != nil {
		c := p.segCfg
		s += fmt.Sprintf(",segment:gear64,min=%d,sample=1/%d,table=%dx%d,history=%d", c.MinLen, 1<<c.SampleBits, 1<<c.TableBits, 4, c.History)
		if c.NearMin > 0 && c.NearMin < c.MinLen {
			s += fmt.Sprintf(",near=%d@%d", c.NearMin, c.NearDist)
		}
	}
	return s
}

// ownerNames resolves the ids used in the archive to names on this machine,
// so that extraction elsewhere can map them back.
func ownerNames(ids map[uint32]bool, lookup func(string) (string, error)) []format.Owner {
	var out []format.Owner
	for id := range ids {
		name, err := lookup(strconv.FormatUint(uint64(id), 10))
		if err != nil || name == "" || len(name) > 256 {
			continue
		}
		out = append(out, format.Owner{ID: id, Name: name})
	}
	slices.SortFunc(out, func(a, b format.Owner) int { return cmp.Compare(a.ID, b.ID) }) // deterministic
	return out
}
