package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/queue"
	"github.com/acidic-go/acidic/storage"
)

func setupQueues(e *env, _ *flag.FlagSet) func([]string) (func() error, error) {
	return func(args []string) (func() error, error) {
		if err := wantArgs("queues", args); err != nil {
			return nil, err
		}
		return func() error {
			stats, err := e.drv.JobStats(e.ctx)
			if err != nil {
				return err
			}
			ages, err := e.drv.JobQueueAges(e.ctx, storage.JobQueueAgesParams{})
			if err != nil {
				return err
			}
			return e.printer().emit(queuesJSON(stats, ages), func(t *textOut) {
				if len(stats) == 0 {
					t.linef("no jobs in %s", e.place())
					return
				}
				tb := t.table("QUEUE", "STATE", "JOBS", "OLDEST DUE")
				for _, s := range stats {
					tb.row(s.Queue, string(s.State), strconv.FormatInt(s.Count, 10), timeText(s.OldestDue))
				}
				tb.flush()
				printQueueAges(t, ages)
			})
		}, nil
	}
}

// printQueueAges writes, after the queues' table, how many jobs each queue
// has available and how long the oldest has waited.
func printQueueAges(t *textOut, ages []acidic.QueueAge) {
	if len(ages) == 0 {
		return
	}
	t.blank()
	tb := t.table("QUEUE", "AVAILABLE", "OLDEST AVAILABLE FOR")
	for _, a := range ages {
		tb.row(a.Queue, strconv.FormatInt(a.Available, 10), durationText(a.OldestAge))
	}
	tb.flush()
}

// jobFilterFlags defines -state, -queue and -kind into f; the states are
// parsed by parse.
func jobFilterFlags(fs *flag.FlagSet, f *acidic.JobFilter) (parse func() error) {
	states := fs.String("state", "", "comma-separated job `states`")
	fs.StringVar(&f.Queue, "queue", "", "only jobs of this `queue`")
	fs.StringVar(&f.Kind, "kind", "", "only jobs of this `kind`")
	return func() (err error) {
		f.States, err = parseStates[acidic.JobState](*states)
		return err
	}
}

// queueClient is the queue of a workflow engine: cancelling a job that
// carries a run ends the run with it, in the same transaction.
func (e *env) queueClient() (*queue.Client, error) {
	eng, err := e.engine()
	if err != nil {
		return nil, err
	}
	return eng.Queue(), nil
}

func setupJobsList(e *env, fs *flag.FlagSet) func([]string) (func() error, error) {
	var f acidic.JobFilter
	parseStates := jobFilterFlags(fs, &f)
	fs.IntVar(&f.Limit, "limit", 100, "list at most `N` jobs")
	tagFlag(fs, &f.Tags, "jobs")
	return func(args []string) (func() error, error) {
		if err := wantArgs("jobs list", args); err != nil {
			return nil, err
		}
		if err := checkTagFlags("jobs list", f.Tags); err != nil {
			return nil, err
		}
		if err := parseStates(); err != nil {
			return nil, err
		}
		if f.Limit < 1 {
			return nil, fmt.Errorf("%w: jobs list: -limit must be at least 1", errUsage)
		}
		return func() error {
			client, err := e.queueClient()
			if err != nil {
				return err
			}
			jobs, err := client.List(e.ctx, f)
			if err != nil {
				return err
			}
			return e.printer().emit(jobsJSON(jobs), func(t *textOut) { printJobTable(t, jobs, "no jobs match in "+e.place()) })
		}, nil
	}
}

// jobByID sets up "jobs get|cancel ID": act does the work on the job.
func jobByID(cmd string, act func(e *env, c *queue.Client, id int64) (*acidic.Job, error)) func(*env, *flag.FlagSet) func([]string) (func() error, error) {
	return func(e *env, _ *flag.FlagSet) func([]string) (func() error, error) {
		return func(args []string) (func() error, error) {
			if err := wantArgs(cmd, args, "ID"); err != nil {
				return nil, err
			}
			id, err := parseJobID(args[0])
			if err != nil {
				return nil, err
			}
			return func() error { return e.jobAction(id, act) }, nil
		}
	}
}

func (e *env) jobAction(id int64, act func(e *env, c *queue.Client, id int64) (*acidic.Job, error)) error {
	client, err := e.queueClient()
	if err != nil {
		return err
	}
	job, err := act(e, client, id)
	if errors.Is(err, acidic.ErrNotFound) {
		return notFound{msg: fmt.Sprintf("job %d not found in %s", id, e.place())}
	}
	if err != nil {
		return err
	}
	return e.printer().emit(jobJSON(job), func(t *textOut) { printJob(t, job) })
}

var (
	setupJobGet = jobByID("jobs get", func(e *env, c *queue.Client, id int64) (*acidic.Job, error) {
		return c.Get(e.ctx, id)
	})
	setupJobCancel = jobByID("jobs cancel", func(e *env, c *queue.Client, id int64) (*acidic.Job, error) {
		return c.Cancel(e.ctx, id)
	})
	retryJob = func(e *env, c *queue.Client, id int64) (*acidic.Job, error) {
		return c.Retry(e.ctx, id)
	}
)

// setupJobsRetry is "jobs retry ID" or "jobs retry" with a filter.
func setupJobsRetry(e *env, fs *flag.FlagSet) func([]string) (func() error, error) {
	var f acidic.JobFilter
	parseStates := jobFilterFlags(fs, &f)
	return func(args []string) (func() error, error) {
		filtered := false
		fs.Visit(func(fl *flag.Flag) { filtered = filtered || !globalNames[fl.Name] })
		if len(args) > 0 || !filtered {
			if filtered {
				return nil, fmt.Errorf("%w: jobs retry takes a job ID or a filter (-state, -queue, -kind), not both", errUsage)
			}
			if len(args) == 0 {
				return nil, fmt.Errorf("%w: jobs retry needs a job ID or a filter (-state, -queue, -kind)", errUsage)
			}
			return jobByID("jobs retry", retryJob)(e, fs)(args)
		}
		if err := parseStates(); err != nil {
			return nil, err
		}
		return func() error { return e.retryJobs(f) }, nil
	}
}

// retryJobs retries every job f matches that can be retried, through
// queue.Client.RetryMany a batch of IDs at a time, with progress on stderr.
func (e *env) retryJobs(f acidic.JobFilter) error {
	matched, retried, err := e.eachJobBatch(f, "retrying jobs", "retried", (*queue.Client).RetryMany)
	if err != nil {
		return err
	}
	res := RetryJobsJSON{Matched: matched, Retried: jobsJSON(retried), Skipped: matched - len(retried)}
	return e.printer().emit(res, func(t *textOut) {
		t.linef("retried %d of %d matching jobs (%d skipped: not in a state that can be retried)", len(retried), matched, res.Skipped)
	})
}

func parseJobID(s string) (int64, error) {
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id <= 0 {
		return 0, fmt.Errorf("%w: job ID %q is not a positive number", errUsage, s)
	}
	return id, nil
}

// printJobTable writes jobs as a table, or none when there are none.
func printJobTable(t *textOut, jobs []*acidic.Job, none string) {
	if len(jobs) == 0 {
		t.line(none)
		return
	}
	tb := t.table("ID", "QUEUE", "KIND", "STATE", "ATTEMPT", "SCHEDULED", "LAST ERROR")
	for _, j := range jobs {
		last := ""
		if n := len(j.Errors); n > 0 {
			last = truncate(Clean(j.Errors[n-1].Error), 60)
		}
		tb.row(strconv.FormatInt(j.ID, 10), j.Queue, j.Kind, string(j.State),
			fmt.Sprintf("%d/%d", j.Attempt, j.MaxAttempts), j.ScheduledAt.Format(time.RFC3339), last)
	}
	tb.flush()
}

// printJob writes one job in full.
func printJob(t *textOut, j *acidic.Job) {
	t.field("job", strconv.FormatInt(j.ID, 10))
	t.field("queue", j.Queue)
	t.field("kind", j.Kind)
	t.field("state", string(j.State))
	if len(j.Tags) > 0 {
		t.field("tags", strings.Join(j.Tags, ", "))
	}
	t.field("priority", strconv.Itoa(j.Priority))
	t.field("attempt", fmt.Sprintf("%d of %d", j.Attempt, j.MaxAttempts))
	if j.RunID != uuid.Nil {
		t.field("run", j.RunID.String())
	}
	t.field("scheduled", j.ScheduledAt.Format(time.RFC3339))
	t.field("attempted", timeText(j.AttemptedAt))
	if j.AttemptedBy != "" {
		t.field("attempted by", j.AttemptedBy)
	}
	t.field("finalized", timeText(j.FinalizedAt))
	t.field("created", j.CreatedAt.Format(time.RFC3339))
	if len(j.DependsOn) > 0 {
		deps := make([]string, len(j.DependsOn))
		for i, d := range j.DependsOn {
			deps[i] = strconv.FormatInt(d, 10)
		}
		t.field("depends on", strings.Join(deps, ", "))
	}
	t.jsonField("args", j.Args)
	if len(j.Meta) > 0 && string(j.Meta) != "{}" && string(j.Meta) != "null" {
		t.jsonField("meta", j.Meta)
	}
	if len(j.Errors) == 0 {
		return
	}
	t.blank()
	tb := t.table("ATTEMPT", "AT", "ERROR")
	for _, ae := range j.Errors {
		tb.row(strconv.Itoa(ae.Attempt), ae.At.Format(time.RFC3339), truncate(Clean(ae.Error), t.width-40))
	}
	tb.flush()
	t.blank()
	t.field("last error", j.Errors[len(j.Errors)-1].Error)
}

// state is acidic.JobState or acidic.RunState.
type state interface {
	~string
	Valid() bool
}

// parseStates reads a comma-separated list of states; "" is none.
func parseStates[S state](list string) ([]S, error) {
	if list == "" {
		return nil, nil
	}
	var out []S
	for _, s := range strings.Split(list, ",") {
		st := S(strings.TrimSpace(s))
		if !st.Valid() {
			return nil, fmt.Errorf("%w: unknown state %q", errUsage, st)
		}
		out = append(out, st)
	}
	return out, nil
}

// matchingJobIDs lists the ids of every job f matches, a page at a time.
func (e *env) matchingJobIDs(client *queue.Client, f acidic.JobFilter) ([]int64, error) {
	var ids []int64
	page := f
	page.Limit = 1000
	for {
		jobs, err := client.List(e.ctx, page)
		if err != nil {
			return nil, err
		}
		for _, j := range jobs {
			ids = append(ids, j.ID)
		}
		if len(jobs) < page.Limit {
			return ids, nil
		}
		page.AfterID = jobs[len(jobs)-1].ID
	}
}

// eachJobBatch applies act (queue.Client.CancelMany, say) to the jobs f
// matches, a batch of IDs at a time (restricted to f.States), with progress
// on stderr labelled doing, and returns how many jobs f matched and the jobs
// act changed. An error names how far it got, in past (the verb's past
// tense).
func (e *env) eachJobBatch(f acidic.JobFilter, doing, past string,
	act func(*queue.Client, context.Context, acidic.JobFilter) ([]*acidic.Job, error)) (matched int, done []*acidic.Job, err error) {
	client, err := e.queueClient()
	if err != nil {
		return 0, nil, err
	}
	ids, err := e.matchingJobIDs(client, f)
	if err != nil {
		return 0, nil, err
	}
	p := newProgress(e.stderr, doing, len(ids))
	defer p.finish()
	done = []*acidic.Job{}
	for start := 0; start < len(ids); start += countEvery {
		batch := ids[start:min(start+countEvery, len(ids))]
		got, err := act(client, e.ctx, acidic.JobFilter{IDs: batch, States: f.States})
		done = append(done, got...)
		p.add(len(batch))
		if err != nil {
			return len(ids), done, fmt.Errorf("%s %d of %d matching jobs, then: %w", past, len(done), len(ids), err)
		}
	}
	return len(ids), done, nil
}
