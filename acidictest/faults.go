package acidictest

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/queue"
	"github.com/acidic-go/acidic/storage"
	"github.com/acidic-go/acidic/workflow"
)

// FaultOptions configure EachFault.
type FaultOptions struct {
	// Workflows returns the workflows under test, for one engine of a case
	// working on drv, a driver on the case's store: steps that write
	// tables of their own find them there. It is called for every engine
	// of every case. Required.
	Workflows func(drv storage.Driver) []workflow.Definition
	// Workers returns the plain job kinds the workflows enqueue: a new
	// registry each call (every engine adds its own kinds to it). Optional.
	Workers func() *queue.Workers
	// Setup prepares a new store before any case runs in it: create the
	// tables your steps write there (storage.SQLOf(drv) runs your SQL).
	// On PostgreSQL cases reuse schemas: between two cases every table of
	// the schema is emptied. On SQLite every case gets a copy of one file
	// Setup prepared. Optional.
	//
	// On PostgreSQL the cases' schemas share one pool, so none is its
	// search_path (not even Driver's): the SQL of Setup and of the steps
	// names its tables qualified with the quoted drv.Schema() ("main" on
	// SQLite, where the qualified form works too), as the payment example
	// does.
	Setup func(ctx context.Context, drv storage.Driver) error
	// Driver is a driver on the database the cases run on; EachFault
	// makes every case a store of its own there (it does not use Driver's
	// own store). A *postgres.Driver: a schema per case on its database
	// (on a pool of its own, with the same connection settings), reused
	// and emptied between cases. A *sqlite.Driver: a file per case in the
	// test's temporary directory, and a Driver of its own on the file for
	// every process of the case, the crashed one closed before the next
	// starts. Default: schemas of the test database (DATABASE_URL), as
	// NewDriver.
	Driver storage.Driver
	// Start enqueues a case's work through h: what your code under test
	// does when a request comes in. Required. An error from it is expected
	// when a fault hits the enqueue itself: EachFault then calls Start again,
	// on the recovered harness, as a caller retrying would. So make it safe
	// to call twice, as a request handler must be: enqueue with idempotency
	// keys.
	Start func(ctx context.Context, h *Harness) error
	// Resume, when set, is called once after recovery if a run rests
	// halted, as an operator would: retry it, say (h.Engine.Retry). The
	// case then recovers again.
	Resume func(ctx context.Context, h *Harness) error
	// Check asserts your own invariants once a case has recovered ("one
	// charge per order"); it runs for the fault-free run too. Optional.
	Check func(t testing.TB, c *FaultCase)
	// Faults are injected at each boundary; default Crash and Fail.
	Faults []Fault
	// Phases are the sides of a boundary faults are injected on; default
	// Before and After.
	Phases []Phase
	// MaxCases caps the cases, spread evenly over the boundaries; zero
	// runs every case (boundaries × faults × phases).
	MaxCases int
	// RescueFaults also injects each fault at each of the first
	// RescueFaults calls of the recovery that follows a crash (where the
	// jobs of the dead process are rescued and their runs ended or
	// resumed), before a last, fault-free recovery: a crash during the
	// rescue of a crash. It multiplies the cases that crash by 2 ×
	// RescueFaults × len(Faults); MaxCases caps them too.
	RescueFaults int
	// Harness holds the options of every case's harnesses (Logger);
	// their Mode and Workers are EachFault's.
	Harness Options
}

// FaultCase is one case of EachFault, after its recovery.
type FaultCase struct {
	// Injection is the fault the case injected (zero for the fault-free
	// run), and Rescue the second one, during the recovery, if any.
	Injection, Rescue Injection
	// Fired reports whether the engine reached the boundary (and the
	// fault was injected).
	Fired bool
	// Harness is a fault-free harness on the case's store.
	Harness *Harness
	// Runs are every run in the case's store, oldest first, with their
	// step logs.
	Runs []*acidic.Run
	// rested counts the runs by workflow, state and recovery point when
	// they first all rested, before Resume.
	rested map[string]int
}

// Driver is the storage driver of the case's recovered process, on the
// case's own store: a *postgres.Driver or a *sqlite.Driver, as
// FaultOptions.Driver.
func (c *FaultCase) Driver() storage.Driver { return c.Harness.Driver }

// FaultReport counts what EachFault did and found.
type FaultReport struct {
	// Boundaries is the number of calls the engine made to its driver in
	// the fault-free run: where faults are injected.
	Boundaries int
	// Cases run, and of those, the ones whose fault fired.
	Cases, Fired int
	// Runs checked over all cases.
	Runs int
	// Stranded counts runs left pending, running or awaiting (or with an
	// unfinished job) after recovery.
	Stranded int
	// WrongState counts cases whose runs ended in other states than in the
	// fault-free run.
	WrongState int
	// Unsettled counts finished runs whose finish was not settled, and
	// cases that staged another number of finish callbacks than the
	// fault-free run.
	Unsettled int
	// Failed counts cases that failed a check (the built-in ones or Check).
	Failed int
}

func (r FaultReport) String() string {
	return fmt.Sprintf("boundaries=%d cases=%d fired=%d runs=%d stranded=%d wrong_state=%d unsettled=%d failed=%d",
		r.Boundaries, r.Cases, r.Fired, r.Runs, r.Stranded, r.WrongState, r.Unsettled, r.Failed)
}

// Recovery timing of every case's engines: attempts of a dead process are
// rescued as soon as they are older than rescueAfter.
const (
	rescueAfter   = 5 * time.Millisecond
	recoverRounds = 50
)

// EachFault checks that your workflows survive a failure at every boundary
// between the engine and the database, in the spirit of chaos testing but
// exhaustive and repeatable. It first runs opts.Start and works everything
// to rest without faults, recording each call the engine makes to its
// driver (the boundaries). Then, for each boundary and each fault (a crash
// of the process, or a failed call whose work was or was not done: a lost
// COMMIT acknowledgement is "fail after" a commit), it runs a case on a
// fresh store: Start and work with the fault injected there; then a new,
// fault-free engine recovers, as after a restart, rescuing what the dead
// process held and working everything to rest.
//
// After each case it checks what every Acidic program must hold: no run
// is left pending, running or awaiting and no job unfinished; every run
// ends in the state it ended in without faults (a halted run stays halted
// until Resume retries it); every finished run is settled, with as many
// finish callbacks staged as without faults. Then opts.Check asserts your
// own invariants. Each case is a subtest named after its injection.
//
// Work runs synchronously in the test (as Drain does), so the boundaries
// are the same from run to run, given that your steps make the same calls
// each time.
func EachFault(t *testing.T, opts FaultOptions) FaultReport {
	t.Helper()
	if opts.Start == nil || opts.Workflows == nil {
		t.Fatal("acidictest: EachFault needs Workflows and Start")
	}
	if len(opts.Faults) == 0 {
		opts.Faults = []Fault{Crash, Fail}
	}
	if len(opts.Phases) == 0 {
		opts.Phases = []Phase{Before, After}
	}
	schemas := newFaultStores(t, opts.Driver, opts.Setup)
	var rep FaultReport
	var mu sync.Mutex

	// The fault-free run, its boundaries and its outcome: in t itself, so
	// that running one case alone (-run 'Test/faults/crash_after_#14')
	// still has it.
	c, boundaries := runCase(t, schemas, opts, nil, nil)
	dry := outcomeOf(c)
	if opts.Check != nil {
		opts.Check(t, c)
	}
	if t.Failed() {
		t.Fatal("acidictest: the fault-free run failed; no faults injected")
	}
	rep.Boundaries = len(boundaries)

	var cases [][2]*Injection
	for i, op := range boundaries {
		for _, f := range opts.Faults {
			for _, p := range opts.Phases {
				at := &Injection{Seq: i + 1, Op: op, Phase: p, Fault: f}
				cases = append(cases, [2]*Injection{at, nil})
				if f != Crash {
					continue
				}
				for j := 1; j <= opts.RescueFaults; j++ {
					for _, f2 := range opts.Faults {
						for _, p2 := range opts.Phases {
							cases = append(cases, [2]*Injection{at, {Seq: j, Phase: p2, Fault: f2}})
						}
					}
				}
			}
		}
	}
	if opts.MaxCases > 0 && len(cases) > opts.MaxCases {
		picked := make([][2]*Injection, 0, opts.MaxCases)
		for k := range opts.MaxCases {
			picked = append(picked, cases[k*len(cases)/opts.MaxCases])
		}
		cases = picked
	}
	t.Run("faults", func(t *testing.T) {
		// Cases wait on the database more than they compute: run several
		// at once (t.Run may be called from several goroutines).
		work := make(chan [2]*Injection)
		var wg sync.WaitGroup
		for range faultWorkers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for pair := range work {
					runFaultCase(t, schemas, opts, dry, pair, &rep, &mu)
				}
			}()
		}
		for _, pair := range cases {
			work <- pair
		}
		close(work)
		wg.Wait()
	})
	return rep
}

// faultWorkers is how many cases run at once.
const faultWorkers = 6

// runFaultCase runs one case as a subtest of t and counts it in rep.
func runFaultCase(t *testing.T, schemas faultStores, opts FaultOptions, dry outcome, pair [2]*Injection, rep *FaultReport, mu *sync.Mutex) {
	name := pair[0].String()
	if pair[1] != nil {
		name += ", then in recovery " + pair[1].Fault.String() + " " + pair[1].Phase.String() + fmt.Sprintf(" #%d", pair[1].Seq)
	}
	t.Run(name, func(t *testing.T) {
		c, _ := runCase(t, schemas, opts, pair[0], pair[1])
		got := outcomeOf(c)
		stranded, wrong, unsettled := dry.compare(t, got)
		if opts.Check != nil && !t.Failed() {
			opts.Check(t, c)
		}
		mu.Lock()
		defer mu.Unlock()
		rep.Cases++
		if c.Fired {
			rep.Fired++
		}
		rep.Runs += len(c.Runs)
		rep.Stranded += stranded
		if wrong {
			rep.WrongState++
		}
		rep.Unsettled += unsettled
		if t.Failed() {
			rep.Failed++
		}
	})
}

// runCase runs one case on a fresh store: Start and work with the fault
// at (nil: none), then recover (with the fault second injected in the first
// recovery, when set). It returns the case and the calls of its faulty
// engine.
func runCase(t *testing.T, stores faultStores, opts FaultOptions, at, second *Injection) (*FaultCase, []string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	store := stores.get(ctx, t)
	drv := store.open(ctx, t)
	fd := newFaultDriver(drv, at)
	h := faultHarness(t, fd, drv, opts)
	stopBusy := store.busy(drv, func() bool { _, dead := fd.f.state(); return dead })
	startErr := opts.Start(ctx, h)
	if startErr != nil && at == nil {
		t.Fatalf("Start: %v", startErr)
	}
	// Work as a live process would until it has nothing left to do, or
	// died; a failed call (the fault) is followed by more work.
	for range 5 {
		if _, dead := fd.f.state(); dead {
			break
		}
		h.Queue().Maintain(ctx)
		if _, err := h.drainAll(ctx, queue.DrainOptions{WithScheduled: true}); err == nil && quiet(ctx, t, drv) {
			break
		}
	}
	// The process ends (it died, or a restart follows).
	stopBusy()
	store.stop(drv)
	fired, _ := fd.f.state()
	c := &FaultCase{Fired: fired}
	if at != nil {
		c.Injection = *at
	}
	calls := fd.f.calls()

	if second != nil && fired {
		// A second process recovers, and the fault hits it during its
		// first round (the rescue of what the first one held).
		at2 := *second
		drv := store.open(ctx, t)
		rd := newFaultDriver(drv, nil)
		rd.f.at = &at2
		rd.f.wildcard = true
		rh := faultHarness(t, rd, drv, opts)
		_, _ = recoverAll(ctx, t, rh, drv, nil, 1)
		store.stop(drv)
		at2.Op = rd.f.firedOp
		c.Rescue = at2
	}

	// A fault-free process recovers: a restart.
	drv = store.open(ctx, t)
	clean := faultHarness(t, drv, drv, opts)
	if startErr != nil {
		if err := opts.Start(ctx, clean); err != nil {
			t.Fatalf("Start, again after %v: %v", startErr, err)
		}
	}
	rested, err := recoverAll(ctx, t, clean, drv, opts.Resume, recoverRounds)
	if err != nil {
		t.Errorf("recovery: %v", err)
	}
	c.rested = rested
	c.Harness = clean
	var runs []*acidic.Run
	err = storage.EachRunPage(ctx, drv, acidic.RunFilter{}, func(page []*acidic.Run) error {
		for _, r := range page {
			steps, err := drv.RunSteps(ctx, storage.RunStepsParams{ID: r.ID})
			if err != nil {
				return err
			}
			r.Steps = steps
			runs = append(runs, r)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("list runs: %v", err)
	}
	c.Runs = runs
	return c, calls
}

// faultHarness is a harness for EachFault whose engine works through drv,
// base or a fault driver wrapping it, and whose maintenance rescues
// attempts older than rescueAfter.
func faultHarness(t *testing.T, drv, base storage.Driver, opts FaultOptions) *Harness {
	t.Helper()
	ho := opts.Harness
	ho.Mode, ho.Workers = Manual, nil
	if opts.Workers != nil {
		ho.Workers = opts.Workers()
	}
	return newHarness(t, drv, base, ho, queue.Config{HeartbeatInterval: time.Millisecond, RescueAfter: rescueAfter}, opts.Workflows(base)...)
}

// recoverAll rescues what dead processes held and works everything to rest,
// in at most rounds rounds; resume, when set, is called once when a run
// rests halted.
func recoverAll(ctx context.Context, t *testing.T, h *Harness, drv storage.Driver, resume func(context.Context, *Harness) error, rounds int) (rested map[string]int, err error) {
	resumed := resume == nil
	for range rounds {
		time.Sleep(2 * rescueAfter)
		h.Queue().Maintain(ctx)
		if _, err := h.drainAll(ctx, queue.DrainOptions{WithScheduled: true}); err != nil {
			continue
		}
		if !quiet(ctx, t, drv) {
			continue
		}
		if !resumed && hasHalted(ctx, t, drv) {
			resumed = true
			rested = runStates(ctx, t, drv)
			if err := resume(ctx, h); err != nil {
				return rested, fmt.Errorf("resume: %w", err)
			}
			continue
		}
		return rested, nil
	}
	return rested, fmt.Errorf("jobs still unfinished after %d rounds", rounds)
}

// runStates counts the runs of drv by workflow and state.
func runStates(ctx context.Context, t *testing.T, drv storage.Driver) map[string]int {
	m := map[string]int{}
	err := storage.EachRunPage(ctx, drv, acidic.RunFilter{}, func(page []*acidic.Run) error {
		for _, r := range page {
			m[r.Workflow+" "+string(r.State)+" at "+r.RecoveryPoint]++
		}
		return nil
	})
	if err != nil {
		t.Fatalf("list runs: %v", err)
	}
	return m
}

var liveJobStates = []acidic.JobState{acidic.JobPending, acidic.JobAvailable, acidic.JobScheduled, acidic.JobRunning, acidic.JobRetryable}

// quiet reports whether no job is left to run.
func quiet(ctx context.Context, t *testing.T, drv storage.Driver) bool {
	jobs, err := drv.JobList(ctx, acidic.JobFilter{States: liveJobStates, Limit: 1})
	if err != nil {
		t.Fatalf("list jobs: %v", err)
	}
	return len(jobs) == 0
}

func hasHalted(ctx context.Context, t *testing.T, drv storage.Driver) bool {
	runs, err := drv.RunList(ctx, acidic.RunFilter{States: []acidic.RunState{acidic.RunHalted}, Limit: 1})
	if err != nil {
		t.Fatalf("list runs: %v", err)
	}
	return len(runs) > 0
}

// outcome is what a case ended with, to compare with the fault-free run.
type outcome struct {
	states   map[string]int // "workflow state" -> runs
	rested   map[string]int // "workflow state at step" -> runs, before Resume
	finishes int            // finish callback jobs staged
	runs     []*acidic.Run
	jobs     []*acidic.Job
}

func outcomeOf(c *FaultCase) outcome {
	o := outcome{states: map[string]int{}, runs: c.Runs, rested: c.rested}
	for _, r := range c.Runs {
		o.states[r.Workflow+" "+string(r.State)]++
	}
	ctx := context.Background()
	jobs, err := c.Harness.Driver.JobList(ctx, acidic.JobFilter{Limit: 100000})
	if err == nil {
		o.jobs = jobs
		for _, j := range jobs {
			if j.Kind == workflow.FinishKind {
				o.finishes++
			}
		}
	}
	return o
}

// compare reports how got differs from the fault-free outcome o.
func (o outcome) compare(t testing.TB, got outcome) (stranded int, wrong bool, unsettled int) {
	t.Helper()
	for _, r := range got.runs {
		switch {
		case r.State == acidic.RunPending || r.State == acidic.RunRunning || r.State == acidic.RunAwaiting:
			stranded++
			t.Errorf("run %s (%s) stranded %s at %q (error %q)", r.ID, r.Workflow, r.State, r.RecoveryPoint, r.Error)
		case r.State.Final() && r.SettledAt == nil:
			unsettled++
			t.Errorf("run %s (%s) %s but not settled", r.ID, r.Workflow, r.State)
		}
	}
	for _, j := range got.jobs {
		if slices.Contains(liveJobStates, j.State) {
			stranded++
			t.Errorf("job %d (%s) left %s", j.ID, j.Kind, j.State)
		}
	}
	if !maps.Equal(o.states, got.states) {
		wrong = true
		t.Errorf("runs ended %s; without faults %s", describeStates(got.states), describeStates(o.states))
	}
	if !maps.Equal(o.rested, got.rested) {
		wrong = true
		t.Errorf("before Resume, runs rested %s; without faults %s", describeStates(got.rested), describeStates(o.rested))
	}
	if o.finishes != got.finishes {
		unsettled++
		t.Errorf("%d finish callbacks staged; without faults %d", got.finishes, o.finishes)
	}
	return stranded, wrong, unsettled
}

func describeStates(m map[string]int) string {
	keys := slices.Sorted(maps.Keys(m))
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s×%d", k, m[k])
	}
	return "[" + strings.Join(parts, ", ") + "]"
}
