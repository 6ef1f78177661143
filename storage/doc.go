// Package storage defines what Acidic needs from a database: the row types of
// jobs, runs and steps, and the Driver interface that reads and writes them.
//
// The engine above this package never writes SQL; a driver does. The PostgreSQL
// driver lives in storage/postgres. A Driver is also an Executor that runs each
// call as its own statement (READ COMMITTED, used for queue bookkeeping); a Tx is
// an Executor inside a transaction, used for the SERIALIZABLE step transactions
// where the user's writes and a run's recovery point commit together. A
// Driver also carries its migrations (Migrations): its files, and the few
// primitives package migrations runs them with.
//
// Errors a caller may want to test for are exported as sentinels: acidic.ErrNotFound,
// acidic.ErrClosed, acidic.ErrLeaseLost, acidic.ErrSerialization, acidic.ErrInvalid.
//
// # What a write may carry
//
// The rules for every write live here, above any driver: names (queues,
// kinds, workflows, steps) are printable UTF-8 of at most MaxNameBytes, keys
// (idempotency keys, outbox topics and keys) UTF-8 without NUL of at most
// MaxKeyBytes, JSON must be storable by jsonb (CheckJSON), scheduled times
// fall in years 1 to MaxYear. Each row type has a Validate method that a
// driver calls before it writes, so a bad value is refused with acidic.ErrInvalid
// (naming the field and the limit) and nothing is written. Free text the
// engine writes, error messages above all, is never refused: a driver stores
// it as Text leaves it (valid UTF-8, no NUL, at most MaxTextBytes).
package storage
