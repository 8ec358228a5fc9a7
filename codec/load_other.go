//go:build !(amd64 || arm64) || purego

package codec

import "encoding/binary"

// The checked twins of load_le.go's functions.

func load64(b []byte, i int) uint64 { return binary.LittleEndian.Uint64(b[i:]) }

func load32(b []byte, i int) uint32 { return binary.LittleEndian.Uint32(b[i:]) }

func store64(b []byte, i int, v uint64) { binary.LittleEndian.PutUint64(b[i:], v) }

func store16(b []byte, i int, v uint16) { binary.LittleEndian.PutUint16(b[i:], v) }

func tableAt(t []uint32, h uint64) *uint32 { return &t[h] }
