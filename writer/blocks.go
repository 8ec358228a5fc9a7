package writer

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"arc/codec"
	"arc/format"
	"arc/internal/slab"
)

// BatchEncoder compresses many blocks in one call (Options.BatchEncoder; a
// GPU engine implements it without the writer importing OpenCL).
type BatchEncoder interface {
	// BatchBytes is how many raw bytes to gather per call: a device needs
	// hundreds of blocks at once to be fast, the writer bounds memory.
	BatchBytes() int
	// EncodeBatch returns, for each of raws, a codec id and the stored
	// bytes: raws[i] itself for format.CodecRaw, else fewer bytes than
	// raws[i] that codec.Decoder decodes back to raws[i] (the encoder need
	// not match the CPU's output byte for byte). opt is what the archive
	// was asked to use. On an error the writer compresses the whole batch
	// on the CPU.
	EncodeBatch(opt codec.Options, raws [][]byte) (ids []uint8, stored [][]byte, err error)
}

// blockJob is one block on its way through a compressor to the volumes.
type blockJob struct {
	raw    []byte
	stored []byte // aliases raw when the codec is raw, else an out buffer
	pooled bool   // stored came from outBufs
	id     uint8
	sum    uint64
	summed bool // sum is set (a batch computes it beside the encoder)
	done   chan struct{}
}

// blockPipeline compresses blocks on a worker pool, or in batches through
// a BatchEncoder, and writes them to the volumes in stream order
// (write-behind), with a bounded number in flight.
type blockPipeline struct {
	ctx context.Context
	// Block buffers, raw and compressed. They live in slabs outside the Go
	// heap (internal/slab): every byte of the unique stream passes through
	// two of them, and a sync.Pool, emptied at each collection, kept
	// handing out fresh heap pages, each a page fault on first touch.
	rawBufs *slab.Pool
	outBufs *slab.Pool
	work    chan *blockJob
	order   chan *blockJob
	workers sync.WaitGroup
	writer  sync.WaitGroup
	err     error // first write error, set by the writer goroutine
	failed  chan struct{}
	blocks  format.Blocks
	stored  int64

	// Batch mode (opt.BatchEncoder set): submit gathers pending until it
	// holds batchN blocks and hands it to a batcher goroutine.
	batchEnc BatchEncoder
	codec    codec.Options
	nWorkers int // compressors, and checksummers of a batch
	// batchFails counts batch answers in a row that failed or that
	// checkBatch refused; at batchFailLimit the encoder is not asked again
	// and the CPU compressors take every block.
	batchFails atomic.Int32
	batchN     int
	pending    []*blockJob
	batches    chan []*blockJob
	batchers   sync.WaitGroup
	closed     bool
}

// batchers is how many batches are encoded at once: while one is on the
// device, the next is packed and the previous collected.
const batchers = 2

func newBlockPipeline(ctx context.Context, opt *Options, vw *volumeWriter) *blockPipeline {
	inFlight := 2*opt.Workers + 2
	b := &blockPipeline{
		ctx:      ctx,
		rawBufs:  slab.New(int(opt.BlockSize)),
		outBufs:  slab.New(int(opt.BlockSize)),
		work:     make(chan *blockJob, opt.Workers),
		failed:   make(chan struct{}),
		batchEnc: opt.BatchEncoder,
		codec:    opt.Codec,
		nWorkers: opt.Workers,
	}
	if b.batchEnc != nil {
		b.batchN = max(1, b.batchEnc.BatchBytes()/int(opt.BlockSize))
		// One batch filling, one on the device, one waiting or being
		// written: the writer must not wait on a block of a batch that
		// submit cannot complete because the order queue is full.
		inFlight = max(inFlight, (batchers+1)*b.batchN)
		b.batches = make(chan []*blockJob)
		for w := 0; w < batchers; w++ {
			b.batchers.Add(1)
			go func() {
				defer b.batchers.Done()
				for jobs := range b.batches {
					b.encodeBatch(jobs)
				}
			}()
		}
	}
	b.order = make(chan *blockJob, inFlight)
	for w := 0; w < opt.Workers; w++ {
		b.workers.Add(1)
		go func() {
			defer b.workers.Done()
			enc, _ := codec.NewEncoder(opt.Codec) // options were validated
			for j := range b.work {
				if !j.summed {
					j.sum = codec.Checksum(j.raw)
				}
				id, stored := enc.Encode(j.raw)
				j.id = id
				if id == format.CodecRaw {
					j.stored = j.raw
				} else {
					out := b.outBufs.Get()[:len(stored)]
					copy(out, stored)
					j.stored, j.pooled = out, true
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
			if j.pooled {
				b.outBufs.Put(j.stored)
			}
			b.rawBufs.Put(j.raw)
		}
	}()
	return b
}

// encodeBatch compresses jobs through the BatchEncoder, checksumming them
// on the CPU meanwhile; a failed or malformed batch goes to the CPU
// compressors whole.
func (b *blockPipeline) encodeBatch(jobs []*blockJob) {
	raws := make([][]byte, len(jobs))
	for i, j := range jobs {
		raws[i] = j.raw
	}
	var sums sync.WaitGroup
	parts := min(b.nWorkers, len(jobs)) // --workers bounds the CPU used here too
	for p := 0; p < parts; p++ {
		sums.Add(1)
		go func() {
			defer sums.Done()
			for i := p; i < len(jobs); i += parts {
				jobs[i].sum, jobs[i].summed = codec.Checksum(jobs[i].raw), true
			}
		}()
	}
	var ids []uint8
	var stored [][]byte
	err := errBatchesGivenUp
	if b.batchFails.Load() < batchFailLimit {
		ids, stored, err = b.callBatchEncoder(raws)
		if err == nil {
			err = checkBatch(raws, ids, stored)
		}
		if err != nil {
			b.batchFails.Add(1)
		} else {
			b.batchFails.Store(0)
		}
	}
	sums.Wait()
	for i, j := range jobs {
		if err != nil {
			b.work <- j
			continue
		}
		j.id, j.stored = ids[i], stored[i]
		if j.id == format.CodecRaw {
			j.stored = j.raw
		}
		close(j.done)
	}
}

// callBatchEncoder hands raws to the BatchEncoder; a panic in it (a bug in
// an engine's host code, met on some input) is the batch's error, so the
// CPU compresses the batch, as after any other failure, instead of the
// process ending with its temporary volumes behind.
func (b *blockPipeline) callBatchEncoder(raws [][]byte) (ids []uint8, stored [][]byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			ids, stored, err = nil, nil, fmt.Errorf("batch encoder panicked: %v", r)
		}
	}()
	return b.batchEnc.EncodeBatch(b.codec, raws)
}

// batchFailLimit is how many failed or refused batches in a row make the
// writer stop asking its BatchEncoder.
const batchFailLimit = 3

var errBatchesGivenUp = errors.New("batch encoder given up after failed batches")

// checkBatch rejects an answer the format could not hold: each block is
// raw (its own bytes) or a compressed codec's bytes, fewer than the raw ones,
// LZ4 blocks keeping LZ4's end-of-block rules.
func checkBatch(raws [][]byte, ids []uint8, stored [][]byte) error {
	if len(ids) != len(raws) || len(stored) != len(raws) {
		return fmt.Errorf("batch encoder answered %d ids and %d blocks for %d", len(ids), len(stored), len(raws))
	}
	for i, id := range ids {
		switch id {
		case format.CodecRaw:
			if len(stored[i]) != len(raws[i]) {
				return fmt.Errorf("block %d of batch: raw with %d bytes, want %d", i, len(stored[i]), len(raws[i]))
			}
		case format.CodecLZ4, format.CodecLZ4X, format.CodecZstd:
			if len(stored[i]) == 0 || len(stored[i]) >= len(raws[i]) {
				return fmt.Errorf("block %d of batch: %d bytes compressed to %d", i, len(raws[i]), len(stored[i]))
			}
			// The format promises standard LZ4 blocks, which arc's decoder
			// would read even with this rule broken but liblz4 would not.
			if err := codec.CheckEndRules(id, stored[i], len(raws[i])); err != nil {
				return fmt.Errorf("block %d of batch: %w", i, err)
			}
		default:
			return fmt.Errorf("block %d of batch: unknown codec %d", i, id)
		}
	}
	return nil
}

// submit queues a full block; it blocks while too many are in flight.
func (b *blockPipeline) submit(raw []byte) error {
	j := &blockJob{raw: raw, done: make(chan struct{})}
	select {
	case b.order <- j:
	case <-b.failed:
		b.rawBufs.Put(raw) // never queued: the writer will not put it back
		return b.err
	case <-b.ctx.Done():
		b.rawBufs.Put(raw)
		return b.ctx.Err()
	}
	if b.batchEnc != nil {
		b.pending = append(b.pending, j)
		if len(b.pending) < b.batchN {
			return nil
		}
		return b.flushBatch()
	}
	select {
	case b.work <- j:
		return nil
	case <-b.failed:
	case <-b.ctx.Done():
	}
	// Queued for writing but never compressed: release the writer, which
	// drops blocks once the pipeline has failed.
	drop(j)
	return b.failure()
}

// failure is why the pipeline stopped: the writer's error once b.failed is
// closed (closing it publishes b.err), else the context's. Reading b.err
// without seeing b.failed closed would race with the writer setting it.
func (b *blockPipeline) failure() error {
	select {
	case <-b.failed:
		return b.err
	default:
		return b.ctx.Err()
	}
}

func drop(j *blockJob) {
	j.stored = nil
	close(j.done)
}

// flushBatch hands the pending blocks to a batcher.
func (b *blockPipeline) flushBatch() error {
	jobs := b.pending
	b.pending = nil
	if len(jobs) == 0 {
		return nil
	}
	select {
	case b.batches <- jobs:
		return nil
	case <-b.failed:
	case <-b.ctx.Done():
	}
	for _, j := range jobs {
		drop(j)
	}
	return b.failure()
}

// shutdown sends the last partial batch on (or drops it when the pipeline
// is failing), then stops the compressors and waits for the writer.
func (b *blockPipeline) shutdown() {
	if b.closed {
		return
	}
	b.closed = true
	if b.batchEnc != nil {
		_ = b.flushBatch()
		close(b.batches)
		b.batchers.Wait() // before close(work): a failed batch goes there
	}
	close(b.work)
	close(b.order)
	b.workers.Wait()
	b.writer.Wait()
	// Unmapped only when every buffer is back (the streamer's last one
	// included): see slab.Pool.Close.
	b.rawBufs.Close()
	b.outBufs.Close()
}

// close waits for every queued block to be written.
func (b *blockPipeline) close() error {
	b.shutdown()
	return b.err
}

// abort stops the pipeline after an error; blocks in flight are dropped.
func (b *blockPipeline) abort() { b.shutdown() }
