package acidictest_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/acidictest"
	"github.com/acidic-go/acidic/internal/testkit/testdb"
	"github.com/acidic-go/acidic/queue"
	"github.com/acidic-go/acidic/steps"
	"github.com/acidic-go/acidic/storage"
	"github.com/acidic-go/acidic/storage/sqlite"
	"github.com/acidic-go/acidic/workflow"
)

// The failure-injection suite: workflows using every step kind (plain,
// await, for-each, staged job, publish, halt, snooze, cancel, a failing
// step) run with a crash or a failed call injected at every boundary
// between the engine and the database, then recover. Every case must end
// with each committed step's effect exactly once, every run in the state
// the fault-free run ended in, no run or job left unfinished, each
// finish callback staged once, and each parent continued once.
//
// By default a sample of the cases runs (a few seconds); set
// ACIDIC_FAULTS_FULL=1 for every case, with faults injected during the
// rescue of a crash too (see docs/guarantees.md for its figures).

type order struct {
	ID string `json:"id"`
}

type orderState struct {
	Polls int `json:"polls"`
}

type child struct {
	N int `json:"n"`
}

// effects records each step's effect in the step's own transaction: it
// commits with the step or not at all. The table has no key, so a step
// whose effect happened twice shows as two rows. Run ids are stored as
// text, the same on both drivers.
type effects string

// effectsOf is the effects table of drv's store.
func effectsOf(drv storage.Driver) effects {
	return effects(`"` + drv.Schema() + `".effects`)
}

func (e effects) record(ctx context.Context, tx storage.Tx, runID uuid.UUID, step string, item int) error {
	_, err := storage.SQLOf(tx).Exec(ctx, "INSERT INTO "+string(e)+" (run_id, step, item) VALUES ($1, $2, $3)", runID.String(), step, item)
	return err
}

// outsideCalls logs the calls made to an outside system (outside the
// step's transaction, as an HTTP call would be) with the step's
// idempotency key: run/step -> the keys it was called with.
var outsideCalls = struct {
	sync.Mutex
	keys map[string]map[string]bool
}{keys: map[string]map[string]bool{}}

func callOutside(runID uuid.UUID, step, key string) {
	outsideCalls.Lock()
	defer outsideCalls.Unlock()
	k := runID.String() + "/" + step
	if outsideCalls.keys[k] == nil {
		outsideCalls.keys[k] = map[string]bool{}
	}
	outsideCalls.keys[k][key] = true
}

func outsideKeys(runID uuid.UUID, step string) int {
	outsideCalls.Lock()
	defer outsideCalls.Unlock()
	return len(outsideCalls.keys[runID.String()+"/"+step])
}

func suiteWorkflows(drv storage.Driver) []workflow.Definition {
	effect := effectsOf(drv).record
	fin := func(ctx context.Context, r *acidic.Run) error { return nil }
	every := workflow.Define("every-kind", workflow.Options{MaxAttempts: 5, Backoff: fastBackoff, OnFinish: fin},
		steps.Do("charge", func(ctx context.Context, sc *steps.Context[order, orderState]) error {
			callOutside(sc.RunID(), "charge", sc.IdempotencyKey())
			return effect(ctx, sc.Tx(), sc.RunID(), "charge", 0)
		}),
		steps.AwaitRuns[order, orderState]("fan-out", steps.AwaitOptions{},
			steps.RunRequest{Workflow: "child", Args: child{N: 1}, Queue: "children"},
			steps.RunRequest{Workflow: "child", Args: child{N: 2}, Queue: "children"}),
		steps.AwaitJobs[order, orderState]("notify", steps.AwaitOptions{},
			notice.Params(notify{Order: "o"}, queue.EnqueueOptions{Queue: "notices"}),
			notice.Params(notify{Order: "p"}, queue.EnqueueOptions{Queue: "receipts"})),
		steps.ForEach("items", func(sc *steps.Context[order, orderState]) ([]int, error) { return []int{1, 2, 3}, nil },
			func(ctx context.Context, sc *steps.Context[order, orderState], item int) error {
				return effect(ctx, sc.Tx(), sc.RunID(), "items", item)
			}, steps.ForEachOptions{}),
		steps.Do("poll", func(ctx context.Context, sc *steps.Context[order, orderState]) error {
			if err := effect(ctx, sc.Tx(), sc.RunID(), "poll", sc.State.Polls); err != nil {
				return err
			}
			if sc.State.Polls++; sc.State.Polls < 2 {
				return steps.Snooze(time.Millisecond)
			}
			return nil
		}),
		steps.Do("publish", func(ctx context.Context, sc *steps.Context[order, orderState]) error {
			if err := sc.Publish(ctx, "orders", sc.Args.ID, map[string]string{"order": sc.Args.ID}); err != nil {
				return err
			}
			return effect(ctx, sc.Tx(), sc.RunID(), "publish", 0)
		}),
	)
	kid := workflow.Define("child", workflow.Options{Queue: "children", MaxAttempts: 5, Backoff: fastBackoff},
		steps.Do("work", func(ctx context.Context, sc *steps.Context[child, struct{}]) error {
			if _, err := sc.Enqueue(ctx, "receipt", map[string]string{"run": sc.RunID().String()}, queue.EnqueueOptions{Queue: "receipts"}); err != nil {
				return err
			}
			return effect(ctx, sc.Tx(), sc.RunID(), "work", sc.Args.N)
		}))
	halting := workflow.Define("halting", workflow.Options{MaxAttempts: 5, Backoff: fastBackoff, OnFinish: fin},
		steps.Do("ask", func(ctx context.Context, sc *steps.Context[order, struct{}]) error {
			if err := effect(ctx, sc.Tx(), sc.RunID(), "ask", 0); err != nil {
				return err
			}
			return steps.Halt()
		}),
		steps.Do("apply", func(ctx context.Context, sc *steps.Context[order, struct{}]) error {
			return effect(ctx, sc.Tx(), sc.RunID(), "apply", 0)
		}))
	cancelling := workflow.Define("cancelling", workflow.Options{MaxAttempts: 5, Backoff: fastBackoff, OnFinish: fin},
		steps.Do("one", func(ctx context.Context, sc *steps.Context[order, struct{}]) error {
			return effect(ctx, sc.Tx(), sc.RunID(), "one", 0)
		}),
		steps.Do("fraud-check", func(ctx context.Context, sc *steps.Context[order, struct{}]) error {
			if err := effect(ctx, sc.Tx(), sc.RunID(), "fraud-check", 0); err != nil {
				return err
			}
			return steps.Cancel(errors.New("fraud suspected")) // rolls the effect back
		}))
	failing := workflow.Define("failing", workflow.Options{MaxAttempts: 2, Backoff: fastBackoff, OnFinish: fin},
		steps.Do("one", func(ctx context.Context, sc *steps.Context[order, struct{}]) error {
			return effect(ctx, sc.Tx(), sc.RunID(), "one", 0)
		}),
		steps.Do("declined", func(ctx context.Context, sc *steps.Context[order, struct{}]) error {
			if err := effect(ctx, sc.Tx(), sc.RunID(), "declined", 0); err != nil {
				return err
			}
			return errors.New("card declined") // rolls the effect back
		}))
	return []workflow.Definition{every, kid, halting, cancelling, failing}
}

func fastBackoff(int, error) time.Duration { return time.Millisecond }

type notify struct {
	Order string `json:"order"`
}

// notice is the queue job the every-kind workflow awaits, twice, on two
// queues.
var notice = queue.NewKind[notify]("notice")

func suiteWorkers() *queue.Workers {
	ws := queue.NewWorkers()
	_ = ws.Handle("receipt", func(ctx context.Context, job *acidic.Job) error { return nil }, queue.KindOptions{})
	_ = notice.Handle(ws, func(ctx context.Context, job *acidic.Job, _ notify) error { return nil }, queue.KindOptions{})
	return ws
}

// expectedEffects is how many effects each workflow's run commits, by step.
// A step that cancels or fails rolls its effect back: none may exist.
var expectedEffects = map[string]map[string]int{
	"every-kind": {"charge": 1, "items": 3, "poll": 2, "publish": 1},
	"child":      {"work": 1},
	"halting":    {"ask": 1, "apply": 1},
	"cancelling": {"one": 1, "fraud-check": 0},
	"failing":    {"one": 1, "declined": 0},
}

// suiteCounts are the effects found twice and the steps whose effects were
// lost, over a suite's cases.
type suiteCounts struct{ duplicates, lost atomic.Int64 }

func (counts *suiteCounts) check(t testing.TB, c *acidictest.FaultCase) {
	ctx := context.Background()
	db := storage.SQLOf(c.Driver())
	effects := string(effectsOf(c.Driver()))
	ids := map[string]bool{}
	for _, r := range c.Runs {
		ids[r.ID.String()] = true
	}
	rows, err := db.Query(ctx, "SELECT DISTINCT run_id FROM "+effects)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		if !ids[id] {
			t.Errorf("effects of no run (%s)", id)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	_ = rows.Close()
	outbox, err := c.Driver().OutboxList(ctx, storage.OutboxListParams{Limit: 100000})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range c.Runs {
		for step, want := range expectedEffects[r.Workflow] {
			var n, distinct int
			err := db.QueryRow(ctx, "SELECT count(*), count(DISTINCT item) FROM "+effects+" WHERE run_id = $1 AND step = $2", r.ID.String(), step).Scan(&n, &distinct)
			if err != nil {
				t.Fatal(err)
			}
			if n > distinct {
				counts.duplicates.Add(int64(n - distinct))
				t.Errorf("run %s (%s) step %s: %d effects for %d items: a committed step ran again", r.ID, r.Workflow, step, n, distinct)
			}
			if distinct != want {
				counts.lost.Add(1)
				t.Errorf("run %s (%s, %s) step %s: effects for %d items, want %d", r.ID, r.Workflow, r.State, step, distinct, want)
			}
		}
		switch r.Workflow {
		case "every-kind":
			msgs := 0
			for _, m := range outbox {
				if m.RunID == r.ID {
					msgs++
				}
			}
			if msgs != 1 {
				t.Errorf("run %s: %d outbox messages, want 1", r.ID, msgs)
			}
			if keys := outsideKeys(r.ID, "charge"); keys != 1 {
				t.Errorf("run %s: the outside charge was called with %d keys, want 1 (one charge)", r.ID, keys)
			}
			awaited, err := c.Driver().(storage.Awaits).AwaitedJobsList(ctx, storage.AwaitedJobsListParams{RunID: r.ID})
			if err != nil || len(awaited) != 2 || !awaited[0].Succeeded() || !awaited[1].Succeeded() {
				t.Errorf("run %s: awaited jobs %+v (%v), want two completed", r.ID, awaited, err)
			}
			if r.State == acidic.RunSucceeded {
				if s := r.Steps[2]; s.Name != "notify" || s.State != acidic.StepSucceeded {
					t.Errorf("run %s: step %s %s, want notify succeeded", r.ID, s.Name, s.State)
				}
			}
			kids, err := c.Harness.Engine.List(ctx, acidic.RunFilter{ParentRunID: r.ID})
			if err != nil || len(kids) != 2 {
				t.Errorf("run %s: %d children (%v), want 2", r.ID, len(kids), err)
			}
		case "child":
			jobs, err := c.Driver().JobList(ctx, acidic.JobFilter{Kind: "receipt", Limit: 100})
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for _, j := range jobs {
				if string(j.Args) == fmt.Sprintf(`{"run": "%s"}`, r.ID) || string(j.Args) == fmt.Sprintf(`{"run":"%s"}`, r.ID) {
					n++
				}
			}
			if n != 1 {
				t.Errorf("child %s: %d receipt jobs staged, want 1", r.ID, n)
			}
		}
	}
}

func suiteOptions(n *suiteCounts) acidictest.FaultOptions {
	return acidictest.FaultOptions{
		Workflows: suiteWorkflows,
		Workers:   suiteWorkers,
		Setup: func(ctx context.Context, drv storage.Driver) error {
			_, err := storage.SQLOf(drv).Exec(ctx, "CREATE TABLE "+string(effectsOf(drv))+" (run_id text NOT NULL, step text NOT NULL, item int NOT NULL)")
			return err
		},
		Start: func(ctx context.Context, h *acidictest.Harness) error {
			for _, wf := range []string{"every-kind", "halting", "cancelling", "failing"} {
				if _, err := h.Enqueue(ctx, wf, order{ID: "o-" + wf}, workflow.EnqueueOptions{Key: "o-" + wf}); err != nil {
					return err
				}
			}
			return nil
		},
		Resume: func(ctx context.Context, h *acidictest.Harness) error {
			halted, err := h.Engine.List(ctx, acidic.RunFilter{States: []acidic.RunState{acidic.RunHalted}})
			if err != nil {
				return err
			}
			for _, r := range halted {
				if _, err := h.Engine.Retry(ctx, r.ID); err != nil {
					return err
				}
			}
			return nil
		},
		Check: n.check,
	}
}

func TestEveryBoundary(t *testing.T) {
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		var n suiteCounts
		opts := suiteOptions(&n)
		opts.Driver = drv
		full := os.Getenv("ACIDIC_FAULTS_FULL") != ""
		opts.RescueFaults = 2
		opts.MaxCases = 120
		if _, ok := drv.(*sqlite.Driver); ok {
			// Under -race a SQLite case costs twice a PostgreSQL one (its
			// three Drivers, a second writer): half as many, spread over
			// the same boundaries.
			opts.MaxCases = 60
		}
		if full {
			opts.RescueFaults, opts.MaxCases = 3, 0
		}
		started := time.Now()
		rep := acidictest.EachFault(t, opts)
		t.Logf("faults: %s duplicates=%d lost=%d full=%v took=%s", rep, n.duplicates.Load(), n.lost.Load(), full, time.Since(started).Round(time.Millisecond))
		// The work is deterministic: every case reaches its boundary.
		if rep.Cases == 0 || rep.Fired != rep.Cases {
			t.Errorf("faults fired in %d of %d cases: %s", rep.Fired, rep.Cases, rep)
		}
		if rep.Stranded+rep.WrongState+rep.Unsettled+rep.Failed != 0 || n.duplicates.Load()+n.lost.Load() != 0 {
			t.Errorf("faults: %s duplicates=%d lost=%d", rep, n.duplicates.Load(), n.lost.Load())
		}
	})
}
