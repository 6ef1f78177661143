package events_test

import (
	"testing"

	"github.com/acidic-go/acidic/events"
)

func TestBusDropsAndCounts(t *testing.T) {
	var b events.Bus
	full := b.Subscribe(events.Options{Buffer: 2})
	only := b.Subscribe(events.Options{Kinds: []events.Kind{events.RunFinished}})
	var calls int
	fn := b.Subscribe(events.Options{Func: func(ev events.Event) {
		calls++
		if ev.Kind == events.JobFailed {
			panic("subscriber bug")
		}
	}})
	for _, k := range []events.Kind{events.JobCompleted, events.JobFailed, events.JobSnoozed, events.RunFinished} {
		b.Publish(events.Event{Kind: k})
	}
	if len(full.C) != 2 || full.Dropped() != 2 {
		t.Fatalf("full: %d buffered, %d dropped", len(full.C), full.Dropped())
	}
	if len(only.C) != 1 || only.Dropped() != 0 {
		t.Fatalf("filtered: %d buffered, %d dropped", len(only.C), only.Dropped())
	}
	if calls != 4 || fn.Dropped() != 1 {
		t.Fatalf("func: %d calls, %d dropped", calls, fn.Dropped())
	}
	if b.Dropped() != 3 {
		t.Fatalf("bus dropped %d", b.Dropped())
	}
	full.Close()
	full.Close()
	if _, ok := <-full.C; !ok {
		t.Fatal("buffered events lost at close")
	}
	b.Publish(events.Event{Kind: events.JobCompleted}) // no send on a closed channel
	only.Close()
	fn.Close()
	if b.Active() {
		t.Fatal("active with no subscriber")
	}
	var nilBus *events.Bus
	nilBus.Publish(events.Event{})
}

// BenchmarkPublishNoSubscriber is the cost of events when nobody listens:
// what every attempt and step pays (the engine checks Active first).
func BenchmarkPublishNoSubscriber(b *testing.B) {
	var bus events.Bus
	for b.Loop() {
		if bus.Active() {
			bus.Publish(events.Event{Kind: events.JobCompleted})
		}
	}
}

// BenchmarkPublishOneSubscriber is the cost of one event to one channel
// subscriber that reads.
func BenchmarkPublishOneSubscriber(b *testing.B) {
	var bus events.Bus
	s := bus.Subscribe(events.Options{})
	go func() {
		for range s.C {
		}
	}()
	for b.Loop() {
		bus.Publish(events.Event{Kind: events.JobCompleted})
	}
	s.Close()
}
