package writer

import (
	"context"
	"sync"

	"arc/codec"
	"arc/format"
)

// bufPool recycles block-sized buffers.
type bufPool struct {
	size int
	pool sync.Pool
}

func (b *bufPool) get() []byte {
	if v := b.pool.Get(); v != nil {
		return *(v.(*[]byte))
	}
	return make([]byte, b.size)
}

func (b *bufPool) put(p []byte) {
	if cap(p) >= b.size {
		p = p[:b.size]
		b.pool.Put(&p)
	}
}

// blockJob is one block on its way through a compressor to the volumes.
type blockJob struct {
	raw    []byte
	stored []byte // aliases raw when the codec is raw, else an out buffer
	id     uint8
	sum    uint64
	done   chan struct{}
}

// blockPipeline compresses blocks on a worker pool and writes them to the
// volumes in stream order (write-behind), with a bounded number in flight.
type blockPipeline struct {
	ctx     context.Context
	rawBufs *bufPool
	outBufs *bufPool
	work    chan *blockJob
	order   chan *blockJob
	workers sync.WaitGroup
	writer  sync.WaitGroup
	err     error // first write error, set by the writer goroutine
	failed  chan struct{}
	blocks  format.Blocks
	stored  int64
}

func newBlockPipeline(ctx context.Context, opt *Options, vw *volumeWriter) *blockPipeline {
	b := &blockPipeline{
		ctx:     ctx,
		rawBufs: &bufPool{size: int(opt.BlockSize)},
		outBufs: &bufPool{size: int(opt.BlockSize)},
		work:    make(chan *blockJob, opt.Workers),
		order:   make(chan *blockJob, 2*opt.Workers+2),
		failed:  make(chan struct{}),
	}
	for w := 0; w < opt.Workers; w++ {
		b.workers.Add(1)
		go func() {
			defer b.workers.Done()
			enc, _ := codec.NewEncoder(opt.Codec) // options were validated
			for j := range b.work {
				j.sum = codec.Checksum(j.raw)
				id, stored := enc.Encode(j.raw)
				j.id = id
				if id == format.CodecRaw {
					j.stored = j.raw
				} else {
					out := b.outBufs.get()[:len(stored)]
					copy(out, stored)
					j.stored = out
				}
				close(j.done)
			}
		}()
	}
	b.writer.Add(1)
	go func() {
		defer b.writer.Done()
		for j := range b.order {
			<-j.done
			if b.err == nil {
				if _, err := vw.Write(j.stored); err != nil {
					b.err = err
					close(b.failed)
				}
				b.blocks.Codec = append(b.blocks.Codec, j.id)
				b.blocks.RawSize = append(b.blocks.RawSize, uint32(len(j.raw)))
				b.blocks.StoredSize = append(b.blocks.StoredSize, uint32(len(j.stored)))
				b.blocks.Sum = append(b.blocks.Sum, j.sum)
				b.stored += int64(len(j.stored))
			}
			if j.id != format.CodecRaw {
				b.outBufs.put(j.stored)
			}
			b.rawBufs.put(j.raw)
		}
	}()
	return b
}

// submit queues a full block; it blocks while too many are in flight.
func (b *blockPipeline) submit(raw []byte) error {
	j := &blockJob{raw: raw, done: make(chan struct{})}
	select {
	case b.order <- j:
	case <-b.failed:
		return b.err
	case <-b.ctx.Done():
		return b.ctx.Err()
	}
	select {
	case b.work <- j:
		return nil
	case <-b.failed:
	case <-b.ctx.Done():
	}
	// Queued for writing but never compressed: release the writer, which
	// drops blocks once the pipeline has failed.
	j.stored = nil
	close(j.done)
	if b.err != nil {
		return b.err
	}
	return b.ctx.Err()
}

// close waits for every queued block to be written.
func (b *blockPipeline) close() error {
	close(b.work)
	close(b.order)
	b.workers.Wait()
	b.writer.Wait()
	return b.err
}

// abort stops the pipeline after an error; blocks in flight are dropped.
func (b *blockPipeline) abort() {
	close(b.work)
	close(b.order)
	b.workers.Wait()
	b.writer.Wait()
}
