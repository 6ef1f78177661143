package queue_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/internal/testkit/testdb"
	"github.com/acidic-go/acidic/queue"
	"github.com/acidic-go/acidic/storage"
)

// TestEnqueueRefusesValuesBeyondLimits: names, args and times the storage
// cannot hold are refused through every enqueue of the public API (Enqueue,
// EnqueueTx in the caller's transaction, EnqueueMany, unique jobs) with an
// error that matches both queue.ErrInvalid and acidic.ErrInvalid and names
// the field, and nothing is written. The caller's transaction stays usable:
// nothing reached the database.
func TestEnqueueRefusesValuesBeyondLimits(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	drv := testdb.New(t, testdb.Options{})
	c := newClient(t, drv, queue.Config{Logger: quietLogger()})
	if _, err := c.Enqueue(ctx, "k", nil, queue.EnqueueOptions{}); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, kind string
		args       any
		opts       queue.EnqueueOptions
		mention    string
	}{
		{"NUL in kind", "k\x00", nil, queue.EnqueueOptions{}, "kind"},
		{"invalid UTF-8 kind", "k\xff", nil, queue.EnqueueOptions{}, "kind"},
		{"8000-byte kind", strings.Repeat("k", 8000), nil, queue.EnqueueOptions{}, "kind"},
		{"NUL in queue", "k", nil, queue.EnqueueOptions{Queue: "q\x00"}, "queue"},
		{"invalid UTF-8 queue", "k", nil, queue.EnqueueOptions{Queue: "q\xff"}, "queue"},
		{"8000-byte queue", "k", nil, queue.EnqueueOptions{Queue: strings.Repeat("q", 8000)}, "queue"},
		{"256-byte queue", "k", nil, queue.EnqueueOptions{Queue: strings.Repeat("q", 256)}, "at most 255"},
		{"year 300000", "k", nil, queue.EnqueueOptions{ScheduledAt: time.Date(300000, 1, 1, 0, 0, 0, 0, time.UTC)}, "ScheduledAt"},
		{"year 0", "k", nil, queue.EnqueueOptions{ScheduledAt: time.Date(0, 6, 1, 0, 0, 0, 0, time.UTC)}, "ScheduledAt"},
		{"invalid UTF-8 in raw args", "k", json.RawMessage("{\"name\":\"\xff\"}"), queue.EnqueueOptions{}, "args is not valid UTF-8"},
		{"NUL in args", "k", map[string]string{"name": "a\x00b"}, queue.EnqueueOptions{}, `\u0000`},
		{"lone surrogate in args", "k", json.RawMessage(`["\ud800"]`), queue.EnqueueOptions{}, "surrogate"},
		{"number beyond jsonb", "k", json.RawMessage(`[1e200000]`), queue.EnqueueOptions{}, "numeric"},
		{"NUL in meta", "k", nil, queue.EnqueueOptions{Meta: json.RawMessage(`{"a":"\u0000"}`)}, "meta"},
	}
	unique := &queue.UniqueOptions{Fields: []queue.UniqueField{queue.UniqueByKind}}
	before := countRows(t, drv, "jobs")
	for _, tc := range cases {
		check := func(how string, err error) {
			t.Helper()
			switch {
			case !errors.Is(err, queue.ErrInvalid) || !errors.Is(err, acidic.ErrInvalid):
				t.Errorf("%s (%s): err = %v, want queue.ErrInvalid and acidic.ErrInvalid", tc.name, how, err)
			case !strings.Contains(err.Error(), tc.mention) || strings.Contains(err.Error(), "SQLSTATE"):
				t.Errorf("%s (%s): err = %v, want it to say %q (and not come from the database)", tc.name, how, err, tc.mention)
			}
		}
		_, err := c.Enqueue(ctx, tc.kind, tc.args, tc.opts)
		check("Enqueue", err)
		uopts := tc.opts
		uopts.Unique = unique
		_, err = c.Enqueue(ctx, tc.kind, tc.args, uopts)
		check("Enqueue unique", err)
		_, err = c.EnqueueMany(ctx, []queue.EnqueueParams{{Kind: "fine"}, {Kind: tc.kind, Args: tc.args, Opts: tc.opts}})
		check("EnqueueMany", err)

		tx, err := drv.Pool().Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.EnqueueTx(ctx, drv.WrapTx(tx), tc.kind, tc.args, tc.opts)
		check("EnqueueTx", err)
		// Nothing reached the database: the caller's transaction is intact
		// and may commit.
		if _, err := c.EnqueueTx(ctx, drv.WrapTx(tx), "after", nil, queue.EnqueueOptions{}); err != nil {
			t.Errorf("%s: the caller's transaction broke: %v", tc.name, err)
		}
		if err := tx.Rollback(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if n := countRows(t, drv, "jobs"); n != before {
		t.Errorf("refused enqueues wrote %d jobs", n-before)
	}
	// Names are refused where they are configured, too.
	if err := queue.NewWorkers().Handle("k\x00", func(context.Context, *acidic.Job) error { return nil }, queue.KindOptions{}); !errors.Is(err, acidic.ErrInvalid) {
		t.Errorf("Handle of a kind with NUL: %v", err)
	}
	for name, cfg := range map[string]queue.Config{
		"queue with NUL": {Workers: queue.NewWorkers(), Queues: map[string]queue.QueueConfig{"q\x00": {MaxWorkers: 1}}},
		"8000-byte ID":   {ID: strings.Repeat("i", 8000)},
	} {
		if _, err := queue.New(drv, cfg); !errors.Is(err, queue.ErrInvalid) || !errors.Is(err, acidic.ErrInvalid) {
			t.Errorf("queue.New with a %s: %v", name, err)
		}
	}
}

// TestDirtyErrorTextEndsTheAttemptAtOnce: a work function whose error holds
// NUL and invalid UTF-8 (which PostgreSQL cannot store) ends its attempt
// like any other error, with the error cleaned, and frees its worker slot:
// the next job of the one-worker queue runs. A 1 MB error is cut to
// storage.MaxTextBytes. Before, the outcome write failed and was retried
// until the job was rescued, holding the slot all along.
func TestDirtyErrorTextEndsTheAttemptAtOnce(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		ws := queue.NewWorkers()
		huge := strings.Repeat("é", 1<<19)
		fail := func(msg string) queue.WorkFunc {
			return func(context.Context, *acidic.Job) error { return errors.New(msg) }
		}
		never := queue.KindOptions{Backoff: func(int, error) time.Duration { return time.Hour }}
		for kind, fn := range map[string]queue.WorkFunc{
			"dirty": fail("bad \x00 byte \xff here"),
			"huge":  fail(huge),
			"clean": func(context.Context, *acidic.Job) error { return nil },
		} {
			if err := ws.Handle(kind, fn, never); err != nil {
				t.Fatal(err)
			}
		}
		c := newClient(t, drv, fastConfig(ws, 1)) // RescueAfter: an hour
		ctx := ctxT(t)
		dirty, err := c.Enqueue(ctx, "dirty", nil, queue.EnqueueOptions{MaxAttempts: 3})
		if err != nil {
			t.Fatal(err)
		}
		big, err := c.Enqueue(ctx, "huge", nil, queue.EnqueueOptions{MaxAttempts: 3})
		if err != nil {
			t.Fatal(err)
		}
		clean, err := c.Enqueue(ctx, "clean", nil, queue.EnqueueOptions{})
		if err != nil {
			t.Fatal(err)
		}
		start(t, c)

		j := waitJob(t, drv, dirty.ID, acidic.JobRetryable)
		if len(j.Errors) != 1 || j.Errors[0].Error != "bad  byte \uFFFD here" {
			t.Errorf("dirty job's errors = %+v, want the cleaned text", j.Errors)
		}
		j = waitJob(t, drv, big.ID, acidic.JobRetryable)
		if len(j.Errors) != 1 || len(j.Errors[0].Error) > storage.MaxTextBytes || !utf8.ValidString(j.Errors[0].Error) ||
			!strings.HasPrefix(j.Errors[0].Error, "éé") || !strings.Contains(j.Errors[0].Error, "bytes in all") {
			t.Errorf("1 MB error stored as %d bytes, want at most %d, cut with a note", len(j.Errors[0].Error), storage.MaxTextBytes)
		}
		waitJob(t, drv, clean.ID, acidic.JobCompleted)

		// Drained in the caller's goroutine, the outcome is recorded at once too.
		again, err := c.Enqueue(ctx, "dirty", nil, queue.EnqueueOptions{MaxAttempts: 1, Queue: "drained"})
		if err != nil {
			t.Fatal(err)
		}
		if res, err := c.Drain(ctx, "drained", queue.DrainOptions{}); err != nil || res.Discarded != 1 {
			t.Fatalf("Drain: %+v, %v", res, err)
		}
		if j := waitJob(t, drv, again.ID, acidic.JobDiscarded); j.Errors[0].Error != "bad  byte \uFFFD here" {
			t.Errorf("drained dirty job's error = %q", j.Errors[0].Error)
		}
	})
}
