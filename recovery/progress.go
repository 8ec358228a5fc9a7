package recovery

import "sync"

// progress serialises the calls of Options.Progress from the workers.
type progress struct {
	mu    sync.Mutex
	fn    func(phase string, done, total int64)
	phase string
	done  int64
	total int64
}

func newProgress(fn func(phase string, done, total int64)) *progress {
	if fn == nil {
		return nil
	}
	return &progress{fn: fn}
}

// start begins a phase of total bytes.
func (p *progress) start(phase string, total int64) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.phase, p.done, p.total = phase, 0, total
	p.fn(phase, 0, total)
}

// add counts n more bytes of the phase done.
func (p *progress) add(n int64) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done = min(p.done+n, p.total)
	p.fn(p.phase, p.done, p.total)
}
