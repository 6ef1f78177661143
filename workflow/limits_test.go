package workflow_test

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
	"github.com/acidic-go/acidic/run"
	"github.com/acidic-go/acidic/steps"
	"github.com/acidic-go/acidic/storage"
	"github.com/acidic-go/acidic/workflow"
)

type namedArgs struct {
	Name string `json:"name"`
}

// TestEnqueueRefusesValuesBeyondLimits: a run whose idempotency key (given
// or derived by the workflow's key strategy), arguments, queue or schedule
// the storage cannot hold is refused by Enqueue and EnqueueTx with an error
// matching workflow.ErrInvalid and acidic.ErrInvalid and naming the field;
// neither the run nor its job is written, even inside the caller's
// transaction, which stays usable.
func TestEnqueueRefusesValuesBeyondLimits(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		noop := steps.Do("only", func(context.Context, *steps.Context[namedArgs, struct{}]) error { return nil })
		byName := workflow.Define("by-name", workflow.Options{Key: run.By(func(a namedArgs) (string, error) { return a.Name, nil })}, noop)
		byArgs := workflow.Define("by-args", workflow.Options{Key: run.ByArgs()}, noop)
		plain := workflow.Define("plain", workflow.Options{}, noop)
		badUTF8 := workflow.Define("bad-utf8-key", workflow.Options{Key: run.By(func(a namedArgs) (string, error) { return a.Name + "\xff", nil })}, noop)
		e := newEngine(t, drv, engineConfig(1), byName, byArgs, plain, badUTF8)
		ctx := ctxT(t)
		if _, err := e.Enqueue(ctx, "plain", namedArgs{Name: "seed"}, workflow.EnqueueOptions{}); err != nil {
			t.Fatal(err)
		}
		year300000 := time.Date(300000, 1, 1, 0, 0, 0, 0, time.UTC)
		cases := []struct {
			name, workflow string
			args           any
			opts           workflow.EnqueueOptions
			mention        string
		}{
			{"NUL in Key", "plain", namedArgs{}, workflow.EnqueueOptions{Key: "k\x00"}, "idempotency key"},
			{"invalid UTF-8 Key", "plain", namedArgs{}, workflow.EnqueueOptions{Key: "k\xff"}, "idempotency key"},
			{"2704-byte Key", "plain", namedArgs{}, workflow.EnqueueOptions{Key: strings.Repeat("k", 2704)}, "at most 1024"},
			{"1025-byte Key", "plain", namedArgs{}, workflow.EnqueueOptions{Key: strings.Repeat("k", 1025)}, "at most 1024"},
			{"strategy key with NUL", "by-name", namedArgs{Name: "a\x00b"}, workflow.EnqueueOptions{}, "idempotency key"},
			{"strategy key over the limit", "by-name", namedArgs{Name: strings.Repeat("n", 3000)}, workflow.EnqueueOptions{}, "idempotency key"},
			{"strategy key with invalid UTF-8", "bad-utf8-key", namedArgs{Name: "n"}, workflow.EnqueueOptions{}, "idempotency key"},
			{"strategy key from invalid UTF-8 args", "by-name", json.RawMessage("{\"name\":\"\xff\"}"), workflow.EnqueueOptions{}, "args is not valid UTF-8"},
			{"ByArgs with invalid UTF-8 args", "by-args", json.RawMessage("{\"name\":\"\xff\"}"), workflow.EnqueueOptions{}, "args is not valid UTF-8"},
			{"invalid UTF-8 args", "plain", json.RawMessage("{\"name\":\"\xff\"}"), workflow.EnqueueOptions{}, "args is not valid UTF-8"},
			{"NUL in args", "plain", namedArgs{Name: "a\x00"}, workflow.EnqueueOptions{}, `\u0000`},
			{"NUL in queue", "plain", namedArgs{}, workflow.EnqueueOptions{Queue: "q\x00"}, "queue"},
			{"8000-byte queue", "plain", namedArgs{}, workflow.EnqueueOptions{Queue: strings.Repeat("q", 8000)}, "queue"},
			{"year 300000", "plain", namedArgs{}, workflow.EnqueueOptions{ScheduledAt: year300000}, "ScheduledAt"},
			{"year 300000 with a Key", "plain", namedArgs{}, workflow.EnqueueOptions{Key: "fine", ScheduledAt: year300000}, "ScheduledAt"},
		}
		runs, jobs := countRows(t, drv, "runs", ""), countRows(t, drv, "jobs", "")
		for _, tc := range cases {
			check := func(how string, err error) {
				t.Helper()
				switch {
				case !errors.Is(err, workflow.ErrInvalid) || !errors.Is(err, acidic.ErrInvalid):
					t.Errorf("%s (%s): err = %v, want workflow.ErrInvalid and acidic.ErrInvalid", tc.name, how, err)
				case !strings.Contains(err.Error(), tc.mention) || strings.Contains(err.Error(), "SQLSTATE"):
					t.Errorf("%s (%s): err = %v, want it to say %q (and not come from the database)", tc.name, how, err, tc.mention)
				}
			}
			_, err := e.Enqueue(ctx, tc.workflow, tc.args, tc.opts)
			check("Enqueue", err)
			tx := testdb.Begin(t, drv)
			_, err = e.EnqueueTx(ctx, tx, tc.workflow, tc.args, tc.opts)
			check("EnqueueTx", err)
			var n int
			if err := testdb.TxQueryRow(ctx, tx, "SELECT (SELECT count(*) FROM "+table(drv, "runs")+") + (SELECT count(*) FROM "+table(drv, "jobs")+")", nil, &n); err != nil {
				t.Errorf("%s: the caller's transaction broke: %v", tc.name, err)
			} else if n != runs+jobs {
				t.Errorf("%s: EnqueueTx wrote %d rows in the caller's transaction", tc.name, n-runs-jobs)
			}
			if err := tx.Commit(ctx); err != nil {
				t.Errorf("%s: commit the caller's transaction: %v", tc.name, err)
			}
		}
		if r, j := countRows(t, drv, "runs", ""), countRows(t, drv, "jobs", ""); r != runs || j != jobs {
			t.Errorf("refused enqueues wrote %d runs and %d jobs", r-runs, j-jobs)
		}

		// Names are refused when the workflow is registered.
		for name, d := range map[string]workflow.Definition{
			"workflow name with NUL": workflow.Define("w\x00", workflow.Options{}, noop),
			"8000-byte name":         workflow.Define(strings.Repeat("w", 8000), workflow.Options{}, noop),
			"step name with NUL":     workflow.Define("w", workflow.Options{}, steps.Do("s\x00", func(context.Context, *steps.Context[namedArgs, struct{}]) error { return nil })),
			"queue with newline":     workflow.Define("w", workflow.Options{Queue: "q\n"}, noop),
		} {
			if err := e.Register(d); !errors.Is(err, workflow.ErrInvalidDefinition) || !errors.Is(err, acidic.ErrInvalid) {
				t.Errorf("Register (%s): %v, want ErrInvalidDefinition", name, err)
			}
		}
	})
}

// TestStepErrorTextIsRecorded: a step whose error holds NUL and invalid
// UTF-8 has its failure recorded on the run and in the step log, cleaned
// (before, the write failed and the run stayed pending without its error);
// a 1 MB error is cut to storage.MaxTextBytes.
func TestStepErrorTextIsRecorded(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		huge := strings.Repeat("é", 1<<19)
		failing := func(name, msg string) workflow.Definition {
			return workflow.Define(name, fastOptions(2),
				steps.Do("first", func(context.Context, *steps.Context[namedArgs, struct{}]) error { return nil }),
				steps.Do("breaks", func(context.Context, *steps.Context[namedArgs, struct{}]) error { return errors.New(msg) }))
		}
		e := newEngine(t, drv, engineConfig(2), failing("dirty", "card \x00 declined \xff"), failing("huge", huge))
		startEngine(t, e)
		dirty := enqueue(t, e, "dirty", namedArgs{})
		big := enqueue(t, e, "huge", namedArgs{})

		r := waitRun(t, e, dirty, acidic.RunFailed)
		want := "card  declined \uFFFD"
		if r.Error != "attempts exhausted (2 of 2): "+want {
			t.Errorf("run error = %q, want the attempts exhausted with %q", r.Error, want)
		}
		if s := stepLog(t, r, "breaks"); s.State != acidic.StepFailed || s.Error != want || s.Attempt != 2 {
			t.Errorf("step log = %+v, want failed at attempt 2 with %q", s, want)
		}
		j := waitJobsFinal(t, drv, dirty, "dirty")
		if len(j) != 1 || j[0].State != acidic.JobDiscarded || len(j[0].Errors) != 2 || j[0].Errors[1].Error != want {
			t.Errorf("job = %s, errors %+v", describeJobs(j), j[0].Errors)
		}

		r = waitRun(t, e, big, acidic.RunFailed)
		if s := stepLog(t, r, "breaks"); len(r.Error) > storage.MaxTextBytes || len(s.Error) > storage.MaxTextBytes ||
			!utf8.ValidString(r.Error) || !strings.Contains(r.Error, "bytes in all") || !strings.HasPrefix(r.Error, "attempts exhausted (2 of 2): ") ||
			!strings.Contains(s.Error, "bytes in all") || !utf8.ValidString(s.Error) {
			t.Errorf("1 MB step error stored as %d bytes on the run, %d in the step log; want at most %d, cut with a note",
				len(r.Error), len(s.Error), storage.MaxTextBytes)
		}
	})
}
