package queue_test

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/internal/testkit/testdb"
	"github.com/acidic-go/acidic/queue"
	"github.com/acidic-go/acidic/storage"
	"github.com/acidic-go/acidic/storage/postgres"
)

// node is a client on a pool of its own, on drv's schema: a separate
// process as far as the database can tell. It returns the count of fetch
// statements the client has sent.
func node(t *testing.T, drv storage.Driver, cfg queue.Config) (*queue.Client, *atomic.Int64) {
	t.Helper()
	own := testdb.Reopen(t, drv, testdb.Options{MaxConns: 4})
	fetches := new(atomic.Int64)
	return newClient(t, countingDriver{own, fetches}, cfg), fetches
}

// countingDriver counts the fetch statements sent through it.
type countingDriver struct {
	storage.Driver
	fetches *atomic.Int64
}

func (d countingDriver) JobFetch(ctx context.Context, p storage.JobFetchParams) ([]storage.FetchedJob, error) {
	d.fetches.Add(1)
	return d.Driver.JobFetch(ctx, p)
}

// eventually polls cond until it holds, or fails the test when ctx ends. It
// waits for an event; it asserts nothing about how long it takes.
func eventually(ctx context.Context, t *testing.T, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for %s: %v", what, ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
}

func queueState(t *testing.T, c *queue.Client, q string) queue.QueueState {
	t.Helper()
	s, _ := c.QueueState(q)
	return s
}

// waitControlsRead waits until every client has read the controls of q
// after the moment since plus n poll intervals: any job it would have
// fetched after since, it has had every chance to.
func waitControlsRead(ctx context.Context, t *testing.T, q string, since time.Time, n int, poll time.Duration, clients ...*queue.Client) {
	t.Helper()
	for i, c := range clients {
		eventually(ctx, t, fmt.Sprintf("node %d to read the controls again", i), func() bool {
			return queueState(t, c, q).ControlsReadAt.After(since.Add(time.Duration(n) * poll))
		})
	}
}

// countState counts the jobs of queue q in state s.
func countState(ctx context.Context, t *testing.T, drv storage.Driver, q string, s acidic.JobState) int {
	t.Helper()
	jobs, err := drv.JobList(ctx, acidic.JobFilter{Queue: q, States: []acidic.JobState{s}, Limit: 1000})
	if err != nil {
		t.Fatalf("JobList: %v", err)
	}
	return len(jobs)
}

func enqueueN(ctx context.Context, t *testing.T, c *queue.Client, q, kind string, n int) {
	t.Helper()
	for range n {
		if _, err := c.Enqueue(ctx, kind, nil, queue.EnqueueOptions{Queue: q}); err != nil {
			t.Fatalf("Enqueue: %v", err)
		}
	}
}

// gate is a worker whose jobs run until released, one release per job. It
// counts the jobs running, and their peak since the last mark.
type gate struct {
	release chan struct{}

	mu                      sync.Mutex
	running, peak, finished int
}

func newGate() *gate { return &gate{release: make(chan struct{})} }

func (g *gate) work(ctx context.Context, _ *acidic.Job) error {
	g.mu.Lock()
	g.running++
	g.peak = max(g.peak, g.running)
	g.mu.Unlock()
	defer func() {
		g.mu.Lock()
		g.running--
		g.finished++
		g.mu.Unlock()
	}()
	select {
	case <-g.release:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// counts returns the jobs running, their peak since the last mark, and the
// jobs finished.
func (g *gate) counts() (running, peak, finished int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.running, g.peak, g.finished
}

// mark restarts the peak from the jobs running now.
func (g *gate) mark() {
	g.mu.Lock()
	g.peak = g.running
	g.mu.Unlock()
}

// releaseOne lets one running job finish and waits until it has.
func (g *gate) releaseOne(ctx context.Context, t *testing.T) {
	t.Helper()
	_, _, before := g.counts()
	select {
	case g.release <- struct{}{}:
	case <-ctx.Done():
		t.Fatalf("no job running to release: %v", ctx.Err())
	}
	eventually(ctx, t, "the released job to finish", func() bool { _, _, f := g.counts(); return f > before })
}

// controlConfig works queue q with workers and a 20ms poll.
func controlConfig(ws *queue.Workers, q string, workers int) queue.Config {
	cfg := fastConfig(ws, workers)
	cfg.Queues = map[string]queue.QueueConfig{q: {MaxWorkers: workers}}
	return cfg
}

// A pause made through one node stops fetching on all three nodes (each on
// a pool of its own), and on a node started after the pause: no job is
// claimed, and no paused node even sends a fetch statement. A resume made
// through another node restarts them all.
func TestPauseStopsFetchingOnEveryNode(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		ctx := ctxT(t)
		const poll = 20 * time.Millisecond
		ws := queue.NewWorkers()
		if err := ws.Handle("work", func(context.Context, *acidic.Job) error { return nil }, queue.KindOptions{}); err != nil {
			t.Fatal(err)
		}
		nodes := make([]*queue.Client, 3)
		fetches := make([]*atomic.Int64, 3)
		for i := range nodes {
			nodes[i], fetches[i] = node(t, drv, controlConfig(ws, "mail", 2))
			start(t, nodes[i])
		}
		enqueueN(ctx, t, nodes[0], "mail", "work", 6)
		eventually(ctx, t, "the first jobs to complete", func() bool { return countState(ctx, t, drv, "mail", acidic.JobCompleted) == 6 })

		ctl, err := nodes[0].PauseQueue(ctx, "mail")
		if err != nil {
			t.Fatalf("PauseQueue: %v", err)
		}
		if !ctl.Paused || ctl.PausedAt == nil || ctl.Queue != "mail" {
			t.Fatalf("PauseQueue = %+v, want mail paused", ctl)
		}
		for i, n := range nodes {
			eventually(ctx, t, fmt.Sprintf("node %d to pause", i), func() bool { return queueState(t, n, "mail").Paused })
		}
		before := make([]int64, len(nodes))
		for i := range nodes {
			before[i] = fetches[i].Load()
		}
		enqueueN(ctx, t, nodes[1], "mail", "work", 10)
		enqueued := time.Now()
		waitControlsRead(ctx, t, "mail", enqueued, 3, poll, nodes...)
		if n := countState(ctx, t, drv, "mail", acidic.JobAvailable); n != 10 {
			t.Fatalf("%d of 10 jobs enqueued into the paused queue are available, want all 10 (a node fetched)", n)
		}
		// A fetch the producer decided on just before it applied the pause may
		// be sent after the node reports paused (PauseQueue promises only
		// that it claims nothing); a node that went on fetching would have
		// sent one per wake-up and poll interval.
		for i := range nodes {
			if n := fetches[i].Load() - before[i]; n > 1 {
				t.Errorf("paused node %d sent %d fetches after 10 inserts woke it, want none beyond one already under way", i, n)
			}
		}

		// A node started after the pause (or restarted) obeys it from its
		// first fetch on: it sends none.
		late, lateFetches := node(t, drv, controlConfig(ws, "mail", 2))
		start(t, late)
		started := time.Now()
		waitControlsRead(ctx, t, "mail", started, 3, poll, late)
		if s := queueState(t, late, "mail"); !s.Paused {
			t.Fatalf("node started after the pause: %+v, want paused", s)
		}
		if n := countState(ctx, t, drv, "mail", acidic.JobAvailable); n != 10 {
			t.Fatalf("%d of 10 jobs available after a node started, want 10 (the new node fetched)", n)
		}
		if n := lateFetches.Load(); n != 0 {
			t.Errorf("the node started after the pause sent %d fetches, want none", n)
		}

		if _, err := nodes[2].ResumeQueue(ctx, "mail"); err != nil {
			t.Fatalf("ResumeQueue: %v", err)
		}
		eventually(ctx, t, "the jobs of the resumed queue to complete", func() bool { return countState(ctx, t, drv, "mail", acidic.JobCompleted) == 16 })
		// The other nodes may have run all ten before one of them read the
		// resume: each resumes, but not necessarily before the jobs are done.
		for i, n := range append(nodes, late) {
			eventually(ctx, t, fmt.Sprintf("node %d to resume", i), func() bool { return !queueState(t, n, "mail").Paused })
		}
	})
}

// Jobs running when their queue is paused finish (their contexts are not
// cancelled); the queue's other jobs wait.
func TestPauseLetsRunningJobsFinish(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		ctx := ctxT(t)
		g, c := startGated(ctx, t, drv, 5)
		if _, err := c.PauseQueue(ctx, "q"); err != nil {
			t.Fatalf("PauseQueue: %v", err)
		}
		eventually(ctx, t, "the client to pause", func() bool { return queueState(t, c, "q").Paused })
		g.releaseOne(ctx, t)
		g.releaseOne(ctx, t)
		paused := time.Now()
		waitControlsRead(ctx, t, "q", paused, 3, 20*time.Millisecond, c)
		// The completer writes completions in batches, after the worker
		// returned; a job that failed (its context cancelled) never counts.
		eventually(ctx, t, "the 2 jobs that ran when the queue was paused to complete", func() bool {
			return countState(ctx, t, drv, "q", acidic.JobCompleted) == 2
		})
		if n := countState(ctx, t, drv, "q", acidic.JobAvailable); n != 3 {
			t.Fatalf("%d jobs available, want 3 waiting in the paused queue", n)
		}
		if r, _, _ := g.counts(); r != 0 {
			t.Fatalf("%d jobs running in the paused queue, want 0", r)
		}
	})
}

// Scaling changes how many jobs of the queue a node runs at once, up at
// once, down as running jobs finish, and back to the configuration on reset.
// The running count is sampled by the worker itself (its peak), not timed.
func TestScaleChangesConcurrency(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		ctx := ctxT(t)
		const total = 12
		g, c := startGated(ctx, t, drv, total)

		ctl, err := c.ScaleQueue(ctx, "q", 5)
		if err != nil || ctl.MaxWorkers != 5 {
			t.Fatalf("ScaleQueue(5) = %+v, %v", ctl, err)
		}
		eventually(ctx, t, "five jobs to run", func() bool { r, _, _ := g.counts(); return r == 5 })
		if s := queueState(t, c, "q"); s.MaxWorkers != 5 || s.Running != 5 {
			t.Fatalf("QueueState after scaling up = %+v, want 5 workers, 5 running", s)
		}

		if _, err := c.ScaleQueue(ctx, "q", 1); err != nil {
			t.Fatalf("ScaleQueue(1): %v", err)
		}
		eventually(ctx, t, "the client to scale down", func() bool { return queueState(t, c, "q").MaxWorkers == 1 })
		// The five running finish undisturbed; no job starts until they have,
		// and then one at a time.
		g.mark()
		for range 5 {
			g.releaseOne(ctx, t)
		}
		if _, peak, _ := g.counts(); peak > 5 {
			t.Fatalf("%d jobs ran at once while the five started before the scale down finished", peak)
		}
		g.mark()
		for range 3 {
			g.releaseOne(ctx, t)
		}
		if _, peak, _ := g.counts(); peak > 1 {
			t.Fatalf("%d jobs ran at once once the queue was scaled to 1, want at most 1", peak)
		}

		ctl, err = c.ResetQueueScale(ctx, "q")
		if err != nil || ctl.MaxWorkers != 0 {
			t.Fatalf("ResetQueueScale = %+v, %v; want MaxWorkers 0", ctl, err)
		}
		eventually(ctx, t, "the configured two jobs to run", func() bool { r, _, _ := g.counts(); return r == 2 })
		if s := queueState(t, c, "q"); s.MaxWorkers != 2 {
			t.Fatalf("QueueState after ResetQueueScale = %+v, want the configured 2 workers", s)
		}
		for _, _, finished := g.counts(); finished < total; _, _, finished = g.counts() {
			g.releaseOne(ctx, t)
		}
	})
}

// A control reaches a node through its notification: with a poll interval
// of an hour, only the hint can make the node read the controls again.
func TestControlsReachNodesByNotification(t *testing.T) {
	t.Parallel()
	// PostgreSQL only: SQLite's notifications stay within one Driver value; another process (here a second handle) learns of a control by polling, which TestControlsObeyedWhenTheNotificationIsLost tests on both.
	drv := testdb.New(t, testdb.Options{})
	ctx := ctxT(t)
	ws := queue.NewWorkers()
	if err := ws.Handle("work", func(context.Context, *acidic.Job) error { return nil }, queue.KindOptions{}); err != nil {
		t.Fatal(err)
	}
	cfg := controlConfig(ws, "q", 3)
	cfg.PollInterval = time.Hour
	worker, _ := node(t, drv, cfg)
	start(t, worker)
	eventually(ctx, t, "the first read of the controls", func() bool { return !queueState(t, worker, "q").ControlsReadAt.IsZero() })

	operator := newClient(t, drv, queue.Config{}) // another process, insert-only
	if _, err := operator.PauseQueue(ctx, "q"); err != nil {
		t.Fatalf("PauseQueue: %v", err)
	}
	eventually(ctx, t, "the node to pause", func() bool { return queueState(t, worker, "q").Paused })
	if _, err := operator.ScaleQueue(ctx, "q", 7); err != nil {
		t.Fatalf("ScaleQueue: %v", err)
	}
	eventually(ctx, t, "the node to scale", func() bool { return queueState(t, worker, "q").MaxWorkers == 7 })
	if _, err := operator.ResumeQueue(ctx, "q"); err != nil {
		t.Fatalf("ResumeQueue: %v", err)
	}
	eventually(ctx, t, "the node to resume", func() bool { return !queueState(t, worker, "q").Paused })
}

// deafDriver loses every notification on storage.TopicQueues, as a
// listener that reconnects at the wrong moment does.
type deafDriver struct{ storage.Driver }

func (d deafDriver) NewListener(ctx context.Context) (storage.Listener, error) {
	l, err := d.Driver.NewListener(ctx)
	if err != nil {
		return nil, err
	}
	return deafListener{l}, nil
}

type deafListener struct{ storage.Listener }

func (l deafListener) Wait(ctx context.Context) (storage.Notification, error) {
	for {
		n, err := l.Listener.Wait(ctx)
		if err != nil || n.Topic != storage.TopicQueues {
			return n, err
		}
	}
}

// A node that never hears the hint still obeys a pause, a scale and a
// resume: it reads the controls again every poll interval.
func TestControlsObeyedWhenTheNotificationIsLost(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		ctx := ctxT(t)
		ws := queue.NewWorkers()
		if err := ws.Handle("work", func(context.Context, *acidic.Job) error { return nil }, queue.KindOptions{}); err != nil {
			t.Fatal(err)
		}
		own := testdb.Reopen(t, drv, testdb.Options{MaxConns: 4})
		worker := newClient(t, deafDriver{own}, controlConfig(ws, "q", 2))
		start(t, worker)
		eventually(ctx, t, "the first read of the controls", func() bool { return !queueState(t, worker, "q").ControlsReadAt.IsZero() })

		operator := newClient(t, drv, queue.Config{})
		if _, err := operator.PauseQueue(ctx, "q"); err != nil {
			t.Fatalf("PauseQueue: %v", err)
		}
		eventually(ctx, t, "the deaf node to pause", func() bool { return queueState(t, worker, "q").Paused })
		job, err := operator.Enqueue(ctx, "work", nil, queue.EnqueueOptions{Queue: "q"})
		if err != nil {
			t.Fatal(err)
		}
		waitControlsRead(ctx, t, "q", time.Now(), 3, 20*time.Millisecond, worker)
		if j, err := drv.JobGet(ctx, storage.JobGetParams{ID: job.ID}); err != nil || j.State != acidic.JobAvailable {
			t.Fatalf("job in the paused queue: %+v, %v; want it available", j, err)
		}
		if _, err := operator.ScaleQueue(ctx, "q", 4); err != nil {
			t.Fatalf("ScaleQueue: %v", err)
		}
		eventually(ctx, t, "the deaf node to scale", func() bool { return queueState(t, worker, "q").MaxWorkers == 4 })
		if _, err := operator.ResumeQueue(ctx, "q"); err != nil {
			t.Fatalf("ResumeQueue: %v", err)
		}
		waitJob(t, drv, job.ID, acidic.JobCompleted)
	})
}

// Bad input is refused with a typed error, and nothing is written: an
// unknown queue, a name storage cannot hold, workers below 1.
func TestQueueControlsRefuseBadInput(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		ctx := ctxT(t)
		c := newClient(t, drv, queue.Config{})
		if _, err := c.Enqueue(ctx, "k", nil, queue.EnqueueOptions{Queue: "known"}); err != nil {
			t.Fatal(err)
		}
		type call func() (*acidic.QueueControl, error)
		unknown := map[string]call{
			"PauseQueue(ghost)":      func() (*acidic.QueueControl, error) { return c.PauseQueue(ctx, "ghost") },
			"ResumeQueue(ghost)":     func() (*acidic.QueueControl, error) { return c.ResumeQueue(ctx, "ghost") },
			"ScaleQueue(ghost, 2)":   func() (*acidic.QueueControl, error) { return c.ScaleQueue(ctx, "ghost", 2) },
			"ResetQueueScale(ghost)": func() (*acidic.QueueControl, error) { return c.ResetQueueScale(ctx, "ghost") },
		}
		invalid := map[string]call{
			`PauseQueue("")`:          func() (*acidic.QueueControl, error) { return c.PauseQueue(ctx, "") },
			`PauseQueue("a\x00")`:     func() (*acidic.QueueControl, error) { return c.PauseQueue(ctx, "a\x00") },
			`ResumeQueue(300 bytes)`:  func() (*acidic.QueueControl, error) { return c.ResumeQueue(ctx, string(make([]byte, 300))) },
			`ScaleQueue("\xff", 2)`:   func() (*acidic.QueueControl, error) { return c.ScaleQueue(ctx, "\xff", 2) },
			`ResetQueueScale("\n")`:   func() (*acidic.QueueControl, error) { return c.ResetQueueScale(ctx, "\n") },
			`ScaleQueue(known, 0)`:    func() (*acidic.QueueControl, error) { return c.ScaleQueue(ctx, "known", 0) },
			`ScaleQueue(known, -3)`:   func() (*acidic.QueueControl, error) { return c.ScaleQueue(ctx, "known", -3) },
			`ScaleQueue(known, 2^31)`: func() (*acidic.QueueControl, error) { return c.ScaleQueue(ctx, "known", 1<<31) },
		}
		for name, call := range unknown {
			if ctl, err := call(); ctl != nil || !errors.Is(err, acidic.ErrUnknownQueue) {
				t.Errorf("%s = %+v, %v; want acidic.ErrUnknownQueue", name, ctl, err)
			}
		}
		for name, call := range invalid {
			if ctl, err := call(); ctl != nil || !errors.Is(err, queue.ErrInvalid) || !errors.Is(err, acidic.ErrInvalid) {
				t.Errorf("%s = %+v, %v; want queue.ErrInvalid and acidic.ErrInvalid", name, ctl, err)
			}
		}
		if _, err := c.QueueControls(ctx, "ok", "bad\x00"); !errors.Is(err, queue.ErrInvalid) {
			t.Errorf("QueueControls(bad name) = %v, want ErrInvalid", err)
		}
		if got, err := c.QueueControls(ctx); err != nil || len(got) != 0 {
			t.Fatalf("QueueControls after refused calls = %v, %v; want nothing written", got, err)
		}
		if n := countRows(t, drv, "queue_controls"); n != 0 {
			t.Fatalf("queue_controls has %d rows after refused calls, want 0", n)
		}
		// The queue known through its job may be controlled.
		if ctl, err := c.ScaleQueue(ctx, "known", 3); err != nil || ctl.MaxWorkers != 3 {
			t.Fatalf("ScaleQueue(known, 3) = %+v, %v", ctl, err)
		}
	})
}

// A client registers the queues it works when it starts, which makes them
// known to controls before any job was enqueued.
func TestStartRegistersQueues(t *testing.T) {
	t.Parallel()
	testdb.Each(t, testdb.Options{}, func(t *testing.T, drv storage.Driver) {
		ctx := ctxT(t)
		ws := queue.NewWorkers()
		if err := ws.Handle("work", func(context.Context, *acidic.Job) error { return nil }, queue.KindOptions{}); err != nil {
			t.Fatal(err)
		}
		operator := newClient(t, drv, queue.Config{})
		if _, err := operator.PauseQueue(ctx, "fresh"); !errors.Is(err, acidic.ErrUnknownQueue) {
			t.Fatalf("PauseQueue before any node worked the queue = %v, want ErrUnknownQueue", err)
		}
		c := newClient(t, drv, controlConfig(ws, "fresh", 1))
		start(t, c)
		eventually(ctx, t, "the queue to be registered", func() bool {
			got, err := operator.QueueControls(ctx, "fresh")
			return err == nil && len(got) == 1
		})
		if _, err := operator.PauseQueue(ctx, "fresh"); err != nil {
			t.Fatalf("PauseQueue after a node registered the queue: %v", err)
		}
		eventually(ctx, t, "the node to pause", func() bool { return queueState(t, c, "fresh").Paused })
	})
}

// nodeStates reads the node_states rows the worker processes report: pid →
// paused, and when the process last read the controls.
func nodeStates(ctx context.Context, t *testing.T, drv *postgres.Driver) map[int]queue.QueueState {
	t.Helper()
	rows, err := drv.Pool().Query(ctx, "SELECT pid, paused, read_at FROM "+table(drv, "node_states"))
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[int]queue.QueueState{}
	for rows.Next() {
		var pid int
		var s queue.QueueState
		if err := rows.Scan(&pid, &s.Paused, &s.ControlsReadAt); err != nil {
			t.Fatal(err)
		}
		out[pid] = s
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// The same with processes: three worker processes obey a pause made from
// a fourth; one killed (SIGKILL) and started again while the queue is
// paused stays paused; a resume runs every job.
func TestPauseStopsFetchingInEveryProcess(t *testing.T) {
	t.Parallel()
	// PostgreSQL only: the worker processes (workerProcess) connect to PostgreSQL; SQLite's processes are tested in storage/sqlite.
	drv := testdb.New(t, testdb.Options{})
	ctx := ctxT(t)
	createExecutions(t, drv)
	execSQL(t, drv, "CREATE TABLE "+table(drv, "node_states")+" (pid int PRIMARY KEY, paused boolean, read_at timestamptz)")
	const poll = 50 * time.Millisecond // the worker processes'
	procs := make([]int, 3)
	var first *exec.Cmd
	for i := range procs {
		cmd := startWorkerProcess(t, drv.Schema(), "report", 2)
		procs[i] = cmd.Process.Pid
		if i == 0 {
			first = cmd
		}
	}
	// allRead waits until every process in pids reports the pause state
	// paused, read after since plus three poll intervals.
	allRead := func(what string, pids []int, paused bool, since time.Time) {
		t.Helper()
		eventually(ctx, t, what, func() bool {
			states := nodeStates(ctx, t, drv)
			for _, pid := range pids {
				s, ok := states[pid]
				if !ok || s.Paused != paused || !s.ControlsReadAt.After(since.Add(3*poll)) {
					return false
				}
			}
			return true
		})
	}
	allRead("every process to read the controls", procs, false, time.Time{})

	operator := newClient(t, drv, queue.Config{})
	if _, err := operator.PauseQueue(ctx, queue.DefaultQueue); err != nil {
		t.Fatalf("PauseQueue: %v", err)
	}
	enqueueN(ctx, t, operator, queue.DefaultQueue, "record", 10)
	allRead("every process to pause and read the controls again", procs, true, time.Now())
	if n := countRows(t, drv, "executions"); n != 0 {
		t.Fatalf("%d jobs ran in the paused queue", n)
	}

	if err := first.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = first.Wait()
	restarted := startWorkerProcess(t, drv.Schema(), "report", 2)
	procs[0] = restarted.Process.Pid
	allRead("the restarted process to read the controls", procs[:1], true, time.Now())
	if n := countRows(t, drv, "executions"); n != 0 {
		t.Fatalf("%d jobs ran in the paused queue after a process restarted", n)
	}

	if _, err := operator.ResumeQueue(ctx, queue.DefaultQueue); err != nil {
		t.Fatalf("ResumeQueue: %v", err)
	}
	eventually(ctx, t, "the jobs to run", func() bool { return countRows(t, drv, "executions") == 10 })
}

// startGated starts a client that runs jobs of kind "gated" (held by the
// gate it returns) in queue "q", two at once, enqueues n of them, and
// waits until two run.
func startGated(ctx context.Context, t *testing.T, drv storage.Driver, n int) (*gate, *queue.Client) {
	t.Helper()
	g := newGate()
	ws := queue.NewWorkers()
	if err := ws.Handle("gated", g.work, queue.KindOptions{}); err != nil {
		t.Fatal(err)
	}
	c := newClient(t, drv, controlConfig(ws, "q", 2))
	start(t, c)
	enqueueN(ctx, t, c, "q", "gated", n)
	eventually(ctx, t, "two jobs to run", func() bool { r, _, _ := g.counts(); return r == 2 })
	return g, c
}
