package reliability

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/internal/testkit/testdb"
	"github.com/acidic-go/acidic/queue"
	"github.com/acidic-go/acidic/run"
	"github.com/acidic-go/acidic/steps"
	"github.com/acidic-go/acidic/storage/postgres"
	"github.com/acidic-go/acidic/workflow"
)

// snapshot fingerprints every row of runs, jobs and run_steps (and counts
// them), so a test can tell that nothing at all changed.
type snapshot struct {
	runs, jobs, steps int
	digest            string
}

func takeSnapshot(t *testing.T, pool *pgxpool.Pool, schema string) snapshot {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var s snapshot
	err := pool.QueryRow(ctx, "SELECT"+
		" (SELECT count(*) FROM "+qualify(schema, "runs")+"),"+
		" (SELECT count(*) FROM "+qualify(schema, "jobs")+"),"+
		" (SELECT count(*) FROM "+qualify(schema, "run_steps")+"),"+
		" coalesce((SELECT md5(string_agg(r::text, '|' ORDER BY r.id)) FROM "+qualify(schema, "runs")+" r), '') ||"+
		" coalesce((SELECT md5(string_agg(j::text, '|' ORDER BY j.id)) FROM "+qualify(schema, "jobs")+" j), '') ||"+
		" coalesce((SELECT md5(string_agg(s::text, '|' ORDER BY s.run_id, s.position)) FROM "+qualify(schema, "run_steps")+" s), '')").
		Scan(&s.runs, &s.jobs, &s.steps, &s.digest)
	if err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	return s
}

type typedArgs struct {
	N int `json:"n"`
}

// TestBadInputChangesNothing sends malformed input through the public API
// (workflow.Engine and queue.Client): each call must fail with a clear error
// matching the documented sentinel, must not panic, and must leave every
// row of runs, jobs and run_steps as it was.
func TestBadInputChangesNothing(t *testing.T) {
	started := time.Now()
	drv := testdb.New(t, testdb.Options{MaxConns: 6})
	pool, schema := drv.Pool(), drv.Schema()
	noop := func(name string) steps.Step[typedArgs, struct{}] {
		return steps.Do(name, func(context.Context, *steps.Context[typedArgs, struct{}]) error { return nil })
	}
	typed := workflow.Define("typed", workflow.Options{}, noop("only"))
	other := workflow.Define("other", workflow.Options{}, noop("only"))
	emptyKey := workflow.Define("empty-key", workflow.Options{Key: run.By(func(typedArgs) (string, error) { return "", nil })}, noop("only"))
	failingKey := workflow.Define("failing-key", workflow.Options{Key: run.By(func(typedArgs) (string, error) { return "", errors.New("no key for you") })}, noop("only"))
	logger, _ := newQuietLogger(nil)
	eng, err := workflow.NewEngine(drv, workflow.Config{Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.Register(typed, other, emptyKey, failingKey); err != nil {
		t.Fatal(err)
	}
	q := eng.Queue()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	// Rows the bad input must leave alone: a pending run with a known key,
	// a succeeded run (drained in-process), a plain job.
	if _, err := eng.Enqueue(ctx, "typed", typedArgs{N: 1}, workflow.EnqueueOptions{Key: "taken"}); err != nil {
		t.Fatal(err)
	}
	done, err := eng.Enqueue(ctx, "typed", typedArgs{N: 2}, workflow.EnqueueOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := q.Drain(ctx, queue.DefaultQueue, queue.DrainOptions{}); err != nil {
		t.Fatal(err)
	}
	if r, err := eng.Get(ctx, done.Run.ID); err != nil || r.State != acidic.RunSucceeded {
		t.Fatalf("seed run: %v %v", r, err)
	}
	if _, err := eng.Enqueue(ctx, "typed", typedArgs{N: 1}, workflow.EnqueueOptions{Key: "taken"}); err != nil {
		t.Fatal(err)
	}
	job, err := q.Enqueue(ctx, "plain", map[string]int{"x": 1}, queue.EnqueueOptions{Queue: "elsewhere"})
	if err != nil {
		t.Fatal(err)
	}

	// An engine and a client on a pool that is closed.
	closedPool := newPool(t, poolConfig(t, testURL(), "", 2))
	closedDrv := postgres.New(closedPool, postgres.Options{Schema: schema})
	closedEng, err := workflow.NewEngine(closedDrv, workflow.Config{Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	if err := closedEng.Register(workflow.Define("typed", workflow.Options{}, noop("only"))); err != nil {
		t.Fatal(err)
	}
	closedPool.Close()

	cancelled, cancelNow := context.WithCancel(ctx)
	cancelNow()
	expired, cancelExpired := context.WithDeadline(ctx, time.Now().Add(-time.Second))
	defer cancelExpired()

	unknownRun := uuid.New()
	type tc struct {
		name    string
		call    func() error
		want    error  // errors.Is
		mention string // the error text names what was wrong
	}
	wfEnqueue := func(c context.Context, name string, args any, opts workflow.EnqueueOptions) func() error {
		return func() error { _, err := eng.Enqueue(c, name, args, opts); return err }
	}
	qEnqueue := func(c context.Context, kind string, args any, opts queue.EnqueueOptions) func() error {
		return func() error { _, err := q.Enqueue(c, kind, args, opts); return err }
	}
	cases := []tc{
		// workflow.Engine.Enqueue
		{"workflow: unknown workflow", wfEnqueue(ctx, "nope", typedArgs{}, workflow.EnqueueOptions{}), workflow.ErrUnknownWorkflow, "nope"},
		{"workflow: args of the wrong type", wfEnqueue(ctx, "typed", map[string]string{"n": "one"}, workflow.EnqueueOptions{}), workflow.ErrArgsDecode, "typed"},
		{"workflow: args that do not encode", wfEnqueue(ctx, "typed", map[string]any{"c": make(chan int)}, workflow.EnqueueOptions{}), workflow.ErrArgsDecode, "typed"},
		{"workflow: NaN in args", wfEnqueue(ctx, "typed", map[string]float64{"n": math.NaN()}, workflow.EnqueueOptions{}), workflow.ErrArgsDecode, "typed"},
		{"workflow: truncated raw JSON", wfEnqueue(ctx, "typed", json.RawMessage(`{"n":`), workflow.EnqueueOptions{}), workflow.ErrArgsDecode, "typed"},
		{"workflow: trailing garbage after JSON", wfEnqueue(ctx, "typed", json.RawMessage(`{"n":1} x`), workflow.EnqueueOptions{}), workflow.ErrArgsDecode, "typed"},
		{"workflow: two JSON values", wfEnqueue(ctx, "typed", json.RawMessage(`{"n":1}{"n":2}`), workflow.EnqueueOptions{}), workflow.ErrArgsDecode, "typed"},
		{"workflow: key reused with other args", wfEnqueue(ctx, "typed", typedArgs{N: 2}, workflow.EnqueueOptions{Key: "taken"}), run.ErrMismatchedArgs, "taken"},
		{"workflow: EnqueueTx with a bad option, committed anyway", func() error {
			tx, err := drv.Pool().Begin(ctx)
			if err != nil {
				return err
			}
			_, eerr := eng.EnqueueTx(ctx, drv.WrapTx(tx), "typed", typedArgs{N: 4}, workflow.EnqueueOptions{Priority: queue.PriorityOf(9)})
			if err := tx.Commit(ctx); err != nil {
				return err
			}
			return eerr
		}, queue.ErrInvalid, "priority"},
		{"workflow: key strategy gives an empty key", wfEnqueue(ctx, "empty-key", typedArgs{N: 1}, workflow.EnqueueOptions{}), run.ErrKey, "empty key"},
		{"workflow: key strategy fails", wfEnqueue(ctx, "failing-key", typedArgs{N: 1}, workflow.EnqueueOptions{}), run.ErrKey, "no key for you"},
		{"workflow: priority out of range", wfEnqueue(ctx, "typed", typedArgs{N: 3}, workflow.EnqueueOptions{Priority: queue.PriorityOf(9)}), queue.ErrInvalid, "priority"},
		{"workflow: negative ScheduleIn", wfEnqueue(ctx, "typed", typedArgs{N: 3}, workflow.EnqueueOptions{ScheduleIn: -time.Minute}), queue.ErrInvalid, "ScheduleIn"},
		{"workflow: cancelled context", wfEnqueue(cancelled, "typed", typedArgs{N: 3}, workflow.EnqueueOptions{}), context.Canceled, "cancel"},
		{"workflow: expired deadline", wfEnqueue(expired, "typed", typedArgs{N: 3}, workflow.EnqueueOptions{}), context.DeadlineExceeded, "deadline"},
		{"workflow: closed pool", func() error {
			_, err := closedEng.Enqueue(ctx, "typed", typedArgs{N: 3}, workflow.EnqueueOptions{})
			return err
		}, acidic.ErrClosed, "closed"},
		{"workflow: Retry of an unknown run", func() error { _, err := eng.Retry(ctx, unknownRun); return err }, acidic.ErrNotFound, unknownRun.String()},
		{"workflow: Cancel of an unknown run", func() error { _, err := eng.Cancel(ctx, unknownRun); return err }, acidic.ErrNotFound, unknownRun.String()},
		{"workflow: Retry of a succeeded run", func() error { _, err := eng.Retry(ctx, done.Run.ID); return err }, workflow.ErrNotRetryable, "succeeded"},
		{"workflow: Get of an unknown run", func() error { _, err := eng.Get(ctx, unknownRun); return err }, acidic.ErrNotFound, unknownRun.String()},
		{"workflow: negative LockedRetry", func() error {
			_, err := workflow.NewEngine(drv, workflow.Config{LockedRetry: -time.Second})
			return err
		}, queue.ErrInvalid, "LockedRetry"},

		// queue.Client
		{"queue: empty kind", qEnqueue(ctx, "", nil, queue.EnqueueOptions{}), queue.ErrInvalid, "kind"},
		{"queue: negative priority", qEnqueue(ctx, "k", nil, queue.EnqueueOptions{Priority: queue.PriorityOf(-1)}), queue.ErrInvalid, "priority"},
		{"queue: priority past the lowest", qEnqueue(ctx, "k", nil, queue.EnqueueOptions{Priority: queue.PriorityOf(queue.LowestPriority + 1)}), queue.ErrInvalid, "priority"},
		{"queue: negative MaxAttempts", qEnqueue(ctx, "k", nil, queue.EnqueueOptions{MaxAttempts: -1}), queue.ErrInvalid, "MaxAttempts"},
		{"queue: negative ScheduleIn", qEnqueue(ctx, "k", nil, queue.EnqueueOptions{ScheduleIn: -time.Second}), queue.ErrInvalid, "ScheduleIn"},
		{"queue: args that do not encode (chan)", qEnqueue(ctx, "k", map[string]any{"c": make(chan int)}, queue.EnqueueOptions{}), queue.ErrInvalid, "k"},
		{"queue: args that do not encode (func)", qEnqueue(ctx, "k", func() {}, queue.EnqueueOptions{}), queue.ErrInvalid, "k"},
		{"queue: args that do not encode (NaN)", qEnqueue(ctx, "k", math.Inf(1), queue.EnqueueOptions{}), queue.ErrInvalid, "k"},
		{"queue: invalid raw JSON args", qEnqueue(ctx, "k", json.RawMessage(`{"a":`), queue.EnqueueOptions{}), queue.ErrInvalid, "JSON"},
		{"queue: invalid Meta", qEnqueue(ctx, "k", nil, queue.EnqueueOptions{Meta: json.RawMessage("nope")}), queue.ErrInvalid, "Meta"},
		{"queue: unknown unique field", qEnqueue(ctx, "k", nil, queue.EnqueueOptions{Unique: &queue.UniqueOptions{Fields: []queue.UniqueField{"colour"}}}), queue.ErrInvalid, "colour"},
		{"queue: unknown unique state", qEnqueue(ctx, "k", nil, queue.EnqueueOptions{Unique: &queue.UniqueOptions{States: []acidic.JobState{"asleep"}}}), queue.ErrInvalid, "asleep"},
		{"queue: negative unique period", qEnqueue(ctx, "k", nil, queue.EnqueueOptions{Unique: &queue.UniqueOptions{Period: -time.Hour}}), queue.ErrInvalid, "Period"},
		{"queue: unique ArgKeys on array args", qEnqueue(ctx, "k", []int{1, 2}, queue.EnqueueOptions{Unique: &queue.UniqueOptions{ArgKeys: []string{"a"}}}), queue.ErrInvalid, "object"},
		{"queue: Replace without Unique", qEnqueue(ctx, "k", nil, queue.EnqueueOptions{Replace: &queue.ReplaceOptions{Args: true}}), queue.ErrInvalid, "Replace"},
		{"queue: batch with one bad job", func() error {
			_, err := q.EnqueueMany(ctx, []queue.EnqueueParams{{Kind: "ok"}, {Kind: "ok2"}, {Kind: ""}})
			return err
		}, queue.ErrInvalid, "kind"},
		{"queue: cancelled context", qEnqueue(cancelled, "k", nil, queue.EnqueueOptions{}), context.Canceled, "cancel"},
		{"queue: closed pool", func() error {
			_, err := closedEng.Queue().Enqueue(ctx, "k", nil, queue.EnqueueOptions{})
			return err
		}, acidic.ErrClosed, "closed"},
		{"queue: Cancel of an unknown job", func() error { _, err := q.Cancel(ctx, job.ID+1000); return err }, acidic.ErrNotFound, fmt.Sprint(job.ID + 1000)},
		{"queue: Retry of an unknown job", func() error { _, err := q.Retry(ctx, job.ID+1000); return err }, acidic.ErrNotFound, fmt.Sprint(job.ID + 1000)},
		{"queue: Get of an unknown job", func() error { _, err := q.Get(ctx, -1); return err }, acidic.ErrNotFound, "-1"},
		{"queue: config with RescueAfter below HeartbeatInterval", func() error {
			_, err := queue.New(drv, queue.Config{HeartbeatInterval: time.Second, RescueAfter: time.Millisecond})
			return err
		}, queue.ErrInvalid, "RescueAfter"},
		{"queue: config with a queue of no workers", func() error {
			_, err := queue.New(drv, queue.Config{Workers: queue.NewWorkers(), Queues: map[string]queue.QueueConfig{"q": {}}})
			return err
		}, queue.ErrInvalid, "MaxWorkers"},
	}

	changed := 0
	for _, c := range cases {
		before := takeSnapshot(t, pool, schema)
		var err error
		func() {
			defer func() {
				if p := recover(); p != nil {
					err = fmt.Errorf("panic: %v", p)
					t.Errorf("%s: panicked: %v", c.name, p)
				}
			}()
			err = c.call()
		}()
		switch {
		case err == nil:
			t.Errorf("%s: no error, want %v", c.name, c.want)
		case strings.HasPrefix(err.Error(), "panic: "):
		case !errors.Is(err, c.want):
			t.Errorf("%s: error %q does not match %v", c.name, err, c.want)
		case !strings.Contains(strings.ToLower(err.Error()), strings.ToLower(c.mention)):
			t.Errorf("%s: error %q does not say what was wrong (%q)", c.name, err, c.mention)
		}
		if after := takeSnapshot(t, pool, schema); after != before {
			changed++
			t.Errorf("%s: rows changed: runs %d→%d, jobs %d→%d, run_steps %d→%d (digest changed: %v)", c.name,
				before.runs, after.runs, before.jobs, after.jobs, before.steps, after.steps, before.digest != after.digest)
		}
	}
	t.Logf("reliability: scenario=bad-input cases=%d rows_changed=%d", len(cases), changed)
	report(t, counts{scenario: "bad-input", runs: 0, duplicates: changed}, started)
}
