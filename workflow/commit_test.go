package workflow_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/internal/testkit/testdb"
	"github.com/acidic-go/acidic/queue"
	"github.com/acidic-go/acidic/steps"
	"github.com/acidic-go/acidic/storage"
	"github.com/acidic-go/acidic/workflow"
)

// A caller's deadline that passes while the COMMIT of an enqueue runs does
// not turn a committed run into an error: the COMMIT runs on, and the
// caller learns the run exists. (Before, the caller got the deadline's
// error for a run that existed, and a retry with the default key made a
// second run.)
func TestEnqueueDeadlineDuringCommitKeepsTheAnswerTrue(t *testing.T) {
	t.Parallel()
	// PostgreSQL only: a deferred plpgsql trigger (pg_sleep) makes the COMMIT slow; SQLite has no way to stall its COMMIT from SQL.
	drv := testdb.New(t, testdb.Options{})
	wf := workflow.Define("slow-commit", workflow.Options{},
		steps.Do("one", func(ctx context.Context, sc *steps.Context[endArgs, noState]) error { return nil }))
	e := newEngine(t, drv, engineConfig(1), wf)
	fn := table(drv, "slow_commit")
	execSQL(t, drv, "CREATE FUNCTION "+fn+"() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(0.6); RETURN NULL; END $$")
	execSQL(t, drv, "CREATE CONSTRAINT TRIGGER slow_commit AFTER INSERT ON "+table(drv, "runs")+
		" DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION "+fn+"()")

	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	res, err := e.Enqueue(ctx, "slow-commit", endArgs{N: 1}, workflow.EnqueueOptions{})
	runs := countRows(t, drv, "runs", "workflow = 'slow-commit'")
	if err != nil {
		t.Fatalf("Enqueue whose deadline passed during COMMIT: %v; %d runs exist", err, runs)
	}
	if runs != 1 || res.Run == nil {
		t.Fatalf("%d runs after a successful Enqueue (%+v), want 1", runs, res)
	}
	if jobs := jobsOf(t, drv, res.Run.ID, "slow-commit"); len(jobs) != 1 {
		t.Errorf("the run has %d jobs, want 1", len(jobs))
	}
}

// Register refuses options that every enqueue of the workflow would refuse.
func TestRegisterRefusesOptionsEveryEnqueueWouldRefuse(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		e, err := workflow.NewEngine(drv, engineConfig(1))
		if err != nil {
			t.Fatal(err)
		}
		noop := steps.Do("one", func(ctx context.Context, sc *steps.Context[endArgs, noState]) error { return nil })
		for _, c := range []struct {
			opts workflow.Options
			says string
		}{
			{workflow.Options{Priority: queue.PriorityOf(9)}, "priority"},
			{workflow.Options{Priority: queue.PriorityOf(-1)}, "priority"},
			{workflow.Options{MaxAttempts: -5}, "attempt"},
			{workflow.Options{Timeout: -time.Second}, "Timeout"},
		} {
			err := e.Register(workflow.Define("bad", c.opts, noop))
			if !errors.Is(err, workflow.ErrInvalidDefinition) || !strings.Contains(strings.ToLower(err.Error()), strings.ToLower(c.says)) {
				t.Errorf("Register with %+v: %v; want ErrInvalidDefinition about %s", c.opts, err, c.says)
			}
		}
		// Nothing was registered: a good definition under the name still is.
		if err := e.Register(workflow.Define("bad", workflow.Options{Priority: queue.PriorityOf(3), MaxAttempts: 1}, noop)); err != nil {
			t.Errorf("Register after refusals: %v", err)
		}
	})
}

// A session terminated while it commits (FATAL, not an ERROR) says nothing
// about how the transaction ended: the enqueue's outcome is unknown, and
// the error names the run it concerns.
func TestEnqueueWhoseSessionDiesAtCommitIsUnknown(t *testing.T) {
	t.Parallel()
	// PostgreSQL only: a trigger kills the session at COMMIT (pg_terminate_backend); an embedded SQLite has no session to lose.
	drv := testdb.New(t, testdb.Options{})
	wf := workflow.Define("dies-at-commit", workflow.Options{},
		steps.Do("one", func(ctx context.Context, sc *steps.Context[endArgs, noState]) error { return nil }))
	e := newEngine(t, drv, engineConfig(1), wf)
	fn := table(drv, "die_at_commit")
	execSQL(t, drv, "CREATE FUNCTION "+fn+"() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_terminate_backend(pg_backend_pid()); PERFORM pg_sleep(5); RETURN NULL; END $$")
	execSQL(t, drv, "CREATE CONSTRAINT TRIGGER die_at_commit AFTER INSERT ON "+table(drv, "runs")+
		" DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION "+fn+"()")
	_, err := e.Enqueue(ctxT(t), "dies-at-commit", endArgs{N: 1}, workflow.EnqueueOptions{})
	var unknown *workflow.EnqueueUnknownError
	if !errors.As(err, &unknown) || !errors.Is(err, acidic.ErrCommitUnknown) || !strings.Contains(err.Error(), unknown.RunID.String()) {
		t.Fatalf("Enqueue whose session was terminated at COMMIT: %v, want an *EnqueueUnknownError naming the run", err)
	}
}
