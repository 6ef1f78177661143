package workflow_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/internal/testkit/enginetest"
	"github.com/acidic-go/acidic/internal/testkit/testdb"
	"github.com/acidic-go/acidic/queue"
	"github.com/acidic-go/acidic/steps"
	"github.com/acidic-go/acidic/storage"
	"github.com/acidic-go/acidic/workflow"
)

type emailArgs struct {
	To string `json:"to"`
}

type smsArgs struct {
	Phone string `json:"phone"`
}

var (
	sendEmail = queue.NewKind[emailArgs]("send_email")
	sendSMS   = queue.NewKind[smsArgs]("send_sms")
)

type notifyArgs struct {
	Order string `json:"order"`
}

// awaitJobsFixture is a workflow whose step "notify" awaits an email job on
// queue "email" and an SMS job on queue "sms"; step "after" then records
// its effect and what the jobs did.
type awaitJobsFixture struct {
	drv  storage.Driver
	e    *workflow.Engine
	wf   *workflow.Workflow[notifyArgs, struct{}]
	fail atomic.Int32 // attempts of send_sms that fail before it succeeds (-1: always)
	// after counts the executions of step "after"; seen is what it read.
	after atomic.Int32
	seen  atomic.Pointer[[]*acidic.AwaitedJob]
}

func newAwaitJobs(t *testing.T, drv storage.Driver, opts steps.AwaitOptions, smsAttempts int) *awaitJobsFixture {
	t.Helper()
	f := &awaitJobsFixture{drv: drv}
	createEffects(t, f.drv)
	f.wf = workflow.Define[notifyArgs, struct{}]("notify-order", fastOptions(3)).
		AwaitJobs("notify", opts,
			sendEmail.Params(emailArgs{To: "ada@example.com"}, queue.EnqueueOptions{Queue: "email"}),
			sendSMS.Params(smsArgs{Phone: "+15550100"}, queue.EnqueueOptions{Queue: "sms", MaxAttempts: smsAttempts})).
		Step("after", func(ctx context.Context, sc *steps.Context[notifyArgs, struct{}]) error {
			f.after.Add(1)
			jobs, err := sc.ChildJobs(ctx, "notify")
			if err != nil {
				return err
			}
			f.seen.Store(&jobs)
			return recordEffect(ctx, f.drv, sc.Tx(), sc.RunID(), "after", 0)
		})
	cfg := enginetest.Config(2)
	cfg.Queue.Workers = queue.NewWorkers()
	_ = sendEmail.Handle(cfg.Queue.Workers, func(context.Context, *acidic.Job, emailArgs) error { return nil }, queue.KindOptions{})
	_ = sendSMS.Handle(cfg.Queue.Workers, func(ctx context.Context, job *acidic.Job, _ smsArgs) error {
		if n := f.fail.Load(); n < 0 || int32(job.Attempt) <= n {
			return fmt.Errorf("sms gateway down (attempt %d)", job.Attempt)
		}
		return nil
	}, queue.KindOptions{Backoff: func(int, error) time.Duration { return 0 }})
	f.e = enginetest.New(t, f.drv, cfg, f.wf)
	return f
}

func (f *awaitJobsFixture) enqueue(t *testing.T) uuid.UUID {
	t.Helper()
	res, err := f.wf.Enqueue(ctxT(t), f.e, notifyArgs{Order: "o-1"}, workflow.EnqueueOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return res.Run.ID
}

func (f *awaitJobsFixture) drain(t *testing.T, queueName string) queue.DrainResult {
	t.Helper()
	res, err := f.e.Queue().Drain(ctxT(t), queueName, queue.DrainOptions{WithScheduled: true})
	if err != nil {
		t.Fatalf("drain %s: %v", queueName, err)
	}
	return res
}

// resumeJob returns the run's job that waits for its awaited jobs.
func (f *awaitJobsFixture) resumeJob(t *testing.T, id uuid.UUID) *acidic.Job {
	t.Helper()
	for _, j := range jobsOf(t, f.drv, id, "notify-order") {
		if len(j.DependsOn) > 0 {
			return j
		}
	}
	t.Fatalf("run %s has no resume job: %s", id, describeJobs(jobsOf(t, f.drv, id, "")))
	return nil
}

func (f *awaitJobsFixture) awaited(t *testing.T, id uuid.UUID, kind string) *acidic.Job {
	t.Helper()
	jobs, err := f.drv.JobList(ctxT(t), acidic.JobFilter{Kind: kind})
	if err != nil || len(jobs) != 1 {
		t.Fatalf("%d jobs of kind %s (%v), want 1", len(jobs), kind, err)
	}
	return jobs[0]
}

func TestAwaitJobsContinuesOnceAfterTheLastJob(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		f := newAwaitJobs(t, drv, steps.AwaitOptions{}, 0)
		f.fail.Store(1) // the SMS fails once, then succeeds: a retry is no end
		id := f.enqueue(t)
		if got := f.drain(t, "default"); got.Success != 1 {
			t.Fatalf("drain default: %+v", got)
		}
		if r := getRun(t, f.e, id); r.State != acidic.RunAwaiting || r.Awaiting != 2 {
			t.Fatalf("run %s awaiting %d, want awaiting 2", r.State, r.Awaiting)
		}
		if got := f.drain(t, "email"); got.Success != 1 {
			t.Fatalf("drain email: %+v", got)
		}
		if j := f.resumeJob(t, id); j.State != acidic.JobPending {
			t.Fatalf("resume job %s after one of two jobs ended, want pending", j.State)
		}
		// The SMS's first attempt fails: retryable is not an end.
		if _, err := f.e.Queue().Drain(ctxT(t), "sms", queue.DrainOptions{MaxJobs: 1}); err != nil {
			t.Fatal(err)
		}
		if j := f.resumeJob(t, id); j.State != acidic.JobPending {
			t.Fatalf("resume job %s after a failed attempt, want pending", j.State)
		}
		f.drain(t, "sms")
		if j := f.resumeJob(t, id); j.State != acidic.JobAvailable {
			t.Fatalf("resume job %s after the last job completed, want available", j.State)
		}
		f.drain(t, "default")
		r := getRun(t, f.e, id)
		if r.State != acidic.RunSucceeded || f.after.Load() != 1 || countEffects(t, f.drv, id, "after") != 1 {
			t.Fatalf("run %s (%s); step after ran %d times", r.State, r.Error, f.after.Load())
		}
		seen := *f.seen.Load()
		if len(seen) != 2 || seen[0].Kind != "send_email" || seen[1].Kind != "send_sms" || !seen[0].Succeeded() || !seen[1].Succeeded() ||
			len(seen[1].Errors) != 1 || seen[1].Queue != "sms" {
			t.Fatalf("step after saw %+v", seen)
		}
		if s := stepLog(t, r, "notify"); s.State != acidic.StepSucceeded {
			t.Fatalf("await step %s", s.State)
		}
	})
}

func TestAwaitJobsFailurePolicy(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		opts steps.AwaitOptions
		want acidic.RunState
	}{
		{"fails the run", steps.AwaitOptions{}, acidic.RunFailed},
		{"continue on failure", steps.AwaitOptions{ContinueOnFailure: true}, acidic.RunSucceeded},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
				f := newAwaitJobs(t, drv, tc.opts, 1)
				f.fail.Store(-1)
				id := f.enqueue(t)
				f.drain(t, "default")
				f.drain(t, "email")
				if got := f.drain(t, "sms"); got.Discarded != 1 {
					t.Fatalf("drain sms: %+v", got)
				}
				f.drain(t, "default")
				r := getRun(t, f.e, id)
				if r.State != tc.want {
					t.Fatalf("run %s (%s), want %s", r.State, r.Error, tc.want)
				}
				if tc.want == acidic.RunFailed {
					if f.after.Load() != 0 || !strings.Contains(r.Error, "send_sms") || !strings.Contains(r.Error, "sms gateway down") {
						t.Fatalf("run error %q; step after ran %d times", r.Error, f.after.Load())
					}
					return
				}
				seen := *f.seen.Load()
				if f.after.Load() != 1 || len(seen) != 2 || seen[1].State != acidic.JobDiscarded || seen[1].LastError() != "sms gateway down (attempt 1)" {
					t.Fatalf("step after ran %d times and saw %+v", f.after.Load(), seen)
				}
			})
		})
	}
}

// An operator cancels an awaited job: the run resumes (through the
// dependency resolution that follows the cancel) and fails, once.
func TestAwaitJobsOperatorCancel(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		f := newAwaitJobs(t, drv, steps.AwaitOptions{}, 0)
		id := f.enqueue(t)
		f.drain(t, "default")
		f.drain(t, "email")
		sms := f.awaited(t, id, "send_sms")
		if _, err := f.e.Queue().Cancel(ctxT(t), sms.ID); err != nil {
			t.Fatal(err)
		}
		if j := f.resumeJob(t, id); j.State != acidic.JobAvailable {
			t.Fatalf("resume job %s after the cancel, want available", j.State)
		}
		f.drain(t, "default")
		r := getRun(t, f.e, id)
		if r.State != acidic.RunFailed || !strings.Contains(r.Error, "cancelled") || f.after.Load() != 0 {
			t.Fatalf("run %s (%s), step after ran %d times", r.State, r.Error, f.after.Load())
		}
		// A second cancel, and the job's retry afterwards, change nothing.
		if _, err := f.e.Queue().Cancel(ctxT(t), sms.ID); err != nil {
			t.Fatal(err)
		}
		if n := len(jobsOf(t, f.drv, id, "notify-order")); n != 2 {
			t.Fatalf("run has %d jobs, want 2", n)
		}
	})
}

// The worker of an awaited job dies on the job's last attempt: the rescue
// discards it and the maintenance pass that rescued it resolves the
// dependency, so the run resumes, once.
func TestAwaitJobsRescueOfLastAttempt(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		f := newAwaitJobs(t, drv, steps.AwaitOptions{ContinueOnFailure: true}, 1)
		id := f.enqueue(t)
		f.drain(t, "default")
		f.drain(t, "email")
		claimed, err := f.drv.JobFetch(ctxT(t), storage.JobFetchParams{Queue: "sms", Max: 1, WorkerID: "dead-worker"})
		if err != nil || len(claimed) != 1 {
			t.Fatalf("claim: %v %d", err, len(claimed))
		}
		ageHeartbeat(t, f.drv, claimed[0].Job.ID)
		cfg := enginetest.Config(1)
		cfg.Queue.RescueAfter = time.Minute
		cfg.Queue.Workers = queue.NewWorkers()
		rescuer := enginetest.New(t, f.drv, cfg, f.wf)
		res := rescuer.Queue().Maintain(ctxT(t))
		if len(res.Rescued) != 1 || res.Rescued[0].State != acidic.JobDiscarded {
			t.Fatalf("rescued %+v", res.Rescued)
		}
		if j := f.resumeJob(t, id); j.State != acidic.JobAvailable {
			t.Fatalf("resume job %s after the rescue, want available", j.State)
		}
		f.drain(t, "default")
		r := getRun(t, f.e, id)
		seen := *f.seen.Load()
		if r.State != acidic.RunSucceeded || f.after.Load() != 1 || seen[1].State != acidic.JobDiscarded {
			t.Fatalf("run %s (%s), step after ran %d times, saw %+v", r.State, r.Error, f.after.Load(), seen)
		}
	})
}

// The process dies between an awaited job's end for good and the
// resolution of its dependents: the leader's maintenance pass resolves
// them, and the run resumes once.
func TestAwaitJobsCrashBetweenEndAndCount(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		f := newAwaitJobs(t, drv, steps.AwaitOptions{ContinueOnFailure: true}, 0)
		id := f.enqueue(t)
		f.drain(t, "default")
		f.drain(t, "email")
		claimed, err := f.drv.JobFetch(ctxT(t), storage.JobFetchParams{Queue: "sms", Max: 1, WorkerID: "w"})
		if err != nil || len(claimed) != 1 {
			t.Fatalf("claim: %v %d", err, len(claimed))
		}
		// The job's end is written; the dependency resolution that follows
		// it in the client never runs.
		j := claimed[0].Job
		if _, err := f.drv.JobFinish(ctxT(t), storage.JobFinishParams{JobAttempt: storage.JobAttempt{ID: j.ID, Attempt: j.Attempt}, State: acidic.JobCancelled,
			Error: &acidic.AttemptError{Attempt: j.Attempt, At: time.Now(), Error: "no longer wanted"}}); err != nil {
			t.Fatal(err)
		}
		if r := f.resumeJob(t, id); r.State != acidic.JobPending {
			t.Fatalf("resume job %s before the sweep", r.State)
		}
		f.e.Queue().Maintain(ctxT(t))
		if r := f.resumeJob(t, id); r.State != acidic.JobAvailable {
			t.Fatalf("resume job %s after the sweep, want available", r.State)
		}
		f.drain(t, "default")
		f.e.Queue().Maintain(ctxT(t))
		f.drain(t, "default")
		r := getRun(t, f.e, id)
		if r.State != acidic.RunSucceeded || f.after.Load() != 1 {
			t.Fatalf("run %s (%s), step after ran %d times", r.State, r.Error, f.after.Load())
		}
	})
}

// Awaited jobs completed by a started client, in batches: the resume job is
// released in the statement that completes the last of them, whichever
// client (here a bare queue client, without the engine) works them.
func TestAwaitJobsCompletedInBatchesByABareClient(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		f := newAwaitJobs(t, drv, steps.AwaitOptions{}, 0)
		ids := make([]uuid.UUID, 5)
		for i := range ids {
			ids[i] = f.enqueue(t)
		}
		f.drain(t, "default")
		qcfg := enginetest.Config(4).Queue
		qcfg.Queues = map[string]queue.QueueConfig{"email": {MaxWorkers: 4}, "sms": {MaxWorkers: 4}}
		qcfg.CompleteFlushInterval = 20 * time.Millisecond
		qcfg.Workers = queue.NewWorkers()
		_ = sendEmail.Handle(qcfg.Workers, func(context.Context, *acidic.Job, emailArgs) error { return nil }, queue.KindOptions{})
		_ = sendSMS.Handle(qcfg.Workers, func(context.Context, *acidic.Job, smsArgs) error { return nil }, queue.KindOptions{})
		bare, err := queue.New(f.drv, qcfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := bare.Start(ctxT(t)); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 20*time.Second, "every resume job released", func() (bool, string) {
			n := 0
			for _, id := range ids {
				if f.resumeJob(t, id).State == acidic.JobAvailable {
					n++
				}
			}
			return n == len(ids), fmt.Sprintf("%d of %d", n, len(ids))
		})
		if err := bare.Stop(ctxT(t)); err != nil {
			t.Fatal(err)
		}
		f.drain(t, "default")
		for _, id := range ids {
			if r := getRun(t, f.e, id); r.State != acidic.RunSucceeded || countEffects(t, f.drv, id, "after") != 1 {
				t.Fatalf("run %s %s (%s)", id, r.State, r.Error)
			}
		}
		if f.after.Load() != int32(len(ids)) {
			t.Fatalf("step after ran %d times for %d runs", f.after.Load(), len(ids))
		}
	})
}

// The resume job of an earlier await, delivered again while the run rests
// at a later await, resumes nothing; an operator's cancel of the current
// resume job ends the run, which would otherwise rest for ever.
func TestAwaitJobsResumeJobBelongsToItsAwait(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		var third atomic.Int32
		wf := workflow.Define[notifyArgs, struct{}]("twice", fastOptions(3)).
			AwaitJobs("first", steps.AwaitOptions{}, sendEmail.Params(emailArgs{To: "a"}, queue.EnqueueOptions{Queue: "email"})).
			AwaitJobs("second", steps.AwaitOptions{}, sendEmail.Params(emailArgs{To: "b"}, queue.EnqueueOptions{Queue: "email"})).
			Step("third", func(context.Context, *steps.Context[notifyArgs, struct{}]) error { third.Add(1); return nil })
		cfg := enginetest.Config(1)
		cfg.Queue.Workers = queue.NewWorkers()
		_ = sendEmail.Handle(cfg.Queue.Workers, func(context.Context, *acidic.Job, emailArgs) error { return nil }, queue.KindOptions{})
		e := enginetest.New(t, drv, cfg, wf)
		res, err := wf.Enqueue(ctxT(t), e, notifyArgs{}, workflow.EnqueueOptions{})
		if err != nil {
			t.Fatal(err)
		}
		drain := func(q string) {
			if _, err := e.Queue().Drain(ctxT(t), q, queue.DrainOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		drain("default")
		drain("email")
		drain("default") // resumes at step "second", which parks again
		r := getRun(t, e, res.Run.ID)
		if r.State != acidic.RunAwaiting || r.RecoveryPoint != "third" {
			t.Fatalf("run %s at %s", r.State, r.RecoveryPoint)
		}
		var firstResume, secondResume *acidic.Job
		for _, j := range jobsOf(t, drv, r.ID, "twice") {
			if len(j.DependsOn) > 0 && j.State == acidic.JobCompleted {
				firstResume = j
			} else if len(j.DependsOn) > 0 {
				secondResume = j
			}
		}
		if firstResume == nil || secondResume == nil {
			t.Fatalf("resume jobs: %s", describeJobs(jobsOf(t, drv, r.ID, "")))
		}
		if _, err := e.Queue().Retry(ctxT(t), firstResume.ID); err != nil {
			t.Fatal(err)
		}
		drain("default")
		if r := getRun(t, e, res.Run.ID); r.State != acidic.RunAwaiting || third.Load() != 0 {
			t.Fatalf("the first await's resume job moved the run: %s, step third ran %d times", r.State, third.Load())
		}
		if _, err := e.Queue().Cancel(ctxT(t), secondResume.ID); err != nil {
			t.Fatal(err)
		}
		if r := getRun(t, e, res.Run.ID); r.State != acidic.RunCancelled || r.SettledAt == nil {
			t.Fatalf("run %s (settled %v) after its resume job was cancelled, want cancelled", r.State, r.SettledAt)
		}
	})
}

// A step that awaits runs and jobs fails: each kind of await is a step of
// its own.
func TestAwaitJobsAndRunsInOneStepIsInvalid(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		kid := workflow.Define[notifyArgs, struct{}]("kid", workflow.Options{}).
			Step("x", func(context.Context, *steps.Context[notifyArgs, struct{}]) error { return nil })
		wf := workflow.Define[notifyArgs, struct{}]("mixed", fastOptions(1)).
			Await("both", func(ctx context.Context, sc *steps.Context[notifyArgs, struct{}]) ([]steps.RunRequest, error) {
				if _, err := sc.AwaitJobs(ctx, sendEmail.Params(emailArgs{}, queue.EnqueueOptions{})); err != nil {
					return nil, err
				}
				return []steps.RunRequest{kid.Request(notifyArgs{})}, nil
			}, steps.AwaitOptions{}).
			Step("after", func(context.Context, *steps.Context[notifyArgs, struct{}]) error { return nil })
		e := enginetest.New(t, drv, enginetest.Config(1), kid, wf)
		res, err := wf.Enqueue(ctxT(t), e, notifyArgs{}, workflow.EnqueueOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.Queue().Drain(ctxT(t), "default", queue.DrainOptions{}); err != nil {
			t.Fatal(err)
		}
		r := getRun(t, e, res.Run.ID)
		if r.State != acidic.RunFailed || !strings.Contains(r.Error, "await each in a step of its own") {
			t.Fatalf("run %s (%s)", r.State, r.Error)
		}
		if jobs, _ := drv.JobList(ctxT(t), acidic.JobFilter{Kind: "send_email"}); len(jobs) != 0 {
			t.Fatalf("%d jobs staged by the failed step", len(jobs))
		}
	})
}
