package storagetest

import (
	"errors"
	"sync"
	"testing"

	"github.com/google/uuid"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/storage"
)

var awaitTests = []conformanceTest{
	{"AwaitedJobsInsertAndList", testAwaitedJobsInsertAndList},
	{"AwaitedJobsResume", testAwaitedJobsResume},
	{"AwaitedJobsResumeConcurrent", testAwaitedJobsResumeConcurrent},
	{"AwaitedJobsInsertRefusesInvalid", testAwaitedJobsInsertRefusesInvalid},
}

// awaitedJobs inserts two plain jobs on queues a and b and records them as
// awaited by step "fanout" of run.
func awaitedJobs(t *testing.T, drv storage.Driver, run uuid.UUID) []*acidic.Job {
	t.Helper()
	ctx := testCtx(t)
	jobs, err := drv.JobInsertMany(ctx, storage.JobInsertManyParams{Jobs: []storage.JobInsert{
		{Queue: "a", Kind: "mail", Args: []byte(`{"n":1}`), State: acidic.JobAvailable, MaxAttempts: 1},
		{Queue: "b", Kind: "sms", Args: []byte(`{"n":2}`), State: acidic.JobAvailable, MaxAttempts: 1},
	}})
	if err != nil {
		t.Fatal(err)
	}
	ids := []int64{jobs[0].ID, jobs[1].ID}
	for range 2 { // recording twice records once
		if err := drv.AwaitedJobsInsert(ctx, storage.AwaitedJobsInsertParams{RunID: run, Step: "fanout", JobIDs: ids}); err != nil {
			t.Fatalf("AwaitedJobsInsert: %v", err)
		}
	}
	return jobs
}

func testAwaitedJobsInsertAndList(t *testing.T, newDriver NewDriverFunc) {
	t.Parallel()
	ctx := testCtx(t)
	drv := newDriver(t)
	parent := awaitingParent(ctx, t, drv, "parent", 2)
	jobs := awaitedJobs(t, drv, parent.ID)
	got, err := drv.AwaitedJobsList(ctx, storage.AwaitedJobsListParams{RunID: parent.ID, Step: "fanout"})
	if err != nil || len(got) != 2 {
		t.Fatalf("AwaitedJobsList: %d jobs, %v; want 2", len(got), err)
	}
	for i, j := range got {
		if j.RunID != parent.ID || j.Step != "fanout" || j.JobID != jobs[i].ID || j.Kind != jobs[i].Kind || j.Queue != jobs[i].Queue ||
			j.State != acidic.JobAvailable || j.FinalizedAt != nil || !jsonEqual(t, j.Args, jobs[i].Args) {
			t.Errorf("awaited job %d = %+v, want job %+v as it is now", i, j, jobs[i])
		}
	}
	if other, err := drv.AwaitedJobsList(ctx, storage.AwaitedJobsListParams{RunID: parent.ID, Step: "other"}); err != nil || len(other) != 0 {
		t.Errorf("AwaitedJobsList(other step) = %d jobs, %v; want none", len(other), err)
	}
	if all, err := drv.AwaitedJobsList(ctx, storage.AwaitedJobsListParams{RunID: parent.ID}); err != nil || len(all) != 2 {
		t.Errorf("AwaitedJobsList(every step) = %d jobs, %v; want 2", len(all), err)
	}
}

func testAwaitedJobsResume(t *testing.T, newDriver NewDriverFunc) {
	t.Parallel()
	ctx := testCtx(t)
	drv := newDriver(t)
	parent := awaitingParent(ctx, t, drv, "parent", 2)
	jobs := awaitedJobs(t, drv, parent.ID)
	// One job completes; the other is discarded with an error.
	fetched, err := drv.JobFetch(ctx, storage.JobFetchParams{Queue: "a", Max: 1, WorkerID: "w"})
	if err != nil || len(fetched) != 1 {
		t.Fatalf("JobFetch: %v", err)
	}
	if _, err := drv.JobComplete(ctx, storage.JobCompleteParams{Attempts: []storage.JobAttempt{attempt1(jobs[0].ID)}}); err != nil {
		t.Fatal(err)
	}
	if fetched, err = drv.JobFetch(ctx, storage.JobFetchParams{Queue: "b", Max: 1, WorkerID: "w"}); err != nil || len(fetched) != 1 {
		t.Fatalf("JobFetch: %v", err)
	}
	if _, err := drv.JobFinish(ctx, storage.JobFinishParams{JobAttempt: attempt1(jobs[1].ID), State: acidic.JobDiscarded,
		Error: &acidic.AttemptError{Attempt: 1, Error: "gateway down"}}); err != nil {
		t.Fatal(err)
	}
	// A resume at another recovery point resumes nothing.
	r, resumed, err := drv.AwaitedJobsResume(ctx, storage.AwaitedJobsResumeParams{ID: parent.ID, Step: "fanout", RecoveryPoint: "elsewhere"})
	if err != nil || resumed || r.State != acidic.RunAwaiting {
		t.Fatalf("AwaitedJobsResume(elsewhere) = %s, %v, %v; want the run awaiting, not resumed", r.State, resumed, err)
	}
	r, resumed, err = drv.AwaitedJobsResume(ctx, storage.AwaitedJobsResumeParams{ID: parent.ID, Step: "fanout", RecoveryPoint: "after"})
	if err != nil || !resumed || r.State != acidic.RunPending || r.Awaiting != 0 || r.RecoveryPoint != "after" {
		t.Fatalf("AwaitedJobsResume = %+v, %v, %v; want pending, resumed", r, resumed, err)
	}
	if s := stepNamed(t, runSteps(ctx, t, drv, parent.ID), "fanout"); s.State != acidic.StepSucceeded {
		t.Errorf("step fanout = %s after the resume, want succeeded", s.State)
	}
	if _, again, err := drv.AwaitedJobsResume(ctx, storage.AwaitedJobsResumeParams{ID: parent.ID, Step: "fanout", RecoveryPoint: "after"}); err != nil || again {
		t.Errorf("a second AwaitedJobsResume resumed again (%v, %v)", again, err)
	}
	// What the jobs did is recorded: a job retried afterwards changes
	// nothing the run reads.
	if _, err := drv.JobRetry(ctx, storage.JobRetryParams{ID: jobs[1].ID}); err != nil {
		t.Fatal(err)
	}
	got, err := drv.AwaitedJobsList(ctx, storage.AwaitedJobsListParams{RunID: parent.ID, Step: "fanout"})
	if err != nil || len(got) != 2 {
		t.Fatalf("AwaitedJobsList: %d, %v", len(got), err)
	}
	if got[0].State != acidic.JobCompleted || got[0].FinalizedAt == nil || got[1].State != acidic.JobDiscarded ||
		len(got[1].Errors) != 1 || got[1].LastError() != "gateway down" {
		t.Errorf("recorded %+v / %+v: want completed, and discarded with its error", got[0], got[1])
	}
	if _, _, err := drv.AwaitedJobsResume(ctx, storage.AwaitedJobsResumeParams{ID: uuid.New(), Step: "fanout", RecoveryPoint: "after"}); !errors.Is(err, acidic.ErrNotFound) {
		t.Errorf("AwaitedJobsResume(no such run) = %v, want ErrNotFound", err)
	}
}

func testAwaitedJobsResumeConcurrent(t *testing.T, newDriver NewDriverFunc) {
	t.Parallel()
	ctx := testCtx(t)
	drv := newDriver(t)
	parent := awaitingParent(ctx, t, drv, "parent", 1)
	var wg sync.WaitGroup
	var mu sync.Mutex
	resumes := 0
	for range 8 {
		wg.Go(func() {
			_, resumed, err := drv.AwaitedJobsResume(ctx, storage.AwaitedJobsResumeParams{ID: parent.ID, Step: "fanout", RecoveryPoint: "after"})
			if err != nil {
				t.Error(err)
			}
			if resumed {
				mu.Lock()
				resumes++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if resumes != 1 {
		t.Errorf("%d concurrent resumes resumed the run, want exactly 1", resumes)
	}
}

func testAwaitedJobsInsertRefusesInvalid(t *testing.T, newDriver NewDriverFunc) {
	t.Parallel()
	ctx := testCtx(t)
	drv := newDriver(t)
	for _, p := range []storage.AwaitedJobsInsertParams{
		{Step: "fanout", JobIDs: []int64{1}},
		{RunID: uuid.New(), Step: "", JobIDs: []int64{1}},
		{RunID: uuid.New(), Step: "a\x00b", JobIDs: []int64{1}},
	} {
		if err := drv.AwaitedJobsInsert(ctx, p); !errors.Is(err, acidic.ErrInvalid) {
			t.Errorf("AwaitedJobsInsert(%+v) = %v, want ErrInvalid", p, err)
		}
	}
}
