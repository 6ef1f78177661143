package storage

// NotifyScope is how far a driver's notifications (Notify, NewListener)
// reach.
type NotifyScope int

// Notification scopes.
const (
	// NotifyNone: the driver has no notifications. NewListener returns an
	// error and Notify does nothing; the engine never opens a listener and
	// finds work by polling alone (queue.Config.PollInterval,
	// outbox.Config.PollInterval).
	NotifyNone NotifyScope = iota
	// NotifyProcess: notifications reach listeners of the same driver value
	// in this process only (an embedded database). Work enqueued by another
	// process is found by polling.
	NotifyProcess
	// NotifyCluster: notifications reach every process listening on the
	// same store (PostgreSQL's LISTEN/NOTIFY).
	NotifyCluster
)

// String returns the scope's name.
func (s NotifyScope) String() string {
	switch s {
	case NotifyNone:
		return "none"
	case NotifyProcess:
		return "process"
	case NotifyCluster:
		return "cluster"
	}
	return "unknown"
}

// Capabilities say what a driver can do beyond the Executor contract, which
// every driver meets in full. The engine reads them instead of assuming
// PostgreSQL; storagetest checks that a driver does what it declares.
type Capabilities struct {
	// Notify is how far notifications reach; see NotifyScope.
	Notify NotifyScope
	// MultiProcess: several processes may use the store at once, as nodes
	// of one cluster (leases, claims and unique keys hold across them).
	// Without it, one process owns the store, and a second that tries to
	// open it gets an error from the driver.
	MultiProcess bool
	// PipelinedCommit: InStepTx sends a step's closing write together with
	// its COMMIT, so a step costs one round trip to the database. Without
	// it the closing write is a statement of its own; the guarantees are
	// the same.
	PipelinedCommit bool
	// SingleWriter: one write transaction runs at a time; another waits
	// for it to end before its first statement (SQLite). Rows a
	// transaction reads are then held from every other writer until it
	// ends, so "skipping rows another transaction holds" never happens:
	// the other transaction runs after it, on what it committed.
	SingleWriter bool
}
