package writer

import (
	"bytes"
	"slices"
)

// nodeList holds the tree's nodes in chunks of a fixed size. Appending
// never moves a node: a slice of a million nodes (136 bytes each, with
// pointers) grown by append was copied again and again into fresh,
// zeroed memory, 3.4 s of the 19 s of CPU that packing a million-member
// tar stream took, on the one goroutine that reads the stream. A chunk
// list also holds no spare room past its last chunk.
//
// It is not safe for concurrent use: the scan appends and reads under
// its lock, and packing reads it once the tree is complete.
type nodeList struct {
	chunks [][]node
	n      int32
}

// nodeChunkBits: 4,096 nodes, about 560 KB a chunk.
const nodeChunkBits = 12

// newNodeList returns a list holding ns, in order.
func newNodeList(ns ...node) *nodeList {
	l := &nodeList{}
	l.add(ns...)
	return l
}

// len is the number of nodes.
func (l *nodeList) len() int32 { return l.n }

// at returns node i, valid for as long as the list is.
func (l *nodeList) at(i int32) *node {
	return &l.chunks[i>>nodeChunkBits][i&(1<<nodeChunkBits-1)]
}

// add appends ns and returns the index of the first.
func (l *nodeList) add(ns ...node) int32 {
	first := l.n
	for len(ns) > 0 {
		if int(l.n)>>nodeChunkBits == len(l.chunks) {
			l.chunks = append(l.chunks, make([]node, 0, 1<<nodeChunkBits))
		}
		last := &l.chunks[len(l.chunks)-1]
		k := min(len(ns), cap(*last)-len(*last))
		*last = append(*last, ns[:k]...)
		ns = ns[k:]
		l.n += int32(k)
	}
	return first
}

// sortChildren puts every directory's children in name order, the order
// of the index's dirents.
func (l *nodeList) sortChildren() {
	for _, chunk := range l.chunks {
		for i := range chunk {
			if c := chunk[i].children; len(c) > 1 {
				slices.SortFunc(c, func(a, b int32) int { return bytes.Compare(l.at(a).name, l.at(b).name) })
			}
		}
	}
}
