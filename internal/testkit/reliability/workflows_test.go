package reliability

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/steps"
	"github.com/acidic-go/acidic/storage"
	"github.com/acidic-go/acidic/storage/postgres"
	"github.com/acidic-go/acidic/workflow"
)

// effector records step effects for one scenario.
type effector struct {
	schema string
	// side writes outside the step's transaction (dup_events, executions).
	side *pgxpool.Pool
	// actor names the process or engine executing steps.
	actor string
	// sleep is how long a step's code works; the items of a for-each step
	// take a fifth of it.
	sleep time.Duration
	// maxAttempts of the chaos workflows; default 500.
	maxAttempts int
}

// effect records the effect of one step (item) in the step's transaction. A
// unique violation means the effect had already committed: it is recorded
// outside the transaction in dup_events and returned, so the step fails.
func (ef *effector) effect(ctx context.Context, tx storage.Tx, runID uuid.UUID, step string, item int) error {
	_, err := postgres.PgxTx(tx).Exec(ctx, "INSERT INTO "+qualify(ef.schema, "effects")+
		" (run_id, step, item, actor) VALUES ($1, $2, $3, $4)", runID, step, item, ef.actor)
	if isUniqueViolation(err) {
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		_, _ = ef.side.Exec(wctx, "INSERT INTO "+qualify(ef.schema, "dup_events")+
			" (run_id, step, item, actor, err) VALUES ($1, $2, $3, $4, $5)", runID, step, item, ef.actor, err.Error())
	}
	return err
}

// execution records the start of one execution of a step's code outside its
// transaction and returns a function recording its end.
func (ef *effector) execution(ctx context.Context, runID uuid.UUID, step string, item int) func() {
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	var id int64
	err := ef.side.QueryRow(wctx, "INSERT INTO "+qualify(ef.schema, "executions")+
		" (run_id, step, item, actor) VALUES ($1, $2, $3, $4) RETURNING id", runID, step, item, ef.actor).Scan(&id)
	if err != nil {
		return func() {}
	}
	return func() {
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		_, _ = ef.side.Exec(wctx, "UPDATE "+qualify(ef.schema, "executions")+" SET finished_at = clock_timestamp() WHERE id = $1", id)
	}
}

// nap sleeps for d or until ctx ends.
func nap(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// --- the chaos workflow: a plain step, a for-each over 10 items, an await
// of 2 child runs, and a final step ---

const (
	chaosName      = "chaos"
	chaosChildName = "chaos-child"
	chaosItems     = 10
	chaosChildren  = 2
	// chaosEffects is the number of effects of one parent run with its
	// children: plain, 10 items, final, and one per child.
	chaosEffects = 1 + chaosItems + 1 + chaosChildren
)

type chaosArgs struct {
	N int `json:"n"`
}

type chaosState struct {
	// Items counts the for-each items that committed; a repeated item
	// would push it past chaosItems.
	Items int `json:"items"`
}

type childArgs struct {
	Parent uuid.UUID `json:"parent"`
	I      int       `json:"i"`
}

// chaosOptions retry failed steps quickly and often: the scenarios make
// steps fail on purpose (killed connections, dead workers).
func chaosOptions(maxAttempts int) workflow.Options {
	if maxAttempts == 0 {
		maxAttempts = 500
	}
	return workflow.Options{
		MaxAttempts: maxAttempts,
		Backoff:     func(int, error) time.Duration { return 20 * time.Millisecond },
	}
}

// chaosWorkflows defines the chaos workflow and its child workflow.
func chaosWorkflows(ef *effector) []workflow.Definition {
	parent := workflow.Define(chaosName, chaosOptions(ef.maxAttempts),
		steps.Do("plain", func(ctx context.Context, sc *steps.Context[chaosArgs, chaosState]) error {
			defer ef.execution(ctx, sc.RunID(), "plain", 0)()
			nap(ctx, ef.sleep)
			return ef.effect(ctx, sc.Tx(), sc.RunID(), "plain", 0)
		}),
		steps.ForEach("items",
			func(sc *steps.Context[chaosArgs, chaosState]) ([]int, error) {
				items := make([]int, chaosItems)
				for i := range items {
					items[i] = i
				}
				return items, nil
			},
			func(ctx context.Context, sc *steps.Context[chaosArgs, chaosState], item int) error {
				defer ef.execution(ctx, sc.RunID(), "items", item)()
				nap(ctx, ef.sleep/5)
				if int(sc.Cursor()) != item {
					return fmt.Errorf("item %d at cursor %d", item, sc.Cursor())
				}
				sc.State.Items++
				return ef.effect(ctx, sc.Tx(), sc.RunID(), "items", item)
			}, steps.ForEachOptions{}),
		steps.Await("children", func(ctx context.Context, sc *steps.Context[chaosArgs, chaosState]) ([]steps.RunRequest, error) {
			reqs := make([]steps.RunRequest, chaosChildren)
			for i := range reqs {
				reqs[i] = steps.RunRequest{Workflow: chaosChildName, Args: childArgs{Parent: sc.RunID(), I: i}}
			}
			return reqs, nil
		}, steps.AwaitOptions{}),
		steps.Do("final", func(ctx context.Context, sc *steps.Context[chaosArgs, chaosState]) error {
			if sc.State.Items != chaosItems {
				return fmt.Errorf("state says %d items committed, want %d", sc.State.Items, chaosItems)
			}
			children, err := sc.Children(ctx, "children")
			if err != nil {
				return err
			}
			if len(children) != chaosChildren {
				return fmt.Errorf("%d children, want %d", len(children), chaosChildren)
			}
			for _, c := range children {
				if c.State != acidic.RunSucceeded {
					return fmt.Errorf("child %s is %s", c.ID, c.State)
				}
			}
			defer ef.execution(ctx, sc.RunID(), "final", 0)()
			nap(ctx, ef.sleep/2)
			return ef.effect(ctx, sc.Tx(), sc.RunID(), "final", 0)
		}),
	)
	child := workflow.Define(chaosChildName, chaosOptions(ef.maxAttempts),
		steps.Do("work", func(ctx context.Context, sc *steps.Context[childArgs, struct{}]) error {
			defer ef.execution(ctx, sc.RunID(), "work", 0)()
			nap(ctx, ef.sleep)
			return ef.effect(ctx, sc.Tx(), sc.RunID(), "work", 0)
		}),
	)
	return []workflow.Definition{parent, child}
}

// enqueueChaos enqueues n chaos runs and returns their ids.
// enqueueChaos enqueues n runs of the chaos workflow through drv, with an
// engine that only enqueues, and returns their ids.
func enqueueChaos(t *testing.T, drv storage.Driver, ef *effector, n int) []uuid.UUID {
	t.Helper()
	e, err := workflow.NewEngine(drv, workflow.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Register(chaosWorkflows(ef)...); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ids := make([]uuid.UUID, n)
	for i := range ids {
		res, err := e.Enqueue(ctx, chaosName, chaosArgs{N: i}, workflow.EnqueueOptions{})
		if err != nil {
			t.Fatalf("enqueue run %d: %v", i, err)
		}
		ids[i] = res.Run.ID
	}
	return ids
}

// chaosProgress counts the committed effects and the finished parent runs.
func chaosProgress(ctx context.Context, pool *pgxpool.Pool, schema string) (effects, finished int, err error) {
	err = pool.QueryRow(ctx, "SELECT (SELECT count(*) FROM "+qualify(schema, "effects")+"),"+
		" (SELECT count(*) FROM "+qualify(schema, "runs")+" WHERE workflow = $1 AND state IN ('succeeded', 'failed', 'cancelled'))",
		chaosName).Scan(&effects, &finished)
	return effects, finished, err
}

// waitChaos waits until every parent run has finished. It gives up when
// nothing progressed (no new effect, no newly finished run) for stall, or
// after limit; it reports the last progress it saw.
func waitChaos(t *testing.T, pool *pgxpool.Pool, schema string, n int, stall, limit time.Duration) (bool, string) {
	t.Helper()
	lastEffects, lastFinished, lastChange := -1, -1, time.Now()
	stalled := false
	ok, saw := waitUntil(limit, 100*time.Millisecond, func() (bool, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		effects, finished, err := chaosProgress(ctx, pool, schema)
		if err != nil {
			return false, err.Error()
		}
		saw := fmt.Sprintf("%d of %d runs finished, %d of %d effects", finished, n, effects, n*chaosEffects)
		if effects != lastEffects || finished != lastFinished {
			lastEffects, lastFinished, lastChange = effects, finished, time.Now()
		} else if time.Since(lastChange) > stall {
			stalled = true
			return true, fmt.Sprintf("no progress for %s: %s", stall, saw)
		}
		return finished >= n, saw
	})
	return ok && !stalled, saw
}

// verifyChaos checks the outcome of a chaos scenario: every enqueued run
// and its children succeeded, every effect exists exactly once, the final
// step committed after both children, and no step ran again after it
// committed. It returns the duplicate and lost counts (and reports each
// problem as a test error).
func verifyChaos(t *testing.T, pool *pgxpool.Pool, schema string, ids []uuid.UUID) (duplicates, lost int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	runs := qualify(schema, "runs")
	effects := qualify(schema, "effects")

	// Lost: enqueued runs that did not succeed (or are missing), and
	// children that did not.
	rows, err := pool.Query(ctx, "SELECT id, state, recovery_point, coalesce(error, '') FROM "+runs+" WHERE id = ANY($1)", ids)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[uuid.UUID]bool{}
	for rows.Next() {
		var id uuid.UUID
		var state, rp, errText string
		if err := rows.Scan(&id, &state, &rp, &errText); err != nil {
			t.Fatal(err)
		}
		seen[id] = true
		if state != string(acidic.RunSucceeded) {
			lost++
			if lost <= 10 {
				t.Errorf("run %s: %s at %s: %s", id, state, rp, errText)
			}
		}
	}
	rows.Close()
	for _, id := range ids {
		if !seen[id] {
			lost++
			t.Errorf("run %s: missing", id)
		}
	}
	var badChildren int
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM "+runs+" WHERE workflow = $1 AND state <> 'succeeded'", chaosChildName).Scan(&badChildren); err != nil {
		t.Fatal(err)
	}
	if badChildren > 0 {
		t.Errorf("%d child runs did not succeed", badChildren)
		lost += badChildren
	}

	// Children: exactly 2 per parent (an await step that ran twice would
	// have staged 4).
	var wrongKids, extraKids int
	if err := pool.QueryRow(ctx, "SELECT count(*) FILTER (WHERE k <> $2), coalesce(sum(greatest(k - $2, 0)), 0) FROM"+
		" (SELECT p.id, (SELECT count(*) FROM "+runs+" c WHERE c.parent_run_id = p.id) AS k FROM "+runs+" p WHERE p.id = ANY($1)) x",
		ids, chaosChildren).Scan(&wrongKids, &extraKids); err != nil {
		t.Fatal(err)
	}
	if wrongKids > 0 {
		t.Errorf("%d runs do not have exactly %d children (%d extra)", wrongKids, chaosChildren, extraKids)
	}
	duplicates += extraKids

	// Effects: plain 1, items 0..9 once each, final 1; each child work 1.
	var wrongParents int
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM (SELECT p.id,"+
		" (SELECT count(*) FROM "+effects+" e WHERE e.run_id = p.id AND e.step = 'plain' AND e.item = 0) AS plain,"+
		" (SELECT count(*) FROM "+effects+" e WHERE e.run_id = p.id AND e.step = 'items' AND e.item BETWEEN 0 AND $2 - 1) AS items,"+
		" (SELECT count(*) FROM "+effects+" e WHERE e.run_id = p.id AND e.step = 'final' AND e.item = 0) AS final,"+
		" (SELECT count(*) FROM "+effects+" e WHERE e.run_id = p.id) AS total"+
		" FROM "+runs+" p WHERE p.id = ANY($1)) x WHERE plain <> 1 OR items <> $2 OR final <> 1 OR total <> $2 + 2",
		ids, chaosItems).Scan(&wrongParents); err != nil {
		t.Fatal(err)
	}
	if wrongParents > 0 {
		t.Errorf("%d runs do not have each of their effects exactly once", wrongParents)
	}
	var wrongChildren int
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM "+runs+" c WHERE c.workflow = $1 AND"+
		" (SELECT count(*) FROM "+effects+" e WHERE e.run_id = c.id) <> 1", chaosChildName).Scan(&wrongChildren); err != nil {
		t.Fatal(err)
	}
	if wrongChildren > 0 {
		t.Errorf("%d child runs do not have their effect exactly once", wrongChildren)
	}
	total := queryInt(t, pool, "SELECT count(*) FROM "+effects)
	if want := int64(len(ids) * chaosEffects); total != want {
		t.Errorf("%d effects, want %d", total, want)
	}

	// The parent resumed once, after both children committed.
	early := queryInt(t, pool, "SELECT count(*) FROM "+effects+" f JOIN "+runs+" c ON c.parent_run_id = f.run_id"+
		" JOIN "+effects+" w ON w.run_id = c.id WHERE f.step = 'final' AND w.at > f.at")
	if early > 0 {
		t.Errorf("%d final steps committed before one of their children", early)
	}

	// Steps that ran again after they committed: each (run, step, item)
	// counts once, however often its re-execution was retried.
	dups := int(queryInt(t, pool, "SELECT count(DISTINCT (run_id, step, item)) FROM "+qualify(schema, "dup_events")))
	if dups > 0 {
		attempts := queryInt(t, pool, "SELECT count(*) FROM "+qualify(schema, "dup_events"))
		rows, err := pool.Query(ctx, "SELECT run_id, step, item, actor, err FROM "+qualify(schema, "dup_events")+" ORDER BY id LIMIT 5")
		if err == nil {
			var b strings.Builder
			for rows.Next() {
				var id uuid.UUID
				var step, actor, e string
				var item int
				if rows.Scan(&id, &step, &item, &actor, &e) == nil {
					fmt.Fprintf(&b, "\n  run %s step %s item %d on %s: %s", id, step, item, actor, e)
				}
			}
			rows.Close()
			t.Errorf("%d committed step effects were executed again (%d executions hit the unique key), e.g.:%s", dups, attempts, b.String())
		}
	}
	duplicates += dups
	return duplicates, lost
}

// describeStuck lists unfinished runs with their jobs, for a timeout.
func describeStuck(t *testing.T, pool *pgxpool.Pool, schema string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rows, err := pool.Query(ctx, "SELECT r.id, r.workflow, r.state, r.recovery_point, r.cursor, coalesce(r.error, ''),"+
		" coalesce((SELECT string_agg(j.id || ':' || j.state || '#' || j.attempt, ' ') FROM "+qualify(schema, "jobs")+" j WHERE j.run_id = r.id), ''),"+
		" CASE WHEN r.locked_by IS NULL THEN 'free' ELSE 'held by job ' || coalesce(r.locked_job_id::text, '?') || '#' ||"+
		" coalesce(r.locked_attempt::text, '?') || ' for ' || date_trunc('second', now() - r.locked_at)::text END"+
		" FROM "+qualify(schema, "runs")+" r WHERE r.state NOT IN ('succeeded') ORDER BY r.created_at LIMIT 15")
	if err != nil {
		return err.Error()
	}
	defer rows.Close()
	var b strings.Builder
	for rows.Next() {
		var id uuid.UUID
		var wf, state, rp, errText, jobs, lease string
		var cursor int64
		if err := rows.Scan(&id, &wf, &state, &rp, &cursor, &errText, &jobs, &lease); err != nil {
			return err.Error()
		}
		fmt.Fprintf(&b, "\n  %s %s %s at %s[%d] lease %s, jobs [%s] %s", id, wf, state, rp, cursor, lease, jobs, errText)
	}
	return b.String()
}
