package workflow_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/internal/testkit/testdb"
	"github.com/acidic-go/acidic/queue"
	"github.com/acidic-go/acidic/steps"
	"github.com/acidic-go/acidic/storage"
	"github.com/acidic-go/acidic/workflow"
)

type childArgs struct {
	N int `json:"n"`
}

type parentState struct {
	Sum     int `json:"sum"`
	Resumed int `json:"resumed"`
}

func TestAwaitContinuesOnceAfterLastChild(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		createEffects(t, drv)
		// Children finish together: each waits at a barrier until all three run.
		var arrived atomic.Int32
		release := make(chan struct{})
		var once sync.Once
		child := workflow.Define("child", workflow.Options{Queue: "children"},
			steps.Do("work", func(ctx context.Context, sc *steps.Context[childArgs, struct{}]) error {
				if arrived.Add(1) == 3 {
					once.Do(func() { close(release) })
				}
				select {
				case <-release:
				case <-time.After(10 * time.Second):
					return errors.New("children did not run in parallel")
				}
				return sc.SetResult(sc.Args.N * 10)
			}))
		fastChild := workflow.Define("fast-child", workflow.Options{Queue: "default"},
			steps.Do("work", func(ctx context.Context, sc *steps.Context[childArgs, struct{}]) error {
				return sc.SetResult(sc.Args.N * 10)
			}))
		var resumed atomic.Int32
		parent := workflow.Define("parent", workflow.Options{},
			steps.AwaitRuns[childArgs, parentState]("fan-out", steps.AwaitOptions{},
				steps.RunRequest{Workflow: "child", Args: childArgs{N: 1}},
				steps.RunRequest{Workflow: "child", Args: childArgs{N: 2}},
				steps.RunRequest{Workflow: "child", Args: childArgs{N: 3}},
				steps.RunRequest{Workflow: "fast-child", Args: childArgs{N: 4}},
			),
			steps.Do("gather", func(ctx context.Context, sc *steps.Context[childArgs, parentState]) error {
				resumed.Add(1)
				if err := recordEffect(ctx, drv, sc.Tx(), sc.RunID(), "gather", 0); err != nil {
					return err
				}
				children, err := sc.Children(ctx, "fan-out")
				if err != nil {
					return err
				}
				for _, c := range children {
					if c.State != acidic.RunSucceeded {
						return fmt.Errorf("child %s is %s", c.ID, c.State)
					}
					var v int
					if _, err := fmt.Sscan(string(c.Result), &v); err != nil {
						return err
					}
					sc.State.Sum += v
				}
				return nil
			}))
		cfg := engineConfig(3)
		cfg.Queue.Queues["children"] = queue.QueueConfig{MaxWorkers: 3}
		e := newEngine(t, drv, cfg, child, fastChild, parent)
		startEngine(t, e)
		res, err := e.Enqueue(ctxT(t), "parent", childArgs{}, workflow.EnqueueOptions{})
		if err != nil {
			t.Fatal(err)
		}
		r := waitRun(t, e, res.Run.ID, acidic.RunSucceeded, acidic.RunFailed)
		if r.State != acidic.RunSucceeded {
			t.Fatalf("parent %s: %s", r.State, r.Error)
		}
		if resumed.Load() != 1 || countEffects(t, drv, r.ID, "gather") != 1 {
			t.Fatalf("the step after the await ran %d times", resumed.Load())
		}
		if len(r.Steps) != 2 || r.Steps[0].State != acidic.StepSucceeded || r.Steps[1].State != acidic.StepSucceeded {
			t.Fatalf("step log %+v: the await step should read succeeded once its children finished", r.Steps)
		}
		var st parentState
		if err := json.Unmarshal(r.Attrs, &st); err != nil || st.Sum != 100 {
			t.Fatalf("parent state %s (%v), want the children's results summed to 100", r.Attrs, err)
		}
		// Each job that resumed the parent: the first (fan-out) and exactly one
		// continuation.
		jobs, err := drv.JobList(ctxT(t), acidic.JobFilter{RunID: r.ID})
		if err != nil {
			t.Fatal(err)
		}
		if len(jobs) != 2 {
			t.Fatalf("parent has %d jobs, want 2 (start + one continuation)", len(jobs))
		}
	})
}

func TestAwaitedChildFailureFailsParentUnlessAllowed(t *testing.T) {
	t.Parallel()
	for _, cont := range []bool{false, true} {
		t.Run(fmt.Sprintf("continue=%v", cont), func(t *testing.T) {
			t.Parallel()
			testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
				bad := workflow.Define("bad-child", workflow.Options{MaxAttempts: 1},
					steps.Do("work", func(ctx context.Context, sc *steps.Context[childArgs, struct{}]) error {
						return errors.New("card declined")
					}))
				var sawFailure atomic.Bool
				parent := workflow.Define("parent", workflow.Options{},
					steps.Await("fan-out", func(ctx context.Context, sc *steps.Context[childArgs, struct{}]) ([]steps.RunRequest, error) {
						return []steps.RunRequest{{Workflow: "bad-child", Args: childArgs{N: sc.Args.N}}}, nil
					}, steps.AwaitOptions{ContinueOnFailure: cont}),
					steps.Do("after", func(ctx context.Context, sc *steps.Context[childArgs, struct{}]) error {
						children, err := sc.Children(ctx, "fan-out")
						if err != nil {
							return err
						}
						sawFailure.Store(len(children) == 1 && children[0].State == acidic.RunFailed)
						return nil
					}))
				e := newEngine(t, drv, engineConfig(2), bad, parent)
				startEngine(t, e)
				res, err := e.Enqueue(ctxT(t), "parent", childArgs{N: 7}, workflow.EnqueueOptions{})
				if err != nil {
					t.Fatal(err)
				}
				r := waitRun(t, e, res.Run.ID, acidic.RunSucceeded, acidic.RunFailed)
				if cont {
					if r.State != acidic.RunSucceeded || !sawFailure.Load() {
						t.Fatalf("continue on failure: parent %s, saw failure %v", r.State, sawFailure.Load())
					}
					return
				}
				if r.State != acidic.RunFailed || !strings.Contains(r.Error, "bad-child") || !strings.Contains(r.Error, steps.ErrChildFailed.Error()) {
					t.Fatalf("parent %s with error %q; want failed naming the child", r.State, r.Error)
				}
			})
		})
	}
}

func TestCancelParentCancelsChildren(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		slow := workflow.Define("slow-child", workflow.Options{},
			steps.Do("wait", func(ctx context.Context, sc *steps.Context[childArgs, struct{}]) error {
				return steps.Snooze(20 * time.Millisecond)
			}))
		parent := workflow.Define("parent", workflow.Options{},
			steps.AwaitRuns[childArgs, struct{}]("fan-out", steps.AwaitOptions{},
				steps.RunRequest{Workflow: "slow-child"}, steps.RunRequest{Workflow: "slow-child"}),
			steps.Do("after", func(ctx context.Context, sc *steps.Context[childArgs, struct{}]) error { return nil }))
		e := newEngine(t, drv, engineConfig(2), slow, parent)
		startEngine(t, e)
		ctx := ctxT(t)
		res, err := e.Enqueue(ctx, "parent", childArgs{}, workflow.EnqueueOptions{})
		if err != nil {
			t.Fatal(err)
		}
		waitRun(t, e, res.Run.ID, acidic.RunAwaiting)
		if _, err := e.Cancel(ctx, res.Run.ID); err != nil {
			t.Fatal(err)
		}
		children, err := e.List(ctx, acidic.RunFilter{ParentRunID: res.Run.ID})
		if err != nil {
			t.Fatal(err)
		}
		if len(children) != 2 {
			t.Fatalf("%d children", len(children))
		}
		for _, c := range children {
			if c.State != acidic.RunCancelled {
				t.Errorf("child %s is %s, want cancelled", c.ID, c.State)
			}
		}
		if r, _ := e.Get(ctx, res.Run.ID); r.State != acidic.RunCancelled {
			t.Fatalf("parent %s", r.State)
		}
	})
}

type itemsArgs struct {
	Count int `json:"count"`
}

type itemsState struct {
	Processed int `json:"processed"`
}

func TestForEachResumesAtFailingItemAndNeverRepeatsOne(t *testing.T) {
	t.Parallel()
	for _, batch := range []int{1, 7} {
		t.Run(fmt.Sprintf("batch=%d", batch), func(t *testing.T) {
			t.Parallel()
			testdb.Each(t, testdb.Options{MaxConns: 4}, func(t *testing.T, drv storage.Driver) {
				createEffects(t, drv)
				var failures atomic.Int32
				var keys sync.Map
				wf := workflow.Define("iterate", workflow.Options{MaxAttempts: 10, Backoff: func(int, error) time.Duration { return time.Millisecond }},
					steps.ForEach("items",
						func(sc *steps.Context[itemsArgs, itemsState]) ([]int, error) {
							items := make([]int, sc.Args.Count)
							for i := range items {
								items[i] = i
							}
							return items, nil
						},
						func(ctx context.Context, sc *steps.Context[itemsArgs, itemsState], item int) error {
							// Items 250, 500 and 750 fail once each.
							if item%250 == 0 && item > 0 {
								if _, loaded := keys.LoadOrStore(item, true); !loaded {
									failures.Add(1)
									return fmt.Errorf("item %d failed", item)
								}
							}
							if want := fmt.Sprintf("%s/items/%d", sc.RunID(), item); sc.IdempotencyKey() != want {
								return fmt.Errorf("key %q, want %q", sc.IdempotencyKey(), want)
							}
							sc.State.Processed++
							return recordEffect(ctx, drv, sc.Tx(), sc.RunID(), "items", item)
						}, steps.ForEachOptions{BatchSize: batch}),
					steps.Do("done", func(ctx context.Context, sc *steps.Context[itemsArgs, itemsState]) error {
						return sc.SetResult(sc.State.Processed)
					}))
				e := newEngine(t, drv, engineConfig(1), wf)
				startEngine(t, e)
				res, err := e.Enqueue(ctxT(t), "iterate", itemsArgs{Count: 1000}, workflow.EnqueueOptions{})
				if err != nil {
					t.Fatal(err)
				}
				r := waitRun(t, e, res.Run.ID, acidic.RunSucceeded, acidic.RunFailed)
				if r.State != acidic.RunSucceeded {
					t.Fatalf("run %s: %s", r.State, r.Error)
				}
				if n := countEffects(t, drv, r.ID, "items"); n != 1000 {
					t.Fatalf("%d item effects, want 1000", n)
				}
				if failures.Load() != 3 || string(r.Result) != "1000" {
					t.Fatalf("failures %d, processed %s", failures.Load(), r.Result)
				}
			})
		})
	}
}

func TestStagedJobsExistOnlyIfTheStepCommits(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		var ran sync.Map
		cfg := engineConfig(2)
		cfg.Queue.Workers = queue.NewWorkers()
		_ = cfg.Queue.Workers.Handle("email", func(ctx context.Context, job *acidic.Job) error {
			ran.Store(string(job.Args), true)
			return nil
		}, queue.KindOptions{})
		var attempts atomic.Int32
		wf := workflow.Define("stager", workflow.Options{MaxAttempts: 3, Backoff: func(int, error) time.Duration { return time.Millisecond }},
			steps.Do("stage", func(ctx context.Context, sc *steps.Context[childArgs, struct{}]) error {
				n := attempts.Add(1)
				if _, err := sc.Enqueue(ctx, "email", fmt.Sprintf("attempt-%d", n), queue.EnqueueOptions{}); err != nil {
					return err
				}
				if _, err := sc.EnqueueRun(ctx, steps.RunRequest{Workflow: "noop", Args: childArgs{N: int(n)}}); err != nil {
					return err
				}
				if n == 1 {
					return errors.New("fail after staging")
				}
				return nil
			}))
		noop := workflow.Define("noop", workflow.Options{},
			steps.Do("x", func(ctx context.Context, sc *steps.Context[childArgs, struct{}]) error { return nil }))
		e := newEngine(t, drv, cfg, wf, noop)
		startEngine(t, e)
		ctx := ctxT(t)
		res, err := e.Enqueue(ctx, "stager", childArgs{}, workflow.EnqueueOptions{})
		if err != nil {
			t.Fatal(err)
		}
		waitRun(t, e, res.Run.ID, acidic.RunSucceeded)
		emails, err := drv.JobList(ctx, acidic.JobFilter{Kind: "email"})
		if err != nil {
			t.Fatal(err)
		}
		if len(emails) != 1 || string(emails[0].Args) != `"attempt-2"` {
			t.Fatalf("email jobs %v, want only the one staged by the committed attempt", emails)
		}
		waitDeadline := time.Now().Add(10 * time.Second)
		for {
			if _, ok := ran.Load(`"attempt-2"`); ok {
				break
			}
			if time.Now().After(waitDeadline) {
				t.Fatal("the staged job of the committed step never ran")
			}
			time.Sleep(5 * time.Millisecond)
		}
		if _, ok := ran.Load(`"attempt-1"`); ok {
			t.Fatal("a job staged by a rolled-back step ran")
		}
		runs, err := e.List(ctx, acidic.RunFilter{Workflow: "noop"})
		if err != nil {
			t.Fatal(err)
		}
		var args childArgs
		if len(runs) != 1 || json.Unmarshal(runs[0].Args, &args) != nil || args.N != 2 {
			var got []string
			for _, r := range runs {
				got = append(got, string(r.Args))
			}
			t.Fatalf("staged runs with args %v, want only the committed attempt's (n 2)", got)
		}
	})
}

// TestCancelReachesEveryChild: cancelling a parent cancels all of its
// unfinished children however many there are (they are listed a page at a
// time, 1000 to a page).
func TestCancelReachesEveryChild(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		ctx := context.Background()
		parent, _, err := drv.RunInsert(ctx, storage.RunInsertParams{ID: uuid.New(), IdempotencyKey: "parent", Workflow: "parent",
			Args: json.RawMessage(`{}`), Queue: queue.DefaultQueue, RecoveryPoint: "fan-out", DefinitionHash: "h"})
		if err != nil {
			t.Fatalf("RunInsert: %v", err)
		}
		const children = 1005
		err = drv.InTx(ctx, storage.ReadCommitted, func(ctx context.Context, tx storage.Tx) error {
			for i := range children {
				if _, _, err := tx.RunInsert(ctx, storage.RunInsertParams{ID: uuid.New(), IdempotencyKey: fmt.Sprintf("child-%d", i+1), Workflow: "child",
					Args: json.RawMessage(`{}`), Queue: queue.DefaultQueue, RecoveryPoint: "wait", DefinitionHash: "h",
					ParentRunID: parent.ID, ParentStep: "fan-out"}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatalf("insert children: %v", err)
		}
		e := newEngine(t, drv, engineConfig(1))
		if _, err := e.Cancel(ctx, parent.ID); err != nil {
			t.Fatalf("Cancel: %v", err)
		}
		if left := countRows(t, drv, "runs", "parent_run_id = $1 AND state <> 'cancelled'", parent.ID); left != 0 {
			t.Errorf("%d of %d children are not cancelled", left, children)
		}
	})
}
