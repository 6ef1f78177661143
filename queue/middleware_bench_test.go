package queue

import (
	"context"
	"testing"

	"github.com/acidic-go/acidic"
)

// BenchmarkWorkChain is what the middleware machinery adds to a job
// attempt: none configured (what every attempt pays: a length check), and
// one middleware that only calls next; "direct" is the work function
// called through Workers.Work alone, the reference.
func BenchmarkWorkChain(b *testing.B) {
	ws := NewWorkers()
	if err := ws.Handle("k", func(context.Context, *acidic.Job) error { return nil }, KindOptions{}); err != nil {
		b.Fatal(err)
	}
	job := &acidic.Job{ID: 1, Kind: "k"}
	ctx := context.Background()
	b.Run("direct", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = ws.Work(ctx, job)
		}
	})
	b.Run("no-middleware", func(b *testing.B) {
		c := &Client{cfg: Config{Workers: ws}}
		b.ReportAllocs()
		for b.Loop() {
			_ = c.workChain(ctx, job)
		}
	})
	b.Run("one-empty-middleware", func(b *testing.B) {
		c := &Client{cfg: Config{Workers: ws, Middleware: []JobMiddleware{
			func(ctx context.Context, job *acidic.Job, next func(context.Context) error) error { return next(ctx) },
		}}}
		b.ReportAllocs()
		for b.Loop() {
			_ = c.workChain(ctx, job)
		}
	})
}
