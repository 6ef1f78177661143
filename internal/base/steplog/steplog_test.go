package steplog

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/acidic-go/acidic/storage"
)

// discard is a handler that wants nothing, as an engine logger at ERROR
// would for INFO records.
type discard struct{}

func (discard) Enabled(context.Context, slog.Level) bool  { return false }
func (discard) Handle(context.Context, slog.Record) error { return nil }
func (d discard) WithAttrs([]slog.Attr) slog.Handler      { return d }
func (d discard) WithGroup(string) slog.Handler           { return d }

func TestHandlerKeepsAttrsGroupsAndSkipsTheTags(t *testing.T) {
	t.Parallel()
	b := NewBuffer(2)
	// The first With is the context's tags (steps.Context.Logger).
	l := slog.New(b.Handler(discard{})).With("run", "r1", "step", "s")
	l.With("user", 7).WithGroup("req").Info("hello", "id", "x\x00y", slog.Group("g", "a", 1))
	l.Debug("not kept")
	recs, dropped := b.Records()
	if len(recs) != 1 || dropped != 0 {
		t.Fatalf("records %+v, dropped %d", recs, dropped)
	}
	r := recs[0]
	if r.Message != "hello" || r.Level != "INFO" || r.Attempt != 2 || string(r.Attrs) != "{\"user\":7,\"req\":{\"id\":\"x\uFFFDy\",\"g\":{\"a\":1}}}" {
		t.Fatalf("record %+v attrs %s", r, r.Attrs)
	}
}

func TestBufferCapsAFloodFromGoroutines(t *testing.T) {
	t.Parallel()
	b := NewBuffer(1)
	l := slog.New(b.Handler(discard{}))
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 1000; i++ {
				l.Info(strings.Repeat("m", 10), "i", i)
			}
		}()
	}
	wg.Wait()
	recs, dropped := b.Records()
	if len(recs) != storage.MaxStepLogRecords || dropped != 8000-storage.MaxStepLogRecords {
		t.Fatalf("%d records, %d dropped", len(recs), dropped)
	}
	if err := (storage.StepLogInsertParams{RunID: [16]byte{1}, Records: recs, Dropped: dropped}).Validate(); err != nil {
		t.Fatalf("captured records do not validate: %v", err)
	}
}
