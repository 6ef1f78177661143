package acidictest

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"sync"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/storage"
)

// Fault is what happens at the boundary where it is injected.
type Fault int

const (
	// Crash: the process dies at the boundary. The call (Before) never
	// reaches the database, or (After) has done its work there when the
	// process dies; from then on nothing this process does reaches the
	// database, as after kill -9. An open transaction rolls back.
	Crash Fault = iota + 1
	// Fail: the call fails with an error and the process lives on. Before:
	// the database never saw the call (a dropped connection). After: the
	// database did the work, committed it if the call was a commit, and the
	// answer was lost (a lost COMMIT acknowledgement).
	Fail
)

func (f Fault) String() string {
	switch f {
	case Crash:
		return "crash"
	case Fail:
		return "fail"
	}
	return fmt.Sprintf("Fault(%d)", int(f))
}

// Phase says on which side of a call a fault is injected.
type Phase int

const (
	// Before the call reaches the database.
	Before Phase = iota + 1
	// After the database did the call's work, before its answer arrives.
	After
)

func (p Phase) String() string {
	if p == Before {
		return "before"
	}
	return "after"
}

// Injection is one fault at one boundary: the Seq-th call the engine made
// to its storage driver (counting from 1), an operation named Op: a query
// ("JobFetch", "RunUpdate", ...), or a whole transaction ("InTx",
// "InStepTx": Before is before it begins, After is after its COMMIT).
type Injection struct {
	Seq   int
	Op    string
	Phase Phase
	Fault Fault
}

func (i Injection) String() string {
	return fmt.Sprintf("%s %s #%d %s", i.Fault, i.Phase, i.Seq, i.Op)
}

// ErrInjected is the error of a call that failed because of an injected
// fault (and of every call after a Crash).
var ErrInjected = errors.New("acidictest: injected fault")

// errCrashed is what a crashed process's calls return. It matches
// acidic.ErrClosed, so that the engine gives up its writes at once as it
// does on a closed pool, instead of retrying what a dead process could not.
var errCrashed = fmt.Errorf("%w: crashed: %w", ErrInjected, acidic.ErrClosed)

// faults counts the calls of one engine and injects one fault.
type faults struct {
	mu    sync.Mutex
	seq   int
	ops   []string // every call's operation, in order
	at    *Injection
	fired bool
	dead  bool
	// wildcard injects at at.Seq whatever the operation; firedOp is the
	// operation it was injected at.
	wildcard bool
	firedOp  string
}

// do makes one call through the fault injection.
func (f *faults) do(ctx context.Context, op string, call func() error) error {
	f.mu.Lock()
	if f.dead {
		f.mu.Unlock()
		return errCrashed
	}
	f.seq++
	f.ops = append(f.ops, op)
	armed := f.at != nil && !f.fired && f.at.Seq == f.seq
	if armed && f.at.Op != op && !f.wildcard {
		// The engine took another path than in the fault-free run: inject
		// nothing rather than at the wrong place.
		armed = false
	}
	if armed {
		f.firedOp = op
	}
	if armed && f.at.Phase == Before {
		err := f.fire()
		f.mu.Unlock()
		return err
	}
	f.mu.Unlock()
	err := call()
	if armed {
		f.mu.Lock()
		defer f.mu.Unlock()
		return f.fire()
	}
	return err
}

// fire injects the armed fault; f.mu is held.
func (f *faults) fire() error {
	f.fired = true
	if f.at.Fault == Crash {
		f.dead = true
		return errCrashed
	}
	return fmt.Errorf("%w: %s", ErrInjected, f.at)
}

func (f *faults) state() (fired, dead bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.fired, f.dead
}

func (f *faults) calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.ops...)
}

// faultDriver is a storage.Driver that passes every call through faults.
type faultDriver struct {
	faultExec
	drv storage.Driver
}

var _ storage.Driver = (*faultDriver)(nil)

func newFaultDriver(drv storage.Driver, at *Injection) *faultDriver {
	f := &faults{at: at}
	return &faultDriver{faultExec: faultExec{ex: drv, f: f}, drv: drv}
}

func (d *faultDriver) InTx(ctx context.Context, iso storage.Isolation, fn storage.TxFunc) error {
	return d.f.do(ctx, "InTx", func() error {
		return d.drv.InTx(ctx, iso, func(ctx context.Context, tx storage.Tx) error {
			return fn(ctx, d.wrap(tx))
		})
	})
}

func (d *faultDriver) InStepTx(ctx context.Context, fn storage.StepFunc) (r *acidic.Run, err error) {
	err = d.f.do(ctx, "InStepTx", func() error {
		r, err = d.drv.InStepTx(ctx, func(ctx context.Context, tx storage.Tx) (storage.StepCommit, error) {
			c, err := fn(ctx, d.wrap(tx))
			if then := c.Then; then != nil {
				c.Then = func(ctx context.Context, tx storage.Tx, r *acidic.Run) error {
					return then(ctx, d.wrap(tx), r)
				}
			}
			return c, err
		})
		return err
	})
	return r, err
}

func (d *faultDriver) NewListener(ctx context.Context) (l storage.Listener, err error) {
	err = d.f.do(ctx, "NewListener", func() error {
		l, err = d.drv.NewListener(ctx)
		return err
	})
	return l, err
}

func (d *faultDriver) Stats() storage.Stats { return d.drv.Stats() }

func (d *faultDriver) Capabilities() storage.Capabilities { return d.drv.Capabilities() }

func (d *faultDriver) Schema() string { return d.drv.Schema() }

// The engine never migrates: migrations pass to the driver untouched.

func (d *faultDriver) MigrationFiles() fs.FS { return d.drv.MigrationFiles() }

func (d *faultDriver) MigrationLocked(ctx context.Context, p storage.MigrationLockedParams) error {
	return d.drv.MigrationLocked(ctx, p)
}

func (d *faultDriver) wrap(tx storage.Tx) storage.Tx {
	return &faultTx{faultExec: faultExec{ex: tx, f: d.f}, tx: tx}
}

// faultTx is a transaction whose statements pass through faults.
type faultTx struct {
	faultExec
	tx storage.Tx
}

// Unwrap returns the driver's own transaction (postgres.PgxTx uses it).
func (t *faultTx) Unwrap() storage.Tx { return t.tx }

func (t *faultTx) Commit(ctx context.Context) error {
	return t.f.do(ctx, "Commit", func() error { return t.tx.Commit(ctx) })
}

func (t *faultTx) Rollback(ctx context.Context) error { return t.tx.Rollback(ctx) }

// faultExec passes every query through faults.
type faultExec struct {
	ex storage.Executor
	f  *faults
}

var (
	_ storage.Executor = (*faultExec)(nil)
	_ storage.Tx       = (*faultTx)(nil)
)

func (x *faultExec) JobInsertMany(ctx context.Context, p storage.JobInsertManyParams) (r0 []*acidic.Job, err error) {
	err = x.f.do(ctx, "JobInsertMany", func() error {
		r0, err = x.ex.JobInsertMany(ctx, p)
		return err
	})
	return
}

func (x *faultExec) JobInsertUnique(ctx context.Context, p storage.JobInsertUniqueParams) (r0 *acidic.Job, err error) {
	err = x.f.do(ctx, "JobInsertUnique", func() error {
		r0, err = x.ex.JobInsertUnique(ctx, p)
		return err
	})
	return
}

func (x *faultExec) JobMakeDue(ctx context.Context, p storage.JobMakeDueParams) (r0 int, err error) {
	err = x.f.do(ctx, "JobMakeDue", func() error {
		r0, err = x.ex.JobMakeDue(ctx, p)
		return err
	})
	return
}

func (x *faultExec) JobFetch(ctx context.Context, p storage.JobFetchParams) (r0 []storage.FetchedJob, err error) {
	err = x.f.do(ctx, "JobFetch", func() error {
		r0, err = x.ex.JobFetch(ctx, p)
		return err
	})
	return
}

func (x *faultExec) JobClaim(ctx context.Context, p storage.JobClaimParams) (r0 *acidic.Job, err error) {
	err = x.f.do(ctx, "JobClaim", func() error {
		r0, err = x.ex.JobClaim(ctx, p)
		return err
	})
	return
}

func (x *faultExec) JobComplete(ctx context.Context, p storage.JobCompleteParams) (r0 []int64, err error) {
	err = x.f.do(ctx, "JobComplete", func() error {
		r0, err = x.ex.JobComplete(ctx, p)
		return err
	})
	return
}

func (x *faultExec) JobResolveDependencies(ctx context.Context, p storage.JobResolveDependenciesParams) (r0 int, r1 int, err error) {
	err = x.f.do(ctx, "JobResolveDependencies", func() error {
		r0, r1, err = x.ex.JobResolveDependencies(ctx, p)
		return err
	})
	return
}

func (x *faultExec) JobFinish(ctx context.Context, o storage.JobFinishParams) (r0 bool, err error) {
	err = x.f.do(ctx, "JobFinish", func() error {
		r0, err = x.ex.JobFinish(ctx, o)
		return err
	})
	return
}

func (x *faultExec) JobHeartbeat(ctx context.Context, p storage.JobHeartbeatParams) (r0 []storage.JobStatus, err error) {
	err = x.f.do(ctx, "JobHeartbeat", func() error {
		r0, err = x.ex.JobHeartbeat(ctx, p)
		return err
	})
	return
}

func (x *faultExec) JobRescue(ctx context.Context, p storage.JobRescueParams) (r0 []*acidic.Job, err error) {
	err = x.f.do(ctx, "JobRescue", func() error {
		r0, err = x.ex.JobRescue(ctx, p)
		return err
	})
	return
}

func (x *faultExec) JobPrune(ctx context.Context, p storage.JobPruneParams) (r0 int, err error) {
	err = x.f.do(ctx, "JobPrune", func() error {
		r0, err = x.ex.JobPrune(ctx, p)
		return err
	})
	return
}

func (x *faultExec) JobStats(ctx context.Context) (r0 []acidic.QueueStats, err error) {
	err = x.f.do(ctx, "JobStats", func() error {
		r0, err = x.ex.JobStats(ctx)
		return err
	})
	return
}

func (x *faultExec) JobGet(ctx context.Context, p storage.JobGetParams) (r0 *acidic.Job, err error) {
	err = x.f.do(ctx, "JobGet", func() error {
		r0, err = x.ex.JobGet(ctx, p)
		return err
	})
	return
}

func (x *faultExec) JobList(ctx context.Context, f acidic.JobFilter) (r0 []*acidic.Job, err error) {
	err = x.f.do(ctx, "JobList", func() error {
		r0, err = x.ex.JobList(ctx, f)
		return err
	})
	return
}

func (x *faultExec) JobCancel(ctx context.Context, p storage.JobCancelParams) (r0 *acidic.Job, err error) {
	err = x.f.do(ctx, "JobCancel", func() error {
		r0, err = x.ex.JobCancel(ctx, p)
		return err
	})
	return
}

func (x *faultExec) JobRetry(ctx context.Context, p storage.JobRetryParams) (r0 *acidic.Job, err error) {
	err = x.f.do(ctx, "JobRetry", func() error {
		r0, err = x.ex.JobRetry(ctx, p)
		return err
	})
	return
}

func (x *faultExec) Notify(ctx context.Context, p storage.NotifyParams) (err error) {
	err = x.f.do(ctx, "Notify", func() error {
		err = x.ex.Notify(ctx, p)
		return err
	})
	return
}

func (x *faultExec) RunInsert(ctx context.Context, r storage.RunInsertParams) (r0 *acidic.Run, r1 bool, err error) {
	err = x.f.do(ctx, "RunInsert", func() error {
		r0, r1, err = x.ex.RunInsert(ctx, r)
		return err
	})
	return
}

func (x *faultExec) RunGet(ctx context.Context, p storage.RunGetParams) (r0 *acidic.Run, err error) {
	err = x.f.do(ctx, "RunGet", func() error {
		r0, err = x.ex.RunGet(ctx, p)
		return err
	})
	return
}

func (x *faultExec) RunGetByKey(ctx context.Context, p storage.RunGetByKeyParams) (r0 *acidic.Run, err error) {
	err = x.f.do(ctx, "RunGetByKey", func() error {
		r0, err = x.ex.RunGetByKey(ctx, p)
		return err
	})
	return
}

func (x *faultExec) RunList(ctx context.Context, f acidic.RunFilter) (r0 []*acidic.Run, err error) {
	err = x.f.do(ctx, "RunList", func() error {
		r0, err = x.ex.RunList(ctx, f)
		return err
	})
	return
}

func (x *faultExec) RunLease(ctx context.Context, p storage.RunLeaseParams) (r0 *acidic.Run, r1 bool, err error) {
	err = x.f.do(ctx, "RunLease", func() error {
		r0, r1, err = x.ex.RunLease(ctx, p)
		return err
	})
	return
}

func (x *faultExec) RunEnd(ctx context.Context, p storage.RunEndParams) (r0 *acidic.Run, r1 bool, err error) {
	err = x.f.do(ctx, "RunEnd", func() error {
		r0, r1, err = x.ex.RunEnd(ctx, p)
		return err
	})
	return
}

func (x *faultExec) RunSettle(ctx context.Context, p storage.RunSettleParams) (r0 *acidic.Run, r1 bool, err error) {
	err = x.f.do(ctx, "RunSettle", func() error {
		r0, r1, err = x.ex.RunSettle(ctx, p)
		return err
	})
	return
}

func (x *faultExec) RunUpdate(ctx context.Context, u storage.RunUpdateParams) (r0 *acidic.Run, err error) {
	err = x.f.do(ctx, "RunUpdate", func() error {
		r0, err = x.ex.RunUpdate(ctx, u)
		return err
	})
	return
}

func (x *faultExec) RunRelease(ctx context.Context, r storage.RunReleaseParams) (r0 *acidic.Run, err error) {
	err = x.f.do(ctx, "RunRelease", func() error {
		r0, err = x.ex.RunRelease(ctx, r)
		return err
	})
	return
}

func (x *faultExec) RunSetState(ctx context.Context, p storage.RunSetStateParams) (r0 *acidic.Run, r1 bool, err error) {
	err = x.f.do(ctx, "RunSetState", func() error {
		r0, r1, err = x.ex.RunSetState(ctx, p)
		return err
	})
	return
}

func (x *faultExec) RunChildFinished(ctx context.Context, p storage.RunChildFinishedParams) (r0 *acidic.Run, r1 bool, err error) {
	err = x.f.do(ctx, "RunChildFinished", func() error {
		r0, r1, err = x.ex.RunChildFinished(ctx, p)
		return err
	})
	return
}

func (x *faultExec) RunSteps(ctx context.Context, p storage.RunStepsParams) (r0 []acidic.Step, err error) {
	err = x.f.do(ctx, "RunSteps", func() error {
		r0, err = x.ex.RunSteps(ctx, p)
		return err
	})
	return
}

func (x *faultExec) OutboxInsert(ctx context.Context, p storage.OutboxInsertParams) (err error) {
	err = x.f.do(ctx, "OutboxInsert", func() error {
		err = x.ex.OutboxInsert(ctx, p)
		return err
	})
	return
}

func (x *faultExec) OutboxClaim(ctx context.Context, p storage.OutboxClaimParams) (r0 []*acidic.OutboxMessage, err error) {
	err = x.f.do(ctx, "OutboxClaim", func() error {
		r0, err = x.ex.OutboxClaim(ctx, p)
		return err
	})
	return
}

func (x *faultExec) OutboxDelivered(ctx context.Context, p storage.OutboxDeliveredParams) (err error) {
	err = x.f.do(ctx, "OutboxDelivered", func() error {
		err = x.ex.OutboxDelivered(ctx, p)
		return err
	})
	return
}

func (x *faultExec) OutboxFailed(ctx context.Context, p storage.OutboxFailedParams) (err error) {
	err = x.f.do(ctx, "OutboxFailed", func() error {
		err = x.ex.OutboxFailed(ctx, p)
		return err
	})
	return
}

func (x *faultExec) OutboxRelease(ctx context.Context, p storage.OutboxReleaseParams) (err error) {
	err = x.f.do(ctx, "OutboxRelease", func() error {
		err = x.ex.OutboxRelease(ctx, p)
		return err
	})
	return
}

func (x *faultExec) OutboxPrune(ctx context.Context, p storage.OutboxPruneParams) (r0 int, err error) {
	err = x.f.do(ctx, "OutboxPrune", func() error {
		r0, err = x.ex.OutboxPrune(ctx, p)
		return err
	})
	return
}

func (x *faultExec) OutboxList(ctx context.Context, p storage.OutboxListParams) (r0 []*acidic.OutboxMessage, err error) {
	err = x.f.do(ctx, "OutboxList", func() error {
		r0, err = x.ex.OutboxList(ctx, p)
		return err
	})
	return
}

func (x *faultExec) JobLostAttempts(ctx context.Context, p storage.JobLostAttemptsParams) (r0 []storage.JobStatus, err error) {
	err = x.f.do(ctx, "JobLostAttempts", func() error {
		r0, err = x.ex.JobLostAttempts(ctx, p)
		return err
	})
	return
}

func (d *faultDriver) QueueHints(ctx context.Context, p storage.QueueHintsParams) (r0 []string, err error) {
	err = d.f.do(ctx, "QueueHints", func() error {
		r0, err = d.drv.QueueHints(ctx, p)
		return err
	})
	return
}
