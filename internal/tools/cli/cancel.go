package cli

import (
	"errors"
	"flag"
	"fmt"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/queue"
	"github.com/acidic-go/acidic/storage"
)

// Cancel by filter: "jobs cancel" and "runs cancel" with filter flags
// instead of an ID. Without -state, they match what has not finished.
var (
	unfinishedJobStates = []acidic.JobState{acidic.JobPending, acidic.JobAvailable, acidic.JobScheduled, acidic.JobRunning, acidic.JobRetryable}
	unfinishedRunStates = []acidic.RunState{acidic.RunPending, acidic.RunRunning, acidic.RunAwaiting, acidic.RunHalted}
)

// operatorCancel is the error of a run Engine.Cancel cancelled.
const operatorCancel = "cancelled by operator"

// filtered reports whether a command's own flags (not the global ones) were
// given.
func filtered(fs *flag.FlagSet) bool {
	set := false
	fs.Visit(func(fl *flag.Flag) { set = set || !globalNames[fl.Name] })
	return set
}

// setupJobsCancel is "jobs cancel ID" or "jobs cancel" with a filter.
func setupJobsCancel(e *env, fs *flag.FlagSet) func([]string) (func() error, error) {
	var f acidic.JobFilter
	parseStates := jobFilterFlags(fs, &f)
	return func(args []string) (func() error, error) {
		if len(args) > 0 || !filtered(fs) {
			if filtered(fs) {
				return nil, fmt.Errorf("%w: jobs cancel takes a job ID or a filter (-state, -queue, -kind), not both", errUsage)
			}
			if len(args) == 0 {
				return nil, fmt.Errorf("%w: jobs cancel needs a job ID or a filter (-state, -queue, -kind)", errUsage)
			}
			return setupJobCancel(e, fs)(args)
		}
		if err := parseStates(); err != nil {
			return nil, err
		}
		if len(f.States) == 0 {
			f.States = unfinishedJobStates
		}
		return func() error { return e.cancelJobs(f) }, nil
	}
}

// cancelJobs cancels every job f matches that has not finished, through
// queue.Client.CancelMany a batch of IDs at a time (each job in its own
// transaction, a run it carries ending with it), with progress on stderr.
func (e *env) cancelJobs(f acidic.JobFilter) error {
	matched, cancelled, err := e.eachJobBatch(f, "cancelling jobs", "cancelled", (*queue.Client).CancelMany)
	if err != nil {
		return err
	}
	res := CancelJobsJSON{Matched: matched, Cancelled: jobsJSON(cancelled), Skipped: matched - len(cancelled)}
	return e.printer().emit(res, func(t *textOut) {
		t.linef("cancelled %d of %d matching jobs (%d skipped: finished before their turn)", len(cancelled), matched, res.Skipped)
	})
}

// setupRunsCancel is "runs cancel ID" or "runs cancel" with a filter.
func setupRunsCancel(e *env, fs *flag.FlagSet) func([]string) (func() error, error) {
	var f acidic.RunFilter
	parseStates := runFilterFlags(fs, &f)
	return func(args []string) (func() error, error) {
		if len(args) > 0 || !filtered(fs) {
			if filtered(fs) {
				return nil, fmt.Errorf("%w: runs cancel takes a run ID or a filter (-state, -workflow), not both", errUsage)
			}
			if len(args) == 0 {
				return nil, fmt.Errorf("%w: runs cancel needs a run ID or a filter (-state, -workflow)", errUsage)
			}
			return setupRunCancel(e, fs)(args)
		}
		if err := parseStates(); err != nil {
			return nil, err
		}
		if len(f.States) == 0 {
			f.States = unfinishedRunStates
		}
		return func() error { return e.cancelRuns(f) }, nil
	}
}

// cancelRuns cancels every run f matches that has not finished, as
// Engine.CancelMany does (each run in its own transaction: its jobs and
// unfinished children cancelled, its OnFinish staged), one run at a time so
// that progress shows on stderr. A run that finished before its turn came
// (a child cancelled with its parent, say) is skipped; any other error
// stops.
func (e *env) cancelRuns(f acidic.RunFilter) error {
	eng, err := e.engine()
	if err != nil {
		return err
	}
	var matched []*acidic.Run
	f.Limit = 1000
	err = storage.EachRunPage(e.ctx, e.drv, f, func(page []*acidic.Run) error {
		matched = append(matched, page...)
		return nil
	})
	if err != nil {
		return err
	}
	p := newProgress(e.stderr, "cancelling runs", len(matched))
	cancelled := []*acidic.Run{}
	for _, m := range matched {
		var r *acidic.Run
		var err error
		if !m.State.Final() {
			r, err = eng.Cancel(e.ctx, m.ID)
		}
		p.add(1)
		switch {
		case errors.Is(err, acidic.ErrNotFound):
		case err != nil:
			p.finish()
			return fmt.Errorf("cancelled %d of %d matching runs, then: %w", len(cancelled), len(matched), err)
		case r != nil && r.State == acidic.RunCancelled && r.Error == operatorCancel:
			// Cancelled now: Cancel returns a run that had finished
			// unchanged, and a child cancelled with its parent says so.
			cancelled = append(cancelled, r)
		}
	}
	p.finish()
	res := CancelRunsJSON{Matched: len(matched), Cancelled: runsJSON(cancelled), Skipped: len(matched) - len(cancelled)}
	return e.printer().emit(res, func(t *textOut) {
		t.linef("cancelled %d of %d matching runs (%d skipped: finished before their turn)", len(cancelled), len(matched), res.Skipped)
	})
}
