package cli

import (
	"errors"
	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/storage"
	"github.com/acidic-go/acidic/workflow"
)

// defaultRetryStates are the runs "runs retry" with a filter but no -state
// resumes: those Engine.RetryMany resumes by default.
var defaultRetryStates = []acidic.RunState{acidic.RunFailed, acidic.RunCancelled}

func (e *env) engine() (*workflow.Engine, error) {
	return workflow.NewEngine(e.drv, workflow.Config{Logger: e.logger()})
}

// runFilterFlags defines -state and -workflow into f; the states are parsed
// by parse.
func runFilterFlags(fs *flag.FlagSet, f *acidic.RunFilter) (parse func() error) {
	states := fs.String("state", "", "comma-separated run `states`")
	fs.StringVar(&f.Workflow, "workflow", "", "only runs of this `workflow`")
	return func() (err error) {
		f.States, err = parseStates[acidic.RunState](*states)
		return err
	}
}

func setupRunsList(e *env, fs *flag.FlagSet) func([]string) (func() error, error) {
	var f acidic.RunFilter
	parseStates := runFilterFlags(fs, &f)
	fs.IntVar(&f.Limit, "limit", 100, "list at most `N` runs")
	tagFlag(fs, &f.Tags, "runs")
	return func(args []string) (func() error, error) {
		if err := wantArgs("runs list", args); err != nil {
			return nil, err
		}
		if err := checkTagFlags("runs list", f.Tags); err != nil {
			return nil, err
		}
		if err := parseStates(); err != nil {
			return nil, err
		}
		if f.Limit < 1 {
			return nil, fmt.Errorf("%w: runs list: -limit must be at least 1", errUsage)
		}
		return func() error {
			eng, err := e.engine()
			if err != nil {
				return err
			}
			runs, err := eng.List(e.ctx, f)
			if err != nil {
				return err
			}
			return e.printer().emit(runsJSON(runs), func(t *textOut) {
				printRunTable(t, runs, "no runs match in "+e.place())
			})
		}, nil
	}
}

// runByID sets up "runs get|cancel|retry ID": act does the work on the run,
// which is then shown with its step log.
func runByID(cmd string, act func(e *env, eng *workflow.Engine, id uuid.UUID) error) func(*env, *flag.FlagSet) func([]string) (func() error, error) {
	return func(e *env, _ *flag.FlagSet) func([]string) (func() error, error) {
		return func(args []string) (func() error, error) {
			if err := wantArgs(cmd, args, "ID"); err != nil {
				return nil, err
			}
			id, err := parseRunID(args[0])
			if err != nil {
				return nil, err
			}
			return func() error { return e.runAction(id, act) }, nil
		}
	}
}

func (e *env) runAction(id uuid.UUID, act func(e *env, eng *workflow.Engine, id uuid.UUID) error) error {
	eng, err := e.engine()
	if err != nil {
		return err
	}
	if act != nil {
		err = act(e, eng, id)
	}
	var r *acidic.Run
	if err == nil {
		r, err = eng.Get(e.ctx, id)
	}
	if errors.Is(err, acidic.ErrNotFound) {
		return notFound{msg: fmt.Sprintf("run %s not found in %s", id, e.place())}
	}
	if err != nil {
		return err
	}
	return e.printer().emit(runDetailJSON(r), func(t *textOut) { printRun(t, r) })
}

var (
	setupRunGet    = runByID("runs get", nil)
	setupRunCancel = runByID("runs cancel", func(e *env, eng *workflow.Engine, id uuid.UUID) error {
		_, err := eng.Cancel(e.ctx, id)
		return err
	})
	retryRun = func(e *env, eng *workflow.Engine, id uuid.UUID) error {
		_, err := eng.Retry(e.ctx, id)
		return err
	}
)

// setupRunsRetry is "runs retry ID" or "runs retry" with a filter.
func setupRunsRetry(e *env, fs *flag.FlagSet) func([]string) (func() error, error) {
	var f acidic.RunFilter
	parseStates := runFilterFlags(fs, &f)
	return func(args []string) (func() error, error) {
		filtered := false
		fs.Visit(func(fl *flag.Flag) { filtered = filtered || !globalNames[fl.Name] })
		if len(args) > 0 || !filtered {
			if filtered {
				return nil, fmt.Errorf("%w: runs retry takes a run ID or a filter (-state, -workflow), not both", errUsage)
			}
			if len(args) == 0 {
				return nil, fmt.Errorf("%w: runs retry needs a run ID or a filter (-state, -workflow)", errUsage)
			}
			return runByID("runs retry", retryRun)(e, fs)(args)
		}
		if err := parseStates(); err != nil {
			return nil, err
		}
		if len(f.States) == 0 {
			f.States = defaultRetryStates
		}
		return func() error { return e.retryRuns(f) }, nil
	}
}

// retryRuns resumes every run f matches, as Engine.RetryMany does (the
// matching runs a page at a time, each retried in its own transaction),
// one run at a time so that progress shows on stderr. A run that is no
// longer retryable when its turn comes (another operator, a worker) is
// skipped; any other error stops.
func (e *env) retryRuns(f acidic.RunFilter) error {
	eng, err := e.engine()
	if err != nil {
		return err
	}
	var ids []uuid.UUID
	f.Limit = 1000
	err = storage.EachRunPage(e.ctx, e.drv, f, func(page []*acidic.Run) error {
		for _, r := range page {
			ids = append(ids, r.ID)
		}
		return nil
	})
	if err != nil {
		return err
	}
	p := newProgress(e.stderr, "retrying runs", len(ids))
	retried := []*acidic.Run{}
	for _, id := range ids {
		r, err := eng.Retry(e.ctx, id)
		p.add(1)
		switch {
		case errors.Is(err, workflow.ErrNotRetryable), errors.Is(err, acidic.ErrNotFound):
		case err != nil:
			p.finish()
			return fmt.Errorf("retried %d of %d matching runs, then: %w", len(retried), len(ids), err)
		default:
			retried = append(retried, r)
		}
	}
	p.finish()
	res := RetryRunsJSON{Matched: len(ids), Retried: runsJSON(retried), Skipped: len(ids) - len(retried)}
	return e.printer().emit(res, func(t *textOut) {
		t.linef("retried %d of %d matching runs (%d skipped: no longer retryable)", len(retried), len(ids), res.Skipped)
	})
}

func parseRunID(s string) (uuid.UUID, error) {
	id, err := uuid.Parse(s)
	if err != nil {
		return uuid.Nil, fmt.Errorf("%w: run ID %q is not a UUID", errUsage, s)
	}
	return id, nil
}

// printRunTable writes runs as a table, or none when there are none.
func printRunTable(t *textOut, runs []*acidic.Run, none string) {
	if len(runs) == 0 {
		t.line(none)
		return
	}
	tb := t.table("ID", "WORKFLOW", "STATE", "RECOVERY POINT", "KEY", "UPDATED", "ERROR")
	for _, r := range runs {
		tb.row(r.ID.String(), r.Workflow, string(r.State), orDash(r.RecoveryPoint),
			r.IdempotencyKey, r.UpdatedAt.Format(time.RFC3339), truncate(Clean(r.Error), 60))
	}
	tb.flush()
}

// printRun writes one run in full: its fields, arguments, persisted state
// and result, then its step log.
func printRun(t *textOut, r *acidic.Run) {
	t.field("run", r.ID.String())
	t.field("workflow", r.Workflow)
	t.field("state", string(r.State))
	t.field("queue", r.Queue)
	t.field("key", r.IdempotencyKey)
	if len(r.Tags) > 0 {
		t.field("tags", strings.Join(r.Tags, ", "))
	}
	t.field("recovery point", orDash(r.RecoveryPoint))
	if r.ParentRunID != uuid.Nil {
		t.field("parent", fmt.Sprintf("%s (step %s)", r.ParentRunID, r.ParentStep))
	}
	if r.Awaiting > 0 {
		t.field("awaiting", fmt.Sprintf("%d child runs", r.Awaiting))
	}
	if r.Cursor > 0 {
		t.field("cursor", strconv.FormatInt(r.Cursor, 10))
	}
	if r.LockedBy != "" {
		t.field("locked by", fmt.Sprintf("%s since %s", r.LockedBy, timeText(r.LockedAt)))
	}
	t.field("created", r.CreatedAt.Format(time.RFC3339))
	t.field("updated", r.UpdatedAt.Format(time.RFC3339))
	t.field("last run", timeText(r.LastRunAt))
	if r.FinishedAt != nil {
		t.field("finished", fmt.Sprintf("%s (took %s)", timeText(r.FinishedAt), durationText(r.FinishedAt.Sub(r.CreatedAt))))
	} else {
		t.field("finished", fmt.Sprintf("- (created %s ago)", durationText(time.Since(r.CreatedAt))))
	}
	t.field("definition", orDash(r.DefinitionHash))
	if r.Error != "" {
		t.field("error", r.Error)
	}
	t.jsonField("args", r.Args)
	t.jsonField("attrs", r.Attrs)
	t.jsonField("result", r.Result)
	if len(r.Steps) == 0 {
		t.blank()
		t.line("no steps recorded yet")
		return
	}
	t.blank()
	tb := t.table("#", "STEP", "STATE", "ATTEMPT", "EXECUTIONS", "STARTED", "TOOK", "ERROR")
	for _, s := range r.Steps {
		took := "-"
		if !s.StartedAt.IsZero() && !s.FinishedAt.IsZero() {
			took = durationText(s.FinishedAt.Sub(s.StartedAt))
		}
		tb.row(strconv.Itoa(s.Position+1), s.Name, string(s.State), strconv.Itoa(s.Attempt), strconv.Itoa(s.Executions),
			timeText(&s.StartedAt), took, truncate(Clean(s.Error), 40))
	}
	tb.flush()
	for _, s := range r.Steps {
		if s.Error == "" && (len(s.Result) == 0 || string(s.Result) == "null") && len(s.Logs) == 0 && len(s.Failures) == 0 {
			continue
		}
		t.blank()
		t.line(fmt.Sprintf("step %d %s", s.Position+1, s.Name))
		if s.Error != "" {
			t.field("  error", s.Error)
		}
		if len(s.Result) > 0 && string(s.Result) != "null" {
			t.jsonField("  result", s.Result)
		}
		printStepDetails(t, s)
	}
}
