// Package storage defines what Acidic needs from a database: the row types of
// jobs, runs and steps, and the Driver interface that reads and writes them.
//
// The engine above this package never writes SQL; a driver does. The PostgreSQL
// driver lives in storage/postgres. A Driver is also an Executor that runs each
// call as its own statement (READ COMMITTED, used for queue bookkeeping); a Tx is
// an Executor inside a transaction, used for the SERIALIZABLE step transactions
// where the user's writes and a run's recovery point commit together.
//
// Errors a caller may want to test for are exported as sentinels: ErrNotFound,
// ErrClosed, ErrLeaseLost, ErrSerialization.
package storage
