package postgres

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/puddle/v2"

	"github.com/acidic-go/acidic"
	"github.com/acidic-go/acidic/migrations"
	"github.com/acidic-go/acidic/storage"
)

// Options configure a Driver. The zero value is usable.
type Options struct {
	// Schema holds Acidic's tables. Default DefaultSchema ("acidic").
	// It must pass CheckSchema (at most 63 bytes of UTF-8 without
	// control characters, not starting with "pg_"); any other character is
	// fine, since the name is always quoted.
	Schema string
	// MaxTxRetries caps how often a SERIALIZABLE transaction is run again
	// after a serialization failure or deadlock. Default 10.
	MaxTxRetries int
	// RetryInitialInterval is the first backoff before such a retry; later
	// ones grow exponentially with jitter. Default 5ms.
	RetryInitialInterval time.Duration
}

// Driver runs Acidic on a pgx connection pool. It is safe for concurrent use.
// The pool stays the caller's: closing it makes every call fail with
// acidic.ErrClosed.
type Driver struct {
	executor  // on the pool: executor.pool is the driver's pool, nil when refused
	opts      Options
	txRetries atomic.Int64
	// all is the pool, also when refused.
	all *pgxpool.Pool
	// refused is why Options.Schema cannot be used: every call returns it.
	refused error
}

var _ storage.Driver = (*Driver)(nil)

// New returns a Driver on pool. It panics only if the embedded SQL is
// malformed, which the package's tests rule out. A Schema that
// CheckSchema refuses makes every call of the driver (and of its
// Migrator) return that error, matching ErrInvalidSchema and
// acidic.ErrInvalid, without touching the database; check a schema name from
// configuration with CheckSchema first to fail early. A nil pool gives a
// driver good only for MigrationFiles (and Migrator().Latest).
func New(pool *pgxpool.Pool, opts Options) *Driver {
	if opts.Schema == "" {
		opts.Schema = DefaultSchema
	}
	if opts.MaxTxRetries <= 0 {
		opts.MaxTxRetries = 10
	}
	if opts.RetryInitialInterval <= 0 {
		opts.RetryInitialInterval = 5 * time.Millisecond
	}
	q, err := loadQueries(opts.Schema)
	if err != nil {
		panic(err)
	}
	d := &Driver{opts: opts, all: pool, refused: CheckSchema(opts.Schema)}
	d.executor = executor{db: pool, q: q, channelPrefix: channelPrefix(opts.Schema), pool: pool}
	if d.refused != nil {
		d.executor = executor{db: refusedDB{d.refused}, q: q, channelPrefix: d.channelPrefix}
	}
	return d
}

// channelPrefix names the schema's notification channels. Channel names are
// limited to 63 bytes like identifiers, so a long schema name is replaced by
// a hash of it.
func channelPrefix(schema string) string {
	const longestTopic = len(storage.TopicControl)
	if len(schema)+1+longestTopic <= 63 {
		return schema + "."
	}
	sum := sha256.Sum256([]byte(schema))
	return "acidic_" + hex.EncodeToString(sum[:8]) + "."
}

// Pool returns the pool the driver runs on.
func (d *Driver) Pool() *pgxpool.Pool { return d.all }

// Schema returns the schema holding the tables.
func (d *Driver) Schema() string { return d.opts.Schema }

// Migrator returns a migrator for the driver's schema: migrations.New(d).
func (d *Driver) Migrator() *migrations.Migrator { return migrations.New(d) }

// Capabilities reports what PostgreSQL gives: notifications across every
// process on the database (LISTEN/NOTIFY), several processes on one schema,
// and a step's closing write pipelined with its COMMIT.
func (d *Driver) Capabilities() storage.Capabilities {
	return storage.Capabilities{Notify: storage.NotifyCluster, MultiProcess: true, PipelinedCommit: true}
}

// Stats returns the driver's counters.
func (d *Driver) Stats() storage.Stats {
	return storage.Stats{TxRetries: d.txRetries.Load()}
}

// WrapTx returns an Executor that runs inside tx, a transaction the caller
// began on a pool of the same database. Use it to enqueue jobs or runs
// atomically with the caller's own writes: they exist only if tx commits.
func (d *Driver) WrapTx(tx pgx.Tx) storage.Tx { return d.txExecutor(tx) }

// txExecutor runs the driver's queries in tx.
func (d *Driver) txExecutor(tx pgx.Tx) *txExecutor {
	var db dbtx = tx
	if d.refused != nil {
		db = refusedDB{d.refused}
	}
	return &txExecutor{executor: executor{db: db, q: d.q, channelPrefix: d.channelPrefix}, tx: tx}
}

// PgxTx returns the pgx transaction behind a storage.Tx made by this package
// (a step's transaction, for example), or nil if tx came from elsewhere. A
// step's transaction begins with the first statement run in it, and its
// Commit and Rollback return ErrStepTxOwned: the engine ends it.
//
// A storage.Tx that wraps another (a test's fault injection, say) is seen
// through when it has an Unwrap() storage.Tx method.
func PgxTx(tx storage.Tx) pgx.Tx {
	for {
		switch t := tx.(type) {
		case *txExecutor:
			return t.tx
		case interface{ Unwrap() storage.Tx }:
			tx = t.Unwrap()
		default:
			return nil
		}
	}
}

// InTx runs fn in a transaction; see storage.Driver.
func (d *Driver) InTx(ctx context.Context, iso storage.Isolation, fn storage.TxFunc) error {
	if d.refused != nil {
		return d.refused
	}
	level := pgx.ReadCommitted
	if iso == storage.Serializable {
		level = pgx.Serializable
	}
	return d.retrying(ctx, func() error {
		tx, err := d.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: level})
		if err != nil {
			return wrapErr(err)
		}
		wrapped := d.WrapTx(tx)
		returned := false
		defer func() {
			// An fn that panics, or ends its goroutine with runtime.Goexit
			// (t.FailNow in a test), must not leave the connection in a
			// transaction, holding its locks and its pool slot.
			if !returned {
				_ = tx.Rollback(context.WithoutCancel(ctx))
			}
		}()
		err = fn(ctx, wrapped)
		returned = true
		if err != nil {
			_ = tx.Rollback(context.WithoutCancel(ctx))
			return wrapErr(err)
		}
		return commit(ctx, tx)
	})
}

// commitTimeout bounds a COMMIT that runs on after its caller's context
// ended.
const commitTimeout = 30 * time.Second

// commit commits tx. Once the work is done, the caller's context no longer
// decides: a deadline that passed during the COMMIT would leave the caller
// with an error for a transaction that committed (an enqueue retried after
// it makes a second run), so the COMMIT runs on, bounded by commitTimeout.
// An answer that never came is acidic.ErrCommitUnknown; an answer the
// server gave (a serialization failure at commit, say) is a known rollback.
func commit(ctx context.Context, tx pgx.Tx) error {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), commitTimeout)
	defer cancel()
	err := tx.Commit(cctx)
	if err == nil {
		return nil
	}
	// A server ERROR answering COMMIT (a serialization failure, a deferred
	// constraint) is a known rollback. A FATAL or PANIC (the session was
	// terminated, the server shuts down) ends the session without saying
	// how the transaction ended, like a broken connection.
	var pgErr *pgconn.PgError
	if errors.Is(err, pgx.ErrTxCommitRollback) || (errors.As(err, &pgErr) && pgErr.Severity != "FATAL" && pgErr.Severity != "PANIC") {
		return wrapErr(err)
	}
	return fmt.Errorf("%w: %w", acidic.ErrCommitUnknown, err)
}

// retrying runs attempt until it succeeds, fails with an error other than a
// serialization failure or deadlock, or the retries or ctx run out.
func (d *Driver) retrying(ctx context.Context, attempt func() error) error {
	policy := backoff.NewExponentialBackOff()
	policy.InitialInterval = d.opts.RetryInitialInterval
	policy.MaxInterval = 50 * d.opts.RetryInitialInterval
	policy.MaxElapsedTime = 0
	var last error
	err := backoff.RetryNotify(func() error {
		err := attempt()
		if err == nil {
			return nil
		}
		last = err
		if errors.Is(err, acidic.ErrSerialization) {
			return err
		}
		return backoff.Permanent(err)
	}, backoff.WithContext(backoff.WithMaxRetries(policy, uint64(d.opts.MaxTxRetries)), ctx),
		func(error, time.Duration) { d.txRetries.Add(1) })
	if err != nil && errors.Is(err, acidic.ErrSerialization) {
		if ctx.Err() != nil {
			return fmt.Errorf("%w (last: %w)", ctx.Err(), last)
		}
		return fmt.Errorf("%w after %d retries: %w", acidic.ErrRetriesExhausted, d.opts.MaxTxRetries, err)
	}
	return err
}

// QueueHints returns the payloads of the insert notifications of queues,
// in order; see storage.Driver.
func (d *Driver) QueueHints(ctx context.Context, p storage.QueueHintsParams) ([]string, error) {
	queues := p.Queues
	rows, err := d.pool.Query(ctx, d.q.Get("QueueHints"), queues)
	if err != nil {
		return nil, fmt.Errorf("queue hints: %w", wrapErr(err))
	}
	hints, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("queue hints: %w", wrapErr(err))
	}
	return hints, nil
}

// NewListener opens a dedicated connection (outside the pool) for LISTEN.
func (d *Driver) NewListener(ctx context.Context) (storage.Listener, error) {
	if d.refused != nil {
		return nil, d.refused
	}
	// The listener has its own connection, which would open even after the
	// pool closed; ping through the pool so a closed driver says so.
	if err := d.pool.Ping(ctx); err != nil {
		return nil, wrapErr(err)
	}
	conn, err := pgx.ConnectConfig(ctx, d.pool.Config().ConnConfig.Copy())
	if err != nil {
		return nil, fmt.Errorf("postgres: listener connect: %w", err)
	}
	return &listener{conn: conn, prefix: d.channelPrefix}, nil
}

type listener struct {
	conn   *pgx.Conn
	prefix string
}

func (l *listener) Listen(ctx context.Context, topic string) error {
	_, err := l.conn.Exec(ctx, "LISTEN "+pgx.Identifier{l.prefix + topic}.Sanitize())
	return wrapErr(err)
}

func (l *listener) Wait(ctx context.Context) (storage.Notification, error) {
	n, err := l.conn.WaitForNotification(ctx)
	if err != nil {
		return storage.Notification{}, wrapErr(err)
	}
	return storage.Notification{Topic: n.Channel[len(l.prefix):], Payload: n.Payload}, nil
}

func (l *listener) Close(ctx context.Context) error { return l.conn.Close(ctx) }

// leaseLostCode is the SQLSTATE of the error RunUpdate raises when the run's
// lease is not held by the token it was given (migration 0004).
const leaseLostCode = "AC001"

// wrapErr maps driver errors to storage sentinels, keeping the original.
func wrapErr(err error) error {
	if err == nil {
		return nil
	}
	var pgErr *pgconn.PgError
	switch {
	case errors.Is(err, acidic.ErrSerialization), errors.Is(err, acidic.ErrClosed), errors.Is(err, acidic.ErrNotFound),
		errors.Is(err, acidic.ErrConflict), errors.Is(err, acidic.ErrLeaseLost):
		return err
	case errors.As(err, &pgErr) && (pgErr.Code == "40001" || pgErr.Code == "40P01"):
		return fmt.Errorf("%w: %w", acidic.ErrSerialization, err)
	case errors.As(err, &pgErr) && pgErr.Code == leaseLostCode:
		return fmt.Errorf("%w: %w", acidic.ErrLeaseLost, err)
	case errors.As(err, &pgErr) && pgErr.Code == "23505":
		return fmt.Errorf("%w: %w", acidic.ErrConflict, err)
	case errors.Is(err, puddle.ErrClosedPool):
		return fmt.Errorf("%w: %w", acidic.ErrClosed, err)
	case errors.Is(err, pgx.ErrNoRows):
		return fmt.Errorf("%w: %w", acidic.ErrNotFound, err)
	}
	return err
}
