package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	msqlite "modernc.org/sqlite"

	"github.com/acidic-go/acidic/migrations"
	"github.com/acidic-go/acidic/storage"
)

// Options configure a Driver. The zero value is usable.
type Options struct {
	// BusyTimeout is how long a write waits for the write lock, held by
	// another write transaction of this process or of another process on
	// the file, before it fails with ErrBusy. Default 10s.
	BusyTimeout time.Duration
	// MaxReaders caps the connections that serve reads made outside a
	// transaction (JobGet, RunList, ...); WAL mode lets them read while a
	// write is under way. Default 4.
	MaxReaders int
	// MaxTxRetries caps how often InTx and InStepTx run their function
	// again after a serialization failure (ErrBusy, or an
	// acidic.ErrSerialization the function returned). Default 10.
	MaxTxRetries int
	// RetryInitialInterval is the first backoff before such a retry; later
	// ones grow exponentially with jitter. Default 5ms.
	RetryInitialInterval time.Duration
	// Migrate applies the driver's pending migrations when Open opens the
	// file (creating the tables of a new file). Without it, run
	// Driver.Migrator().Up, or `acidic migrate`.
	Migrate bool
}

func (o *Options) defaults() {
	if o.BusyTimeout <= 0 {
		o.BusyTimeout = 10 * time.Second
	}
	if o.MaxReaders <= 0 {
		o.MaxReaders = 4
	}
	if o.MaxTxRetries <= 0 {
		o.MaxTxRetries = 10
	}
	if o.RetryInitialInterval <= 0 {
		o.RetryInitialInterval = 5 * time.Millisecond
	}
}

// Driver runs Acidic on one SQLite file. It is safe for concurrent use; Close
// it when done. See the package documentation for how it differs from the
// PostgreSQL driver.
type Driver struct {
	executor // on the driver itself: every call its own transaction, or a read
	path     string
	opts     Options
	q        queries
	clk      clock
	hub      hub

	// The writer: one connection, one write transaction at a time. sem is
	// held from BEGIN IMMEDIATE to COMMIT or ROLLBACK; the fields after it
	// are used only by its holder.
	sem      chan struct{}
	wdb      *sql.DB
	wconn    *sql.Conn
	wraw     directConn // wconn's connection of the library (direct.go)
	wdirect  map[string]directStmt
	wargs    []driver.NamedValue
	wctl     [len(controlSQL)]*sql.Stmt // BEGIN IMMEDIATE, COMMIT, ROLLBACK, savepoints
	syncMode string
	// group is the open transaction the transactions of this process
	// commit in together (group commit, group.go); nil between groups.
	group *group
	// waiting counts the writers of this process waiting for sem: while
	// some wait, a transaction that ends hands the open transaction over
	// instead of committing it.
	waiting atomic.Int32
	queued  atomic.Int32 // every writer waiting for sem (tests)
	groups  atomic.Int64 // groups committed or failed (tests, benchmarks)
	members atomic.Int64 // transactions committed in them
	// aborted is set when SQLite rolls the open transaction back by itself
	// (an interrupted statement, a full disk): the statements after it
	// would otherwise run outside any transaction.
	aborted atomic.Bool

	// The readers: a pool of read-only connections.
	rdb    *sql.DB
	rmu    sync.Mutex
	rstmts map[string]*sql.Stmt

	txRetries atomic.Int64
	closed    atomic.Bool
	closeOnce sync.Once
}

var _ storage.Driver = (*Driver)(nil)

// Open opens (creating it if needed) the SQLite database at path and
// returns a driver on it. The file is put in WAL mode; see the package
// documentation for the settings.
//
// A path that cannot be opened or created returns an *OpenError matching
// ErrCannotOpen, a file that is not a SQLite database one matching
// ErrNotADatabase, both before anything is written. A file that a newer
// build of Acidic migrated (it records versions this build does not know) is
// refused with a *migrations.NewerStoreError naming them. With
// Options.Migrate the pending migrations are applied.
func Open(ctx context.Context, path string, opts Options) (*Driver, error) {
	opts.defaults()
	abs, err := checkPath(path)
	if err != nil {
		return nil, err
	}
	q, err := loadQueries()
	if err != nil {
		// The embedded SQL is checked by the package's tests.
		panic(err)
	}
	d := &Driver{path: path, opts: opts, q: q, sem: make(chan struct{}, 1),
		wdirect: map[string]directStmt{}, rstmts: map[string]*sql.Stmt{}, syncMode: "FULL"}
	d.executor = executor{d: d}
	d.hub.init()
	if err := d.open(ctx, abs); err != nil {
		d.closeConns()
		return nil, err
	}
	if err := d.checkStore(ctx); err != nil {
		_ = d.Close()
		return nil, err
	}
	return d, nil
}

// checkPath refuses a path SQLite would not open as a file of its own, and
// returns it made absolute.
func checkPath(path string) (string, error) {
	refuse := func(err error) (string, error) {
		return "", &OpenError{Path: path, Kind: ErrCannotOpen, Err: err}
	}
	switch path {
	case "":
		return refuse(errors.New("the path is empty"))
	case ":memory:":
		return refuse(errors.New("an in-memory database has no file for the writer and the readers to share; give a path"))
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return refuse(err)
	}
	dir, err := os.Stat(filepath.Dir(abs))
	switch {
	case err != nil:
		return refuse(fmt.Errorf("its directory: %w", err))
	case !dir.IsDir():
		return refuse(fmt.Errorf("%s is not a directory", filepath.Dir(abs)))
	}
	if st, err := os.Stat(abs); err == nil && st.IsDir() {
		return refuse(errors.New("it is a directory"))
	}
	return abs, nil
}

// dsn is the data source name of a connection to the file at abs.
func (d *Driver) dsn(abs string, reader bool) string {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout("+strconv.FormatInt(d.opts.BusyTimeout.Milliseconds(), 10)+")")
	q.Add("_pragma", "foreign_keys(1)")
	if reader {
		q.Add("_pragma", "query_only(1)")
	} else {
		q.Add("_pragma", "journal_mode(WAL)")
		q.Add("_pragma", "synchronous(FULL)")
		// 8 MiB of page cache (SQLite's default is 2 MiB): enqueues insert
		// runs by random ids all over the runs' primary key, and with
		// 100,000 runs the default cache made them read pages back from
		// the file at every insert (1.5 to 2.7 times slower; the peak RSS
		// of 100,000 runs enqueued and worked went from 24 to 35 MiB).
		q.Add("_pragma", "cache_size(-8192)")
	}
	return (&url.URL{Scheme: "file", Path: abs, RawQuery: q.Encode()}).String()
}

// open connects the writer and the readers.
func (d *Driver) open(ctx context.Context, abs string) error {
	wdb, err := sql.Open("sqlite", d.dsn(abs, false))
	if err != nil {
		return openErr(d.path, err)
	}
	d.wdb = wdb
	wdb.SetMaxOpenConns(1)
	wdb.SetMaxIdleConns(1)
	wdb.SetConnMaxLifetime(0)
	wdb.SetConnMaxIdleTime(0)
	// The first connection applies the pragmas: journal_mode reads the
	// file's header, so a file that is not a database fails here.
	conn, err := wdb.Conn(ctx)
	if err != nil {
		return openErr(d.path, err)
	}
	d.wconn = conn
	var n int
	if err := conn.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_master").Scan(&n); err != nil {
		return openErr(d.path, err)
	}
	err = conn.Raw(func(dc any) error {
		h, ok := dc.(msqlite.HookRegisterer)
		if !ok {
			return fmt.Errorf("sqlite: the library's connection %T registers no hooks", dc)
		}
		h.RegisterRollbackHook(func() { d.aborted.Store(true) })
		raw, ok := dc.(directConn)
		if !ok {
			return fmt.Errorf("sqlite: the library's connection %T prepares no statements with a context", dc)
		}
		// Kept for the writer's own statements (direct.go): wconn is held
		// for the driver's life, so database/sql never hands the connection
		// to anyone else or closes it under us.
		d.wraw = raw
		return nil
	})
	if err != nil {
		return err
	}
	rdb, err := sql.Open("sqlite", d.dsn(abs, true))
	if err != nil {
		return openErr(d.path, err)
	}
	d.rdb = rdb
	rdb.SetMaxOpenConns(d.opts.MaxReaders)
	rdb.SetMaxIdleConns(d.opts.MaxReaders)
	rdb.SetConnMaxLifetime(0)
	rdb.SetConnMaxIdleTime(0)
	if err := rdb.PingContext(ctx); err != nil {
		return openErr(d.path, err)
	}
	return nil
}

// checkStore refuses a store a newer build migrated, and migrates it when
// asked to.
func (d *Driver) checkStore(ctx context.Context) error {
	m := d.Migrator()
	if d.opts.Migrate {
		if _, err := m.Up(ctx); err != nil {
			return err
		}
		return nil
	}
	var exists int
	if err := d.rdb.QueryRowContext(ctx, d.q.Get("MigrationFind")).Scan(&exists); err != nil {
		return openErr(d.path, err)
	}
	if exists == 0 {
		return nil
	}
	applied, err := scanApplied(d.rdb.QueryContext(ctx, d.q.Get("MigrationApplied")))
	if err != nil {
		return err
	}
	var unknown []storage.AppliedMigration
	for _, a := range applied {
		if a.Version < 1 || a.Version > m.Latest() {
			unknown = append(unknown, a)
		}
	}
	if len(unknown) > 0 {
		return &migrations.NewerStoreError{Unknown: unknown, Latest: m.Latest()}
	}
	return nil
}

// Close waits for the write transaction under way, if any (at most
// Options.BusyTimeout), and closes the connections. Calls after it fail
// with acidic.ErrClosed, and listeners stop with it. Close may be called
// more than once.
func (d *Driver) Close() error {
	var err error
	d.closeOnce.Do(func() {
		d.closed.Store(true)
		d.hub.close()
		timer := time.NewTimer(d.opts.BusyTimeout)
		defer timer.Stop()
		select {
		case d.sem <- struct{}{}:
			// Transactions handed over and waiting for their commit get it.
			if d.group != nil {
				d.commitGroup()
			}
		case <-timer.C:
			// A transaction that never ended: close under it (SQLite rolls
			// it back).
		}
		err = d.closeConns()
	})
	return err
}

func (d *Driver) closeConns() error {
	var errs []error
	for _, st := range d.wdirect {
		errs = append(errs, st.Close())
	}
	for _, st := range d.wctl {
		if st != nil {
			errs = append(errs, st.Close())
		}
	}
	d.rmu.Lock()
	for _, st := range d.rstmts {
		errs = append(errs, st.Close())
	}
	d.rmu.Unlock()
	if d.wconn != nil {
		errs = append(errs, d.wconn.Close())
	}
	if d.wdb != nil {
		errs = append(errs, d.wdb.Close())
	}
	if d.rdb != nil {
		errs = append(errs, d.rdb.Close())
	}
	return errors.Join(errs...)
}

// Path returns the path the driver was opened with.
func (d *Driver) Path() string { return d.path }

// Schema returns "main", SQLite's name for the database of the file: the
// tables are not qualified.
func (d *Driver) Schema() string { return "main" }

// Migrator returns a migrator for the driver's file: migrations.New(d).
func (d *Driver) Migrator() *migrations.Migrator { return migrations.New(d) }

// Capabilities reports what SQLite gives: notifications within this
// process (listeners of this driver value), several processes on one file
// (SQLite's file locks serialize their writers; work another process
// enqueued is found by polling), and no pipelining (there is no round trip
// to save).
func (d *Driver) Capabilities() storage.Capabilities {
	return storage.Capabilities{Notify: storage.NotifyProcess, MultiProcess: true, PipelinedCommit: false, SingleWriter: true}
}

// Stats returns the driver's counters.
func (d *Driver) Stats() storage.Stats {
	return storage.Stats{TxRetries: d.txRetries.Load()}
}

// QueueHints returns the payloads of the insert notifications of queues, in
// order: the queue names themselves. The notifications never leave the
// process, and whoever can read the file can read every table, so there is
// nothing a hash would hide.
func (d *Driver) QueueHints(ctx context.Context, p storage.QueueHintsParams) ([]string, error) {
	if d.closed.Load() {
		return nil, errClosed()
	}
	return append([]string(nil), p.Queues...), nil
}
