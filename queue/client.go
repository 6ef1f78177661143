package queue

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/events"
	"github.com/acidic-go/acidic/internal/base/aftercommit"
	"github.com/acidic-go/acidic/internal/base/service"
	"github.com/acidic-go/acidic/storage"
)

// Client enqueues jobs and, once started with Queues configured, works them.
// It is safe for concurrent use.
type Client struct {
	drv storage.Driver
	cfg Config
	svc service.Base // runs the fetch loops, the auxiliary loops and the jobs (see run)

	mu        sync.Mutex
	producers map[string]*producer
	running   map[storage.JobAttempt]context.CancelCauseFunc
	working   map[storage.JobAttempt]workingJob // jobs whose goroutine has not returned
	checkKick chan struct{}                     // asks controlLoop to check the running attempts
	readKick  chan struct{}                     // asks controlsLoop to read the queues' controls
	jobs      sync.WaitGroup                    // running jobs
	completer *completer
	pool      *goPool     // runs the job attempts of the current run (gopool.go)
	bus       *events.Bus // job events (observe.go); the engine adds its own

	periodic           map[string]*periodic // periodic jobs by name (periodic.go)
	periodicFrozen     bool                 // Start was called: AddPeriodic is refused
	periodicRegistered atomic.Bool          // this run wrote the schedules to the database
	node               nodeState            // the client as a node: its lead and its row (leader.go)
}

var (
	// ErrJobCancelled is the cause of a running job's context being
	// cancelled because an operator cancelled the job.
	ErrJobCancelled = errors.New("queue: job cancelled by operator")

	// ErrClaimLost is the cause of a running job's context being cancelled
	// because the job is no longer this worker's: it was rescued after a
	// heartbeat lapse and may already run elsewhere.
	ErrClaimLost = errors.New("queue: job claim lost")
)

// New returns a client on drv. It returns ErrInvalid for a bad Config.
func New(drv storage.Driver, cfg Config) (*Client, error) {
	if drv == nil {
		return nil, fmt.Errorf("%w: nil driver", ErrInvalid)
	}
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	c := &Client{
		drv:       drv,
		cfg:       cfg,
		running:   map[storage.JobAttempt]context.CancelCauseFunc{},
		working:   map[storage.JobAttempt]workingJob{},
		checkKick: make(chan struct{}, 1),
		node:      nodeState{kick: make(chan struct{}, 1)},
		readKick:  make(chan struct{}, 1),
		bus:       &events.Bus{},
	}
	if err := c.AddPeriodic(cfg.Periodic...); err != nil {
		return nil, err
	}
	return c, nil
}

// ID is the client's worker id, recorded in the jobs it claims.
func (c *Client) ID() string { return c.cfg.ID }

// Driver returns the driver the client runs on.
func (c *Client) Driver() storage.Driver { return c.drv }

// Start begins working the configured queues. It returns at once; jobs run
// in the background until Stop. ctx only bounds the start itself. Start on a
// running client (or one whose Stop has not finished) returns
// ErrAlreadyStarted; a stopped client may be started again.
func (c *Client) Start(ctx context.Context) error {
	c.mu.Lock()
	c.periodicFrozen = true
	c.mu.Unlock()
	err := c.svc.Start(ctx, c.run)
	if errors.Is(err, service.ErrStarted) {
		return ErrAlreadyStarted
	}
	return err
}

// run works the queues until ctx ends (Stop), then shuts down in order: the
// producers stop fetching, the running jobs finish, their completions are
// written, and only then do the heartbeat, leader, maintenance, listener
// and control loops end (running jobs need their heartbeats); last, the
// node resigns the lead and deletes its row. Jobs run under
// work, which Stop ends when its deadline passes: the jobs still running
// stopGrace later are abandoned, named in the error run returns.
func (c *Client) run(ctx, work context.Context) error {
	cp := newCompleter(c)
	pool := newGoPool()
	producers := map[string]*producer{}
	for name, q := range c.cfg.Queues {
		producers[name] = newProducer(c, name, q)
	}
	c.mu.Lock()
	c.completer, c.pool, c.producers = cp, pool, producers
	c.mu.Unlock()

	auxCtx, stopAux := context.WithCancel(context.WithoutCancel(ctx))
	defer stopAux()
	var aux, fetch sync.WaitGroup
	aux.Go(func() { cp.run(auxCtx) })
	for _, p := range producers {
		fetch.Go(func() { p.run(ctx, work) })
	}
	if len(c.periodicJobs()) > 0 {
		// Enqueues periodic jobs until Stop, like a producer fetches.
		c.periodicRegistered.Store(false)
		fetch.Go(func() { c.periodicLoop(ctx) })
	}
	// Every started client is a node: it records itself with its
	// heartbeat, tries for the lead and, while it leads, maintains.
	c.joinNodes()
	aux.Go(func() { c.heartbeatLoop(auxCtx) })
	aux.Go(func() { c.leaderLoop(auxCtx) })
	aux.Go(func() { c.maintenanceLoop(auxCtx) })
	if len(producers) > 0 {
		if c.drv.Capabilities().Notify != storage.NotifyNone {
			aux.Go(func() { c.listenLoop(auxCtx) })
		}
		aux.Go(func() { c.controlLoop(auxCtx) })
		aux.Go(func() { c.controlsLoop(auxCtx) })
	}

	<-ctx.Done()
	fetch.Wait()
	err := c.waitJobs(work)
	pool.close()
	cp.drain()
	stopAux()
	aux.Wait()
	c.leaveNodes(work)
	return err
}

// waitJobs waits for the running jobs. Once work ends (Stop's deadline
// passed, and the jobs' contexts with it) it waits stopGrace more for them
// to return and record their outcomes, then gives up on the rest and
// returns the error that names them.
func (c *Client) waitJobs(work context.Context) error {
	if waitGroup(work, &c.jobs) {
		return nil
	}
	cause := context.Cause(work)
	c.cfg.Logger.Warn("queue: stop deadline passed; cancelled running jobs", "client", c.cfg.ID, "reason", cause)
	grace, cancel := context.WithTimeout(context.Background(), stopGrace)
	defer cancel()
	if waitGroup(grace, &c.jobs) {
		return nil
	}
	return c.abandonRunning(cause)
}

// Stop shuts the client down gracefully: it stops fetching, waits for running
// jobs to finish, records their outcomes, and returns. If ctx ends first, the
// running jobs' contexts are cancelled; Stop waits for them to return and
// record their outcomes (up to 5 seconds) and then returns ctx's error (its
// cause, if it was given one). A ctx without a deadline is given one
// Config.StopTimeout after the call: past it, Stop proceeds in the same way
// and returns ErrStopTimeout, so Stop returns even when ctx never ends.
//
// Jobs that ignore their context are left running and will be rescued by
// another client once their heartbeat stops: Stop logs each of them (id,
// kind, attempt, how long it has run) and returns a *JobsRunningError naming
// them, which wraps ctx's error or ErrStopTimeout.
//
// Stop may be called more than once, also concurrently: only the first call
// shuts down (and reports how); the others wait until the client has
// stopped and return nil, or return ctx's error if ctx ends first, leaving
// the shutdown to the first. Stop on a client never started returns
// ErrNotStarted.
func (c *Client) Stop(ctx context.Context) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, c.cfg.StopTimeout, ErrStopTimeout)
		defer cancel()
	}
	err := c.svc.Stop(ctx)
	if errors.Is(err, service.ErrNotStarted) {
		return ErrNotStarted
	}
	return err
}

// stopGrace bounds how long Stop, past its deadline, waits for the jobs it
// cancelled to return and record their outcomes.
const stopGrace = 5 * time.Second

// workingJob is a job whose work goroutine has not returned.
type workingJob struct {
	job     *acidic.Job
	started time.Time
}

// startWork runs job (see work) and keeps it among the working jobs until
// its goroutine returns; then it calls done.
func (c *Client) startWork(workCtx context.Context, job *acidic.Job, done func()) {
	a := attemptOf(job)
	c.mu.Lock()
	c.working[a] = workingJob{job: job, started: time.Now()}
	c.mu.Unlock()
	c.work(workCtx, job, func() {
		c.mu.Lock()
		delete(c.working, a)
		c.mu.Unlock()
		done()
	})
}

// abandonRunning logs the jobs still running when Stop gives up on them and
// returns the error that names them.
func (c *Client) abandonRunning(cause error) error {
	now := time.Now()
	c.mu.Lock()
	jobs := make([]RunningJob, 0, len(c.working))
	for _, w := range c.working {
		jobs = append(jobs, RunningJob{ID: w.job.ID, Kind: w.job.Kind, Attempt: w.job.Attempt, Running: now.Sub(w.started)})
	}
	c.mu.Unlock()
	slices.SortFunc(jobs, func(a, b RunningJob) int { return cmp.Compare(a.ID, b.ID) })
	for _, j := range jobs {
		c.cfg.Logger.Error("queue: stopped with a job still running; it will be rescued once its heartbeat lapses",
			"client", c.cfg.ID, "job", j.ID, "kind", j.Kind, "attempt", j.Attempt, "running", j.Running.Round(time.Millisecond))
	}
	return &JobsRunningError{Jobs: jobs, Err: cause}
}

// waitGroup waits for wg or ctx; it reports whether wg finished.
func waitGroup(ctx context.Context, wg *sync.WaitGroup) bool {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
		return true
	case <-ctx.Done():
		return false
	}
}

// Get returns one job, or an error matching acidic.ErrNotFound.
func (c *Client) Get(ctx context.Context, id int64) (*acidic.Job, error) {
	return c.drv.JobGet(ctx, storage.JobGetParams{ID: id})
}

// List returns jobs matching f, by ascending id.
func (c *Client) List(ctx context.Context, f acidic.JobFilter) ([]*acidic.Job, error) {
	return c.drv.JobList(ctx, f)
}

// Cancel cancels a job that has not finished and returns it. A running job's
// context is cancelled (with cause ErrJobCancelled) in whichever client runs
// it; whatever it returns afterwards is ignored. A finished job is returned
// unchanged.
func (c *Client) Cancel(ctx context.Context, id int64) (*acidic.Job, error) {
	if c.cfg.EndedFunc == nil {
		return c.CancelTx(ctx, c.drv, id)
	}
	var job *acidic.Job
	var after *aftercommit.List
	err := c.drv.InTx(ctx, storage.ReadCommitted, func(ctx context.Context, tx storage.Tx) error {
		// A list of its own for every run of the transaction: only the
		// one that commits is kept.
		ctx, after = aftercommit.With(ctx)
		var err error
		job, err = c.CancelTx(ctx, tx, id)
		return err
	})
	if err == nil {
		after.Run()
	}
	return job, err
}

// CancelTx is Cancel through ex, for use inside a caller's transaction.
//
// With Config.EndedFunc set, ex must be a transaction (a storage.Tx), so the
// job's end and what EndedFunc writes commit together; anything else is
// ErrInvalid, and nothing is written. The events of what EndedFunc did (a
// workflow run that ended with the job: events.RunFinished) are published
// when EndedFunc runs, before the caller's transaction commits: CancelTx
// cannot know whether, or when, it does (called with the context of a job
// attempt: once that attempt ended). Inside a workflow step, with the
// step's context and transaction, they are published once the step
// committed.
func (c *Client) CancelTx(ctx context.Context, ex storage.Executor, id int64) (*acidic.Job, error) {
	if _, ok := ex.(storage.Tx); !ok && c.cfg.EndedFunc != nil {
		return nil, fmt.Errorf("%w: queue: cancel job %d: this client ends jobs with EndedFunc, which needs a transaction", ErrInvalid, id)
	}
	before, err := ex.JobGet(ctx, storage.JobGetParams{ID: id})
	if err != nil {
		return nil, fmt.Errorf("queue: cancel: %w", err)
	}
	if before.RunID != uuid.Nil && c.cfg.EndedFunc == nil && !before.State.Final() {
		return nil, fmt.Errorf("%w: queue: cancel job %d: it belongs to workflow run %s; cancel it through the workflow engine's queue (workflow.Engine.Queue) so the run ends with it",
			ErrInvalid, id, before.RunID)
	}
	job, err := ex.JobCancel(ctx, storage.JobCancelParams{ID: id})
	if err != nil {
		return nil, fmt.Errorf("queue: cancel: %w", err)
	}
	if before.State != acidic.JobCancelled && job.State == acidic.JobCancelled {
		if tx, ok := ex.(storage.Tx); ok && c.cfg.EndedFunc != nil {
			// The cancellation is the attempt's last word, whatever an
			// earlier attempt's error said.
			ended := endedCopy(job, storage.JobFinishParams{State: acidic.JobCancelled,
				Error: &acidic.AttemptError{Attempt: job.Attempt, At: c.cfg.Now(), Error: fmt.Sprintf("job %d cancelled by an operator", id)}})
			if err := c.cfg.EndedFunc(ctx, tx, []*acidic.Job{ended}); err != nil {
				return nil, fmt.Errorf("queue: cancel: %w", err)
			}
		}
		if _, _, err := ex.JobResolveDependencies(ctx, storage.JobResolveDependenciesParams{Ended: []int64{id}}); err != nil {
			return nil, fmt.Errorf("queue: cancel: %w", err)
		}
	}
	if before.State == acidic.JobRunning && job.State == acidic.JobCancelled {
		// Tells the clients to check their running attempts now (delivered
		// when ex commits): the one running this job finds it cancelled and
		// stops it. The hint names nothing, and a forged one finds nothing;
		// the fenced writes already keep the worker from overwriting the
		// cancellation, and its next heartbeat would find out too.
		if err := ex.Notify(ctx, storage.NotifyParams{Topic: storage.TopicControl, Payload: ""}); err != nil {
			return nil, fmt.Errorf("queue: cancel: %w", err)
		}
	}
	return job, nil
}

// Retry makes a finished or retryable job available again now and returns
// it. The attempt count is kept; a job with no attempts left gets exactly one
// more (MaxAttempts becomes Attempt+1). A running or pending job is returned
// unchanged.
func (c *Client) Retry(ctx context.Context, id int64) (*acidic.Job, error) {
	job, err := c.drv.JobRetry(ctx, storage.JobRetryParams{ID: id})
	if err != nil {
		return nil, fmt.Errorf("queue: retry: %w", err)
	}
	return job, nil
}

// RetryMany retries every job matching f that is discarded, cancelled,
// completed or retryable (as Retry does), and returns the jobs it made
// available. Running and pending jobs are skipped. It stops at the first
// error (for example acidic.ErrConflict, when a unique job's key is taken
// by another job), returning the jobs retried so far.
func (c *Client) RetryMany(ctx context.Context, f acidic.JobFilter) ([]*acidic.Job, error) {
	if len(f.States) == 0 {
		f.States = []acidic.JobState{acidic.JobDiscarded, acidic.JobCancelled, acidic.JobCompleted, acidic.JobRetryable}
	}
	var out []*acidic.Job
	err := c.eachJob(ctx, f, func(j *acidic.Job) error {
		if j.State == acidic.JobRunning || j.State == acidic.JobPending {
			return nil
		}
		r, err := c.Retry(ctx, j.ID)
		if err != nil {
			return err
		}
		out = append(out, r)
		return nil
	})
	return out, err
}

// track registers a running attempt so heartbeats and cancellations reach
// it. Attempts, not jobs, are tracked: a client may run a later attempt of a
// job whose earlier attempt it still runs after losing its claim.
func (c *Client) track(job *acidic.Job, cancel context.CancelCauseFunc) {
	c.mu.Lock()
	c.running[attemptOf(job)] = cancel
	c.mu.Unlock()
}

func (c *Client) untrack(attempts ...storage.JobAttempt) {
	c.mu.Lock()
	for _, a := range attempts {
		delete(c.running, a)
	}
	c.mu.Unlock()
}

func (c *Client) runningAttempts() []storage.JobAttempt {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]storage.JobAttempt, 0, len(c.running))
	for a := range c.running {
		out = append(out, a)
	}
	return out
}

func attemptOf(job *acidic.Job) storage.JobAttempt {
	return storage.JobAttempt{ID: job.ID, Attempt: job.Attempt}
}

// cancelAttempt cancels the context of one attempt this client runs.
func (c *Client) cancelAttempt(a storage.JobAttempt, cause error) {
	c.mu.Lock()
	cancel := c.running[a]
	c.mu.Unlock()
	if cancel != nil {
		cancel(cause)
	}
}

func (c *Client) wakeProducer(queue string) {
	c.mu.Lock()
	p := c.producers[queue]
	c.mu.Unlock()
	if p != nil {
		p.wakeUp()
	}
}

func (c *Client) wakeAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, p := range c.producers {
		p.wakeUp()
	}
}
