//go:build !amd64 || !gc || noasm

package codec

func decodeLZ4X(dst, src []byte) error { return decodeLZ4XGo(dst, src) }
