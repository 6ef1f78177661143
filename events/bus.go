package events

import (
	"sync"
	"sync/atomic"
	"time"
)

// DefaultBuffer is the channel size of a subscription that sets none.
const DefaultBuffer = 1024

// Options configure a subscription.
type Options struct {
	// Kinds to receive; empty means every kind.
	Kinds []Kind
	// Buffer is the channel's capacity. Default DefaultBuffer. A full
	// channel drops the event (counted).
	Buffer int
	// Func, when set, is called inline for every event instead of sending
	// it on a channel (Subscription.C is then nil). It runs on the engine's
	// goroutine, so it must return quickly and never block (record a
	// metric, bump a counter); a panic in it is recovered and counted as a
	// drop.
	Func func(Event)
}

// Subscription is one subscriber's stream.
type Subscription struct {
	// C receives the events (nil for a Func subscription). It is closed by
	// Close.
	C <-chan Event

	bus     *Bus
	ch      chan Event
	fn      func(Event)
	kinds   map[Kind]bool
	mu      sync.RWMutex // held to send; Close takes it to close ch
	closed  bool
	dropped atomic.Uint64
}

// Dropped is how many events this subscription lost: its channel was full,
// or its Func panicked.
func (s *Subscription) Dropped() uint64 { return s.dropped.Load() }

// Close ends the subscription and closes C. Closing twice is fine.
func (s *Subscription) Close() {
	s.bus.remove(s)
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.closed = true
		if s.ch != nil {
			close(s.ch)
		}
	}
}

// deliver hands ev to the subscriber without blocking.
func (s *Subscription) deliver(ev Event) bool {
	if s.kinds != nil && !s.kinds[ev.Kind] {
		return true
	}
	if s.fn != nil {
		return s.call(ev)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return true
	}
	select {
	case s.ch <- ev:
		return true
	default:
		s.dropped.Add(1)
		return false
	}
}

func (s *Subscription) call(ev Event) (ok bool) {
	defer func() {
		if recover() != nil {
			s.dropped.Add(1)
			ok = false
		}
	}()
	s.fn(ev)
	return true
}

// Bus fans events out to subscribers. The zero value is ready; a nil *Bus
// publishes nothing and refuses no call. It is safe for concurrent use.
type Bus struct {
	mu      sync.Mutex
	subs    atomic.Pointer[[]*Subscription] // copied on write; read without lock
	dropped atomic.Uint64
}

// Subscribe adds a subscriber.
func (b *Bus) Subscribe(opts Options) *Subscription {
	s := &Subscription{bus: b, fn: opts.Func}
	if len(opts.Kinds) > 0 {
		s.kinds = make(map[Kind]bool, len(opts.Kinds))
		for _, k := range opts.Kinds {
			s.kinds[k] = true
		}
	}
	if s.fn == nil {
		n := opts.Buffer
		if n <= 0 {
			n = DefaultBuffer
		}
		s.ch = make(chan Event, n)
		s.C = s.ch
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	var next []*Subscription
	if cur := b.subs.Load(); cur != nil {
		next = append(next, *cur...)
	}
	next = append(next, s)
	b.subs.Store(&next)
	return s
}

func (b *Bus) remove(s *Subscription) {
	b.mu.Lock()
	defer b.mu.Unlock()
	cur := b.subs.Load()
	if cur == nil {
		return
	}
	next := make([]*Subscription, 0, len(*cur))
	for _, x := range *cur {
		if x != s {
			next = append(next, x)
		}
	}
	if len(next) == 0 {
		b.subs.Store(nil)
		return
	}
	b.subs.Store(&next)
}

// Active reports whether anyone listens: publishers check it before
// building an event, so a bus without subscribers costs one atomic load.
func (b *Bus) Active() bool { return b != nil && b.subs.Load() != nil }

// Publish delivers ev to every subscriber that wants its kind, without
// blocking. A zero At is set to now.
func (b *Bus) Publish(ev Event) {
	if b == nil {
		return
	}
	subs := b.subs.Load()
	if subs == nil {
		return
	}
	if ev.At.IsZero() {
		ev.At = time.Now()
	}
	for _, s := range *subs {
		if !s.deliver(ev) {
			b.dropped.Add(1)
		}
	}
}

// Dropped is how many events all subscriptions of this bus lost.
func (b *Bus) Dropped() uint64 {
	if b == nil {
		return 0
	}
	return b.dropped.Load()
}
