package queue

import (
	"slices"
	"sync"
)

// goPool runs the job attempts of one run of a client (Start to Stop) on
// goroutines it keeps for the next attempt once one returns, rather than
// on a new goroutine each: a new goroutine starts with a small stack, and
// an attempt whose middlewares go deep (an OpenTelemetry span's start and
// end take about 3 kB of stack) grows and copies it every time, a few µs
// per attempt. A kept goroutine keeps the stack it grew (until the garbage
// collector shrinks an idle one). It keeps at most as many goroutines as
// attempts ran at once; close ends the idle ones, and the others as their
// attempt returns.
type goPool struct {
	mu     sync.Mutex
	idle   []*pooled // waiting for work, the most recent last
	closed bool
	quit   chan struct{} // closed by close
}

// pooled is one kept goroutine; work hands it its next function.
type pooled struct{ work chan func() }

func newGoPool() *goPool { return &goPool{quit: make(chan struct{})} }

// run calls f on an idle goroutine, or on a new one when none is idle (or
// the pool is closed or nil). It does not wait for f.
func (p *goPool) run(f func()) {
	if p == nil {
		go f()
		return
	}
	p.mu.Lock()
	if n := len(p.idle); n > 0 && !p.closed {
		g := p.idle[n-1]
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		g.work <- f // buffered: never blocks
		return
	}
	closed := p.closed
	p.mu.Unlock()
	if closed {
		go f()
		return
	}
	go p.loop(f)
}

// loop is a kept goroutine: it calls f, then waits for the next function
// until the pool closes.
func (p *goPool) loop(f func()) {
	g := &pooled{work: make(chan func(), 1)}
	for {
		f()
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return
		}
		p.idle = append(p.idle, g)
		p.mu.Unlock()
		select {
		case f = <-g.work:
		case <-p.quit:
			p.mu.Lock()
			i := slices.Index(p.idle, g)
			if i >= 0 {
				p.idle = slices.Delete(p.idle, i, i+1)
			}
			p.mu.Unlock()
			if i >= 0 {
				return
			}
			f = <-g.work // run took it before close: its work is on the way
		}
	}
}

// close ends the idle goroutines, and each busy one once its function
// returns. Later calls to run start a goroutine each. Closing twice is
// fine.
func (p *goPool) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.closed {
		p.closed = true
		close(p.quit)
	}
}

// size is how many goroutines are idle (for tests).
func (p *goPool) size() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.idle)
}
