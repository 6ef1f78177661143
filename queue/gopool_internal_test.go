package queue

import (
	"runtime"
	"sync"
	"testing"
	"time"
)

// TestGoPoolReusesAndEnds: a function run after another returned runs on
// the same goroutine (its stack kept); as many goroutines are kept as ran
// at once; close ends the idle ones and, once it returns, the busy one;
// after close, run still runs what it is given.
func TestGoPoolReusesAndEnds(t *testing.T) {
	before := runtime.NumGoroutine()
	p := newGoPool()
	ids := make(chan uint64, 1)
	id := func() { ids <- goid() }
	p.run(id)
	first := <-ids
	waitIdle(t, p, 1)
	p.run(id)
	if again := <-ids; again != first {
		t.Fatalf("second function ran on goroutine %d, want %d (the kept one)", again, first)
	}
	waitIdle(t, p, 1)

	// Three at once: three goroutines, all kept.
	var started, release sync.WaitGroup
	started.Add(3)
	release.Add(1)
	for range 3 {
		p.run(func() { started.Done(); release.Wait() })
	}
	started.Wait()
	if n := p.size(); n != 0 {
		t.Fatalf("%d idle while three run", n)
	}
	release.Done()
	waitIdle(t, p, 3)

	// One busy when the pool closes: it ends once its function returns.
	block := make(chan struct{})
	p.run(func() { <-block })
	waitIdle(t, p, 2)
	p.close()
	p.close()
	waitIdle(t, p, 0)
	close(block)
	ran := make(chan struct{})
	p.run(func() { close(ran) })
	<-ran
	for deadline := time.Now().Add(10 * time.Second); runtime.NumGoroutine() > before; {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines after close, %d before", runtime.NumGoroutine(), before)
		}
		time.Sleep(time.Millisecond)
	}
}

func waitIdle(t *testing.T, p *goPool, n int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); p.size() != n; {
		if time.Now().After(deadline) {
			t.Fatalf("%d idle goroutines, want %d", p.size(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// goid is the calling goroutine's id, read from its stack trace's header
// ("goroutine 42 [running]:").
func goid() uint64 {
	var buf [32]byte
	b := buf[:runtime.Stack(buf[:], false)]
	var id uint64
	for _, c := range b[len("goroutine "):] {
		if c < '0' || c > '9' {
			break
		}
		id = id*10 + uint64(c-'0')
	}
	return id
}
