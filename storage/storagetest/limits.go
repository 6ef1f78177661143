package storagetest

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/storage"
)

var limitTests = []conformanceTest{
	{"JobFetchLimitedConcurrency", testJobFetchLimitedConcurrency},
	{"JobFetchLimitedConcurrencyRace", testJobFetchLimitedConcurrencyRace},
	{"JobFetchLimitedRate", testJobFetchLimitedRate},
	{"JobFetchLimitedRateRace", testJobFetchLimitedRateRace},
	{"JobFetchLimitedPartitions", testJobFetchLimitedPartitions},
	{"JobFetchLimitedRoundRobin", testJobFetchLimitedRoundRobin},
	{"JobFetchLimitedPassesFullPartitions", testJobFetchLimitedPassesFullPartitions},
	{"JobFetchLimitedLeasesRuns", testJobFetchLimitedLeasesRuns},
	{"JobFetchLimitedCompletes", testJobFetchLimitedCompletes},
	{"JobFetchLimitedRefusesBadLimits", testJobFetchLimitedRefusesBadLimits},
}

// fetchLimited runs JobFetchLimited and fails the test on an error.
func fetchLimited(t *testing.T, drv storage.Driver, q string, max int, l storage.FetchLimits) storage.JobFetchLimitedResult {
	t.Helper()
	res, err := drv.JobFetchLimited(testCtx(t), storage.JobFetchLimitedParams{
		JobFetchParams: storage.JobFetchParams{Queue: q, Max: max, WorkerID: "w"}, Limits: l})
	if err != nil {
		t.Fatalf("JobFetchLimited(%s, max %d, %+v): %v", q, max, l, err)
	}
	return res
}

// argsJob is a job of queue q with the given args.
func argsJob(q, args string) storage.JobInsert {
	j := job(q)
	j.Args = json.RawMessage(args)
	return j
}

func completeAll[J *acidic.Job | storage.FetchedJob](t *testing.T, drv storage.Driver, jobs []J) {
	t.Helper()
	attempts := make([]storage.JobAttempt, len(jobs))
	for i, j := range jobs {
		switch j := any(j).(type) {
		case *acidic.Job:
			attempts[i] = storage.JobAttempt{ID: j.ID, Attempt: j.Attempt}
		case storage.FetchedJob:
			attempts[i] = storage.JobAttempt{ID: j.ID, Attempt: j.Attempt}
		}
	}
	if done, err := drv.JobComplete(testCtx(t), storage.JobCompleteParams{Attempts: attempts}); err != nil || len(done) != len(jobs) {
		t.Fatalf("JobComplete(%v) = %v, %v", attempts, done, err)
	}
}

// testJobFetchLimitedConcurrency: a concurrency limit caps the queue's
// running jobs, counting those claimed by earlier fetches, and frees a
// slot when a job ends; Held says that jobs were held back.
func testJobFetchLimitedConcurrency(t *testing.T, newDriver NewDriverFunc) {
	t.Parallel()
	ctx, drv := testCtx(t), newDriver(t)
	for range 5 {
		insertJobs(ctx, t, drv, job("q"))
	}
	insertJobs(ctx, t, drv, job("other"))
	limit := storage.FetchLimits{Concurrency: 2}
	first := fetchLimited(t, drv, "q", 10, limit)
	if len(first.Jobs) != 2 || !first.Held || first.RetryIn != 0 {
		t.Fatalf("first fetch = %v, held %v, retry in %s; want 2 jobs, held, no retry time", ids(first.Jobs), first.Held, first.RetryIn)
	}
	if again := fetchLimited(t, drv, "q", 10, limit); len(again.Jobs) != 0 || !again.Held {
		t.Fatalf("fetch at the limit = %v, held %v; want nothing, held", ids(again.Jobs), again.Held)
	}
	if other := fetchLimited(t, drv, "other", 10, limit); len(other.Jobs) != 1 || other.Held {
		t.Fatalf("fetch of another queue = %v, held %v; want its one job, not held", ids(other.Jobs), other.Held)
	}
	completeAll(t, drv, first.Jobs[:1])
	next := fetchLimited(t, drv, "q", 10, limit)
	if len(next.Jobs) != 1 || !next.Held {
		t.Fatalf("fetch after one completed = %v, held %v; want 1 job, held", ids(next.Jobs), next.Held)
	}
	completeAll(t, drv, append(first.Jobs[1:], next.Jobs...))
	// Room for 3, and only 2 left: the jobs ran out, not the room.
	last := fetchLimited(t, drv, "q", 10, storage.FetchLimits{Concurrency: 3})
	if len(last.Jobs) != 2 || last.Held {
		t.Fatalf("last fetch = %v, held %v; want the last 2 jobs, not held", ids(last.Jobs), last.Held)
	}
	for _, j := range last.Jobs {
		if j.State != acidic.JobRunning || j.Attempt != 1 || j.AttemptedBy != "w" || j.AttemptedAt == nil {
			t.Errorf("claimed job %d: state %s, attempt %d, by %q, at %v", j.ID, j.State, j.Attempt, j.AttemptedBy, j.AttemptedAt)
		}
	}
}

// testJobFetchLimitedConcurrencyRace: fetches racing from many clients
// claim no more than the limit between them, round after round.
func testJobFetchLimitedConcurrencyRace(t *testing.T, newDriver NewDriverFunc) {
	t.Parallel()
	drv := newDriver(t)
	insertMixedJobs(t, drv, 200)
	const limit = 3
	raceFetches(t, drv, "warm", 10, storage.FetchLimits{Concurrency: limit}) // opens the connections
	for round := range 10 {
		claimed := raceFetches(t, drv, "q", 10, storage.FetchLimits{Concurrency: limit})
		if len(claimed) != limit {
			t.Fatalf("round %d: 10 racing fetches under a limit of %d claimed %d jobs: %v", round, limit, len(claimed), ids(claimed))
		}
		completeAll(t, drv, claimed)
	}
}

// insertMixedJobs inserts n jobs into queue "q", every other one carrying a
// run of its own.
func insertMixedJobs(t *testing.T, drv storage.Driver, n int) {
	t.Helper()
	ctx := testCtx(t)
	in := make([]storage.JobInsert, n)
	for i := range in {
		in[i] = job("q")
		if i%2 == 0 {
			in[i].Kind, in[i].RunID = "wf", insertRun(ctx, t, drv, fmt.Sprintf("mixed-%d", i)).ID
		}
	}
	insertJobs(ctx, t, drv, in...)
}

// raceFetches runs n limited fetches of queue q at once, each for up to 5
// jobs, and returns the jobs they claimed between them. Every other fetch
// skips jobs that carry runs, so that racing fetches (without the lock that
// makes them take turns) would not all pick the same jobs first.
func raceFetches(t *testing.T, drv storage.Driver, q string, n int, l storage.FetchLimits) []*acidic.Job {
	t.Helper()
	ctx := testCtx(t)
	var (
		mu      sync.Mutex
		claimed []*acidic.Job
		wg      sync.WaitGroup
		errs    = make([]error, n)
	)
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			res, err := drv.JobFetchLimited(ctx, storage.JobFetchLimitedParams{
				JobFetchParams: storage.JobFetchParams{Queue: q, Max: 5, WorkerID: fmt.Sprintf("w%d", i), SkipRunJobs: i%2 == 1}, Limits: l})
			errs[i] = err
			mu.Lock()
			for _, j := range res.Jobs {
				claimed = append(claimed, j.Job)
			}
			mu.Unlock()
		})
	}
	close(start)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("JobFetchLimited: %v", err)
	}
	return claimed
}

// testJobFetchLimitedRate: a rate limit counts starts, not running jobs;
// RetryIn says when the first start leaves the window; AttemptedAt is the
// start stamp, and stamps never go back in time.
func testJobFetchLimitedRate(t *testing.T, newDriver NewDriverFunc) {
	t.Parallel()
	ctx, drv := testCtx(t), newDriver(t)
	for range 6 {
		insertJobs(ctx, t, drv, job("q"))
	}
	limit := storage.FetchLimits{RateLimit: 2, RatePeriod: time.Hour}
	first := fetchLimited(t, drv, "q", 1, limit)
	if len(first.Jobs) != 1 || first.Held {
		t.Fatalf("first fetch (max 1) = %v, held %v; want 1 job, not held (max, not the limit, stopped it)", ids(first.Jobs), first.Held)
	}
	completeAll(t, drv, first.Jobs)
	second := fetchLimited(t, drv, "q", 10, limit)
	if len(second.Jobs) != 1 || !second.Held {
		t.Fatalf("second fetch = %v, held %v; want 1 job (2 per hour, completed or not), held", ids(second.Jobs), second.Held)
	}
	if second.RetryIn < 59*time.Minute || second.RetryIn > time.Hour {
		t.Errorf("RetryIn = %s, want just under an hour", second.RetryIn)
	}
	completeAll(t, drv, second.Jobs)
	if third := fetchLimited(t, drv, "q", 10, limit); len(third.Jobs) != 0 || !third.Held {
		t.Fatalf("third fetch = %v, held %v; want nothing, held", ids(third.Jobs), third.Held)
	}
	a, b := first.Jobs[0].AttemptedAt, second.Jobs[0].AttemptedAt
	if a == nil || b == nil || b.Before(*a) {
		t.Errorf("start stamps %v then %v; want them in order", a, b)
	}
	// The fetch that takes the last free start knows when it is free again.
	insertJobs(ctx, t, drv, job("q1"), job("q1"))
	one, err := drv.JobFetchLimited(ctx, storage.JobFetchLimitedParams{
		JobFetchParams: storage.JobFetchParams{Queue: "q1", Max: 5, WorkerID: "w"}, Limits: storage.FetchLimits{RateLimit: 1, RatePeriod: time.Hour}})
	if err != nil || len(one.Jobs) != 1 || !one.Held || one.RetryIn < 59*time.Minute || one.RetryIn > time.Hour {
		t.Fatalf("fetch under 1 per hour = %v, held %v, retry in %s, %v; want 1 job, held, retry in just under an hour", ids(one.Jobs), one.Held, one.RetryIn, err)
	}
	// A higher limit lets more start in the same window.
	if more := fetchLimited(t, drv, "q", 10, storage.FetchLimits{RateLimit: 3, RatePeriod: time.Hour}); len(more.Jobs) != 1 {
		t.Fatalf("fetch under a limit raised to 3 = %v; want 1 job", ids(more.Jobs))
	}
}

// testJobFetchLimitedRateRace: fetches racing from many clients start no
// more than the rate limit between them.
func testJobFetchLimitedRateRace(t *testing.T, newDriver NewDriverFunc) {
	t.Parallel()
	drv := newDriver(t)
	insertMixedJobs(t, drv, 100)
	raceFetches(t, drv, "warm", 10, storage.FetchLimits{Concurrency: 1}) // opens the connections
	limits := storage.FetchLimits{RateLimit: 7, RatePeriod: time.Hour}
	total := 0
	for round := range 5 {
		claimed := raceFetches(t, drv, "q", 10, limits)
		total += len(claimed)
		if total != 7 {
			t.Fatalf("round %d: racing fetches under a rate of 7 per hour have claimed %d jobs", round, total)
		}
		completeAll(t, drv, claimed)
	}
}

// testJobFetchLimitedPartitions: with PartitionBy, each combination of the
// fields' values has the limits to itself; a missing field is null, and a
// different JSON type is a different value.
func testJobFetchLimitedPartitions(t *testing.T, newDriver NewDriverFunc) {
	t.Parallel()
	ctx, drv := testCtx(t), newDriver(t)
	for _, args := range []string{
		`{"m":"a","x":1}`, `{"m":"a","x":2}`, `{"m":"a","x":3}`,
		`{"m":"b"}`, `{"m":"b"}`,
		`{"x":1}`, `{"m":null}`,
		`{"m":1}`, `{"m":"1"}`,
	} {
		insertJobs(ctx, t, drv, argsJob("q", args))
	}
	byM := storage.FetchLimits{Concurrency: 1, PartitionBy: []string{"m"}}
	got := fetchLimited(t, drv, "q", 10, byM)
	var parts []string
	for _, j := range got.Jobs {
		var a struct {
			M json.RawMessage `json:"m"`
		}
		_ = json.Unmarshal(j.Args, &a)
		parts = append(parts, string(a.M))
	}
	slices.Sort(parts)
	// "a", "b", null (missing or null), 1, "1": five partitions.
	if want := []string{`"1"`, `"a"`, `"b"`, ``, `1`}; len(got.Jobs) != 5 || !got.Held {
		t.Fatalf("fetch by m, 1 each = %v (m values %q), held %v; want one job of each of %q, held", ids(got.Jobs), parts, got.Held, want)
	}
	// Two fields: a's jobs differ by x, so each is a partition of its own,
	// and so are {"x":1} ([null,1]) and {"m":null} ([null,null]).
	byMX := storage.FetchLimits{Concurrency: 1, PartitionBy: []string{"m", "x"}}
	if more := fetchLimited(t, drv, "q", 10, byMX); len(more.Jobs) != 3 || jsonEqual(t, more.Jobs[2].Args, []byte(`{"x":1}`)) {
		t.Fatalf("fetch by (m, x), 1 each = %v; want a's two other jobs (x 2 and 3) and the last of {\"x\":1} and {\"m\":null}", ids(more.Jobs))
	}
}

// testJobFetchLimitedRoundRobin: free slots go to the partition served
// longest ago, so a partition with few jobs is not starved by one with
// many, earlier ones; priority still comes first.
func testJobFetchLimitedRoundRobin(t *testing.T, newDriver NewDriverFunc) {
	t.Parallel()
	ctx, drv := testCtx(t), newDriver(t)
	in := make([]storage.JobInsert, 0, 52)
	for range 50 {
		in = append(in, argsJob("q", `{"m":"hot"}`))
	}
	in = append(in, argsJob("q", `{"m":"cold"}`), argsJob("q", `{"m":"cold"}`))
	insertJobs(ctx, t, drv, in...)
	limits := storage.FetchLimits{Concurrency: 100, PartitionBy: []string{"m"}}
	var order []string
	for range 6 {
		res := fetchLimited(t, drv, "q", 1, limits)
		if len(res.Jobs) != 1 {
			t.Fatalf("fetch = %v, want 1 job", ids(res.Jobs))
		}
		var a struct{ M string }
		_ = json.Unmarshal(res.Jobs[0].Args, &a)
		order = append(order, a.M)
	}
	if want := []string{"hot", "cold", "hot", "cold", "hot", "hot"}; !slices.Equal(order, want) {
		t.Errorf("fetches of one job took partitions %v, want %v", order, want)
	}
	// A bigger fetch takes each partition's first job before any second
	// one, priority first: p0..p2 (one job each, behind the hot backlog)
	// get theirs, z (lowest priority) none.
	late := []storage.JobInsert{argsJob("q", `{"m":"p0"}`), argsJob("q", `{"m":"p1"}`), argsJob("q", `{"m":"p2"}`), argsJob("q", `{"m":"z"}`)}
	late[3].Priority = acidic.LowestJobPriority
	insertJobs(ctx, t, drv, late...)
	res := fetchLimited(t, drv, "q", 5, limits)
	seen := map[string]int{}
	for _, j := range res.Jobs {
		var a struct{ M string }
		_ = json.Unmarshal(j.Args, &a)
		seen[a.M]++
	}
	if want := map[string]int{"hot": 2, "p0": 1, "p1": 1, "p2": 1}; !maps.Equal(seen, want) {
		t.Errorf("fetch of 5 took %v jobs by partition, want %v", seen, want)
	}
}

// testJobFetchLimitedPassesFullPartitions: jobs of a partition at its
// limit do not count against Lookahead, so a job behind many of them is
// found.
func testJobFetchLimitedPassesFullPartitions(t *testing.T, newDriver NewDriverFunc) {
	t.Parallel()
	ctx, drv := testCtx(t), newDriver(t)
	in := make([]storage.JobInsert, 0, 301)
	for range 300 {
		in = append(in, argsJob("q", `{"m":"hot"}`))
	}
	in = append(in, argsJob("q", `{"m":"cold"}`))
	insertJobs(ctx, t, drv, in...)
	limits := storage.FetchLimits{Concurrency: 2, PartitionBy: []string{"m"}, Lookahead: 10}
	if first := fetchLimited(t, drv, "q", 2, limits); len(first.Jobs) != 2 {
		t.Fatalf("first fetch = %v, want 2 hot jobs", ids(first.Jobs))
	}
	res := fetchLimited(t, drv, "q", 5, limits)
	if len(res.Jobs) != 1 || !jsonEqual(t, res.Jobs[0].Args, []byte(`{"m":"cold"}`)) {
		t.Fatalf("fetch with hot at its limit = %v; want the cold job behind 298 hot ones", ids(res.Jobs))
	}
}

// testJobFetchLimitedLeasesRuns: a limited fetch leases free runs to the
// jobs it claims, as JobFetch does, and SkipRunJobs leaves their jobs.
func testJobFetchLimitedLeasesRuns(t *testing.T, newDriver NewDriverFunc) {
	t.Parallel()
	ctx, drv := testCtx(t), newDriver(t)
	r := insertRun(ctx, t, drv, "limited")
	withRun := job("q")
	withRun.Kind, withRun.RunID = "wf", r.ID
	insertJobs(ctx, t, drv, withRun, job("q"))
	limits := storage.FetchLimits{Concurrency: 5}
	skip, err := drv.JobFetchLimited(ctx, storage.JobFetchLimitedParams{
		JobFetchParams: storage.JobFetchParams{Queue: "q", Max: 5, WorkerID: "w", SkipRunJobs: true}, Limits: limits})
	if err != nil || len(skip.Jobs) != 1 || skip.Jobs[0].RunID == r.ID {
		t.Fatalf("fetch skipping run jobs = %v, %v; want the plain job only", ids(skip.Jobs), err)
	}
	res := fetchLimited(t, drv, "q", 5, limits)
	if len(res.Jobs) != 1 || res.Jobs[0].LeasedRun == nil || res.Jobs[0].LeasedRun.ID != r.ID || res.Jobs[0].LeasedRun.LockedBy == "" {
		t.Fatalf("fetch = %v; want the run's job with its run leased", ids(res.Jobs))
	}
}

// testJobFetchLimitedRefusesBadLimits: limits no fetch can keep are
// acidic.ErrInvalid, and nothing is claimed.
func testJobFetchLimitedRefusesBadLimits(t *testing.T, newDriver NewDriverFunc) {
	t.Parallel()
	ctx, drv := testCtx(t), newDriver(t)
	j := insertJobs(ctx, t, drv, job("q"))[0]
	for _, l := range []storage.FetchLimits{
		{},
		{Concurrency: -1},
		{RateLimit: 0, RatePeriod: time.Second},
		{RateLimit: -3, RatePeriod: time.Second},
		{RateLimit: 10},
		{RateLimit: 10, RatePeriod: -time.Second},
		{Concurrency: 1, PartitionBy: []string{""}},
		{Concurrency: 1, PartitionBy: []string{"a", "a"}},
		{Concurrency: 1, Lookahead: -1},
	} {
		_, err := drv.JobFetchLimited(ctx, storage.JobFetchLimitedParams{JobFetchParams: storage.JobFetchParams{Queue: "q", Max: 1, WorkerID: "w"}, Limits: l})
		if !errors.Is(err, acidic.ErrInvalid) {
			t.Errorf("JobFetchLimited(%+v) = %v, want acidic.ErrInvalid", l, err)
		}
	}
	if got := getJob(ctx, t, drv, j.ID); got.State != acidic.JobAvailable {
		t.Errorf("job after refused fetches is %s, want available", got.State)
	}
}

// testJobFetchLimitedCompletes: the attempts a limited fetch is given to
// complete are completed in its transaction, before the limits are
// counted, so their slots go to the jobs it claims; an attempt no longer
// running is left alone.
func testJobFetchLimitedCompletes(t *testing.T, newDriver NewDriverFunc) {
	t.Parallel()
	ctx, drv := testCtx(t), newDriver(t)
	for _, limits := range []storage.FetchLimits{
		{Concurrency: 2},
		{Concurrency: 2, PartitionBy: []string{"m"}},
	} {
		q := "q" + fmt.Sprint(len(limits.PartitionBy))
		for range 5 {
			insertJobs(ctx, t, drv, argsJob(q, `{"m":1}`))
		}
		first, err := drv.JobFetchLimited(ctx, storage.JobFetchLimitedParams{JobFetchParams: storage.JobFetchParams{Queue: q, Max: 5, WorkerID: "w"}, Limits: limits})
		if err != nil || len(first.Jobs) != 2 {
			t.Fatalf("%+v: first fetch = %v, %v; want 2 jobs", limits, ids(first.Jobs), err)
		}
		a, b := first.Jobs[0], first.Jobs[1]
		stale := storage.JobAttempt{ID: b.ID, Attempt: b.Attempt + 1}
		res, err := drv.JobFetchLimited(ctx, storage.JobFetchLimitedParams{
			JobFetchParams: storage.JobFetchParams{Queue: q, Max: 5, WorkerID: "w"}, Limits: limits,
			Complete: []storage.JobAttempt{{ID: a.ID, Attempt: a.Attempt}, stale}})
		if err != nil || len(res.Jobs) != 1 || !slices.Equal(res.Completed, []int64{a.ID}) {
			t.Fatalf("%+v: fetch completing job %d = %v (completed %v), %v; want 1 job claimed in its slot, %d completed",
				limits, a.ID, ids(res.Jobs), res.Completed, err, a.ID)
		}
		if got := getJob(ctx, t, drv, a.ID); got.State != acidic.JobCompleted {
			t.Errorf("%+v: completed job is %s", limits, got.State)
		}
		if got := getJob(ctx, t, drv, b.ID); got.State != acidic.JobRunning {
			t.Errorf("%+v: job of the stale attempt is %s, want still running", limits, got.State)
		}
		if again := fetchLimited(t, drv, q, 5, limits); len(again.Jobs) != 0 {
			t.Errorf("%+v: fetch at the limit = %v, want nothing", limits, ids(again.Jobs))
		}
	}
}
