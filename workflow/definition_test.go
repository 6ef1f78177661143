package workflow_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/internal/testkit/testdb"
	"github.com/acidic-go/acidic/steps"
	"github.com/acidic-go/acidic/storage"
	"github.com/acidic-go/acidic/workflow"
)

// effectStep records its effect; halt makes it halt the run after committing.
func effectStep(drv storage.Driver, calls *counter, name string, halt bool) steps.Step[orderArgs, orderState] {
	return steps.Do(name, func(ctx context.Context, sc *steps.Context[orderArgs, orderState]) error {
		calls.inc(name)
		if err := recordEffect(ctx, drv, sc.Tx(), sc.RunID(), name, 0); err != nil {
			return err
		}
		sc.State.ChargeID = "ch-" + name
		if halt {
			return steps.Halt()
		}
		return nil
	})
}

func stopEngine(t *testing.T, e *workflow.Engine) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.Stop(ctx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
}

// A run started by one version of a workflow and resumed by code whose
// steps changed fails for good, keeping what committed.
func TestChangedDefinitionFailsRunForGood(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name    string
		haltAt  string   // the old code halts after this step
		newCode []string // step names of the new code
		resumes string   // where the run stands when the new code sees it
	}{
		{"step inserted before the recovery point", "b", []string{"a", "x", "c"}, "c"},
		{"recovery point removed", "a", []string{"a", "c"}, "b"},
		{"steps reordered", "a", []string{"a", "c", "b"}, "b"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
				createEffects(t, drv)
				var calls counter
				old := workflow.Define("evolving", fastOptions(3),
					effectStep(drv, &calls, "a", c.haltAt == "a"),
					effectStep(drv, &calls, "b", c.haltAt == "b"),
					effectStep(drv, &calls, "c", c.haltAt == "c"))
				a := newEngine(t, drv, engineConfig(1), old)
				startEngine(t, a)
				id := enqueue(t, a, "evolving", orderArgs{OrderID: "o1"})
				waitJobsFinal(t, drv, id, "evolving")
				before := getRun(t, a, id)
				if before.State != acidic.RunHalted || before.RecoveryPoint != c.resumes {
					t.Fatalf("old code left the run %s at %s, want halted at %s", before.State, before.RecoveryPoint, c.resumes)
				}
				stopEngine(t, a)

				// The new code: same name, other steps.
				var newSteps []steps.Step[orderArgs, orderState]
				for _, n := range c.newCode {
					newSteps = append(newSteps, effectStep(drv, &calls, n, false))
				}
				b := newEngine(t, drv, engineConfig(1), workflow.Define("evolving", fastOptions(3), newSteps...))
				startEngine(t, b)
				if _, err := b.Retry(ctxT(t), id); err != nil {
					t.Fatalf("Retry: %v", err)
				}
				r := waitRun(t, b, id, acidic.RunFailed, acidic.RunSucceeded)
				if r.State != acidic.RunFailed || !strings.Contains(r.Error, "definition changed") {
					t.Fatalf("run %s with error %q, want failed because the definition changed", r.State, r.Error)
				}
				jobs := waitJobsFinal(t, drv, id, "evolving")
				if last := jobs[len(jobs)-1]; last.State != acidic.JobDiscarded || last.Attempt != 1 {
					t.Errorf("the new code's job: %s after %d attempts, want discarded at once", last.State, last.Attempt)
				}
				// Nothing committed is lost, nothing new ran.
				for _, n := range []string{"a", "b", "c", "x"} {
					want := 0
					if n == "a" || (n == "b" && c.haltAt == "b") {
						want = 1
					}
					if got := countEffects(t, drv, id, n); got != want {
						t.Errorf("step %s: %d effects, want %d", n, got, want)
					}
				}
				if r.RecoveryPoint != before.RecoveryPoint || string(r.Attrs) != string(before.Attrs) {
					t.Errorf("run moved from %s %s to %s %s", before.RecoveryPoint, before.Attrs, r.RecoveryPoint, r.Attrs)
				}
				if len(r.Steps) != len(before.Steps) {
					t.Errorf("step log grew from %d to %d entries", len(before.Steps), len(r.Steps))
				}
			})
		})
	}
}

// Persisted state or stored arguments that no longer decode fail the run for
// good instead of retrying forever.
func TestUndecodableStoredDataFailsRunForGood(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name, column, value, want string
	}{
		{"state not an object", "attrs", `"not an object"`, workflow.ErrStateDecode.Error()},
		{"state field of the wrong type", "attrs", `{"charge_id": 5}`, workflow.ErrStateDecode.Error()},
		{"args field of the wrong type", "args", `{"order_id": "o", "amount": "ten"}`, workflow.ErrArgsDecode.Error()},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
				createEffects(t, drv)
				var calls counter
				wf := workflow.Define("decoding", fastOptions(5),
					effectStep(drv, &calls, "a", false), effectStep(drv, &calls, "b", false))
				e := newEngine(t, drv, engineConfig(1), wf)
				id := enqueue(t, e, "decoding", orderArgs{OrderID: "o", Amount: 3})
				value := "$2::jsonb"
				if testdb.IsSQLite(drv) { // JSON is text there
					value = "$2"
				}
				execSQL(t, drv, "UPDATE "+table(drv, "runs")+" SET "+c.column+" = "+value+" WHERE id = $1", id, c.value)
				startEngine(t, e)
				r := waitRun(t, e, id, acidic.RunFailed, acidic.RunSucceeded)
				if r.State != acidic.RunFailed || !strings.Contains(r.Error, c.want) {
					t.Fatalf("run %s with error %q, want failed with %q", r.State, r.Error, c.want)
				}
				for _, j := range waitJobsFinal(t, drv, id, "decoding") {
					if j.State != acidic.JobDiscarded || j.Attempt != 1 {
						t.Errorf("job %d: %s after %d attempts, want discarded at once", j.ID, j.State, j.Attempt)
					}
				}
				if calls.get("a") != 0 || calls.get("b") != 0 {
					t.Errorf("steps ran: a %d, b %d", calls.get("a"), calls.get("b"))
				}
			})
		})
	}
}

// A job for a run that no longer exists is discarded, not retried.
func TestJobForMissingRunIsDiscarded(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		var calls counter
		wf := workflow.Define("orphan", fastOptions(5), effectStep(drv, &calls, "a", false))
		e := newEngine(t, drv, engineConfig(1), wf)
		id := enqueue(t, e, "orphan", orderArgs{})
		// The run disappears (deleted by hand); its job stays.
		execSQL(t, drv, "UPDATE "+table(drv, "jobs")+" SET run_id = NULL WHERE run_id = $1", id)
		execSQL(t, drv, "DELETE FROM "+table(drv, "runs")+" WHERE id = $1", id)
		startEngine(t, e)
		waitFor(t, 10*time.Second, "the run-less job to end", func() (bool, string) {
			jobs, err := drv.JobList(context.Background(), acidic.JobFilter{Kind: "orphan"})
			if err != nil {
				t.Fatal(err)
			}
			for _, j := range jobs {
				if !j.State.Final() {
					return false, describeJobs(jobs)
				}
			}
			return true, ""
		})
		jobs, _ := drv.JobList(context.Background(), acidic.JobFilter{Kind: "orphan"})
		for _, j := range jobs {
			if j.State != acidic.JobDiscarded || j.Attempt != 1 {
				t.Errorf("job %d for a missing run: %s after %d attempts, want discarded at once", j.ID, j.State, j.Attempt)
			}
		}
		if calls.get("a") != 0 {
			t.Errorf("step ran for a missing run")
		}
	})
}
