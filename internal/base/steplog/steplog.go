// Package steplog captures the records a step writes through its logger, so
// the engine can keep them with the step (storage.StepLogs): a slog.Handler
// that passes every record on to the engine's own handler and keeps a copy,
// within the caps per step, in a Buffer.
package steplog

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/storage"
)

// MinLevel is the lowest level a Buffer keeps: debug records pass on to the
// engine's handler but are not stored.
const MinLevel = slog.LevelInfo

// Buffer holds the records of one try of one step, at most
// storage.MaxStepLogRecords records and storage.MaxStepLogBytes bytes; it
// counts the records beyond. It is safe for concurrent use (a step may log
// from goroutines).
type Buffer struct {
	attempt int

	mu      sync.Mutex
	records []acidic.LogRecord
	bytes   int
	dropped int
}

// NewBuffer returns an empty buffer for a step run by job attempt attempt.
func NewBuffer(attempt int) *Buffer { return &Buffer{attempt: attempt} }

// Records returns the records kept, oldest first, and how many were dropped.
func (b *Buffer) Records() ([]acidic.LogRecord, int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]acidic.LogRecord(nil), b.records...), b.dropped
}

func (b *Buffer) add(r acidic.LogRecord) {
	b.mu.Lock()
	defer b.mu.Unlock()
	size := storage.LogRecordSize(r)
	if b.dropped > 0 || len(b.records) >= storage.MaxStepLogRecords || b.bytes+size > storage.MaxStepLogBytes {
		b.dropped++
		return
	}
	b.records = append(b.records, r)
	b.bytes += size
}

// full reports whether every further record will be dropped, so Handle can
// skip encoding them.
func (b *Buffer) full() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.dropped > 0 || len(b.records) >= storage.MaxStepLogRecords
}

func (b *Buffer) drop() {
	b.mu.Lock()
	b.dropped++
	b.mu.Unlock()
}

// Handler returns a handler that passes records on to next and keeps those
// at MinLevel or above in b. The first attributes added to it (WithAttrs)
// are passed on but not kept: they are the tags steps.Context.Logger adds
// (run, workflow, step), which the stored record's place already says.
func (b *Buffer) Handler(next slog.Handler) slog.Handler {
	return &handler{buf: b, next: next}
}

// handler is the capturing slog.Handler.
type handler struct {
	buf  *Buffer
	next slog.Handler
	// tagged: the first WithAttrs (the context's tags) happened.
	tagged bool
	// attrs are those added with WithAttrs after the tags, already under
	// their groups; groups the open groups, innermost last.
	attrs  []slog.Attr
	groups []string
}

func (h *handler) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= MinLevel || h.next.Enabled(ctx, l)
}

func (h *handler) Handle(ctx context.Context, r slog.Record) error {
	var err error
	if h.next.Enabled(ctx, r.Level) {
		err = h.next.Handle(ctx, r)
	}
	if r.Level < MinLevel {
		return err
	}
	if h.buf.full() {
		h.buf.drop()
		return err
	}
	h.buf.add(storage.LogRecordOf(r.Time, r.Level.String(), r.Message, h.encode(r), h.buf.attempt))
	return err
}

// encode returns the record's attributes, with those of WithAttrs and
// WithGroup, as one JSON object; nil when there are none.
func (h *handler) encode(r slog.Record) []byte {
	own := make([]slog.Attr, 0, r.NumAttrs())
	r.Attrs(func(a slog.Attr) bool {
		own = append(own, a)
		return true
	})
	// The record's own attributes sit inside the open groups.
	for i := len(h.groups) - 1; i >= 0; i-- {
		if len(own) == 0 {
			break
		}
		own = []slog.Attr{{Key: h.groups[i], Value: slog.GroupValue(own...)}}
	}
	all := append(append([]slog.Attr(nil), h.attrs...), own...)
	if len(all) == 0 {
		return nil
	}
	var buf bytes.Buffer
	writeObject(&buf, all)
	if buf.Len() <= 2 {
		return nil
	}
	return buf.Bytes()
}

func (h *handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	c := *h
	c.next = h.next.WithAttrs(attrs)
	if !h.tagged {
		c.tagged = true
		return &c
	}
	for i := len(h.groups) - 1; i >= 0; i-- {
		attrs = []slog.Attr{{Key: h.groups[i], Value: slog.GroupValue(attrs...)}}
	}
	c.attrs = append(append([]slog.Attr(nil), h.attrs...), attrs...)
	return &c
}

func (h *handler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	c := *h
	c.next = h.next.WithGroup(name)
	c.tagged = true
	c.groups = append(append([]string(nil), h.groups...), name)
	return &c
}

// writeObject writes attrs as a JSON object: a group as a nested object,
// an empty key of a group inlined (as slog does), empty attributes skipped,
// values that do not encode as their fmt text.
func writeObject(buf *bytes.Buffer, attrs []slog.Attr) {
	buf.WriteByte('{')
	first := true
	var write func(attrs []slog.Attr)
	write = func(attrs []slog.Attr) {
		for _, a := range attrs {
			a.Value = a.Value.Resolve()
			if a.Equal(slog.Attr{}) {
				continue
			}
			if a.Value.Kind() == slog.KindGroup && a.Key == "" {
				write(a.Value.Group())
				continue
			}
			if a.Value.Kind() == slog.KindGroup && len(a.Value.Group()) == 0 {
				continue
			}
			if !first {
				buf.WriteByte(',')
			}
			first = false
			key, _ := json.Marshal(clean(a.Key))
			buf.Write(key)
			buf.WriteByte(':')
			if a.Value.Kind() == slog.KindGroup {
				writeObject(buf, a.Value.Group())
				continue
			}
			buf.Write(value(a.Value))
		}
	}
	write(attrs)
	buf.WriteByte('}')
}

// value encodes one resolved, non-group value.
func value(v slog.Value) []byte {
	var x any
	switch v.Kind() {
	case slog.KindString:
		x = clean(v.String())
	case slog.KindInt64:
		x = v.Int64()
	case slog.KindUint64:
		x = v.Uint64()
	case slog.KindFloat64:
		x = v.Float64()
	case slog.KindBool:
		x = v.Bool()
	case slog.KindDuration:
		x = v.Duration().String()
	case slog.KindTime:
		x = v.Time().Format(time.RFC3339Nano)
	default:
		a := v.Any()
		if e, ok := a.(error); ok {
			x = clean(e.Error())
		} else if _, ok := a.(json.Marshaler); ok {
			x = a
		} else {
			x = clean(v.String())
		}
	}
	b, err := json.Marshal(x)
	if err != nil {
		b, _ = json.Marshal(v.String())
	}
	return b
}

// clean makes s text jsonb stores: NUL (which it refuses, as \u0000)
// becomes U+FFFD.
func clean(s string) string { return strings.ReplaceAll(s, "\x00", "\uFFFD") }
