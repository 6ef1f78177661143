package storage

import (
	"context"
	"fmt"
	"time"
)

// Uniqueness holds what a driver does, beside JobInsertUnique, to keep jobs
// and job graphs unique: release unique keys whose period (counted from the
// holder's insert) has passed, and hold one key per job graph. Executor
// embeds it.
type Uniqueness interface {
	// JobUniqueRelease makes the jobs holding unique key Key that were
	// inserted at least OlderThan ago (created_at, by the database's clock)
	// give the key up: they stay as they are otherwise, but no longer count
	// as duplicates, so the next JobInsertUnique of the key inserts a new
	// job. It returns how many jobs gave it up. Used for uniqueness counted
	// from the first insert. Concurrent calls and inserts of one key still
	// leave one job holding it: a release matches only rows that still
	// hold the key, and JobInsertUnique's own conflict handling decides
	// between racing inserts.
	JobUniqueRelease(ctx context.Context, p JobUniqueReleaseParams) (int, error)

	// JobGraphReserve takes Key for a job graph that the same transaction
	// is about to insert, then names with JobGraphRecord before it
	// commits. If another graph holds Key, nothing is written and its jobs
	// are returned by name (Reserved false). A reservation of a key that a
	// transaction not yet committed holds waits for it: the key is then
	// that graph's if it committed, and this caller's if it rolled back, so
	// racing inserts of one key make one graph. Inside a REPEATABLE READ or
	// SERIALIZABLE transaction a key committed after its snapshot is a
	// serialization failure. It is called in a transaction (a Tx), so that
	// the key and the graph's jobs commit together; called on the Driver
	// it is acidic.ErrInvalid, as is a key that is not 1 to MaxKeyBytes
	// bytes of UTF-8 without NUL.
	JobGraphReserve(ctx context.Context, p JobGraphReserveParams) (JobGraphReservation, error)

	// JobGraphRecord names the jobs of the graph whose key the same
	// transaction reserved with JobGraphReserve. A key not reserved is
	// acidic.ErrNotFound.
	JobGraphRecord(ctx context.Context, p JobGraphRecordParams) error

	// JobGraphPrune frees the keys of up to Limit graphs none of whose jobs
	// are stored any more (every one was pruned or deleted), among the
	// graphs reserved more than Retention ago, and returns how many it
	// freed. A graph's key is held as long as one of its jobs is stored.
	JobGraphPrune(ctx context.Context, p JobGraphPruneParams) (int, error)
}

// JobUniqueReleaseParams: JobUniqueRelease makes the jobs holding Key that
// were inserted at least OlderThan ago give it up.
type JobUniqueReleaseParams struct {
	Key       []byte
	OlderThan time.Duration
}

// JobGraphReserveParams names the graph key JobGraphReserve takes.
type JobGraphReserveParams struct {
	Key string
}

// JobGraphReservation is what JobGraphReserve did.
type JobGraphReservation struct {
	// Reserved is true when the key was free and the caller's transaction
	// now holds it.
	Reserved bool
	// Jobs are the ids of the jobs of the graph holding the key, by their
	// names in the graph, when Reserved is false. A job deleted since is
	// still named here.
	Jobs map[string]int64
}

// JobGraphRecordParams names the jobs of the graph that holds Key.
type JobGraphRecordParams struct {
	Key  string
	Jobs map[string]int64
}

// JobGraphPruneParams: JobGraphPrune frees the keys of up to Limit graphs,
// reserved more than Retention ago, whose jobs are all gone.
type JobGraphPruneParams struct {
	Retention time.Duration
	Limit     int
}

// Validate returns acidic.ErrInvalid for a key the storage cannot hold.
func (p JobGraphReserveParams) Validate() error {
	return invalidIf(keyProblem("graph key", p.Key))
}

// Validate returns acidic.ErrInvalid for a key or job names the storage
// cannot hold.
func (p JobGraphRecordParams) Validate() error {
	if pr := keyProblem("graph key", p.Key); pr != "" {
		return invalidIf(pr)
	}
	for name := range p.Jobs {
		if pr := nameProblem("graph job name", name); pr != "" {
			return invalidIf(fmt.Sprintf("graph %s: %s", short(p.Key), pr))
		}
	}
	return nil
}
