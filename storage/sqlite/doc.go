// Package sqlite is Acidic's SQLite driver: one file, pure Go (it is built on
// modernc.org/sqlite, SQLite translated to Go, so it needs no cgo and no C
// compiler). It is the embedded store for a machine with Go and nothing
// else; PostgreSQL (storage/postgres) is the store for production. It passes
// the same conformance suite (storage/storagetest).
//
//	drv, err := sqlite.Open(ctx, "acidic.db", sqlite.Options{Migrate: true})
//	if err != nil { ... }
//	defer drv.Close()
//
// Like the PostgreSQL driver it holds its SQL in the sql/ folder, as named
// queries, and its migrations in migrations/ (NNNN_name.{up,down}.sql, run
// by package migrations: drv.Migrator().Up(ctx), or Options.Migrate).
//
// # Transactions
//
// SQLite runs one write transaction at a time per file, and its transactions
// are serializable. The driver has one writer connection, and every write
// transaction on it, InTx at either isolation, InStepTx, a single write on
// the Driver, a migration, begins with BEGIN IMMEDIATE: it takes the write
// lock before its first statement. No statement of a transaction ever has to
// upgrade a read lock to a write lock, which in SQLite fails at once with
// SQLITE_BUSY and would make the transaction, and so a step's code, run
// again. Writers of this process wait for the writer connection in turn;
// writers of other processes on the file wait on SQLite's lock
// (busy_timeout). Both waits end after Options.BusyTimeout with ErrBusy,
// which matches acidic.ErrSerialization, so InTx and InStepTx try again.
//
// Group commit: a step, an enqueue or a transaction of yours that ends
// while another of them waits for the writer does not commit at once. It
// hands the open SQLite transaction to the one waiting, which runs in a
// SAVEPOINT of its own, and so on; the one that ends with none waiting (or
// the sixteenth) commits them all with one COMMIT and one sync of the WAL.
// Each keeps its promises: its writes commit together or not at all, one
// that fails rolls back its own writes only, none returns before the
// COMMIT holding its writes is on disk, and each returns that COMMIT's
// result (acidic.ErrCommitUnknown when an I/O error leaves it unknown).
// Readers see a member's writes only once the group has committed. Should
// SQLite roll the group's transaction back by itself (a statement of yours
// interrupted, a full disk), the members that had ended in it fail with an
// error matching acidic.ErrSerialization, having written nothing, and
// InTx and InStepTx run them again. Two things differ from committing
// alone: a member's commit returns only once the transactions handed the
// group after it have ended, and the members' callers then go on in any
// order. Do not make a transaction, while it holds the write lock, wait for
// something another goroutine does after its own write returns: that
// write returns acidic.ErrCommitUnknown after Options.BusyTimeout.
// Bookkeeping transactions (below) and migrations always commit alone.
//
// A transaction begins at its first statement: a step whose code never
// touches the database holds no lock while it runs, and one that does holds
// the write lock from its first statement to its commit. Make calls to other
// systems before the step's first statement, or in a step of their own.
//
// As in PostgreSQL, a method that fails inside a transaction after it may
// have written part of its work (a batch whose second job breaks a unique
// key) leaves the transaction able only to roll back: its commit fails with
// ErrTxDone naming the error. Not-found and lease-lost results write
// nothing and leave it as it was.
//
// With one writer, what the PostgreSQL driver gets from row locks and SKIP
// LOCKED (periodic schedules a pass holds, a limited fetch's slots and
// partitions, graph keys) comes from the write lock: a transaction that read
// a row holds it until it ends, and the next sees what it committed. The
// driver declares it (storage.Capabilities.SingleWriter).
//
// Reads made outside a transaction (JobGet, RunList, ...) run on reader
// connections (Options.MaxReaders), which WAL mode lets read while a write is
// under way; they see what was committed. Reads inside a transaction run in
// it.
//
// # Durability
//
// The file is in WAL mode with foreign keys on. Steps, enqueues, migrations
// and every transaction of the caller's commit with synchronous=FULL: the WAL
// is on disk when the commit returns; several of them may share one COMMIT
// and its sync (group commit, above). Queue bookkeeping (claims,
// completions, heartbeats, leases) commits with synchronous=NORMAL, synced
// by the next FULL commit: one lost to a power cut means a job runs again,
// which at-least-once delivery allows, as the PostgreSQL driver's
// synchronous_commit = off does. They commit alone, never in a group: they
// save no sync there, and their callers act on them at once (the queue
// publishes an attempt's outcome before the job's next attempt can be
// claimed).
//
// # Notifications and processes
//
// SQLite has no LISTEN/NOTIFY. Notifications reach the listeners of the same
// Driver value (storage.NotifyProcess): inside a transaction they are kept
// until it commits, and dropped when it rolls back. Several processes may
// work one file (storage.Capabilities.MultiProcess): SQLite's file lock
// serializes their write transactions, so claims, unique keys and leases hold
// across them; a process finds work another enqueued by polling
// (queue.Config.PollInterval). The file must be on a local file system: WAL
// mode needs shared memory between the processes.
//
// # Your own SQL
//
// SQLTx(tx) runs your SQL in a transaction of the driver: a step's
// (sc.Tx()), or InTx's. Begin starts a transaction of your own, in which
// you may enqueue jobs or runs together with your writes; commit or roll it
// back, and keep it short, since it holds the write lock. A write on the
// Driver itself made with the context of one of its own write transactions
// would wait for that transaction: it fails at once with ErrNestedWrite.
//
// # Bad input
//
// Open refuses a path it cannot open or create, and a file that is not a
// SQLite database, with an *OpenError (ErrCannotOpen, ErrNotADatabase), and
// a file that a newer build of Acidic migrated with a
// *migrations.NewerStoreError naming the versions it does not know; nothing
// is written to the file in any of these cases. Every write is checked with
// package storage's rules before its statement runs, so a value the tables
// cannot hold is acidic.ErrInvalid. Times are stored as microseconds since
// the Unix epoch on the driver's clock, which never goes back within a
// driver; run ids as 16 bytes; JSON as text.
package sqlite
