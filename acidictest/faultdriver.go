package acidictest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"

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
// storage.ErrClosed, so that the engine gives up its writes at once as it
// does on a closed pool, instead of retrying what a dead process could not.
var errCrashed = fmt.Errorf("%w: crashed: %w", ErrInjected, storage.ErrClosed)

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

func (d *faultDriver) InStepTx(ctx context.Context, fn storage.StepFunc) (r *storage.Run, err error) {
	err = d.f.do(ctx, "InStepTx", func() error {
		r, err = d.drv.InStepTx(ctx, func(ctx context.Context, tx storage.Tx) (storage.StepCommit, error) {
			c, err := fn(ctx, d.wrap(tx))
			if then := c.Then; then != nil {
				c.Then = func(ctx context.Context, tx storage.Tx, r *storage.Run) error {
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

func (d *faultDriver) Schema() string { return d.drv.Schema() }

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

func (x *faultExec) JobInsertMany(ctx context.Context, jobs []storage.JobInsert) (r0 []*storage.Job, err error) {
	err = x.f.do(ctx, "JobInsertMany", func() error {
		r0, err = x.ex.JobInsertMany(ctx, jobs)
		return err
	})
	return
}

func (x *faultExec) JobInsertUnique(ctx context.Context, job storage.JobInsert, replace storage.JobReplace) (r0 *storage.Job, err error) {
	err = x.f.do(ctx, "JobInsertUnique", func() error {
		r0, err = x.ex.JobInsertUnique(ctx, job, replace)
		return err
	})
	return
}

func (x *faultExec) JobMakeDue(ctx context.Context, queue string) (r0 int, err error) {
	err = x.f.do(ctx, "JobMakeDue", func() error {
		r0, err = x.ex.JobMakeDue(ctx, queue)
		return err
	})
	return
}

func (x *faultExec) JobFetch(ctx context.Context, p storage.JobFetch) (r0 []*storage.Job, err error) {
	err = x.f.do(ctx, "JobFetch", func() error {
		r0, err = x.ex.JobFetch(ctx, p)
		return err
	})
	return
}

func (x *faultExec) JobClaim(ctx context.Context, id int64, workerID string) (r0 *storage.Job, err error) {
	err = x.f.do(ctx, "JobClaim", func() error {
		r0, err = x.ex.JobClaim(ctx, id, workerID)
		return err
	})
	return
}

func (x *faultExec) JobComplete(ctx context.Context, attempts []storage.JobAttempt) (r0 []int64, err error) {
	err = x.f.do(ctx, "JobComplete", func() error {
		r0, err = x.ex.JobComplete(ctx, attempts)
		return err
	})
	return
}

func (x *faultExec) JobResolveDependencies(ctx context.Context, ended []int64) (r0 int, r1 int, err error) {
	err = x.f.do(ctx, "JobResolveDependencies", func() error {
		r0, r1, err = x.ex.JobResolveDependencies(ctx, ended)
		return err
	})
	return
}

func (x *faultExec) JobFinish(ctx context.Context, o storage.JobOutcome) (r0 bool, err error) {
	err = x.f.do(ctx, "JobFinish", func() error {
		r0, err = x.ex.JobFinish(ctx, o)
		return err
	})
	return
}

func (x *faultExec) JobHeartbeat(ctx context.Context, attempts []storage.JobAttempt) (r0 []storage.JobStatus, err error) {
	err = x.f.do(ctx, "JobHeartbeat", func() error {
		r0, err = x.ex.JobHeartbeat(ctx, attempts)
		return err
	})
	return
}

func (x *faultExec) JobRescue(ctx context.Context, p storage.JobRescue) (r0 []*storage.Job, err error) {
	err = x.f.do(ctx, "JobRescue", func() error {
		r0, err = x.ex.JobRescue(ctx, p)
		return err
	})
	return
}

func (x *faultExec) JobPrune(ctx context.Context, retention time.Duration, limit int) (r0 int, err error) {
	err = x.f.do(ctx, "JobPrune", func() error {
		r0, err = x.ex.JobPrune(ctx, retention, limit)
		return err
	})
	return
}

func (x *faultExec) JobStats(ctx context.Context) (r0 []storage.QueueStats, err error) {
	err = x.f.do(ctx, "JobStats", func() error {
		r0, err = x.ex.JobStats(ctx)
		return err
	})
	return
}

func (x *faultExec) JobGet(ctx context.Context, id int64) (r0 *storage.Job, err error) {
	err = x.f.do(ctx, "JobGet", func() error {
		r0, err = x.ex.JobGet(ctx, id)
		return err
	})
	return
}

func (x *faultExec) JobList(ctx context.Context, f storage.JobFilter) (r0 []*storage.Job, err error) {
	err = x.f.do(ctx, "JobList", func() error {
		r0, err = x.ex.JobList(ctx, f)
		return err
	})
	return
}

func (x *faultExec) JobCancel(ctx context.Context, id int64) (r0 *storage.Job, err error) {
	err = x.f.do(ctx, "JobCancel", func() error {
		r0, err = x.ex.JobCancel(ctx, id)
		return err
	})
	return
}

func (x *faultExec) JobRetry(ctx context.Context, id int64) (r0 *storage.Job, err error) {
	err = x.f.do(ctx, "JobRetry", func() error {
		r0, err = x.ex.JobRetry(ctx, id)
		return err
	})
	return
}

func (x *faultExec) Notify(ctx context.Context, topic, payload string) (err error) {
	err = x.f.do(ctx, "Notify", func() error {
		err = x.ex.Notify(ctx, topic, payload)
		return err
	})
	return
}

func (x *faultExec) RunInsert(ctx context.Context, r storage.RunInsert) (r0 *storage.Run, r1 bool, err error) {
	err = x.f.do(ctx, "RunInsert", func() error {
		r0, r1, err = x.ex.RunInsert(ctx, r)
		return err
	})
	return
}

func (x *faultExec) RunGet(ctx context.Context, id uuid.UUID) (r0 *storage.Run, err error) {
	err = x.f.do(ctx, "RunGet", func() error {
		r0, err = x.ex.RunGet(ctx, id)
		return err
	})
	return
}

func (x *faultExec) RunGetByKey(ctx context.Context, key string) (r0 *storage.Run, err error) {
	err = x.f.do(ctx, "RunGetByKey", func() error {
		r0, err = x.ex.RunGetByKey(ctx, key)
		return err
	})
	return
}

func (x *faultExec) RunList(ctx context.Context, f storage.RunFilter) (r0 []*storage.Run, err error) {
	err = x.f.do(ctx, "RunList", func() error {
		r0, err = x.ex.RunList(ctx, f)
		return err
	})
	return
}

func (x *faultExec) RunLease(ctx context.Context, p storage.RunLease) (r0 *storage.Run, r1 bool, err error) {
	err = x.f.do(ctx, "RunLease", func() error {
		r0, r1, err = x.ex.RunLease(ctx, p)
		return err
	})
	return
}

func (x *faultExec) RunEnd(ctx context.Context, p storage.RunEnd) (r0 *storage.Run, r1 bool, err error) {
	err = x.f.do(ctx, "RunEnd", func() error {
		r0, r1, err = x.ex.RunEnd(ctx, p)
		return err
	})
	return
}

func (x *faultExec) RunSettle(ctx context.Context, id uuid.UUID) (r0 *storage.Run, r1 bool, err error) {
	err = x.f.do(ctx, "RunSettle", func() error {
		r0, r1, err = x.ex.RunSettle(ctx, id)
		return err
	})
	return
}

func (x *faultExec) RunUpdate(ctx context.Context, u storage.RunUpdate) (r0 *storage.Run, err error) {
	err = x.f.do(ctx, "RunUpdate", func() error {
		r0, err = x.ex.RunUpdate(ctx, u)
		return err
	})
	return
}

func (x *faultExec) RunRelease(ctx context.Context, r storage.RunRelease) (r0 *storage.Run, err error) {
	err = x.f.do(ctx, "RunRelease", func() error {
		r0, err = x.ex.RunRelease(ctx, r)
		return err
	})
	return
}

func (x *faultExec) RunSetState(ctx context.Context, id uuid.UUID, from []storage.RunState, to storage.RunState, errText string) (r0 *storage.Run, r1 bool, err error) {
	err = x.f.do(ctx, "RunSetState", func() error {
		r0, r1, err = x.ex.RunSetState(ctx, id, from, to, errText)
		return err
	})
	return
}

func (x *faultExec) RunChildFinished(ctx context.Context, childID uuid.UUID) (r0 *storage.Run, r1 bool, err error) {
	err = x.f.do(ctx, "RunChildFinished", func() error {
		r0, r1, err = x.ex.RunChildFinished(ctx, childID)
		return err
	})
	return
}

func (x *faultExec) RunSteps(ctx context.Context, id uuid.UUID) (r0 []storage.Step, err error) {
	err = x.f.do(ctx, "RunSteps", func() error {
		r0, err = x.ex.RunSteps(ctx, id)
		return err
	})
	return
}

func (x *faultExec) OutboxInsert(ctx context.Context, msgs []storage.OutboxInsert) (err error) {
	err = x.f.do(ctx, "OutboxInsert", func() error {
		err = x.ex.OutboxInsert(ctx, msgs)
		return err
	})
	return
}

func (x *faultExec) OutboxClaim(ctx context.Context, limit int, lease time.Duration) (r0 []*storage.OutboxMessage, err error) {
	err = x.f.do(ctx, "OutboxClaim", func() error {
		r0, err = x.ex.OutboxClaim(ctx, limit, lease)
		return err
	})
	return
}

func (x *faultExec) OutboxDelivered(ctx context.Context, ids []int64) (err error) {
	err = x.f.do(ctx, "OutboxDelivered", func() error {
		err = x.ex.OutboxDelivered(ctx, ids)
		return err
	})
	return
}

func (x *faultExec) OutboxFailed(ctx context.Context, id int64, attempt int, retryIn time.Duration, errText string) (err error) {
	err = x.f.do(ctx, "OutboxFailed", func() error {
		err = x.ex.OutboxFailed(ctx, id, attempt, retryIn, errText)
		return err
	})
	return
}

func (x *faultExec) OutboxRelease(ctx context.Context, claims []storage.OutboxClaim) (err error) {
	err = x.f.do(ctx, "OutboxRelease", func() error {
		err = x.ex.OutboxRelease(ctx, claims)
		return err
	})
	return
}

func (x *faultExec) OutboxPrune(ctx context.Context, retention time.Duration, limit int) (r0 int, err error) {
	err = x.f.do(ctx, "OutboxPrune", func() error {
		r0, err = x.ex.OutboxPrune(ctx, retention, limit)
		return err
	})
	return
}

func (x *faultExec) OutboxList(ctx context.Context, pendingOnly bool, limit int) (r0 []*storage.OutboxMessage, err error) {
	err = x.f.do(ctx, "OutboxList", func() error {
		r0, err = x.ex.OutboxList(ctx, pendingOnly, limit)
		return err
	})
	return
}

func (x *faultExec) JobLostAttempts(ctx context.Context, attempts []storage.JobAttempt) (r0 []storage.JobStatus, err error) {
	err = x.f.do(ctx, "JobLostAttempts", func() error {
		r0, err = x.ex.JobLostAttempts(ctx, attempts)
		return err
	})
	return
}

func (d *faultDriver) QueueHints(ctx context.Context, queues []string) (r0 []string, err error) {
	err = d.f.do(ctx, "QueueHints", func() error {
		r0, err = d.drv.QueueHints(ctx, queues)
		return err
	})
	return
}
