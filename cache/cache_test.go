package cache

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const blk = 1024

// fill writes block key's expected content.
func fill(key uint32, dst []byte) {
	for i := range dst {
		dst[i] = byte(key) ^ byte(i*7)
	}
}

type counter struct {
	mu    sync.Mutex
	loads map[uint32]int
	total atomic.Int64
}

func newCounter() *counter { return &counter{loads: map[uint32]int{}} }

func (c *counter) load(key uint32, dst []byte) error {
	c.total.Add(1)
	c.mu.Lock()
	c.loads[key]++
	c.mu.Unlock()
	fill(key, dst)
	return nil
}

func newCache(t *testing.T, maxBytes int64, load func(uint32, []byte) error, mod ...func(*Config)) *Cache {
	t.Helper()
	cfg := Config{MaxBytes: maxBytes, Size: func(uint32) int { return blk }, Load: load, Workers: 2}
	for _, m := range mod {
		m(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func checkBlock(t testing.TB, b *Buf, key uint32) {
	want := make([]byte, blk)
	fill(key, want)
	if !bytes.Equal(b.Bytes(), want) {
		t.Errorf("block %d holds the wrong bytes", key)
	}
}

func TestConcurrentMissesLoadOnce(t *testing.T) {
	release := make(chan struct{})
	cnt := newCounter()
	c := newCache(t, 1<<20, func(k uint32, d []byte) error {
		<-release
		return cnt.load(k, d)
	})
	var wg sync.WaitGroup
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b, err := c.Get(7)
			if err != nil {
				t.Error(err)
				return
			}
			checkBlock(t, b, 7)
			b.Release()
		}()
	}
	time.Sleep(20 * time.Millisecond) // let the goroutines pile up on the miss
	close(release)
	wg.Wait()
	if n := cnt.total.Load(); n != 1 {
		t.Fatalf("%d loads for one key", n)
	}
}

func TestLoadErrorsReachEveryWaiterAndAreNotCached(t *testing.T) {
	fail := errors.New("bad block")
	var calls atomic.Int64
	c := newCache(t, 1<<20, func(k uint32, d []byte) error {
		calls.Add(1)
		time.Sleep(5 * time.Millisecond)
		return fail
	})
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := c.Get(1); !errors.Is(err, fail) {
				t.Errorf("got %v", err)
			}
		}()
	}
	wg.Wait()
	before := calls.Load()
	if _, err := c.Get(1); !errors.Is(err, fail) {
		t.Fatal(err)
	}
	if calls.Load() != before+1 {
		t.Fatal("a failed load was cached")
	}
}

func TestByteBoundHoldsUnderConcurrency(t *testing.T) {
	const max = 10 * blk
	cnt := newCounter()
	c := newCache(t, max, cnt.load)
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(g), 1))
			for i := 0; i < 2000; i++ {
				k := uint32(r.IntN(100))
				switch r.IntN(4) {
				case 0:
					c.Prefetch([]uint32{k, k + 1, k + 2})
				case 1:
					c.Consumed(k)
				default:
					b, err := c.Get(k)
					if err != nil {
						t.Error(err)
						return
					}
					checkBlock(t, b, k)
					b.Release()
				}
				if s := c.Stats(); s.Bytes > max {
					t.Errorf("cache holds %d bytes, bound %d", s.Bytes, max)
					return
				}
			}
		}(g)
	}
	wg.Wait()
	if s := c.Stats(); s.Evictions == 0 || s.BuffersRecycled == 0 {
		t.Fatalf("no evictions or no recycling: %+v", s)
	}
}

func TestHeldBufferSurvivesEviction(t *testing.T) {
	cnt := newCounter()
	c := newCache(t, 2*blk, cnt.load)
	b, err := c.Get(1)
	if err != nil {
		t.Fatal(err)
	}
	for k := uint32(2); k < 20; k++ { // evict block 1 many times over
		o, _ := c.Get(k)
		o.Release()
	}
	checkBlock(t, b, 1)
	b.Release()
}

func TestDropLetsABlockGoAtOnceButNotItsReferences(t *testing.T) {
	cnt := newCounter()
	c := newCache(t, 8*blk, cnt.load)
	held, err := c.Get(1)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := c.Get(2)
	b.Release()
	c.Drop(1)
	c.Drop(2)
	c.Drop(3) // not there: nothing happens
	if st := c.Stats(); st.Items != 0 || st.Bytes != 0 || st.Drops != 2 {
		t.Fatalf("after dropping both blocks: %d items, %d bytes, %d drops; want 0, 0, 2", st.Items, st.Bytes, st.Drops)
	}
	// Its buffer is not reused while a reference is out.
	for k := uint32(10); k < 30; k++ {
		o, _ := c.Get(k)
		o.Release()
	}
	checkBlock(t, held, 1)
	held.Release()
	// Prefetches pass a dropped block by.
	c.Prefetch([]uint32{2})
	waitIdle(t, c)
	if cnt.of(2) != 1 {
		t.Fatalf("block 2 loaded %d times after its drop and a prefetch, want 1", cnt.of(2))
	}
	// Asked for again, a dropped block is loaded again, and may be
	// prefetched again after.
	b, _ = c.Get(2)
	checkBlock(t, b, 2)
	b.Release()
	if cnt.of(2) != 2 {
		t.Fatalf("block 2 loaded %d times, want 2", cnt.of(2))
	}
	c.Drop(2)
	c.Get(4)
	c.Drop(4)
	c.Get(4) // revived
	c.Drop(2)
	c.Prefetch([]uint32{2, 5})
	waitIdle(t, c)
	if cnt.of(2) != 2 || cnt.of(5) != 1 {
		t.Fatalf("loads of 2 and 5: %d, %d; want 2 (gone) and 1", cnt.of(2), cnt.of(5))
	}
}

// A prefetch that Drop lets go while it is decoding is not kept once
// decoded (nobody will read it: the reader said so); one that a Get asked
// for in between is.
func TestAPrefetchDroppedWhileDecodingIsNotKept(t *testing.T) {
	gate := make(chan struct{})
	started := make(chan uint32, 2)
	cnt := newCounter()
	c := newCache(t, 8*blk, func(k uint32, d []byte) error {
		started <- k
		<-gate
		return cnt.load(k, d)
	})
	c.Prefetch([]uint32{1})
	<-started
	c.Drop(1)
	gate <- struct{}{}
	waitIdle(t, c)
	if st := c.Stats(); st.Items != 0 || cnt.of(1) != 1 {
		t.Fatalf("after a prefetch dropped mid-decode: %d items, %d loads; want 0 and 1", st.Items, cnt.of(1))
	}
	// Asked for while decoding: kept, and the Get served by it.
	c.Prefetch([]uint32{3})
	<-started
	c.Drop(3)
	got := make(chan *Buf)
	go func() {
		b, err := c.Get(3)
		if err != nil {
			t.Error(err)
		}
		got <- b
	}()
	for c.Stats().Misses == 0 { // the Get has joined the decode
		time.Sleep(time.Millisecond)
	}
	gate <- struct{}{}
	b := <-got
	checkBlock(t, b, 3)
	b.Release()
	if st := c.Stats(); st.Items != 1 || cnt.of(3) != 1 {
		t.Fatalf("a dropped prefetch a Get joined: %d items, %d loads; want 1 and 1", st.Items, cnt.of(3))
	}
}

// Lent counts the references Get handed out, however the block came
// (loaded, a hit, a load joined, a prefetch), until they are released;
// failed Gets and the cache's own references count not at all.
func TestLentCountsReferencesUntilReleased(t *testing.T) {
	fail := errors.New("bad block")
	gate := make(chan struct{})
	cnt := newCounter()
	c := newCache(t, 4*blk, func(k uint32, d []byte) error {
		switch k {
		case 66:
			return fail
		case 77:
			<-gate
		}
		return cnt.load(k, d)
	})
	lent := func(want int64) {
		t.Helper()
		if got := c.Stats().Lent; got != want {
			t.Fatalf("Lent = %d, want %d", got, want)
		}
	}
	var held []*Buf
	get := func(k uint32) {
		t.Helper()
		b, err := c.Get(k)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, b)
	}
	lent(0)
	get(1) // loaded
	get(1) // a hit
	lent(2)
	if _, err := c.Get(66); !errors.Is(err, fail) {
		t.Fatalf("Get(66) = %v, want %v", err, fail)
	}
	lent(2)
	// Two Gets joining one load in flight.
	var wg sync.WaitGroup
	bufs := make(chan *Buf, 2)
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b, err := c.Get(77)
			if err != nil {
				t.Error(err)
				return
			}
			bufs <- b
		}()
	}
	time.Sleep(20 * time.Millisecond)
	close(gate)
	wg.Wait()
	close(bufs)
	for b := range bufs {
		held = append(held, b)
	}
	lent(4)
	c.Prefetch([]uint32{5})
	waitFor(t, func() bool { return c.Contains(5) })
	get(5) // prefetched
	lent(5)
	for k := uint32(10); k < 30; k++ { // evict the held blocks
		get(k)
		held[len(held)-1].Release()
		held = held[:len(held)-1]
	}
	lent(5)
	for _, b := range held {
		b.Release()
	}
	lent(0)
	if s := c.Stats(); s.Evictions == 0 {
		t.Fatalf("nothing was evicted: %+v", s)
	}
}

// sequentialScan reads blocks 0..n-1 in order the way the reader does:
// prefetch a window ahead, read, then mark the block consumed.
func sequentialScan(t *testing.T, c *Cache, n, window uint32) {
	for k := uint32(0); k < n; k++ {
		var ahead []uint32
		for j := k + 1; j <= k+window && j < n; j++ {
			ahead = append(ahead, j)
		}
		c.Prefetch(ahead)
		b, err := c.Get(k)
		if err != nil {
			t.Fatal(err)
		}
		checkBlock(t, b, k)
		b.Release()
		c.Consumed(k)
	}
}

func TestSequentialScanOfTinyCacheDoesNotThrash(t *testing.T) {
	for _, window := range []uint32{2, 6, 40} { // 40: the window is far larger than the cache
		t.Run(fmt.Sprint("window ", window), func(t *testing.T) {
			cnt := newCounter()
			c := newCache(t, 4*blk, cnt.load)
			sequentialScan(t, c, 300, window)
			if n := cnt.total.Load(); n > 300+300/20 {
				t.Fatalf("%d loads for 300 blocks: thrashing (%+v)", n, c.Stats())
			}
		})
	}
}

func TestConsumedBlocksGoFirst(t *testing.T) {
	cnt := newCounter()
	c := newCache(t, 3*blk, cnt.load)
	for k := uint32(1); k <= 3; k++ {
		b, _ := c.Get(k)
		b.Release()
	}
	c.Consumed(3) // the most recent, but consumed
	b, _ := c.Get(4)
	b.Release()
	if c.Contains(3) || !c.Contains(1) || !c.Contains(2) {
		t.Fatal("eviction did not take the consumed block first")
	}
}

// prefetchThenLoad prefetches blocks 10 and 11 into a cache of 4 blocks
// (half of it for read-ahead), then loads blocks 1 to n, reading neither.
func prefetchThenLoad(t *testing.T, n uint32) *Cache {
	t.Helper()
	cnt := newCounter()
	c := newCache(t, 4*blk, cnt.load, func(cfg *Config) { cfg.AheadShare = 0.5 })
	c.Prefetch([]uint32{10, 11})
	waitFor(t, func() bool { return c.Contains(10) && c.Contains(11) })
	for k := uint32(1); k <= n; k++ {
		b, _ := c.Get(k)
		b.Release()
	}
	return c
}

func TestUnreadPrefetchesAreKeptOverUsedBlocks(t *testing.T) {
	// Three loads: less than the cache's size loaded since the prefetch.
	c := prefetchThenLoad(t, 3)
	if !c.Contains(10) || !c.Contains(11) {
		t.Fatal("unread prefetched blocks were evicted before used ones")
	}
}

func TestStalePrefetchesAreEvictedBeforeUsedBlocks(t *testing.T) {
	// Six loads: more than the cache's size loaded since the prefetch,
	// which nobody read.
	c := prefetchThenLoad(t, 6)
	if c.Contains(10) || c.Contains(11) || !c.Contains(5) || !c.Contains(6) {
		t.Fatalf("stale prefetches kept over used blocks: %+v", c.Stats())
	}
	if st := c.Stats(); st.PrefetchUnread != 2 || c.Payoff() != -2 {
		t.Fatalf("unread %d, payoff %d: want 2, -2", st.PrefetchUnread, c.Payoff())
	}
}

// waitIdle waits until no prefetch is queued or being decoded.
func waitIdle(t *testing.T, c *Cache) {
	t.Helper()
	waitFor(t, func() bool { st := c.Stats(); return st.Queued == 0 && st.InFlight == 0 })
}

func (c *counter) of(key uint32) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.loads[key]
}

func waitFor(t *testing.T, ok func() bool) {
	t.Helper()
	for i := 0; i < 500; i++ {
		if ok() {
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
	t.Fatal("timed out")
}

func TestPrefetchNeverBlocksAndDropsWhenFull(t *testing.T) {
	block := make(chan struct{})
	c := newCache(t, 1<<20, func(k uint32, d []byte) error {
		<-block
		fill(k, d)
		return nil
	}, func(cfg *Config) { cfg.Workers = 1; cfg.QueueLen = 2 })
	done := make(chan struct{})
	go func() {
		for k := uint32(0); k < 100; k++ {
			c.Prefetch([]uint32{k})
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Prefetch blocked on a full queue")
	}
	close(block)
	if s := c.Stats(); s.PrefetchDropped == 0 {
		t.Fatalf("nothing dropped: %+v", s)
	}
}

// A batch loader set after the start (a GPU engine that took time to set
// up) takes the prefetches asked for from then on; before it, each key
// was its own job for Load.
func TestBatchLoaderSetLaterTakesTheNextPrefetch(t *testing.T) {
	var mu sync.Mutex
	var batches [][]uint32
	cnt := newCounter()
	c := newCache(t, 1<<20, cnt.load)
	c.Prefetch([]uint32{1, 2, 3})
	waitFor(t, func() bool { return c.Contains(1) && c.Contains(2) && c.Contains(3) })
	if cnt.total.Load() != 3 {
		t.Fatalf("%d loads before the batch loader, want 3", cnt.total.Load())
	}
	c.SetLoadBatch(nil) // changes nothing
	c.SetLoadBatch(func(keys []uint32, dsts [][]byte) []error {
		mu.Lock()
		batches = append(batches, append([]uint32(nil), keys...))
		mu.Unlock()
		for i, k := range keys {
			fill(k, dsts[i])
		}
		return nil
	})
	c.Prefetch([]uint32{3, 4, 5, 6})
	waitFor(t, func() bool { return c.Contains(4) && c.Contains(5) && c.Contains(6) })
	mu.Lock()
	if len(batches) != 1 || !slices.Equal(batches[0], []uint32{4, 5, 6}) {
		t.Fatalf("batches %v, want [[4 5 6]]", batches)
	}
	mu.Unlock()
	if cnt.total.Load() != 3 {
		t.Fatalf("Load ran %d times, want still 3", cnt.total.Load())
	}
	if s := c.Stats(); s.Batches != 1 {
		t.Fatalf("Stats.Batches %d, want 1", s.Batches)
	}
	b, err := c.Get(5)
	if err != nil {
		t.Fatal(err)
	}
	checkBlock(t, b, 5)
	b.Release()
}

func TestBatchLoaderGetsTheWholePrefetch(t *testing.T) {
	var mu sync.Mutex
	var batches [][]uint32
	cnt := newCounter()
	c := newCache(t, 1<<20, cnt.load, func(cfg *Config) {
		cfg.LoadBatch = func(keys []uint32, dsts [][]byte) []error {
			mu.Lock()
			batches = append(batches, append([]uint32(nil), keys...))
			mu.Unlock()
			errs := make([]error, len(keys))
			for i, k := range keys {
				fill(k, dsts[i])
				if k == 13 {
					errs[i] = errors.New("bad 13")
				}
			}
			return errs
		}
	})
	c.Prefetch([]uint32{10, 11, 12, 13})
	waitFor(t, func() bool { return c.Contains(12) })
	mu.Lock()
	if len(batches) != 1 || len(batches[0]) != 4 {
		t.Fatalf("batches %v", batches)
	}
	mu.Unlock()
	b, err := c.Get(11)
	if err != nil {
		t.Fatal(err)
	}
	checkBlock(t, b, 11)
	b.Release()
	if cnt.total.Load() != 0 {
		t.Fatal("a prefetched block was loaded again")
	}
	if c.Contains(13) {
		t.Fatal("a failed batch member was cached")
	}
}

func TestGetWaitsForPrefetchInFlight(t *testing.T) {
	release := make(chan struct{})
	cnt := newCounter()
	c := newCache(t, 1<<20, func(k uint32, d []byte) error {
		<-release
		return cnt.load(k, d)
	})
	c.Prefetch([]uint32{5})
	waitFor(t, func() bool { return c.Stats().InFlight == 1 })
	getWhileLoading(t, c, 5, release)
	if n := cnt.total.Load(); n != 1 {
		t.Fatalf("%d loads", n)
	}
}

// getWhileLoading starts a Get of key, lets the load in flight finish by
// closing release, and checks what the Get returns.
func getWhileLoading(t *testing.T, c *Cache, key uint32, release chan struct{}) {
	t.Helper()
	got := make(chan error)
	go func() {
		b, err := c.Get(key)
		if err == nil {
			checkBlock(t, b, key)
			b.Release()
		}
		got <- err
	}()
	time.Sleep(10 * time.Millisecond)
	close(release)
	if err := <-got; err != nil {
		t.Fatal(err)
	}
}

func TestGetAfterCloseFails(t *testing.T) {
	cnt := newCounter()
	c := newCache(t, 1<<20, cnt.load)
	c.Close()
	if _, err := c.Get(1); !errors.Is(err, ErrClosed) {
		t.Fatal(err)
	}
	if c.Prefetch([]uint32{1}) {
		t.Fatal("prefetch accepted after Close")
	}
}

// failingBatchAfter gives the cache a batch loader that waits for gate,
// then fails every key (a batch decoder whose output fails its checks).
func failingBatchAfter(gate <-chan struct{}) func(*Config) {
	return func(cfg *Config) {
		cfg.LoadBatch = func(keys []uint32, dsts [][]byte) []error {
			<-gate
			errs := make([]error, len(keys))
			for i := range errs {
				errs[i] = errors.New("batch decoder failed")
			}
			return errs
		}
	}
}

func TestFailedPrefetchFallsBackToLoad(t *testing.T) {
	release := make(chan struct{})
	cnt := newCounter()
	c := newCache(t, 1<<20, cnt.load, failingBatchAfter(release))
	c.Prefetch([]uint32{1, 2})
	waitFor(t, func() bool { return c.Stats().InFlight == 2 })
	getWhileLoading(t, c, 2, release) // waits on the failing batch, then loads itself
	if n := cnt.total.Load(); n != 1 {
		t.Fatalf("%d demand loads", n)
	}
}

func TestReadOfAPrefetchInFlightCountsAsRead(t *testing.T) {
	cnt := newCounter()
	gate := make(chan struct{})
	c := newCache(t, 4*blk, func(k uint32, d []byte) error {
		if k == 10 {
			<-gate
		}
		return cnt.load(k, d)
	}, func(cfg *Config) { cfg.AheadShare = 0.5 })
	c.Prefetch([]uint32{10})
	waitFor(t, func() bool { return c.Stats().InFlight == 1 })
	got := make(chan *Buf)
	go func() { b, _ := c.Get(10); got <- b }()
	waitFor(t, func() bool { return c.Stats().Misses == 1 }) // waiting on the flight
	close(gate)
	b := <-got
	checkBlock(t, b, 10)
	b.Release()
	for k := uint32(1); k <= 6; k++ {
		b, _ := c.Get(k)
		b.Release()
	}
	if st := c.Stats(); st.PrefetchUnread != 0 || c.Payoff() != 1 {
		t.Errorf("block 10 was read, yet PrefetchUnread %d, Payoff %d", st.PrefetchUnread, c.Payoff())
	}
}

// A Get that waited for a prefetch which failed loads the block on the
// demand path, even when read-ahead asked for the key again meanwhile and
// that prefetch fails too (a batch decoder whose output fails its checks,
// where the CPU decodes the block fine): it goes round again instead of
// reporting the second prefetch's failure.
func TestGetAfterAFailedPrefetchLoadsEvenWhenAnotherFails(t *testing.T) {
	gate := make(chan struct{})
	cnt := newCounter()
	c := newCache(t, 1<<20, cnt.load, failingBatchAfter(gate))
	inFlight := func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		f, ok := c.flights[1]
		return ok && f.prefetch
	}
	waiting := func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		f, ok := c.flights[1]
		return ok && f.waiters == 1
	}
	var again sync.Once
	c.afterFailedPrefetch = func(key uint32) {
		again.Do(func() {
			// Read-ahead asks for the key again before Get's retry.
			c.Prefetch([]uint32{key, 3})
			waitFor(t, inFlight)
			go func() {
				waitFor(t, waiting)
				gate <- struct{}{}
			}()
		})
	}
	c.Prefetch([]uint32{1, 2}) // a batch: one key alone goes to Load
	waitFor(t, inFlight)
	go func() {
		waitFor(t, waiting)
		gate <- struct{}{}
	}()
	b, err := c.Get(1)
	if err != nil {
		t.Fatalf("Get after two failed prefetches: %v", err)
	}
	checkBlock(t, b, 1)
	b.Release()
	if cnt.total.Load() != 1 {
		t.Errorf("%d demand loads, want 1", cnt.total.Load())
	}
}

// The read-ahead share holds whatever the workers decode at once: two
// prefetch jobs decoded side by side take the share between them, not each
// the whole of it, and so never evict each other's unread blocks.
func TestPrefetchesDecodedAtOnceShareTheAheadShare(t *testing.T) {
	var inside atomic.Int32
	c := newCache(t, 8*blk, newCounter().load, func(cfg *Config) {
		cfg.LoadBatch = func(keys []uint32, dsts [][]byte) []error {
			// Wait (a while) for the other job to be decoding too, as
			// it would on another core.
			inside.Add(1)
			for i := 0; i < 100 && inside.Load() < 2; i++ {
				time.Sleep(2 * time.Millisecond)
			}
			for i, k := range keys {
				fill(k, dsts[i])
			}
			return make([]error, len(keys))
		}
	})
	// 6 of the 8 blocks are the ahead share.
	c.Prefetch([]uint32{0, 1, 2, 3, 4, 5})
	c.Prefetch([]uint32{10, 11, 12, 13, 14, 15})
	waitFor(t, func() bool { s := c.Stats(); return s.InFlight == 0 && s.Queued == 0 && s.PrefetchLoads > 0 })
	time.Sleep(20 * time.Millisecond)
	s := c.Stats()
	if s.PrefetchUnread != 0 || s.AheadBytes > 6*blk || s.PrefetchLoads > 6 {
		t.Errorf("%d prefetched, %d evicted unread, %d bytes ahead (share %d)", s.PrefetchLoads, s.PrefetchUnread, s.AheadBytes, 6*blk)
	}
}

// A loader that panics fails its block for every waiter: the process
// (a mount) lives on, no flight is left blocked, and the next Get tries
// again. A prefetch, single or batched, that panics does the same.
func TestLoaderPanicFailsTheBlockOnly(t *testing.T) {
	var panics atomic.Int64
	cnt := newCounter()
	load := func(k uint32, d []byte) error {
		if k == 7 {
			panics.Add(1)
			time.Sleep(5 * time.Millisecond) // waiters join the flight
			panic("decoder bug")
		}
		return cnt.load(k, d)
	}
	batchPanics := func(cfg *Config) {
		cfg.LoadBatch = func(keys []uint32, dsts [][]byte) []error {
			for _, k := range keys {
				if k == 7 {
					panics.Add(1)
					var m map[int]int
					m[1] = 1 // a runtime panic, not a string
				}
			}
			errs := make([]error, len(keys))
			for i, k := range keys {
				errs[i] = cnt.load(k, dsts[i])
			}
			return errs
		}
	}
	c := newCache(t, 1<<20, load, batchPanics)
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := c.Get(7); !errors.Is(err, ErrLoaderPanic) {
				t.Errorf("Get(7) = %v, want ErrLoaderPanic", err)
			}
		}()
	}
	wg.Wait()
	b, err := c.Get(8)
	if err != nil {
		t.Fatal(err)
	}
	checkBlock(t, b, 8)
	b.Release()

	// Batched and single prefetches of the panicking block.
	before := panics.Load()
	c.Prefetch([]uint32{6, 7}) // fails both: the batch loader panicked
	// Wait for the batch's flights to end, not for its panic: the loader
	// counts the panic before the flight of 7 ends, and a Prefetch of 7
	// while it is still in flight is passed by (it failed here once, on
	// a loaded machine).
	waitIdle(t, c)
	if n := panics.Load(); n != before+1 {
		t.Fatalf("%d panics after the batch, want %d", n, before+1)
	}
	c.Prefetch([]uint32{7}) // one key: Load
	waitFor(t, func() bool { return panics.Load() == before+2 })
	if b, err := c.Get(6); err != nil {
		t.Fatalf("Get(6) after its batch panicked: %v", err)
	} else {
		checkBlock(t, b, 6)
		b.Release()
	}
	if _, err := c.Get(7); !errors.Is(err, ErrLoaderPanic) {
		t.Fatalf("Get(7) after prefetches = %v, want ErrLoaderPanic", err)
	}
	if c.Contains(7) {
		t.Fatal("a block whose loader panicked was cached")
	}
}

// A cache whose blocks move from one size class to another (a hostile
// index may give blocks any size) keeps no more than its bound of idle
// buffers across the classes, instead of the most each class ever held.
func TestIdleBuffersAcrossSizeClassesAreBounded(t *testing.T) {
	const max = 16 << 20
	sizes := []int{100 << 10, 200 << 10, 400 << 10, 800 << 10, 1600 << 10, 3200 << 10}
	c, err := New(Config{MaxBytes: max, Size: func(k uint32) int { return sizes[k>>16] },
		Load: func(k uint32, d []byte) error { d[0], d[len(d)-1] = byte(k), byte(k); return nil }, Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for class := range sizes {
		for i := range 2 * max / sizes[class] { // twice the cache's size of this class
			b, err := c.Get(uint32(class<<16 | i))
			if err != nil {
				t.Fatal(err)
			}
			b.Release()
		}
		idle := 0
		for _, s := range c.pool.slabs {
			if s != nil {
				idle += s.Idle()
			}
		}
		if idle > c.pool.idleMax {
			t.Fatalf("after blocks of %d KiB: %d MiB of idle buffers, bound %d MiB", sizes[class]>>10, idle>>20, c.pool.idleMax>>20)
		}
	}
}

// Blocks being decoded are memory too: a cache full of used blocks makes
// room before a load starts, so that the blocks it holds and those in
// flight (demand misses, prefetches, batches) stay within MaxBytes.
func TestLoadsInFlightCountTowardTheBound(t *testing.T) {
	const max = 8 * blk
	keys := []uint32{100, 101, 102, 103}
	for _, tc := range []struct {
		name  string
		batch bool
		start func(c *Cache)
	}{
		{"demand misses", false, func(c *Cache) {
			for _, k := range keys {
				go func() {
					if b, err := c.Get(k); err == nil {
						b.Release()
					}
				}()
			}
		}},
		{"prefetches", false, func(c *Cache) { c.Prefetch(keys) }},
		{"prefetch batch", true, func(c *Cache) { c.Prefetch(keys) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gate := make(chan struct{})
			var inFlight atomic.Int64 // bytes of the buffers being decoded
			load := func(k uint32, d []byte) error {
				if k >= 100 {
					inFlight.Add(int64(cap(d)))
					<-gate
				}
				fill(k, d)
				return nil
			}
			c := newCache(t, max, load, func(cfg *Config) {
				cfg.Workers = len(keys)
				if tc.batch {
					cfg.LoadBatch = func(ks []uint32, dsts [][]byte) []error {
						for _, d := range dsts {
							inFlight.Add(int64(cap(d)))
						}
						<-gate
						for i, k := range ks {
							fill(k, dsts[i])
						}
						return make([]error, len(ks))
					}
				}
			})
			defer close(gate)
			for k := uint32(0); k < max/blk; k++ { // full of used blocks
				b, err := c.Get(k)
				if err != nil {
					t.Fatal(err)
				}
				b.Release()
			}
			tc.start(c)
			waitFor(t, func() bool { return inFlight.Load() >= int64(len(keys))*blk })
			if held := c.Stats().Bytes; held+inFlight.Load() > max {
				t.Fatalf("%d bytes held and %d in flight: over the bound of %d", held, inFlight.Load(), max)
			}
		})
	}
}
