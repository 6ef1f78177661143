package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/storage"
)

// ErrStepTxOwned is returned by Commit and Rollback on a step's transaction:
// the engine commits it with the step's progress. Return an error from the
// step to roll it back.
var ErrStepTxOwned = errors.New("postgres: a step's transaction is committed or rolled back by the engine")

const beginSerializable = "BEGIN ISOLATION LEVEL SERIALIZABLE"

// InStepTx runs a step's transaction; see storage.Driver.
func (d *Driver) InStepTx(ctx context.Context, fn storage.StepFunc) (*acidic.Run, error) {
	if d.refused != nil {
		return nil, d.refused
	}
	var out *acidic.Run
	err := d.retrying(ctx, func() error {
		st := &stepTx{pool: d.pool}
		ex := d.txExecutor(st)
		defer st.end(ctx)
		c, err := fn(ctx, ex)
		if err != nil {
			return wrapErr(err)
		}
		if c.Then != nil {
			out, err = st.commitThen(ctx, ex, c)
		} else {
			out, err = st.commitPipelined(ctx, ex, c.Update)
		}
		return err
	})
	return out, err
}

// stepTx is a SERIALIZABLE transaction that begins when it is first used. It
// implements pgx.Tx for the step's own queries (see PgxTx).
type stepTx struct {
	pool *pgxpool.Pool
	conn *pgxpool.Conn // held from the first use (or the commit) on
	tx   pgx.Tx        // nil until begun
	done bool          // committed or rolled back
}

var _ pgx.Tx = (*stepTx)(nil)

// begin starts the transaction on its first use.
func (s *stepTx) begin(ctx context.Context) (pgx.Tx, error) {
	if s.done {
		return nil, fmt.Errorf("%w: the step's transaction has ended", pgx.ErrTxClosed)
	}
	if s.tx != nil {
		return s.tx, nil
	}
	if err := s.acquire(ctx); err != nil {
		return nil, err
	}
	tx, err := s.conn.Conn().BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.Serializable})
	if err != nil {
		return nil, wrapErr(err)
	}
	s.tx = tx
	return tx, nil
}

func (s *stepTx) acquire(ctx context.Context) error {
	if s.conn != nil {
		return nil
	}
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return wrapErr(err)
	}
	s.conn = conn
	return nil
}

// commitPipelined writes the update and commits in one round trip (with the
// BEGIN too when nothing used the transaction yet). The update raises an
// error when the lease is lost, so the COMMIT behind it never commits a
// step whose run another worker holds.
func (s *stepTx) commitPipelined(ctx context.Context, ex *txExecutor, u storage.RunUpdateParams) (*acidic.Run, error) {
	begun := s.tx != nil
	if err := s.acquire(ctx); err != nil {
		return nil, err
	}
	b := &pgx.Batch{}
	if !begun {
		b.Queue(beginSerializable)
	}
	sql, args, err := ex.runUpdateStatement(u)
	if err != nil {
		return nil, err
	}
	b.Queue(sql, args...)
	b.Queue("COMMIT")
	br := s.conn.SendBatch(ctx, b)
	r, err := readStepCommit(br, !begun)
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, runUpdateErr(u, err)
	}
	s.done = true
	return r, nil
}

func readStepCommit(br pgx.BatchResults, begin bool) (*acidic.Run, error) {
	if begin {
		if _, err := br.Exec(); err != nil {
			return nil, err
		}
	}
	r, err := scanRun(br.QueryRow())
	if err != nil {
		return nil, err
	}
	tag, err := br.Exec()
	if err != nil {
		return nil, err
	}
	if tag.String() != "COMMIT" {
		// COMMIT of a transaction that had failed answers ROLLBACK.
		return nil, pgx.ErrTxCommitRollback
	}
	return r, nil
}

// commitThen runs the update, then c.Then, then commits.
func (s *stepTx) commitThen(ctx context.Context, ex *txExecutor, c storage.StepCommit) (*acidic.Run, error) {
	r, err := ex.RunUpdate(ctx, c.Update)
	if err != nil {
		return nil, err
	}
	if err := c.Then(ctx, ex, r); err != nil {
		return nil, err
	}
	if err := s.tx.Commit(ctx); err != nil {
		return nil, wrapErr(err)
	}
	s.done = true
	return r, nil
}

// end rolls back what did not commit and gives the connection back. It also
// runs when the step's function panics, so the pool does not lose the
// connection.
func (s *stepTx) end(ctx context.Context) {
	if s.conn == nil {
		return
	}
	if s.conn.Conn().PgConn().TxStatus() != 'I' {
		// Release closes a connection that could not roll back.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		_, _ = s.conn.Exec(rctx, "ROLLBACK")
		cancel()
	}
	s.done = true
	s.conn.Release()
	s.conn = nil
}

// Begin starts a nested transaction (a savepoint).
func (s *stepTx) Begin(ctx context.Context) (pgx.Tx, error) {
	tx, err := s.begin(ctx)
	if err != nil {
		return nil, err
	}
	return tx.Begin(ctx)
}

// Commit refuses: the engine commits the step's transaction.
func (s *stepTx) Commit(context.Context) error { return ErrStepTxOwned }

// Rollback refuses: return an error from the step to roll it back.
func (s *stepTx) Rollback(context.Context) error { return ErrStepTxOwned }

func (s *stepTx) CopyFrom(ctx context.Context, table pgx.Identifier, columns []string, src pgx.CopyFromSource) (int64, error) {
	tx, err := s.begin(ctx)
	if err != nil {
		return 0, err
	}
	return tx.CopyFrom(ctx, table, columns, src)
}

func (s *stepTx) SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults {
	tx, err := s.begin(ctx)
	if err != nil {
		return pgx.FailedBatchResults(b, err)
	}
	return tx.SendBatch(ctx, b)
}

// LargeObjects begins the transaction if it has not begun (without a
// deadline). Should that fail, the returned value must not be used: run any
// query first to see the error.
func (s *stepTx) LargeObjects() pgx.LargeObjects {
	tx, err := s.begin(context.Background())
	if err != nil {
		return pgx.LargeObjects{}
	}
	return tx.LargeObjects()
}

func (s *stepTx) Prepare(ctx context.Context, name, sql string) (*pgconn.StatementDescription, error) {
	tx, err := s.begin(ctx)
	if err != nil {
		return nil, err
	}
	return tx.Prepare(ctx, name, sql)
}

func (s *stepTx) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	tx, err := s.begin(ctx)
	if err != nil {
		return pgconn.CommandTag{}, err
	}
	return tx.Exec(ctx, sql, args...)
}

func (s *stepTx) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	tx, err := s.begin(ctx)
	if err != nil {
		return nil, err
	}
	return tx.Query(ctx, sql, args...)
}

func (s *stepTx) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	tx, err := s.begin(ctx)
	if err != nil {
		return errRow{err}
	}
	return tx.QueryRow(ctx, sql, args...)
}

// Conn begins the transaction if it has not begun (without a deadline) and
// returns its connection; nil if it could not begin.
func (s *stepTx) Conn() *pgx.Conn {
	tx, err := s.begin(context.Background())
	if err != nil {
		return nil
	}
	return tx.Conn()
}

type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }
