package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/storage"
)

// Every write goes through one write transaction at a time on the driver's
// one writer connection. A transaction takes the write lock when it begins,
// before its first statement: first the driver's own (sem, so the writers
// of this process queue in Go instead of polling SQLite's lock), then the
// file's (BEGIN IMMEDIATE, which other processes' writers wait for under
// busy_timeout). No statement of a transaction ever has to upgrade a read
// lock to a write lock, so none fails half-way with SQLITE_BUSY and no
// function runs twice because of it.

// errClosed is the error of a call on a closed driver.
func errClosed() error { return fmt.Errorf("%w: sqlite: the driver was closed", acidic.ErrClosed) }

// txKey marks the context of a function a write transaction of driver d
// runs, so that a write on the driver made with it is refused
// (ErrNestedWrite) instead of waiting for its own transaction.
type txKey struct{ d *Driver }

// lock takes the driver's write lock, waiting at most BusyTimeout. A
// transaction that may join a group counts among the waiting while it
// waits (group.go).
func (d *Driver) lock(ctx context.Context, grouped bool) error {
	if d.closed.Load() {
		return errClosed()
	}
	select {
	case d.sem <- struct{}{}:
	default:
		if grouped {
			d.waiting.Add(1)
			defer d.waiting.Add(-1)
		}
		d.queued.Add(1)
		defer d.queued.Add(-1)
		timer := time.NewTimer(d.opts.BusyTimeout)
		defer timer.Stop()
		select {
		case d.sem <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		case <-timer.C:
			return fmt.Errorf("%w: %w: another write transaction of this process held the lock for %v",
				ErrBusy, acidic.ErrSerialization, d.opts.BusyTimeout)
		}
	}
	if d.closed.Load() {
		<-d.sem
		return errClosed()
	}
	return nil
}

func (d *Driver) unlock() { <-d.sem }

// txState is one write transaction. It begins at its first statement (a
// step that never touches the database holds no lock while its code runs).
type txState struct {
	d *Driver
	// bookkeeping transactions (claims, completions, heartbeats, leases)
	// commit with synchronous=NORMAL: see beginTx.
	bookkeeping bool
	// solo transactions (migrations) commit alone, never in a group, as
	// bookkeeping ones do (see grouped).
	solo bool
	// g is the group the transaction runs in; savepoint is set when it
	// joined a group that others had already written in (group.go).
	g         *group
	savepoint bool
	// held: holds the write lock in an open transaction. Atomic: the nested
	// write check may read it from any goroutine the context reached.
	held  atomic.Bool
	done  bool // committed or rolled back
	notes []storage.Notification
	// failed is the error of a method that failed after it may have
	// written part of what it writes (the second job of a batch broke a
	// unique key, say): the transaction can then only roll back, as a
	// PostgreSQL transaction aborted by an error does.
	failed error
}

// begin begins the transaction unless it has begun.
func (s *txState) begin(ctx context.Context) error {
	switch {
	case s.done:
		return ErrTxDone
	case s.held.Load():
		if s.d.aborted.Load() {
			return fmt.Errorf("%w: SQLite rolled it back after an error", ErrTxDone)
		}
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if outer, ok := ctx.Value(txKey{s.d}).(*txState); ok && outer != s && outer.held.Load() {
		return ErrNestedWrite
	}
	if err := s.d.lock(ctx, s.grouped()); err != nil {
		return err
	}
	if err := s.d.join(ctx, s); err != nil {
		s.d.release(s.grouped())
		return err
	}
	s.held.Store(true)
	return nil
}

// beginTx runs BEGIN IMMEDIATE on the writer, which the caller holds.
//
// Bookkeeping transactions commit without waiting for the disk
// (synchronous=NORMAL): in WAL mode their commit is in the WAL file, and
// the next transaction that commits with synchronous=FULL (every step,
// enqueue and transaction of the caller's) syncs the WAL up to it. One lost
// to a power cut means a job runs again, which at-least-once delivery
// allows; the run record keeps the step's effects once. The PostgreSQL
// driver does the same with synchronous_commit = off.
func (d *Driver) beginTx(ctx context.Context, bookkeeping bool) error {
	mode := "FULL"
	if bookkeeping {
		mode = "NORMAL"
	}
	if d.syncMode != mode {
		if _, err := d.wconn.ExecContext(context.Background(), "PRAGMA synchronous = "+mode); err != nil {
			return wrapErr(err)
		}
		d.syncMode = mode
	}
	d.aborted.Store(false)
	// The wait for another process's lock ends with ctx; without a deadline
	// or cancellation there is nothing to watch.
	_, err := d.control(ctx, ctlBegin)
	if err != nil && strings.Contains(err.Error(), "within a transaction") {
		// A ROLLBACK that failed left a transaction open: end it.
		_, _ = d.control(context.Background(), ctlRollback)
		d.aborted.Store(false)
		_, err = d.control(ctx, ctlBegin)
	}
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("sqlite: begin: %w", wrapErr(err))
	}
	return nil
}

// The statements that begin and end the writer's transactions, prepared
// once.
const (
	ctlBegin = iota
	ctlCommit
	ctlRollback

	ctlSavepoint
	ctlRelease
	ctlRollbackTo
)

var controlSQL = [...]string{ctlBegin: "BEGIN IMMEDIATE", ctlCommit: "COMMIT", ctlRollback: "ROLLBACK",
	ctlSavepoint: "SAVEPOINT acidic_member", ctlRelease: "RELEASE acidic_member", ctlRollbackTo: "ROLLBACK TO acidic_member"}

// control runs BEGIN IMMEDIATE, COMMIT or ROLLBACK on the writer.
func (d *Driver) control(ctx context.Context, which int) (sql.Result, error) {
	st := d.wctl[which]
	if st == nil {
		var err error
		if st, err = d.wconn.PrepareContext(context.Background(), controlSQL[which]); err != nil {
			return nil, err
		}
		d.wctl[which] = st
	}
	return st.ExecContext(ctx)
}

// commit commits the transaction and delivers its notifications. A
// transaction that never began commits nothing (its notifications are
// still delivered). A transaction in a group returns when the group
// committed, with the group's result (group.go).
func (s *txState) commit(ctx context.Context) error {
	if s.done {
		return ErrTxDone
	}
	if !s.held.Load() {
		s.done = true
		s.d.hub.publish(s.notes)
		return nil
	}
	if s.d.aborted.Load() {
		s.end()
		return fmt.Errorf("%w: SQLite rolled it back after an error", ErrTxDone)
	}
	if s.failed != nil {
		s.end()
		return fmt.Errorf("%w: rolled back, as a statement in it failed: %w", ErrTxDone, s.failed)
	}
	// Once the work is done the caller's context no longer decides: the
	// group's COMMIT runs to its end.
	if s.savepoint {
		if _, err := s.d.control(context.Background(), ctlRelease); err != nil {
			s.end()
			return fmt.Errorf("sqlite: commit: %w", wrapErr(err))
		}
	}
	g := s.g
	g.members++
	g.notes = append(g.notes, s.notes...)
	s.notes = nil
	s.held.Store(false)
	s.done = true
	if !s.d.release(s.grouped()) {
		return g.err // committed by release
	}
	return s.d.awaitGroup(g)
}

// end rolls back what did not commit and gives the write lock back. It
// runs also when the transaction's function panics.
func (s *txState) end() {
	if s.held.Load() {
		s.d.rollbackMember(s)
		s.held.Store(false)
		s.done = true
		s.notes = nil
		// The group's other transactions, if any, still commit: this one
		// hands the group over (they wait for its commit themselves), or
		// commits it for them.
		s.d.release(s.grouped())
		return
	}
	s.done = true
	s.notes = nil
}

// wq runs the driver's statements in a write transaction that has begun.
type wq struct{ s *txState }

func (q wq) stmt(name string) (directStmt, error) {
	d := q.s.d
	if d.aborted.Load() {
		return nil, fmt.Errorf("%w: SQLite rolled it back after an error", ErrTxDone)
	}
	return d.directStmtOf(name)
}

// The writer's statements run without the caller's context: they are short,
// the transaction holds the lock, and a statement interrupted half-way
// would make SQLite roll the whole transaction back. The context is checked
// when the transaction begins and before each method.

func (q wq) query(name string, args ...any) (rowset, error) {
	st, err := q.stmt(name)
	if err != nil {
		return nil, err
	}
	nv, err := q.s.d.bind(args)
	if err != nil {
		return nil, err
	}
	rows, err := st.QueryContext(context.Background(), nv)
	if err != nil {
		return nil, err
	}
	return &directRows{rows: rows}, nil
}

func (q wq) queryRow(name string, args ...any) row {
	rows, err := q.query(name, args...)
	if err != nil {
		return errRow{err}
	}
	return directRow{rows: rows.(*directRows)}
}

func (q wq) exec(name string, args ...any) (sql.Result, error) {
	st, err := q.stmt(name)
	if err != nil {
		return nil, err
	}
	nv, err := q.s.d.bind(args)
	if err != nil {
		return nil, err
	}
	res, err := st.ExecContext(context.Background(), nv)
	return res, wrapErr(err)
}

// execCount runs the statement named name and returns the number of rows
// it changed.
func (q wq) execCount(name string, args ...any) (int64, error) {
	res, err := q.exec(name, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// now is the store's time for this statement.
func (q wq) now() int64 { return q.s.d.clk.now() }

// notify queues a notification for the commit.
func (q wq) notify(topic, payload string) {
	q.s.notes = append(q.s.notes, storage.Notification{Topic: topic, Payload: payload})
}

// rq runs the driver's reads on the reader connections.
type rq struct{ d *Driver }

func (q rq) stmt(ctx context.Context, name string) (*sql.Stmt, error) {
	d := q.d
	d.rmu.Lock()
	defer d.rmu.Unlock()
	if st := d.rstmts[name]; st != nil {
		return st, nil
	}
	st, err := d.rdb.PrepareContext(ctx, d.q.Get(name))
	if err != nil {
		return nil, fmt.Errorf("sqlite: prepare %s: %w", name, wrapErr(err))
	}
	d.rstmts[name] = st
	return st, nil
}

// reader is what the read methods run their statements through: the
// transaction's connection inside a transaction, a reader outside.
type reader interface {
	query(ctx context.Context, name string, args ...any) (rowset, error)
	queryRow(ctx context.Context, name string, args ...any) row
}

func (q rq) query(ctx context.Context, name string, args ...any) (rowset, error) {
	st, err := q.stmt(ctx, name)
	if err != nil {
		return nil, err
	}
	rows, err := st.QueryContext(ctx, args...)
	if err != nil {
		return nil, err
	}
	return rows, nil
}

func (q rq) queryRow(ctx context.Context, name string, args ...any) row {
	st, err := q.stmt(ctx, name)
	if err != nil {
		return errRow{err}
	}
	return st.QueryRowContext(ctx, args...)
}

// wr is wq as a reader.
type wr struct{ wq }

func (q wr) query(_ context.Context, name string, args ...any) (rowset, error) {
	return q.wq.query(name, args...)
}
func (q wr) queryRow(_ context.Context, name string, args ...any) row {
	return q.wq.queryRow(name, args...)
}

type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }

// executor implements storage.Executor: on the driver (tx nil), each write
// is a write transaction of its own and each read runs on a reader; inside
// a transaction, everything runs in it.
type executor struct {
	d  *Driver
	tx *txState
}

// write runs fn in the executor's transaction, or in a transaction of its
// own that commits when fn returns nil.
func (e *executor) write(ctx context.Context, bookkeeping bool, fn func(q wq) error) error {
	if e.tx != nil {
		if err := e.tx.begin(ctx); err != nil {
			return err
		}
		err := fn(wq{e.tx})
		if err != nil && !writesNothing(err) && e.tx.failed == nil {
			// Not-found, lease-lost and in-use results write nothing; any other failure may have left part of the
			// method's writes.
			e.tx.failed = err
		}
		return err
	}
	s := &txState{d: e.d, bookkeeping: bookkeeping}
	if err := s.begin(ctx); err != nil {
		return err
	}
	defer s.end()
	if err := fn(wq{s}); err != nil {
		return err
	}
	return s.commit(ctx)
}

// writesNothing tells the errors a method returns before it writes
// anything: a missing row, a lost lease, a run RunDelete must keep.
func writesNothing(err error) bool {
	return errors.Is(err, acidic.ErrNotFound) || errors.Is(err, acidic.ErrLeaseLost) || errors.Is(err, acidic.ErrInUse)
}

// reader returns what reads run through.
func (e *executor) reader(ctx context.Context) (reader, error) {
	if e.tx != nil {
		if err := e.tx.begin(ctx); err != nil {
			return nil, err
		}
		return wr{wq{e.tx}}, nil
	}
	if e.d.closed.Load() {
		return nil, errClosed()
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return rq{e.d}, nil
}

// Notify sends a notification to the listeners of this driver; inside a
// transaction, when it commits.
func (e *executor) Notify(ctx context.Context, p storage.NotifyParams) error {
	if e.tx != nil {
		if e.tx.done {
			return ErrTxDone
		}
		e.tx.notes = append(e.tx.notes, storage.Notification(p))
		return nil
	}
	if e.d.closed.Load() {
		return errClosed()
	}
	e.d.hub.publish([]storage.Notification{storage.Notification(p)})
	return nil
}

// txExecutor is an executor inside a transaction: the driver's (InTx,
// InStepTx: owned) or the caller's (Begin).
type txExecutor struct {
	executor
	owned bool
}

var _ storage.Tx = (*txExecutor)(nil)

// Commit commits a transaction made by Begin. InTx and InStepTx commit
// theirs (ErrTxOwned).
func (t *txExecutor) Commit(ctx context.Context) error {
	if t.owned {
		return ErrTxOwned
	}
	return t.tx.commit(ctx)
}

// Rollback rolls back a transaction made by Begin; after Commit it does
// nothing. InTx and InStepTx roll theirs back (ErrTxOwned).
func (t *txExecutor) Rollback(context.Context) error {
	if t.owned {
		return ErrTxOwned
	}
	t.tx.end()
	return nil
}

// Begin starts a transaction of the caller's: use it to enqueue jobs or runs
// atomically with writes of your own (SQLTx runs your SQL in it), then
// Commit or Rollback it. It takes the write lock at its first statement and
// holds it until then, so keep it short, and do not write through the
// Driver itself meanwhile (that write would wait for this transaction
// until Options.BusyTimeout, then fail with ErrBusy).
func (d *Driver) Begin(ctx context.Context) (storage.Tx, error) {
	if d.closed.Load() {
		return nil, errClosed()
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return &txExecutor{executor: executor{d: d, tx: &txState{d: d}}}, nil
}

// InTx runs fn in a write transaction and commits it when fn returns nil;
// see storage.Driver. Both isolations are SQLite's: serializable, with the
// write lock taken when the transaction begins (BEGIN IMMEDIATE), so no
// transaction ever fails on a lock upgrade. fn runs again (with jittered
// exponential backoff) only when it returns an error matching
// acidic.ErrSerialization, ErrBusy among them.
func (d *Driver) InTx(ctx context.Context, _ storage.Isolation, fn storage.TxFunc) error {
	return d.retrying(ctx, func() error {
		s := &txState{d: d}
		defer s.end()
		tx := &txExecutor{executor: executor{d: d, tx: s}, owned: true}
		if err := fn(context.WithValue(ctx, txKey{d}, s), tx); err != nil {
			return wrapErr(err)
		}
		return s.commit(ctx)
	})
}

// InStepTx runs a step's transaction; see storage.Driver. The transaction
// begins (BEGIN IMMEDIATE) when fn first uses tx, so a step that never
// touches the database holds no lock while its code runs, and one that does
// holds the write lock from its first statement to its commit: keep calls
// to other systems before the step's first statement, or in a step of their
// own. The step's closing write runs after fn, then StepCommit.Then, then
// COMMIT with synchronous=FULL.
func (d *Driver) InStepTx(ctx context.Context, fn storage.StepFunc) (*acidic.Run, error) {
	var out *acidic.Run
	err := d.retrying(ctx, func() error {
		s := &txState{d: d}
		defer s.end()
		tx := &txExecutor{executor: executor{d: d, tx: s}, owned: true}
		fctx := context.WithValue(ctx, txKey{d}, s)
		c, err := fn(fctx, tx)
		if err != nil {
			return wrapErr(err)
		}
		r, err := tx.RunUpdate(fctx, c.Update)
		if err != nil {
			return err
		}
		if c.Then != nil {
			if err := c.Then(fctx, tx, r); err != nil {
				return wrapErr(err)
			}
		}
		if err := s.commit(ctx); err != nil {
			return err
		}
		out = r
		return nil
	})
	return out, err
}

// retrying runs attempt until it succeeds, fails with an error other than a
// serialization failure, or the retries or ctx run out.
func (d *Driver) retrying(ctx context.Context, attempt func() error) error {
	wait := d.opts.RetryInitialInterval
	var err error
	for try := 0; ; try++ {
		if err = attempt(); err == nil || !errors.Is(err, acidic.ErrSerialization) {
			return err
		}
		if try == d.opts.MaxTxRetries {
			return fmt.Errorf("%w after %d retries: %w", acidic.ErrRetriesExhausted, d.opts.MaxTxRetries, err)
		}
		d.txRetries.Add(1)
		// Jitter between half and all of the interval, which doubles up to
		// 50 times the first.
		sleep := wait/2 + time.Duration(d.clk.now()%int64(wait/2+1))
		timer := time.NewTimer(sleep)
		select {
		case <-ctx.Done():
			timer.Stop()
			return fmt.Errorf("%w (last: %w)", ctx.Err(), err)
		case <-timer.C:
		}
		if wait < 50*d.opts.RetryInitialInterval {
			wait *= 2
		}
	}
}

// Querier runs SQL of the caller's own in a transaction of the driver.
type Querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *Row
}

// Row is the result of QueryRowContext: like *sql.Row, with the error of a
// transaction that could not begin.
type Row struct {
	row *sql.Row
	err error
}

// Scan copies the row's columns into dest, as sql.Row.Scan does.
func (r *Row) Scan(dest ...any) error {
	if r.err != nil {
		return r.err
	}
	return r.row.Scan(dest...)
}

// Err returns the error of the query, if any, without scanning.
func (r *Row) Err() error {
	if r.err != nil {
		return r.err
	}
	return r.row.Err()
}

// SQLTx returns a Querier that runs your SQL in tx, a transaction of this
// package's (a step's, InTx's or Begin's), or nil if tx came from elsewhere.
// The first statement begins the transaction (BEGIN IMMEDIATE) if it has
// not begun. A storage.Tx that wraps another (a test's fault injection,
// say) is seen through when it has an Unwrap() storage.Tx method.
//
// Your statements run on the driver's writer connection: close the rows of
// a query before the step ends. Should SQLite roll the transaction back
// (a statement interrupted because its context ended, a full disk), every
// later statement and the commit fail with ErrTxDone.
func SQLTx(tx storage.Tx) Querier {
	for {
		switch t := tx.(type) {
		case *txExecutor:
			return userTx{t.tx}
		case interface{ Unwrap() storage.Tx }:
			tx = t.Unwrap()
		default:
			return nil
		}
	}
}

type userTx struct{ s *txState }

func (u userTx) conn(ctx context.Context) (*sql.Conn, error) {
	if err := u.s.begin(ctx); err != nil {
		return nil, err
	}
	return u.s.d.wconn, nil
}

func (u userTx) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	c, err := u.conn(ctx)
	if err != nil {
		return nil, err
	}
	return c.ExecContext(ctx, query, args...)
}

func (u userTx) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	c, err := u.conn(ctx)
	if err != nil {
		return nil, err
	}
	return c.QueryContext(ctx, query, args...)
}

func (u userTx) QueryRowContext(ctx context.Context, query string, args ...any) *Row {
	c, err := u.conn(ctx)
	if err != nil {
		return &Row{err: err}
	}
	return &Row{row: c.QueryRowContext(ctx, query, args...)}
}
