// Package cache keeps decoded blocks in memory, bounded in bytes.
//
// Blocks are identified by a uint32 key (the reader uses the block number).
// Who decodes is not this package's business: the cache calls a Load func for
// one block and, when the owner has one, a LoadBatch func for a whole prefetch
// batch (a GPU engine decodes hundreds of blocks per call). Concurrent misses
// of one key decode once; prefetches never block a reader.
//
// Eviction knows three tiers, evicted in this order:
//
//   - consumed: blocks a sequential reader has moved past (Consumed);
//   - used: blocks read at least once, in LRU order;
//   - ahead: prefetched blocks nobody has read yet.
//
// So a cache smaller than a file read sequentially drops what was read and
// keeps what is ahead, instead of thrashing. Prefetch never fills more than
// AheadShare of the cache, so it cannot evict its own earlier work. A
// prefetched block that readers went past, or that nobody read while the
// cache turned over, is stale and goes before the used blocks
// (staleLocked; Payoff keeps read-ahead's score for the caller).
package cache

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/golang-lru/v2/simplelru"
)

// ErrClosed is returned by Get after Close.
var ErrClosed = errors.New("cache closed")

// ErrLoaderPanic wraps the error of a block whose loader panicked.
var ErrLoaderPanic = errors.New("loader panicked")

// Config tells a Cache how big it may grow and how blocks are loaded.
type Config struct {
	// MaxBytes bounds the bytes of the decoded blocks the cache holds and
	// of those being decoded (buffer capacity is counted). Must be > 0.
	MaxBytes int64
	// Size returns the decoded size of block key; it sizes the buffer handed to Load.
	Size func(key uint32) int
	// Load decodes block key into dst (len(dst) == Size(key)). Called from
	// many goroutines at once.
	Load func(key uint32, dst []byte) error
	// LoadBatch, when set, decodes a prefetch batch in one call: errs[i]
	// belongs to keys[i]. Demand misses still use Load (one block, lowest
	// latency). SetLoadBatch sets it later.
	LoadBatch LoadBatchFunc
	// Workers serving the prefetch queue; 0 = GOMAXPROCS.
	Workers int
	// QueueLen bounds pending prefetch jobs; a Prefetch beyond it is
	// dropped. 0 = 64 per worker.
	QueueLen int
	// AheadShare is the fraction of MaxBytes that unread prefetched blocks
	// may occupy; 0 = 0.75.
	AheadShare float64
}

// Stats are counters since New.
type Stats struct {
	Hits, Misses     int64 // Get calls served from memory / not
	Loads            int64 // blocks decoded (demand and prefetch)
	PrefetchLoads    int64 // of Loads, by the prefetch workers
	Batches          int64 // prefetch jobs decoded by the batch loader
	PrefetchDropped  int64 // Prefetch calls dropped on a full queue
	Evictions        int64
	Bytes            int64 // now held
	Items            int
	InFlight         int
	Queued           int // keys asked for by Prefetch that no worker has taken yet
	AheadBytes       int64
	MaxBytes         int64
	LoadErrors       int64
	PrefetchSkipped  int64 // keys a prefetch skipped: present, in flight or over budget
	ConsumedDemoted  int64
	BuffersRecycled  int64
	BuffersAllocated int64
	Lent             int64 // references Get handed out that were not Released yet
	PrefetchUnread   int64 // prefetched blocks evicted before anyone read them
	Drops            int64 // blocks let go by Drop
}

type tier uint8

const (
	tierConsumed tier = iota
	tierUsed
	tierAhead
	nTiers
)

// flight is one load in progress; waiters registered before it completes
// each receive their own reference to the result. This is single-flight
// done by hand rather than with x/sync/singleflight: a shared result must
// carry one buffer reference per waiter, taken atomically with completion
// (else the buffer could be evicted and recycled between the load and a
// waiter's use of it), and a prefetch batch registers many keys in one go.
type flight struct {
	prefetch bool // a prefetch load: a waiter retries a failure itself
	done     chan struct{}
	waiters  int
	buf      *Buf
	err      error
}

// LoadBatchFunc decodes the blocks keys into dsts; errs[i] belongs to keys[i].
type LoadBatchFunc func(keys []uint32, dsts [][]byte) (errs []error)

// Cache is a byte-bounded cache of decoded blocks. Safe for concurrent use.
type Cache struct {
	cfg      Config
	aheadMax int64
	pool     *bufPool
	// loadBatch: Config.LoadBatch, or what SetLoadBatch set since.
	loadBatch atomic.Pointer[LoadBatchFunc]

	mu    sync.Mutex
	items map[uint32]*Buf
	tiers [nTiers]*simplelru.LRU[uint32, *Buf]
	bytes [nTiers]int64
	total int64
	// Clocks for staleLocked, in bytes (buffer capacity): of every block
	// loaded and of prefetched ones; the largest prefetch clock of a
	// prefetched block read, and the load clock when one was read last.
	loaded, prefetched int64
	readUpTo, readAt   int64
	aheadLoading       int64 // buffer bytes of the prefetches being decoded
	loading            int64 // buffer bytes of every load in flight: they count toward MaxBytes
	flights            map[uint32]*flight
	queued             map[uint32]struct{} // keys waiting in the prefetch queue
	// gone: a bit for each key Drop let go, which prefetches pass by
	// until a Get asks for it again (a bitset: keys are block numbers).
	gone   []uint64
	closed bool
	st     Stats
	// dropped counts blocks evicted and prefetched keys cut for lack of
	// room: a reader that skips asking again for what it asked before
	// asks again once this moves (see Dropped).
	dropped atomic.Uint64
	// payoff: read-ahead's recent record, +1 for each prefetched block
	// read, -1 for each evicted unread, within ±payoffMax (Payoff).
	payoff atomic.Int64

	queue chan []uint32
	quit  chan struct{}
	wg    sync.WaitGroup

	// afterFailedPrefetch, when set (by tests), runs in Get after it
	// waited for a prefetch of key that failed, before it tries again.
	afterFailedPrefetch func(key uint32)
}

// The buffers put back and kept for reuse (bufPool.trim) are held to a
// idleShare-th of MaxBytes, and not below idleMin: a cache evicts a block
// for each it loads, so in use few lie idle at a time.
const (
	idleShare = 4
	idleMin   = 8 << 20
)

// New starts a cache and its prefetch workers; Close stops them.
func New(cfg Config) (*Cache, error) {
	if cfg.MaxBytes <= 0 {
		return nil, fmt.Errorf("cache: size %d must be positive", cfg.MaxBytes)
	}
	if cfg.Size == nil || cfg.Load == nil {
		return nil, errors.New("cache: Size and Load are required")
	}
	if cfg.Workers <= 0 {
		cfg.Workers = runtime.GOMAXPROCS(0)
	}
	if cfg.QueueLen <= 0 {
		cfg.QueueLen = 64 * cfg.Workers
	}
	if cfg.AheadShare <= 0 || cfg.AheadShare > 1 {
		cfg.AheadShare = 0.75
	}
	c := &Cache{
		cfg:      cfg,
		aheadMax: int64(float64(cfg.MaxBytes) * cfg.AheadShare),
		pool:     &bufPool{idleMax: int(max(cfg.MaxBytes/idleShare, idleMin))},
		items:    map[uint32]*Buf{},
		flights:  map[uint32]*flight{},
		queued:   map[uint32]struct{}{},
		queue:    make(chan []uint32, cfg.QueueLen),
		quit:     make(chan struct{}),
	}
	if cfg.LoadBatch != nil {
		c.loadBatch.Store(&cfg.LoadBatch)
	}
	for i := range c.tiers {
		l, err := simplelru.NewLRU[uint32, *Buf](math.MaxInt, nil)
		if err != nil {
			return nil, err
		}
		c.tiers[i] = l
	}
	c.wg.Add(cfg.Workers)
	for i := 0; i < cfg.Workers; i++ {
		go c.worker()
	}
	return c, nil
}

// Close stops the prefetch workers, waits for them and drops every block.
// Buffers still held by callers stay valid until they are released.
func (c *Cache) Close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	c.mu.Unlock()
	close(c.quit)
	c.wg.Wait()
	c.mu.Lock()
	for k, b := range c.items {
		c.removeLocked(k, b)
	}
	c.mu.Unlock()
	c.pool.close()
}

// Get returns block key, loading it on a miss (or waiting for the load in
// flight). The caller must Release the buffer when done with its bytes.
func (c *Cache) Get(key uint32) (*Buf, error) {
	for joins := 1; ; joins++ {
		b, retry, err := c.get(key, joins <= maxPrefetchJoins)
		if !retry {
			if err == nil {
				c.pool.lent.Add(1)
			}
			return b, err
		}
		// A prefetch (perhaps a batch on another decoder) failed for
		// this key: load it on the demand path, which reports its own
		// error. Read-ahead may have asked for the key again meanwhile;
		// a failure of that prefetch sends this caller round again, a
		// bounded number of times.
		if c.afterFailedPrefetch != nil {
			c.afterFailedPrefetch(key)
		}
	}
}

// maxPrefetchJoins bounds the failed prefetches of one key a Get waits
// for before it reports the failure of the next.
const maxPrefetchJoins = 4

func (c *Cache) get(key uint32, mayRetry bool) (buf *Buf, retry bool, err error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, false, ErrClosed
	}
	if c.goneLocked(key) { // asked for again: prefetches may take it
		c.gone[key/64] &^= 1 << (key % 64)
	}
	if b, ok := c.items[key]; ok {
		c.st.Hits++
		if b.tier == tierAhead {
			c.readAheadLocked(key, b)
		} else {
			c.tiers[b.tier].Get(key) // refresh recency
		}
		b.refs.Add(1)
		c.mu.Unlock()
		return b, false, nil
	}
	c.st.Misses++
	if f, ok := c.flights[key]; ok {
		f.waiters++
		c.mu.Unlock()
		<-f.done
		if f.err != nil && f.prefetch && mayRetry {
			return nil, true, nil
		}
		if f.err == nil && f.prefetch {
			// Read as it arrived: no longer ahead.
			c.mu.Lock()
			if b, ok := c.items[key]; ok && b == f.buf && b.tier == tierAhead {
				c.readAheadLocked(key, b)
			}
			c.mu.Unlock()
		}
		return f.buf, false, f.err
	}
	f := &flight{done: make(chan struct{})}
	c.flights[key] = f
	c.loading += int64(classCap(c.cfg.Size(key)))
	c.evictLocked()
	c.mu.Unlock()

	buf = c.pool.get(c.cfg.Size(key))
	err = c.load(key, buf.data)
	c.complete(key, f, buf, err, tierUsed, 1)
	if err != nil {
		return nil, false, err
	}
	return buf, false, nil
}

// Contains reports whether key is in memory now (not counting loads in flight).
func (c *Cache) Contains(key uint32) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.items[key]
	return ok
}

// complete finishes flight f: on success the buffer joins tier t with one
// reference for the cache, one per waiter and own for the caller that loaded it.
func (c *Cache) complete(key uint32, f *flight, buf *Buf, err error, t tier, own int32) {
	c.mu.Lock()
	delete(c.flights, key)
	sz := int64(classCap(c.cfg.Size(key)))
	c.loading -= sz
	if f.prefetch {
		c.aheadLoading -= sz
	}
	c.st.Loads++
	if t == tierAhead {
		c.st.PrefetchLoads++
	}
	if err != nil {
		c.st.LoadErrors++
		f.err = err
		c.mu.Unlock()
		c.pool.put(buf)
		close(f.done)
		return
	}
	buf.key = key
	refs := own + int32(f.waiters)
	// A prefetch that Drop let go while it was decoding, and nobody
	// waits for: the reader said it will not ask again (a Get would have
	// taken the key back), so it is not kept, to sit unread, nor counted
	// among the loads that age the others.
	late := f.prefetch && refs == 0 && c.goneLocked(key)
	if late {
		c.st.PrefetchSkipped++
	} else {
		c.loaded += buf.cost()
		buf.loaded = c.loaded
		if t == tierAhead {
			c.prefetched += buf.cost()
			buf.prefetched = c.prefetched
		}
	}
	if !c.closed && !late {
		refs++
		buf.tier = t
		c.items[key] = buf
		c.tiers[t].Add(key, buf)
		c.bytes[t] += buf.cost()
		c.total += buf.cost()
	}
	buf.refs.Store(refs)
	c.evictLocked()
	c.mu.Unlock()
	f.buf = buf
	close(f.done)
	if refs == 0 { // closed or dropped, nobody waiting, a prefetch
		c.pool.put(buf)
	}
}

// Consumed tells the cache that a sequential reader has moved past key: it
// becomes the first candidate for eviction.
func (c *Cache) Consumed(key uint32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if b, ok := c.items[key]; ok && b.tier != tierConsumed {
		c.moveLocked(key, b, tierConsumed)
		c.st.ConsumedDemoted++
	}
}

// Drop lets block key go now, where it is in memory: a reader that knows
// it will not ask for key again (an extraction past the block's last
// use) frees its memory at once, rather than leave it to be evicted at
// the bound. Prefetches pass the key by from then on, until a Get asks
// for it: several readers' read-ahead windows trail one another, and a
// slow reader's would decode again what the others are done with, to
// sit unread in the prefetches' share. A load in flight goes on;
// references handed out stay good until released.
func (c *Cache) Drop(key uint32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	w := int(key / 64)
	if w >= len(c.gone) {
		c.gone = append(c.gone, make([]uint64, w+1-len(c.gone))...)
	}
	c.gone[w] |= 1 << (key % 64)
	if b, ok := c.items[key]; ok {
		c.removeLocked(key, b)
		c.st.Drops++
	}
}

// goneLocked reports whether Drop let key go and no Get asked for it since.
func (c *Cache) goneLocked(key uint32) bool {
	w := int(key / 64)
	return w < len(c.gone) && c.gone[w]&(1<<(key%64)) != 0
}

func (c *Cache) moveLocked(key uint32, b *Buf, to tier) {
	c.tiers[b.tier].Remove(key)
	c.bytes[b.tier] -= b.cost()
	b.tier = to
	c.tiers[to].Add(key, b)
	c.bytes[to] += b.cost()
}

func (c *Cache) removeLocked(key uint32, b *Buf) {
	c.tiers[b.tier].Remove(key)
	c.bytes[b.tier] -= b.cost()
	c.total -= b.cost()
	delete(c.items, key)
	b.unref() // the cache's own
}

// evictLocked drops blocks until the byte bound holds for them and the
// loads in flight: first what was consumed, then unread prefetches beyond
// their share or gone stale, then the least recently used, and unread
// prefetches last.
func (c *Cache) evictLocked() {
	for c.total+c.loading > c.cfg.MaxBytes {
		var t tier
		switch {
		case c.tiers[tierConsumed].Len() > 0:
			t = tierConsumed
		case c.bytes[tierAhead] > c.aheadMax || c.tiers[tierUsed].Len() == 0 || c.staleLocked():
			t = tierAhead
		default:
			t = tierUsed
		}
		if !c.evictOldestLocked(t) {
			return
		}
	}
}

// evictOldestLocked drops tier t's oldest block; false when t is empty.
func (c *Cache) evictOldestLocked(t tier) bool {
	k, b, ok := c.tiers[t].GetOldest()
	if !ok {
		return false
	}
	if t == tierAhead {
		c.st.PrefetchUnread++
		c.credit(-1)
	}
	c.removeLocked(k, b)
	c.st.Evictions++
	c.dropped.Add(1)
	return true
}

// staleLocked reports whether the oldest unread prefetch is stale, so
// that it goes before the used blocks: either prefetched blocks loaded
// more than the ahead share after it were read while it was not (readers
// went past it), or no prefetched block was read since it was loaded and
// more than the cache's size was loaded after it. Read-ahead for reads
// that only looked sequential (files whose pieces deduplication spread
// over the archive, read one after another) leaves such blocks behind;
// kept last, they would shrink the room for blocks actually read to a
// quarter. A sequential reader reads its window in load order, however
// much other readers load meanwhile, so its blocks stay.
func (c *Cache) staleLocked() bool {
	_, b, ok := c.tiers[tierAhead].GetOldest()
	if !ok {
		return false
	}
	return c.readUpTo-b.prefetched > c.aheadMax ||
		(c.readAt <= b.loaded && c.loaded-b.loaded > c.cfg.MaxBytes)
}

// readAheadLocked moves prefetched block b, now read, to the used tier.
func (c *Cache) readAheadLocked(key uint32, b *Buf) {
	c.moveLocked(key, b, tierUsed)
	c.credit(1)
	c.readUpTo = max(c.readUpTo, b.prefetched)
	c.readAt = c.loaded
}

const payoffMax = 64

// credit adds d to the payoff, within ±payoffMax; the caller holds c.mu
// (the payoff is atomic only for Payoff's readers).
func (c *Cache) credit(d int64) {
	c.payoff.Store(min(payoffMax, max(-payoffMax, c.payoff.Load()+d)))
}

// Payoff reports read-ahead's recent record: negative when more of the
// latest prefetched blocks were evicted unread than were read. Read
// without the cache's lock.
func (c *Cache) Payoff() int64 { return c.payoff.Load() }

// Dropped reports how many blocks were evicted or left out of a prefetch
// for lack of room so far. It only grows; read without the cache's lock.
func (c *Cache) Dropped() uint64 { return c.dropped.Load() }

// SetLoadBatch makes f the batch loader of the prefetches asked for from
// now on, as if it had been Config.LoadBatch (those queued before keep
// their one key each and go to Load); nil changes nothing. An owner whose
// batch decoder takes time to set up (a GPU's kernels) serves reads at
// once and lets the decoder take over when it is ready.
func (c *Cache) SetLoadBatch(f LoadBatchFunc) {
	if f != nil {
		c.loadBatch.Store(&f)
	}
}

// Prefetch asks the workers to load keys ahead of use. It never blocks: when
// the queue is full the request is dropped and Prefetch returns false. With
// a LoadBatch the keys go to it as one batch; otherwise each key is its own
// job so that the workers decode them in parallel.
func (c *Cache) Prefetch(keys []uint32) bool {
	if len(keys) == 0 {
		return true
	}
	// Keys present, loading or already queued are left out here, so that a
	// reader may ask for the same window on every block it enters.
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return false
	}
	var fresh []uint32
	for _, k := range keys {
		_, present := c.items[k]
		_, loading := c.flights[k]
		_, queued := c.queued[k]
		if !present && !loading && !queued && !c.goneLocked(k) {
			fresh = append(fresh, k)
		}
	}
	c.mu.Unlock()
	if len(fresh) == 0 {
		return true
	}
	if c.loadBatch.Load() != nil {
		return c.enqueue(fresh)
	}
	for i := range fresh {
		if !c.enqueue(fresh[i : i+1 : i+1]) {
			return false
		}
	}
	return true
}

func (c *Cache) enqueue(job []uint32) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	select {
	case c.queue <- job:
		for _, k := range job {
			c.queued[k] = struct{}{}
		}
		return true
	default:
		c.st.PrefetchDropped++
		return false
	}
}

func (c *Cache) worker() {
	defer c.wg.Done()
	for {
		select {
		case <-c.quit:
			return
		case job := <-c.queue:
			c.prefetch(job)
		}
	}
}

// prefetch loads the keys of one job that are neither present nor in
// flight, as long as unread prefetches stay within their share: a window
// larger than the cache is cut short rather than evicting its own head.
func (c *Cache) prefetch(job []uint32) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	for _, k := range job {
		delete(c.queued, k)
	}
	var keys []uint32
	var fl []*flight
	// The share counts the prefetches other workers are decoding too:
	// else each would take the whole of it, and once done they would
	// evict one another's unread blocks.
	budget := c.aheadMax - c.bytes[tierAhead] - c.aheadLoading
	for _, k := range job {
		if _, ok := c.items[k]; ok || c.goneLocked(k) { // gone: dropped since it was queued
			c.st.PrefetchSkipped++
			continue
		}
		if _, ok := c.flights[k]; ok {
			c.st.PrefetchSkipped++
			continue
		}
		sz := int64(classCap(c.cfg.Size(k)))
		if sz > budget {
			c.st.PrefetchSkipped++
			c.dropped.Add(1)
			break
		}
		budget -= sz
		c.aheadLoading += sz
		c.loading += sz
		f := &flight{done: make(chan struct{}), prefetch: true}
		c.flights[k] = f
		keys = append(keys, k)
		fl = append(fl, f)
	}
	c.evictLocked()
	c.mu.Unlock()
	if len(keys) == 0 {
		return
	}
	bufs := make([]*Buf, len(keys))
	dsts := make([][]byte, len(keys))
	for i, k := range keys {
		bufs[i] = c.pool.get(c.cfg.Size(k))
		dsts[i] = bufs[i].data
	}
	errs := make([]error, len(keys))
	if lb := c.loadBatch.Load(); lb != nil && len(keys) > 1 {
		c.mu.Lock()
		c.st.Batches++
		c.mu.Unlock()
		if e := loadBatch(*lb, keys, dsts); e != nil {
			copy(errs, e)
		}
	} else {
		for i, k := range keys {
			errs[i] = c.load(k, dsts[i])
		}
	}
	for i, k := range keys {
		c.complete(k, fl[i], bufs[i], errs[i], tierAhead, 0)
	}
}

// load is Config.Load with a panic turned into the block's error: a
// decoder bug met on hostile bytes must fail that block, not end the
// process (a mount) or leave the flight's waiters blocked for good.
func (c *Cache) load(key uint32, dst []byte) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("block %d: %w: %v", key, ErrLoaderPanic, r)
		}
	}()
	return c.cfg.Load(key, dst)
}

// loadBatch is load for a batch loader: a panic fails every key of it.
func loadBatch(lb LoadBatchFunc, keys []uint32, dsts [][]byte) (errs []error) {
	defer func() {
		if r := recover(); r != nil {
			errs = make([]error, len(keys))
			for i, k := range keys {
				errs[i] = fmt.Errorf("block %d: %w (batch): %v", k, ErrLoaderPanic, r)
			}
		}
	}()
	return lb(keys, dsts)
}

// Stats returns the counters.
func (c *Cache) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.st
	s.Bytes = c.total
	s.Items = len(c.items)
	s.InFlight = len(c.flights)
	s.Queued = len(c.queued)
	s.AheadBytes = c.bytes[tierAhead]
	s.MaxBytes = c.cfg.MaxBytes
	s.BuffersRecycled = c.pool.recycled.Load()
	s.BuffersAllocated = c.pool.allocated.Load()
	s.Lent = c.pool.lent.Load()
	return s
}
