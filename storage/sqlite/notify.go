package sqlite

import (
	"context"
	"sync"

	"github.com/acidic-go/acidic/storage"
)

// SQLite has no LISTEN/NOTIFY: notifications go from the driver to the
// listeners of the same driver value, in this process (NotifyProcess). Inside
// a transaction they are kept until it commits, and dropped when it rolls
// back. Other processes on the file find the work by polling.

// maxPending bounds the notifications waiting in one listener. They are
// hints to look: a listener that falls this far behind loses the newest,
// and polling still finds the work.
const maxPending = 4096

// hub delivers the driver's notifications to its listeners.
type hub struct {
	mu        sync.Mutex
	listeners map[*listener]struct{}
	closed    bool
}

func (h *hub) init() { h.listeners = map[*listener]struct{}{} }

// publish delivers notes to every listener of their topics.
func (h *hub) publish(notes []storage.Notification) {
	if len(notes) == 0 {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for l := range h.listeners {
		l.deliver(notes)
	}
}

// close ends every listener's Wait.
func (h *hub) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for l := range h.listeners {
		l.shut()
	}
	h.listeners = map[*listener]struct{}{}
}

// NewListener returns a listener of this driver's notifications.
func (d *Driver) NewListener(ctx context.Context) (storage.Listener, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	l := &listener{h: &d.hub, topics: map[string]bool{}, wake: make(chan struct{}, 1)}
	d.hub.mu.Lock()
	defer d.hub.mu.Unlock()
	if d.hub.closed {
		return nil, errClosed()
	}
	d.hub.listeners[l] = struct{}{}
	return l, nil
}

type listener struct {
	h      *hub
	mu     sync.Mutex
	topics map[string]bool
	queue  []storage.Notification
	closed bool
	wake   chan struct{}
}

// deliver queues the notes of l's topics; the hub's lock is held.
func (l *listener) deliver(notes []storage.Notification) {
	l.mu.Lock()
	queued := false
	for _, n := range notes {
		if l.topics[n.Topic] && len(l.queue) < maxPending {
			l.queue = append(l.queue, n)
			queued = true
		}
	}
	l.mu.Unlock()
	if queued {
		select {
		case l.wake <- struct{}{}:
		default:
		}
	}
}

// shut ends the listener; the hub's lock is held.
func (l *listener) shut() {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// Listen subscribes to a topic.
func (l *listener) Listen(ctx context.Context, topic string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return errClosed()
	}
	l.topics[topic] = true
	return nil
}

// Wait returns the next notification, waiting until one arrives or ctx
// ends. A closed listener (or driver) returns acidic.ErrClosed.
func (l *listener) Wait(ctx context.Context) (storage.Notification, error) {
	for {
		l.mu.Lock()
		if len(l.queue) > 0 {
			n := l.queue[0]
			l.queue = l.queue[1:]
			if len(l.queue) == 0 {
				l.queue = nil
			}
			l.mu.Unlock()
			return n, nil
		}
		closed := l.closed
		l.mu.Unlock()
		if closed {
			return storage.Notification{}, errClosed()
		}
		select {
		case <-ctx.Done():
			return storage.Notification{}, ctx.Err()
		case <-l.wake:
		}
	}
}

// Close stops the listener.
func (l *listener) Close(context.Context) error {
	l.h.mu.Lock()
	delete(l.h.listeners, l)
	l.shut()
	l.h.mu.Unlock()
	return nil
}
